"""Retries of failed calls: the policy, and the bookkeeping of one call's attempts.

Two layers retry, each for what it sees best:

* gRPC itself, from the channel's service config, retries a call that failed with
  ``UNAVAILABLE`` a few times within a fraction of a second (a replica restarting, a connection
  reset). It resends the same bytes, so the same ``request_id``.
* The client, from a :class:`RetryPolicy`, retries ``UNAVAILABLE`` (whatever its reason,
  e.g. ``ASK_CONTENDED``), ``DEADLINE_EXCEEDED``, and any error whose reason is in
  :data:`RETRYABLE_REASONS` (``TOO_MANY_REQUESTS``, ``STORE_OUT_OF_MEMORY``,
  ``REQUEST_IN_PROGRESS``), with exponential backoff and jitter within an overall deadline
  (a longer outage, a server that stopped answering, a replica shedding load). When the
  answer carries a ``google.rpc.RetryInfo``, the wait is at least its ``retry_delay``. Errors
  a retry cannot fix (``DATA_LOSS``, ``FAILED_PRECONDITION`` ``STORE_REJECTED``,
  ``INVALID_ARGUMENT``, ...) are never retried. gRPC never retries
  ``DEADLINE_EXCEEDED`` by design: the call may have taken effect. Here it is safe, because
  every mutating call carries a ``request_id`` that the service deduplicates, and the client
  keeps that id across its retries.

Each attempt has its own deadline, much shorter than the overall one (see
:data:`hyperdial._channel.METHOD_TIMEOUTS`): an attempt stuck on a replica that stopped
answering ends after a few seconds, and its retry goes to the next replica, instead of the
whole call waiting on the frozen one.

The overall deadline is meant for outages of a service the client has been talking to (a
replica restarting mid-study). A client that has never reached the service (a wrong address,
a server that is not running, TLS on one side only) would only wait it out in silence, so
until the first contact a much shorter *connect timeout* bounds the call instead.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc

__all__ = [
    "RETRYABLE_CODES",
    "RETRYABLE_REASONS",
    "WARN_FROM_RETRY",
    "Attempts",
    "RetryPolicy",
    "from_transport",
]

logger = logging.getLogger("hyperdial")


class _Failure(Protocol):
    code: grpc.StatusCode
    message: str


E = TypeVar("E", bound=_Failure)

#: The codes a :class:`RetryPolicy` retries by default.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: Reasons a :class:`RetryPolicy` retries by default whatever the code (the reasons the
#: service sends as ``UNAVAILABLE``, such as ``STORE_UNAVAILABLE`` or ``ASK_CONTENDED``, are
#: retried by their code already):
#:
#: * ``TOO_MANY_REQUESTS`` (``RESOURCE_EXHAUSTED``): a replica sheds list calls
#:   (``ListStudies``, ``ListTrials``, ``ListOptimalTrials``) beyond its admission limits; the
#:   answer's ``google.rpc.RetryInfo`` says how long to wait at least, and the client does.
#: * ``STORE_OUT_OF_MEMORY`` (``RESOURCE_EXHAUSTED``): the store is full and made no change;
#:   the same call works once an operator frees memory, so from a worker's view it is an
#:   outage like any other (normal backoff, within the overall deadline).
#: * ``REQUEST_IN_PROGRESS``: another attempt with the same ``request_id`` is still running
#:   (an attempt the client gave up on, on a slow or frozen replica); retrying with the same id
#:   gets that attempt's answer once it is recorded. The service sends it as UNAVAILABLE; a
#:   server that sends it as FAILED_PRECONDITION is retried all the same.
#: * ``CLAIM_EXPIRED`` (``FAILED_PRECONDITION``): what servers before ``ASK_CONTENDED`` sent
#:   for an ask that lost its claim; ``docs/protocol.md`` says to retry it.
#:
#: Every other ``RESOURCE_EXHAUSTED`` (``TOO_MANY_STUDIES``, ``NAMESPACE_SPEC_BUDGET``, a
#: request over 4 MiB) and ``FAILED_PRECONDITION`` (``STORE_REJECTED``, ``TRIAL_NOT_RUNNING``)
#: is not retried, nor is ``DATA_LOSS``: sending the same call again answers the same.
RETRYABLE_REASONS = frozenset(
    {"TOO_MANY_REQUESTS", "STORE_OUT_OF_MEMORY", "REQUEST_IN_PROGRESS", "CLAIM_EXPIRED"}
)
#: Retries from this one on (1 for the first retry) are logged at WARNING, the earlier ones at
#: INFO: a blip or two is routine, a call still failing after several retries is why a job
#: seems stuck, and its log should say so without extra configuration.
WARN_FROM_RETRY = 3


def from_transport(error: _Failure) -> bool:
    """Whether ``error`` came from the transport rather than from the service: the call found
    no connection, or no answer in time (``UNAVAILABLE`` or ``DEADLINE_EXCEEDED`` without a
    reason; every error the service sends carries one)."""
    transport = error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return transport and not getattr(error, "reason", "")


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries a failed call.

    An error is retried when its code is in ``codes`` (by default ``UNAVAILABLE``, whatever
    its reason, and ``DEADLINE_EXCEEDED``) or its reason in ``reasons`` (by default
    ``TOO_MANY_REQUESTS``, ``STORE_OUT_OF_MEMORY``, ``REQUEST_IN_PROGRESS`` and
    ``CLAIM_EXPIRED``, whatever their code: see :data:`RETRYABLE_REASONS`). ``DATA_LOSS``,
    ``STORE_REJECTED``, ``INVALID_ARGUMENT`` and the other errors a retry cannot fix are
    never retried by default. The wait before retry *n* (1, 2, ...) is drawn uniformly from
    ``[0, min(max_backoff, initial_backoff * multiplier ** (n - 1))]`` ("full jitter", the
    same rule as gRPC's own retries), so many workers that lose a replica at once do not come
    back in step. When the error carries a ``google.rpc.RetryInfo`` (``TOO_MANY_REQUESTS``
    does), its ``retry_delay`` is added to that draw: the wait is at least what the service
    asked for, and still jittered. Retries stop when the overall ``deadline`` would pass
    before the next attempt (a ``retry_delay`` included), or after ``max_attempts`` attempts,
    whichever comes first; the last error is raised then.

    Args:
        deadline: Seconds from the first attempt after which no attempt starts, and which no
            attempt outlives; ``None`` for no overall deadline (then set ``max_attempts``).
        max_attempts: Most attempts, the first included; ``None`` for no limit but the
            deadline.
        initial_backoff: Upper bound of the first wait, in seconds.
        max_backoff: Upper bound of any wait, in seconds.
        multiplier: Growth of the upper bound from one retry to the next.
        codes: The status codes that are retried.
        reasons: The error reasons (``google.rpc.ErrorInfo.reason``) that are retried
            whatever their code; pass ``RETRYABLE_REASONS - {"STORE_OUT_OF_MEMORY"}``, for
            example, to fail at once on a full store.

    Example:
        >>> Client("localhost:50051", retry=RetryPolicy(deadline=600))  # doctest: +SKIP
    """

    deadline: float | None = 120.0
    max_attempts: int | None = None
    initial_backoff: float = 0.2
    max_backoff: float = 10.0
    multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)
    reasons: frozenset[str] = field(default=RETRYABLE_REASONS)

    def __post_init__(self) -> None:
        if self.deadline is None and self.max_attempts is None:
            raise ValueError("a RetryPolicy needs a deadline, max_attempts, or both")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be positive or None; got {self.deadline}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 or None; got {self.max_attempts}")
        if not 0 <= self.initial_backoff <= self.max_backoff:
            raise ValueError(
                "backoffs must satisfy 0 <= initial_backoff <= max_backoff; got "
                f"{self.initial_backoff} and {self.max_backoff}"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be at least 1; got {self.multiplier}")
        object.__setattr__(self, "codes", frozenset(self.codes))
        object.__setattr__(self, "reasons", frozenset(self.reasons))

    def backoff_bound(self, retry: int) -> float:
        """Upper bound of the wait before retry number ``retry`` (1 for the first retry)."""
        return float(min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1)))


