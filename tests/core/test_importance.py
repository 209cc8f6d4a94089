"""PED-ANOVA (``core/importance.py``) on synthetic objectives whose importance is known by
construction (``bench/importance_problems.py``, the functions the benchmark measures), on
seeded random trials: the rankings, every kind of parameter, conditional parameters, the
direction of the objective, the minimum number of trials, and the answer's invariants."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

import hyperdial as hd
from bench.importance_problems import CONDITIONAL, DOMINANT, GRADED, MIXED, Problem, trials
from hyperdial_server.core import importance
from hyperdial_server.core.errors import FailedPrecondition
from hyperdial_server.core.importance import (
    MIN_TRIALS,
    NOT_ENOUGH_TRIALS,
    Importances,
    completed_samples,
    ped_anova,
    ped_anova_of,
    samples,
    top_count,
)
from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    DiscreteDomain,
    Domain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import Objective
from hyperdial_server.core.trial import Trial, TrialState


def core_space(params: Sequence[hd.Parameter]) -> SearchSpace:
    """The core search space of the client's parameters."""
    configs = []
    for p in params:
        domain: Domain
        if isinstance(p, hd.Float):
            domain = FloatDomain(p.low, p.high, p.log)
        elif isinstance(p, hd.Int):
            domain = IntDomain(p.low, p.high, p.log)
        elif isinstance(p, hd.Categorical):
            domain = CategoricalDomain(tuple(p.values))
        else:
            assert isinstance(p, hd.Discrete)
            domain = DiscreteDomain(tuple(p.values))
        condition = Condition(p.when[0], tuple(p.when[1])) if p.when is not None else None
        configs.append(ParameterConfig(p.name, domain, condition))
    return SearchSpace(configs)


def evaluate(problem: Problem, n: int, seed: int, *, maximize: bool = False) -> Importances:
    data = trials(problem, n, seed)
    return ped_anova(
        core_space(problem.params),
        Objective("y", maximize=maximize),
        [point for point, _ in data],
        [value for _, value in data],
    )


def ranking(result: Importances) -> list[str]:
    return [p.parameter for p in result.parameters]


def shares(result: Importances) -> dict[str, float]:
    return {p.parameter: p.importance for p in result.parameters}


def check_invariants(result: Importances, space: SearchSpace) -> None:
    """Every parameter once, most important first (ties in the space's order), shares of 0 or
    more summing to 1 (or all 0)."""
    names = [p.name for p in space.parameters]
    assert sorted(ranking(result)) == sorted(names)
    values = [p.importance for p in result.parameters]
    assert all(v >= 0.0 for v in values)
    assert math.fsum(values) == pytest.approx(1.0) or all(v == 0.0 for v in values)
    keys = [(-p.importance, names.index(p.parameter)) for p in result.parameters]
    assert keys == sorted(keys)
    assert result.method == "ped-anova"


# --- rankings against the truth -------------------------------------------------------------


def test_one_dominant_two_interacting_three_irrelevant() -> None:
    result = evaluate(DOMINANT, 1000, seed=1)
    check_invariants(result, core_space(DOMINANT.params))
    order = ranking(result)
    assert order[0] == "x0"
    # x1 and x2 matter only together (their product): no main effect, yet the best trials
    # hold them at opposite ends.
    assert set(order[1:3]) == {"x1", "x2"}
    assert set(order[3:]) == {"x3", "x4", "x5"}
    got = shares(result)
    assert got["x0"] > 0.5
    assert min(got["x1"], got["x2"]) > 3 * max(got["x3"], got["x4"], got["x5"])
    assert result.trial_count == 1000
    assert all(p.active_trials == 1000 for p in result.parameters)


def test_graded_weights_are_ranked_in_order() -> None:
    result = evaluate(GRADED, 1000, seed=2)
    assert ranking(result) == ["x0", "x1", "x2", "x3", "x4", "x5"]


