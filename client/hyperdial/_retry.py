"""Retries of failed calls: the policy, and the bookkeeping of one call's attempts.

Two layers retry, each for what it sees best:

* gRPC itself, from the channel's service config, retries a call that failed with
  ``UNAVAILABLE`` a few times within a fraction of a second (a replica restarting, a connection
  reset). It resends the same bytes, so the same ``request_id``.
* The client, from a :class:`RetryPolicy`, retries ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED``
  with exponential backoff and jitter within an overall deadline (a longer outage, a server
  that stopped answering). gRPC never retries ``DEADLINE_EXCEEDED`` by design: the call may
  have taken effect. Here it is safe, because every mutating call carries a ``request_id``
  that the service deduplicates, and the client keeps that id across its retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc

__all__ = ["RETRYABLE_CODES", "Attempts", "RetryPolicy"]

logger = logging.getLogger("hyperdial")


class _Failure(Protocol):
    code: grpc.StatusCode
    message: str


E = TypeVar("E", bound=_Failure)

#: The codes a :class:`RetryPolicy` retries by default.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries a failed call.

    The wait before retry *n* (1, 2, ...) is drawn uniformly from
    ``[0, min(max_backoff, initial_backoff * multiplier ** (n - 1))]`` ("full jitter", the
    same rule as gRPC's own retries), so many workers that lose a replica at once do not come
    back in step. Retries stop when the overall ``deadline`` would pass before the next
    attempt, or after ``max_attempts`` attempts, whichever comes first; the last error is
    raised then.

    Args:
        deadline: Seconds from the first attempt after which no attempt starts, and which no
            attempt outlives; ``None`` for no overall deadline (then set ``max_attempts``).
        max_attempts: Most attempts, the first included; ``None`` for no limit but the
            deadline.
        initial_backoff: Upper bound of the first wait, in seconds.
        max_backoff: Upper bound of any wait, in seconds.
        multiplier: Growth of the upper bound from one retry to the next.
        codes: The status codes that are retried.

    Example:
        >>> Client("localhost:50051", retry=RetryPolicy(deadline=600))  # doctest: +SKIP
    """

    deadline: float | None = 120.0
    max_attempts: int | None = None
    initial_backoff: float = 0.2
    max_backoff: float = 10.0
    multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)

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

    def backoff_bound(self, retry: int) -> float:
        """Upper bound of the wait before retry number ``retry`` (1 for the first retry)."""
        return float(min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1)))


class Attempts:
    """The attempts of one call: how long each may take, and whether and when to retry.

    Args:
        method: The RPC's name, for the log.
        policy: The retry policy; ``None`` for a single attempt.
        timeout: Deadline of each attempt in seconds; ``None`` leaves it to the overall
            deadline (and the channel's service config).
        deadline: Overall deadline in seconds, instead of the policy's.
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
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.method = method
        self.count = 1
        self._cut = False
        self._unavailable: Any = None
        self._policy = policy
        self._timeout = timeout
        self._clock = clock
        self._rng = rng
        overall = deadline if deadline is not None else (policy.deadline if policy else None)
        self._end = None if overall is None else clock() + overall

    def timeout(self) -> float | None:
        """Deadline of the next attempt: the per-attempt timeout, cut to what is left."""
        self._cut = False
        if self._end is None:
            return self._timeout
        left = max(self._end - self._clock(), 0.0)
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
        and ``message``), or ``None`` to give up."""
        if error.code is grpc.StatusCode.UNAVAILABLE:
            self._unavailable = error
        return self.retry_after(error.code, error.message)

    def retry_after(self, code: grpc.StatusCode, details: str) -> float | None:
        """Seconds to wait before the next attempt after a failure, or ``None`` to give up.

        Args:
            code: Status code of the failed attempt.
            details: Its message, for the log.
        """
        policy = self._policy
        if policy is None or code not in policy.codes:
            return None
        if policy.max_attempts is not None and self.count >= policy.max_attempts:
            return None
        wait = self._rng() * policy.backoff_bound(self.count)
        if self._end is not None and self._clock() + wait >= self._end:
            return None
        self.count += 1
        logger.info(
            "retrying %s in %.2f s after %s (attempt %d): %s",
            self.method,
            wait,
            code.name,
            self.count,
            details,
        )
        return wait
