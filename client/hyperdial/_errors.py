"""Typed errors of the client: one class per status code a caller can act on.

Every ``grpc.RpcError`` the public API meets is converted by :func:`from_rpc_error`, so callers
branch on a class or on the stable ``reason`` token (``STUDY_NOT_FOUND``, ``STUDY_COMPLETE``,
``TRIAL_NOT_RUNNING``, ...) instead of parsing messages.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from hyperdial._status_details import details_from_metadata

__all__ = [
    "AlreadyExistsError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "HyperdialError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ServiceUnreachableError",
    "StudyCompleteError",
    "StudySpecMismatchError",
    "UnauthenticatedError",
    "UnavailableError",
    "from_rpc_error",
]


class HyperdialError(Exception):
    """An error answered by the service (or by the transport on the way to it).

    Args:
        message: What went wrong, as the service worded it.
        code: The gRPC status code.
        reason: The stable ``google.rpc.ErrorInfo.reason`` token; "" when the answer had none.
        metadata: ``google.rpc.ErrorInfo.metadata``, e.g. ``{"field": "spec.parameters[0]"}``.
        retry_delay: ``google.rpc.RetryInfo.retry_delay`` in seconds: the service asks to wait
            at least this long before retrying; ``None`` when the answer had none.

    Attributes:
        code: The gRPC status code.
        reason: The stable reason token, "" if none.
        message: The message.
        metadata: Extra facts about the error.
        retry_delay: The least wait before a retry the service asked for, else ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_delay = retry_delay

    def __str__(self) -> str:
        tag = self.reason or self.code.name
        return f"{tag}: {self.message}" if self.message else tag

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are not in ``args``: pickle (multiprocessing) needs this.
        return (
            _rebuild,
            (type(self), self.message, self.code, self.reason, self.metadata, self.retry_delay),
        )


def _rebuild(
    cls: type[HyperdialError],
    message: str,
    code: grpc.StatusCode,
    reason: str,
    metadata: dict[str, str],
    retry_delay: float | None = None,
) -> HyperdialError:
    return cls(message, code=code, reason=reason, metadata=metadata, retry_delay=retry_delay)


class InvalidArgumentError(HyperdialError):
    """The request is malformed (``INVALID_ARGUMENT``): a bad spec, parameters or values.

    ``metadata["field"]``, when present, names the offending request field.
    """


class NotFoundError(HyperdialError):
    """The study or trial does not exist (``NOT_FOUND``)."""


class AlreadyExistsError(HyperdialError):
    """The study to create exists already (``ALREADY_EXISTS``)."""


class FailedPreconditionError(HyperdialError):
    """The resource is not in a state that allows the call (``FAILED_PRECONDITION``), for
    example a result told for a trial that is not running (``TRIAL_NOT_RUNNING``)."""


class StudyCompleteError(HyperdialError):
    """The study has no trial left to hand out: grid exhausted or ``max_trials`` reached
    (``OUT_OF_RANGE`` with reason ``STUDY_COMPLETE``)."""


class ResourceExhaustedError(HyperdialError):
    """A quota or size limit of the service is reached (``RESOURCE_EXHAUSTED``).

    Two reasons are transient, and retried by the client within its
    :class:`~hyperdial.RetryPolicy` before it raises this: ``TOO_MANY_REQUESTS`` (a replica
    sheds list calls; ``retry_delay`` says when to come back) and ``STORE_OUT_OF_MEMORY``
    (the store is full until an operator frees memory). The others (``TOO_MANY_STUDIES``,
    ``NAMESPACE_SPEC_BUDGET``, a request over 4 MiB) need a change of the request.
    """


class UnavailableError(HyperdialError):
    """The service or its store cannot be reached right now (``UNAVAILABLE``); retry later.

    The client has already retried within its :class:`~hyperdial.RetryPolicy` when it raises
    this.
    """


