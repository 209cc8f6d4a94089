"""Admission control: how much heavy read work one replica takes on at a time.

A replica serves every call from one event loop and sends every script over one pipelined
connection to Redis (``store._link``). A heavy read (a page of up to 1000 trials, of studies, or
a Pareto front) costs that loop and that connection tens of times what an ask or a tell does, so
hundreds of them in flight put every later call, whoever sent it, behind their replies. This
module bounds them:

* at most ``tenant`` heavy reads of one namespace in flight, and ``replica`` in all;
* a heavy read without a slot waits for one, at most ``wait`` seconds, behind at most ``queue``
  others of its namespace (and ``queue`` in all waiting for a replica-wide slot);
* past that it is refused at once with RESOURCE_EXHAUSTED, reason ``TOO_MANY_REQUESTS``, and a
  ``google.rpc.RetryInfo`` hint, so that a greedy client slows down instead of sinking the
  replica. Asks, tells and the light reads (``GetStudy``, ``GetTrial``) never wait here.

An ask or a tell therefore waits behind at most ``replica`` heavy reads' worth of loop time and
Redis replies, whatever the number of heavy callers (``docs/operations.md`` gives the figures).

The semaphores are load control, not a correctness mechanism: they bound work, the store keeps
every call correct whatever runs concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hyperdial_server.core.errors import ResourceExhausted

#: Reason of a heavy read refused by admission control.
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"


@dataclass(frozen=True)
class AdmissionLimits:
    """Bounds of the heavy reads of one replica.

    Attributes:
        replica: Most heavy reads in flight on the replica, every namespace together.
        tenant: Most heavy reads of one namespace in flight.
        queue: Most heavy reads waiting for a slot, per namespace and replica-wide.
        wait: Most seconds a heavy read waits for a slot before it is refused.
    """

    # A 1000-trial page costs ~15 ms of replica CPU: 4 in flight keep the work ahead of an ask
    # or a tell under ~60 ms, and one namespace gets at most half of it.
    replica: int = 4
    tenant: int = 2
    queue: int = 16
    wait: float = 1.0

    def __post_init__(self) -> None:
        if self.replica < 1 or self.tenant < 1 or self.queue < 0 or self.wait < 0:
            raise ValueError(f"admission limits out of range: {self}")


class _Gate:
    """A semaphore that knows how many callers hold it and wait for it."""

    def __init__(self, slots: int) -> None:
        self.semaphore = asyncio.Semaphore(slots)
        self.waiting = 0
        self.users = 0  # holders and waiters; an idle tenant's gate is dropped


class Admission:
    """Admits heavy reads within :class:`AdmissionLimits`; one per replica (servicer).

    Args:
        limits: The bounds.
    """

    def __init__(self, limits: AdmissionLimits | None = None) -> None:
        self.limits = limits or AdmissionLimits()
        self._replica = _Gate(self.limits.replica)
        self._tenants: dict[str, _Gate] = {}

    @property
    def in_flight(self) -> int:
        """Heavy reads holding a replica-wide slot now."""
        return self.limits.replica - self._replica.semaphore._value

    @property
    def waiting(self) -> int:
        """Heavy reads waiting for a slot now (tenant or replica-wide)."""
        return sum(g.waiting for g in self._tenants.values()) + self._replica.waiting

    @contextlib.asynccontextmanager
    async def heavy(self, namespace: str) -> AsyncIterator[None]:
        """Holds a slot of ``namespace`` and a replica-wide slot for the ``async with`` body.

        Raises:
            ResourceExhausted: No slot within the queue and wait bounds (reason
                ``TOO_MANY_REQUESTS``, with ``retry_delay`` set).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.wait
        tenant = self._tenants.get(namespace)
        if tenant is None:
            tenant = self._tenants[namespace] = _Gate(self.limits.tenant)
        tenant.users += 1
        try:
            await self._acquire(tenant, deadline, namespace)
            try:
                await self._acquire(self._replica, deadline, None)
                try:
                    yield
                finally:
                    self._replica.semaphore.release()
            finally:
                tenant.semaphore.release()
        finally:
            tenant.users -= 1
            if tenant.users == 0 and self._tenants.get(namespace) is tenant:
                del self._tenants[namespace]

    async def _acquire(self, gate: _Gate, deadline: float, namespace: str | None) -> None:
        if not gate.semaphore.locked() and gate.waiting == 0:
            await gate.semaphore.acquire()  # free: does not suspend
            return
        if gate.waiting >= self.limits.queue:
            raise self._refusal(namespace, "queue is full")
        gate.waiting += 1
        try:
            remaining = deadline - asyncio.get_running_loop().time()
            # wait_for (not asyncio.timeout, 3.11+) gives the slot back if it came too late.
            await asyncio.wait_for(gate.semaphore.acquire(), max(0.0, remaining))
        except asyncio.TimeoutError:
            raise self._refusal(namespace, "no slot within the wait bound") from None
        finally:
            gate.waiting -= 1

    def _refusal(self, namespace: str | None, why: str) -> ResourceExhausted:
        limits = self.limits
        if namespace is None:
            scope = f"this replica serves at most {limits.replica} list calls at a time"
        else:
            scope = (
                f"namespace {namespace!r} may have at most {limits.tenant} list calls in flight "
                "on this replica"
            )
        # Jittered, so that refused callers do not come back in step.
        delay = max(limits.wait, 0.1) * (1.0 + random.random())
        return ResourceExhausted(
            f"too many list calls: {scope} and {why}; retry after {delay:.1f} s, or list with "
            "fewer concurrent calls",
            reason=TOO_MANY_REQUESTS,
            metadata={"scope": "replica" if namespace is None else "namespace"},
            retry_delay=delay,
        )


__all__ = ["TOO_MANY_REQUESTS", "Admission", "AdmissionLimits"]
