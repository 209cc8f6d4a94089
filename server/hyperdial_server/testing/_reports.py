"""Early stopping, the life of a report: what ``add_measurement`` takes and refuses, leases,
STOPPED trials (by the policy or by the worker), request ids, thinned curves and the views
that read them."""

from __future__ import annotations

import pytest

from hyperdial_server.core.early_stopping import (
    DEFAULT_MAX_MEASUREMENTS,
    Decision,
    PercentileRule,
    Rule,
    SuccessiveHalving,
    Threshold,
)
from hyperdial_server.core.errors import FailedPrecondition, InvalidArgument, NotFound
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store import StaleStudy, Store
from hyperdial_server.testing._early_stopping import es_study, policy, report
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    enqueue,
    fail,
    frid,
    make_record,
    mismatch,
    rid,
)

#: Stops any value worse than 1 (lower is better), from step 0.
STRICT = policy(Threshold(threshold=1.0))
#: The median rule, deciding from the first other trial.
MEDIAN = policy(PercentileRule(median=True))


async def stop(
    s: Store, ns: str, study_id: str, number: int, reason: str = "diverged", **kw: object
) -> Trial:
    """The worker stops trial ``number`` itself (``complete_trial`` with ``stop_reason``)."""
    return await s.complete_trial(
        ns,
        study_id,
        number,
        values=None,
        failure_reason=None,
        stop_reason=reason,
        metadata={"why": reason},
        now=50.0,
        **kw,  # type: ignore[arg-type]
    )


