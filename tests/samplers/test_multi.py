"""Several objectives: expected hypervolume improvement (``_multi``, ``_hypervolume``).

The front it finds, batches and concurrent asks, determinism, 3 and 4 objectives, degenerate
histories, the feasibility model's hook, and the hypervolume arithmetic itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyperdial_server.core.space import (
    CategoricalDomain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    Params,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Constraint, Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import BayesianSampler, QuasiRandomSampler, _bayes, _multi
from hyperdial_server.samplers._encoder import Encoder
from hyperdial_server.samplers._hypervolume import (
    LogHvi,
    directions,
    normal_draws,
    pareto_mask,
    pareto_order,
)

P = ParameterConfig
SAMPLER = BayesianSampler()
CUBE = SearchSpace([P(f"x{i}", FloatDomain(0.0, 1.0)) for i in range(3)])
MIXED = SearchSpace(
    [
        P("lr", FloatDomain(1e-4, 1e-1, log=True)),
        P("layers", IntDomain(1, 8)),
        P("opt", CategoricalDomain(("sgd", "adam", "rmsprop"))),
    ]
)


def _objectives(m: int) -> tuple[Objective, ...]:
    # The last one maximised: orientation is the sampler's business, not the problem's.
    return tuple(Objective(f"f{j}", maximize=j == m - 1 and m > 2) for j in range(m))


def _spec(
    space: SearchSpace = CUBE, m: int = 2, seed: int = 0, initial_trials: int = 6
) -> StudySpec:
    return StudySpec(space, _objectives(m), Algorithm.BAYESIAN, seed, initial_trials=initial_trials)


def _zdt1(p: Params) -> dict[str, float]:
    x = [float(p[f"x{i}"]) for i in range(3)]
    g = 1.0 + 4.5 * (x[1] + x[2])
    return {"f0": x[0], "f1": g * (1.0 - math.sqrt(x[0] / g))}


def _many(p: Params, m: int) -> dict[str, float]:
    """``m`` conflicting objectives of a point of ``CUBE`` (the last one maximised)."""
    x = np.array([float(p[f"x{i}"]) for i in range(3)])
    out = {f"f{j}": float(np.sum((x - j / max(m - 1, 1)) ** 2)) for j in range(m)}
    if m > 2:
        out[f"f{m - 1}"] = -out[f"f{m - 1}"]
    return out


def _mixed(p: Params) -> dict[str, float]:
    lr, layers, opt = float(p["lr"]), int(p["layers"]), str(p["opt"])
    best = {"sgd": -1.5, "adam": -3.0, "rmsprop": -2.5}[opt]
    error = 0.08 * (math.log10(lr) - best) ** 2 + 0.5 / layers
    return {"f0": error, "f1": layers * (0.01 / lr) ** 0.25}


def _trials(spec: StudySpec, n: int, values: object, start: int = 0) -> list[Trial]:
    """``n`` completed trials at the study's quasi-random points, recording their indices."""
    assert callable(values)
    points = QuasiRandomSampler().suggest(spec, range(start, start + n))
    return [
        Trial(i + 1, TrialState.COMPLETED, p, values(p), sampler_index=i)
        for i, p in enumerate(points, start=start)
    ]


def _hypervolume_2d(y: np.ndarray, ref: np.ndarray) -> float:
    y = y[np.all(y < ref, axis=1)]
    y = y[np.lexsort((y[:, 1], y[:, 0]))]
    volume, level = 0.0, float(ref[1])
    for a, b in y:
        if b < level:
            volume += (ref[0] - a) * (level - b)
            level = b
    return volume


def _distinct(points: list[Params]) -> bool:
    return len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_the_front_beats_quasi_random_points() -> None:
    spec = _spec()
    trials: list[Trial] = []
    for i in range(20):
        (p,) = SAMPLER.suggest(spec, [i], trials)
        trials.append(Trial(i + 1, TrialState.COMPLETED, p, _zdt1(p), sampler_index=i))
    ref = np.array([1.1, 3.0])
    best = _hypervolume_2d(np.array([[1.0, 0.0]]), ref) + 2.0 / 3.0  # under 1 - sqrt(f0)
    ys = [[(t.values or {})[k] for k in ("f0", "f1")] for t in trials]
    found = _hypervolume_2d(np.array(ys), ref)
    sobol = QuasiRandomSampler().suggest(spec, range(20))
    plain = _hypervolume_2d(np.array([[_zdt1(p)["f0"], _zdt1(p)["f1"]] for p in sobol]), ref)
    assert best - found < 0.25 * (best - plain), (found, plain, best)


