"""The sampler workers' queue shares them between studies (``service/_fair.py``): the order in
which computations get a worker, driven step by step (no timing: each computation waits for an
event the test sets, and the queue's clock is the test's, moved by what each computation is
said to cost)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from hyperdial_server.service._fair import FairQueue


class Clock:
    """The queue's clock: seconds pass when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Jobs:
    """Computations on a queue (of ``slots`` workers, on the test's clock), each holding its
    worker until the test finishes it."""

    def __init__(self, slots: int) -> None:
        self.clock = Clock()
        self.queue = FairQueue(slots, clock=self.clock)
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

    async def finish(self, name: str, seconds: float = 0.0) -> None:
        """Finishes job ``name`` after ``seconds`` (during which no other job starts)."""
        self.clock.now += seconds
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
        jobs = Jobs(1)
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


def test_a_study_of_slow_computations_gets_the_same_share_of_time_not_of_turns() -> None:
    async def body() -> None:
        jobs = Jobs(1)
        for name in ("a1", "a2", "a3"):
            jobs.submit(name)
        # Study b's names: one letter, then a number (b1..b16).
        for i in range(1, 17):
            jobs.submit(f"b{i}")
        await settle()
        await jobs.finish("a1", 2.0)
        for i in range(1, 9):
            await jobs.finish(f"b{i}", 0.25)
        # Eight of b's quarter-seconds for one of a's two seconds; turn by turn, a would
        # have had a worker for eight seconds by now and b for one.
        assert jobs.started == ["a1"] + [f"b{i}" for i in range(1, 9)] + ["a2"]
        await jobs.finish("a2", 2.0)
        for i in range(9, 17):
            await jobs.finish(f"b{i}", 0.25)
        assert jobs.started[-1] == "a3"
        await jobs.finish("a3", 2.0)
        assert (jobs.queue.running, jobs.queue.waiting) == (0, 0)

    run(body)


def test_a_study_back_from_idle_gets_no_credit_for_the_time_it_did_not_use() -> None:
    async def body() -> None:
        jobs = Jobs(1)
        for i in range(1, 11):  # a alone for ten seconds
            jobs.submit(f"a{i}")
            await settle()
            await jobs.finish(f"a{i}", 1.0)
        jobs.submit("aa")
        await settle()
        for name in ("b1", "b2", "b3", "ab", "ac"):
            jobs.submit(name)
        await settle()
        await jobs.finish("aa", 1.0)
        for name in ("b1", "ab", "b2", "ac"):
            await jobs.finish(name, 1.0)
        # b waited first, then the two take turns: b's ten idle seconds buy it no burst.
        assert jobs.started[10:] == ["aa", "b1", "ab", "b2", "ac", "b3"]
        await jobs.finish("b3", 1.0)
        assert (jobs.queue.running, jobs.queue.waiting) == (0, 0)

    run(body)


def test_a_study_holds_at_most_half_the_workers_while_others_wait() -> None:
    async def body() -> None:
        jobs = Jobs(4)
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
        jobs = Jobs(3)
        for name in ("a1", "a2", "a3", "a4", "a5"):
            jobs.submit(name)
        await settle()
        assert jobs.started == ["a1", "a2", "a3"]
        await jobs.finish("a1")
        assert jobs.started == ["a1", "a2", "a3", "a4"]  # no other study: no share to keep
        for name in ("a2", "a3", "a4", "a5"):
            await jobs.finish(name)

    run(body)


@pytest.mark.parametrize("as_a_worker_frees", [False, True])
def test_a_cancelled_wait_gives_its_turn_away(as_a_worker_frees: bool) -> None:
    async def body() -> None:
        jobs = Jobs(1)
        for name in ("a1", "b1", "c1"):
            jobs.submit(name)
        await settle()
        if as_a_worker_frees:
            # In one step: a1 finishes and b1's caller is cancelled; a1's release runs first
            # and finds b1's wait already cancelled.
            jobs._finish["a1"].set()
            jobs.tasks["b1"].cancel()
            await settle()
        else:
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


def test_forgets_studies_whose_time_has_passed() -> None:
    async def body() -> None:
        queue = FairQueue(1, clock=Clock())
        for i in range(3000):
            async with queue.turn(f"study-{i}"):
                pass
        # Each study's finish has passed once the next started: the queue keeps a bounded
        # number of them, not one per study it ever served.
        assert len(queue._finish) <= 2048

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