class ReportContract(ContractBase):
    """Early stopping, the life of a report (``add_measurement``, ``check_early_stopping``,
    ``complete_trial`` with ``stop_reason``, ``with_measurements``)."""

    def test_a_report_is_a_heartbeat_and_counts(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = await es_study(s, namespace, 1)
            sid = rec.study_id
            assert await s.check_early_stopping(namespace, sid, 1) == Decision(False, 0)
            trial, got = await report(s, namespace, rec, 1, 3, 0.5, es=None, now=590.0, lease=20)
            assert got == Decision(False, 3)
            assert (trial.state, trial.lease_expire_time, trial.measurement_count) == (
                TrialState.RUNNING,
                610.0,
                1,
            )
            assert trial.measurements == []  # never the curve: the answer is BASIC
            # Past the lease of the ask (600), the report kept the trial alive.
            assert (await s.get_trial(namespace, sid, 1, now=605.0)).state is TrialState.RUNNING
            await report(s, namespace, rec, 1, 4, 0.25, es=None, now=606.0, lease=20)
            assert await s.check_early_stopping(namespace, sid, 1) == Decision(False, 4)
            got_trial = await s.get_trial(namespace, sid, 1)
            assert (got_trial.measurement_count, got_trial.lease_expire_time) == (2, 626.0)
            done = await complete(s, namespace, rec, 1, 0.1)
            assert (done.measurement_count, done.stop) == (2, None)
            # The last decision stays readable after the trial ends.
            assert await s.check_early_stopping(namespace, sid, 1) == Decision(False, 4)

        store.run(body)

    def test_steps_never_go_back(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = await es_study(s, namespace, 2)
            await report(s, namespace, rec, 2, 5, 0.25, es=MEDIAN)
            _, first = await report(s, namespace, rec, 1, 5, 0.5, es=MEDIAN, now=2.0)
            assert (first.stop, first.compared) == (True, 1)
            _, first = await report(s, namespace, rec, 2, 7, 0.5, es=MEDIAN, now=2.0)
            for step, value in [(6, 0.5), (7, 0.4)]:
                with pytest.raises(FailedPrecondition) as e:
                    await report(s, namespace, rec, 2, step, value, es=MEDIAN, now=3.0)
                assert e.value.reason == "STEP_NOT_INCREASING"
                assert e.value.metadata == {"last_step": "7"}
            # The last report again (a retry without request id): its decision, lease renewed,
            # nothing recorded.
            trial, again = await report(s, namespace, rec, 2, 7, 0.5, es=MEDIAN, now=4.0)
            assert again == first
            assert (trial.measurement_count, trial.lease_expire_time) == (2, 604.0)
            full = await s.get_trial(namespace, rec.study_id, 2, with_measurements=True)
            assert [m.step for m in full.measurements] == [5, 7]

        store.run(body)

    def test_only_a_running_trial_reports(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c = await claim(s, namespace, rec, 4, now=0.0, lease=10.0)
            await enqueue(s, namespace, rec)  # 1 WAITING
            await commit(s, namespace, rec, c, now=0.0, lease=10.0)  # 2..5 RUNNING
            await complete(s, namespace, rec, 2, 0.5)
            await fail(s, namespace, rec, 3)
            await report(s, namespace, rec, 4, 1, 5.0, es=STRICT, now=1.0, lease=10.0)
            for number, detail in [(1, "WAITING"), (2, "COMPLETED"), (3, "FAILED"), (4, "STOPPED")]:
                with pytest.raises(FailedPrecondition) as e:
                    await report(s, namespace, rec, number, 9, 0.5, es=STRICT, now=2.0)
                assert (e.value.reason, e.value.metadata) == (
                    "TRIAL_NOT_RUNNING",
                    {"state": detail},
                )
                with pytest.raises(FailedPrecondition) as e:
                    await s.heartbeat_trial(namespace, rec.study_id, number, now=2, lease_timeout=1)
                assert e.value.metadata == {"state": detail}
            # A lease found expired expires, as for a heartbeat.
            for _ in range(2):
                with pytest.raises(FailedPrecondition) as e:
                    await report(s, namespace, rec, 5, 1, 0.5, es=STRICT, now=10.5)
                assert e.value.metadata == {"state": "FAILED", "lease_expired": "true"}
            with pytest.raises(NotFound) as nf:
                await report(s, namespace, rec, 9, 1, 0.5, es=STRICT)
            assert nf.value.reason == "TRIAL_NOT_FOUND"
            for call in (
                s.check_early_stopping(namespace, rec.study_id, 9),
                s.check_early_stopping(namespace, "ghost", 1),
            ):
                with pytest.raises(NotFound):
                    await call
            ghost = make_record("ghost")
            with pytest.raises(NotFound) as nf:
                await report(s, namespace, ghost, 1, 1, 0.5, es=STRICT)
            assert nf.value.reason == "STUDY_NOT_FOUND"
            stale = make_record(rec.study_id)  # another uid
            with pytest.raises(StaleStudy):
                await report(s, namespace, stale, 5, 1, 0.5, es=STRICT)

        store.run(body)

    def test_a_trial_told_to_stop_is_stopped_at_once(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c = await claim(s, namespace, rec, 2, now=0.0, lease=10.0, client_id="w")
            await commit(s, namespace, rec, c, now=0.0, lease=10.0, client_id="w")
            sid = rec.study_id
            trial, got = await report(s, namespace, rec, 1, 2, 3.0, es=STRICT, now=5.0, lease=10)
            assert (got.stop, got.rule, got.step) == (True, Rule.THRESHOLD, 2)
            assert got.message == "value 3 is worse than the threshold 1"
            assert (trial.state, trial.values, trial.stop) == (
                TrialState.STOPPED,
                {"loss": 3.0, "acc": 0.5},
                got,
            )
            assert (trial.complete_time, trial.lease_expire_time, trial.failure_reason) == (
                5.0,
                None,
                "",
            )
            assert await s.get_trial(namespace, sid, 1) == trial
            assert await s.check_early_stopping(namespace, sid, 1) == got
            # Its client holds only trial 2 now; long after its lease would have expired, the
            # stopped trial is neither failed nor handed out again.
            resumed = await claim(
                s, namespace, rec, 5, now=6.0, capacity=2, client_id="w", lease=10
            )
            assert [t.number for t in resumed.trials] == [2]
            assert (await s.get_trial(namespace, sid, 1, now=100.0)).state is TrialState.STOPPED
            later = await claim(s, namespace, rec, 5, now=101.0, capacity=2)
            assert [r.source for r in later.reissues] == [2]
            stopped, _ = await s.list_trials(
                namespace, sid, states=[TrialState.STOPPED], page_size=10
            )
            assert [t.number for t in stopped] == [1]
            mixed, _ = await s.list_trials(
                namespace, sid, states=[TrialState.STOPPED, TrialState.FAILED], page_size=10
            )
            assert [(t.number, t.state) for t in mixed] == [
                (1, TrialState.STOPPED),
                (2, TrialState.FAILED),
            ]
            assert (await s.get_study(namespace, sid)).trial_count == 2
            # A stopped trial takes no result: values or a failure are refused.
            with pytest.raises(FailedPrecondition) as e:
                await complete(s, namespace, rec, 1, 0.5)
            assert e.value.metadata == {"state": "STOPPED"}

        store.run(body)

    def test_the_worker_stops_a_trial_itself(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = await es_study(s, namespace, 3)
            sid = rec.study_id
            await report(s, namespace, rec, 1, 4, 0.75, es=MEDIAN, elapsed=3.5)
            await report(s, namespace, rec, 1, 6, 0.5, es=MEDIAN)
            done = await stop(s, namespace, sid, 1)
            want = Decision(True, 6, Rule.WORKER, message="diverged")
            assert (done.state, done.values, done.stop) == (
                TrialState.STOPPED,
                {"loss": 0.5, "acc": 0.5},
                want,
            )
            assert (done.complete_time, done.metadata, done.measurement_count) == (
                50.0,
                {"why": "diverged"},
                2,
            )
            assert await s.check_early_stopping(namespace, sid, 1) == want
            # Idempotent: a stop of a stopped trial answers it as it is.
            assert await stop(s, namespace, sid, 1, "again") == done
            # A trial that never reported stops without values, at step 0.
            bare = await stop(s, namespace, sid, 2, "")
            assert (bare.values, bare.stop) == (None, Decision(True, 0, Rule.WORKER))
            # After a stop by the policy, the worker's own stop answers the trial as it is.
            policy_stopped, _ = await report(s, namespace, rec, 3, 1, 9.0, es=STRICT)
            assert await stop(s, namespace, sid, 3, "late") == policy_stopped
            assert (await s.get_trial(namespace, sid, 3)).metadata == {}

        store.run(body)

    def test_a_late_stop_of_a_lease_expired_trial_withdraws_its_point(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c = await claim(s, namespace, rec, 2, now=0.0, lease=10.0)
            await commit(s, namespace, rec, c, now=0.0, lease=10.0)
            await report(s, namespace, rec, 1, 3, 0.5, es=MEDIAN, now=1.0, lease=10.0)
            expired = await s.get_trial(namespace, rec.study_id, 1, now=20.0)
            assert expired.state is TrialState.FAILED
            late = await stop(s, namespace, rec.study_id, 1)
            assert (late.state, late.failure_reason, late.values) == (
                TrialState.STOPPED,
                "",
                {"loss": 0.5, "acc": 0.5},
            )
            # Only trial 2's point is handed out again; a late stop is taken once.
            again = await claim(s, namespace, rec, 5, now=21.0, capacity=2)
            assert [r.source for r in again.reissues] == [2]
            assert await stop(s, namespace, rec.study_id, 1) == late

        store.run(body)

    def test_stopped_trials_are_ranked_when_their_reports_carry_a_score(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ranked = policy(Threshold(threshold=1.0), rank_stopped_trials=True)
            rec = await es_study(s, namespace, 4)
            sid = rec.study_id
            await complete(s, namespace, rec, 1, 2.0, score=2.0)
            # Stopped by the policy: ranked by the report's score.
            await report(s, namespace, rec, 2, 1, 1.5, es=ranked, score=1.5)
            assert (await s.best_trial(namespace, sid)).number == 2  # type: ignore[union-attr]
            # Stopped by the worker: ranked by the score of its last report.
            await report(s, namespace, rec, 3, 1, 0.5, es=ranked, score=0.5)
            assert (await s.best_trial(namespace, sid)).number == 2  # type: ignore[union-attr]
            await stop(s, namespace, sid, 3)
            assert (await s.best_trial(namespace, sid)).number == 3  # type: ignore[union-attr]
            # Reports without a score (a study that does not rank stopped trials): unranked.
            await report(s, namespace, rec, 4, 1, 0.1, es=STRICT)
            await stop(s, namespace, sid, 4)
            assert (await s.best_trial(namespace, sid)).number == 3  # type: ignore[union-attr]

        store.run(body)

    def test_a_retried_report_gets_the_first_answer_and_changes_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = await es_study(s, namespace, 3)
            sid = rec.study_id
            await report(s, namespace, rec, 1, 2, 0.25, es=MEDIAN)
            ask = frid("r-2", "F1")
            first, got = await report(s, namespace, rec, 2, 2, 0.5, es=MEDIAN, request_id=ask)
            assert got.stop and first.state is TrialState.STOPPED
            # Retried, even at a later time: the same decision, the trial as it is now.
            again, replay = await report(
                s, namespace, rec, 2, 2, 0.5, es=MEDIAN, request_id=ask, now=9.0
            )
            assert (again, replay) == (first, got)
            cont = frid("r-3", "F1")
            t3, got3 = await report(s, namespace, rec, 3, 2, 0.1, es=MEDIAN, request_id=cont)
            await report(s, namespace, rec, 3, 4, 0.1, es=MEDIAN)
            again3, replay3 = await report(
                s, namespace, rec, 3, 2, 0.1, es=MEDIAN, request_id=cont, now=3.0
            )
            assert replay3 == got3 and again3.measurement_count == 2  # as it is now
            assert (await s.get_trial(namespace, sid, 3)).lease_expire_time == 601.0
            # Another payload under the same id is refused; so is an id of another call.
            await mismatch(
                report(s, namespace, rec, 3, 2, 0.1, es=MEDIAN, request_id=frid("r-3", "F2")),
                "AddTrialMeasurement",
            )
            with pytest.raises(InvalidArgument) as e:
                await report(s, namespace, rec, 1, 3, 0.1, es=MEDIAN, request_id=rid("r-3"))
            assert e.value.reason == "REQUEST_ID_REUSED"
            with pytest.raises(InvalidArgument) as e:
                await s.complete_trial(
                    namespace,
                    sid,
                    3,
                    values={"loss": 1.0},
                    failure_reason=None,
                    metadata={},
                    now=5.0,
                    request_id=rid("r-3"),
                )
            assert (e.value.reason, "AddTrialMeasurement" in e.value.message) == (
                "REQUEST_ID_REUSED",
                True,
            )

        store.run(body)

    def test_curves_are_thinned_within_the_cap_keeping_rungs_and_the_last(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            # Rungs at steps 4 and 16 (η 4): protected; the cap is 6.
            es = policy(SuccessiveHalving(min_resource=4, reduction_factor=4), max_measurements=6)
            rec = await es_study(s, namespace, 1)
            kept: list[int] = []
            stride = 1
            for step in range(1, 21):
                await report(s, namespace, rec, 1, step, 1.0 / step, es=es, elapsed=step / 2)
                kept, stride = _thinned(kept, step, {4, 16}, 6, stride)
                trial = await s.get_trial(namespace, rec.study_id, 1, with_measurements=True)
                assert [m.step for m in trial.measurements] == kept, step
                assert trial.measurement_count == step
            assert kept == [4, 8, 12, 16, 20]
            last = trial.measurements[-1]
            assert last == Measurement(20, {"loss": 0.05, "acc": 0.5}, 10.0)
            # Without a policy, the default cap.
            rec = await es_study(s, namespace, 1)
            for step in range(DEFAULT_MAX_MEASUREMENTS + 1):
                await report(s, namespace, rec, 1, step, 0.5, es=None)
            trial = await s.get_trial(namespace, rec.study_id, 1, with_measurements=True)
            assert len(trial.measurements) <= DEFAULT_MAX_MEASUREMENTS
            assert trial.measurements[-1].step == DEFAULT_MAX_MEASUREMENTS

        store.run(body)

    def test_views_with_and_without_measurements(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = await es_study(s, namespace, 3)
            sid = rec.study_id
            await report(s, namespace, rec, 1, 1, 0.5, es=None, elapsed=1.0)
            await report(s, namespace, rec, 1, 2, 0.25, es=None)
            await report(s, namespace, rec, 3, 1, 0.125, es=None)
            basic = await s.get_trial(namespace, sid, 1)
            full = await s.get_trial(namespace, sid, 1, with_measurements=True)
            assert (basic.measurements, basic.measurement_count) == ([], 2)
            assert full.measurements == [
                Measurement(1, {"loss": 0.5, "acc": 0.5}, 1.0),
                Measurement(2, {"loss": 0.25, "acc": 0.5}, None),
            ]
            assert full == Trial(**{**basic.__dict__, "measurements": full.measurements})
            page, _ = await s.list_trials(namespace, sid, page_size=10)
            assert [(t.measurement_count, t.measurements) for t in page] == [
                (2, []),
                (0, []),
                (1, []),
            ]
            page, _ = await s.list_trials(namespace, sid, page_size=10, with_measurements=True)
            assert [[m.step for m in t.measurements] for t in page] == [[1, 2], [], [1]]
            assert page[0] == full
            encoded, _ = await s.list_trial_page(
                namespace, sid, page_size=2, with_measurements=True, after=1
            )
            assert [len(t.measurements) for t in encoded.decode()] == [0, 1]
            # Every trial a store hands out carries its count: a completed one, a resumed one.
            done = await complete(s, namespace, rec, 3, 0.5)
            assert done.measurement_count == 1
            held = make_record("held")
            await s.create_study(namespace, held)
            c = await claim(s, namespace, held, 1, client_id="w")
            await commit(s, namespace, held, c, client_id="w")
            await report(s, namespace, held, 1, 1, 0.5, es=None)
            resumed = await claim(s, namespace, held, 1, client_id="w", now=2.0)
            assert [(t.number, t.measurement_count) for t in resumed.trials] == [(1, 1)]

        store.run(body)


def _thinned(
    kept: list[int], new: int, protected: set[int], cap: int, stride: int
) -> tuple[list[int], int]:
    """The contract's thinning, for a trial whose n-th report is at step n: the previous last
    report stays if protected or on the stride; past the cap, passes double the stride and
    drop the unprotected reports off it (every other one, the oldest first), the last kept."""
    if kept and kept[-1] % stride and kept[-1] not in protected:
        kept = kept[:-1]
    kept = [*kept, new]
    while len(kept) > cap and any(x not in protected for x in kept[:-1]):
        stride *= 2
        kept = [x for x in kept[:-1] if x in protected or x % stride == 0] + [new]
    return kept, stride
