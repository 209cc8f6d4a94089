"""``MemoryStore``: the embedded default store, for one replica.

Atomicity: every method runs from start to end without an ``await`` in the middle, so on the
one event loop that owns the store no other call can see or interleave with a half-done step.
That is the whole concurrency mechanism; the store is not meant to be shared between threads
or event loops. Records go in and come out as deep copies (pass by value).

It follows the Redis store step for step (same orders, same error codes), so the one contract
suite holds for both. The sweep (:meth:`MemoryStore.expire_leases`) looks at every study with a
lease: fine for the studies of one process.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import heapq
import itertools
import secrets
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from hyperdial_server.core.errors import ResourceExhausted
from hyperdial_server.core.limits import (
    DEFAULT_LEASE_TIMEOUT,
    DEFAULT_NAMESPACE_SPEC_BYTES,
    MAX_STUDIES_PER_NAMESPACE,
)
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import LEASE_EXPIRED_REASON, Trial, TrialState
from hyperdial_server.store._base import (
    DEFAULT_CLAIM_TTL,
    EXPIRE_BATCH,
    Claim,
    FastAsk,
    Reissue,
    RequestId,
    Store,
)
from hyperdial_server.store._codec import (
    check_claim_args,
    check_completion,
    check_new_trial,
    check_page_size,
    check_points,
    encode_study,
    score_text,
    store_error,
)

# What a request record was for, by its prefix (as in ``lua/_lib.lua``).
_KINDS = {"D:A": "SuggestTrials", "P:": "SuggestTrials", "D:T": "CompleteTrial"}
_KINDS["D:C"] = "CreateTrial"


def _kind(value: str) -> str:
    return _KINDS.get(value[:3]) or _KINDS.get(value[:2]) or "another call"


@dataclass
class _Study:
    record: StudyRecord
    trials: list[Trial] = field(default_factory=list)  # trials[number - 1]
    # Trial numbers by state, ascending, so a filtered page costs O(page + log n).
    by_state: dict[TrialState, list[int]] = field(
        default_factory=lambda: {s: [] for s in TrialState}
    )
    queue: deque[int] = field(default_factory=deque)  # WAITING numbers, oldest first
    next_index: int = 0
    handed_out: int = 0
    # Claimed slot ("<index>" or "r<number>") -> (token, deadline).
    claims: dict[str, tuple[str, float]] = field(default_factory=dict)
    best: tuple[float, int] | None = None  # (score, number) of the best trial
    leases: dict[int, float] = field(default_factory=dict)  # RUNNING number -> deadline
    reissue: list[int] = field(default_factory=list)  # ascending numbers
    expired: set[int] = field(default_factory=set)  # lease-expired, take a late result
    owners: dict[int, str] = field(default_factory=dict)  # RUNNING number -> client_id
    holders: dict[str, list[int]] = field(default_factory=dict)  # client_id -> numbers
    requests: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> record, until
    # Request id -> payload fingerprint of the call that made its record (kept apart from the
    # record, so that the steps that move an ask along keep it without knowing it).
    fingerprints: dict[str, str] = field(default_factory=dict)
    create_request: tuple[str, float] | None = None
    create_fingerprint: str = ""

    def set_state(self, trial: Trial, state: TrialState) -> None:
        old = self.by_state[trial.state]
        del old[bisect.bisect_left(old, trial.number)]
        bisect.insort(self.by_state[state], trial.number)
        trial.state = state

    def add_score(self, score: float, number: int) -> None:
        if self.best is None or (score, number) < self.best:
            self.best = (score, number)

    def hold(self, number: int, client_id: str) -> None:
        if client_id:
            self.owners[number] = client_id
            bisect.insort(self.holders.setdefault(client_id, []), number)

    def release(self, number: int) -> None:
        owner = self.owners.pop(number, None)
        if owner is not None:
            held = self.holders[owner]
            del held[bisect.bisect_left(held, number)]
            if not held:
                del self.holders[owner]

    def add_running(
        self,
        params: Params,
        metadata: Mapping[str, str],
        client_id: str,
        now: float,
        lease: float,
        sampler_index: int | None,
    ) -> int:
        """Appends a new RUNNING trial (copies of ``params`` and ``metadata``); its number."""
        trial = Trial(
            number=len(self.trials) + 1,
            state=TrialState.RUNNING,
            params=copy.deepcopy(params),
            client_id=client_id,
            create_time=now,
            metadata=dict(metadata),
            sampler_index=sampler_index,
        )
        self.trials.append(trial)
        self.by_state[TrialState.RUNNING].append(trial.number)
        self.leases[trial.number] = lease
        self.hold(trial.number, client_id)
        return trial.number

    def expire_one(self, number: int, now: float) -> None:
        del self.leases[number]
        trial = self.trials[number - 1]
        self.set_state(trial, TrialState.FAILED)
        self.expired.add(number)
        bisect.insort(self.reissue, number)
        self.release(number)
        trial.complete_time = now
        trial.failure_reason = LEASE_EXPIRED_REASON
        trial.lease_expire_time = None

    def answer_ask(self, request_id: RequestId, numbers: Sequence[int], now: float) -> None:
        """Records ``numbers`` (with those handed out by earlier steps) as the ask's answer."""
        answer = [*request_id.handed, *numbers]
        self.requests[request_id.value] = (
            "D:A:" + ",".join(map(str, answer)),
            now + request_id.ttl,
        )

    def expire_due(self, now: float, limit: int) -> int:
        # The Redis order: by deadline, then by the member text.
        due = sorted((d, str(n), n) for n, d in self.leases.items() if d < now)[:limit]
        for _, _, number in due:
            self.expire_one(number, now)
        return len(due)

    def find_request(self, request_id: str, now: float) -> str | None:
        for rid in [r for r, (_, until) in self.requests.items() if until < now]:
            del self.requests[rid]
            self.fingerprints.pop(rid, None)
        got = self.requests.get(request_id)
        return None if got is None else got[0]


