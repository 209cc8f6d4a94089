"""One-step asks (``reserve_indices``, ``commit_reserved``), for stores that have them."""

from __future__ import annotations

import asyncio

import pytest

from hyperdial_server.core.errors import InvalidArgument, NotFound
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import Fallback, StaleStudy, Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    enqueue,
    fast,
    frid,
    make_record,
    mismatch,
    nothing,
    point,
    rid,
    skip_unless_one_step_asks,
    typed,
)


class OneStepAskContract(ContractBase):
    """One-step asks: ``reserve_indices`` and ``commit_reserved``.

    Their tests skip for a store whose ``one_step_asks`` is false; for such a store, one test
    checks that the default ``commit_reserved`` falls back and creates nothing.
    """

    def test_reserved_blocks_never_overlap_each_other_or_claimed_indices(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            rec = make_record()
            await s.create_study(namespace, rec)
            other = await store.open()  # another replica
            assert await s.reserve_indices(namespace, rec.study_id, rec.uid, 4) == 0
            assert (await claim(other, namespace, rec, 2)).indices == [4, 5]
            assert await other.reserve_indices(namespace, rec.study_id, rec.uid, 3) == 6
            firsts = await asyncio.gather(
                *(s.reserve_indices(namespace, rec.study_id, rec.uid, 5) for _ in range(10))
            )
            assert sorted(firsts) == list(range(9, 59, 5))
            # Reserving is not handing out: max_trials still has room for 2 claimed indices.
            assert (await claim(s, namespace, rec, 5, max_trials=4)).indices == [59, 60]
            with pytest.raises(ValueError):
                await s.reserve_indices(namespace, rec.study_id, rec.uid, 0)

        store.run(body)

    def test_a_one_step_ask_creates_running_trials_held_by_the_client(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            rec = make_record()
            await s.create_study(namespace, rec)
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 8)
            done = await fast(s, namespace, rec, [0, 1], client_id="w", now=2.0, lease=60.0)
            assert done.fallback == ""
            assert [t.number for t in done.trials] == [1, 2]
            for t in done.trials:
                stored = await s.get_trial(namespace, rec.study_id, t.number)
                assert stored == t
                assert (stored.state, stored.client_id, stored.lease_expire_time) == (
                    TrialState.RUNNING,
                    "w",
                    62.0,
                )
                assert stored.create_time == 2.0
            assert typed(done.trials[1].params) == typed(point(1))
            assert [t.sampler_index for t in done.trials] == [0, 1]
            # The client now holds trials: its next ask resumes them, through claim_trials.
            again = await fast(s, namespace, rec, [2], client_id="w", now=3.0)
            assert (again.fallback, again.trials) == ("CLIENT_HOLDS_TRIALS", [])
            resumed = await claim(s, namespace, rec, 2, client_id="w", now=3.0)
            assert [t.number for t in resumed.trials] == [1, 2]
            # Another client is not held back, and numbers go on.
            assert [
                t.number for t in (await fast(s, namespace, rec, [2], client_id="v")).trials
            ] == [3]
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 3

        store.run(body)

    def test_a_one_step_ask_falls_back_whenever_claim_trials_would_hand_out_something_first(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            rec = make_record()
            await s.create_study(namespace, rec)
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 100)

            async def count() -> int:
                return (await s.get_study(namespace, rec.study_id)).trial_count

            # Enqueued trials go first.
            queued = await enqueue(s, namespace, rec)
            assert (await fast(s, namespace, rec, [0])).fallback == "ENQUEUED"
            assert await count() == 1
            c = await claim(s, namespace, rec, 1)
            assert [t.number for t in c.trials] == [queued.number]
            # Points of lease-expired trials go first: the lease expires in the one-step ask itself.
            (t2,) = (await fast(s, namespace, rec, [1], now=1.0, lease=5.0)).trials
            assert (await fast(s, namespace, rec, [2], now=10.0)).fallback == "REISSUE"
            assert (
                await s.get_trial(namespace, rec.study_id, t2.number)
            ).state is TrialState.FAILED
            assert await count() == 2
            c = await claim(s, namespace, rec, 1, now=10.0)
            assert [r.source for r in c.reissues] == [t2.number]
            # A claim that expired uncommitted goes first.
            assert (await fast(s, namespace, rec, [3], now=30.0)).fallback == "EXPIRED_CLAIM"
            retaken = await claim(s, namespace, rec, 1, now=30.0)
            assert [r.source for r in retaken.reissues] == [t2.number]
            await commit(s, namespace, rec, retaken, now=30.0)
            assert (await fast(s, namespace, rec, [4], now=31.0)).fallback == ""
            assert await count() == 4

        store.run(body)

    def test_one_step_asks_count_against_max_trials(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            rec = make_record(max_trials=4)
            await s.create_study(namespace, rec)
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 10)
            await enqueue(s, namespace, rec)
            await claim(s, namespace, rec, 1, max_trials=4)  # the enqueued trial: 1 handed out
            assert len((await fast(s, namespace, rec, [0, 1], max_trials=4)).trials) == 2
            over = await fast(s, namespace, rec, [2, 3], max_trials=4)
            assert (over.fallback, over.trials) == ("MAX_TRIALS", [])
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 3
            assert len((await fast(s, namespace, rec, [2], max_trials=4)).trials) == 1
            assert (await fast(s, namespace, rec, [3], max_trials=4)).fallback == "MAX_TRIALS"
            assert nothing(await claim(s, namespace, rec, 1, max_trials=4))

        store.run(body)

    def test_a_one_step_ask_records_its_request_id_and_a_retry_is_replayed(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            rec = make_record()
            await s.create_study(namespace, rec)
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 10)
            first = await fast(s, namespace, rec, [0, 1], request_id=rid("ask-f", "a1"))
            # The retry of the same ask falls back, and claim_trials replays the first answer.
            retry = await fast(s, namespace, rec, [2, 3], request_id=rid("ask-f", "a2"))
            assert (retry.fallback, retry.trials) == ("REQUEST_ID", [])
            replayed = await claim(s, namespace, rec, 2, request_id=rid("ask-f", "a2"))
            assert replayed.replayed and replayed.trials == first.trials
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 2
            # An id used by another kind of call also falls back; claim_trials refuses it.
            await s.create_trial(
                namespace,
                rec.study_id,
                Trial(0, TrialState.WAITING, {"lr": 0.5}),
                request_id=rid("x"),
            )
            await claim(s, namespace, rec, 1)  # take the enqueued trial out of the way
            assert (await fast(s, namespace, rec, [4], request_id=rid("x", "a3"))).fallback == (
                "REQUEST_ID"
            )
            with pytest.raises(InvalidArgument) as e:
                await claim(s, namespace, rec, 1, request_id=rid("x", "a3"))
            assert e.value.reason == "REQUEST_ID_REUSED"

        store.run(body)

    def test_reserving_and_one_step_asks_on_a_missing_or_recreated_study(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            ghost = make_record("ghost")
            with pytest.raises(NotFound):
                await s.reserve_indices(namespace, "ghost", ghost.uid, 4)
            with pytest.raises(NotFound):
                await fast(s, namespace, ghost, [0])
            old = make_record("again")
            await s.create_study(namespace, old)
            await s.reserve_indices(namespace, "again", old.uid, 4)
            await s.delete_study(namespace, "again")
            new = make_record("again")
            await s.create_study(namespace, new)
            with pytest.raises(StaleStudy):
                await s.reserve_indices(namespace, "again", old.uid, 4)
            with pytest.raises(StaleStudy):
                await fast(s, namespace, old, [0])
            assert (await s.get_study(namespace, "again")).trial_count == 0
            assert await s.reserve_indices(namespace, "again", new.uid, 4) == 0

        store.run(body)

    def test_a_one_step_ask_replayed_with_another_payload_is_refused(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            rec = make_record("fp")
            await s.create_study(namespace, rec)
            # A one-step ask records its payload too; a changed retry falls back and is refused.
            first_fast = await fast(s, namespace, rec, [50], request_id=frid("f", "A"), now=2.0)
            (fast_trial,) = first_fast.trials
            assert (await fast(s, namespace, rec, [51], request_id=frid("f", "B"))).fallback
            await mismatch(claim(s, namespace, rec, 1, request_id=frid("f", "B", "f2")), "Suggest")
            # The same payload is answered what the one step answered.
            again = await claim(s, namespace, rec, 1, request_id=frid("f", "A", "f3"), now=3.0)
            assert again.replayed and [t.number for t in again.trials] == [fast_trial.number]

        store.run(body)

    def test_without_one_step_asks_commit_reserved_falls_back_and_creates_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            if s.one_step_asks:
                pytest.skip(f"{type(s).__name__}.one_step_asks is true: the default is not used")
            rec = make_record()
            await s.create_study(namespace, rec)
            done = await fast(s, namespace, rec, [0, 1], client_id="w", request_id=rid("f", "a1"))
            assert (done.fallback, done.trials) == (Fallback.UNSUPPORTED, [])
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 0
            assert await s.list_trials(namespace, rec.study_id, page_size=10) == ([], False)
            # The counter is untouched and the request id unrecorded: the two steps start afresh.
            c = await claim(s, namespace, rec, 2, client_id="w", request_id=rid("f", "a2"))
            assert (c.replayed, c.trials, c.indices) == (False, [], [0, 1])

        store.run(body)
