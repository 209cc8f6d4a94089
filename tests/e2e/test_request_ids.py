"""Request ids over real gRPC: a retry that changes the call's payload is refused, not answered
with the first call's answer (memory store and Redis)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from hyperdial.v1 import trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import error_reason, float_param, measurement, pvalue, spec


def _sid() -> str:
    return f"rid-{uuid.uuid4().hex[:12]}"


def _refused(call: Callable[[], Any], kind: str) -> None:
    """``call`` fails with INVALID_ARGUMENT ``REQUEST_ID_MISMATCH`` naming ``kind``."""
    with pytest.raises(grpc.RpcError) as e:
        call()
    code, reason, message = error_reason(e.value)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_MISMATCH")
    assert kind in message and "request_id" in message


def test_a_request_id_replayed_with_another_payload_is_refused(stub: Any) -> None:
    sid = _sid()
    name = f"studies/{sid}"
    first_spec = spec(float_param("lr", 0.0, 1.0), seed=1)
    create = ts.CreateStudyRequest(study_id=sid, spec=first_spec, request_id="c-1")
    study = stub.CreateStudy(create).study
    changed = ts.CreateStudyRequest(
        study_id=sid, spec=spec(float_param("lr", 0.0, 2.0), seed=1), request_id="c-1"
    )
    _refused(lambda: stub.CreateStudy(changed), "CreateStudy")
    assert stub.CreateStudy(create).study == study  # the very same call is still answered

    # An ask: another count or client is another call.
    ask = ts.SuggestTrialsRequest(parent=name, count=1, client_id="w1", request_id="a-1")
    (trial,) = stub.SuggestTrials(ask).trials
    for other in (
        ts.SuggestTrialsRequest(parent=name, count=2, client_id="w1", request_id="a-1"),
        ts.SuggestTrialsRequest(parent=name, count=1, client_id="w2", request_id="a-1"),
    ):
        _refused(functools.partial(stub.SuggestTrials, other), "SuggestTrials")
    assert list(stub.SuggestTrials(ask).trials) == [trial]

    # A tell: another value or another outcome is another call; nothing changes.
    tell = ts.CompleteTrialRequest(
        name=trial.name, final_measurement=measurement(loss=0.5), request_id="t-1"
    )
    told = stub.CompleteTrial(tell).trial
    for other_tell in (
        ts.CompleteTrialRequest(
            name=trial.name, final_measurement=measurement(loss=0.9), request_id="t-1"
        ),
        ts.CompleteTrialRequest(
            name=trial.name, failure=ts.TrialFailure(reason="oom"), request_id="t-1"
        ),
    ):
        _refused(functools.partial(stub.CompleteTrial, other_tell), "CompleteTrial")
    assert stub.GetTrial(ts.GetTrialRequest(name=trial.name)).trial == told
    assert told.final_measurement.values["loss"] == 0.5
    assert stub.CompleteTrial(tell).trial == told

    # An import with other parameters.
    made = stub.CreateTrial(
        ts.CreateTrialRequest(parent=name, parameters={"lr": pvalue(0.25)}, request_id="n-1")
    ).trial
    other_import = ts.CreateTrialRequest(
        parent=name, parameters={"lr": pvalue(0.75)}, request_id="n-1"
    )
    _refused(lambda: stub.CreateTrial(other_import), "CreateTrial")
    listed = stub.ListTrials(ts.ListTrialsRequest(parent=name)).trials
    assert [t.number for t in listed] == [trial.number, made.number]
    assert listed[-1].state == trial_pb2.TRIAL_STATE_WAITING

    # A deletion names nothing but its study: its retry is always the same call.
    delete = ts.DeleteStudyRequest(name=name, request_id="d-1")
    stub.DeleteStudy(delete)
    stub.DeleteStudy(delete)
