"""Asks in two steps: ``claim_trials``, ``commit_trials``, ``renew_claim``."""

from __future__ import annotations

import pytest

from hyperdial_server.core.errors import FailedPrecondition, NotFound, Unavailable
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import StaleStudy, Store
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
    point,
    renew,
    rid,
)


class AskContract(ContractBase):
    """Asks in two steps: what ``claim_trials`` hands out and in which order, capacity and
    ``max_trials``, expired claims, ``commit_trials``, ``renew_claim``, and a client's resume.
    """

    def test_enqueued_trials_are_handed_out_first_oldest_first(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            queued = [await enqueue(s, namespace, rec, {"lr": 0.1 * i}) for i in range(1, 4)]
            assert [t.number for t in queued] == [1, 2, 3]
            assert all(t.state is TrialState.WAITING for t in queued)

            c = await claim(s, namespace, rec, 2, client_id="alice")
            assert [t.number for t in c.trials] == [1, 2]
            assert c.indices == [] and c.token == ""
            assert all(t.state is TrialState.RUNNING and t.client_id == "alice" for t in c.trials)
            assert [t.params for t in c.trials] == [queued[0].params, queued[1].params]
            assert c.trials[0].create_time == 5.0

            c = await claim(s, namespace, rec, 3, client_id="bob")
            assert [t.number for t in c.trials] == [3]
            assert c.indices == [0, 1] and c.token
            stored = await s.get_trial(namespace, rec.study_id, 3)
            assert (stored.state, stored.client_id) == (TrialState.RUNNING, "bob")
            new = await commit(s, namespace, rec, c)
            assert [t.number for t in new] == [4, 5]

        store.run(body)

    def test_claims_stop_at_capacity(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c1 = await claim(s, namespace, rec, 2, capacity=3)
            c2 = await claim(s, namespace, rec, 5, capacity=3)
            assert (c1.indices, c2.indices) == ([0, 1], [2])
            await commit(s, namespace, rec, c1)
            await commit(s, namespace, rec, c2)
            c3 = await claim(s, namespace, rec, 1, capacity=3)
            assert nothing(c3) and c3.pending == 3  # RUNNING trials whose lease may expire
            # Enqueued trials are still handed out when the indices are exhausted.
            await enqueue(s, namespace, rec)
            c4 = await claim(s, namespace, rec, 2, capacity=3)
            assert [t.number for t in c4.trials] == [4] and c4.indices == []

        store.run(body)

    def test_max_trials_counts_enqueued_and_sampled_but_not_imported(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record(max_trials=5)
            await s.create_study(namespace, rec)
            await enqueue(s, namespace, rec)
            await enqueue(s, namespace, rec)
            imported = Trial(0, TrialState.COMPLETED, {"lr": 0.5}, values={"loss": 1.0, "acc": 0.0})
            await s.create_trial(namespace, rec.study_id, imported, score=1.0)
            await s.create_trial(namespace, rec.study_id, Trial(0, TrialState.FAILED, {"lr": 0.2}))
            c = await claim(s, namespace, rec, 10, max_trials=5)
            assert [t.number for t in c.trials] == [1, 2]
            assert c.indices == [0, 1, 2]
            await commit(s, namespace, rec, c)
            assert nothing(await claim(s, namespace, rec, 1, max_trials=5))
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 7

        store.run(body)

    def test_max_trials_reached_leaves_enqueued_trials_waiting(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record(max_trials=1)
            await s.create_study(namespace, rec)
            await enqueue(s, namespace, rec)
            await enqueue(s, namespace, rec)
            c = await claim(s, namespace, rec, 5, max_trials=1)
            assert [t.number for t in c.trials] == [1] and c.indices == []
            assert nothing(await claim(s, namespace, rec, 5, max_trials=1))
            assert (await s.get_trial(namespace, rec.study_id, 2)).state is TrialState.WAITING

        store.run(body)

    def test_a_retaken_index_counts_once_against_max_trials(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record(max_trials=3)
            await s.create_study(namespace, rec)
            first = await claim(s, namespace, rec, 3, max_trials=3, now=0.0, ttl=10.0)
            assert first.indices == [0, 1, 2]
            # Expired: taken again although max_trials is reached, since they count once.
            again = await claim(s, namespace, rec, 5, max_trials=3, now=20.0, ttl=10.0)
            assert sorted(again.indices) == [0, 1, 2]
            await commit(s, namespace, rec, again, now=21.0)
            assert nothing(await claim(s, namespace, rec, 5, max_trials=3, now=100.0))

        store.run(body)

    def test_expired_claims_are_taken_again_before_fresh_indices(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            old = await claim(s, namespace, rec, 2, now=0.0, ttl=10.0)  # deadline 10
            mid = await claim(s, namespace, rec, 1, now=5.0, ttl=10.0)  # deadline 15
            assert (old.indices, mid.indices) == ([0, 1], [2])
            # At the deadline itself the claim still holds.
            at_deadline = await claim(s, namespace, rec, 1, now=10.0, ttl=10.0)
            assert at_deadline.indices == [3]
            late = await claim(s, namespace, rec, 3, now=11.0, ttl=10.0)
            assert late.indices == [0, 1, 4]
            assert late.token not in ("", old.token)

            with pytest.raises(FailedPrecondition) as e:
                await commit(s, namespace, rec, old, now=11.5)
            assert e.value.reason == "CLAIM_EXPIRED"
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 0

            trials = await commit(s, namespace, rec, late, now=12.0)
            assert [t.number for t in trials] == [1, 2, 3]
            assert [t.params for t in trials] == [point(0), point(1), point(4)]
            # The mid claim expired (deadline 15) but nobody took it: still committable.
            assert [t.number for t in await commit(s, namespace, rec, mid, now=30.0)] == [4]
            assert (await claim(s, namespace, rec, 2, now=40.0)).indices == [3, 5]

        store.run(body)

    def test_a_claim_commits_once(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c = await claim(s, namespace, rec, 2)
            await commit(s, namespace, rec, c)
            with pytest.raises(FailedPrecondition) as e:
                await commit(s, namespace, rec, c)
            assert e.value.reason == "CLAIM_EXPIRED"
            with pytest.raises(FailedPrecondition):
                await s.commit_trials(
                    namespace, rec.study_id, rec.uid, "not-a-token", [(7, {})], client_id="", now=0
                )
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 2

        store.run(body)

    def test_wrong_uid_is_stale(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c = await claim(s, namespace, rec, 1)
            stale = StudyRecord(rec.study_id, rec.spec, rec.create_time, uid="other")
            with pytest.raises(StaleStudy):
                await claim(s, namespace, stale, 1)
            with pytest.raises(StaleStudy):
                await commit(s, namespace, stale, c)
            assert [t.number for t in await commit(s, namespace, rec, c)] == [1]

        store.run(body)

    def test_commit_numbers_trials_in_the_order_of_points(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            await enqueue(s, namespace, rec)
            c = await claim(s, namespace, rec, 4, client_id="x")
            assert c.indices == [0, 1, 2]
            points = [(2, point(2)), (0, point(0)), (1, point(1))]
            trials = await s.commit_trials(
                namespace, rec.study_id, rec.uid, c.token, points, client_id="carol", now=42.5
            )
            assert [t.number for t in trials] == [2, 3, 4]
            assert [t.params for t in trials] == [point(2), point(0), point(1)]
            for t in trials:
                assert (t.state, t.client_id, t.create_time) == (TrialState.RUNNING, "carol", 42.5)
                assert (t.values, t.complete_time, t.failure_reason, t.metadata) == (
                    None,
                    None,
                    "",
                    {},
                )
                assert await s.get_trial(namespace, rec.study_id, t.number) == t

        store.run(body)

    def test_claim_count_must_be_positive(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            with pytest.raises(ValueError):
                await claim(s, namespace, rec, 0)

        store.run(body)

    def test_a_renewed_claim_outlives_its_first_deadline(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, (t1,) = await lease_study(s, namespace, 1, lease=5.0)
            mine = await claim(s, namespace, rec, 3, now=10.0, ttl=10.0)  # deadline 20
            assert ([r.source for r in mine.reissues], mine.indices) == ([1], [1, 2])
            await renew(s, namespace, rec, mine, now=18.0, ttl=10.0)  # deadline 28
            # Past the first deadline, not the new one: the members are not taken again.
            other = await claim(s, namespace, rec, 3, now=25.0, ttl=10.0)
            assert (other.reissues, other.indices) == ([], [3, 4, 5])
            # At the new deadline itself the claim still holds; then it lapses as any other.
            assert nothing(await claim(s, namespace, rec, 3, now=28.0, capacity=6))
            trials = await commit(s, namespace, rec, mine, now=28.0)
            assert [(t.number, t.params) for t in trials] == [
                (2, t1.params),
                (3, point(1)),
                (4, point(2)),
            ]

        store.run(body)

    def test_a_claim_past_its_deadline_that_nobody_took_is_renewed(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            mine = await claim(s, namespace, rec, 2, now=0.0, ttl=10.0)
            await renew(s, namespace, rec, mine, now=15.0, ttl=10.0)  # deadline 25
            assert (await claim(s, namespace, rec, 1, now=20.0)).indices == [2]
            assert [t.number for t in await commit(s, namespace, rec, mine, now=21.0)] == [1, 2]

        store.run(body)

    def test_renewing_a_claim_taken_again_is_claim_expired_and_changes_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            mine = await claim(s, namespace, rec, 2, now=0.0, ttl=10.0)  # indices 0 and 1
            thief = await claim(s, namespace, rec, 1, now=11.0, ttl=10.0)
            assert thief.indices == [0]
            with pytest.raises(FailedPrecondition) as e:
                await renew(s, namespace, rec, mine, now=12.0, ttl=100.0)
            assert e.value.reason == "CLAIM_EXPIRED"
            # Index 1 kept its lapsed deadline: the next ask takes it again.
            assert (await claim(s, namespace, rec, 1, now=13.0)).indices == [1]
            # A committed claim has no members left to renew.
            await commit(s, namespace, rec, thief, now=14.0)
            with pytest.raises(FailedPrecondition) as e:
                await renew(s, namespace, rec, thief, now=15.0)
            assert e.value.reason == "CLAIM_EXPIRED"

        store.run(body)

    def test_renewing_an_ask_in_progress_keeps_its_retries_out(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            one = rid("r", "one")
            first = await claim(s, namespace, rec, 2, request_id=one, now=0.0, ttl=10.0)
            await renew(s, namespace, rec, first, now=8.0, ttl=10.0, request_id=one)  # deadline 18
            # Without the renewal, a retry at 15 would take the ask over.
            with pytest.raises(Unavailable) as e:
                await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=15.0)
            assert e.value.reason == "REQUEST_IN_PROGRESS"
            over = await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=19.0)
            assert sorted(over.indices) == [0, 1]
            # The retry owns the ask now: the first execution may neither renew nor commit.
            with pytest.raises(Unavailable) as e:
                await renew(s, namespace, rec, first, now=20.0, request_id=one)
            assert e.value.reason == "REQUEST_IN_PROGRESS"
            done = await commit(s, namespace, rec, over, request_id=rid("r", "two"), now=21.0)
            with pytest.raises(Unavailable) as e:
                await renew(s, namespace, rec, over, now=22.0, request_id=rid("r", "two"))
            assert e.value.reason == "REQUEST_IN_PROGRESS"  # answered: nothing left to renew
            replay = await claim(s, namespace, rec, 2, request_id=rid("r", "three"), now=23.0)
            assert [t.number for t in replay.trials] == [t.number for t in done]

        store.run(body)

    def test_renewing_a_claim_of_a_missing_or_recreated_study(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            mine = await claim(s, namespace, rec, 1, now=0.0)
            stale = StudyRecord(rec.study_id, rec.spec, rec.create_time, uid="other")
            with pytest.raises(StaleStudy):
                await renew(s, namespace, stale, mine, now=1.0)
            await s.delete_study(namespace, rec.study_id)
            with pytest.raises(NotFound) as e:
                await renew(s, namespace, rec, mine, now=2.0)
            assert e.value.reason == "STUDY_NOT_FOUND"

        store.run(body)

    def test_a_client_asking_again_gets_its_running_trials_back_first(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            a = await claim(s, namespace, rec, 2, client_id="a", now=0.0)
            mine = await commit(s, namespace, rec, a, client_id="a", now=0.0, lease=10.0)
            await enqueue(s, namespace, rec)  # 3
            b = await claim(s, namespace, rec, 1, client_id="b", now=1.0, lease=10.0)
            assert [t.number for t in b.trials] == [3]
            # "a" again: its two trials, oldest first, leases renewed, then a new one.
            again = await claim(s, namespace, rec, 3, client_id="a", now=5.0, lease=10.0)
            assert [t.number for t in again.trials] == [t.number for t in mine] == [1, 2]
            assert [t.lease_expire_time for t in again.trials] == [15.0, 15.0]
            assert again.indices == [2]
            await commit(s, namespace, rec, again, client_id="a", now=5.0, lease=10.0)  # 4
            await complete(s, namespace, rec, 1, 0.5)
            one = await claim(s, namespace, rec, 1, client_id="a", now=6.0, lease=10.0)
            assert [t.number for t in one.trials] == [2] and one.indices == []
            # A client id that is a prefix of another holds nothing of it.
            assert (await claim(s, namespace, rec, 1, client_id="", now=6.0)).indices == [3]
            # An expired trial is not resumed: its point is handed out again instead.
            late = await claim(s, namespace, rec, 5, client_id="b", now=100.0)
            assert late.trials == [] and sorted(r.source for r in late.reissues) == [2, 3, 4]

        store.run(body)