class ServiceUnreachableError(UnavailableError):
    """The client has never reached the service: nothing answered at the target within the
    client's ``connect_timeout`` (or its retries ran out first).

    Raised instead of a bare :class:`UnavailableError` while no call of this client has
    reached the service yet; its message names the target, the last transport error, and
    what to check (is the server running there; do client and server agree on TLS).
    ``metadata["target"]`` is the target (absent for a channel the caller passed in);
    ``code`` is the last error's (``UNAVAILABLE``, or
    ``DEADLINE_EXCEEDED`` when a connection got no answer).
    """


class StudySpecMismatchError(AlreadyExistsError, ValueError):
    """``create_study(..., load_if_exists=True)`` found the study with another spec.

    Its message lists every field that differs, requested against stored; only what the call
    specified is compared (the service's choices for what it left unset, such as the seed or
    the algorithm, are not differences). ``metadata["study"]`` is the study's name and
    ``metadata["fields"]`` the differing fields, one per line (see :attr:`fields`).
    """

    @property
    def fields(self) -> list[str]:
        """The fields that differ, e.g. ``["algorithm", "parameters['lr']"]``."""
        text = self.metadata.get("fields", "")
        return text.split("\n") if text else []


class DeadlineExceededError(HyperdialError):
    """No answer came within the call's deadline (``DEADLINE_EXCEEDED``), retries included."""


class UnauthenticatedError(HyperdialError):
    """The service needs a valid bearer token (``UNAUTHENTICATED``): none was given, or it is
    unknown."""


class PermissionDeniedError(HyperdialError):
    """The token is valid but its role does not allow the call (``PERMISSION_DENIED``)."""


class DataLossError(HyperdialError):
    """The stored data of a study is inconsistent (``DATA_LOSS``: reason ``STUDY_DATA_LOSS``,
    with ``metadata["study"]``, or ``STORE_DATA_LOSS``): an eviction or a hand edit of the
    store. Never retried: an operator must restore or delete the study."""


_BY_CODE: dict[grpc.StatusCode, type[HyperdialError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
}


def from_rpc_error(error: grpc.RpcError) -> HyperdialError:
    """Converts a failed call into the matching :class:`HyperdialError` subclass.

    The class follows the status code; ``OUT_OF_RANGE`` becomes :class:`StudyCompleteError`
    only with reason ``STUDY_COMPLETE``. The reason and metadata come from the
    ``google.rpc.ErrorInfo`` in the trailing metadata, when there is one, and ``retry_delay``
    from its ``google.rpc.RetryInfo``.

    Args:
        error: The exception raised by a gRPC stub.

    Returns:
        The typed error (not raised).
    """
    code = _call_or(error, "code", None)
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = details_from_metadata(_pairs(_call_or(error, "trailing_metadata", None)))
    message = _call_or(error, "details", None)
    if not isinstance(message, str) or not message:
        message = details.message or str(error)
    cls = _BY_CODE.get(code, HyperdialError)
    if code is grpc.StatusCode.OUT_OF_RANGE and details.reason == "STUDY_COMPLETE":
        cls = StudyCompleteError
    return cls(
        message,
        code=code,
        reason=details.reason,
        metadata=details.metadata,
        retry_delay=details.retry_delay,
    )


def _pairs(metadata: object) -> list[tuple[str, object]] | None:
    # A sync call gives a tuple of pairs; an asyncio call gives a ``grpc.aio.Metadata``.
    if metadata is None or isinstance(metadata, (str, bytes)):
        return None
    try:
        return [(str(k), v) for k, v in metadata]  # type: ignore[attr-defined]
    except Exception:
        return None


def _call_or(obj: object, method: str, default: object) -> object:
    # Only errors that are also ``grpc.Call`` objects have code() / details() / trailers.
    fn = getattr(obj, method, None)
    if not callable(fn):
        return default
    try:
        return fn()
    except Exception:
        return default
