"""Small builders of protocol messages and a reader of rich error details, for tests."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts


def float_param(
    name: str, lo: float, hi: float, log: bool = False, **kw: Any
) -> study_pb2.ParameterSpec:
    scale = study_pb2.SCALE_LOG if log else study_pb2.SCALE_LINEAR
    return study_pb2.ParameterSpec(
        name=name, float_domain=study_pb2.FloatDomain(min=lo, max=hi, scale=scale), **kw
    )


def int_param(name: str, lo: int, hi: int, log: bool = False, **kw: Any) -> study_pb2.ParameterSpec:
    scale = study_pb2.SCALE_LOG if log else study_pb2.SCALE_LINEAR
    return study_pb2.ParameterSpec(
        name=name, int_domain=study_pb2.IntDomain(min=lo, max=hi, scale=scale), **kw
    )


def cat_param(name: str, values: list[str], **kw: Any) -> study_pb2.ParameterSpec:
    return study_pb2.ParameterSpec(
        name=name, categorical_domain=study_pb2.CategoricalDomain(values=values), **kw
    )


def disc_param(name: str, values: list[float], **kw: Any) -> study_pb2.ParameterSpec:
    return study_pb2.ParameterSpec(
        name=name, discrete_domain=study_pb2.DiscreteDomain(values=values), **kw
    )


def when(parent: str, *values: float | int | str) -> study_pb2.ParentCondition:
    return study_pb2.ParentCondition(parent=parent, values=[pvalue(v) for v in values])


def pvalue(v: float | int | str) -> study_pb2.ParameterValue:
    if isinstance(v, str):
        return study_pb2.ParameterValue(string_value=v)
    if isinstance(v, int):
        return study_pb2.ParameterValue(int_value=v)
    return study_pb2.ParameterValue(double_value=v)


def minimize(name: str = "loss") -> study_pb2.ObjectiveSpec:
    return study_pb2.ObjectiveSpec(name=name, goal=study_pb2.GOAL_MINIMIZE)


def maximize(name: str) -> study_pb2.ObjectiveSpec:
    return study_pb2.ObjectiveSpec(name=name, goal=study_pb2.GOAL_MAXIMIZE)


def spec(
    *params: study_pb2.ParameterSpec, objectives: Any = None, **kw: Any
) -> study_pb2.StudySpec:
    return study_pb2.StudySpec(parameters=list(params), objectives=objectives or [minimize()], **kw)


def measurement(**values: float) -> trial_pb2.Measurement:
    return trial_pb2.Measurement(values=values)


def create(stub: Any, study_id: str, s: study_pb2.StudySpec) -> study_pb2.Study:
    return stub.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=s)).study


def ask(stub: Any, study: str, count: int = 1, client_id: str = "") -> list[trial_pb2.Trial]:
    req = ts.SuggestTrialsRequest(parent=f"studies/{study}", count=count, client_id=client_id)
    return list(stub.SuggestTrials(req).trials)


def tell(stub: Any, name: str, **values: float) -> trial_pb2.Trial:
    req = ts.CompleteTrialRequest(name=name, final_measurement=measurement(**values))
    return stub.CompleteTrial(req).trial


def report(
    stub: Any, name: str, step: int, request_id: str = "", **values: float
) -> ts.AddTrialMeasurementResponse:
    """``AddTrialMeasurement`` of ``values`` at ``step``: the decision and the trial."""
    req = ts.AddTrialMeasurementRequest(
        name=name,
        measurement=trial_pb2.Measurement(step=step, values=values),
        request_id=request_id,
    )
    return stub.AddTrialMeasurement(req)


def py_params(trial: trial_pb2.Trial) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {}
    for name, v in trial.parameters.items():
        kind = v.WhichOneof("kind")
        assert kind is not None
        out[name] = getattr(v, kind)
    return out


def error_reason(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    """(code, ErrorInfo reason, message) of a failed call; reason '' if none was sent."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    reason = ""
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                assert info.domain == "hyperdial.dev"
                reason = info.reason
    return err.code(), reason, err.details() or ""


def error_field(err: grpc.RpcError) -> str:
    """The field a failed call's ``google.rpc.BadRequest`` names; '' if none was sent."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                return bad.field_violations[0].field
    return ""


def error_metadata(err: grpc.RpcError) -> dict[str, str]:
    """The ``ErrorInfo.metadata`` of a failed call; empty if none was sent."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return dict(info.metadata)
    return {}
