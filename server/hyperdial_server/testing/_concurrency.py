"""Concurrent calls from several replicas: each step is atomic."""

from __future__ import annotations

import asyncio

from hyperdial_server.core.errors import FailedPrecondition
from hyperdial_server.core.trial import TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    enqueue,
    make_record,
    nothing,
    running_trials,
)


class ConcurrencyContract(ContractBase):
    """Concurrent calls from several replicas (:meth:`StoreHarness.open`): every index and
    enqueued trial is handed out once, one completion of a trial wins.
    """

    def test_concurrent_claims_hand_out_every_index_once(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            replicas = [s] + [await store.open() for _ in range(4)]
            claims = await asyncio.gather(
                *(
                    claim(replicas[i % 5], namespace, rec, 5, capacity=200, client_id=f"c{i}")
                    for i in range(50)
                )
            )
            indices = sorted(i for c in claims for i in c.indices)
            assert indices == list(range(200))
            last = await claim(s, namespace, rec, 1, capacity=200)
            assert nothing(last) and last.pending == 200  # every claim still outstanding
            committed = await asyncio.gather(
                *(commit(replicas[i % 5], namespace, rec, c) for i, c in enumerate(claims))
            )
            numbers = sorted(t.number for ts in committed for t in ts)
            assert numbers == list(range(1, 201))

        store.run(body)

    def test_concurrent_claims_never_share_an_enqueued_trial(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            for _ in range(30):
                await enqueue(s, namespace, rec)
            replicas = [s] + [await store.open() for _ in range(4)]
            claims = await asyncio.gather(
                *(
                    claim(replicas[i % 5], namespace, rec, 2, capacity=0, client_id=f"c{i}")
                    for i in range(20)
                )
            )
            numbers = sorted(t.number for c in claims for t in c.trials)
            assert numbers == list(range(1, 31))
            assert all(c.indices == [] for c in claims)
            for c in claims:
                for t in c.trials:
                    stored = await s.get_trial(namespace, rec.study_id, t.number)
                    assert (stored.state, stored.client_id) == (TrialState.RUNNING, t.client_id)

        store.run(body)

    def test_concurrent_completions_of_one_trial_succeed_once(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            (t,) = await running_trials(s, namespace, rec, 1)
            replicas = [s] + [await store.open() for _ in range(4)]

            async def attempt(i: int) -> bool:
                try:
                    await replicas[i % 5].complete_trial(
                        namespace,
                        rec.study_id,
                        t.number,
                        values={"loss": float(i)},
                        failure_reason=None,
                        metadata={"who": str(i)},
                        now=10.0 + i,
                        score=float(i),
                    )
                except FailedPrecondition as e:
                    assert e.reason == "TRIAL_NOT_RUNNING"
                    return False
                return True

            results = await asyncio.gather(*(attempt(i) for i in range(20)))
            assert sum(results) == 1
            winner = results.index(True)
            got = await s.get_trial(namespace, rec.study_id, t.number)
            assert got.values == {"loss": float(winner)}
            assert got.metadata == {"who": str(winner)}

        store.run(body)
