"""A replica's blocks of reserved RANDOM indices (``service/_reservations.py``), on a real
Redis store (the store with one-step asks): concurrent asks share one reservation, errors reach
every waiter, a cancelled ask does not cancel the others, and the cache stays bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from hyperdial_server.core.errors import NotFound
from hyperdial_server.core.space import FloatDomain, ParameterConfig, SearchSpace
from hyperdial_server.core.study import Algorithm, Objective, StudyRecord, StudySpec
from hyperdial_server.service._reservations import SKIP_AFTER_FALLBACK, IndexReservations
from hyperdial_server.store import StaleStudy, Store, open_store


class CountingStore:
    """A real Redis store whose reservations are counted, and can be held until released."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.store: Store = open_store(redis_url)
        self.namespace = namespace
        self.reservations = 0
        self.gate: asyncio.Event | None = None

    async def reserve_indices(self, namespace: str, study_id: str, uid: str, count: int) -> int:
        self.reservations += 1
        if self.gate is not None:
            await self.gate.wait()
        return await self.store.reserve_indices(namespace, study_id, uid, count)


async def _study(store: CountingStore, study_id: str = "s") -> tuple[str, str, str]:
    spec = StudySpec(
        space=SearchSpace([ParameterConfig("x", FloatDomain(0.0, 1.0))]),
        objectives=(Objective("loss"),),
        algorithm=Algorithm.RANDOM,
        seed=7,
    )
    rec = StudyRecord(study_id, spec, create_time=0.0, uid=f"uid-{study_id}")
    await store.store.create_study(store.namespace, rec)
    return (store.namespace, study_id, rec.uid)


def run(redis_url: str, namespace: str, test: Callable[[CountingStore], Awaitable[None]]) -> None:
    """Runs ``test`` on a fresh counting store, closing it on every path."""

    async def with_store() -> None:
        store = CountingStore(redis_url, namespace)
        try:
            await test(store)
        finally:
            await store.store.close()

    asyncio.run(with_store())


def test_concurrent_takes_share_one_reservation_and_never_repeat_an_index(
    redis_url: str, namespace: str
) -> None:
    async def main(store: CountingStore) -> None:
        key = await _study(store)
        pool = IndexReservations(store.reserve_indices, block=16)
        store.gate = asyncio.Event()
        takes = [asyncio.create_task(pool.take(key, 1 + i % 3)) for i in range(12)]
        await asyncio.sleep(0.01)
        store.gate.set()
        got = await asyncio.gather(*takes)
        flat = [i for g in got for i in g]
        assert sorted(flat) == list(range(len(flat)))  # 24 indices: two blocks of 16
        assert [len(g) for g in got] == [1 + i % 3 for i in range(12)]
        assert store.reservations == 2
        # A count larger than the block reserves what it needs at once.
        assert len(await pool.take(key, 40)) == 40
        assert store.reservations == 3

    run(redis_url, namespace, main)


def test_a_failed_reservation_reaches_every_waiting_ask(redis_url: str, namespace: str) -> None:
    async def main(store: CountingStore) -> None:
        pool = IndexReservations(store.reserve_indices, block=4)
        store.gate = asyncio.Event()
        takes = [
            asyncio.create_task(pool.take((store.namespace, "ghost", "u"), 1)) for _ in range(3)
        ]
        await asyncio.sleep(0.01)
        store.gate.set()
        results = await asyncio.gather(*takes, return_exceptions=True)
        assert [type(r) for r in results] == [NotFound] * 3
        assert store.reservations == 1
        key = await _study(store)
        with pytest.raises(StaleStudy):
            await pool.take((key[0], key[1], "another-uid"), 1)

    run(redis_url, namespace, main)


def test_a_cancelled_ask_leaves_the_waiting_asks_to_reserve_for_themselves(
    redis_url: str, namespace: str
) -> None:
    async def main(store: CountingStore) -> None:
        key = await _study(store)
        pool = IndexReservations(store.reserve_indices, block=4)
        store.gate = asyncio.Event()
        first = asyncio.create_task(pool.take(key, 1))
        await asyncio.sleep(0.01)
        waiting = asyncio.create_task(pool.take(key, 1))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.01)
        store.gate.set()
        assert await waiting == [0]
        assert first.cancelled()
        assert store.reservations == 2

    run(redis_url, namespace, main)


def test_the_cache_is_bounded_and_a_fallback_skips_the_next_asks(
    redis_url: str, namespace: str
) -> None:
    async def main(store: CountingStore) -> None:
        keys = [await _study(store, f"s{i}") for i in range(3)]
        pool = IndexReservations(store.reserve_indices, block=8, max_studies=2)
        for key in keys:
            assert await pool.take(key, 1) == [0]
        assert await pool.take(keys[0], 1) == [8]  # evicted: its block was lost, not reused
        assert await pool.take(keys[2], 1) == [1]
        pool.fell_back(keys[2])
        assert [pool.should_try(keys[2]) for _ in range(SKIP_AFTER_FALLBACK + 1)] == [
            False
        ] * SKIP_AFTER_FALLBACK + [True]
        assert pool.should_try(keys[1])

    run(redis_url, namespace, main)