@pytest.mark.parametrize("space", [CUBE, MIXED], ids=["floats", "mixed"])
def test_a_batch_and_concurrent_asks_get_distinct_points(space: SearchSpace) -> None:
    spec = _spec(space)
    values = _zdt1 if space is CUBE else _mixed
    history = _trials(spec, 10, values)
    batch = SAMPLER.suggest(spec, [10, 11, 12, 13], history)
    assert _distinct(batch)
    for p in batch:
        assert space.validate_point(p) == p
    # Asks racing for indices 10 to 13 (none recorded yet) get the points of that batch.
    assert [SAMPLER.suggest(spec, [i], history)[0] for i in range(10, 14)] == batch
    enc = Encoder(space)
    rows = np.array([enc.encode(p) for p in batch])
    gaps = np.linalg.norm(rows[:, None] - rows[None, :], axis=2) + np.eye(len(rows))
    assert gaps.min() >= _bayes.MIN_GAP_IN_FLIGHT


def test_pending_trials_are_avoided() -> None:
    spec = _spec()
    history = _trials(spec, 10, _zdt1)
    (alone,) = SAMPLER.suggest(spec, [10], history)
    running = Trial(11, TrialState.RUNNING, alone, sampler_index=10)
    (after,) = SAMPLER.suggest(spec, [11], history, [running])
    assert after != alone
    # The pending point joined the model: the next point is not squeezed in beside it.
    enc = Encoder(spec.space)
    assert np.linalg.norm(enc.encode(after) - enc.encode(alone)) > 0.01


def test_the_same_inputs_give_the_same_points() -> None:
    history = _trials(_spec(MIXED), 9, _mixed)
    first = BayesianSampler().suggest(_spec(MIXED), [9, 10], history)
    assert BayesianSampler().suggest(_spec(MIXED), [9, 10], history) == first
    assert BayesianSampler().suggest(_spec(MIXED, seed=1), [9, 10], history) != first


@pytest.mark.parametrize("m", [3, 4])
def test_three_and_four_objectives(m: int) -> None:
    spec = _spec(m=m)
    history = _trials(spec, 12, lambda p: _many(p, m))
    points = SAMPLER.suggest(spec, [12, 13, 14], history)
    assert _distinct(points)
    for p in points:
        assert CUBE.validate_point(p) == p
    # Each point should be where the model expects a gain: not dominated by the history.
    enc = Encoder(spec.space)
    data = _bayes._observations(spec, enc, history)
    for p in points:
        y = np.array([_many(p, m)[o.name] * (-1 if o.maximize else 1) for o in spec.objectives])
        dominated = np.all(data.y <= y, axis=1) & np.any(data.y < y, axis=1)
        assert dominated.sum() <= 2


def _degenerate_histories() -> dict[str, list[Trial]]:
    spec = _spec()
    points = QuasiRandomSampler().suggest(spec, range(8))
    done = TrialState.COMPLETED
    equal = [Trial(i + 1, done, p, {"f0": 1.0, "f1": 2.0}) for i, p in enumerate(points)]
    # One trial dominates every other: a front of one point.
    dominated = [
        Trial(i + 1, done, p, {"f0": float(i), "f1": float(i) + 0.5}) for i, p in enumerate(points)
    ]
    # One completed trial and stopped ones (which count towards the model's two).
    one = [Trial(1, done, points[0], {"f0": 0.3, "f1": 0.7})] + [
        Trial(i + 1, TrialState.STOPPED, p, {"f0": 1.0 + i, "f1": 2.0})
        for i, p in enumerate(points[1:], start=1)
    ]
    failed = [
        Trial(i + 1, TrialState.FAILED if i % 2 else done, p, None if i % 2 else _zdt1(p))
        for i, p in enumerate(points)
    ]
    duplicates = [Trial(i + 1, done, points[i % 2], _zdt1(points[i % 2])) for i in range(6)]
    return {
        "equal": equal,
        "dominated": dominated,
        "one": one,
        "failed": failed,
        "duplicates": duplicates,
    }


