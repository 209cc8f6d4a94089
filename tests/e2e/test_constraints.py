"""Outcome constraints and the INFEASIBLE outcome end to end over real gRPC, with the generated
stubs, on the memory store and on a real Redis (docs/protocol.md, Outcome constraints).

Every bad input is refused with its status, reason and field, and stores nothing; a trial is
infeasible when its worker says so or when its values break a constraint, and an infeasible
trial is listed as such but never optimal, on either basis.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import grpc
import pytest

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import (
    ask,
    create,
    error_field,
    error_metadata,
    error_reason,
    float_param,
    maximize,
    measurement,
    minimize,
    pvalue,
    report,
    spec,
    tell,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
INFEASIBLE = trial_pb2.TRIAL_STATE_INFEASIBLE
COMPLETED = trial_pb2.TRIAL_STATE_COMPLETED
RUNNING = trial_pb2.TRIAL_STATE_RUNNING
STOPPED = trial_pb2.TRIAL_STATE_STOPPED
MODEL = ts.OPTIMALITY_BASIS_MODEL
C = study_pb2.OutcomeConstraint
#: "lat" must be at most 20: the constraint of most studies here.
LAT = C(name="lat", upper_bound=20.0)


def _sid() -> str:
    return f"con-{uuid.uuid4().hex[:12]}"


def _study(stub: Any, *constraints: study_pb2.OutcomeConstraint, **kw: Any) -> str:
    """A RANDOM study of one parameter ``x`` in [0, 1] under ``constraints``; its id."""
    sid = _sid()
    kw.setdefault("algorithm", study_pb2.ALGORITHM_RANDOM)
    create(stub, sid, spec(float_param("x", 0, 1), constraints=list(constraints), **kw))
    return sid


def _fails(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return info.value


def _study_of(stub: Any, sid: str) -> study_pb2.Study:
    return stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study


def _get(stub: Any, name: str) -> trial_pb2.Trial:
    return stub.GetTrial(ts.GetTrialRequest(name=name)).trial


def _import(stub: Any, sid: str, x: float, **values: float) -> trial_pb2.Trial:
    """A completed trial at ``x`` imported with ``CreateTrial``."""
    request = ts.CreateTrialRequest(
        parent=f"studies/{sid}",
        parameters={"x": pvalue(x)},
        final_measurement=measurement(**values),
    )
    return stub.CreateTrial(request).trial


def _optimal(
    stub: Any, sid: str, basis: Any = ts.OPTIMALITY_BASIS_UNSPECIFIED
) -> ts.ListOptimalTrialsResponse:
    return stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}", basis=basis))


# --- CreateStudy --------------------------------------------------------------------------------

# (case id, constraints, field, words the message must contain)
BAD_CONSTRAINTS: list[tuple[str, list[study_pb2.OutcomeConstraint], str, str]] = [
    ("no-bound", [C(name="lat")], "spec.constraints[0]", "has no bound"),
    (
        "lower-above-upper",
        [C(name="lat", lower_bound=2.0, upper_bound=1.0)],
        "spec.constraints[0]",
        "cannot hold",
    ),
    (
        "nan-upper",
        [C(name="lat", upper_bound=math.nan)],
        "spec.constraints[0].upper_bound",
        "finite",
    ),
    (
        "inf-upper",
        [C(name="lat", upper_bound=math.inf)],
        "spec.constraints[0].upper_bound",
        "finite",
    ),
    (
        "minus-inf-lower",
        [C(name="lat", lower_bound=-math.inf)],
        "spec.constraints[0].lower_bound",
        "finite",
    ),
    (
        "name-of-an-objective",
        [C(name="loss", upper_bound=1.0)],
        "spec.constraints[0].name",
        "name of an objective",
    ),
    (
        "duplicate-name",
        [LAT, C(name="lat", lower_bound=0.0)],
        "spec.constraints[1].name",
        "another",
    ),
    (
        "more-than-8",
        [C(name=f"m{i}", upper_bound=1.0) for i in range(9)],
        "spec.constraints",
        "limit is 8",
    ),
    ("empty-name", [C(upper_bound=1.0)], "spec.constraints[0].name", "printable"),
    ("name-too-long", [C(name="m" * 129, upper_bound=1.0)], "spec.constraints[0].name", "128"),
    (
        "unprintable-name",
        [C(name="l\nat", upper_bound=1.0)],
        "spec.constraints[0].name",
        "printable",
    ),
]


@pytest.mark.parametrize("case", BAD_CONSTRAINTS, ids=[c[0] for c in BAD_CONSTRAINTS])
def test_bad_constraints_are_refused_and_nothing_stored(
    stub: Any, case: tuple[str, list[study_pb2.OutcomeConstraint], str, str]
) -> None:
    _, constraints, field, words = case
    sid = _sid()
    request = ts.CreateStudyRequest(
        study_id=sid, spec=spec(float_param("x", 0, 1), constraints=constraints)
    )
    err = _fails(stub.CreateStudy, request)
    code, reason, message = error_reason(err)
    assert (code, reason, error_field(err)) == (INVALID, "INVALID_CONSTRAINTS", field), message
    assert words in message
    code, reason, _ = error_reason(_fails(stub.GetStudy, ts.GetStudyRequest(name=f"studies/{sid}")))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND")


def test_get_study_returns_the_constraints_as_given(stub: Any) -> None:
    given = [
        C(name="lat", upper_bound=20.0),
        C(name="acc", lower_bound=0.9),
        C(name="mem", lower_bound=0.0, upper_bound=0.0),  # zero bounds are bounds
    ]
    sid = _sid()
    created = create(stub, sid, spec(float_param("x", 0, 1), constraints=given))
    for study in (created, _study_of(stub, sid)):
        assert list(study.spec.constraints) == given
        lat, acc, mem = study.spec.constraints
        assert not lat.HasField("lower_bound") and not acc.HasField("upper_bound")
        assert mem.HasField("lower_bound") and mem.HasField("upper_bound")
    # A study without constraints reads back with none.
    assert not _study_of(stub, _study(stub)).spec.constraints


# --- final measurements -------------------------------------------------------------------------

# (case id, values, reason, field, words the message must contain)
BAD_VALUES: list[tuple[str, dict[str, float], str, str, str]] = [
    (
        "constraint-missing",
        {"loss": 0.5},
        "MISSING_CONSTRAINT_VALUE",
        "final_measurement.values[lat]",
        "no value for constraint 'lat'",
    ),
    (
        "second-constraint-missing",
        {"loss": 0.5, "lat": 10.0},
        "MISSING_CONSTRAINT_VALUE",
        "final_measurement.values[acc]",
        "no value for constraint 'acc'",
    ),
    (
        "constraint-nan",
        {"loss": 0.5, "lat": math.nan, "acc": 0.95},
        "INVALID_MEASUREMENT",
        "final_measurement.values[lat]",
        "constraint 'lat' is nan",
    ),
    (
        "constraint-inf",
        {"loss": 0.5, "lat": 10.0, "acc": -math.inf},
        "INVALID_MEASUREMENT",
        "final_measurement.values[acc]",
        "constraint 'acc' is -inf",
    ),
    (
        # A misspelt constraint is refused by its name, before the missing value is.
        "misspelt-constraint",
        {"loss": 0.5, "latency": 10.0, "acc": 0.95},
        "INVALID_MEASUREMENT",
        "final_measurement.values[latency]",
        "'latency' is not an objective of the study nor one of its constraints",
    ),
    (
        "unknown-metric",
        {"loss": 0.5, "lat": 10.0, "acc": 0.95, "epochs": 3.0},
        "INVALID_MEASUREMENT",
        "final_measurement.values[epochs]",
        "constraints: 'lat', 'acc'",
    ),
    (
        "objective-missing",
        {"lat": 10.0, "acc": 0.95},
        "INVALID_MEASUREMENT",
        "final_measurement.values[loss]",
        "no value for objective 'loss'",
    ),
]
TWO = (LAT, C(name="acc", lower_bound=0.9))


@pytest.mark.parametrize("case", BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_complete_trial_refuses_bad_constraint_values_and_changes_nothing(
    stub: Any, case: tuple[str, dict[str, float], str, str, str]
) -> None:
    _, values, reason, field, words = case
    sid = _study(stub, *TWO)
    (trial,) = ask(stub, sid)
    before = _study_of(stub, sid).revision
    request = ts.CompleteTrialRequest(
        name=trial.name, final_measurement=measurement(**values), metadata={"k": "v"}
    )
    err = _fails(stub.CompleteTrial, request)
    code, got, message = error_reason(err)
    assert (code, got, error_field(err)) == (INVALID, reason, field), message
    assert words in message
    if reason == "MISSING_CONSTRAINT_VALUE":
        assert error_metadata(err)["constraint"] == field.split("[")[1].rstrip("]")
    after = _get(stub, trial.name)
    assert (after.state, dict(after.metadata)) == (RUNNING, {})
    assert _study_of(stub, sid).revision == before


@pytest.mark.parametrize("case", BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_create_trial_refuses_bad_constraint_values_and_stores_nothing(
    stub: Any, case: tuple[str, dict[str, float], str, str, str]
) -> None:
    _, values, reason, field, words = case
    sid = _study(stub, *TWO)
    err = _fails(
        stub.CreateTrial,
        ts.CreateTrialRequest(
            parent=f"studies/{sid}",
            parameters={"x": pvalue(0.5)},
            final_measurement=measurement(**values),
        ),
    )
    code, got, message = error_reason(err)
    assert (code, got, error_field(err)) == (INVALID, reason, field), message
    assert words in message
    assert _study_of(stub, sid).trial_count == 0


def test_constraint_values_are_kept_with_the_objectives(stub: Any) -> None:
    sid = _study(stub, *TWO)
    (trial,) = ask(stub, sid)
    done = tell(stub, trial.name, acc=0.95, lat=12.5, loss=0.25)
    assert dict(done.final_measurement.values) == {"loss": 0.25, "lat": 12.5, "acc": 0.95}
    assert (done.state, done.infeasible, done.infeasibility_reason) == (COMPLETED, False, "")
    imported = _import(stub, sid, 0.3, loss=0.5, lat=1.0, acc=0.9)  # bounds are inclusive
    assert not imported.infeasible
    assert dict(_get(stub, imported.name).final_measurement.values)["acc"] == 0.9


# --- the INFEASIBLE outcome ---------------------------------------------------------------------


def test_complete_trial_with_infeasibility(stub: Any) -> None:
    sid = _study(stub, LAT)
    (trial,) = ask(stub, sid)
    request = ts.CompleteTrialRequest(
        name=trial.name,
        infeasibility=ts.TrialInfeasibility(reason="CUDA out of memory"),
        metadata={"gpu": "a100"},
        request_id="r-oom",
    )
    done = stub.CompleteTrial(request).trial
    assert (done.state, done.infeasible, done.infeasibility_reason) == (
        INFEASIBLE,
        True,
        "CUDA out of memory",
    )
    # No result, no failure: its reason is the infeasibility's.
    assert not done.HasField("final_measurement") and done.failure_reason == ""
    assert done.HasField("complete_time") and not done.HasField("lease_expire_time")
    assert dict(done.metadata) == {"gpu": "a100"}
    assert _get(stub, trial.name) == done
    # A retry with the same request_id answers the same trial, and changes nothing.
    assert stub.CompleteTrial(request).trial == done
    # The same id with another reason is another call.
    other = ts.CompleteTrialRequest()
    other.CopyFrom(request)
    other.infeasibility.reason = "diverged"
    code, reason, _ = error_reason(_fails(stub.CompleteTrial, other))
    assert (code, reason) == (INVALID, "REQUEST_ID_MISMATCH")
    # A finished trial takes no other outcome.
    for outcome in (
        ts.CompleteTrialRequest(name=trial.name, infeasibility=ts.TrialInfeasibility()),
        ts.CompleteTrialRequest(name=trial.name, final_measurement=measurement(loss=1, lat=1)),
    ):
        err = _fails(stub.CompleteTrial, outcome)
        code, reason, _ = error_reason(err)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRIAL_NOT_RUNNING")
        assert error_metadata(err)["state"] == "INFEASIBLE"
    assert _get(stub, trial.name) == done


def test_an_infeasibility_may_have_an_empty_reason(stub: Any) -> None:
    sid = _study(stub)  # no constraints: INFEASIBLE is an outcome of every study
    (trial,) = ask(stub, sid)
    request = ts.CompleteTrialRequest(name=trial.name, infeasibility=ts.TrialInfeasibility())
    done = stub.CompleteTrial(request).trial
    assert (done.state, done.infeasible, done.infeasibility_reason) == (INFEASIBLE, True, "")


def test_an_infeasibility_reason_over_the_limit_is_refused(stub: Any) -> None:
    sid = _study(stub, LAT)
    (trial,) = ask(stub, sid)
    too_long = ts.TrialInfeasibility(reason="r" * 4097)
    err = _fails(
        stub.CompleteTrial, ts.CompleteTrialRequest(name=trial.name, infeasibility=too_long)
    )
    code, reason, message = error_reason(err)
    assert (code, reason, error_field(err)) == (INVALID, "INVALID_ARGUMENT", "infeasibility.reason")
    assert "limit is 4096" in message
    assert _get(stub, trial.name).state == RUNNING
    err = _fails(
        stub.CreateTrial,
        ts.CreateTrialRequest(
            parent=f"studies/{sid}", parameters={"x": pvalue(0.5)}, infeasibility=too_long
        ),
    )
    assert error_field(err) == "infeasibility.reason"
    assert _study_of(stub, sid).trial_count == 1
    # Exactly 4096 characters is within the limit.
    ok = ts.TrialInfeasibility(reason="r" * 4096)
    done = stub.CompleteTrial(ts.CompleteTrialRequest(name=trial.name, infeasibility=ok)).trial
    assert done.infeasibility_reason == ok.reason


def test_create_trial_imports_an_infeasible_trial(stub: Any) -> None:
    sid = _study(stub, LAT)
    request = ts.CreateTrialRequest(
        parent=f"studies/{sid}",
        parameters={"x": pvalue(0.25)},
        infeasibility=ts.TrialInfeasibility(reason="diverged"),
        metadata={"source": "optuna"},
        request_id="r-import",
    )
    imported = stub.CreateTrial(request).trial
    assert (imported.state, imported.infeasible, imported.infeasibility_reason) == (
        INFEASIBLE,
        True,
        "diverged",
    )
    assert imported.HasField("complete_time") and not imported.HasField("final_measurement")
    assert dict(imported.metadata) == {"source": "optuna"}
    # Retried with its request_id: the same trial, created once.
    assert stub.CreateTrial(request).trial == imported
    assert _study_of(stub, sid).trial_count == 1
    # Imported, it is not handed out: the next ask samples a new trial.
    (asked,) = ask(stub, sid)
    assert asked.number == imported.number + 1


def test_states_are_counted_and_filtered(stub: Any) -> None:
    sid = _study(stub, LAT)
    a, b, c, d = (t.name for t in ask(stub, sid, count=4))
    tell(stub, a, loss=0.1, lat=10.0)
    tell(stub, b, loss=0.2, lat=30.0)  # completed, yet infeasible
    stub.CompleteTrial(ts.CompleteTrialRequest(name=c, infeasibility=ts.TrialInfeasibility()))
    stub.CompleteTrial(ts.CompleteTrialRequest(name=d, failure=ts.TrialFailure(reason="node lost")))
    counts = _study_of(stub, sid).state_counts
    assert (counts.completed, counts.infeasible, counts.failed, counts.running) == (2, 1, 1, 0)
    listed = stub.ListTrials(
        ts.ListTrialsRequest(parent=f"studies/{sid}", states=[INFEASIBLE])
    ).trials
    assert [t.name for t in listed] == [c]
    both = stub.ListTrials(
        ts.ListTrialsRequest(parent=f"studies/{sid}", states=[INFEASIBLE, COMPLETED])
    ).trials
    assert [(t.name, t.infeasible) for t in both] == [(a, False), (b, True), (c, True)]
    failed = _get(stub, d)
    assert (failed.infeasible, failed.failure_reason) == (False, "node lost")
    unknown = trial_pb2.TrialState.ValueType(99)
    err = _fails(stub.ListTrials, ts.ListTrialsRequest(parent=f"studies/{sid}", states=[unknown]))
    assert "_INFEASIBLE" in error_reason(err)[2]


# --- feasibility on trials, and optimal trials ----------------------------------------------------


def test_a_completed_trial_that_breaks_a_constraint_is_infeasible_and_never_optimal(
    stub: Any,
) -> None:
    sid = _study(stub, LAT, C(name="acc", lower_bound=0.9))
    best, good, worse, oom = (t.name for t in ask(stub, sid, count=4))
    broken = tell(stub, best, loss=0.01, lat=25.25, acc=0.5)  # the lowest loss, infeasible
    assert (broken.state, broken.infeasible) == (COMPLETED, True)
    assert (
        broken.infeasibility_reason
        == "lat = 25.25 > 20 (upper bound); acc = 0.5 < 0.9 (lower bound)"
    )
    tell(stub, good, loss=0.3, lat=20.0, acc=0.9)
    tell(stub, worse, loss=0.4, lat=5.0, acc=0.99)
    stub.CompleteTrial(ts.CompleteTrialRequest(name=oom, infeasibility=ts.TrialInfeasibility()))
    # Imported, better than every trial, and infeasible: not optimal either.
    imported = _import(stub, sid, 0.5, loss=0.001, lat=19.0, acc=0.1)
    assert imported.infeasibility_reason == "acc = 0.1 < 0.9 (lower bound)"
    listed = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}")).trials
    assert [(t.infeasible, t.infeasibility_reason != "") for t in listed] == [
        (True, True),
        (False, False),
        (False, False),
        (True, False),
        (True, True),
    ]
    assert _get(stub, best) == listed[0]
    assert [t.name for t in _optimal(stub, sid).trials] == [good]


def test_no_feasible_trial_means_no_optimal_trial(stub: Any) -> None:
    sid = _study(stub, LAT)
    (trial,) = ask(stub, sid)
    tell(stub, trial.name, loss=0.1, lat=21.0)
    assert not _optimal(stub, sid).trials
    assert not _optimal(stub, sid, MODEL).trials


def test_a_pareto_front_holds_feasible_trials_only(stub: Any) -> None:
    sid = _study(stub, LAT, objectives=[minimize(), maximize("acc")])
    dominant, b, c, dominated = (t.name for t in ask(stub, sid, count=4))
    tell(stub, dominant, loss=0.1, acc=0.9, lat=50.0)  # dominates every other, infeasible
    tell(stub, b, loss=0.3, acc=0.5, lat=10.0)
    tell(stub, c, loss=0.5, acc=0.7, lat=10.0)
    tell(stub, dominated, loss=0.6, acc=0.4, lat=10.0)  # dominated by b
    assert [t.name for t in _optimal(stub, sid).trials] == [b, c]
    by_model = _optimal(stub, sid, MODEL)
    assert by_model.predictions and dominant not in [t.name for t in by_model.trials]
    assert all(not t.infeasible for t in by_model.trials)


def test_the_model_recommends_a_feasible_trial(stub: Any) -> None:
    sid = _study(stub, LAT, deterministic_objective=True)
    _import(stub, sid, 0.1, loss=0.1, lat=30.0)
    _import(stub, sid, 0.2, loss=0.2, lat=30.0)
    feasible = [_import(stub, sid, x, loss=x, lat=10.0).name for x in (0.5, 0.6, 0.9)]
    answer = _optimal(stub, sid, MODEL)
    assert [t.name for t in answer.trials] == [feasible[0]]
    # Every completed trial is modelled, only feasible ones recommended: the mean is near its
    # value (a deterministic objective: the model interpolates).
    (prediction,) = answer.predictions
    assert prediction.measurements == 1
    assert prediction.mean["loss"] == pytest.approx(0.5, abs=0.05)


def test_the_model_learns_from_infeasible_trials_and_recommends_a_feasible_one(
    stub: Any,
) -> None:
    sid = _study(stub, LAT)
    for x in (0.1, 0.2, 0.3):
        _import(stub, sid, x, loss=x, lat=30.0)
    only = _import(stub, sid, 0.9, loss=0.9, lat=10.0)
    answer = _optimal(stub, sid, MODEL)
    # One feasible trial, yet a model: fitted on all four, it judges the feasible one.
    assert [t.name for t in answer.trials] == [only.name]
    (prediction,) = answer.predictions
    assert prediction.measurements == 1


# --- reports and stopped trials -----------------------------------------------------------------


def test_reports_may_carry_constraint_values(stub: Any) -> None:
    sid = _study(stub, LAT)
    (trial,) = ask(stub, sid)
    assert report(stub, trial.name, 1, loss=0.5, lat=12.0).trial.state == RUNNING
    assert report(stub, trial.name, 2, loss=0.4).trial.measurement_count == 2  # optional
    for values, field in (
        ({"loss": 0.3, "lat": math.inf}, "measurement.values[lat]"),
        ({"loss": 0.3, "latency": 1.0}, "measurement.values[latency]"),
        ({"lat": 1.0}, "measurement.values"),  # no objective value
    ):
        req = ts.AddTrialMeasurementRequest(
            name=trial.name, measurement=trial_pb2.Measurement(step=3, values=values)
        )
        err = _fails(stub.AddTrialMeasurement, req)
        assert error_reason(err)[:2] == (INVALID, "INVALID_MEASUREMENT"), values
        assert error_field(err) == field
    assert _get(stub, trial.name).measurement_count == 2


def test_a_ranked_stopped_trial_is_feasible_only_when_its_last_report_holds_every_constraint(
    stub: Any,
) -> None:
    policy = study_pb2.EarlyStoppingPolicy(
        threshold=study_pb2.ThresholdStoppingRule(threshold=10.0), rank_stopped_trials=True
    )
    sid = _study(stub, LAT, early_stopping=policy)
    done, broken, partial, relapsed, good = (t.name for t in ask(stub, sid, count=5))
    tell(stub, done, loss=0.5, lat=5.0)
    report(stub, broken, 0, loss=0.1, lat=30.0)
    report(stub, partial, 0, loss=0.05)
    report(stub, relapsed, 0, loss=0.01, lat=10.0)  # feasible at first ...
    report(stub, relapsed, 1, loss=0.02, lat=40.0)  # ... not at its last report
    report(stub, good, 0, loss=0.2, lat=10.0)
    stopped = {}
    for name in (broken, partial, relapsed, good):
        stop = ts.CompleteTrialRequest(name=name, stop=ts.TrialStop())
        stopped[name] = stub.CompleteTrial(stop).trial
        assert stopped[name].state == STOPPED
    assert stopped[broken].infeasibility_reason == "lat = 30 > 20 (upper bound)"
    assert stopped[partial].infeasibility_reason == "lat has no value"
    assert stopped[relapsed].infeasibility_reason == "lat = 40 > 20 (upper bound)"
    assert not stopped[good].infeasible
    assert [t.name for t in _optimal(stub, sid).trials] == [good]
    # Without rank_stopped_trials a stopped trial is not judged: neither feasible nor not.
    unranked = _study(
        stub, LAT, early_stopping=study_pb2.EarlyStoppingPolicy(threshold=policy.threshold)
    )
    (trial,) = ask(stub, unranked)
    report(stub, trial.name, 0, loss=0.1, lat=30.0)
    out = stub.CompleteTrial(ts.CompleteTrialRequest(name=trial.name, stop=ts.TrialStop())).trial
    assert (out.state, out.infeasible) == (STOPPED, False)
    assert not _optimal(stub, unranked).trials


def test_a_trial_stopped_by_its_policy_is_ranked_only_when_its_report_is_feasible(
    stub: Any,
) -> None:
    policy = study_pb2.EarlyStoppingPolicy(
        threshold=study_pb2.ThresholdStoppingRule(threshold=1.0), rank_stopped_trials=True
    )
    sid = _study(stub, LAT, early_stopping=policy)
    infeasible, feasible = (t.name for t in ask(stub, sid, count=2))
    assert report(stub, infeasible, 0, loss=2.0, lat=30.0).decision.should_stop
    assert report(stub, feasible, 0, loss=3.0, lat=10.0).decision.should_stop
    assert _get(stub, infeasible).infeasible and not _get(stub, feasible).infeasible
    assert [t.name for t in _optimal(stub, sid).trials] == [feasible]


def test_a_bayesian_study_asks_with_infeasible_trials_in_its_history(stub: Any) -> None:
    sid = _study(stub, LAT, algorithm=study_pb2.ALGORITHM_BAYESIAN, initial_trials=3)
    oom, broken, good = (t.name for t in ask(stub, sid, count=3))
    stub.CompleteTrial(ts.CompleteTrialRequest(name=oom, infeasibility=ts.TrialInfeasibility()))
    tell(stub, broken, loss=0.1, lat=30.0)
    tell(stub, good, loss=0.5, lat=10.0)
    # The model's ask reads the INFEASIBLE trial with the rest, and hands out a new point.
    (suggested,) = ask(stub, sid)
    assert suggested.state == RUNNING and suggested.number == 4
    assert _study_of(stub, sid).state_counts.infeasible == 1
