"""Lease renewal: while a trial is open, the client tells the service it is still on it.

Every RUNNING trial holds a lease of the study's ``lease_timeout``; a trial whose lease
expires fails with reason "lease expired" and its point goes to another worker. A trial is
*open* from the ask that handed it out until it is told, failed or stopped through the
client. One daemon thread per client (one task per asyncio client) sends ``HeartbeatTrial``
for every open trial every :data:`RENEW_FRACTION` of its lease timeout, so a slow objective
keeps its trial however long it runs, and a worker that dies stops renewing.

An intermediate report (``AddTrialMeasurement``) renews the lease too: the client tells the
keeper (``renewed``), which pushes the trial's next heartbeat a whole interval back, so a
trial that reports more often than a third of its lease is never sent a heartbeat. A report
that stops the trial takes it out of the keeper, as a tell does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import grpc

from hyperdial._channel import METHOD_TIMEOUTS
from hyperdial._errors import (
    FailedPreconditionError,
    HyperdialError,
    NotFoundError,
    from_rpc_error,
)
from hyperdial.v1 import study_pb2

__all__ = [
    "AsyncLeaseKeeper",
    "LeaseKeeper",
    "RENEW_FRACTION",
    "UNKNOWN_LEASE_TIMEOUT",
    "lease_seconds",
]

logger = logging.getLogger("hyperdial")

#: A lease is renewed after this fraction of its timeout: two more renewals fit in before it
#: expires, so one lost heartbeat costs nothing.
RENEW_FRACTION = 1 / 3
#: Lease timeout assumed for a study created without one (it has the service's default, which
#: only the service knows); the ``lease_expire_time`` the service reports shortens the wait
#: when its lease is shorter.
UNKNOWN_LEASE_TIMEOUT = 30.0
_HEARTBEAT_TIMEOUT = METHOD_TIMEOUTS["HeartbeatTrial"]


def lease_seconds(spec: study_pb2.StudySpec) -> float | None:
    """The lease timeout of a study, in seconds; ``None`` for the service's default."""
    if spec.HasField("lease_timeout"):
        seconds = spec.lease_timeout.seconds + spec.lease_timeout.nanos / 1e9
        if seconds > 0:
            return float(seconds)
    return None


@dataclass
class _Lease:
    interval: float
    due: float


# Never renew more often than this, whatever the clocks say.
_MIN_WAIT = 0.05


