"""INFEASIBLE trials: ``complete_trial`` with ``infeasible_reason`` (the point cannot give a
result), imported ones, and how every other call sees them."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

import pytest

from hyperdial_server.core.errors import FailedPrecondition, InvalidArgument, NotFound
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import LEASE_EXPIRED_REASON, StateCounts, Trial, TrialState
from hyperdial_server.store import RequestId, StaleStudy, Store
from hyperdial_server.testing._changes import change_pages, revision_of
from hyperdial_server.testing._early_stopping import es_study, report
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    enqueue,
    fail,
    frid,
    lease_study,
    make_record,
    mismatch,
    nothing,
    rid,
    running_trials,
    trial_pages,
)
from hyperdial_server.testing._reports import MEDIAN, STRICT, stop

C, F, R, S, W = (
    TrialState.COMPLETED,
    TrialState.FAILED,
    TrialState.RUNNING,
    TrialState.STOPPED,
    TrialState.WAITING,
)
INF = TrialState.INFEASIBLE


async def infeasible(
    s: Store,
    ns: str,
    rec: StudyRecord,
    number: int,
    reason: str = "diverged",
    *,
    now: float = 9.0,
    metadata: Mapping[str, str] | None = None,
    uid: str | None = None,
    request_id: RequestId | None = None,
) -> Trial:
    """The worker reports that trial ``number``'s parameters cannot give a result."""
    return await s.complete_trial(
        ns,
        rec.study_id,
        number,
        values=None,
        failure_reason=None,
        infeasible_reason=reason,
        metadata=metadata or {},
        now=now,
        uid=uid,
        request_id=request_id,
    )


async def refused(call: Awaitable[object], state: str) -> FailedPrecondition:
    """``call`` is refused as a call on a trial that is not RUNNING but ``state``; returns
    the error."""
    with pytest.raises(FailedPrecondition) as e:
        await call
    assert (e.value.reason, e.value.metadata) == ("TRIAL_NOT_RUNNING", {"state": state})
    return e.value


