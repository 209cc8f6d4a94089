"""Mounting the tuning service on a gRPC server, with a parser that never fails.

The generated ``add_TuningServiceServicer_to_server`` parses requests with ``FromString``: bytes
that are not a valid message (corrupt wire format, bad UTF-8 in a string) make the parser raise,
and gRPC answers UNKNOWN. Here the parser hands the handler a :class:`MalformedRequest`
instead, which the handlers answer INVALID_ARGUMENT (reason ``MALFORMED_REQUEST``) like any other
bad input.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError, Message

from hyperdial.v1 import tuning_service_pb2

SERVICE = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"]


class MalformedRequest:
    """What a handler receives in place of a request whose bytes do not parse.

    Attributes:
        message_type: Full name of the expected message.
        error: Why parsing failed.
    """

    def __init__(self, message_type: str, error: str) -> None:
        self.message_type = message_type
        self.error = error


def _parser(cls: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    def parse(data: bytes) -> Message | MalformedRequest:
        try:
            return cls.FromString(data)
        except (DecodeError, RecursionError) as e:
            return MalformedRequest(cls.DESCRIPTOR.full_name, str(e))

    return parse


def add_tuning_servicer(servicer: object, server: grpc.aio.Server) -> None:
    """Mounts ``servicer``'s handlers of ``hyperdial.v1.TuningService`` on ``server``.

    Args:
        servicer: Has one coroutine method per RPC of the service, by RPC name.
        server: A ``grpc.aio`` server, not yet started.
    """
    handlers = {}
    for method in SERVICE.methods:
        request_cls = getattr(tuning_service_pb2, method.input_type.name)
        response_cls = getattr(tuning_service_pb2, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=_parser(request_cls),
            response_serializer=response_cls.SerializeToString,
        )
    generic = grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
