"""``ComputeParameterImportance`` over real gRPC, on the memory store and on Redis.

Studies are filled with seeded random trials of the synthetic objectives of
``bench/importance_problems.py`` (whose importance is known by construction) through
``CreateTrial``; the answers are checked against the truth, against the pure computation
(``core.importance.ped_anova``) on the same trials, and between the two stores. Then what
counts (COMPLETED trials only), the minimum, and every refusal with its code, reason and field.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bench.importance_problems import CONDITIONAL, DOMINANT, MIXED, Problem, trials
from hyperdial._space import parameters_to_proto, value_to_proto
from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.core.importance import ped_anova
from hyperdial_server.core.study import Objective
from tests.core.test_importance import TWO_SIDED, core_space
from tests.e2e.protocol import ask, create, maximize, measurement, minimize, spec

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def _sid() -> str:
    return f"imp-{uuid.uuid4().hex[:12]}"


def _study(
    stub: Any, problem: Problem, objectives: Sequence[study_pb2.ObjectiveSpec] | None = None
) -> str:
    """A new RANDOM study of the problem's space (one minimised objective ``y`` by default)."""
    sid = _sid()
    s = spec(
        *parameters_to_proto(problem.params),
        objectives=list(objectives or [minimize("y")]),
        algorithm=study_pb2.ALGORITHM_RANDOM,
    )
    create(stub, sid, s)
    return sid


def _add(
    stub: Any, sid: str, problem: Problem, data: Sequence[tuple[dict[str, Any], float]]
) -> None:
    """Records each (point, value) as a COMPLETED trial; every objective gets the value."""
    params = {p.name: p for p in problem.params}
    names = [
        o.name
        for o in stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.spec.objectives
    ]
    for point, value in data:
        stub.CreateTrial(
            ts.CreateTrialRequest(
                parent=f"studies/{sid}",
                parameters={k: value_to_proto(v, params[k]) for k, v in point.items()},
                final_measurement=measurement(**{n: value for n in names}),
            )
        )


def _importance(stub: Any, sid: str, objective: str = "") -> ts.ComputeParameterImportanceResponse:
    request = ts.ComputeParameterImportanceRequest(parent=f"studies/{sid}", objective=objective)
    response: ts.ComputeParameterImportanceResponse = stub.ComputeParameterImportance(request)
    return response


def _ranking(response: ts.ComputeParameterImportanceResponse) -> list[str]:
    return [p.parameter for p in response.importances]


