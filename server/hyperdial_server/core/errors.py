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
    """A quota or size limit of the service is reached."""

    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(HyperdialError):
    """The store cannot be reached right now; the call may be retried."""

    default_reason = "STORE_UNAVAILABLE"


class Unauthenticated(HyperdialError):
    """The call carries no valid credentials (bearer token missing, malformed or unknown)."""

    default_reason = "UNAUTHENTICATED"


class PermissionDenied(HyperdialError):
    """The caller is known but its role does not allow this call."""

    default_reason = "PERMISSION_DENIED"


def study_not_found(study_id: str) -> NotFound:
    """The error for an absent study, worded the same everywhere."""
    return NotFound(f"study 'studies/{study_id}' does not exist", reason="STUDY_NOT_FOUND")


def trial_not_found(study_id: str, number: int) -> NotFound:
    """The error for an absent trial, worded the same everywhere."""
    return NotFound(
        f"trial 'studies/{study_id}/trials/{number}' does not exist", reason="TRIAL_NOT_FOUND"
    )
