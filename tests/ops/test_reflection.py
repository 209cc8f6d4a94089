"""gRPC server reflection, over real gRPC: the ``v1`` service that current tools ask first,
and ``v1alpha`` for older ones, each listing every service the server serves."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2

from hyperdial_server import _reflection

SERVICES = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "hyperdial.v1.TuningService",
]


def _v1_message(name: str) -> type[Any]:
    """A message class of ``grpc.reflection.v1`` from a pool of its own, so that requests are
    built, and answers parsed, as a ``v1`` client does: by the ``v1`` names and numbers."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_reflection.v1_file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"grpc.reflection.v1.{name}"))


def _info(channel: grpc.Channel, version: str) -> grpc.StreamStreamMultiCallable:
    """The raw ``ServerReflectionInfo`` stream of reflection ``version``."""
    if version == "v1":
        request, response = (
            _v1_message("ServerReflectionRequest"),
            _v1_message("ServerReflectionResponse"),
        )
    else:
        request, response = (
            reflection_pb2.ServerReflectionRequest,
            reflection_pb2.ServerReflectionResponse,
        )
    return channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString,
    )


def _ask(target: str, version: str, **fields: Any) -> Any:
    """One request on a fresh reflection stream; its one answer."""
    request_class = (
        _v1_message("ServerReflectionRequest")
        if version == "v1"
        else reflection_pb2.ServerReflectionRequest
    )
    with grpc.insecure_channel(target) as channel:
        answers = list(_info(channel, version)(iter([request_class(**fields)]), timeout=30))
    assert len(answers) == 1
    assert type(answers[0]).DESCRIPTOR.full_name == (
        f"grpc.reflection.{version}.ServerReflectionResponse"
    )
    return answers[0]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_lists_every_service(server_target: str, version: str) -> None:
    answer = _ask(server_target, version, list_services="")
    assert answer.WhichOneof("message_response") == "list_services_response"
    assert sorted(s.name for s in answer.list_services_response.service) == SERVICES


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_describes_the_tuning_service(server_target: str, version: str) -> None:
    answer = _ask(server_target, version, file_containing_symbol="hyperdial.v1.TuningService")
    files = {}
    for raw in answer.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[proto.name] = proto
    service = files["hyperdial/v1/tuning_service.proto"].service[0]
    assert service.name == "TuningService"
    assert "SuggestTrials" in [m.name for m in service.method]
    # With its imports, so that a client can build every message type.
    assert "hyperdial/v1/study.proto" in files and "google/protobuf/duration.proto" in files


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_describes_both_reflection_services(server_target: str, version: str) -> None:
    for other in ("v1", "v1alpha"):
        symbol = f"grpc.reflection.{other}.ServerReflection"
        answer = _ask(server_target, version, file_containing_symbol=symbol)
        assert answer.WhichOneof("message_response") == "file_descriptor_response"
        proto = descriptor_pb2.FileDescriptorProto.FromString(
            answer.file_descriptor_response.file_descriptor_proto[0]
        )
        assert proto.package == f"grpc.reflection.{other}"
        method = proto.service[0].method[0]
        assert method.name == "ServerReflectionInfo"
        assert method.input_type == f".grpc.reflection.{other}.ServerReflectionRequest"


def test_an_unknown_symbol_is_not_found_on_v1(server_target: str) -> None:
    answer = _ask(server_target, "v1", file_containing_symbol="no.such.Service")
    assert answer.WhichOneof("message_response") == "error_response"
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_the_v1_file_is_the_v1alpha_file_renamed() -> None:
    """Same messages, fields and numbers: what makes the one servicer right for both."""
    alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(alpha)
    v1 = _reflection.v1_file_descriptor()
    assert v1.package == "grpc.reflection.v1" and v1.name == "grpc/reflection/v1/reflection.proto"
    assert [m.name for m in v1.message_type] == [m.name for m in alpha.message_type]
    for mine, theirs in zip(v1.message_type, alpha.message_type, strict=True):
        assert [(f.name, f.number, f.type, f.label) for f in mine.field] == [
            (f.name, f.number, f.type, f.label) for f in theirs.field
        ]
        assert [f.type_name.replace(".v1.", ".v1alpha.") for f in mine.field] == [
            f.type_name for f in theirs.field
        ]
