"""``TrialMethods``: results, leases, intermediate reports and reads of
:class:`._memory.MemoryStore` (the Redis store's ``_redis_trials.py`` and
``_redis_reports.py``), and the two helpers every method of the store uses.

Atomicity is the store's (see :mod:`._memory`): no method awaits between its first read and
its last write.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence

from hyperdial_server.core.early_stopping import (
    Decision,
    EarlyStopping,
    Rule,
    RungValue,
    StepValue,
)
from hyperdial_server.core.errors import NotFound
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store._base import (
    EXPIRE_BATCH,
    PERCENTILE_STEPS,
    RequestId,
    Store,
    check_front_allowed,
    check_front_vector,
)
from hyperdial_server.store._checks import (
    check_completion,
    check_list_position,
    check_measurement,
    check_page_size,
    check_window,
)
from hyperdial_server.store._codec import score_text
from hyperdial_server.store._codec_reports import values_json
from hyperdial_server.store._errors import store_error
from hyperdial_server.store._memory_reports import measured, report
from hyperdial_server.store._memory_state import Answered, Call, MemoryStudy, fingerprint_mismatch


class TrialMethods(Store):
    """The trial methods of :class:`._memory.MemoryStore`, which owns ``_studies``."""

    #: Namespace -> study id -> its state.
    _studies: dict[str, dict[str, MemoryStudy]]

    def _study(self, namespace: str, study_id: str) -> MemoryStudy:
        study = self._studies.get(namespace, {}).get(study_id)
        if study is None:
            raise store_error("STUDY_NOT_FOUND", study_id)
        return study

    @staticmethod
    def _copy(study: MemoryStudy, number: int, with_measurements: bool = False) -> Trial:
        trial = copy.deepcopy(study.trials[number - 1])
        trial.lease_expire_time = study.leases.get(number)
        reports = study.reports.get(number)
        if with_measurements and reports is not None:
            trial.measurements = [copy.deepcopy(k.measurement) for k in reports.curve]
        return trial

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
        stop_reason: str | None = None,
        infeasible_reason: str | None = None,
        front_vector: Sequence[float] | None = None,
    ) -> Trial:
        """See :meth:`Store.complete_trial`."""
        state = check_completion(values, failure_reason, score, stop_reason, infeasible_reason)
        check_front_allowed(front_vector, state)
        vector = None if front_vector is None else check_front_vector(front_vector)
        if score is not None:
            score_text(score)
        study = self._study(namespace, study_id)
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        if request_id is not None:
            got = study.find_request(request_id.value, now)
            if got is not None:
                rec = got.record
                if rec == Answered(Call.COMPLETE, (number,)):
                    if fingerprint_mismatch(got.fingerprint, request_id):
                        raise store_error("REQUEST_ID_MISMATCH", study_id, None, rec.call.value)
                    return self._copy(study, number)
                raise store_error("REQUEST_ID_REUSED", study_id, None, rec.call.value)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        trial = study.trials[number - 1]
        if state is TrialState.STOPPED and trial.state is TrialState.STOPPED:
            # Stopped already (by the policy at a report, or by an earlier stop): as it is.
            self._answer(study, request_id, number, now)
            return self._copy(study, number)
        if trial.state is TrialState.RUNNING:
            study.leases.pop(number, None)
            study.release(number)
            study.set_state(trial, state)
        elif number in study.expired:
            # A late result, taken once: values, a stop or an infeasible verdict end the trial
            # and withdraw its point from the re-issue queue if still there; a failure only
            # replaces the reason.
            study.expired.discard(number)
            if state is not TrialState.FAILED:
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
        if infeasible_reason is not None:
            # One stored field for both: Trial.failure_reason says why it is INFEASIBLE.
            trial.failure_reason = infeasible_reason
        if stop_reason is not None:
            # Its last report's values, and that report's score unless given one.
            reports = study.reports.get(number)
            trial.values = None if reports is None else dict(reports.curve[-1].measurement.values)
            trial.failure_reason = ""
            step = 0 if reports is None else reports.last_step
            trial.stop = Decision(True, step, Rule.WORKER, message=stop_reason)
            if reports is not None:
                reports.decision = trial.stop
                score = reports.score if score is None else score
                vector = reports.front_vector if vector is None else vector
        trial.complete_time = now
        trial.metadata.update(metadata)
        trial.lease_expire_time = None
        study.touch(number, now)
        if score is not None:
            study.add_score(float(score), number)
        if state in (TrialState.COMPLETED, TrialState.STOPPED):
            study.add_to_front(number, vector)
        self._answer(study, request_id, number, now)
        return copy.deepcopy(trial)

    @staticmethod
    def _answer(study: MemoryStudy, request_id: RequestId | None, number: int, now: float) -> None:
        """Records a result of trial ``number`` under ``request_id``, if any."""
        if request_id is not None:
            study.record_request(
                request_id,
                Answered(Call.COMPLETE, (number,)),
                now + request_id.ttl,
                fingerprint=request_id.fingerprint,
            )

    # --- leases ------------------------------------------------------------------------------

    def _running(self, study: MemoryStudy, study_id: str, number: int, now: float) -> Trial:
        """Trial ``number``, which must be RUNNING with a lease not expired (as a heartbeat
        needs it): a lease found expired expires, and TRIAL_NOT_RUNNING is raised."""
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        trial = study.trials[number - 1]
        if trial.state is TrialState.RUNNING:
            deadline = study.leases.get(number)
            if deadline is not None and deadline < now:
                study.expire_one(number, now)
                raise store_error("TRIAL_NOT_RUNNING", study_id, number, "FAILED:expired")
            return trial
        detail = "FAILED:expired" if number in study.expired else trial.state.value
        raise store_error("TRIAL_NOT_RUNNING", study_id, number, detail)

    async def heartbeat_trial(
        self, namespace: str, study_id: str, number: int, *, now: float, lease_timeout: float
    ) -> Trial:
        """See :meth:`Store.heartbeat_trial`."""
        study = self._study(namespace, study_id)
        self._running(study, study_id, number, now)
        study.leases[number] = now + lease_timeout
        study.touch(number, now)
        return self._copy(study, number)

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

    # --- intermediate reports ----------------------------------------------------------------

    async def add_measurement(
        self,
        namespace: str,
        study_id: str,
        number: int,
        measurement: Measurement,
        *,
        policy: EarlyStopping | None,
        now: float,
        lease_timeout: float,
        uid: str | None = None,
        request_id: RequestId | None = None,
        score: float | None = None,
        front_vector: Sequence[float] | None = None,
    ) -> tuple[Trial, Decision]:
        """See :meth:`Store.add_measurement`."""
        check_measurement(measurement, policy)
        vector = None if front_vector is None else check_front_vector(front_vector)
        if score is not None:
            score_text(score)
        study = self._study(namespace, study_id)
        if uid is not None and study.record.uid != uid:
            raise store_error("STALE_STUDY", study_id)
        if request_id is not None:
            got = study.find_request(request_id.value, now)
            if got is not None:
                rec = got.record
                if (
                    rec.call is Call.MEASURE
                    and isinstance(rec, Answered)
                    and rec.numbers == (number,)
                ):
                    if fingerprint_mismatch(got.fingerprint, request_id):
                        raise store_error("REQUEST_ID_MISMATCH", study_id, None, rec.call.value)
                    assert rec.decision is not None
                    return self._copy(study, number), rec.decision
                raise store_error("REQUEST_ID_REUSED", study_id, None, rec.call.value)
        trial = self._running(study, study_id, number, now)
        last = study.reports.get(number)
        if last is not None and measurement.step <= last.last_step:
            # Steps never go back; the last step with its values again is a repeat.
            repeat = values_json(measured(measurement).values) == last.last_values
            if measurement.step < last.last_step or not repeat:
                why = "" if measurement.step < last.last_step else ":values"
                raise store_error("STEP_NOT_INCREASING", study_id, number, f"{last.last_step}{why}")
            decision = last.decision
        else:
            decision = report(study, number, measurement, policy, score)
            study.reports[number].front_vector = vector
            trial.measurement_count += 1
        if decision.stop:
            # STOPPED at once, with this report's values; its point is not handed out again.
            study.leases.pop(number, None)
            study.release(number)
            study.set_state(trial, TrialState.STOPPED)
            trial.values = dict(measured(measurement).values)
            trial.complete_time = now
            trial.stop = decision
            if score is not None:
                study.add_score(float(score), number)
            # A repeated report of the stopping one cannot come: the trial is no longer
            # RUNNING, so this is the step that makes it a candidate.
            study.add_to_front(number, study.reports[number].front_vector)
        else:
            study.leases[number] = now + lease_timeout
        study.touch(number, now)
        if request_id is not None:
            study.record_request(
                request_id,
                Answered(Call.MEASURE, (number,), decision),
                now + request_id.ttl,
                fingerprint=request_id.fingerprint,
            )
        return self._copy(study, number), decision

    async def check_early_stopping(self, namespace: str, study_id: str, number: int) -> Decision:
        """See :meth:`Store.check_early_stopping`."""
        study = self._study(namespace, study_id)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        stop = study.trials[number - 1].stop
        if stop is not None:
            return stop
        reports = study.reports.get(number)
        return Decision(False, 0) if reports is None else reports.decision

    async def rung_values(
        self, namespace: str, study_id: str, numbers: Collection[int]
    ) -> list[RungValue]:
        """See :meth:`Store.rung_values`. O(numbers)."""
        try:
            study = self._study(namespace, study_id)
        except NotFound:
            return []
        return [v for n in set(numbers) for v in study.rung_records.get(n, ())]

    async def percentile_values(
        self, namespace: str, study_id: str, numbers: Collection[int]
    ) -> list[StepValue]:
        """See :meth:`Store.percentile_values`. O(numbers x PERCENTILE_STEPS)."""
        try:
            study = self._study(namespace, study_id)
        except NotFound:
            return []
        wanted = set(numbers)
        counts: dict[int, int] = {}
        for number in wanted:
            reports = study.reports.get(number)
            # A trial with reports exists (its number is in range).
            if reports is not None and study.trials[number - 1].state is TrialState.STOPPED:
                counts[reports.last_step] = counts.get(reports.last_step, 0) + 1
        steps = sorted(counts, key=lambda step: (-counts[step], step))[:PERCENTILE_STEPS]
        out: list[StepValue] = []
        for step in steps:
            recorded = study.step_records.get(step, {})
            out.extend(StepValue(n, step, recorded[n]) for n in wanted if n in recorded)
        return out

    # --- reading trials ----------------------------------------------------------------------

    async def get_trial(
        self,
        namespace: str,
        study_id: str,
        number: int,
        *,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> Trial:
        """See :meth:`Store.get_trial`."""
        study = self._study(namespace, study_id)
        if now is not None:
            study.expire_due(now, EXPIRE_BATCH)
        if not 1 <= number <= len(study.trials):
            raise store_error("TRIAL_NOT_FOUND", study_id, number)
        return self._copy(study, number, with_measurements)

    async def list_trial_page(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        after_revision: int = 0,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> tuple[TrialPage, bool]:
        """See :meth:`Store.list_trial_page`: O(page size + log n) work, the trials decoded."""
        check_page_size(page_size)
        check_list_position(after, after_revision)
        study = self._study(namespace, study_id)
        if now is not None:
            study.expire_due(now, EXPIRE_BATCH)
        numbers, more, last = self._page_numbers(study, states, page_size, after, after_revision)
        page = TrialPage(
            [self._copy(study, n, with_measurements) for n in numbers],
            last=last,
            revision=study.revision,
        )
        return page, more

    @staticmethod
    def _page_numbers(
        study: MemoryStudy,
        states: Collection[TrialState] | None,
        page_size: int,
        after: int,
        after_revision: int,
    ) -> tuple[list[int], bool, int]:
        """The numbers of a page of :meth:`list_trial_page`, whether more follow, and where
        the next page starts (see ``TrialPage.last``)."""
        wanted = set(TrialState) if states is None else set(states)
        if after_revision:
            if not wanted:
                return [], False, after_revision
            changed = study.changed_after(after_revision, page_size + 1)
            looked = changed[:page_size]
            numbers = [n for _, n in looked if study.trials[n - 1].state in wanted]
            last = looked[-1][0] if looked else after_revision
            return numbers, len(changed) > page_size, last
        if states is None:
            start = max(after, 0)
            page = list(range(start + 1, min(start + page_size, len(study.trials)) + 1))
            more = start + page_size < len(study.trials)
            return page, more, page[-1] if page else 0
        runs = []
        for state in wanted:
            numbers = study.by_state[state]
            i = bisect.bisect_right(numbers, after)
            runs.append(numbers[i : i + page_size + 1])
        merged = list(itertools.islice(heapq.merge(*runs), page_size + 1))
        page = merged[:page_size]
        return page, len(merged) > page_size, page[-1] if page else 0

    async def model_history(
        self,
        namespace: str,
        study_id: str,
        *,
        best: int,
        recent: int,
        running: int,
        front: bool = False,
        now: float | None = None,
    ) -> TrialPage:
        """See :meth:`Store.model_history`: O(best + recent + running + log n) work (and the
        front's size), the trials decoded."""
        check_window(best, recent, running)
        study = self._study(namespace, study_id)
        if now is not None:
            study.expire_due(now, EXPIRE_BATCH)
        if len(study.trials) <= best + recent:
            numbers = list(range(1, len(study.trials) + 1))
        else:
            if front:
                chosen = set(sorted(study.front)[:best])
            else:
                chosen = {n for _, n in study.score_order[:best]}
            chosen.update(study.change_numbers[max(len(study.change_numbers) - recent, 0) :])
            if running:
                chosen.update(study.by_state[TrialState.RUNNING][-running:])
            numbers = sorted(chosen)
        return TrialPage(
            [self._copy(study, n, False) for n in numbers],
            last=numbers[-1] if numbers else 0,
            revision=study.revision,
        )

    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """See :meth:`Store.best_trial`."""
        study = self._study(namespace, study_id)
        if study.best is None:
            return None
        return self._copy(study, study.best[1])

    async def pareto_front(
        self,
        namespace: str,
        study_id: str,
        *,
        vector: Callable[[Trial], Sequence[float] | None],
    ) -> list[Trial]:
        """See :meth:`Store.pareto_front`: the front kept as trials became candidates, O(front
        size); never computed afresh (a memory study is always this store's own)."""
        study = self._study(namespace, study_id)
        return [self._copy(study, n) for n in sorted(study.front)]
