"""The sampler workers' queue takes studies in turn (``service/_fair.py``): the order in which
computations get a worker, driven step by step (no timing: each computation waits for an event
the test sets)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from hyperdial_server.service._fair import FairQueue


class Jobs:
    """Computations on a queue, each holding its worker until the test finishes it."""

    def __init__(self, queue: FairQueue) -> None:
        self.queue = queue
        self.started: list[str] = []
        self._finish: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, name: str) -> None:
        """Job ``name`` of study ``name[0]`` (e.g. ``"a2"``) asks for a worker."""
        self._finish[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._run(name))

    async def _run(self, name: str) -> None:
        async with self.queue.turn(name[0]):
            self.started.append(name)
            await self._finish[name].wait()

    async def finish(self, name: str) -> None:
        self._finish[name].set()
        await self.tasks[name]
        await settle()


async def settle() -> None:
    """Lets every ready task run until none is."""
    for _ in range(20):
        await asyncio.sleep(0)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


def test_a_study_with_many_asks_queued_does_not_hold_up_the_others() -> None:
    async def body() -> None:
        jobs = Jobs(FairQueue(1))
        for name in ("a1", "a2", "a3", "a4", "b1", "c1", "b2"):
            jobs.submit(name)
        await settle()
        assert jobs.started == ["a1"]
        assert (jobs.queue.running, jobs.queue.waiting) == (1, 6)
        for name in ("a1", "a2", "b1", "c1", "a3", "b2"):
            await jobs.finish(name)
        # First come, first served would have run a2, a3, a4 before b1 and c1.
        assert jobs.started == ["a1", "a2", "b1", "c1", "a3", "b2", "a4"]
        await jobs.finish("a4")
        assert (jobs.queue.running, jobs.queue.waiting) == (0, 0)

    run(body)


def test_a_study_holds_at_most_half_the_workers_while_others_wait() -> None:
    async def body() -> None:
        jobs = Jobs(FairQueue(4))
        for name in ("a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3"):
            jobs.submit(name)
        await settle()
        # Nobody waited when a1..a4 came: they took every worker.
        assert jobs.started == ["a1", "a2", "a3", "a4"]
        await jobs.finish("a1")
        await jobs.finish("a2")
        # a5 waited first, but study a holds 2 of 4 workers while b waits: b goes.
        assert jobs.started[4:] == ["b1", "b2"]
        await jobs.finish("a3")
        # a holds 1, b holds 2: a's turn.
        assert jobs.started[6:] == ["a5"]
        await jobs.finish("a4")
        assert jobs.started[7:] == ["b3"]
        for name in ("a5", "b1", "b2", "b3"):
            await jobs.finish(name)
        assert (jobs.queue.running, jobs.queue.waiting) == (0, 0)

    run(body)


def test_one_study_alone_uses_every_worker() -> None:
    async def body() -> None:
        jobs = Jobs(FairQueue(3))
        for name in ("a1", "a2", "a3", "a4", "a5"):
            jobs.submit(name)
        await settle()
        assert jobs.started == ["a1", "a2", "a3"]
        await jobs.finish("a1")
        assert jobs.started == ["a1", "a2", "a3", "a4"]  # no other study: no share to keep
        for name in ("a2", "a3", "a4", "a5"):
            await jobs.finish(name)

    run(body)


def test_a_cancelled_wait_gives_its_turn_away() -> None:
    async def body() -> None:
        jobs = Jobs(FairQueue(1))
        for name in ("a1", "b1", "c1"):
            jobs.submit(name)
        await settle()
        jobs.tasks["b1"].cancel()
        await settle()
        assert (jobs.queue.running, jobs.queue.waiting) == (1, 1)
        await jobs.finish("a1")
        assert jobs.started == ["a1", "c1"]
        await jobs.finish("c1")
        with pytest.raises(asyncio.CancelledError):
            await jobs.tasks["b1"]
        assert (jobs.queue.running, jobs.queue.waiting) == (0, 0)

    run(body)


def test_a_failed_computation_frees_its_worker() -> None:
    async def body() -> None:
        queue = FairQueue(1)

        async def fails() -> None:
            async with queue.turn("a"):
                raise RuntimeError("the worker died")

        with pytest.raises(RuntimeError):
            await fails()
        assert (queue.running, queue.waiting) == (0, 0)
        async with queue.turn("b"):
            assert queue.running == 1

    run(body)


def test_refuses_no_workers() -> None:
    with pytest.raises(ValueError):
        FairQueue(0)