@pytest.mark.parametrize("name", sorted(_degenerate_histories()))
def test_degenerate_histories_give_valid_points(name: str) -> None:
    spec = _spec(initial_trials=2)
    history = _degenerate_histories()[name]
    points = SAMPLER.suggest(spec, [20, 21, 22], history)
    assert _distinct(points)
    for p in points:
        assert CUBE.validate_point(p) == p


def test_more_trials_than_the_model_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bayes, "MAX_MODEL_TRIALS", 16)
    spec = _spec()
    history = _trials(spec, 40, _zdt1)
    points = SAMPLER.suggest(spec, [40, 41], history)
    assert _distinct(points)


class _LeftHalf:
    """A feasibility model that forbids ``x0 > 0.5`` and records what it is told."""

    def __init__(self) -> None:
        self.believed: list[np.ndarray] = []

    def log_pof(self, u: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.where(u[:, 0] <= 0.5, 0.0, -50.0)
        return out

    def believe(self, row: np.ndarray) -> None:
        self.believed.append(row.copy())


def test_a_feasibility_model_keeps_points_out_of_what_it_forbids() -> None:
    spec = _spec()
    enc = Encoder(spec.space)
    history = _trials(spec, 12, _zdt1)
    data = _bayes._observations(spec, enc, history)
    free = _multi.batch(spec, enc, data, [], 12, 6)
    assert any(float(p["x0"]) > 0.5 for p in free)  # the front runs over all of x0
    model = _LeftHalf()
    busy = [enc.encode({"x0": 0.1, "x1": 0.0, "x2": 0.0})]
    points = _multi.batch(spec, enc, data, busy, 12, 6, feasibility=model)
    assert all(float(p["x0"]) <= 0.5 for p in points), points
    assert _distinct(points)
    # The pending point, then every chosen one, believed in order.
    assert len(model.believed) == 1 + 6
    np.testing.assert_array_equal(model.believed[0], busy[0])


def test_only_feasible_completed_trials_are_improved_on() -> None:
    spec = _spec()
    enc = Encoder(spec.space)
    data = _bayes._observations(spec, enc, _trials(spec, 10, _zdt1))
    everything = _multi.batch(spec, enc, data, [], 10, 2)
    nothing = np.zeros(len(data.y), dtype=bool)
    # No feasible trial: any point in the reference box improves; still valid, distinct points.
    points = _multi.batch(spec, enc, data, [], 10, 2, feasible=nothing)
    assert _distinct(points) and points != everything
    assert _multi.batch(spec, enc, data, [], 10, 2, feasible=~nothing) == everything


def test_failed_trials_change_nothing() -> None:
    # As with one objective (``_bayes`` point 3b): an infrastructure failure is no result.
    spec = _spec()
    history = _trials(spec, 10, _zdt1)
    (point,) = SAMPLER.suggest(spec, [10], history)
    failed = [Trial(11 + k, TrialState.FAILED, point, None) for k in range(2)]
    assert SAMPLER.suggest(spec, [10], history + failed) == [point]


def test_outcome_constraints_keep_the_points_where_they_hold() -> None:
    # Through the sampler: ``_bayes`` fits the feasibility model and hands it over.
    spec = StudySpec(
        CUBE,
        _objectives(2),
        Algorithm.BAYESIAN,
        0,
        initial_trials=6,
        constraints=(Constraint("c", upper=0.5),),
    )
    trials: list[Trial] = []
    for i in range(20):
        (p,) = SAMPLER.suggest(spec, [i], trials)
        values = {**_zdt1(p), "c": float(p["x0"])}
        trials.append(Trial(i + 1, TrialState.COMPLETED, p, values, sampler_index=i))
    # Unconstrained, the front runs over all of x0 (see above); here the model's points stay
    # on the feasible side (a point just past the bound is a near miss, not a choice).
    broken = [t for t in trials[6:] if float(t.params["x0"]) > 0.5]
    assert len(broken) <= 2, [t.params["x0"] for t in trials[6:]]


# --- the hypervolume arithmetic ---------------------------------------------------------------


def test_pareto_mask_and_layers() -> None:
    y = np.array([[1.0, 3.0], [2.0, 2.0], [2.0, 2.0], [3.0, 3.0], [0.5, 4.0], [2.5, 2.5]])
    np.testing.assert_array_equal(pareto_mask(y), [True, True, False, False, True, False])
    np.testing.assert_array_equal(pareto_order(y), [0, 1, 4, 2, 5, 3])
    np.testing.assert_array_equal(pareto_order(y, limit=3), [0, 1, 4])
    rng = np.random.default_rng(0)
    big = rng.random((700, 3))  # more than one block
    brute = ~np.array([np.any(np.all(big <= r, axis=1) & np.any(big < r, axis=1)) for r in big])
    np.testing.assert_array_equal(pareto_mask(big), brute)
    assert not pareto_mask(np.empty((0, 2))).any()


def test_the_scalarisation_measures_the_hypervolume_improvement() -> None:
    rng = np.random.default_rng(1)
    ref = np.array([1.0, 1.0])
    front = np.array([[0.2, 0.8], [0.5, 0.4], [0.9, 0.1]])
    new = np.array([[0.3, 0.5]])
    exact = _hypervolume_2d(np.vstack([front, new]), ref) - _hypervolume_2d(front, ref)
    hvi = LogHvi(ref, directions(2, 4096, rng), normal_draws(2, 2, rng), front)
    # A certain point (variance ~0): c_2 = pi / 4 times the mean improvement of the m-th powers.
    estimate = math.pi / 4 * math.exp(float(hvi.value(new, np.full((1, 2), 1e-24))[0]))
    assert estimate == pytest.approx(exact, rel=0.02)


def test_log_hvi_is_finite_far_away_and_its_gradient_is_right() -> None:
    rng = np.random.default_rng(2)
    m = 3
    front = rng.normal(size=(6, m))
    hvi = LogHvi(np.full(m, 2.0), directions(m, 32, rng), normal_draws(m, 16, rng), front)
    mean = rng.normal(size=(5, m))
    mean[0] += 4.0  # beyond the reference point in most draws
    mean[1] -= 2.0  # improves in every draw
    var = rng.uniform(0.01, 0.5, size=(5, m))
    val, d_mean, d_var = hvi.value_grad(mean, var)
    assert np.all(np.isfinite(val)) and val[0] < val[2] < val[1]
    np.testing.assert_array_equal(hvi.value(mean, var), val)
    h = 1e-6
    for i in range(m):
        e = np.zeros_like(mean)
        e[:, i] = h
        num_mean = (hvi.value(mean + e, var) - hvi.value(mean - e, var)) / (2 * h)
        num_var = (hvi.value(mean, var + e) - hvi.value(mean, var - e)) / (2 * h)
        np.testing.assert_allclose(d_mean[:, i], num_mean, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(d_var[:, i], num_var, rtol=1e-4, atol=1e-4)
    # An empty set: every draw inside the reference box improves.
    empty = LogHvi(np.full(m, 2.0), directions(m, 8, rng), normal_draws(m, 4, rng), front[:0])
    assert np.all(np.isfinite(empty.value(mean, var)))


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_for_two_and_three_objectives_parego_from_four(m: int) -> None:
    """2 and 3 objectives are answered by ``_multi``; 4 or more by ParEGO, which measured
    better there (docs/algorithms.md, "Several objectives")."""
    spec = _spec(m=m)
    history = _trials(spec, 12, lambda p: _many(p, m))
    enc = Encoder(spec.space)
    data = _bayes._observations(spec, enc, history)
    by_multi = _multi.batch(spec, enc, data, [], 12, 1, feasibility=None, feasible=data.feasible)
    sampled = SAMPLER.suggest(spec, [12], history)
    assert (sampled == by_multi) is (m <= _bayes.MAX_HYPERVOLUME_OBJECTIVES)
