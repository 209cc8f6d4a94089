"""gRPC server reflection under both names: ``grpc.reflection.v1`` and ``v1alpha``.

``grpcio-reflection`` serves only ``grpc.reflection.v1alpha.ServerReflection``. Current tools
(grpcurl, Postman, grpcui, the Java and Go reflection clients) ask ``v1`` first and older ones
only know ``v1alpha``, so both are served. The two protocols are the same messages under two
package names (``grpc/reflection/v1/reflection.proto`` is a copy of the ``v1alpha`` file
with the package renamed), so one servicer answers both: the ``v1`` service is the
``v1alpha`` servicer registered under the ``v1`` name, and its file descriptor, built from the
``v1alpha`` one with the package renamed, goes into the default descriptor pool so that
reflection can describe the ``v1`` service as well.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

#: Full name of the reflection service of ``grpcio-reflection``.
V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
#: Full name of the current reflection service.
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
#: Name of the ``v1`` reflection file, as in gRPC's repository.
V1_FILE = "grpc/reflection/v1/reflection.proto"

_METHOD = "ServerReflectionInfo"
_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The ``grpc.reflection.v1`` file: the ``v1alpha`` file under the ``v1`` package, with
    the language options of gRPC's ``v1`` file."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = V1_FILE
    proto.package = _V1_PACKAGE
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    proto.ClearField("options")
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.java_multiple_files = True
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    return proto


def _add_v1_file(pool: descriptor_pool.DescriptorPool) -> None:
    """Adds the ``v1`` file to ``pool`` unless it holds one already (another library's)."""
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serves reflection on ``server`` under the ``v1`` and the ``v1alpha`` names.

    Args:
        service_names: Full names of the services to list, besides the two reflection
            services themselves.
        server: The server; reflection describes files of the default descriptor pool.
    """
    _add_v1_file(descriptor_pool.Default())
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    # The same servicer under the v1 name: the messages are the same bytes in both packages.
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            _METHOD: grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
