"""Typed errors of the domain.

Every error a user can cause is one of these classes, carrying a stable ``reason`` token
(UPPER_SNAKE_CASE, sent as ``google.rpc.ErrorInfo.reason``) and a message the user can act on.
The service layer maps each class to one gRPC status code in one place
(``hyperdial_server.service._status``); nothing below the service layer knows about gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping


class HyperdialError(Exception):
    """Base class of every error the service reports to a caller.

    Args:
        message: What went wrong and what to do about it.
        reason: Stable machine-readable token; defaults to the class's ``default_reason``.
        metadata: Extra facts for the caller (for example ``{"field": "spec.parameters[2]"}``).
    """

    default_reason = "ERROR"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(HyperdialError):
    """The request is malformed or asks for something impossible, whatever the state."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, *, field: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message, reason=reason, metadata={"field": field} if field else None)
        self.field = field


class NotFound(HyperdialError):
    """The named study or trial does not exist."""

    default_reason = "NOT_FOUND"


class AlreadyExists(HyperdialError):
    """The resource to create exists already."""

    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(HyperdialError):
    """The request is valid but the resource is not in a state that allows it."""

    default_reason = "FAILED_PRECONDITION"


class StudyComplete(HyperdialError):
    """The study has no trial left to hand out (grid exhausted or ``max_trials`` reached)."""

    default_reason = "STUDY_COMPLETE"


class ResourceExhausted(HyperdialError):
    """A quota or size limit of the service is reached.

    Args:
        message: What went wrong and what to do about it.
        reason: Stable machine-readable token.
        metadata: Extra facts for the caller.
        retry_delay: Seconds after which a retry may succeed (sent as ``google.rpc.RetryInfo``);
            ``None`` when waiting does not help (a size limit).
    """

    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_delay = retry_delay


class Unavailable(HyperdialError):
    """The store cannot be reached right now; the call may be retried."""

    default_reason = "STORE_UNAVAILABLE"


class Unauthenticated(HyperdialError):
    """The call carries no valid credentials (bearer token missing, malformed or unknown)."""

    default_reason = "UNAUTHENTICATED"


class PermissionDenied(HyperdialError):
    """The caller is known but its role does not allow this call."""

    default_reason = "PERMISSION_DENIED"


class DataLoss(HyperdialError):
    """Stored state is missing or not as the service wrote it (a study whose keys disagree,
    after an eviction, a lost write or a hand edit); retrying does not help."""

    default_reason = "STUDY_DATA_LOSS"


def study_not_found(study_id: str) -> NotFound:
    """The error for an absent study, worded the same everywhere."""
    return NotFound(f"study 'studies/{study_id}' does not exist", reason="STUDY_NOT_FOUND")


def trial_not_found(study_id: str, number: int) -> NotFound:
    """The error for an absent trial, worded the same everywhere."""
    return NotFound(
        f"trial 'studies/{study_id}/trials/{number}' does not exist", reason="TRIAL_NOT_FOUND"
    )


def study_data_loss(study_id: str, what: str) -> DataLoss:
    """The error for a study whose stored keys are inconsistent, worded the same everywhere.

    Args:
        study_id: The study.
        what: What is missing or wrong (for the operator).
    """
    return DataLoss(
        f"study 'studies/{study_id}' is damaged in the store ({what}); its data cannot be "
        "trusted: an operator must restore it from a backup or delete it (check that Redis "
        "runs with maxmemory-policy noeviction and AOF, docs/operations.md)",
        reason="STUDY_DATA_LOSS",
        metadata={"study": f"studies/{study_id}"},
    )
