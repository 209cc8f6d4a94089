"""``FairQueue``: the sampler workers' queue, by study, so that no study starves the others.

A replica's sampler workers are few (one per core but one) and every model-based ask, parameter
importance and recommendation of every study it serves runs on them. In one first-come queue a
study whose workers ask often, or whose asks are slow (50 parameters, a long recommendation),
fills it, and every other study's ask waits behind all of that study's. Here each study has its
own line and the free workers take the studies in turn (round robin among the studies waiting),
so an ask waits for at most one computation of each other waiting study, however many asks
those studies have queued.

Two more rules:

* At most ``slots`` computations run at once (the workers): the rest wait here, in their
  studies' lines, where the order can still be chosen, not in the pool's own first-come queue.
* While other studies wait, one study holds at most ``max(1, slots // 2)`` workers: a study
  with many asks in flight cannot take every worker the moment they free up. With nothing else
  waiting it may use them all (the queue never leaves a worker idle that a computation could
  use).

It orders computations; it guards no data (the store does that), so it is an in-process
structure: each replica schedules its own workers.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairQueue:
    """Admits computations to ``slots`` workers, taking turns between keys (studies).

    Args:
        slots: Computations that may run at once (at least 1).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1; got {slots}")
        self.slots = slots
        #: Most workers one key holds while other keys wait.
        self.share = max(1, slots // 2)
        self._running = 0
        self._by_key: collections.Counter[str] = collections.Counter()
        # Keys with waiters, in turn order (the next to be served first), and their waiters.
        self._turns: collections.OrderedDict[str, collections.deque[asyncio.Future[None]]] = (
            collections.OrderedDict()
        )

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
            self._admit(key)  # nobody waits: no turn to take
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._turns.setdefault(key, collections.deque()).append(waiter)
            self._dispatch()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release(key)  # admitted just as the caller was cancelled
                else:
                    self._leave(key, waiter)
                raise
        try:
            yield
        finally:
            self._release(key)

    def _admit(self, key: str) -> None:
        self._running += 1
        self._by_key[key] += 1

    def _release(self, key: str) -> None:
        self._running -= 1
        self._by_key[key] -= 1
        if not self._by_key[key]:
            del self._by_key[key]
        self._dispatch()

    def _leave(self, key: str, waiter: asyncio.Future[None]) -> None:
        line = self._turns.get(key)
        if line is not None and waiter in line:
            line.remove(waiter)
            if not line:
                del self._turns[key]
        self._dispatch()

    def _dispatch(self) -> None:
        """Admits waiters while workers are free: the first key in turn order that may take
        one more worker; that key goes to the end of the order."""
        while self._running < self.slots and self._turns:
            others_wait = len(self._turns) > 1
            chosen = None
            for key in self._turns:
                if not others_wait or self._by_key[key] < self.share:
                    chosen = key
                    break
            if chosen is None:
                # Every waiting key holds its share: the oldest in turn takes the worker
                # rather than leave it idle.
                chosen = next(iter(self._turns))
            line = self._turns.pop(chosen)
            waiter = line.popleft()
            if line:
                self._turns[chosen] = line  # to the end of the turn order
            self._admit(chosen)
            waiter.set_result(None)
