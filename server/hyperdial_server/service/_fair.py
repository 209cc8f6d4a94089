"""``FairQueue``: the sampler workers' queue, by study, so that no study starves the others.

A replica's sampler workers are few (one per core but one) and every model-based ask, parameter
importance and recommendation of every study it serves runs on them. In one first-come queue a
study whose workers ask often, or whose asks are slow (50 parameters, a long recommendation),
fills it, and every other study's ask waits behind all of that study's. Here each study has its
own line, and the free workers share their time between the studies waiting (start-time fair
queueing, with the computations' measured seconds as their cost):

* Each study has a virtual finish time: the virtual time of its last computation's start plus
  what its computations cost (seconds on a worker, estimated at the start from the study's
  recent ones and corrected at the end). A free worker takes the waiting study whose next
  computation would start earliest in virtual time (``max(now, its finish)``), ties in turn
  order (round robin). So a study of 2-second asks gets a turn for every twenty 0.1-second
  asks of another: each busy study gets the same share of the workers' *time*, not of their
  turns, and a study that asks now and then (its finish long past) goes before every study
  that keeps the workers busy.
* A study that was idle comes back at the present virtual time: it gets no credit for the time
  it did not use, so it cannot take the workers for a burst.
* At most ``slots`` computations run at once (the workers): the rest wait here, in their
  studies' lines, where the order can still be chosen, not in the pool's own first-come queue.
* While other studies wait, one study holds at most ``max(1, slots // 2)`` workers: a study
  with many asks in flight cannot take every worker the moment they free up. With nothing else
  waiting it may use them all (the queue never leaves a worker idle that a computation could
  use).

A computation is not interrupted, so an ask may still wait for one computation already running
(up to ``slots`` of them), but not for a queue of another study's.

It orders computations; it guards no data (the store does that), so it is an in-process
structure: each replica schedules its own workers.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

#: How much of a study's cost estimate its newest computation makes up (an exponential average:
#: a study's asks get slower as it grows, or faster once it is told fewer parameters).
_COST_WEIGHT = 0.5

#: Studies whose virtual finish is remembered before the forgotten ones are dropped: a study
#: whose finish has passed is the same as one never seen, so memory holds the recent studies.
_REMEMBERED = 1024


class FairQueue:
    """Admits computations to ``slots`` workers, sharing their time between keys (studies).

    Args:
        slots: Computations that may run at once (at least 1).
        clock: Seconds, for the cost of computations (monotonic; a test passes its own).
    """

    def __init__(self, slots: int, clock: Callable[[], float] = time.monotonic) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1; got {slots}")
        self.slots = slots
        #: Most workers one key holds while other keys wait.
        self.share = max(1, slots // 2)
        self._clock = clock
        self._running = 0
        self._by_key: collections.Counter[str] = collections.Counter()
        # Keys with waiters, in turn order (the next to be served first among equals), and
        # their waiters.
        self._turns: collections.OrderedDict[str, collections.deque[asyncio.Future[float]]] = (
            collections.OrderedDict()
        )
        # Virtual time: the start of the computation admitted last (it never goes back, as
        # the earliest start is admitted first and no start is before it).
        self._now = 0.0
        # The latest virtual finish of any key: the virtual time once every worker is idle.
        self._latest = 0.0
        self._finish: dict[str, float] = {}
        self._cost: dict[str, float] = {}  # a key's estimated seconds per computation
        self._forget_at = _REMEMBERED

    @property
    def running(self) -> int:
        """Computations admitted and not finished."""
        return self._running

    @property
    def waiting(self) -> int:
        """Computations waiting for a worker."""
        return sum(len(line) for line in self._turns.values())

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """Waits for ``key``'s turn and a free worker; the computation runs in the block.

        A caller cancelled while waiting leaves the line without taking a worker.
        """
        if not self._turns and self._running < self.slots:
            estimate = self._admit(key)  # nobody waits: no turn to take
        else:
            waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self._turns.setdefault(key, collections.deque()).append(waiter)
            self._dispatch()
            try:
                estimate = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Admitted just as the caller was cancelled: it cost nothing.
                    self._release(key, waiter.result(), 0.0)
                else:
                    self._leave(key, waiter)
                raise
        began = self._clock()
        try:
            yield
        finally:
            self._release(key, estimate, max(0.0, self._clock() - began))

    def _start(self, key: str) -> float:
        """The virtual time at which ``key``'s next computation would start."""
        return max(self._now, self._finish.get(key, 0.0))

    def _admit(self, key: str) -> float:
        """Counts ``key``'s computation as running and charges it its estimated cost, which
        it returns (the release corrects the charge by what it really cost)."""
        self._running += 1
        self._by_key[key] += 1
        self._now = self._start(key)
        estimate = self._cost.get(key, 0.0)
        self._charge(key, self._now + estimate)
        return estimate

    def _charge(self, key: str, finish: float) -> None:
        self._finish[key] = finish
        self._latest = max(self._latest, finish)

    def _release(self, key: str, estimate: float, cost: float) -> None:
        self._running -= 1
        self._by_key[key] -= 1
        if not self._by_key[key]:
            del self._by_key[key]
        self._charge(key, self._finish.get(key, self._now) + cost - estimate)
        old = self._cost.get(key)
        self._cost[key] = cost if old is None else old + _COST_WEIGHT * (cost - old)
        if not self._running and not self._turns:
            self._now = self._latest  # all idle: every key's computations are in the past
        if len(self._finish) > self._forget_at:
            self._forget()
            # Next time at twice the keys kept: at most O(1) work per release on average.
            self._forget_at = max(_REMEMBERED, 2 * len(self._finish))
        self._dispatch()

    def _forget(self) -> None:
        """Drops the keys whose finish has passed and that have nothing running or waiting:
        remembered or not, their next computation starts now."""
        for key in [k for k, f in self._finish.items() if f <= self._now]:
            if key not in self._by_key and key not in self._turns:
                del self._finish[key]
                self._cost.pop(key, None)

    def _leave(self, key: str, waiter: asyncio.Future[float]) -> None:
        line = self._turns.get(key)
        if line is not None and waiter in line:
            line.remove(waiter)
            if not line:
                del self._turns[key]
        self._dispatch()

    def _dispatch(self) -> None:
        """Admits waiters while workers are free: the key whose next computation starts
        earliest in virtual time among those that may take one more worker (the first in turn
        order among equals); that key goes to the end of the turn order."""
        while self._running < self.slots and self._turns:
            others_wait = len(self._turns) > 1
            chosen: str | None = None
            earliest = 0.0
            for key in self._turns:
                if others_wait and self._by_key[key] >= self.share:
                    continue
                start = self._start(key)
                if chosen is None or start < earliest:
                    chosen, earliest = key, start
            if chosen is None:
                # Every waiting key holds its share: the earliest takes the worker rather than
                # leave it idle.
                chosen = min(self._turns, key=self._start)
            line = self._turns[chosen]
            waiter = line.popleft()
            if waiter.done():
                # Its caller was cancelled and has not run since to leave the line: the wait
                # takes no worker, and the key keeps its place.
                if not line:
                    del self._turns[chosen]
                continue
            del self._turns[chosen]
            if line:
                self._turns[chosen] = line  # to the end of the turn order
            waiter.set_result(self._admit(chosen))