class InfeasibleContract(ContractBase):
    """INFEASIBLE trials: the verdict that a trial's parameters cannot give a result (unlike
    FAILED, where the infrastructure failed), its reason kept as ``Trial.failure_reason``,
    request ids, late verdicts on lease-expired trials, imported INFEASIBLE trials, and how
    counts, lists, changes, heartbeats and reports see them.
    """

    def test_an_infeasible_verdict_ends_a_running_trial(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = make_record()
            await s.create_study(ns, rec)
            sid = rec.study_id
            c = await claim(s, ns, rec, 2, now=0.0, lease=10.0, client_id="w")
            await commit(s, ns, rec, c, now=0.0, lease=10.0, client_id="w")
            await report(s, ns, rec, 1, 3, 0.5, es=None, now=1.0, lease=10.0)
            before = await revision_of(s, ns, rec)
            done = await infeasible(s, ns, rec, 1, "CUDA out of memory", metadata={"gpu": "0"})
            # No values, not even its last report's (a stop would take them), and no stop.
            assert (done.state, done.values, done.stop, done.failure_reason) == (
                INF,
                None,
                None,
                "CUDA out of memory",
            )
            assert (done.complete_time, done.lease_expire_time, done.client_id) == (9.0, None, "w")
            assert (done.metadata, done.measurement_count) == ({"gpu": "0"}, 1)
            assert done.revision == before + 1
            assert await s.get_trial(ns, sid, 1) == done
            # A change like any other: the study's revision, update_time, counts, the feed.
            study = await s.get_study(ns, sid)
            assert (study.revision, study.update_time, study.state_counts) == (
                before + 1,
                9.0,
                StateCounts(running=1, infeasible=1),
            )
            assert study.state_counts.total == study.trial_count == 2
            assert await s.list_studies(ns, 10) == ([study], False)
            assert await s.list_trials(ns, sid, page_size=10, after_revision=before) == (
                [done],
                False,
            )
            assert await s.best_trial(ns, sid) is None
            # Its client no longer holds it: a resume hands out trial 2 only.
            resumed = await claim(s, ns, rec, 5, now=9.5, capacity=2, client_id="w", lease=10.0)
            assert [t.number for t in resumed.trials] == [2]
            # The reason may be empty.
            bare = await infeasible(s, ns, rec, 2, "", now=9.75)
            assert (bare.state, bare.failure_reason) == (INF, "")
            # Exactly one outcome, and no score: the caller's mistakes, refused before anything.
            for wrong in (
                {"values": {"loss": 1.0}, "failure_reason": None},
                {"values": None, "failure_reason": "oom"},
                {"values": None, "failure_reason": None, "stop_reason": ""},
                {"values": None, "failure_reason": None, "score": 0.5},
            ):
                with pytest.raises(ValueError):
                    await s.complete_trial(
                        ns,
                        sid,
                        1,
                        infeasible_reason="x",
                        metadata={},
                        now=10.0,
                        **wrong,
                    )
            assert await revision_of(s, ns, rec) == before + 3  # the verdicts and the resume

        store.run(body)

    def test_an_infeasible_verdict_needs_a_running_trial_and_ends_it_for_good(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = make_record()
            await s.create_study(ns, rec)
            sid = rec.study_id
            await running_trials(s, ns, rec, 5)  # 1..5
            await enqueue(s, ns, rec)  # 6 WAITING
            await complete(s, ns, rec, 1, 0.5)
            await fail(s, ns, rec, 2)
            await stop(s, ns, sid, 3)
            await infeasible(s, ns, rec, 4)
            before = await revision_of(s, ns, rec)
            trials = {n: await s.get_trial(ns, sid, n) for n in range(1, 7)}
            for number, state in [(1, C), (2, F), (3, S), (4, INF), (6, W)]:
                await refused(infeasible(s, ns, rec, number, "late", now=20.0), state.value)
            # Nor does an INFEASIBLE trial take values, a failure, or a stop.
            await refused(complete(s, ns, rec, 4, 0.5), "INFEASIBLE")
            await refused(fail(s, ns, rec, 4), "INFEASIBLE")
            await refused(stop(s, ns, sid, 4), "INFEASIBLE")
            for number, trial in trials.items():
                assert await s.get_trial(ns, sid, number) == trial
            assert await revision_of(s, ns, rec) == before
            with pytest.raises(NotFound) as nf:
                await infeasible(s, ns, rec, 99)
            assert nf.value.reason == "TRIAL_NOT_FOUND"
            with pytest.raises(StaleStudy):
                await infeasible(s, ns, rec, 5, uid="another uid")
            assert (await s.get_trial(ns, sid, 5)).state is R

        store.run(body)

    def test_a_retried_infeasible_verdict_gets_the_first_answer_and_changes_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = make_record()
            await s.create_study(ns, rec)
            sid = rec.study_id
            await running_trials(s, ns, rec, 2)
            first = await infeasible(s, ns, rec, 1, "oom", now=8.0, request_id=frid("v", "a"))
            revision = await revision_of(s, ns, rec)
            # A retry, after the trial finished: the first answer, nothing changes.
            again = await infeasible(s, ns, rec, 1, "oom", now=9.0, request_id=frid("v", "a"))
            assert again == first
            assert await infeasible(s, ns, rec, 1, "oom", now=9.0, request_id=rid("v")) == first
            await mismatch(
                infeasible(s, ns, rec, 1, "other", now=9.0, request_id=frid("v", "b")),
                "CompleteTrial",
            )
            # The id answered the verdict on trial 1: not a result of trial 2, nor a creation.
            for call in (
                infeasible(s, ns, rec, 2, "oom", request_id=rid("v")),
                s.create_trial(ns, sid, Trial(0, W, {}), request_id=rid("v"), now=9.0),
            ):
                with pytest.raises(InvalidArgument) as e:
                    await call
                assert e.value.reason == "REQUEST_ID_REUSED"
            assert await revision_of(s, ns, rec) == revision
            assert await s.get_trial(ns, sid, 1) == first
            assert (await s.get_trial(ns, sid, 2)).state is R

        store.run(body)

    def test_a_late_infeasible_verdict_withdraws_the_queued_point(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec, _ = await lease_study(s, ns, 3)  # leases until 10
            sid = rec.study_id
            expired = await s.get_trial(ns, sid, 1, now=11.0)  # trials 1-3 expire
            assert (expired.state, expired.failure_reason) == (F, LEASE_EXPIRED_REASON)
            before = await revision_of(s, ns, rec)
            # The verdict judges the point, as values or a stop do: a late result, taken once.
            late = await infeasible(s, ns, rec, 1, "diverged", now=12.0, metadata={"late": "y"})
            assert (late.state, late.failure_reason, late.values, late.complete_time) == (
                INF,
                "diverged",
                None,
                12.0,
            )
            assert (late.metadata, late.revision) == ({"late": "y"}, before + 1)
            await refused(infeasible(s, ns, rec, 1, now=12.5), "INFEASIBLE")
            await refused(s.heartbeat_trial(ns, sid, 1, now=12.5, lease_timeout=5.0), "INFEASIBLE")
            # Trial 2's point is claimed, its late verdict comes, then the claim is committed:
            # the twin stays, and the two name each other.
            c = await claim(s, ns, rec, 1, now=13.0, capacity=3)
            assert [r.source for r in c.reissues] == [2]
            await infeasible(s, ns, rec, 2, now=13.5)
            (twin,) = await commit(s, ns, rec, c, now=14.0)
            assert (twin.number, twin.original_number) == (4, 2)
            two = await s.get_trial(ns, sid, 2)
            assert (two.state, two.reissued_number) == (INF, 4)
            # Only trial 3's point (no verdict) is handed out again.
            again = await claim(s, ns, rec, 5, now=15.0, capacity=3)
            assert ([r.source for r in again.reissues], again.indices) == ([3], [])
            study = await s.get_study(ns, sid)
            assert study.state_counts == StateCounts(running=1, failed=1, infeasible=2)

        store.run(body)

    def test_create_trial_imports_an_infeasible_trial(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = make_record()
            await s.create_study(ns, rec)
            sid = rec.study_id
            imported = Trial(
                77,
                INF,
                {"lr": 0.25},
                client_id="import",
                create_time=3.0,
                complete_time=4.0,
                failure_reason="out of memory",
                metadata={"source": "csv"},
            )
            got = await s.create_trial(ns, sid, imported, request_id=rid("imp"), now=5.0)
            assert got == Trial(**{**imported.__dict__, "number": 1, "revision": 1})
            assert await s.create_trial(ns, sid, imported, request_id=rid("imp"), now=6.0) == got
            assert await s.get_trial(ns, sid, 1) == got
            study = await s.get_study(ns, sid)
            assert (study.revision, study.update_time, study.state_counts) == (
                1,
                5.0,
                StateCounts(infeasible=1),
            )
            with pytest.raises(ValueError):  # a score ranks COMPLETED trials only
                await s.create_trial(ns, sid, imported, score=0.5)
            # Finished: never handed out, never ranked.
            assert nothing(await claim(s, ns, rec, 3, capacity=0, now=7.0))
            assert await s.best_trial(ns, sid) is None
            # Deleting the study takes its INFEASIBLE trials along.
            await s.delete_study(ns, sid)
            await s.create_study(ns, rec)
            assert (await s.get_study(ns, sid)).state_counts == StateCounts()
            assert await s.list_trials(ns, sid, states=[INF], page_size=10) == ([], False)

        store.run(body)

    def test_list_trials_filters_infeasible_trials_and_histories_include_them(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = make_record()
            await s.create_study(ns, rec)
            sid = rec.study_id
            c = await claim(s, ns, rec, 4)
            await enqueue(s, ns, rec)  # 1 WAITING, revision 1
            await commit(s, ns, rec, c)  # 2..5 RUNNING, revisions 2-5
            await infeasible(s, ns, rec, 2)  # revision 6
            await fail(s, ns, rec, 3)  # 7
            await complete(s, ns, rec, 4, 0.5)  # 8
            await s.create_trial(ns, sid, Trial(0, INF, {"lr": 0.1}, failure_reason="nan"))  # 6: 9
            await infeasible(s, ns, rec, 5)  # 10
            assert await trial_pages(s, ns, sid, [INF], 2) == [([2, 5], True), ([6], False)]
            assert await trial_pages(s, ns, sid, [INF, F, INF], 10) == [([2, 3, 5, 6], False)]
            assert await trial_pages(s, ns, sid, [W, R], 10) == [([1], False)]
            assert await trial_pages(s, ns, sid, None, 10) == [([1, 2, 3, 4, 5, 6], False)]
            # What a model-based sampler reads (finished and RUNNING trials) has them too.
            history = [t for t in TrialState if t.finished or t is R]
            assert await trial_pages(s, ns, sid, history, 4) == [([2, 3, 4, 5], True), ([6], False)]
            listed, _ = await s.list_trials(ns, sid, states=[INF], page_size=10)
            assert [(t.state, t.failure_reason) for t in listed] == [
                (INF, "diverged"),
                (INF, "diverged"),
                (INF, "nan"),
            ]
            # By revision (the change feed), filtered: trial 2 changed at 6, 3 at 7, 4 at 8,
            # 6 at 9, 5 at 10.
            assert await change_pages(s, ns, sid, 1, 3, [INF]) == [
                ([2], True, 8),
                ([6, 5], False, 10),
            ]
            study = await s.get_study(ns, sid)
            assert study.state_counts == StateCounts(waiting=1, completed=1, failed=1, infeasible=3)

        store.run(body)

    def test_heartbeats_and_reports_on_an_infeasible_trial_answer_as_on_a_failed_one(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = await es_study(s, ns, 2)
            sid = rec.study_id
            await fail(s, ns, rec, 1)
            await infeasible(s, ns, rec, 2)
            before = await revision_of(s, ns, rec)
            trials = [await s.get_trial(ns, sid, n) for n in (1, 2)]
            errors: dict[str, list[str]] = {}
            for number, state in [(1, "FAILED"), (2, "INFEASIBLE")]:
                calls = [
                    s.heartbeat_trial(ns, sid, number, now=2.0, lease_timeout=5.0),
                    report(s, ns, rec, number, 1, 0.5, es=None, now=2.0),
                    report(s, ns, rec, number, 1, 5.0, es=STRICT, now=2.0),
                    report(s, ns, rec, number, 1, 0.5, es=MEDIAN, now=2.0, request_id=rid("m")),
                ]
                errors[state] = [(await refused(call, state)).message for call in calls]
            # The same answers, but for the trial and its state.
            assert errors["INFEASIBLE"] == [
                m.replace("trials/1", "trials/2").replace("FAILED", "INFEASIBLE")
                for m in errors["FAILED"]
            ]
            assert [await s.get_trial(ns, sid, n) for n in (1, 2)] == trials
            assert await revision_of(s, ns, rec) == before

        store.run(body)
