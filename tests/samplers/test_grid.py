"""Grid specifics: every point exactly once, the count formula, huge grids, values, order."""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
import pytest

from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    DiscreteDomain,
    Domain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    Params,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.samplers import GridSampler
from hyperdial_server.samplers._grid import MAX_GRID_CAPACITY

P = ParameterConfig
GRID = GridSampler()


def _spec(
    space: SearchSpace | list[ParameterConfig], resolution: int | None = 3, seed: int = 11
) -> StudySpec:
    if not isinstance(space, SearchSpace):
        space = SearchSpace(space)
    return StudySpec(space, (Objective("loss"),), Algorithm.GRID, seed, grid_resolution=resolution)


def _capacity(spec: StudySpec) -> int:
    cap = GRID.capacity(spec)
    assert cap is not None
    return cap


def _axis_values(domain: Domain, resolution: int) -> list[ParamValue]:
    """Grid values as the brute-force reference computes them (NumPy, listed)."""
    if isinstance(domain, (CategoricalDomain, DiscreteDomain)):
        return list(domain.values)
    if isinstance(domain, IntDomain):
        return list(range(domain.low, domain.high + 1))
    if domain.log:
        return [float(v) for v in np.geomspace(domain.low, domain.high, resolution)]
    return [float(v) for v in np.linspace(domain.low, domain.high, resolution)]


def _brute_force(space: SearchSpace, resolution: int) -> list[Params]:
    points: list[Params] = [{}]
    for p in space.parameters:
        values = _axis_values(p.domain, resolution)
        grown: list[Params] = []
        for point in points:
            if space.is_active(p, point):
                grown.extend({**point, p.name: v} for v in values)
            else:
                grown.append(point)
        points = grown
    return points


def _key(point: Params) -> Hashable:
    # Floats to 12 significant digits: the reference computes log grids another way.
    return tuple(
        sorted((k, float(f"{v:.12g}") if isinstance(v, float) else v) for k, v in point.items())
    )


TREE = [
    P("opt", CategoricalDomain(("sgd", "adam", "none"))),
    P("momentum", FloatDomain(0.0, 0.9), Condition("opt", ("sgd",))),
    P("nesterov", CategoricalDomain(("yes", "no")), Condition("opt", ("sgd",))),
    P("beta", DiscreteDomain((0.9, 0.99, 0.999)), Condition("opt", ("adam",))),
    P("eps", FloatDomain(1e-8, 1e-6, log=True), Condition("beta", (0.99, 0.999))),
    P("layers", IntDomain(0, 3)),
    P("width", IntDomain(2, 9, log=True), Condition("layers", (2, 3))),
    P("act", CategoricalDomain(("relu", "tanh")), Condition("width", (4, 8))),
    P("batch", DiscreteDomain((16.0, 32.0))),
    P("accum", IntDomain(1, 3), Condition("batch", (16.0,))),
]
# With 4 values per float parameter: opt: sgd 4 * 2 = 8, adam 1 + 4 + 4 = 9, none 1: 18.
# layers: 0 and 1 one each; width 8 values, 4 and 8 with act: 6 + 2 * 2 = 10; 2 and 3: 20 + 2.
# batch: 16 with accum 3, 32: 4.
TREE_COUNT = 18 * 22 * 4

SMALL_SPACES = {
    "single_value": [P("only", CategoricalDomain(("x",)))],
    "every_kind": [
        P("f", FloatDomain(0.0, 1.0)),
        P("f_log", FloatDomain(1e-3, 10.0, log=True)),
        P("i", IntDomain(-1, 2)),
        P("i_log", IntDomain(1, 6, log=True)),
        P("c", CategoricalDomain(("a", "b"))),
        P("d", DiscreteDomain((-1.5, 0.0, 2.0))),
    ],
    "tree": TREE,
    "children_first": list(reversed(TREE)),
}


