"""The recommendation (``samplers/_recommend.py``): completed trials judged by the model's
prediction of their noise-free values, not by their luck. Pure: made-up trials in, no I/O.

Every data set is fixed (or drawn from a seeded generator), and the model's fit is seeded by
the study's seed: each test gives the same answer on every run.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hyperdial_server.core.pareto import pareto_front
from hyperdial_server.core.space import (
    CategoricalDomain,
    FloatDomain,
    ParameterConfig,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Constraint, Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import _recommend
from hyperdial_server.samplers._bayes import OutputTransform
from hyperdial_server.samplers._recommend import MIN_RECOMMEND_TRIALS, recommend

XY = SearchSpace(
    [ParameterConfig("x", FloatDomain(0.0, 1.0)), ParameterConfig("y", FloatDomain(0.0, 1.0))]
)
X = SearchSpace([ParameterConfig("x", FloatDomain(0.0, 1.0))])


def _spec(space: SearchSpace, *objectives: Objective, **kw: object) -> StudySpec:
    return StudySpec(
        space=space,
        objectives=objectives or (Objective("loss"),),
        algorithm=Algorithm.RANDOM,
        seed=1,
        **kw,  # type: ignore[arg-type]
    )


def _completed(rows: list[tuple[dict[str, ParamValue], dict[str, float]]]) -> list[Trial]:
    return [
        Trial(n, TrialState.COMPLETED, params, values=values)
        for n, (params, values) in enumerate(rows, start=1)
    ]


def _bowl(x: float, y: float) -> float:
    """The noise-free objective of the noisy tests: lowest (0) at (0.4, 0.6)."""
    return (x - 0.4) ** 2 + (y - 0.6) ** 2


#: Where the lucky trial is measured: truly mediocre (0.18 above the optimum).
LUCKY = (0.7, 0.3)


def _lucky_outlier_study(seed: int = 2) -> list[Trial]:
    """40 seeded random points of the bowl, measured with noise of sd 0.05, then one at
    ``LUCKY`` measured luckily: 0.01 below every other measurement (the observed best)."""
    rng = np.random.default_rng(seed)
    points = [(float(rng.random()), float(rng.random())) for _ in range(40)]
    values = [_bowl(x, y) + float(rng.normal(0.0, 0.05)) for x, y in points]
    points.append(LUCKY)
    values.append(min(values) - 0.01)
    return _completed(
        [({"x": x, "y": y}, {"loss": v}) for (x, y), v in zip(points, values, strict=True)]
    )


def test_the_model_sees_through_a_lucky_outlier_to_a_truly_better_point() -> None:
    trials = _lucky_outlier_study()
    observed = min(trials, key=lambda t: t.values["loss"])  # type: ignore[index]
    assert (observed.params["x"], observed.params["y"]) == LUCKY
    (best,) = recommend(_spec(XY), trials) or []
    assert best.trial.number != observed.number
    # Truly better, and by a margin: at most half of the lucky point's true excess.
    truth = _bowl(float(best.trial.params["x"]), float(best.trial.params["y"]))
    assert truth < _bowl(*LUCKY) / 2
    # The noise was fitted (sd 0.05 drawn), and the prediction carries its uncertainty.
    assert 0.01 < best.noise_stddev["loss"] < 0.2
    assert best.stddev["loss"] > 0
    assert best.measurements == 1
    assert set(best.mean) == set(best.stddev) == set(best.noise_stddev) == {"loss"}


def test_the_answer_is_the_same_every_time() -> None:
    trials = _lucky_outlier_study()
    assert recommend(_spec(XY), trials) == recommend(_spec(XY), list(reversed(trials)))


# --- repeated measurements ---------------------------------------------------------------------

#: A landscape with two wells, at x = 0.3 and its mirror 0.7, measured the same at mirrored
#: points: only what is measured at the wells tells them apart.
_WALLS = {
    0.0: 0.6,
    0.1: 0.35,
    0.2: 0.2,
    0.4: 0.2,
    0.5: 0.3,
    0.6: 0.2,
    0.8: 0.2,
    0.9: 0.35,
    1.0: 0.6,
}


def _two_wells(at_03: list[float], at_07: float) -> list[Trial]:
    rows: list[tuple[dict[str, ParamValue], dict[str, float]]] = [
        ({"x": x}, {"loss": v}) for x, v in _WALLS.items()
    ]
    # The repeats are interleaved with the other well's one measurement.
    rows += [({"x": 0.3}, {"loss": at_03[0]}), ({"x": 0.7}, {"loss": at_07})]
    rows += [({"x": 0.3}, {"loss": v}) for v in at_03[1:]]
    return _completed(rows)


def test_repeated_measurements_are_averaged_and_beat_one_slightly_better_result() -> None:
    """x = 0.3 measured 5 times (mean 0.10, spread 0.04) against x = 0.7 measured once at
    0.09: better than the average of the five, but one measurement of the same noise. The
    five win, as one point represented by its first trial."""
    trials = _two_wells([0.05, 0.15, 0.10, 0.08, 0.12], at_07=0.09)
    (best,) = recommend(_spec(X), trials) or []
    assert best.trial.params == {"x": 0.3}
    assert best.measurements == 5
    assert best.trial.number == min(t.number for t in trials if t.params == {"x": 0.3})
    assert best.mean["loss"] == pytest.approx(0.10, abs=0.03)
    assert best.noise_stddev["loss"] > 0.01


def test_measured_once_each_the_slightly_better_result_wins() -> None:
    """The control: with x = 0.3 measured once at its average, the mirror point's 0.09 wins;
    the five measurements, not the landscape, made x = 0.3 the recommendation."""
    (best,) = recommend(_spec(X), _two_wells([0.10], at_07=0.09)) or []
    assert best.trial.params == {"x": 0.7}
    assert best.measurements == 1


def test_of_two_points_predicted_alike_the_surer_one_is_recommended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """x = 0.7 measured once at 0.07 is predicted a little lower than x = 0.3, measured five
    times around 0.10, but with twice its uncertainty: the upper ends of the predictions
    (mean + RECOMMEND_SD sd) rank the five measurements first."""
    trials = _two_wells([0.05, 0.15, 0.10, 0.08, 0.12], at_07=0.07)
    (best,) = recommend(_spec(X), trials) or []
    assert best.trial.params == {"x": 0.3}
    monkeypatch.setattr(_recommend, "RECOMMEND_SD", 0.0)
    (by_mean,) = recommend(_spec(X), trials) or []
    assert by_mean.trial.params == {"x": 0.7}
    assert by_mean.mean["loss"] < best.mean["loss"]
    assert by_mean.stddev["loss"] > 1.5 * best.stddev["loss"]


def test_a_clearly_better_prediction_wins_despite_its_uncertainty() -> None:
    (best,) = recommend(_spec(X), _two_wells([0.05, 0.15, 0.10, 0.08, 0.12], at_07=0.05)) or []
    assert best.trial.params == {"x": 0.7}


# --- deterministic objectives ------------------------------------------------------------------


def test_a_deterministic_objective_fits_no_noise_and_trusts_each_result() -> None:
    trials = _lucky_outlier_study()
    observed = min(trials, key=lambda t: t.values["loss"])  # type: ignore[index]
    (best,) = recommend(_spec(XY, deterministic_objective=True), trials) or []
    # The model interpolates: the best result is the best point, predicted at its value.
    assert best.trial.number == observed.number
    assert best.noise_stddev == {"loss": 0.0}
    assert best.mean["loss"] == pytest.approx(observed.values["loss"], abs=1e-3)  # type: ignore[index]


def test_a_maximized_objective_is_recommended_at_its_highest_prediction() -> None:
    """The same data negated and maximized: the same point, its prediction negated."""
    trials = _lucky_outlier_study()
    (low,) = recommend(_spec(XY), trials) or []
    negated = [dataclasses.replace(t, values={"gain": -t.values["loss"]}) for t in trials]  # type: ignore[index]
    (high,) = recommend(_spec(XY, Objective("gain", maximize=True)), negated) or []
    assert high.trial.number == low.trial.number
    assert high.mean["gain"] == pytest.approx(-low.mean["loss"], rel=1e-6, abs=1e-9)
    assert high.stddev["gain"] == pytest.approx(low.stddev["loss"], rel=1e-6, abs=1e-9)


# --- several objectives ------------------------------------------------------------------------


def _two_objectives(spec_objectives: tuple[Objective, ...]) -> list[Trial]:
    """A trade-off on a line: ``a`` grows with x, ``b`` falls, and a third parameter that
    matters to neither."""
    rows: list[tuple[dict[str, ParamValue], dict[str, float]]] = []
    rng = np.random.default_rng(5)
    for _ in range(24):
        x, y = float(rng.random()), float(rng.random())
        a = x + 0.3 * (y - 0.5) ** 2
        b = (1 - x) ** 2 + 0.3 * (y - 0.5) ** 2
        rows.append(({"x": x, "y": y}, {"a": a, "b": -b if spec_objectives[1].maximize else b}))
    return _completed(rows)


def test_several_objectives_give_the_front_of_the_predictions() -> None:
    objectives = (Objective("a"), Objective("b", maximize=True))
    trials = _two_objectives(objectives)
    front = recommend(_spec(XY, *objectives), trials) or []
    assert len(front) >= 2
    assert [r.trial.number for r in front] == sorted(r.trial.number for r in front)
    # No recommended point's prediction dominates another's (oriented: lower a, higher b).
    for r in front:
        for s in front:
            assert not (
                r.mean["a"] <= s.mean["a"]
                and r.mean["b"] >= s.mean["b"]
                and (r.mean["a"] < s.mean["a"] or r.mean["b"] > s.mean["b"])
            )
    for r in front:
        assert set(r.mean) == {"a", "b"} and r.noise_stddev["a"] >= 0


def test_deterministic_several_objectives_give_the_observed_front() -> None:
    """Noise-free results interpolated: the predictions are the results, so the front of the
    predictions is the front of the results."""
    objectives = (Objective("a"), Objective("b", maximize=True))
    trials = _two_objectives(objectives)
    front = recommend(_spec(XY, *objectives, deterministic_objective=True), trials) or []
    assert [r.trial.number for r in front] == [t.number for t in pareto_front(trials, objectives)]
    for r in front:
        assert r.noise_stddev == {"a": 0.0, "b": 0.0}
        assert r.mean["a"] == pytest.approx(r.trial.values["a"], abs=1e-3)  # type: ignore[index]


# --- too little to model -----------------------------------------------------------------------


def test_fewer_than_two_usable_completed_trials_give_no_recommendation() -> None:
    assert MIN_RECOMMEND_TRIALS == 2
    spec = _spec(X)
    one = Trial(1, TrialState.COMPLETED, {"x": 0.5}, values={"loss": 1.0})
    assert recommend(spec, []) is None
    assert recommend(spec, [one]) is None
    # Only completed trials with every value count: not running, failed, stopped ones.
    others = [
        Trial(2, TrialState.RUNNING, {"x": 0.1}),
        Trial(3, TrialState.FAILED, {"x": 0.2}, failure_reason="oom"),
        Trial(4, TrialState.STOPPED, {"x": 0.3}, values={"loss": 0.0}),
        Trial(5, TrialState.COMPLETED, {"x": 0.4}, values={"loss": math.nan}),
    ]
    assert recommend(spec, [one, *others]) is None
    two = Trial(6, TrialState.COMPLETED, {"x": 0.9}, values={"loss": 2.0})
    (best,) = recommend(spec, [one, *others, two]) or []
    assert best.trial.number == 1


def test_every_value_equal_recommends_the_first_point_with_no_spread() -> None:
    space = SearchSpace([ParameterConfig("c", CategoricalDomain(("a", "b", "c")))])
    trials = _completed([({"c": c}, {"loss": 1.5}) for c in ("b", "a", "c", "b")])
    (best,) = recommend(_spec(space), trials) or []
    assert best.trial.number == 1
    assert (best.mean, best.stddev, best.noise_stddev) == (
        {"loss": 1.5},
        {"loss": 0.0},
        {"loss": 0.0},
    )
    assert best.measurements == 2


def _constrained_bowl() -> tuple[StudySpec, list[Trial]]:
    """A bowl on x whose best half breaks ``cost <= 0.5`` (cost = 1 - x): the model is fitted on
    every trial, but only points with x >= 0.5 can be recommended."""
    spec = _spec(X, constraints=(Constraint("cost", upper=0.5),))
    rows: list[tuple[dict[str, ParamValue], dict[str, float]]] = []
    for x in np.linspace(0.0, 1.0, 11):
        rows.append(({"x": float(x)}, {"loss": float(x) ** 2, "cost": 1.0 - float(x)}))
    return spec, _completed(rows)


def test_only_feasible_points_are_recommended() -> None:
    spec, trials = _constrained_bowl()
    answer = recommend(spec, trials)
    assert answer is not None and len(answer) == 1
    # The lowest predicted loss among feasible points: x = 0.5, not the infeasible x = 0.
    assert answer[0].trial.params == {"x": 0.5}
    assert spec.infeasibility(answer[0].trial.values) is None


def test_no_feasible_point_recommends_nothing() -> None:
    spec, trials = _constrained_bowl()
    tight = dataclasses.replace(spec, constraints=(Constraint("cost", upper=-1.0),))
    assert recommend(tight, trials) == []


def test_infeasible_trials_still_shape_the_model() -> None:
    """The prediction at a feasible point uses the infeasible trials' measurements: leaving
    them out changes it."""
    spec, trials = _constrained_bowl()
    with_all = recommend(spec, trials)
    feasible_only = recommend(spec, [t for t in trials if spec.infeasibility(t.values) is None])
    assert with_all is not None and feasible_only is not None
    assert with_all[0].trial.number == feasible_only[0].trial.number
    assert with_all[0].stddev["loss"] != feasible_only[0].stddev["loss"]


# --- the model under noise ---------------------------------------------------------------------


def _count_standardised(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the fits on outputs only standardised (the model under noise)."""
    calls = [0]
    real = _recommend._standardised

    def counting(y: np.ndarray) -> tuple[np.ndarray, OutputTransform]:
        calls[0] += 1
        return real(y)

    monkeypatch.setattr(_recommend, "_standardised", counting)
    return calls


def test_noisy_results_are_modelled_without_the_power_transform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _count_standardised(monkeypatch)
    trials = _lucky_outlier_study()
    (best,) = recommend(_spec(XY), trials) or []
    assert calls[0] == 1
    # Predictions are back on the objective's scale all the same: near the bowl's values.
    truth = _bowl(float(best.trial.params["x"]), float(best.trial.params["y"]))
    assert best.mean["loss"] == pytest.approx(truth, abs=0.05)
    assert 0.01 < best.noise_stddev["loss"] < 0.2


def test_noise_free_and_deterministic_results_keep_the_power_transform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _count_standardised(monkeypatch)
    rng = np.random.default_rng(4)
    points = [(float(rng.random()), float(rng.random())) for _ in range(30)]
    clean = _completed([({"x": x, "y": y}, {"loss": _bowl(x, y)}) for x, y in points])
    recommend(_spec(XY), clean)
    recommend(_spec(XY, deterministic_objective=True), _lucky_outlier_study())
    assert calls[0] == 0