def _error(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str], str]:
    """(code, ErrorInfo reason and metadata, BadRequest field or '') of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None
    reason, metadata, field = "", {}, ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            assert info.domain == "hyperdial.dev"
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(bad):
            field = bad.field_violations[0].field
    return err.code(), reason, metadata, field


def _fails(stub: Any, request: ts.ComputeParameterImportanceRequest) -> tuple[Any, ...]:
    with pytest.raises(grpc.RpcError) as info:
        stub.ComputeParameterImportance(request)
    return _error(info.value)


# --- rankings -----------------------------------------------------------------------------------


def test_dominant_interacting_and_irrelevant_parameters(stub: Any) -> None:
    data = trials(DOMINANT, 300, seed=0)
    sid = _study(stub, DOMINANT)
    _add(stub, sid, DOMINANT, data)
    response = _importance(stub, sid)
    assert response.method == "ped-anova"
    assert response.trial_count == 300
    order = _ranking(response)
    assert order[0] == "x0"
    assert set(order[1:3]) == {"x1", "x2"}
    assert sum(p.importance for p in response.importances) == pytest.approx(1.0)
    assert all(p.importance >= 0 and p.active_trials == 300 for p in response.importances)
    # Exactly the pure computation on the same trials: nothing lost or altered on the way.
    expected = ped_anova(
        core_space(DOMINANT.params), Objective("y"), [p for p, _ in data], [v for _, v in data]
    )
    assert [(p.parameter, p.importance, p.active_trials) for p in response.importances] == [
        (p.parameter, p.importance, p.active_trials) for p in expected.parameters
    ]


def test_mixed_types_of_a_maximised_objective(stub: Any) -> None:
    # The same problem, maximised: the values are negated, so the best trials are the same.
    data = [(p, -v) for p, v in trials(MIXED, 300, seed=1)]
    sid = _study(stub, MIXED, [maximize("score")])
    _add(stub, sid, MIXED, data)
    order = _ranking(_importance(stub, sid))
    assert order[:3] == ["lr", "layers", "optimizer"]
    assert set(order[4:]) <= {"dropout", "activation", "batch"}


def test_each_objective_is_explained_in_its_own_direction(stub: Any) -> None:
    # Two objectives of the same values: "low" minimised (the dip in a decides), "high"
    # maximised (the peak in b decides).
    sid = _study(stub, TWO_SIDED, [minimize("low"), maximize("high")])
    _add(stub, sid, TWO_SIDED, trials(TWO_SIDED, 300, seed=2))
    assert _ranking(_importance(stub, sid, "low"))[0] == "a"
    assert _ranking(_importance(stub, sid, "high"))[0] == "b"
    # Empty: the first objective.
    assert _importance(stub, sid) == _importance(stub, sid, "low")


def test_a_conditional_parameter_counts_the_trials_where_it_is_active(stub: Any) -> None:
    data = trials(CONDITIONAL, 300, seed=3)
    sid = _study(stub, CONDITIONAL)
    _add(stub, sid, CONDITIONAL, data)
    response = _importance(stub, sid)
    active = {p.parameter: p.active_trials for p in response.importances}
    sgd = sum(1 for point, _ in data if point["optimizer"] == "sgd")
    assert active == {"optimizer": 300, "momentum": sgd, "lr": 300, "noise": 300}
    assert _ranking(response)[-1] == "noise"


def test_both_stores_answer_the_same(server_target: str, redis_server_target: str) -> None:
    data = trials(MIXED, 60, seed=4)
    answers = []
    for target in (server_target, redis_server_target):
        with grpc.insecure_channel(target) as channel:
            s = tuning_service_pb2_grpc.TuningServiceStub(channel)
            sid = _study(s, MIXED)
            _add(s, sid, MIXED, data)
            answers.append(_importance(s, sid))
    assert answers[0] == answers[1]


# --- what counts, and how many --------------------------------------------------------------


def test_too_few_completed_trials_is_a_failed_precondition(stub: Any) -> None:
    problem = DOMINANT
    sid = _study(stub, problem)
    request = ts.ComputeParameterImportanceRequest(parent=f"studies/{sid}")
    code, reason, metadata, _ = _fails(stub, request)
    assert (code, reason) == (PRECONDITION, "NOT_ENOUGH_TRIALS")
    assert metadata == {"completed_trials": "0", "min_trials": "11"}
    data = trials(problem, 11, seed=5)
    _add(stub, sid, problem, data[:10])
    # Trials that did not complete do not count: failed, stopped, running.
    parent = f"studies/{sid}"
    stub.CreateTrial(
        ts.CreateTrialRequest(
            parent=parent,
            parameters={k: value_to_proto(v) for k, v in data[10][0].items()},
            failure=ts.TrialFailure(reason="out of memory"),
        )
    )
    running = ask(stub, sid, count=3)
    stub.CompleteTrial(ts.CompleteTrialRequest(name=running[0].name, stop=ts.TrialStop()))
    stub.CompleteTrial(
        ts.CompleteTrialRequest(name=running[1].name, failure=ts.TrialFailure(reason="nan"))
    )
    code, reason, metadata, _ = _fails(stub, request)
    assert (code, reason) == (PRECONDITION, "NOT_ENOUGH_TRIALS")
    assert metadata == {"completed_trials": "10", "min_trials": "11"}
    _add(stub, sid, problem, data[10:])
    response = _importance(stub, sid)
    assert response.trial_count == 11
    assert sorted(_ranking(response)) == [p.name for p in problem.params]


def test_a_read_changes_nothing_and_repeats_its_answer(stub: Any) -> None:
    sid = _study(stub, MIXED)
    _add(stub, sid, MIXED, trials(MIXED, 40, seed=6))
    study = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study
    first = _importance(stub, sid)
    assert _importance(stub, sid) == first
    assert stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study == study


# --- refusals ---------------------------------------------------------------------------------


def test_an_unknown_objective_names_the_field(stub: Any) -> None:
    sid = _study(stub, DOMINANT, [minimize("loss"), maximize("accuracy")])
    request = ts.ComputeParameterImportanceRequest(parent=f"studies/{sid}", objective="y")
    code, reason, _, field = _fails(stub, request)
    assert (code, reason, field) == (INVALID, "UNKNOWN_OBJECTIVE", "objective")
    with pytest.raises(grpc.RpcError) as e:
        stub.ComputeParameterImportance(request)
    assert "'loss', 'accuracy'" in (e.value.details() or "")


def test_an_unknown_study_or_a_bad_name(stub: Any) -> None:
    absent = ts.ComputeParameterImportanceRequest(parent=f"studies/{_sid()}")
    assert _fails(stub, absent)[:2] == (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND")
    code, reason, _, field = _fails(stub, ts.ComputeParameterImportanceRequest(parent="nope"))
    assert (code, reason, field) == (INVALID, "INVALID_NAME", "parent")