def test_mixed_types_log_int_categorical_discrete() -> None:
    result = evaluate(MIXED, 1000, seed=3)
    check_invariants(result, core_space(MIXED.params))
    order = ranking(result)
    assert order[:4] == ["lr", "layers", "optimizer", "batch"]
    assert set(order[4:]) == {"dropout", "activation"}


@pytest.mark.parametrize("seed", range(5))
def test_the_most_important_parameter_leads_at_300_trials(seed: int) -> None:
    for problem, first in ((DOMINANT, "x0"), (GRADED, "x0"), (MIXED, "lr")):
        assert ranking(evaluate(problem, 300, seed))[0] == first, problem.name


def test_a_log_scale_is_read_in_log_space() -> None:
    # lr matters only through its order of magnitude (best at 1e-4): in log space the best
    # trials gather around one point; on a linear grid every value below 0.02 shares one cell.
    lr = hd.Float("lr", 1e-6, 1.0, log=True)
    problem = Problem(
        name="log",
        what="",
        params=(lr, hd.Float("noise", 0.0, 1.0)),
        f=lambda x: (math.log10(float(x["lr"])) + 4.0) ** 2,
        truth={"lr": 1.0, "noise": 0.0},
    )
    data = trials(problem, 300, seed=4)
    points, values = [p for p, _ in data], [v for _, v in data]
    logged = ped_anova(core_space(problem.params), Objective("y"), points, values)
    assert ranking(logged) == ["lr", "noise"]
    assert shares(logged)["lr"] > 0.95
    linear = core_space((hd.Float("lr", 1e-6, 1.0), hd.Float("noise", 0.0, 1.0)))
    assert shares(ped_anova(linear, Objective("y"), points, values))["lr"] < shares(logged)["lr"]


# --- conditional parameters -------------------------------------------------------------------


def test_a_conditional_parameter_is_measured_where_it_is_active() -> None:
    data = trials(CONDITIONAL, 1000, seed=5)
    result = evaluate(CONDITIONAL, 1000, seed=5)
    check_invariants(result, core_space(CONDITIONAL.params))
    by_name = {p.parameter: p for p in result.parameters}
    sgd = sum(1 for point, _ in data if point["optimizer"] == "sgd")
    assert 400 < sgd < 600
    assert by_name["momentum"].active_trials == sgd
    assert all(by_name[n].active_trials == 1000 for n in ("optimizer", "lr", "noise"))
    assert ranking(result)[-1] == "noise"
    assert by_name["momentum"].importance > 10 * by_name["noise"].importance


def test_a_parameter_active_in_one_trial_or_no_top_trial_has_importance_0() -> None:
    space = core_space(
        (
            hd.Categorical("kind", ["a", "b"]),
            hd.Float("x", 0.0, 1.0),
            hd.Float("rare", 0.0, 1.0, when=("kind", ["b"])),
        )
    )
    rng = random.Random(6)
    points: list[dict[str, ParamValue]] = [
        {"kind": "a", "x": rng.random()} for _ in range(MIN_TRIALS * 3)
    ]
    values = [float(p["x"]) for p in points]
    # Active in one trial, the worst: measured in neither case.
    points.append({"kind": "b", "x": 1.0, "rare": 0.5})
    values.append(10.0)
    result = ped_anova(space, Objective("y"), points, values)
    rare = next(p for p in result.parameters if p.parameter == "rare")
    assert (rare.importance, rare.active_trials) == (0.0, 1)
    # Active in several trials, none among the best: still 0.
    points += [{"kind": "b", "x": 1.0, "rare": r} for r in (0.1, 0.9)]
    values += [11.0, 12.0]
    result = ped_anova(space, Objective("y"), points, values)
    rare = next(p for p in result.parameters if p.parameter == "rare")
    assert (rare.importance, rare.active_trials) == (0.0, 3)
    assert ranking(result)[0] == "x"


# --- the direction of the objective -------------------------------------------------------------