@pytest.mark.parametrize("name", sorted(SMALL_SPACES))
def test_visits_every_point_exactly_once(name: str) -> None:
    spec = _spec(SMALL_SPACES[name], resolution=4)
    expected = {_key(p) for p in _brute_force(spec.space, 4)}
    cap = _capacity(spec)
    assert cap == len(expected)
    seen = [_key(p) for p in GRID.suggest(spec, range(cap))]
    assert len(set(seen)) == cap
    assert set(seen) == expected


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 15, 16, 17, 63, 64, 65, 257])
@pytest.mark.parametrize("seed", [0, -3, 2**63 - 1])
def test_shuffle_is_a_bijection_for_every_size(n: int, seed: int) -> None:
    values = tuple(f"v{k}" for k in range(n))
    spec = _spec([P("c", CategoricalDomain(values))], seed=seed)
    assert _capacity(spec) == n
    seen = [p["c"] for p in GRID.suggest(spec, range(n))]
    assert sorted(seen) == sorted(values)


def test_capacity_formula() -> None:
    assert _capacity(_spec(TREE, resolution=4)) == TREE_COUNT
    # Five values per float parameter: opt 5 * 2 + (1 + 5 + 5) + 1, layers 22, batch 4.
    assert _capacity(_spec(TREE, resolution=5)) == (10 + 1 + 5 + 5 + 1) * 22 * 4
    flat = [P("a", IntDomain(1, 10)), P("b", FloatDomain(0.0, 1.0)), P("c", IntDomain(1, 4))]
    assert _capacity(_spec(flat, resolution=7)) == 10 * 7 * 4


def test_a_child_under_values_that_never_activate_it_adds_nothing() -> None:
    space = [
        P("n", IntDomain(0, 99)),
        P("x", CategoricalDomain(("a", "b", "c")), Condition("n", (5, 50))),
        P("y", DiscreteDomain((1.0, 2.0)), Condition("n", (50,))),
    ]
    # n = 5: 3 points; n = 50: 3 * 2; the other 98 values: one each.
    spec = _spec(space)
    assert _capacity(spec) == 98 + 3 + 6
    points = GRID.suggest(spec, range(_capacity(spec)))
    assert sum(1 for p in points if "y" in p) == 6
    assert all(p["n"] in (5, 50) for p in points if "x" in p)


def test_huge_int_range_is_counted_not_listed() -> None:
    space = [
        P("steps", IntDomain(0, 10**12)),
        P("c", CategoricalDomain(("a", "b", "c"))),
        P("f", FloatDomain(-1.0, 1.0)),
        P("warm", CategoricalDomain(("on", "off")), Condition("steps", (10**12,))),
    ]
    spec = _spec(space, resolution=10_000)
    n = (10**12 + 1 + 1) * 3 * 10_000
    assert _capacity(spec) == n
    indices = [0, 1, n // 2, n - 2, n - 1, 123_456_789_012, *range(1000, 1500)]
    points = GRID.suggest(spec, indices)
    for point in points:
        assert spec.space.validate_point(point) == point
    assert len({_key(p) for p in points}) == len(indices)


def test_grid_larger_than_the_cap_is_spread_over_all_of_it() -> None:
    space = [P(f"p{k}", IntDomain(0, 10**9)) for k in range(10)]
    spec = _spec(space)
    assert _capacity(spec) == MAX_GRID_CAPACITY
    indices = [*range(200), MAX_GRID_CAPACITY - 1]
    points = GRID.suggest(spec, indices)
    for point in points:
        assert spec.space.validate_point(point) == point
    assert len({_key(p) for p in points}) == len(indices)
    # The most significant parameter varies too: the capped range is not a corner of the grid.
    assert len({p["p0"] for p in points}) > 150
    assert max(int(p["p0"]) for p in points) > 9 * 10**8


def test_index_at_or_past_capacity_is_refused() -> None:
    spec = _spec(SMALL_SPACES["every_kind"])
    cap = _capacity(spec)
    GRID.suggest(spec, [cap - 1])
    with pytest.raises(ValueError, match="out of range"):
        GRID.suggest(spec, [cap])
    with pytest.raises(ValueError, match="out of range"):
        GRID.suggest(spec, [0, cap + 10**20])


def test_float_parameter_needs_a_resolution() -> None:
    # A spec of another algorithm may lack grid_resolution; the grid cannot guess one.
    spec = StudySpec(
        SearchSpace([P("f", FloatDomain(0.0, 1.0))]), (Objective("loss"),), Algorithm.RANDOM, 1
    )
    with pytest.raises(ValueError, match="grid_resolution"):
        GRID.capacity(spec)
    no_float = StudySpec(
        SearchSpace([P("i", IntDomain(0, 3))]), (Objective("loss"),), Algorithm.GRID, 1
    )
    assert _capacity(no_float) == 4


def _float_values(domain: FloatDomain, resolution: int) -> list[float]:
    spec = _spec([P("x", domain)], resolution=resolution)
    values = [p["x"] for p in GRID.suggest(spec, range(_capacity(spec)))]
    assert all(type(v) is float for v in values)
    return sorted(float(v) for v in values)


def test_log_grid_is_evenly_spaced_in_log_space_with_exact_ends() -> None:
    values = _float_values(FloatDomain(1e-4, 1.0, log=True), 5)
    assert values[0] == 1e-4
    assert values[-1] == 1.0
    assert values == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0], rel=1e-12)
    ratios = [b / a for a, b in zip(values, values[1:], strict=False)]
    assert ratios == pytest.approx([10.0] * 4, rel=1e-12)
    # exp(log(x)) is not x for these bounds; the ends must be the bounds themselves.
    values = _float_values(FloatDomain(0.003, 7.0, log=True), 6)
    assert (values[0], values[-1]) == (0.003, 7.0)


