"""The one place that maps typed errors to gRPC status codes and rich error details."""

from __future__ import annotations

import re

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from hyperdial_server.core import errors

#: ``google.rpc.ErrorInfo.domain`` of every error the service sends.
ERROR_DOMAIN = "hyperdial.dev"

_CODES: dict[type[errors.HyperdialError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.StudyComplete: grpc.StatusCode.OUT_OF_RANGE,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
}


def status_code(error: errors.HyperdialError) -> grpc.StatusCode:
    """The gRPC code of a typed error (walking its class hierarchy)."""
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.INTERNAL


#: Most UTF-8 bytes of the message, and of each metadata value, in an error's details.
#: Messages quote the caller's input: unclipped, a huge name would swell the trailers past
#: gRPC's metadata limit (8 KiB by default), and the caller would get RESOURCE_EXHAUSTED
#: instead of the error.
MAX_MESSAGE_BYTES = 1024
MAX_VALUE_BYTES = 256


def _clip(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def to_status(error: errors.HyperdialError) -> grpc.Status:
    """A ``grpc.Status`` carrying ``google.rpc.Status`` with an ``ErrorInfo`` (and a
    ``BadRequest`` naming the field, for invalid arguments, and a ``RetryInfo`` when the error
    carries a ``retry_delay``); texts clipped to a few KiB."""
    code = status_code(error)
    message = _clip(error.message, MAX_MESSAGE_BYTES)
    metadata = {k: _clip(v, MAX_VALUE_BYTES) for k, v in error.metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    details = [_pack(info)]
    field = metadata.get("field")
    if code is grpc.StatusCode.INVALID_ARGUMENT and field:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=field, description=field_description(message, field)
                )
            ]
        )
        details.append(_pack(bad))
    retry_delay = getattr(error, "retry_delay", None)
    if retry_delay is not None:
        # Tells a well-behaved client when to come back (RESOURCE_EXHAUSTED of load shedding).
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromNanoseconds(int(retry_delay * 1e9))
        details.append(_pack(retry))
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message, details=details)
    )


def field_description(message: str, field: str) -> str:
    """The ``BadRequest`` description of an error on ``field``: its message without the
    field's path in front, which ``FieldViolation.field`` carries already.

    Messages name the field for people who read only the status message ("count must be
    between 1 and 100; got 0", "parameters[0]: min (1.0) must be less than max (0.0)"). A
    leading word that is the field or a run of whole segments of its path ("max_trials" of
    "spec.max_trials", "parameters[0]" of "spec.parameters[0].float_domain"), with its colon,
    is left out.
    """
    head, _, rest = message.partition(" ")
    path = head.removesuffix(":")
    if not path or not rest:
        return message
    if re.search(rf"(?:^|\.){re.escape(path)}(?:$|[.\[])", field) is None:
        return message
    return rest


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
