"""One valid request for every ``TuningService`` method, a stub, and readers of error details."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.service import TuningServicer
from tests.e2e.protocol import float_param, measurement, pvalue, spec

#: Every method of the service, from its descriptor.
METHODS = [m.name for m in ts.DESCRIPTOR.services_by_name["TuningService"].methods]

SPEC = spec(float_param("x", 0.0, 1.0), algorithm=study_pb2.ALGORITHM_RANDOM)


def new_id(prefix: str = "sec") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stub(channel: grpc.Channel) -> tuning_service_pb2_grpc.TuningServiceStub:
    """A tuning service stub on ``channel``."""
    return tuning_service_pb2_grpc.TuningServiceStub(channel)


#: Completed trials of a study made by :func:`prepare`: what ``ComputeParameterImportance``
#: needs at least.
COMPLETED = 11


def prepare(stub: Any, metadata: Any) -> str:
    """A fresh study with trial 1 RUNNING and trials 2 to 12 COMPLETED, made with ``metadata``
    (a read-write token)."""
    study_id = new_id()
    stub.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=SPEC), metadata=metadata)
    req = ts.SuggestTrialsRequest(parent=f"studies/{study_id}", count=1)
    stub.SuggestTrials(req, metadata=metadata)
    for i in range(COMPLETED):
        done = ts.CreateTrialRequest(
            parent=f"studies/{study_id}",
            parameters={"x": pvalue(i / COMPLETED)},
            final_measurement=measurement(loss=float(i % 3)),
        )
        stub.CreateTrial(done, metadata=metadata)
    return study_id


def request(method: str, study_id: str) -> Any:
    """A request of ``method`` that succeeds on a study made by :func:`prepare`."""
    study, trial = f"studies/{study_id}", f"studies/{study_id}/trials/1"
    builders: dict[str, Callable[[], Any]] = {
        "CreateStudy": lambda: ts.CreateStudyRequest(study_id=new_id(), spec=SPEC),
        "GetStudy": lambda: ts.GetStudyRequest(name=study),
        "ListStudies": lambda: ts.ListStudiesRequest(),
        "DeleteStudy": lambda: ts.DeleteStudyRequest(name=study),
        "SuggestTrials": lambda: ts.SuggestTrialsRequest(parent=study, count=1),
        "CompleteTrial": lambda: ts.CompleteTrialRequest(
            name=trial, final_measurement=measurement(loss=1.0)
        ),
        "CreateTrial": lambda: ts.CreateTrialRequest(parent=study, parameters={"x": pvalue(0.5)}),
        "GetTrial": lambda: ts.GetTrialRequest(name=trial),
        "HeartbeatTrial": lambda: ts.HeartbeatTrialRequest(name=trial),
        "ListTrials": lambda: ts.ListTrialsRequest(parent=study),
        "ListOptimalTrials": lambda: ts.ListOptimalTrialsRequest(parent=study),
        "AddTrialMeasurement": lambda: ts.AddTrialMeasurementRequest(
            name=trial, measurement=trial_pb2.Measurement(step=1, values={"loss": 1.0})
        ),
        "CheckTrialEarlyStopping": lambda: ts.CheckTrialEarlyStoppingRequest(name=trial),
        "ComputeParameterImportance": lambda: ts.ComputeParameterImportanceRequest(parent=study),
    }
    return builders[method]()


def implemented(method: str) -> bool:
    """Whether the servicer implements ``method`` (else gRPC answers UNIMPLEMENTED)."""
    base = tuning_service_pb2_grpc.TuningServiceServicer
    return getattr(TuningServicer, method) is not getattr(base, method)


def call(stub: Any, method: str, req: Any, metadata: Any = ()) -> tuple[grpc.StatusCode, Any]:
    """(code, response or the error) of one call."""
    try:
        return grpc.StatusCode.OK, getattr(stub, method)(req, metadata=metadata, timeout=30)
    except grpc.RpcError as e:
        return e.code(), e


def error_info(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str], str]:
    """(code, ErrorInfo reason, ErrorInfo metadata, message) of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no rich status in {err}"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "hyperdial.dev"
            return err.code(), info.reason, dict(info.metadata), err.details() or ""
    raise AssertionError(f"no ErrorInfo in {err}")


def snapshot(stub: Any, metadata: Any, study_id: str) -> tuple[Any, ...]:
    """What a tenant can observe of its studies and of one study, to check nothing changed."""
    names = [s.name for s in stub.ListStudies(ts.ListStudiesRequest(), metadata=metadata).studies]
    study = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{study_id}"), metadata=metadata)
    trials = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{study_id}"), metadata=metadata)
    return (
        names,
        study.SerializeToString(deterministic=True),
        trials.SerializeToString(deterministic=True),
    )