def _mismatch(recorded: str, request_id: RequestId) -> bool:
    """Whether a call's payload fingerprint differs from the one recorded with its id (none on
    either side: no check, as in ``lua/_lib.lua``)."""
    return bool(recorded) and bool(request_id.fingerprint) and recorded != request_id.fingerprint


def _note(study: _Study, request_id: RequestId) -> None:
    """Records the payload fingerprint of ``request_id`` with its record."""
    if request_id.fingerprint:
        study.fingerprints[request_id.value] = request_id.fingerprint
    else:
        study.fingerprints.pop(request_id.value, None)


class MemoryStore(Store):
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
        self._studies: dict[str, dict[str, _Study]] = {}
        # Per namespace: study ids in ascending order, for paging.
        self._ids: dict[str, list[str]] = {}
        # (namespace, study id) -> request ids of deletions -> (until when they are kept,
        # payload fingerprint).
        self._deleted: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}

    def _study(self, namespace: str, study_id: str) -> _Study:
        study = self._studies.get(namespace, {}).get(study_id)
        if study is None:
            raise store_error("STUDY_NOT_FOUND", study_id)
        return study

    def _checked(self, namespace: str, study_id: str, uid: str) -> _Study:
        study = self._study(namespace, study_id)
        if study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        return study

    @staticmethod
    def _record(study: _Study) -> StudyRecord:
        return dataclasses.replace(copy.deepcopy(study.record), trial_count=len(study.trials))

    @staticmethod
    def _copy(study: _Study, number: int) -> Trial:
        trial = copy.deepcopy(study.trials[number - 1])
        trial.lease_expire_time = study.leases.get(number)
        return trial

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
                    if _mismatch(existing.create_fingerprint, request_id):
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
        stored = _Study(dataclasses.replace(copy.deepcopy(study), trial_count=0))
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
            if _mismatch(deleted[request_id.value][1], request_id):
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
        if request_id is not None:
            rec = study.find_request(request_id.value, now)
            if rec is not None and rec.startswith(("D:A:", "P:")):
                # The same id for an ask with another payload: neither replayed nor taken over.
                if _mismatch(study.fingerprints.get(request_id.value, ""), request_id):
                    raise store_error("REQUEST_ID_MISMATCH", study_id, None, _kind(rec))
            if rec is not None:
                if rec.startswith("D:A:"):
                    numbers = [int(n) for n in rec[4:].split(",") if n]
                    return Claim(trials=[self._copy(study, n) for n in numbers], replayed=True)
                if rec.startswith("P:"):
                    _, attempt, ends = rec.split(":", 2)
                    if attempt != request_id.attempt and float(ends) >= now:
                        raise store_error("REQUEST_IN_PROGRESS", study_id)
                else:
                    raise store_error("REQUEST_ID_REUSED", study_id, None, _kind(rec))
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
                study.requests[request_id.value] = (f"P:{request_id.attempt}:{deadline!r}", keep)
                _note(study, request_id)
            elif answer:
                study.requests[request_id.value] = ("D:A:" + ",".join(map(str, answer)), keep)
                _note(study, request_id)
            else:
                study.requests.pop(request_id.value, None)
                study.fingerprints.pop(request_id.value, None)
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
            rec = study.requests.get(request_id.value)
            if rec is not None and not rec[0].startswith(f"P:{request_id.attempt}:"):
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
            rec = study.requests.get(request_id.value)
            if rec is not None and not rec[0].startswith(f"P:{request_id.attempt}:"):
                raise store_error("REQUEST_IN_PROGRESS", study_id)
        slots = [f"r{r.source}" for r in reissues] + [str(index) for index in indices]
        if any(study.claims.get(slot, (None, 0.0))[0] != token for slot in slots):
            raise store_error("CLAIM_EXPIRED", study_id)
        deadline = now + claim_ttl
        for slot in slots:
            study.claims[slot] = (token, deadline)
        if request_id is not None:
            study.requests[request_id.value] = (
                f"P:{request_id.attempt}:{deadline!r}",
                now + request_id.ttl,
            )

    async def reserve_indices(self, namespace: str, study_id: str, uid: str, count: int) -> int:
        """See :meth:`Store.reserve_indices`."""
        check_claim_args(count)
        study = self._checked(namespace, study_id, uid)
        first = study.next_index
        study.next_index += count
        return first

    async def commit_reserved(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        points: Sequence[tuple[int, Params]],
        *,
        max_trials: int | None,
        client_id: str,
        now: float,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        request_id: RequestId | None = None,
    ) -> FastAsk:
        """See :meth:`Store.commit_reserved`."""
        check_points(points)
        study = self._checked(namespace, study_id, uid)
        if request_id is not None and study.find_request(request_id.value, now) is not None:
            return FastAsk(fallback="REQUEST_ID")
        study.expire_due(now, EXPIRE_BATCH)
        if client_id and study.holders.get(client_id):
            return FastAsk(fallback="CLIENT_HOLDS_TRIALS")
        if study.reissue:
            return FastAsk(fallback="REISSUE")
        if study.queue:
            return FastAsk(fallback="ENQUEUED")
        if any(deadline < now for _, deadline in study.claims.values()):
            return FastAsk(fallback="EXPIRED_CLAIM")
        if max_trials is not None and study.handed_out + len(points) > max_trials:
            return FastAsk(fallback="MAX_TRIALS")
        study.handed_out += len(points)
        out: list[Trial] = []
        for index, params in points:
            number = study.add_running(params, {}, client_id, now, now + lease_timeout, index)
            out.append(self._copy(study, number))
        if request_id is not None:
            study.answer_ask(request_id, [t.number for t in out], now)
            _note(study, request_id)  # a new record: commit_trials keeps the claim's instead
        return FastAsk(trials=out)

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
    ) -> Trial:
        """See :meth:`Store.create_trial`."""
        check_new_trial(trial, score)
        if score is not None:
            score_text(score)  # refuses NaN, like the Redis store
        study = self._study(namespace, study_id)
        if request_id is not None:
            rec = study.find_request(request_id.value, now)
            if rec is not None:
                if rec.startswith("D:C:"):
                    if _mismatch(study.fingerprints.get(request_id.value, ""), request_id):
                        raise store_error("REQUEST_ID_MISMATCH", study_id, None, _kind(rec))
                    return self._copy(study, int(rec[4:]))
                raise store_error("REQUEST_ID_REUSED", study_id, None, _kind(rec))
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        stored = dataclasses.replace(
            copy.deepcopy(trial), number=len(study.trials) + 1, lease_expire_time=None
        )
        study.trials.append(stored)
        study.by_state[stored.state].append(stored.number)
        if stored.state is TrialState.WAITING:
            study.queue.append(stored.number)
        if score is not None:
            study.add_score(float(score), stored.number)
        if request_id is not None:
            study.requests[request_id.value] = (f"D:C:{stored.number}", now + request_id.ttl)
            _note(study, request_id)
        return copy.deepcopy(stored)

    async def complete_trial(
        self,
        namespace: str,
        study_id: str,
        number: int,
        *,
        values: Mapping[str, float] | None,
        failure_reason: str | None,
        metadata: Mapping[str, str],
        now: float,
        score: float | None = None,
        uid: str | None = None,
        request_id: RequestId | None = None,
    ) -> Trial:
        """See :meth:`Store.complete_trial`."""
        state = check_completion(values, failure_reason, score)
        if score is not None:
            score_text(score)
        study = self._study(namespace, study_id)
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        if request_id is not None:
            rec = study.find_request(request_id.value, now)
            if rec is not None:
                if rec == f"D:T:{number}":
                    if _mismatch(study.fingerprints.get(request_id.value, ""), request_id):
                        raise store_error("REQUEST_ID_MISMATCH", study_id, None, _kind(rec))
                    return self._copy(study, number)
                raise store_error("REQUEST_ID_REUSED", study_id, None, _kind(rec))
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        trial = study.trials[number - 1]
        if trial.state is TrialState.RUNNING:
            study.leases.pop(number, None)
            study.release(number)
            study.set_state(trial, state)
        elif number in study.expired:
            # A late result, taken once: values complete the trial and withdraw its point from
            # the re-issue queue if still there; a failure only replaces the reason.
            study.expired.discard(number)
            if state is TrialState.COMPLETED:
                study.set_state(trial, state)
                i = bisect.bisect_left(study.reissue, number)
                if i < len(study.reissue) and study.reissue[i] == number:
                    del study.reissue[i]
        else:
            raise store_error("TRIAL_NOT_RUNNING", study_id, number, trial.state.value)
        if values is not None:
            trial.values = dict(values)
            trial.failure_reason = ""
        if failure_reason is not None:
            trial.failure_reason = failure_reason
        trial.complete_time = now
        trial.metadata.update(metadata)
        trial.lease_expire_time = None
        if score is not None:
            study.add_score(float(score), number)
        if request_id is not None:
            study.requests[request_id.value] = (f"D:T:{number}", now + request_id.ttl)
            _note(study, request_id)
        return copy.deepcopy(trial)

    # --- leases ------------------------------------------------------------------------------

    async def heartbeat_trial(
        self, namespace: str, study_id: str, number: int, *, now: float, lease_timeout: float
    ) -> Trial:
        """See :meth:`Store.heartbeat_trial`."""
        study = self._study(namespace, study_id)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        trial = study.trials[number - 1]
        if trial.state is TrialState.RUNNING:
            deadline = study.leases.get(number)
            if deadline is not None and deadline < now:
                study.expire_one(number, now)
                raise store_error("TRIAL_NOT_RUNNING", study_id, number, "FAILED:expired")
            study.leases[number] = now + lease_timeout
            return self._copy(study, number)
        detail = "FAILED:expired" if number in study.expired else trial.state.value
        raise store_error("TRIAL_NOT_RUNNING", study_id, number, detail)

    async def expire_leases(self, *, now: float, limit: int = 1000) -> int:
        """See :meth:`Store.expire_leases`: looks at every study that holds a lease."""
        total = 0
        due = [
            s
            for studies in self._studies.values()
            for s in studies.values()
            if s.leases and min(s.leases.values()) < now
        ]
        for study in due[:limit]:
            total += study.expire_due(now, len(study.leases))
        return total

    # --- reading trials ----------------------------------------------------------------------

    async def get_trial(
        self, namespace: str, study_id: str, number: int, *, now: float | None = None
    ) -> Trial:
        """See :meth:`Store.get_trial`."""
        study = self._study(namespace, study_id)
        if now is not None:
            study.expire_due(now, EXPIRE_BATCH)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        return self._copy(study, number)

    async def list_trials(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        now: float | None = None,
    ) -> tuple[list[Trial], bool]:
        """See :meth:`Store.list_trials`."""
        check_page_size(page_size)
        study = self._study(namespace, study_id)
        if now is not None:
            study.expire_due(now, EXPIRE_BATCH)
        if states is None:
            start = max(after, 0)
            page = range(start + 1, min(start + page_size, len(study.trials)) + 1)
            return [self._copy(study, n) for n in page], start + page_size < len(study.trials)
        runs = []
        for state in set(states):
            numbers = study.by_state[state]
            i = bisect.bisect_right(numbers, after)
            runs.append(numbers[i : i + page_size + 1])
        merged = list(itertools.islice(heapq.merge(*runs), page_size + 1))
        return [self._copy(study, n) for n in merged[:page_size]], len(merged) > page_size

    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """See :meth:`Store.best_trial`."""
        study = self._study(namespace, study_id)
        if study.best is None:
            return None
        return self._copy(study, study.best[1])
