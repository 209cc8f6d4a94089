"""``MemoryStore``: the embedded default store, for one replica.

Atomicity: every method runs from start to end without an ``await`` in the middle, so on the
one event loop that owns the store no other call can see or interleave with a half-done step.
That is the whole concurrency mechanism; the store is not meant to be shared between threads
or event loops. Records go in and come out as deep copies (pass by value).

It follows the Redis store step for step (same orders, same error codes), so the one contract
suite holds for both. The sweep (:meth:`MemoryStore.expire_leases`) looks at every study with a
lease: fine for the studies of one process.

The state of one study (:class:`._memory_state.MemoryStudy`) and its request records live in
:mod:`._memory_state`; this module holds the methods on studies and asks, :mod:`._memory_trials`
those on results, leases, intermediate reports and reads (the decisions of early stopping in
:mod:`._memory_reports`).
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import secrets
from collections.abc import Sequence

from hyperdial_server.core.errors import ResourceExhausted
from hyperdial_server.core.limits import (
    DEFAULT_LEASE_TIMEOUT,
    DEFAULT_NAMESPACE_SPEC_BYTES,
    MAX_STUDIES_PER_NAMESPACE,
)
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import StateCounts, Trial, TrialState
from hyperdial_server.store._base import (
    DEFAULT_CLAIM_TTL,
    EXPIRE_BATCH,
    Claim,
    Reissue,
    RequestId,
    check_front_allowed,
    check_front_vector,
)
from hyperdial_server.store._checks import (
    check_claim_args,
    check_new_trial,
    check_page_size,
    check_points,
)
from hyperdial_server.store._codec import encode_study, score_text
from hyperdial_server.store._errors import store_error
from hyperdial_server.store._memory_state import (
    Answered,
    Call,
    InProgress,
    MemoryStudy,
    fingerprint_mismatch,
)
from hyperdial_server.store._memory_trials import TrialMethods


class MemoryStore(TrialMethods):
    """All state in this process's memory; lost when it exits. See :mod:`._memory`.

    Args:
        max_studies: Most studies per namespace (attribute ``max_studies``).
        max_spec_bytes: Most bytes of study records (as the Redis store stores them) per
            namespace; 0: no budget (attribute ``max_spec_bytes``).
    """

    def __init__(
        self,
        *,
        max_studies: int = MAX_STUDIES_PER_NAMESPACE,
        max_spec_bytes: int = DEFAULT_NAMESPACE_SPEC_BYTES,
    ) -> None:
        self.max_studies = max_studies
        self.max_spec_bytes = max_spec_bytes
        # Per namespace: study id -> bytes of its record, counted against max_spec_bytes.
        self._spec_bytes: dict[str, dict[str, int]] = {}
        self._studies: dict[str, dict[str, MemoryStudy]] = {}
        # Per namespace: study ids in ascending order, for paging.
        self._ids: dict[str, list[str]] = {}
        # (namespace, study id) -> request ids of deletions -> (until when they are kept,
        # payload fingerprint).
        self._deleted: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}

    def _checked(self, namespace: str, study_id: str, uid: str) -> MemoryStudy:
        study = self._study(namespace, study_id)
        if study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        return study

    @staticmethod
    def _record(study: MemoryStudy) -> StudyRecord:
        return dataclasses.replace(
            copy.deepcopy(study.record),
            trial_count=len(study.trials),
            revision=study.revision,
            update_time=study.update_time,
            state_counts=StateCounts.of({s: len(n) for s, n in study.by_state.items()}),
        )

    async def close(self) -> None:
        """Nothing to release."""

    async def ping(self) -> None:
        """Always answers."""

    async def create_study(
        self, namespace: str, study: StudyRecord, *, request_id: RequestId | None = None
    ) -> StudyRecord:
        """See :meth:`Store.create_study`."""
        studies = self._studies.setdefault(namespace, {})
        existing = studies.get(study.study_id)
        if existing is not None:
            asked = existing.create_request
            if request_id is not None and asked is not None:
                if asked[0] == request_id.value and asked[1] >= study.create_time:
                    if fingerprint_mismatch(existing.create_fingerprint, request_id):
                        raise store_error(
                            "REQUEST_ID_MISMATCH", study.study_id, None, "CreateStudy"
                        )
                    return dataclasses.replace(copy.deepcopy(existing.record), trial_count=0)
            raise store_error("STUDY_ALREADY_EXISTS", study.study_id)
        if len(studies) >= self.max_studies:
            raise store_error("TOO_MANY_STUDIES", study.study_id, None, str(self.max_studies))
        sizes = self._spec_bytes.setdefault(namespace, {})
        size = len(encode_study(dataclasses.replace(study, trial_count=0)).encode())
        held = sum(sizes.values())
        if self.max_spec_bytes and held + size > self.max_spec_bytes:
            raise ResourceExhausted(
                f"namespace {namespace!r} holds {held} bytes of study specs; this study's "
                f"{size} bytes would pass its budget of {self.max_spec_bytes} bytes; delete "
                "studies you no longer need or ask the operator for a larger budget",
                reason="NAMESPACE_SPEC_BUDGET",
                metadata={"budget_bytes": str(self.max_spec_bytes), "spec_bytes": str(size)},
            )
        sizes[study.study_id] = size
        # As stored: what a read counts (trials, revision, counts) is the study's own.
        stored = MemoryStudy(
            dataclasses.replace(
                copy.deepcopy(study),
                trial_count=0,
                revision=0,
                update_time=None,
                state_counts=StateCounts(),
            )
        )
        if request_id is not None:
            stored.create_request = (request_id.value, study.create_time + request_id.ttl)
            stored.create_fingerprint = request_id.fingerprint
        studies[study.study_id] = stored
        bisect.insort(self._ids.setdefault(namespace, []), study.study_id)
        return self._record(stored)

    async def get_study(self, namespace: str, study_id: str) -> StudyRecord:
        """See :meth:`Store.get_study`."""
        return self._record(self._study(namespace, study_id))

    async def list_studies(
        self, namespace: str, page_size: int, after: str | None = None
    ) -> tuple[list[StudyRecord], bool]:
        """See :meth:`Store.list_studies`."""
        check_page_size(page_size)
        ids = self._ids.get(namespace, [])
        start = 0 if after is None else bisect.bisect_right(ids, after)
        page = ids[start : start + page_size]
        studies = self._studies[namespace] if page else {}
        return [self._record(studies[i]) for i in page], start + page_size < len(ids)

    async def delete_study(
        self,
        namespace: str,
        study_id: str,
        *,
        request_id: RequestId | None = None,
        now: float = 0.0,
    ) -> None:
        """See :meth:`Store.delete_study`."""
        where = (namespace, study_id)
        deleted = self._deleted.get(where, {})
        for rid in [r for r, (until, _) in deleted.items() if until < now]:
            del deleted[rid]
        if not deleted:
            # Nothing kept for a study deleted without a request id (or whose ids are over).
            self._deleted.pop(where, None)
        if request_id is not None and request_id.value in deleted:
            if fingerprint_mismatch(deleted[request_id.value][1], request_id):
                raise store_error("REQUEST_ID_MISMATCH", study_id, None, "DeleteStudy")
            return
        self._study(namespace, study_id)
        del self._studies[namespace][study_id]
        self._spec_bytes.get(namespace, {}).pop(study_id, None)
        ids = self._ids[namespace]
        del ids[bisect.bisect_left(ids, study_id)]
        if request_id is not None:
            self._deleted.setdefault(where, {})[request_id.value] = (
                now + request_id.ttl,
                request_id.fingerprint,
            )

    # --- handing out trials ------------------------------------------------------------------

    async def claim_trials(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        count: int,
        *,
        capacity: int | None,
        max_trials: int | None,
        client_id: str,
        now: float,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        request_id: RequestId | None = None,
    ) -> Claim:
        """See :meth:`Store.claim_trials`."""
        check_claim_args(count)
        study = self._checked(namespace, study_id, uid)
        token = secrets.token_hex(8)
        deadline = now + claim_ttl
        lease = now + lease_timeout
        # 0. The request id: an answered ask is replayed; one in progress elsewhere is refused.
        got = None if request_id is None else study.find_request(request_id.value, now)
        if request_id is not None and got is not None:
            rec = got.record
            # The same id for an ask with another payload: neither replayed nor taken over.
            if rec.call is Call.SUGGEST and fingerprint_mismatch(got.fingerprint, request_id):
                raise store_error("REQUEST_ID_MISMATCH", study_id, None, rec.call.value)
            if isinstance(rec, InProgress):
                if rec.attempt != request_id.attempt and rec.deadline >= now:
                    raise store_error("REQUEST_IN_PROGRESS", study_id)
            elif rec.kind is Call.SUGGEST:
                return Claim(trials=[self._copy(study, n) for n in rec.numbers], replayed=True)
            else:
                raise store_error("REQUEST_ID_REUSED", study_id, None, rec.call.value)
        study.expire_due(now, EXPIRE_BATCH)
        left = count
        budget = None if max_trials is None else max_trials - study.handed_out
        already = set(request_id.handed) if request_id is not None else set()
        answer = list(request_id.handed) if request_id is not None else []
        claim = Claim()
        handed: list[int] = []
        # 1. The client's own RUNNING trials, oldest first, leases renewed.
        if client_id:
            for number in list(study.holders.get(client_id, [])):
                if left == 0:
                    break
                if number in already:
                    continue
                study.leases[number] = lease
                study.touch(number, now)
                handed.append(number)
                left -= 1
        # 2. Points of lease-expired trials.
        sources = study.reissue[:left]
        del study.reissue[:left]
        for source in sources:
            study.claims[f"r{source}"] = (token, deadline)
            old = study.trials[source - 1]
            claim.reissues.append(Reissue(source, copy.deepcopy(old.params), dict(old.metadata)))
        left -= len(sources)
        claimed = len(sources)
        # 3. Enqueued trials, oldest first; each counts against max_trials.
        while left > 0 and (budget is None or budget > 0) and study.queue:
            number = study.queue.popleft()
            trial = study.trials[number - 1]
            study.set_state(trial, TrialState.RUNNING)
            trial.client_id = client_id
            study.leases[number] = lease
            study.hold(number, client_id)
            study.touch(number, now)
            handed.append(number)
            left -= 1
            study.handed_out += 1
            if budget is not None:
                budget -= 1
        # 4. Claims that expired uncommitted: counted already when first claimed. Same order as
        # the Redis store: by deadline, then by the member text "<slot>:<token>".
        if left > 0:
            expired = sorted(
                (d, f"{slot}:{t}", slot) for slot, (t, d) in study.claims.items() if d < now
            )[:left]
            for _, _, slot in expired:
                study.claims[slot] = (token, deadline)
                if slot.startswith("r"):
                    old = study.trials[int(slot[1:]) - 1]
                    claim.reissues.append(
                        Reissue(int(slot[1:]), copy.deepcopy(old.params), dict(old.metadata))
                    )
                else:
                    claim.indices.append(int(slot))
            left -= len(expired)
            claimed += len(expired)
        # 5. Fresh indices from the counter, below capacity and within max_trials.
        take = left if budget is None else min(left, budget)
        if capacity is not None:
            take = min(take, capacity - study.next_index)
        for index in range(study.next_index, study.next_index + max(take, 0)):
            study.claims[str(index)] = (token, deadline)
            claim.indices.append(index)
        if take > 0:
            study.next_index += take
            study.handed_out += take
            claimed += take
        claim.trials = [self._copy(study, n) for n in handed]
        answer += handed
        if request_id is not None:
            keep = now + request_id.ttl
            if claimed:
                study.record_request(
                    request_id,
                    InProgress(request_id.attempt, deadline),
                    keep,
                    fingerprint=request_id.fingerprint,
                )
            elif answer:
                study.record_request(
                    request_id,
                    Answered(Call.SUGGEST, tuple(answer)),
                    keep,
                    fingerprint=request_id.fingerprint,
                )
            else:
                study.requests.pop(request_id.value, None)
        if claimed:
            claim.token = token
        elif not handed:
            claim.pending = len(study.by_state[TrialState.RUNNING]) + len(study.claims)
        return claim

    async def commit_trials(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        token: str,
        points: Sequence[tuple[int, Params]],
        *,
        client_id: str,
        now: float,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        reissues: Sequence[Reissue] = (),
        request_id: RequestId | None = None,
    ) -> list[Trial]:
        """See :meth:`Store.commit_trials`."""
        check_points(points)
        study = self._checked(namespace, study_id, uid)
        if request_id is not None:
            # Read whatever its time, as the script does: a record other than this attempt's
            # claim means a retry took the ask over (or answered it).
            got = study.requests.get(request_id.value)
            if got is not None and not got.held_by(request_id):
                raise store_error("REQUEST_IN_PROGRESS", study_id)
        slots: list[tuple[str, Params, dict[str, str], int | None]] = [
            (f"r{r.source}", r.params, r.metadata, None) for r in reissues
        ]
        slots += [(str(index), params, {}, index) for index, params in points]
        # A claim past its deadline that nobody took again is still ours: only its absence
        # (committed, or re-taken under another token) is refused.
        if any(study.claims.get(slot, (None, 0.0))[0] != token for slot, _, _, _ in slots):
            raise store_error("CLAIM_EXPIRED", study_id)
        out: list[Trial] = []
        for slot, params, metadata, index in slots:
            del study.claims[slot]
            number = study.add_running(params, metadata, client_id, now, now + lease_timeout, index)
            if slot.startswith("r"):
                # A re-issue: each of the two trials names the other (twins if both complete).
                source = int(slot[1:])
                study.trials[number - 1].original_number = source
                study.trials[source - 1].reissued_number = number
                study.touch(source, now)
            out.append(self._copy(study, number))
        if request_id is not None:
            study.answer_ask(request_id, [t.number for t in out], now)
        return out

    async def renew_claim(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        token: str,
        indices: Sequence[int],
        *,
        now: float,
        claim_ttl: float,
        reissues: Sequence[Reissue] = (),
        request_id: RequestId | None = None,
    ) -> None:
        """See :meth:`Store.renew_claim`."""
        study = self._checked(namespace, study_id, uid)
        if request_id is not None:
            # Read whatever its time, as the script does: a record other than this attempt's
            # claim means a retry took the ask over (or answered it).
            got = study.requests.get(request_id.value)
            if got is not None and not got.held_by(request_id):
                raise store_error("REQUEST_IN_PROGRESS", study_id)
        slots = [f"r{r.source}" for r in reissues] + [str(index) for index in indices]
        if any(study.claims.get(slot, (None, 0.0))[0] != token for slot in slots):
            raise store_error("CLAIM_EXPIRED", study_id)
        deadline = now + claim_ttl
        for slot in slots:
            study.claims[slot] = (token, deadline)
        if request_id is not None:
            study.record_request(
                request_id,
                InProgress(request_id.attempt, deadline),
                now + request_id.ttl,
                fingerprint=None,
            )

    async def create_trial(
        self,
        namespace: str,
        study_id: str,
        trial: Trial,
        *,
        score: float | None = None,
        uid: str | None = None,
        request_id: RequestId | None = None,
        now: float = 0.0,
        front_vector: Sequence[float] | None = None,
    ) -> Trial:
        """See :meth:`Store.create_trial`."""
        check_new_trial(trial, score)
        check_front_allowed(front_vector, trial.state)
        if score is not None:
            score_text(score)  # refuses NaN, like the Redis store
        study = self._study(namespace, study_id)
        if request_id is not None:
            got = study.find_request(request_id.value, now)
            if got is not None:
                rec = got.record
                if isinstance(rec, Answered) and rec.kind is Call.CREATE:
                    if fingerprint_mismatch(got.fingerprint, request_id):
                        raise store_error("REQUEST_ID_MISMATCH", study_id, None, rec.call.value)
                    return self._copy(study, rec.numbers[0])
                raise store_error("REQUEST_ID_REUSED", study_id, None, rec.call.value)
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        stored = dataclasses.replace(
            copy.deepcopy(trial), number=len(study.trials) + 1, lease_expire_time=None, revision=0
        )
        study.trials.append(stored)
        study.by_state[stored.state].append(stored.number)
        if stored.state is TrialState.WAITING:
            study.queue.append(stored.number)
        if score is not None:
            study.add_score(float(score), stored.number)
        if stored.state in (TrialState.COMPLETED, TrialState.STOPPED):
            vector = None if front_vector is None else check_front_vector(front_vector)
            study.add_to_front(stored.number, vector)
        study.touch(stored.number, now)
        if request_id is not None:
            study.record_request(
                request_id,
                Answered(Call.CREATE, (stored.number,)),
                now + request_id.ttl,
                fingerprint=request_id.fingerprint,
            )
        return copy.deepcopy(stored)
