"""Leases of RUNNING trials, their expiry, re-issued points and late results."""

from __future__ import annotations

import pytest

from hyperdial_server.core.errors import FailedPrecondition, NotFound
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    enqueue,
    lease_study,
    make_record,
    nothing,
)


class LeaseContract(ContractBase):
    """Leases: deadlines, heartbeats, lazy expiry and the sweep (``expire_leases``),
    re-issued points, late results and the twins they leave.
    """

    def test_running_trials_hold_a_lease_that_heartbeats_renew(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, (t1, t2) = await lease_study(s, namespace, 2)
            assert (t1.lease_expire_time, t2.lease_expire_time) == (10.0, 10.0)
            got = await s.heartbeat_trial(namespace, rec.study_id, 1, now=9.5, lease_timeout=10.0)
            assert (got.state, got.lease_expire_time) == (TrialState.RUNNING, 19.5)
            assert (
                await s.get_trial(namespace, rec.study_id, 1, now=12.0)
            ).lease_expire_time == 19.5
            # Trial 2 was not renewed: expired by the read at 12.
            two = await s.get_trial(namespace, rec.study_id, 2)
            assert (two.state, two.lease_expire_time) == (TrialState.FAILED, None)
            page, _ = await s.list_trials(namespace, rec.study_id, page_size=10)
            assert [(t.number, t.lease_expire_time) for t in page] == [(1, 19.5), (2, None)]
            done = await complete(s, namespace, rec, 1, 0.5)
            assert done.lease_expire_time is None
            # An enqueued trial gets its lease when handed out (after the point of trial 2).
            await enqueue(s, namespace, rec)
            c = await claim(s, namespace, rec, 2, now=20.0, lease=7.0)
            assert [r.source for r in c.reissues] == [2]
            assert [(t.number, t.lease_expire_time) for t in c.trials] == [(3, 27.0)]

        store.run(body)

    def test_an_expired_lease_fails_the_trial_and_its_point_is_handed_out_again(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, (t1, t2) = await lease_study(s, namespace, 2, max_trials=2)
            # At the deadline itself the lease holds.
            assert nothing(await claim(s, namespace, rec, 1, max_trials=2, now=10.0))
            assert (await s.get_trial(namespace, rec.study_id, 1)).state is TrialState.RUNNING
            await complete(s, namespace, rec, 2, 0.5)
            # Past it, the next ask expires it and hands its point out again, first, although
            # max_trials is reached: the point counts once.
            c = await claim(s, namespace, rec, 3, max_trials=2, now=10.5, client_id="x")
            assert c.indices == [] and c.trials == [] and c.token
            assert [(r.source, r.params) for r in c.reissues] == [(1, t1.params)]
            old = await s.get_trial(namespace, rec.study_id, 1)
            assert (old.state, old.failure_reason) == (TrialState.FAILED, "lease expired")
            assert (old.complete_time, old.lease_expire_time, old.values) == (10.5, None, None)
            (twin,) = await commit(s, namespace, rec, c, now=11.0, client_id="x", lease=10.0)
            assert (twin.number, twin.state, twin.params) == (3, TrialState.RUNNING, t1.params)
            assert (twin.client_id, twin.lease_expire_time) == ("x", 21.0)
            assert nothing(await claim(s, namespace, rec, 1, max_trials=2, now=12.0))
            failed, _ = await s.list_trials(
                namespace, rec.study_id, states=[TrialState.FAILED], page_size=10
            )
            assert [t.number for t in failed] == [1]

        store.run(body)

    def test_an_enqueued_trial_whose_lease_expires_is_handed_out_again_alike(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            queued = Trial(
                0, TrialState.WAITING, {"lr": 0.25}, create_time=1.0, metadata={"k": "v"}
            )
            await s.create_trial(namespace, rec.study_id, queued)
            (t,) = (await claim(s, namespace, rec, 1, now=2.0, lease=5.0)).trials
            assert t.lease_expire_time == 7.0
            c = await claim(s, namespace, rec, 1, now=8.0, lease=5.0)
            assert [(r.source, r.params, r.metadata) for r in c.reissues] == [
                (1, {"lr": 0.25}, {"k": "v"})
            ]
            (twin,) = await commit(s, namespace, rec, c, now=8.0)
            assert (twin.number, twin.params, twin.metadata) == (2, {"lr": 0.25}, {"k": "v"})

        store.run(body)

    def test_a_claimed_reissue_that_is_not_committed_is_taken_again(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, (t1,) = await lease_study(s, namespace, 1)
            first = await claim(s, namespace, rec, 1, now=11.0, ttl=5.0)  # claim deadline 16
            assert [r.source for r in first.reissues] == [1]
            assert nothing(await claim(s, namespace, rec, 1, now=16.0, capacity=1))
            again = await claim(s, namespace, rec, 1, now=17.0, ttl=5.0, capacity=1)
            assert [(r.source, r.params) for r in again.reissues] == [(1, t1.params)]
            with pytest.raises(FailedPrecondition) as e:
                await commit(s, namespace, rec, first, now=17.0)
            assert e.value.reason == "CLAIM_EXPIRED"
            (twin,) = await commit(s, namespace, rec, again, now=18.0)
            assert (twin.number, twin.params) == (2, t1.params)

        store.run(body)

    def test_expiry_is_lazy_on_reads_given_a_time_and_leases_expire_once(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, _ = await lease_study(s, namespace, 3)
            sid = rec.study_id
            # Without a time, reads change nothing.
            assert (await s.get_trial(namespace, sid, 1)).state is TrialState.RUNNING
            page, _ = await s.list_trials(namespace, sid, states=[TrialState.RUNNING], page_size=10)
            assert len(page) == 3
            page, _ = await s.list_trials(
                namespace, sid, states=[TrialState.RUNNING], page_size=10, now=11.0
            )
            assert page == []
            # Every replica may expire: the leases expired once, each point is queued once.
            other = await store.open()
            assert await other.expire_leases(now=12.0) == 0
            assert await s.expire_leases(now=13.0) == 0
            c = await claim(other, namespace, rec, 10, capacity=3, now=14.0)
            assert sorted(r.source for r in c.reissues) == [1, 2, 3] and c.indices == []

        store.run(body)

    def test_the_sweep_expires_leases_in_every_namespace(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            other_ns = namespace + "-b"
            a, _ = await lease_study(s, namespace, 2, lease=10.0)
            b, _ = await lease_study(s, other_ns, 1, lease=20.0)
            gone, _ = await lease_study(s, namespace + "-c", 1, lease=5.0)
            await s.delete_study(namespace + "-c", gone.study_id)
            await s.heartbeat_trial(namespace, a.study_id, 2, now=5.0, lease_timeout=30.0)

            async def states() -> list[TrialState]:
                return [
                    (await s.get_trial(ns, study_id, number)).state
                    for ns, study_id, number in [
                        (namespace, a.study_id, 1),
                        (namespace, a.study_id, 2),
                        (other_ns, b.study_id, 1),
                    ]
                ]

            R, F = TrialState.RUNNING, TrialState.FAILED
            # The sweep is global: a shared Redis may hold leases of other tests' studies too.
            assert await s.expire_leases(now=11.0) >= 1  # trial 1 of a
            assert await states() == [F, R, R]
            assert await s.expire_leases(now=11.0) == 0
            assert await s.expire_leases(now=21.0) >= 1  # trial 1 of b
            assert await states() == [F, R, F]
            assert await s.expire_leases(now=36.0) >= 1  # trial 2 of a, renewed until 35
            assert await states() == [F, F, F]
            assert await s.expire_leases(now=36.0) == 0

        store.run(body)

    def test_heartbeat_renews_only_running_trials(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, _ = await lease_study(s, namespace, 2)
            await enqueue(s, namespace, rec)  # 3 WAITING
            await complete(s, namespace, rec, 1, 0.5)
            for number, detail in [(1, "COMPLETED"), (3, "WAITING")]:
                with pytest.raises(FailedPrecondition) as e:
                    await s.heartbeat_trial(
                        namespace, rec.study_id, number, now=1.0, lease_timeout=5
                    )
                assert (e.value.reason, e.value.metadata) == (
                    "TRIAL_NOT_RUNNING",
                    {"state": detail},
                )
            # Past its deadline, a heartbeat finds the lease expired and expires it.
            for _ in range(2):
                with pytest.raises(FailedPrecondition) as e:
                    await s.heartbeat_trial(namespace, rec.study_id, 2, now=10.5, lease_timeout=5)
                assert e.value.reason == "TRIAL_NOT_RUNNING"
                assert e.value.metadata == {"state": "FAILED", "lease_expired": "true"}
                assert "lease expired" in e.value.message
            assert (await s.get_trial(namespace, rec.study_id, 2)).state is TrialState.FAILED
            with pytest.raises(NotFound) as nf:
                await s.heartbeat_trial(namespace, rec.study_id, 9, now=1.0, lease_timeout=5)
            assert nf.value.reason == "TRIAL_NOT_FOUND"
            with pytest.raises(NotFound) as nf:
                await s.heartbeat_trial(namespace, "ghost", 1, now=1.0, lease_timeout=5)
            assert nf.value.reason == "STUDY_NOT_FOUND"

        store.run(body)

    def test_a_late_result_is_recorded_and_withdraws_the_queued_point(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, _ = await lease_study(s, namespace, 2)
            await s.expire_leases(now=11.0)
            late = await s.complete_trial(
                namespace,
                rec.study_id,
                1,
                values={"loss": 0.25, "acc": 1.0},
                failure_reason=None,
                metadata={"late": "yes"},
                now=12.0,
                score=0.25,
            )
            assert (late.state, late.values, late.failure_reason) == (
                TrialState.COMPLETED,
                {"loss": 0.25, "acc": 1.0},
                "",
            )
            assert (late.complete_time, late.metadata) == (12.0, {"late": "yes"})
            assert (await s.best_trial(namespace, rec.study_id)).number == 1  # type: ignore[union-attr]
            # Taken once.
            with pytest.raises(FailedPrecondition) as e:
                await complete(s, namespace, rec, 1, 0.5)
            assert e.value.metadata == {"state": "COMPLETED"}
            # A late failure only replaces the reason: the point of trial 2 is still handed out.
            failed = await s.complete_trial(
                namespace, rec.study_id, 2, values=None, failure_reason="oom", metadata={}, now=13.0
            )
            assert (failed.state, failed.failure_reason) == (TrialState.FAILED, "oom")
            c = await claim(s, namespace, rec, 5, capacity=2, now=14.0)
            assert [r.source for r in c.reissues] == [2] and c.indices == []

        store.run(body)

    def test_a_late_result_after_the_point_was_handed_out_again_leaves_both_trials(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, (t1,) = await lease_study(s, namespace, 1)
            (twin,) = await commit(s, namespace, rec, await claim(s, namespace, rec, 1, now=11.0))
            await complete(s, namespace, rec, 1, 0.5)  # the late result
            await complete(s, namespace, rec, twin.number, 0.75)
            done, _ = await s.list_trials(
                namespace, rec.study_id, states=[TrialState.COMPLETED], page_size=10
            )
            assert [(t.number, t.params) for t in done] == [(1, t1.params), (2, t1.params)]

        store.run(body)

    def test_a_late_result_after_a_reissue_leaves_twins_that_name_each_other(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, (t1, t2, t3) = await lease_study(s, namespace, 3)
            sid = rec.study_id
            # Trial 1's point is handed out again as trial 4 (both name each other at once)...
            c = await claim(s, namespace, rec, 1, now=11.0, capacity=3)
            (twin,) = await commit(s, namespace, rec, c, now=11.0)
            assert (twin.number, twin.original_number, twin.reissued_number) == (4, 1, None)
            expired = await s.get_trial(namespace, sid, 1)
            assert (expired.state, expired.reissued_number, expired.original_number) == (
                TrialState.FAILED,
                4,
                None,
            )
            # ... and the late result of trial 1 keeps the mark: two COMPLETED twins of one point.
            late = await complete(s, namespace, rec, 1, 0.5)
            assert (late.state, late.reissued_number) == (TrialState.COMPLETED, 4)
            # Trial 2's point is claimed, its late result comes, then the claim is committed.
            c = await claim(s, namespace, rec, 1, now=12.0, capacity=3)
            assert [r.source for r in c.reissues] == [2]
            await complete(s, namespace, rec, 2, 0.25)
            (twin2,) = await commit(s, namespace, rec, c, now=12.0)
            assert (twin2.number, twin2.original_number) == (5, 2)
            # Trial 3's late result comes first: its point is withdrawn, so it has no twin.
            await complete(s, namespace, rec, 3, 0.75)
            assert nothing(await claim(s, namespace, rec, 1, now=13.0, capacity=3))
            listed, _ = await s.list_trials(namespace, sid, page_size=10)
            got = [(t.number, t.state, t.original_number, t.reissued_number) for t in listed]
            C, R = TrialState.COMPLETED, TrialState.RUNNING
            assert got == [
                (1, C, None, 4),
                (2, C, None, 5),
                (3, C, None, None),
                (4, R, 1, None),
                (5, R, 2, None),
            ]
            for t in listed:
                assert await s.get_trial(namespace, sid, t.number) == t
            # Untouched trials carry no mark.
            assert (t1.reissued_number, t2.original_number, t3.reissued_number) == (None,) * 3

        store.run(body)
