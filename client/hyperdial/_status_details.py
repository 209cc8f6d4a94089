"""Reads the ``google.rpc.ErrorInfo`` and ``google.rpc.RetryInfo`` the service sends in
``grpc-status-details-bin``.

The client installs only ``grpcio`` and ``protobuf``, so it cannot import
``googleapis-common-protos``. The three messages it needs (``google.rpc.Status``,
``google.rpc.ErrorInfo`` and ``google.rpc.RetryInfo``) are declared here from a
``FileDescriptorProto`` in a private descriptor pool: never the default pool, so they cannot
clash with the real ``google.rpc`` modules when both are installed in one process.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, message_factory

#: Trailing metadata key of the serialized ``google.rpc.Status``.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_INFO = "google.rpc.ErrorInfo"
_RETRY_INFO = "google.rpc.RetryInfo"

_FDP = descriptor_pb2.FieldDescriptorProto


@dataclass(frozen=True)
class StatusDetails:
    """What a ``google.rpc.Status`` says; empty fields when it is absent or unreadable.

    Attributes:
        code: The numeric status code of the ``Status`` (0 when absent).
        message: The message of the ``Status``.
        reason: ``ErrorInfo.reason`` of the first ``ErrorInfo`` detail ("" if none).
        domain: ``ErrorInfo.domain`` of that detail.
        metadata: ``ErrorInfo.metadata`` of that detail.
        retry_delay: ``RetryInfo.retry_delay`` of the first ``RetryInfo`` detail, in seconds:
            how long the service asks the caller to wait before retrying; ``None`` if none
            (a negative delay reads as 0).
    """

    code: int = 0
    message: str = ""
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_delay: float | None = None


def _add_field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str = "",
) -> None:
    added = message.field.add(
        name=name,
        number=number,
        type=kind,
        label=_FDP.LABEL_REPEATED if repeated else _FDP.LABEL_OPTIONAL,
        json_name=name,
    )
    if type_name:  # descriptor.proto is proto2: an empty type_name would still count as set
        added.type_name = type_name


@functools.cache
def _message_classes() -> tuple[type[Any], type[Any], type[Any]]:
    """The ``Status``, ``ErrorInfo`` and ``RetryInfo`` classes, built once on first use."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(duration_pb2.DESCRIPTOR.serialized_pb)

    file = descriptor_pb2.FileDescriptorProto(
        name="hyperdial/_private/google_rpc_status_details.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto", "google/protobuf/duration.proto"],
    )
    status = file.message_type.add(name="Status")
    _add_field(status, "code", 1, _FDP.TYPE_INT32)
    _add_field(status, "message", 2, _FDP.TYPE_STRING)
    _add_field(
        status, "details", 3, _FDP.TYPE_MESSAGE, repeated=True, type_name=".google.protobuf.Any"
    )

    info = file.message_type.add(name="ErrorInfo")
    _add_field(info, "reason", 1, _FDP.TYPE_STRING)
    _add_field(info, "domain", 2, _FDP.TYPE_STRING)
    entry = info.nested_type.add(name="MetadataEntry")
    entry.options.map_entry = True
    _add_field(entry, "key", 1, _FDP.TYPE_STRING)
    _add_field(entry, "value", 2, _FDP.TYPE_STRING)
    _add_field(
        info,
        "metadata",
        3,
        _FDP.TYPE_MESSAGE,
        repeated=True,
        type_name=".google.rpc.ErrorInfo.MetadataEntry",
    )

    retry = file.message_type.add(name="RetryInfo")
    _add_field(retry, "retry_delay", 1, _FDP.TYPE_MESSAGE, type_name=".google.protobuf.Duration")

    pool.AddSerializedFile(file.SerializeToString())
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(_ERROR_INFO)),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(_RETRY_INFO)),
    )


def decode_status_details(blob: bytes) -> StatusDetails:
    """Decodes a serialized ``google.rpc.Status``, its first ``ErrorInfo`` and its first
    ``RetryInfo``.

    Never raises: the bytes come from the network, and a client must still report the
    error it was handling when they are malformed. A detail that does not decode is skipped.

    Args:
        blob: The value of ``grpc-status-details-bin``.

    Returns:
        The details; every field empty when ``blob`` is not a readable ``Status``.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        return StatusDetails()
    status_cls, info_cls, retry_cls = _message_classes()
    try:
        status = status_cls.FromString(bytes(blob))
    except Exception:  # any decoding failure means "no details"
        return StatusDetails()
    code, message = int(status.code), str(status.message)
    info: Any = None
    retry_delay: float | None = None
    for detail in status.details:
        # An Any's type_url is "<host>/<full name>"; a bare full name is accepted too.
        kind = str(detail.type_url).rsplit("/", 1)[-1]
        try:
            if kind == _ERROR_INFO and info is None:
                info = info_cls.FromString(detail.value)
            elif kind == _RETRY_INFO and retry_delay is None:
                retry_delay = _seconds(retry_cls.FromString(detail.value).retry_delay)
        except Exception:
            continue
    if info is None:
        return StatusDetails(code=code, message=message, retry_delay=retry_delay)
    return StatusDetails(
        code=code,
        message=message,
        reason=str(info.reason),
        domain=str(info.domain),
        metadata={str(k): str(v) for k, v in info.metadata.items()},
        retry_delay=retry_delay,
    )


def _seconds(duration: Any) -> float | None:
    """A ``google.protobuf.Duration`` in seconds, at least 0; ``None`` if not finite."""
    seconds = float(duration.seconds) + float(duration.nanos) / 1e9
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def details_from_metadata(metadata: Iterable[tuple[str, object]] | None) -> StatusDetails:
    """Finds and decodes ``grpc-status-details-bin`` in a call's trailing metadata.

    Args:
        metadata: ``(key, value)`` pairs, as ``grpc.Call.trailing_metadata()`` returns them.

    Returns:
        The details; every field empty when the key is absent or its value unreadable.
    """
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, (bytes, bytearray)):
            return decode_status_details(bytes(value))
    return StatusDetails()
