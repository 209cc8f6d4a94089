"""The one place that maps typed errors to gRPC status codes and rich error details."""

from __future__ import annotations

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
}


def status_code(error: errors.HyperdialError) -> grpc.StatusCode:
    """The gRPC code of a typed error (walking its class hierarchy)."""
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.INTERNAL


def to_status(error: errors.HyperdialError) -> grpc.Status:
    """A ``grpc.Status`` carrying ``google.rpc.Status`` with an ``ErrorInfo`` (and a
    ``BadRequest`` naming the field, for invalid arguments)."""
    code = status_code(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
    )
    details = [_pack(info)]
    field = error.metadata.get("field")
    if code is grpc.StatusCode.INVALID_ARGUMENT and field:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=error.message)
            ]
        )
        details.append(_pack(bad))
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=error.message, details=details)
    )


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
