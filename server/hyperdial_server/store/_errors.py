"""The error mapping of the stores, in one place: store error codes and Redis failures to
typed errors of :mod:`hyperdial_server.core.errors`.

* **Store error codes.** Every Lua script replies ``{"OK", ...}`` or ``{CODE, detail}``; the
  memory store raises the same codes. :data:`ERRORS` is the one table mapping each code to its
  typed error (:func:`store_error`), so both stores word their errors alike.
* **Redis failures.** A command that Redis refuses or that cannot reach Redis raises a
  redis-py exception; :class:`RedisErrors` gives each kind its own typed error and reason
  (unreachable, out of memory, read-only, loading, a script that failed on damaged keys...),
  so a caller can tell a retry that may work now from one that needs an operator first. Its
  messages name the server without its credentials.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import redis.exceptions as rx

from hyperdial_server.core.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    HyperdialError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
    study_data_loss,
    study_not_found,
    trial_not_found,
)
from hyperdial_server.store._base import StaleStudy
from hyperdial_server.store._link import ReplicaBacklog

# --- store error codes -------------------------------------------------------------------------


def _trial(study_id: str, number: int | None) -> str:
    return f"trial 'studies/{study_id}/trials/{number}'"


def _not_running(study_id: str, number: int | None, detail: str) -> Exception:
    # detail: the trial's state, with ":expired" when its lease expired.
    state, _, why = detail.partition(":")
    where = f"is {state}, not RUNNING" if state else "is not RUNNING"
    if why == "expired":
        where += (
            " (its lease expired: no heartbeat and no result within the study's lease_timeout; "
            "a result sent with CompleteTrial is still recorded)"
        )
    metadata = {"state": state} if state else {}
    if why == "expired":
        metadata["lease_expired"] = "true"
    return FailedPrecondition(
        f"{_trial(study_id, number)} {where}; only a RUNNING trial can be completed, renewed or "
        "take measurements",
        reason="TRIAL_NOT_RUNNING",
        metadata=metadata or None,
    )


def _step_not_increasing(study_id: str, number: int | None, detail: str) -> Exception:
    # detail: the trial's last reported step, with ":values" for the same step, other values.
    last, _, why = detail.partition(":")
    if why == "values":
        where = f"reported step {last} already, with other values"
    else:
        where = f"reported step {last} already; a report's step may not go below it"
    return FailedPrecondition(
        f"{_trial(study_id, number)} {where} (a retry of the last report must repeat its "
        "values; a new report needs a higher step)",
        reason="STEP_NOT_INCREASING",
        metadata={"last_step": last},
    )


_ErrorFactory = Callable[[str, int | None, str], Exception]

#: Store error code -> typed error, from (study id, trial number, detail).
ERRORS: dict[str, _ErrorFactory] = {
    "STUDY_NOT_FOUND": lambda study_id, number, detail: study_not_found(study_id),
    "STUDY_ALREADY_EXISTS": lambda study_id, number, detail: AlreadyExists(
        f"study 'studies/{study_id}' already exists; choose another id or delete it first",
        reason="STUDY_ALREADY_EXISTS",
    ),
    "STALE_STUDY": lambda study_id, number, detail: StaleStudy(
        f"study 'studies/{study_id}' was deleted and created again since it was read"
    ),
    "TRIAL_NOT_FOUND": lambda study_id, number, detail: trial_not_found(study_id, number or 0),
    "TRIAL_NOT_RUNNING": _not_running,
    "STEP_NOT_INCREASING": _step_not_increasing,
    "REQUEST_IN_PROGRESS": lambda study_id, number, detail: Unavailable(
        f"an earlier call with this request_id on study 'studies/{study_id}' is still in "
        "progress; retry with the same request_id to get its answer",
        reason="REQUEST_IN_PROGRESS",
    ),
    "REQUEST_ID_REUSED": lambda study_id, number, detail: InvalidArgument(
        f"request_id was already used for another call on study 'studies/{study_id}' "
        f"({detail}); use a new id for every distinct call",
        field="request_id",
        reason="REQUEST_ID_REUSED",
    ),
    "REQUEST_ID_MISMATCH": lambda study_id, number, detail: InvalidArgument(
        f"request_id was already used on study 'studies/{study_id}' for a {detail} call with "
        "other arguments; a retry must repeat the call exactly (send the first request again "
        "to get its answer), and a new call needs a new request_id",
        field="request_id",
        reason="REQUEST_ID_MISMATCH",
    ),
    "TOO_MANY_STUDIES": lambda study_id, number, detail: ResourceExhausted(
        f"the namespace already holds the most studies it may ({detail}); delete studies "
        "that are no longer needed",
        reason="TOO_MANY_STUDIES",
        metadata={"limit": detail},
    ),
    "CLAIM_EXPIRED": lambda study_id, number, detail: FailedPrecondition(
        f"the claim of sampler indices of study 'studies/{study_id}' expired before its "
        "trials were created, and the indices may have been handed out again; ask again",
        reason="CLAIM_EXPIRED",
    ),
    # A script that finds the study's keys inconsistent (detail: what is missing).
    "DATA_LOSS": lambda study_id, number, detail: study_data_loss(
        study_id, detail or "its keys disagree"
    ),
}


def store_error(code: str, study_id: str, number: int | None = None, detail: str = "") -> Exception:
    """The typed error for a store error code, from :data:`ERRORS`.

    Args:
        code: A key of :data:`ERRORS`.
        study_id: The study of the call.
        number: The trial of the call, for trial errors.
        detail: For ``TRIAL_NOT_RUNNING``: the trial's state, with ``:expired`` when its lease
            expired; for ``STEP_NOT_INCREASING``: the trial's last step, with ``:values``
            when the report repeats it with other values; for ``REQUEST_ID_REUSED`` and
            ``REQUEST_ID_MISMATCH``: what the id was
            used for; for ``TOO_MANY_STUDIES``: the limit; for ``DATA_LOSS``: what is
            missing.

    Returns:
        The error to raise; a ``RuntimeError`` for an unknown code (a script and the table
        disagree).
    """
    factory = ERRORS.get(code)
    if factory is None:
        return RuntimeError(f"unknown store error code {code!r}")
    return factory(study_id, number, detail)


# --- Redis failures ----------------------------------------------------------------------------

#: Failures that mean "the store cannot serve right now". ConnectionError covers refused
#: connections, authentication, a full pool and LOADING (BusyLoadingError); ReadOnlyError and
#: ClusterDownError happen during a failover. :meth:`RedisErrors.failure` gives each its reason.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.ReadOnlyError,
    rx.ClusterDownError,
    rx.TryAgainError,
    OSError,
)
#: Every failure of a store command that :meth:`RedisErrors.failure` maps to a typed error:
#: the above and every error reply of Redis (out of memory, a script that met damaged keys,
#: ...). Anything else (a bug of ours) propagates.
STORE_FAILURES: tuple[type[BaseException], ...] = (*UNAVAILABLE, rx.ResponseError)

# redis-py's BlockingConnectionPool message when no pooled connection freed up in time.
_POOL_EXHAUSTED = "No connection available."

# The refusal inside a script's error: "... @user_script:19: -OOM command not allowed ...".
_SCRIPT_REFUSAL = re.compile(r"-(OOM|READONLY|NOREPLICAS|MISCONF|BUSY)\b.*", re.DOTALL)
_INNER_ERRORS: dict[str, type[rx.ResponseError]] = {
    "OOM": rx.OutOfMemoryError,
    "READONLY": rx.ReadOnlyError,
}


class RedisErrors:
    """The typed errors of one Redis store's failed commands.

    Args:
        where: How to name the server in error messages, without credentials.
        hide: Texts (passwords) never to show in an error message.
    """

    def __init__(self, where: str, hide: Sequence[str] = ()) -> None:
        self.where = where
        self.hide = [h for h in hide if h]

    def scrub(self, text: str) -> str:
        """``text`` with every hidden text replaced by ``***``."""
        for secret in self.hide:
            text = text.replace(secret, "***")
        return text

    def unavailable(self, exc: BaseException) -> Unavailable:
        """The error of a command that could not reach Redis (one of :data:`UNAVAILABLE`, or
        the link's :class:`._link.ReplicaBacklog`)."""
        if isinstance(exc, ReplicaBacklog) or (
            isinstance(exc, rx.ConnectionError) and str(exc) == _POOL_EXHAUSTED
        ):
            # The call waited behind this replica's own queue (link or pool), not for Redis.
            return Unavailable(
                f"this replica is overloaded; retry on another ({exc})",
                reason="REPLICA_OVERLOADED",
            )
        detail = self.scrub(str(exc))
        return Unavailable(
            f"the store at {self.where} cannot be reached ({type(exc).__name__}: {detail}); "
            "retry later"
        )

    def failure(self, exc: BaseException, study_id: str | None = None) -> HyperdialError:
        """The typed error of a store command that failed with ``exc`` (one of
        :data:`STORE_FAILURES`): each kind of Redis failure gets its own code and reason, so a
        caller can tell a retry that may work now from one that needs an operator first.

        Args:
            exc: What redis-py raised, or the error reply of a pipelined command.
            study_id: The study whose keys the command touched, if one: named in a DATA_LOSS.
        """
        detail = self.scrub(str(exc))
        where = f"the store at {self.where}"
        # A script whose first write Redis refuses (out of memory, a replica, no replicas to
        # write to) fails with that refusal wrapped in "Error running script": nothing was
        # written, so it is the refusal, not damaged keys. Map the inner error as if bare.
        inner = _SCRIPT_REFUSAL.search(str(exc))
        if inner is not None and type(exc) is rx.ResponseError:
            exc = _INNER_ERRORS.get(inner.group(1), rx.ResponseError)(inner.group(0).lstrip("-"))
        if isinstance(exc, rx.OutOfMemoryError):
            return ResourceExhausted(
                f"{where} is full: Redis refuses writes above its maxmemory ({detail}); a retry "
                "(with the same request_id) works once an operator frees memory or raises "
                "maxmemory",
                reason="STORE_OUT_OF_MEMORY",
            )
        if isinstance(exc, rx.ReadOnlyError):
            return Unavailable(
                f"{where} is a read-only replica ({detail}): a failover is under way, or the "
                "URL names a replica; retry later",
                reason="STORE_READ_ONLY",
            )
        if isinstance(exc, rx.BusyLoadingError):
            return Unavailable(
                f"{where} is loading its data set after a restart; retry in a few seconds",
                reason="STORE_LOADING",
            )
        if isinstance(exc, UNAVAILABLE):
            return self.unavailable(exc)
        # Error replies redis-py has no class for start with their code.
        code = str(exc).split(" ", 1)[0]
        if code == "BUSY":
            return Unavailable(
                f"{where} is busy running a script ({detail}); retry later",
                reason="STORE_BUSY",
            )
        if code in ("MISCONF", "NOREPLICAS"):
            # MISCONF: it cannot write its RDB snapshot; NOREPLICAS: min-replicas-to-write.
            return Unavailable(
                f"{where} refuses writes until an operator fixes it ({detail}); retry later",
                reason="STORE_WRITES_REFUSED",
            )
        if code == "WRONGTYPE" or (type(exc) is rx.ResponseError and "user_script" in str(exc)):
            # Our scripts fail at run time only on keys not as they wrote them (a record
            # evicted or deleted by hand): the study is damaged, retrying cannot help. (A
            # subclass, such as NOPERM inside a script, is Redis refusing, not damage.)
            if study_id is not None:
                return study_data_loss(study_id, f"a store script failed on its keys: {detail}")
            return DataLoss(
                f"{where} holds keys that are not as hyperdial wrote them ({detail}); an "
                "operator must repair them (check maxmemory-policy noeviction, "
                "docs/operations.md)",
                reason="STORE_DATA_LOSS",
            )
        # Anything else (a command the server lacks or an ACL denies, a module's error): the
        # store refuses what it should take; only an operator can change that.
        return FailedPrecondition(
            f"{where} refused a command ({detail}); an operator must fix the store's version, "
            "ACL or configuration (docs/operations.md)",
            reason="STORE_REJECTED",
        )