def _two_sided(x: Mapping[str, ParamValue]) -> float:
    # A narrow dip in a (what the lowest values need) and a narrow peak in b (what the highest
    # values need).
    a, b = float(x["a"]), float(x["b"])
    dip = math.exp(-(((a - 0.3) / 0.05) ** 2))
    peak = math.exp(-(((b - 0.7) / 0.05) ** 2))
    return 10.0 * (peak - dip)


TWO_SIDED = Problem(
    name="two-sided",
    what="a decides the lowest values, b the highest",
    params=(hd.Float("a", 0.0, 1.0), hd.Float("b", 0.0, 1.0), hd.Float("c", 0.0, 1.0)),
    f=_two_sided,
    truth={"a": 1.0, "b": 1.0, "c": 0.0},
)


def test_minimise_and_maximise_explain_opposite_ends() -> None:
    assert ranking(evaluate(TWO_SIDED, 500, seed=7))[0] == "a"
    assert ranking(evaluate(TWO_SIDED, 500, seed=7, maximize=True))[0] == "b"


# --- how many trials --------------------------------------------------------------------------


def test_the_minimum_is_11_trials_two_in_the_top_decile() -> None:
    assert MIN_TRIALS == 11
    assert [top_count(n) for n in (1, 10, 11, 20, 21, 100, 101, 300)] == [
        1,
        1,
        2,
        2,
        3,
        10,
        11,
        30,
    ]
    space = core_space(DOMINANT.params)
    data = trials(DOMINANT, 11, seed=8)
    for n in (0, 1, 10):
        with pytest.raises(FailedPrecondition) as e:
            ped_anova(space, Objective("y"), [p for p, _ in data[:n]], [v for _, v in data[:n]])
        assert e.value.reason == NOT_ENOUGH_TRIALS
        assert e.value.metadata == {"completed_trials": str(n), "min_trials": "11"}
        assert "at least 11 completed trials" in e.value.message
    result = ped_anova(space, Objective("y"), [p for p, _ in data], [v for _, v in data])
    assert result.trial_count == 11
    check_invariants(result, space)


def test_a_constant_objective_gives_every_parameter_0_in_the_spaces_order() -> None:
    space = core_space(MIXED.params)
    data = trials(MIXED, 50, seed=9)
    result = ped_anova(space, Objective("y"), [p for p, _ in data], [1.5] * 50)
    assert [(p.parameter, p.importance) for p in result.parameters] == [
        (p.name, 0.0) for p in space.parameters
    ]
    check_invariants(result, space)


# --- determinism and robustness -------------------------------------------------------------


def test_the_answer_depends_on_the_trials_not_their_order() -> None:
    data = trials(MIXED, 200, seed=10)
    space = core_space(MIXED.params)
    first = ped_anova(space, Objective("y"), [p for p, _ in data], [v for _, v in data])
    again = ped_anova(space, Objective("y"), [p for p, _ in data], [v for _, v in data])
    random.Random(11).shuffle(data)
    shuffled = ped_anova(space, Objective("y"), [p for p, _ in data], [v for _, v in data])
    assert first == again == shuffled


def test_trials_reduced_page_by_page_give_the_same_answer() -> None:
    # The replica reduces pages of decoded trials to arrays (memory store) and the worker
    # decodes and reduces the others (Redis): any split of the trials answers the same.
    data = trials(CONDITIONAL, 250, seed=14)
    space = core_space(CONDITIONAL.params)
    study = [
        Trial(number=i + 1, state=TrialState.COMPLETED, params=point, values={"y": value})
        for i, (point, value) in enumerate(data)
    ]
    whole = ped_anova(space, Objective("y"), [p for p, _ in data], [v for _, v in data])
    parts = [samples(space, "y", study[i : i + 100]) for i in range(0, 250, 100)]
    assert [len(part) for part in parts] == [100, 100, 50]
    assert ped_anova_of(space, Objective("y"), parts) == whole
    with pytest.raises(FailedPrecondition):
        ped_anova_of(space, Objective("y"), [samples(space, "y", study[:10])])