class Attempts:
    """The attempts of one call: how long each may take, and whether and when to retry.

    While ``reached()`` is false (the client has never reached the service), ``connect_timeout``
    bounds the call as a second, shorter overall deadline: attempts are cut to it, and no retry
    starts past it. Once ``reached()`` turns true, even in the middle of the call, only the
    overall deadline applies, so a restart of the service is ridden out as usual. Without a
    policy it does not apply: the single attempt has its own deadline, and an attempt cut short
    could not be made again.

    Args:
        method: The RPC's name, for the log.
        policy: The retry policy; ``None`` for a single attempt.
        timeout: Deadline of each attempt in seconds; ``None`` leaves it to the overall
            deadline (and the channel's service config).
        deadline: Overall deadline in seconds, instead of the policy's.
        target: The service's address, for the log.
        connect_timeout: Seconds from the first attempt within which the service must be
            reached; ``None`` for no such bound.
        reached: Whether the client has reached the service by now; read before each attempt
            and after each failure.
        clock: Monotonic seconds (injectable for tests of the arithmetic).
        rng: Uniform numbers in ``[0, 1)``, for the jitter.
    """

    def __init__(
        self,
        method: str,
        policy: RetryPolicy | None,
        timeout: float | None,
        *,
        deadline: float | None = None,
        target: str = "",
        connect_timeout: float | None = None,
        reached: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.method = method
        self.target = target
        self.count = 1
        self._cut = False
        self._unavailable: Any = None
        self._policy = policy
        self._timeout = timeout
        self._reached = reached
        self._clock = clock
        self._rng = rng
        start = clock()
        overall = deadline if deadline is not None else (policy.deadline if policy else None)
        self._end = None if overall is None else start + overall
        if connect_timeout is None or policy is None:
            self._connect_end: float | None = None
        else:
            self._connect_end = start + connect_timeout

    def _ends(self) -> list[float]:
        """The deadlines that bound the call now: the overall one, and the connect timeout's
        while the service has not been reached."""
        ends = [] if self._end is None else [self._end]
        if self._connect_end is not None and not self._reached():
            ends.append(self._connect_end)
        return ends

    def timeout(self) -> float | None:
        """Deadline of the next attempt: the per-attempt timeout, cut to what is left."""
        self._cut = False
        ends = self._ends()
        if not ends:
            return self._timeout
        left = max(min(ends) - self._clock(), 0.0)
        if self._timeout is None or left < self._timeout:
            self._cut = True
            return left
        return self._timeout

    def last_error(self, error: E) -> E:
        """The error to report when giving up after ``error``.

        An attempt that ran out of the overall deadline while the service could not be
        reached ends in ``DEADLINE_EXCEEDED``; the ``UNAVAILABLE`` of an earlier attempt says
        more (for example "connection refused"), so that one is reported instead.
        """
        if error.code is grpc.StatusCode.DEADLINE_EXCEEDED and self._cut:
            return self._unavailable if self._unavailable is not None else error
        return error

    def failed(self, error: E) -> float | None:
        """Seconds to wait before the next attempt after ``error`` (anything with ``code``
        and ``message``, and optionally ``reason`` and ``retry_delay``), or ``None`` to give
        up."""
        if error.code is grpc.StatusCode.UNAVAILABLE:
            self._unavailable = error
        return self.retry_after(
            error.code,
            error.message,
            getattr(error, "reason", ""),
            retry_delay=getattr(error, "retry_delay", None),
        )

    def retry_after(
        self,
        code: grpc.StatusCode,
        details: str,
        reason: str = "",
        *,
        retry_delay: float | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt after a failure, or ``None`` to give up.

        The wait is the policy's jittered backoff, plus ``retry_delay`` when the service sent
        one; ``None`` also when that wait would end past the overall deadline.

        Args:
            code: Status code of the failed attempt.
            details: Its message, for the log.
            reason: Its reason token, "" if none.
            retry_delay: The least wait the service asked for (``google.rpc.RetryInfo``), in
                seconds; ``None`` if it asked for none.
        """
        policy = self._policy
        if policy is None or (code not in policy.codes and reason not in policy.reasons):
            return None
        if policy.max_attempts is not None and self.count >= policy.max_attempts:
            return None
        floor = retry_delay if retry_delay is not None and retry_delay > 0 else 0.0
        wait = floor + self._rng() * policy.backoff_bound(self.count)
        if any(self._clock() + wait >= end for end in self._ends()):
            return None
        self.count += 1
        logger.log(
            logging.WARNING if self.count - 1 >= WARN_FROM_RETRY else logging.INFO,
            "retrying %s%s in %.2f s after %s (attempt %d%s): %s",
            self.method,
            f" on {self.target}" if self.target else "",
            wait,
            f"{code.name}/{reason}" if reason else code.name,
            self.count,
            f", server asked for {floor:.2f} s" if retry_delay is not None else "",
            details,
            # For tests and log processors: the wait, and the least wait asked for.
            extra={"retry_wait": wait, "retry_delay": retry_delay},
        )
        return wait
