"""Blocks of sampler indices a replica reserved ahead, so that a RANDOM ask is one store call.

An ask normally takes two steps in the store: a claim hands out an index, the replica computes
its point, a commit creates the trial. For RANDOM, whose point ``i`` is an independent draw
from ``(seed, i)``, a replica may instead reserve a block of indices at once
(``Store.reserve_indices``) and then ask in one step (``Store.commit_reserved``). The store's
counter keeps every replica's blocks apart; an index a replica never uses (it stopped, or an
ask fell back to the two steps) is skipped, which no RANDOM point depends on.

This cache is a speed-up, not a source of truth: losing it loses nothing. It is bounded (LRU)
and keyed by the study's uid, so a study deleted and created again never gets stale indices.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

#: Indices a replica reserves per study at a time: one extra store call per this many asks.
BLOCK = 64
#: Most studies whose blocks a replica keeps (least recently used dropped first).
MAX_STUDIES = 1024
#: After an ask fell back for a reason that outlasts it (enqueued trials, points waiting for
#: re-issue, an expired claim, max_trials), this many asks of the study take the two steps
#: directly, instead of trying the one step first.
SKIP_AFTER_FALLBACK = 16

Key = tuple[str, str, str]  # namespace, study id, uid


class _Block:
    __slots__ = ("next", "end", "skip", "refill")

    def __init__(self) -> None:
        self.next = 0
        self.end = 0
        self.skip = 0
        # The reservation in flight, shared by the asks that found the block empty.
        self.refill: asyncio.Future[None] | None = None


class IndexReservations:
    """Per-study blocks of reserved sampler indices, for one replica.

    Args:
        reserve: Reserves ``count`` indices of a study (``Store.reserve_indices`` bound to a
            store); returns the first.
        block: Indices reserved at a time.
        max_studies: Most studies kept.
    """

    def __init__(
        self,
        reserve: Callable[[str, str, str, int], Awaitable[int]],
        *,
        block: int = BLOCK,
        max_studies: int = MAX_STUDIES,
    ) -> None:
        self._reserve = reserve
        self._block_size = block
        self._max_studies = max_studies
        self._blocks: OrderedDict[Key, _Block] = OrderedDict()

    def _get(self, key: Key) -> _Block:
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = _Block()
            if len(self._blocks) > self._max_studies:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(key)
        return block

    def should_try(self, key: Key) -> bool:
        """Whether an ask of the study should try the one step (``False`` for a while after a
        fallback that outlasts the ask)."""
        block = self._blocks.get(key)
        if block is None or block.skip == 0:
            return True
        block.skip -= 1
        return False

    def fell_back(self, key: Key) -> None:
        """Records that an ask of the study fell back for a reason that outlasts it."""
        self._get(key).skip = SKIP_AFTER_FALLBACK

    async def take(self, key: Key, count: int) -> list[int]:
        """``count`` indices of the study reserved for this replica, reserving more as needed.

        Raises:
            Whatever ``reserve`` raises (the study is gone or was created again).
        """
        block = self._get(key)
        out: list[int] = []
        while len(out) < count:
            if block.next < block.end:
                take = min(count - len(out), block.end - block.next)
                out.extend(range(block.next, block.next + take))
                block.next += take
                continue
            if block.refill is None:
                block.refill = asyncio.get_running_loop().create_future()
                refill = block.refill
                try:
                    size = max(self._block_size, count - len(out))
                    first = await self._reserve(key[0], key[1], key[2], size)
                    block.next, block.end = first, first + size
                    refill.set_result(None)
                except asyncio.CancelledError:
                    refill.set_result(None)  # not the waiters' error: they reserve themselves
                    raise
                except Exception as e:
                    refill.set_exception(e)
                    refill.exception()  # retrieved: the waiters, if any, re-raise it
                    raise
                finally:
                    block.refill = None
            else:
                await asyncio.shield(block.refill)
        return out