class _Schedule:
    """Open trials and when each is due for renewal. Not thread-safe: owners lock.

    A trial is renewed every :data:`RENEW_FRACTION` of its study's lease timeout, and sooner
    when the lease the service reports (``lease_expire_time``) ends earlier than that
    suggests: a study created without a lease timeout has the service's default, which only
    the service knows.
    """

    def __init__(self, clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self.clock = clock
        self.wall = wall
        self.leases: dict[str, _Lease] = {}

    def _due(self, interval: float, expires: datetime | None) -> float:
        wait = interval
        if expires is not None:
            wait = min(wait, (expires.timestamp() - self.wall()) * RENEW_FRACTION)
        return self.clock() + max(wait, _MIN_WAIT)

    def add(self, name: str, lease_timeout: float, expires: datetime | None) -> None:
        interval = max(lease_timeout * RENEW_FRACTION, _MIN_WAIT)
        self.leases[name] = _Lease(interval, self._due(interval, expires))

    def renewed(self, name: str, expires: datetime | None) -> None:
        lease = self.leases.get(name)
        if lease is not None:
            lease.due = self._due(lease.interval, expires)

    def next_due(self) -> float | None:
        return min((lease.due for lease in self.leases.values()), default=None)

    def take_due(self) -> list[tuple[str, float]]:
        """The trials due now, rescheduled one interval ahead, with their intervals."""
        now = self.clock()
        due = [(name, lease) for name, lease in self.leases.items() if lease.due <= now]
        for _, lease in due:
            lease.due = now + lease.interval
        return [(name, lease.interval) for name, lease in due]


def _expires(response: object) -> datetime | None:
    """``lease_expire_time`` of a ``HeartbeatTrialResponse``'s trial, if set."""
    trial = getattr(response, "trial", None)
    if trial is None or not trial.HasField("lease_expire_time"):
        return None
    expires: datetime = trial.lease_expire_time.ToDatetime(tzinfo=timezone.utc)
    return expires


def _heartbeat_timeout(interval: float) -> float:
    # A heartbeat is useful until the lease ends (three intervals); it never delays the next
    # one, which is sent on time whatever this one does.
    return min(interval / RENEW_FRACTION, _HEARTBEAT_TIMEOUT)


def _outcome(name: str, error: HyperdialError | None) -> bool:
    """Logs a renewal's outcome; ``False`` when the trial is no longer open on the service."""
    if error is None:
        return True
    if isinstance(error, (FailedPreconditionError, NotFoundError)):
        # Ended elsewhere (expired, told by another process, study deleted): stop renewing.
        logger.info("stopped renewing the lease of %s: %s", name, error)
        return False
    if error.code is grpc.StatusCode.UNIMPLEMENTED:
        logger.info("the service has no leases to renew (%s): %s", name, error)
        return False
    logger.warning("could not renew the lease of %s (will retry): %s", name, error)
    return True


class LeaseKeeper:
    """Renews the leases of a client's open trials from one daemon thread.

    The thread starts with the first open trial and stops at :meth:`close`. It only sends:
    each heartbeat is asynchronous (a gRPC future), and its answer is handled by a callback,
    so a slow answer never delays another trial's renewal. A failed heartbeat is simply sent
    again at the next interval.

    Args:
        send: Starts ``HeartbeatTrial`` for a trial name with a deadline; returns its
            ``grpc.Future``.
        clock: Monotonic seconds.
        wall: Seconds since the epoch (to read the service's ``lease_expire_time``).
    """

    def __init__(
        self,
        send: Callable[[str, float], Any],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._send = send
        self._schedule = _Schedule(clock, wall)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Heartbeats answered so far (for tests and logs).
        self.sent = 0

    def add(self, name: str, lease_timeout: float, expires: datetime | None = None) -> None:
        """Starts renewing a trial's lease every fraction of ``lease_timeout`` seconds (sooner
        if ``expires``, the lease's end as the service reported it, comes first)."""
        with self._cond:
            if self._closed:
                return
            self._schedule.add(name, lease_timeout, expires)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hyperdial-leases", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def discard(self, name: str) -> None:
        """Stops renewing a trial's lease (told, failed, stopped, or ended elsewhere)."""
        with self._cond:
            self._schedule.leases.pop(name, None)

    def renewed(self, name: str, expires: datetime | None) -> None:
        """Notes that something else renewed a trial's lease (a report): its next heartbeat
        is due one interval from now (sooner if ``expires`` comes first). A trial the keeper
        does not hold stays out."""
        with self._cond:
            self._schedule.renewed(name, expires)
            self._cond.notify()

    def open_trials(self) -> list[str]:
        """The trials being renewed."""
        with self._cond:
            return sorted(self._schedule.leases)

    def close(self) -> None:
        """Stops the thread; open trials are no longer renewed."""
        with self._cond:
            self._closed = True
            self._schedule.leases.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_HEARTBEAT_TIMEOUT)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    due = self._schedule.next_due()
                    wait = None if due is None else due - self._schedule.clock()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._closed:
                    return
                batch = self._schedule.take_due()
            for name, interval in batch:
                try:
                    future = self._send(name, _heartbeat_timeout(interval))
                except Exception as e:  # e.g. the channel was closed under us
                    logger.warning("could not renew the lease of %s: %s", name, e)
                    continue
                future.add_done_callback(lambda f, name=name: self._answered(name, f))

    def _answered(self, name: str, future: Any) -> None:
        """Handles a heartbeat's answer (on a gRPC thread)."""
        error: HyperdialError | None = None
        response: object = None
        try:
            response = future.result()
        except grpc.RpcError as e:
            error = from_rpc_error(e)
        except Exception as e:  # cancelled when the channel closed
            logger.debug("heartbeat of %s ended: %r", name, e)
            return
        with self._cond:
            self.sent += 1
            if not _outcome(name, error):
                self._schedule.leases.pop(name, None)
            elif error is None:
                self._schedule.renewed(name, _expires(response))
                self._cond.notify()


class AsyncLeaseKeeper:
    """The asyncio counterpart of :class:`LeaseKeeper`: one task on the client's loop, and one
    short task per heartbeat.

    Args:
        send: Sends ``HeartbeatTrial`` for a trial name with a deadline; raises a converted
            error.
        clock: Monotonic seconds.
        wall: Seconds since the epoch.
    """

    def __init__(
        self,
        send: Callable[[str, float], Awaitable[object]],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._send = send
        self._schedule = _Schedule(clock, wall)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._beats: set[asyncio.Task[None]] = set()
        self._closed = False
        #: Heartbeats answered so far (for tests and logs).
        self.sent = 0

    def add(self, name: str, lease_timeout: float, expires: datetime | None = None) -> None:
        """Starts renewing a trial's lease; call from the client's event loop."""
        if self._closed:
            return
        self._schedule.add(name, lease_timeout, expires)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="hyperdial-leases"
            )
        self._wake.set()

    def discard(self, name: str) -> None:
        """Stops renewing a trial's lease."""
        self._schedule.leases.pop(name, None)

    def renewed(self, name: str, expires: datetime | None) -> None:
        """Notes that a report renewed a trial's lease (see :meth:`LeaseKeeper.renewed`)."""
        self._schedule.renewed(name, expires)
        self._wake.set()

    def open_trials(self) -> list[str]:
        """The trials being renewed."""
        return sorted(self._schedule.leases)

    async def close(self) -> None:
        """Stops the tasks."""
        self._closed = True
        self._schedule.leases.clear()
        tasks = [*self._beats, *([self._task] if self._task is not None else [])]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            due = self._schedule.next_due()
            self._wake.clear()
            wait = math.inf if due is None else due - self._schedule.clock()
            if wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if due is None else wait)
                continue
            for name, interval in self._schedule.take_due():
                beat = asyncio.get_running_loop().create_task(
                    self._beat(name, _heartbeat_timeout(interval))
                )
                self._beats.add(beat)
                beat.add_done_callback(self._beats.discard)

    async def _beat(self, name: str, timeout: float) -> None:
        error: HyperdialError | None = None
        response: object = None
        try:
            response = await self._send(name, timeout)
        except HyperdialError as e:
            error = e
        except Exception as e:
            logger.warning("could not renew the lease of %s: %s", name, e)
            return
        self.sent += 1
        if not _outcome(name, error):
            self._schedule.leases.pop(name, None)
        elif error is None:
            self._schedule.renewed(name, _expires(response))
            self._wake.set()
