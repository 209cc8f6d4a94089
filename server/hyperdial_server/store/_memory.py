"""``MemoryStore``: the embedded default store, for one replica.

Atomicity: every method runs from start to end without an ``await`` in the middle, so on the
one event loop that owns the store no other call can see or interleave with a half-done step.
That is the whole concurrency mechanism; the store is not meant to be shared between threads
or event loops. Records go in and come out as deep copies (pass by value).
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

from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store._base import DEFAULT_CLAIM_TTL, Claim, Store
from hyperdial_server.store._codec import (
    check_claim_args,
    check_completion,
    check_new_trial,
    check_page_size,
    check_points,
    score_text,
    store_error,
)


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
    claims: dict[int, tuple[str, float]] = field(default_factory=dict)  # index -> token, deadline
    best: tuple[float, int] | None = None  # (score, number) of the best trial

    def set_state(self, trial: Trial, state: TrialState) -> None:
        old = self.by_state[trial.state]
        del old[bisect.bisect_left(old, trial.number)]
        bisect.insort(self.by_state[state], trial.number)
        trial.state = state

    def add_score(self, score: float, number: int) -> None:
        if self.best is None or (score, number) < self.best:
            self.best = (score, number)


class MemoryStore(Store):
    """All state in this process's memory; lost when it exits. See :mod:`._memory`."""

    def __init__(self) -> None:
        self._studies: dict[str, dict[str, _Study]] = {}
        # Per namespace: study ids in ascending order, for paging.
        self._ids: dict[str, list[str]] = {}

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

    async def close(self) -> None:
        """Nothing to release."""

    async def ping(self) -> None:
        """Always answers."""

    async def create_study(self, namespace: str, study: StudyRecord) -> StudyRecord:
        """See :meth:`Store.create_study`."""
        studies = self._studies.setdefault(namespace, {})
        if study.study_id in studies:
            raise store_error("STUDY_ALREADY_EXISTS", study.study_id)
        stored = _Study(dataclasses.replace(copy.deepcopy(study), trial_count=0))
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

    async def delete_study(self, namespace: str, study_id: str) -> None:
        """See :meth:`Store.delete_study`."""
        self._study(namespace, study_id)
        del self._studies[namespace][study_id]
        ids = self._ids[namespace]
        del ids[bisect.bisect_left(ids, study_id)]

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
    ) -> Claim:
        """See :meth:`Store.claim_trials`."""
        check_claim_args(count)
        study = self._checked(namespace, study_id, uid)
        left = count
        budget = None if max_trials is None else max_trials - study.handed_out
        claim = Claim()
        # 1. Enqueued trials, oldest first; each counts against max_trials.
        while left > 0 and (budget is None or budget > 0) and study.queue:
            trial = study.trials[study.queue.popleft() - 1]
            study.set_state(trial, TrialState.RUNNING)
            trial.client_id = client_id
            claim.trials.append(copy.deepcopy(trial))
            left -= 1
            study.handed_out += 1
            if budget is not None:
                budget -= 1
        if left == 0:
            return claim
        token = secrets.token_hex(8)
        deadline = now + claim_ttl
        # 2. Indices whose claim expired uncommitted: counted already when first claimed. Same
        # order as the Redis store: by deadline, then by the member text "<index>:<token>".
        expired = sorted((d, f"{i}:{t}", i) for i, (t, d) in study.claims.items() if d < now)[:left]
        for _, _, index in expired:
            study.claims[index] = (token, deadline)
            claim.indices.append(index)
        left -= len(expired)
        # 3. Fresh indices from the counter, below capacity and within max_trials.
        take = left if budget is None else min(left, budget)
        if capacity is not None:
            take = min(take, capacity - study.next_index)
        for index in range(study.next_index, study.next_index + max(take, 0)):
            study.claims[index] = (token, deadline)
            claim.indices.append(index)
        if take > 0:
            study.next_index += take
            study.handed_out += take
        if claim.indices:
            claim.token = token
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
    ) -> list[Trial]:
        """See :meth:`Store.commit_trials`."""
        check_points(points)
        study = self._checked(namespace, study_id, uid)
        # A claim past its deadline that nobody took again is still ours: only its absence
        # (committed, or re-taken under another token) is refused.
        if any(study.claims.get(index, (None, 0.0))[0] != token for index, _ in points):
            raise store_error("CLAIM_EXPIRED", study_id)
        out: list[Trial] = []
        for index, params in points:
            del study.claims[index]
            trial = Trial(
                number=len(study.trials) + 1,
                state=TrialState.RUNNING,
                params=copy.deepcopy(params),
                client_id=client_id,
                create_time=now,
            )
            study.trials.append(trial)
            study.by_state[TrialState.RUNNING].append(trial.number)
            out.append(copy.deepcopy(trial))
        return out

    async def create_trial(
        self,
        namespace: str,
        study_id: str,
        trial: Trial,
        *,
        score: float | None = None,
        uid: str | None = None,
    ) -> Trial:
        """See :meth:`Store.create_trial`."""
        check_new_trial(trial, score)
        if score is not None:
            score_text(score)  # refuses NaN, like the Redis store
        study = self._study(namespace, study_id)
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        stored = dataclasses.replace(copy.deepcopy(trial), number=len(study.trials) + 1)
        study.trials.append(stored)
        study.by_state[stored.state].append(stored.number)
        if stored.state is TrialState.WAITING:
            study.queue.append(stored.number)
        if score is not None:
            study.add_score(float(score), stored.number)
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
    ) -> Trial:
        """See :meth:`Store.complete_trial`."""
        state = check_completion(values, failure_reason, score)
        if score is not None:
            score_text(score)
        study = self._study(namespace, study_id)
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        trial = study.trials[number - 1]
        if trial.state is not TrialState.RUNNING:
            raise store_error("TRIAL_NOT_RUNNING", study_id, number, trial.state.value)
        study.set_state(trial, state)
        if values is not None:
            trial.values = dict(values)
        if failure_reason is not None:
            trial.failure_reason = failure_reason
        trial.complete_time = now
        trial.metadata.update(metadata)
        if score is not None:
            study.add_score(float(score), number)
        return copy.deepcopy(trial)

    async def get_trial(self, namespace: str, study_id: str, number: int) -> Trial:
        """See :meth:`Store.get_trial`."""
        study = self._study(namespace, study_id)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        return copy.deepcopy(study.trials[number - 1])

    async def list_trials(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
    ) -> tuple[list[Trial], bool]:
        """See :meth:`Store.list_trials`."""
        check_page_size(page_size)
        study = self._study(namespace, study_id)
        if states is None:
            start = max(after, 0)
            page = study.trials[start : start + page_size]
            return [copy.deepcopy(t) for t in page], start + page_size < len(study.trials)
        runs = []
        for state in set(states):
            numbers = study.by_state[state]
            i = bisect.bisect_right(numbers, after)
            runs.append(numbers[i : i + page_size + 1])
        merged = list(itertools.islice(heapq.merge(*runs), page_size + 1))
        page = [copy.deepcopy(study.trials[n - 1]) for n in merged[:page_size]]
        return page, len(merged) > page_size

    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """See :meth:`Store.best_trial`."""
        study = self._study(namespace, study_id)
        if study.best is None:
            return None
        return copy.deepcopy(study.trials[study.best[1] - 1])
