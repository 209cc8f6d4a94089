"""STOPPED trials (early stopping) in a sampler's history: the Bayesian sampler's rule (never
better than the median completed result, worse when their own last value says so; with one
objective, the completed trials' line from a rung to results as it is, with its scatter as
the estimate's variance), its variants (no value, several objectives,
``rank_stopped_trials``), concurrent asks over a history of stopped trials, the worker's
routing, and the other samplers' indifference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hyperdial_server.core.early_stopping import (
    EarlyStopping,
    Hyperband,
    PercentileRule,
    RungValue,
    StepValue,
    SuccessiveHalving,
)
from hyperdial_server.core.history import TrialPage, rung_measurements, step_measurements
from hyperdial_server.core.space import FloatDomain, IntDomain, ParameterConfig, Params, SearchSpace
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.samplers import (
    BayesianSampler,
    RandomSampler,
    _bayes,
    _encoder,
    _gp,
    get_sampler,
)
from hyperdial_server.samplers._worker import run_suggest
from tests.samplers.test_sampler_contract import SPACES

P = ParameterConfig
SAMPLER = BayesianSampler()
SPACE = SearchSpace([P("x", FloatDomain(0.0, 1.0)), P("y", FloatDomain(0.0, 1.0))])
LOSS = (Objective("loss"),)


def _spec(
    objectives: tuple[Objective, ...] = LOSS,
    seed: int = 3,
    early_stopping: EarlyStopping | None = None,
) -> StudySpec:
    return StudySpec(
        SPACE, objectives, Algorithm.BAYESIAN, seed, initial_trials=4, early_stopping=early_stopping
    )


def _bowl(p: Params) -> float:
    return (float(p["x"]) - 0.3) ** 2 + (float(p["y"]) - 0.3) ** 2


def _history(n: int = 10, seed: int = 3) -> list[Trial]:
    """``n`` completed trials at random points (sampler indices 0..n-1), loss ``_bowl``."""
    points = RandomSampler().suggest(StudySpec(SPACE, LOSS, Algorithm.RANDOM, seed), range(n))
    return [
        Trial(i + 1, TrialState.COMPLETED, p, {"loss": _bowl(p)}, sampler_index=i)
        for i, p in enumerate(points)
    ]


def _median(history: list[Trial], name: str = "loss") -> float:
    return float(np.median([(t.values or {})[name] for t in history]))


def _trial(state: TrialState, number: int, p: Params, values: dict[str, float] | None) -> Trial:
    return Trial(number, state, p, values, sampler_index=number - 1)


def _dist(a: Params, b: Params) -> float:
    return math.dist((float(a["x"]), float(a["y"])), (float(b["x"]), float(b["y"])))


# --- the rule -----------------------------------------------------------------------------


def test_a_stopped_trial_with_a_good_last_value_counts_as_the_median_completed_result() -> None:
    spec = _spec()
    history = _history()
    point = {"x": 0.31, "y": 0.29}  # near the optimum: a last value better than any result
    stopped = _trial(TrialState.STOPPED, 11, point, {"loss": -1.0})
    at_median = _trial(TrialState.COMPLETED, 11, point, {"loss": _median(history)})
    as_result = _trial(TrialState.COMPLETED, 11, point, {"loss": -1.0})
    got = SAMPLER.suggest(spec, [11, 12], [*history, stopped])
    # Exactly the suggestions of a completed trial at the median, not of its own value.
    assert got == SAMPLER.suggest(spec, [11, 12], [*history, at_median])
    assert got != SAMPLER.suggest(spec, [11, 12], [*history, as_result])
    data = _bayes._observations(spec, _encoder.Encoder(SPACE), [*history, stopped])
    assert data.completed == len(history) and data.y[-1, 0] == _median(history)


def test_a_stopped_trial_with_a_bad_last_value_keeps_its_badness() -> None:
    for objective, sign in ((Objective("loss"), 1.0), (Objective("loss", maximize=True), -1.0)):
        spec = _spec((objective,))
        history = _history()
        worst = max(sign * (t.values or {})["loss"] for t in history)
        bad = sign * 3.0 * worst  # worse than every result, in the objective's direction
        point = {"x": 0.9, "y": 0.1}
        stopped = _trial(TrialState.STOPPED, 11, point, {"loss": bad})
        completed = _trial(TrialState.COMPLETED, 11, point, {"loss": bad})
        got = SAMPLER.suggest(spec, [11, 12], [*history, stopped])
        assert got == SAMPLER.suggest(spec, [11, 12], [*history, completed])
        data = _bayes._observations(spec, _encoder.Encoder(SPACE), [*history, stopped])
        assert data.y[-1, 0] == 3.0 * worst  # oriented: lower is better


@pytest.mark.parametrize("seed", range(4))
def test_the_next_point_moves_away_from_a_region_of_stopped_trials(seed: int) -> None:
    spec = _spec(seed=seed)
    history = _history(seed=seed)
    # Without them the model's next point is here; stopped trials around it, cut short with
    # values worse than every result, make it look elsewhere.
    (before,) = SAMPLER.suggest(spec, [10], history)
    rng = np.random.default_rng(seed)
    worst = max((t.values or {})["loss"] for t in history)
    region = [before] + [
        {k: float(np.clip(float(before[k]) + rng.normal(0.0, 0.03), 0.0, 1.0)) for k in "xy"}
        for _ in range(2)
    ]
    stopped = [
        _trial(TrialState.STOPPED, 11 + k, p, {"loss": 2.0 * worst}) for k, p in enumerate(region)
    ]
    (after,) = SAMPLER.suggest(spec, [13], [*history, *stopped])
    assert min(_dist(after, p) for p in region) > 0.1, (before, after)


def test_a_stopped_trial_never_sets_the_incumbent() -> None:
    # Two objectives: the median on each is no result, yet a scalarisation may rank it first.
    spec = _spec((Objective("a"), Objective("b")))
    enc = _encoder.Encoder(SPACE)
    corners = [(0.0, 1.0), (1.0, 0.0), (0.4, 0.6), (0.6, 0.4)]
    history = [
        _trial(TrialState.COMPLETED, i + 1, {"x": 0.1 * i, "y": 0.5}, {"a": a, "b": b})
        for i, (a, b) in enumerate(corners)
    ]
    stopped = _trial(TrialState.STOPPED, 5, {"x": 0.9, "y": 0.9}, {"a": 0.0, "b": 0.0})
    data = _bayes._observations(spec, enc, [*history, stopped])
    np.testing.assert_array_equal(data.y[-1], [0.5, 0.5])  # per objective: the median
    scalar = np.array([1.0, 1.0, 0.9, 0.9, 0.5])  # a scalarisation where it comes first
    md = _bayes._model_data(spec, data, scalar, 0, 0)
    z, best, eligible = md.z, md.best, md.eligible
    assert z[-1] < best == float(np.min(z[:4]))
    assert list(eligible) == [True, True, True, True, False]  # nor noisy EI's incumbents


def test_several_objectives_apply_the_rule_per_objective_and_fill_missing_values() -> None:
    objectives = (Objective("loss"), Objective("acc", maximize=True))
    spec = _spec(objectives)
    history = [
        _trial(TrialState.COMPLETED, i + 1, {"x": 0.1 * i, "y": 0.2}, {"loss": i, "acc": 0.1 * i})
        for i in range(5)
    ]  # medians: loss 2, acc 0.2 (oriented -0.2)
    stopped = [
        _trial(TrialState.STOPPED, 6, {"x": 0.9, "y": 0.9}, {"loss": 9.0, "acc": 0.9}),
        _trial(TrialState.STOPPED, 7, {"x": 0.8, "y": 0.9}, {"loss": 0.5}),  # acc not reported
    ]
    data = _bayes._observations(spec, _encoder.Encoder(SPACE), [*history, *stopped])
    assert data.completed == 5
    np.testing.assert_allclose(data.y[5:], [[9.0, -0.2], [2.0, -0.2]])
    points = SAMPLER.suggest(spec, [7, 8, 9], [*history, *stopped])
    assert len({tuple(sorted(p.items())) for p in points}) == 3


def test_a_stopped_trial_without_values_counts_as_failed() -> None:
    spec = _spec()
    history = _history()
    point = {"x": 0.3, "y": 0.3}
    for values in (None, {}, {"other": 1.0}):
        stopped = _trial(TrialState.STOPPED, 11, point, values)
        failed = _trial(TrialState.FAILED, 11, point, None)
        got = SAMPLER.suggest(spec, [11], [*history, stopped])
        assert got == SAMPLER.suggest(spec, [11], [*history, failed])


def test_without_completed_trials_stopped_ones_leave_the_initial_design_alone() -> None:
    spec = _spec()
    stopped = [
        _trial(TrialState.STOPPED, i + 1, p, {"loss": float(i)})
        for i, p in enumerate(RandomSampler().suggest(_spec(), range(6)))
    ]
    # No median to cap them at and no model: quasi-random points, as with no history.
    assert SAMPLER.suggest(spec, [6, 7], stopped) == SAMPLER.suggest(spec, [6, 7])


def test_after_one_completed_trial_stopped_ones_count_towards_a_model() -> None:
    spec = _spec()
    points = RandomSampler().suggest(_spec(), range(6))
    first = _trial(TrialState.COMPLETED, 1, points[0], {"loss": _bowl(points[0])})
    stopped = [
        _trial(TrialState.STOPPED, i + 1, p, {"loss": 1.0 + _bowl(p)})
        for i, p in enumerate(points[1:], start=1)
    ]
    # One result and five stopped trials: the model's points, not the quasi-random ones.
    sobol = SAMPLER.suggest(spec, [6, 7])
    assert SAMPLER.suggest(spec, [6, 7], [first, *stopped]) != sobol
    assert SAMPLER.suggest(spec, [6, 7], [first]) == sobol  # one result alone: no model


def test_a_policy_that_ranks_stopped_trials_models_them_as_completed() -> None:
    policy = EarlyStopping(Hyperband(max_resource=9), "loss", rank_stopped_trials=True)
    spec = _spec(early_stopping=policy)
    history = _history()
    point = {"x": 0.31, "y": 0.29}
    stopped = _trial(TrialState.STOPPED, 11, point, {"loss": -1.0})
    completed = _trial(TrialState.COMPLETED, 11, point, {"loss": -1.0})
    got = SAMPLER.suggest(spec, [11], [*history, stopped])
    assert got == SAMPLER.suggest(spec, [11], [*history, completed])
    # Not without it.
    unranked = dataclasses.replace(
        spec, early_stopping=dataclasses.replace(policy, rank_stopped_trials=False)
    )
    assert SAMPLER.suggest(unranked, [11], [*history, stopped]) != got


# --- concurrent asks ------------------------------------------------------------------------


def test_stopped_trials_keep_concurrent_asks_on_distinct_points() -> None:
    spec = _spec()
    history = _history(6)
    # Indices 6..23 went to trials stopped early (most trials of a Hyperband study stop).
    extra = RandomSampler().suggest(StudySpec(SPACE, LOSS, Algorithm.RANDOM, 9), range(18))
    stopped = [
        _trial(TrialState.STOPPED, 7 + k, p, {"loss": 1.0 + _bowl(p)}) for k, p in enumerate(extra)
    ]
    full = [*history, *stopped]
    batch = SAMPLER.suggest(spec, [24, 25, 26], full)
    assert min(_dist(a, b) for i, a in enumerate(batch) for b in batch[:i]) > 1e-3
    # Asks racing on indices 24, 25 and 26 see the stopped trials' recorded indices: positions
    # 0, 1 and 2 of one batch.
    assert [SAMPLER.suggest(spec, [i], full)[0] for i in (24, 25, 26)] == batch
    # A history without them (what the service listed before stopped trials fed the model)
    # counts their 16 indices below as asks in flight: every ask lands on the capped position.
    assert SAMPLER.suggest(spec, [24], history) == SAMPLER.suggest(spec, [25], history)


# --- the worker and the other samplers --------------------------------------------------------


def test_the_worker_passes_stopped_trials_with_the_finished_ones() -> None:
    spec = _spec()
    history = _history()
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.31, "y": 0.29}, {"loss": -1.0})
    running = Trial(12, TrialState.RUNNING, {"x": 0.5, "y": 0.5}, sampler_index=11)
    pages = [TrialPage(history[:5]), TrialPage([*history[5:], stopped, running])]
    points, _ = run_suggest(Algorithm.BAYESIAN, spec, [12], pages)
    assert points == SAMPLER.suggest(spec, [12], [*history, stopped], [running])


@pytest.mark.parametrize("algorithm", list(Algorithm), ids=lambda a: a.value)
def test_every_sampler_takes_a_history_with_stopped_trials(algorithm: Algorithm) -> None:
    space = SPACES["conditional"]
    spec = StudySpec(space, LOSS, algorithm, 7, grid_resolution=4, initial_trials=2)
    sampler = get_sampler(algorithm)
    cap = sampler.capacity(spec)
    points = RandomSampler().suggest(StudySpec(space, LOSS, Algorithm.RANDOM, 7), range(8))
    history = [
        Trial(
            i + 1,
            [TrialState.COMPLETED, TrialState.STOPPED, TrialState.FAILED][i % 3],
            p,
            None if i % 4 == 3 else {"loss": float(i)},
            sampler_index=i,
        )
        for i, p in enumerate(points)
    ]
    got = sampler.suggest(spec, [8, 9], history)
    for p in got:
        assert space.validate_point(p) == p
    assert sampler.capacity(spec) == cap  # a grid's capacity is its points, whatever stopped
    if not sampler.needs_history:
        assert got == sampler.suggest(spec, [8, 9])


def test_an_int_space_with_stopped_trials_suggests_new_points() -> None:
    # A small discrete space: a stopped trial's point counts as evaluated, never handed out again.
    space = SearchSpace([P("a", IntDomain(0, 2)), P("b", IntDomain(0, 2))])
    spec = StudySpec(space, LOSS, Algorithm.BAYESIAN, 1, initial_trials=2)
    grid = [{"a": a, "b": b} for a in range(3) for b in range(3)]
    history = [
        _trial(
            TrialState.COMPLETED if i < 3 else TrialState.STOPPED,
            i + 1,
            p,
            {"loss": float(p["a"] + p["b"]) - (10.0 if i >= 3 else 0.0)},
        )
        for i, p in enumerate(grid[:7])
    ]
    (point,) = SAMPLER.suggest(spec, [7], history)
    assert point in grid[7:]


# --- values at rungs (successive halving, Hyperband) ---------------------------------------

HALVING = EarlyStopping(SuccessiveHalving(min_resource=1, reduction_factor=3), objective="loss")


def _with_rungs(trials: list[Trial], at_step: dict[int, float], step: int = 3) -> list[Trial]:
    """``trials`` with a rung measurement at ``step`` for the numbers in ``at_step``."""
    return [
        dataclasses.replace(t, measurements=[Measurement(step, {"loss": at_step[t.number]})])
        if t.number in at_step
        else t
        for t in trials
    ]


def test_a_stopped_trial_is_valued_by_the_completed_trials_line_at_its_rung() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history()
    # At step 3 every completed trial measured 2 * final + 1: the line maps a value v there
    # to (v - 1) / 2 at the end.
    rungs = {t.number: 2.0 * (t.values or {})["loss"] + 1.0 for t in history}
    worst = max((t.values or {})["loss"] for t in history)
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.9, "y": 0.9}, {"loss": 2.0 * worst + 1.5})
    rungs[11] = 2.0 * worst + 1.5
    data = _bayes._observations(
        spec, _encoder.Encoder(SPACE), _with_rungs([*history, stopped], rungs)
    )
    # Its own last value is on the scale of step 3; the estimate on the scale of results.
    assert data.y[-1, 0] == pytest.approx(worst + 0.25)
    # Without rung measurements (a store that keeps none): its own last value, as before.
    plain = _bayes._observations(spec, _encoder.Encoder(SPACE), [*history, stopped])
    assert plain.y[-1, 0] == 2.0 * worst + 1.5


def test_a_rung_that_says_nothing_of_the_end_values_a_stopped_trial_at_the_mean() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history()
    # Values at step 3 that go against the final ones: the slope is held at 0, so the line
    # predicts the mean result, as uncertain as the results themselves are spread.
    rungs = {t.number: -(t.values or {})["loss"] for t in history}
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.9, "y": 0.9}, {"loss": 5.0})
    rungs[11] = 5.0
    data = _bayes._observations(
        spec, _encoder.Encoder(SPACE), _with_rungs([*history, stopped], rungs)
    )
    finals = np.array([(t.values or {})["loss"] for t in history])
    assert data.y[-1, 0] == pytest.approx(float(np.mean(finals)))
    spread = float(np.sum((finals - finals.mean()) ** 2)) / (len(finals) - 2)
    assert data.estimate_var[-1] == pytest.approx(spread)
    # Completed trials are measurements.
    assert not np.any(data.estimate_var[:-1])


def test_a_line_estimate_better_than_the_median_enters_as_it_is() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history()
    # Step 3 values 2 * final + 1 plus a wobble: a steep line that misses each final a little.
    wobble = {t.number: 0.01 * (-1) ** t.number for t in history}
    rungs = {t.number: 2.0 * (t.values or {})["loss"] + 1.0 + wobble[t.number] for t in history}
    best = min((t.values or {})["loss"] for t in history)
    # Cut at step 3 with a value the line maps to about the best result (far below the median).
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.9, "y": 0.9}, {"loss": 2.0 * best + 1.0})
    rungs[11] = 2.0 * best + 1.0
    trials = _with_rungs([*history, stopped], rungs)
    data = _bayes._observations(spec, _encoder.Encoder(SPACE), trials)
    x = np.array([rungs[t.number] for t in history])
    f = np.array([(t.values or {})["loss"] for t in history])
    slope, intercept = np.polyfit(x, f, 1)
    assert data.y[-1, 0] == pytest.approx(intercept + slope * rungs[11])
    assert data.y[-1, 0] < _median(history)
    residual = f - (intercept + slope * x)
    assert data.estimate_var[-1] == pytest.approx(float(residual @ residual) / (len(f) - 2))
    assert data.estimate_var[-1] > 0
    # With two objectives (models without estimates' variances) the median floor stays.
    two = _spec(objectives=(Objective("loss"), Objective("acc", maximize=True)))
    two = dataclasses.replace(two, early_stopping=HALVING)
    both = [
        dataclasses.replace(t, values={**(t.values or {}), "acc": 0.5})
        for t in _with_rungs([*history, stopped], rungs)
    ]
    data2 = _bayes._observations(two, _encoder.Encoder(SPACE), both)
    assert data2.y[-1, 0] == pytest.approx(_median(history))
    assert not np.any(data2.estimate_var)


def test_an_estimate_s_variance_follows_it_onto_the_model_s_scale() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history()
    wobble = {t.number: 0.05 * (-1) ** t.number for t in history}
    rungs = {t.number: 2.0 * (t.values or {})["loss"] + 1.0 + wobble[t.number] for t in history}
    stopped = [
        _trial(TrialState.STOPPED, 11 + i, {"x": 0.1 + 0.2 * i, "y": 0.9}, {"loss": v})
        for i, v in enumerate((1.2, 1.5, 2.5))
    ]
    rungs.update({11 + i: float((t.values or {})["loss"]) for i, t in enumerate(stopped)})
    data = _bayes._observations(
        spec, _encoder.Encoder(SPACE), _with_rungs([*history, *stopped], rungs)
    )
    y = data.y[:, 0]
    # Standardised only: divided by the outputs' variance.
    plain = _bayes._model_data(spec, data, y, 0, 0, warp=False)
    np.testing.assert_allclose(plain.estimate_var, data.estimate_var / np.var(y), rtol=1e-9)
    # Through the power transform: times the squared derivative of the map from values to
    # outputs, here checked against the inverse map's.
    md = _bayes._model_data(spec, data, y, 0, 0)
    _, transform = _bayes.fit_output_transform(y)
    assert transform is not None and transform.lam is not None
    h = 1e-6
    dy_dz = (transform.inverse(md.z + h) - transform.inverse(md.z - h)) / (2 * h)
    np.testing.assert_allclose(md.estimate_var, data.estimate_var / dy_dz**2, rtol=1e-5)
    assert np.all(md.estimate_var[-3:] > 0) and not np.any(md.estimate_var[:-3])


def test_a_rung_with_too_few_completed_trials_keeps_the_stopped_trial_s_own_value() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history()
    # Only two completed trials measured at step 3 (MIN_RUNG_PAIRS is 3).
    rungs = {1: 10.0, 2: 20.0, 11: 100.0}
    assert _bayes.MIN_RUNG_PAIRS == 3
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.9, "y": 0.9}, {"loss": 100.0})
    data = _bayes._observations(
        spec, _encoder.Encoder(SPACE), _with_rungs([*history, stopped], rungs)
    )
    assert data.y[-1, 0] == 100.0


def test_rung_measurements_are_values_at_each_bracket_s_rung_steps_in_their_own_direction() -> None:
    rule = Hyperband(min_resource=1, max_resource=9, reduction_factor=3)
    es = EarlyStopping(rule, objective="acc", maximize=True)
    got = rung_measurements(
        es, [RungValue(1, 0, 1, -0.5), RungValue(1, 0, 0, -0.25), RungValue(2, 1, 0, -0.75)]
    )
    # Bracket 0's rungs are at steps 1 and 3, bracket 1's at 3; values negated back.
    assert got == {
        1: [Measurement(1, {"acc": 0.25}), Measurement(3, {"acc": 0.5})],
        2: [Measurement(3, {"acc": 0.75})],
    }
    median = EarlyStopping(PercentileRule(median=True), objective="loss")
    assert rung_measurements(median, [RungValue(1, 0, 0, 1.0)]) == {}


def test_the_worker_gives_trials_their_rung_measurements() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history()
    rungs = {t.number: 2.0 * (t.values or {})["loss"] + 1.0 for t in history}
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.9, "y": 0.9}, {"loss": 7.0})
    rungs[11] = 7.0
    by_number = {n: [Measurement(3, {"loss": v})] for n, v in rungs.items()}
    points, _ = run_suggest(
        Algorithm.BAYESIAN, spec, [11], [TrialPage([*history, stopped])], by_number
    )
    assert points == SAMPLER.suggest(spec, [11], _with_rungs([*history, stopped], rungs))
    assert points != SAMPLER.suggest(spec, [11], [*history, stopped])


def test_step_measurements_are_a_percentile_rule_s_values_in_their_own_direction() -> None:
    es = EarlyStopping(PercentileRule(median=True), objective="acc", maximize=True)
    got = step_measurements(
        es, [StepValue(1, 3, -0.5), StepValue(1, 2, -0.25), StepValue(2, 3, -0.75)]
    )
    assert got == {
        1: [Measurement(2, {"acc": 0.25}), Measurement(3, {"acc": 0.5})],
        2: [Measurement(3, {"acc": 0.75})],
    }
    assert step_measurements(HALVING, [StepValue(1, 3, 1.0)]) == {}


def test_a_median_stopped_trial_is_valued_by_the_line_at_its_stop_step() -> None:
    median = EarlyStopping(PercentileRule(median=True), objective="loss")
    spec = _spec(early_stopping=median)
    history = _history()
    rungs = {t.number: 2.0 * (t.values or {})["loss"] + 1.0 for t in history}
    worst = max((t.values or {})["loss"] for t in history)
    stopped = _trial(TrialState.STOPPED, 11, {"x": 0.9, "y": 0.9}, {"loss": 2.0 * worst + 1.5})
    rungs[11] = 2.0 * worst + 1.5
    trials = _with_rungs([*history, stopped], rungs, step=7)
    data = _bayes._observations(spec, _encoder.Encoder(SPACE), trials)
    assert data.y[-1, 0] == pytest.approx(worst + 0.25)


def test_stopped_trials_estimates_do_not_read_as_noise_in_a_deterministic_objective() -> None:
    spec = _spec(early_stopping=HALVING)
    history = _history(12)
    rng = np.random.default_rng(0)
    # Step 3 predicts the result only roughly: the line through the completed trials misses
    # each by about 0.05, and so do the estimates of the 30 stopped ones.
    rungs = {t.number: (t.values or {})["loss"] + rng.normal(0.0, 0.05) for t in history}
    points = RandomSampler().suggest(StudySpec(SPACE, LOSS, Algorithm.RANDOM, 9), range(30))
    stopped = []
    for i, p in enumerate(points):
        number = 13 + i
        rungs[number] = _bowl(p) + float(rng.normal(0.0, 0.05))
        stopped.append(_trial(TrialState.STOPPED, number, p, {"loss": rungs[number]}))
    enc = _encoder.Encoder(SPACE)
    data = _bayes._observations(spec, enc, _with_rungs([*history, *stopped], rungs))
    assert np.all(data.estimate_var[len(history) :] > 0)
    md = _bayes._model_data(spec, data, data.y[:, 0], 0, 0)
    x = enc.features(md.u)
    # Fitted as measurements, the estimates' errors are noise; as estimates, they are not.
    as_measured = _gp.fit(x, md.z, enc.groups, np.random.default_rng(1))
    as_estimates = _gp.fit(
        x, md.z, enc.groups, np.random.default_rng(1), extra_noise=md.estimate_var
    )
    assert _bayes.noisy_results(spec, _gp.Posterior(x, md.z, enc.groups, as_measured))
    posterior = _gp.Posterior(x, md.z, enc.groups, as_estimates, md.estimate_var)
    assert not _bayes.noisy_results(spec, posterior)
