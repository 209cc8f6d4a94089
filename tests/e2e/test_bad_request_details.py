"""``google.rpc.BadRequest`` of an invalid argument names the field once: in
``FieldViolation.field``, not again in front of its ``description``. The status message still
names it, for people who read only that. Over real gRPC against both stores."""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import study_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.service._status import field_description
from tests.e2e.protocol import ask, create, float_param, measurement, spec
from tests.e2e.test_bad_input import BAD_SPECS


def _violation(call: Any, request: Any) -> tuple[str, error_details_pb2.BadRequest.FieldViolation]:
    """The status message and the one field violation of a call that fails."""
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    err = info.value
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert len(bad.field_violations) == 1
    return err.details() or "", bad.field_violations[0]


def _repeats_field(description: str, field: str) -> bool:
    """Whether ``description`` opens with the field, or with a run of segments of its path
    that is a path ("parameters[0]"), or that a colon follows ("values:"). (An English word
    such as "parent" may open a description of the field ``...condition.parent``.)"""
    word = description.partition(" ")[0]
    head = word.removesuffix(":")
    if head == field:
        return True
    if not (word.endswith(":") or "." in head or "[" in head):
        return False
    return re.search(rf"(?:^|\.){re.escape(head)}(?:$|[.\[])", field) is not None


def _study(stub: Any) -> str:
    sid = f"br-{uuid.uuid4().hex[:12]}"
    create(stub, sid, spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM))
    return sid


def test_count(stub: Any) -> None:
    sid = _study(stub)
    message, v = _violation(
        stub.SuggestTrials, ts.SuggestTrialsRequest(parent=f"studies/{sid}", count=0)
    )
    assert message == "count must be between 1 and 100; got 0"
    assert (v.field, v.description) == ("count", "must be between 1 and 100; got 0")


def test_a_spec_field(stub: Any) -> None:
    bad = spec(float_param("x", 0, 1), max_trials=-1)
    message, v = _violation(stub.CreateStudy, ts.CreateStudyRequest(study_id="br-x", spec=bad))
    assert message.startswith("max_trials must be positive")
    assert v.field == "spec.max_trials"
    assert v.description == "must be positive (or 0 for no limit); got -1"


def test_a_parameter(stub: Any) -> None:
    bad = spec(float_param("x", 1, 0))
    message, v = _violation(stub.CreateStudy, ts.CreateStudyRequest(study_id="br-x", spec=bad))
    assert message == "parameters[0]: min (1.0) must be less than max (0.0)"
    assert v.field == "spec.parameters[0].float_domain"
    assert v.description == "min (1.0) must be less than max (0.0)"


def test_a_measurement_value(stub: Any) -> None:
    trial = ask(stub, _study(stub))[0]
    request = ts.CompleteTrialRequest(name=trial.name, final_measurement=measurement(nope=1.0))
    message, v = _violation(stub.CompleteTrial, request)
    assert message.startswith("final_measurement.values: 'nope' is not an objective")
    assert v.field == "final_measurement.values[nope]"
    assert v.description.startswith("'nope' is not an objective of the study")


@pytest.mark.parametrize(
    ("case", "bad"), [(case, s) for case, s, _, _ in BAD_SPECS], ids=[c for c, *_ in BAD_SPECS]
)
def test_no_description_repeats_its_field(stub: Any, case: str, bad: study_pb2.StudySpec) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateStudy(ts.CreateStudyRequest(study_id=f"br-{case}"[:100], spec=bad))
    status = rpc_status.from_call(info.value)
    assert status is not None
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            for v in bad_request.field_violations:
                assert v.description and not _repeats_field(v.description, v.field), v
                assert status.message.endswith(v.description)


@pytest.mark.parametrize(
    ("message", "field", "description"),
    [
        ("count must be 1 to 100", "count", "must be 1 to 100"),
        ("spec.x: must be set", "spec.x", "must be set"),
        ("x: must be set", "spec.x", "must be set"),
        ("values: 'a' is unknown", "final_measurement.values[a]", "'a' is unknown"),
        # Words that are not segments of the field's path stay.
        ("parameter 'lr' is used twice", "spec.parameters[1]", "parameter 'lr' is used twice"),
        ("spec.xy: must be set", "spec.x", "spec.xy: must be set"),
        ("count", "count", "count"),
    ],
)
def test_field_description(message: str, field: str, description: str) -> None:
    assert field_description(message, field) == description
