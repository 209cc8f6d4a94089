"""The client's own decoder of ``grpc-status-details-bin``, on real errors and on garbage."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st

import hyperdial as hd
from hyperdial._status_details import (
    STATUS_DETAILS_KEY,
    StatusDetails,
    decode_status_details,
    details_from_metadata,
)
from hyperdial.v1 import study_pb2, tuning_service_pb2, tuning_service_pb2_grpc


@pytest.fixture
def stub(server_target: str) -> Iterator[tuning_service_pb2_grpc.TuningServiceStub]:
    with grpc.insecure_channel(server_target) as channel:
        yield tuning_service_pb2_grpc.TuningServiceStub(channel)


def _packed(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def test_decodes_a_real_not_found(stub: tuning_service_pb2_grpc.TuningServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.GetStudy(tuning_service_pb2.GetStudyRequest(name="studies/no-such-study"))
    details = details_from_metadata(info.value.trailing_metadata())
    assert details.reason == "STUDY_NOT_FOUND"
    assert details.domain == "hyperdial.dev"
    assert details.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no-such-study" in details.message


def test_decodes_a_real_invalid_argument_with_several_details(
    stub: tuning_service_pb2_grpc.TuningServiceStub,
) -> None:
    request = tuning_service_pb2.CreateStudyRequest(
        study_id="bad-space",
        spec=study_pb2.StudySpec(
            parameters=[
                study_pb2.ParameterSpec(
                    name="x", float_domain=study_pb2.FloatDomain(min=1.0, max=0.0)
                )
            ],
            objectives=[study_pb2.ObjectiveSpec(name="v", goal=study_pb2.GOAL_MINIMIZE)],
        ),
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateStudy(request)
    trailing = info.value.trailing_metadata()
    details = details_from_metadata(trailing)
    assert details.reason == "INVALID_SEARCH_SPACE"
    assert details.metadata == {"field": "spec.parameters[0].float_domain"}
    # The same bytes, read by googleapis-common-protos, say the same.
    blob = dict(trailing)[STATUS_DETAILS_KEY]
    reference = status_pb2.Status.FromString(blob)
    assert [d.type_url.rsplit("/", 1)[-1] for d in reference.details] == [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
    ]
    info_pb = error_details_pb2.ErrorInfo()
    reference.details[0].Unpack(info_pb)
    assert (details.reason, details.domain, dict(details.metadata)) == (
        info_pb.reason,
        info_pb.domain,
        dict(info_pb.metadata),
    )

    error = hd.from_rpc_error(info.value)
    assert isinstance(error, hd.InvalidArgumentError)
    assert error.reason == "INVALID_SEARCH_SPACE"
    assert error.metadata["field"] == "spec.parameters[0].float_domain"


def test_finds_error_info_after_other_details() -> None:
    status = status_pb2.Status(
        code=3,
        message="bad",
        details=[
            _packed(error_details_pb2.BadRequest()),
            _packed(error_details_pb2.ErrorInfo(reason="R", domain="d", metadata={"k": "v"})),
        ],
    )
    assert decode_status_details(status.SerializeToString()) == StatusDetails(
        code=3, message="bad", reason="R", domain="d", metadata={"k": "v"}
    )


def _retry_info(seconds: int, nanos: int) -> error_details_pb2.RetryInfo:
    info = error_details_pb2.RetryInfo()
    info.retry_delay.seconds = seconds
    info.retry_delay.nanos = nanos
    return info


def test_reads_retry_info_before_or_after_error_info() -> None:
    error_info = _packed(error_details_pb2.ErrorInfo(reason="TOO_MANY_REQUESTS", domain="d"))
    retry_info = _packed(_retry_info(1, 250_000_000))
    for details in ([error_info, retry_info], [retry_info, error_info]):
        status = status_pb2.Status(code=8, message="shed", details=details)
        decoded = decode_status_details(status.SerializeToString())
        assert decoded.reason == "TOO_MANY_REQUESTS"
        assert decoded.retry_delay == 1.25
    # RetryInfo alone, a negative delay (read as 0), and none at all.
    alone = status_pb2.Status(code=14, details=[_packed(_retry_info(0, 5_000_000))])
    assert decode_status_details(alone.SerializeToString()) == StatusDetails(
        code=14, retry_delay=0.005
    )
    negative = status_pb2.Status(code=8, details=[_packed(_retry_info(-3, 0))])
    assert decode_status_details(negative.SerializeToString()).retry_delay == 0.0
    none = status_pb2.Status(code=8, details=[error_info])
    assert decode_status_details(none.SerializeToString()).retry_delay is None


def test_garbage_retry_info_keeps_the_error_info() -> None:
    status = status_pb2.Status(
        code=8,
        details=[
            any_pb2.Any(type_url="type.googleapis.com/google.rpc.RetryInfo", value=b"\xff"),
            _packed(error_details_pb2.ErrorInfo(reason="R")),
        ],
    )
    decoded = decode_status_details(status.SerializeToString())
    assert (decoded.reason, decoded.retry_delay) == ("R", None)


class _FakeCall(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as gRPC raises it: code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status) -> None:
        self._code = code
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._status.message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ((STATUS_DETAILS_KEY, self._status.SerializeToString()),)

    def initial_metadata(self) -> None:
        return None

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def _error(code: grpc.StatusCode, reason: str, *extra: any_pb2.Any) -> hd.HyperdialError:
    info = _packed(error_details_pb2.ErrorInfo(reason=reason, domain="hyperdial.dev"))
    status = status_pb2.Status(code=code.value[0], message=reason, details=[info, *extra])
    return hd.from_rpc_error(_FakeCall(code, status))


def test_error_classes_of_the_store_and_load_errors() -> None:
    shed = _error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_REQUESTS",
        _packed(_retry_info(0, 100_000_000)),
    )
    assert isinstance(shed, hd.ResourceExhaustedError) and shed.retry_delay == 0.1
    full = _error(grpc.StatusCode.RESOURCE_EXHAUSTED, "STORE_OUT_OF_MEMORY")
    assert isinstance(full, hd.ResourceExhaustedError) and full.retry_delay is None
    lost = _error(grpc.StatusCode.DATA_LOSS, "STUDY_DATA_LOSS")
    assert isinstance(lost, hd.DataLossError) and lost.reason == "STUDY_DATA_LOSS"
    rejected = _error(grpc.StatusCode.FAILED_PRECONDITION, "STORE_REJECTED")
    assert isinstance(rejected, hd.FailedPreconditionError)
    # The delay survives pickling (errors cross process boundaries in optimize(n_jobs)).
    again = pickle.loads(pickle.dumps(shed))
    assert (type(again), again.reason, again.retry_delay) == (
        hd.ResourceExhaustedError,
        "TOO_MANY_REQUESTS",
        0.1,
    )


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\xff\xff\xff\xff",
        b"\x0a\x05ab",  # truncated
        b"\x12\x02\xc3\x28",  # message field holding invalid UTF-8
        bytes(range(256)) * 4,
        status_pb2.Status(
            code=5, details=[_packed(error_details_pb2.BadRequest())]
        ).SerializeToString(),
        # An Any that claims to be an ErrorInfo but holds garbage.
        status_pb2.Status(
            code=5,
            details=[
                any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\xff")
            ],
        ).SerializeToString(),
    ],
)
def test_garbage_gives_no_reason(blob: bytes) -> None:
    assert decode_status_details(blob).reason == ""


@given(st.binary(max_size=512))
def test_never_raises(blob: bytes) -> None:
    details = decode_status_details(blob)
    assert isinstance(details.reason, str)


def test_odd_inputs_give_empty_details() -> None:
    assert decode_status_details("not bytes") == StatusDetails()  # type: ignore[arg-type]
    assert details_from_metadata(None) == StatusDetails()
    assert details_from_metadata([("other-key", b"x")]) == StatusDetails()
    assert details_from_metadata([(STATUS_DETAILS_KEY, "text, not bytes")]) == StatusDetails()


def test_error_without_call_details_is_unknown() -> None:
    error = hd.from_rpc_error(grpc.RpcError("raw"))
    assert type(error) is hd.HyperdialError
    assert error.code == grpc.StatusCode.UNKNOWN
    assert error.reason == ""


def _run(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


_ROUND_TRIP = """
    from google.protobuf import any_pb2, descriptor_pool
    from hyperdial._status_details import decode_status_details

    # Build the bytes by hand so the decoder runs before google.rpc is ever imported.
    info = b"\\x0a\\x01R\\x12\\x0dhyperdial.dev\\x1a\\x06\\x0a\\x01k\\x12\\x01v"
    packed = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=info)
    blob = b"\\x08\\x05\\x12\\x02hi" + b"\\x1a" + bytes([packed.ByteSize()])
    blob += packed.SerializeToString()
    d = decode_status_details(blob)
    assert (d.code, d.message, d.reason, d.domain, dict(d.metadata)) == (
        5, "hi", "R", "hyperdial.dev", {"k": "v"}
    ), d
    # A RetryInfo of 1.5 s after it.
    retry = b"\\x0a\\x08\\x08\\x01\\x10\\x80\\xca\\xb5\\xee\\x01"
    packed = any_pb2.Any(type_url="type.googleapis.com/google.rpc.RetryInfo", value=retry)
    blob += b"\\x1a" + bytes([packed.ByteSize()]) + packed.SerializeToString()
    assert decode_status_details(blob).retry_delay == 1.5, decode_status_details(blob)

    # The default pool never saw the private messages...
    for name in ("google.rpc.Status", "google.rpc.ErrorInfo", "google.rpc.RetryInfo"):
        try:
            descriptor_pool.Default().FindMessageTypeByName(name)
        except KeyError:
            pass
        else:
            raise AssertionError(name + " leaked into the default pool")
    # ...so the real modules still import cleanly next to them.
    from google.rpc import error_details_pb2, status_pb2
    assert status_pb2.Status.DESCRIPTOR.full_name == "google.rpc.Status"
    assert decode_status_details(blob).reason == "R"
    print("ok")
"""


def test_private_pool_does_not_clash_with_googleapis_common_protos() -> None:
    assert _run(_ROUND_TRIP).strip() == "ok"


def test_works_with_the_pure_python_protobuf() -> None:
    out = _run(_ROUND_TRIP, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    assert out.strip() == "ok"