def test_linear_grid_is_evenly_spaced_and_inside_the_bounds_exactly() -> None:
    # 0.1 + 3 * 0.2 is 0.7000000000000001 in floating point: the top must still be 0.7.
    values = _float_values(FloatDomain(0.1, 0.7), 4)
    assert values[0] == 0.1
    assert values[-1] == 0.7
    assert values == pytest.approx([0.1, 0.3, 0.5, 0.7], rel=1e-12)
    for k in (2, 3, 7, 101, 10_000):
        values = _float_values(FloatDomain(-0.3, 0.7), k)
        assert len(values) == k
        assert values[0] == -0.3
        assert values[-1] == 0.7
        assert all(-0.3 <= v <= 0.7 for v in values)


def test_extreme_float_ranges() -> None:
    assert _float_values(FloatDomain(-1e308, 1e308), 3) == [-1e308, 0.0, 1e308]
    wide_log = _float_values(FloatDomain(1e-300, 1e300, log=True), 3)
    assert wide_log == pytest.approx([1e-300, 1.0, 1e300], rel=1e-9)


def test_coinciding_float_values_are_kept_once() -> None:
    low = 1.0
    high = low
    for _ in range(3):
        high = math.nextafter(high, 2.0)
    values = _float_values(FloatDomain(low, high), 100)
    assert len(values) == len(set(values))
    assert values[0] == low
    assert values[-1] == high
    assert 2 <= len(values) <= 4


def test_int_log_grid_covers_every_integer() -> None:
    spec = _spec([P("n", IntDomain(1, 20, log=True))])
    assert sorted(p["n"] for p in GRID.suggest(spec, range(_capacity(spec)))) == list(range(1, 21))


def test_first_points_are_spread_over_the_grid() -> None:
    spec = _spec([P("a", IntDomain(0, 99)), P("b", IntDomain(0, 99))])
    points = GRID.suggest(spec, range(50))
    # In plain mixed-radix order "a" would stay 0 for the first hundred points.
    assert len({p["a"] for p in points}) >= 30
    assert len({p["b"] for p in points}) >= 30


def test_order_depends_on_the_seed_but_not_the_set() -> None:
    space = SMALL_SPACES["every_kind"]
    one, two = _spec(space, seed=1), _spec(space, seed=2)
    cap = _capacity(one)
    first = [_key(p) for p in GRID.suggest(one, range(cap))]
    second = [_key(p) for p in GRID.suggest(two, range(cap))]
    assert first[:20] != second[:20]
    assert set(first) == set(second)