def test_values_outside_the_domain_count_as_inactive() -> None:
    # The service stores only valid points; a reader of a study re-created under its cached
    # spec could still see others, and must not fail on them.
    space = core_space((hd.Float("x", 0.0, 1.0), hd.Categorical("c", ["a", "b"])))
    rng = random.Random(12)
    points: list[dict[str, ParamValue]] = [
        {"x": rng.random(), "c": rng.choice("ab")} for _ in range(30)
    ]
    points += [{"x": 7.0, "c": "zzz"}, {"x": "text", "c": 3}, {}]
    values = [rng.random() for _ in points]
    result = ped_anova(space, Objective("y"), points, values)
    assert {p.parameter: p.active_trials for p in result.parameters} == {"x": 30, "c": 30}
    assert result.trial_count == 33


def test_only_completed_trials_with_a_finite_value_count() -> None:
    def trial(number: int, state: TrialState, values: dict[str, float] | None) -> Trial:
        return Trial(number=number, state=state, params={"x": number / 10}, values=values)

    got = completed_samples(
        [
            trial(1, TrialState.COMPLETED, {"y": 1.0, "z": 2.0}),
            trial(2, TrialState.FAILED, None),
            trial(3, TrialState.STOPPED, {"y": 0.0}),
            trial(4, TrialState.RUNNING, None),
            trial(5, TrialState.COMPLETED, {"z": 1.0}),
            trial(6, TrialState.COMPLETED, {"y": math.nan}),
            trial(7, TrialState.COMPLETED, {"y": 3.0}),
        ],
        "y",
    )
    assert got == ([{"x": 0.1}, {"x": 0.7}], [1.0, 3.0])


# --- the grid and the densities ---------------------------------------------------------------


def test_grid_cells_of_every_domain() -> None:
    cells = importance._cells
    got, size = cells(FloatDomain(1e-5, 1.0, log=True), [1e-5, 1e-3, 1.0, None, 0.0])
    assert (got.tolist(), size) == ([0, 20, 49, -1, -1], 50)
    got, size = cells(FloatDomain(-1.0, 1.0), [-1.0, 0.0, 1.0, 1.5])
    assert (got.tolist(), size) == ([0, 25, 49, -1], 50)  # halfway rounds up
    got, size = cells(IntDomain(1, 8), [1, 5, 8])
    assert (got.tolist(), size) == ([0, 4, 7], 8)
    got, size = cells(IntDomain(0, 1000), [0, 500, 1000])
    assert (got.tolist(), size) == ([0, 25, 49], 50)
    got, size = cells(IntDomain(1, 1000, log=True), [1, 1000])
    assert (got.tolist(), size) == ([0, 49], 50)
    got, size = cells(DiscreteDomain((16.0, 32.0, 64.0)), [32.0, 64.0, 48.0])
    assert (got.tolist(), size) == ([1, 2, -1], 3)
    got, size = cells(CategoricalDomain(("a", "b")), ["b", "a", "c", None])
    assert (got.tolist(), size) == ([1, 0, -1, -1], 2)


def test_kernels_keep_their_mass_on_the_grid_and_divergences_are_never_negative() -> None:
    for size, bandwidth in ((50, 0.3), (50, 40.0), (3, 1.0)):
        kernels = importance._kernels(size, bandwidth)
        assert np.allclose(kernels.sum(axis=0), 1.0)
        assert (kernels >= 0).all()
    rng = np.random.default_rng(13)
    for _ in range(50):
        counts = rng.integers(0, 5, size=20)
        top = importance._density(counts // 2, ordered=True)
        region = importance._density(counts, ordered=True)
        assert importance._pearson_divergence(top, region) >= 0.0
        assert importance._pearson_divergence(region, region) == 0.0
        assert top.sum() == pytest.approx(1.0) and region.sum() == pytest.approx(1.0)
