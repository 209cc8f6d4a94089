"""Which trials are feasible (``core.feasibility``): pure, on made-up trials."""

from __future__ import annotations

import dataclasses
import math

import pytest

from hyperdial_server.core.early_stopping import EarlyStopping, Threshold
from hyperdial_server.core.feasibility import feasible, judged_by_values, trial_infeasibility
from hyperdial_server.core.space import FloatDomain, ParameterConfig, SearchSpace
from hyperdial_server.core.study import Algorithm, Constraint, Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState

SPEC = StudySpec(
    space=SearchSpace([ParameterConfig("x", FloatDomain(0.0, 1.0))]),
    objectives=(Objective("loss"),),
    algorithm=Algorithm.RANDOM,
    seed=1,
    constraints=(Constraint("lat", upper=20.0), Constraint("acc", lower=0.9, upper=1.0)),
)
RANKED = dataclasses.replace(
    SPEC,
    early_stopping=EarlyStopping(
        rule=Threshold(threshold=10.0), objective="loss", rank_stopped_trials=True
    ),
)


def _trial(state: TrialState, values: dict[str, float] | None = None, reason: str = "") -> Trial:
    return Trial(1, state, {"x": 0.5}, values=values, failure_reason=reason)


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"loss": 1.0, "lat": 20.0, "acc": 0.9}, None),  # bounds are inclusive
        ({"loss": 1.0, "lat": 20.5, "acc": 1.0}, "lat = 20.5 > 20 (upper bound)"),
        ({"loss": 1.0, "lat": 1.0, "acc": 0.5}, "acc = 0.5 < 0.9 (lower bound)"),
        (
            {"loss": 1.0, "lat": 21.0, "acc": 2.0},
            "lat = 21 > 20 (upper bound); acc = 2 > 1 (upper bound)",
        ),
        ({"loss": 1.0, "acc": 0.95}, "lat has no value"),
        ({"loss": 1.0, "lat": math.nan, "acc": 0.95}, "lat has no value"),
    ],
)
def test_a_completed_trial_is_judged_by_its_values(
    values: dict[str, float], why: str | None
) -> None:
    trial = _trial(TrialState.COMPLETED, values)
    assert trial_infeasibility(SPEC, trial) == why
    assert feasible(SPEC, values) is (why is None)


def test_an_infeasible_trial_gives_its_workers_reason_even_empty() -> None:
    assert trial_infeasibility(SPEC, _trial(TrialState.INFEASIBLE, reason="oom")) == "oom"
    assert trial_infeasibility(SPEC, _trial(TrialState.INFEASIBLE)) == ""


@pytest.mark.parametrize(
    "state", [TrialState.WAITING, TrialState.RUNNING, TrialState.FAILED, TrialState.STOPPED]
)
def test_trials_not_judged_by_values_are_not_infeasible(state: TrialState) -> None:
    trial = _trial(state, {"loss": 1.0, "lat": 99.0}, reason="node lost")
    assert not judged_by_values(SPEC, trial)
    assert trial_infeasibility(SPEC, trial) is None


def test_a_stopped_trial_is_judged_when_its_study_ranks_stopped_trials() -> None:
    broken = _trial(TrialState.STOPPED, {"loss": 1.0, "lat": 99.0, "acc": 0.95})
    assert trial_infeasibility(RANKED, broken) == "lat = 99 > 20 (upper bound)"
    # Stopped before any report: not ranked, so not judged.
    assert trial_infeasibility(RANKED, _trial(TrialState.STOPPED)) is None


def test_a_study_without_constraints_finds_every_value_feasible() -> None:
    plain = dataclasses.replace(SPEC, constraints=())
    assert feasible(plain, {"loss": 1.0}) and feasible(plain, None)
    assert trial_infeasibility(plain, _trial(TrialState.COMPLETED, {"loss": 1.0})) is None
