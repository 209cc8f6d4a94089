"""Random sampling specifics, and the unit-number mapping it shares with Sobol.

Statistical checks use a fixed seed, so they give the same answer on every run; their bounds
are many standard deviations wide yet far from what a wrong distribution gives.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    DiscreteDomain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.samplers import RandomSampler
from hyperdial_server.samplers._transform import value_from_unit

P = ParameterConfig
RANDOM = RandomSampler()
N = 6000


def _spec(params: list[ParameterConfig], seed: int = 2024) -> StudySpec:
    return StudySpec(SearchSpace(params), (Objective("loss"),), Algorithm.RANDOM, seed)


def _draw(params: list[ParameterConfig], name: str, n: int = N) -> list[ParamValue]:
    return [p[name] for p in RANDOM.suggest(_spec(params), range(n))]


def test_capacity_is_unbounded() -> None:
    assert RANDOM.capacity(_spec([P("x", FloatDomain(0.0, 1.0))])) is None


def test_linear_float_is_uniform() -> None:
    values = _draw([P("x", FloatDomain(0.0, 10.0))], "x")
    counts = Counter(int(float(v)) for v in values)
    assert sorted(counts) == list(range(10))
    assert all(450 <= c <= 750 for c in counts.values()), counts  # 600 expected, sd 23


def test_log_float_is_uniform_in_log_space() -> None:
    values = [float(v) for v in _draw([P("x", FloatDomain(1e-3, 1e3, log=True))], "x")]
    assert all(1e-3 <= v <= 1e3 for v in values)
    decades = Counter(math.floor(math.log10(v)) for v in values)
    # 1000 per decade expected (sd 29); a linear draw would put 99.9% in the last one.
    assert sorted(decades) == [-3, -2, -1, 0, 1, 2]
    assert all(800 <= c <= 1200 for c in decades.values()), decades
    mean_log = sum(math.log10(v) for v in values) / len(values)
    assert abs(mean_log) < 0.15


def test_int_bounds_are_both_included_and_hit() -> None:
    values = _draw([P("n", IntDomain(-2, 2))], "n", 1000)
    counts = Counter(values)
    assert sorted(counts) == [-2, -1, 0, 1, 2]
    assert all(140 <= c <= 260 for c in counts.values()), counts  # 200 expected, sd 13
    assert all(type(v) is int for v in values)


def test_int_log_is_log_uniform_and_hits_both_bounds() -> None:
    values = _draw([P("n", IntDomain(1, 100, log=True))], "n")
    assert min(values) == 1
    assert max(values) == 100
    # P(n <= 10) = log(10.5 / 0.5) / log(100.5 / 0.5) = 0.574; uniform would give 0.10.
    share = sum(1 for v in values if int(v) <= 10) / len(values)
    assert 0.52 <= share <= 0.63, share
    small = _draw([P("n", IntDomain(3, 6, log=True))], "n", 500)
    assert sorted(set(small)) == [3, 4, 5, 6]


def test_categorical_and_discrete_are_uniform() -> None:
    params = [
        P("c", CategoricalDomain(("a", "b", "c"))),
        P("d", DiscreteDomain((0.1, 0.2, 0.4, 0.8))),
    ]
    points = RANDOM.suggest(_spec(params), range(N))
    for name, k in (("c", 3), ("d", 4)):
        counts = Counter(p[name] for p in points)
        assert len(counts) == k
        assert all(abs(c - N / k) < 0.15 * N / k for c in counts.values()), counts


def test_parameters_are_independent() -> None:
    params = [P("x", FloatDomain(0.0, 1.0)), P("y", FloatDomain(0.0, 1.0))]
    points = RANDOM.suggest(_spec(params), range(N))
    both_low = sum(1 for p in points if float(p["x"]) < 0.5 and float(p["y"]) < 0.5)
    assert abs(both_low - N / 4) < 150  # sd 34


def test_point_i_is_reproducible_forever() -> None:
    # Pinned: stored studies must keep their points across releases. Hash-derived integers and
    # the linear unit value are exact; log values go through libm, so compared to 1e-12.
    params = [
        P("lr", FloatDomain(1e-5, 1.0, log=True)),
        P("n", IntDomain(1, 64, log=True)),
        P("opt", CategoricalDomain(("sgd", "adam"))),
        P("m", DiscreteDomain((0.5, 0.9)), Condition("opt", ("sgd",))),
        P("k", IntDomain(-5, 5)),
        P("u", FloatDomain(0.0, 1.0)),
    ]
    spec = _spec(params, seed=42)
    three, far = RANDOM.suggest(spec, [3, 10**15])
    assert three == {
        "lr": pytest.approx(0.006105694611010424, rel=1e-12),
        "n": 8,
        "opt": "sgd",
        "m": 0.9,
        "k": -1,
        "u": 0.8492919458473116,
    }
    assert far == {
        "lr": pytest.approx(0.002908789158180037, rel=1e-12),
        "n": 1,
        "opt": "sgd",
        "m": 0.9,
        "k": 0,
        "u": 0.5460726010237587,
    }


def test_adding_a_parameter_leaves_the_others_unchanged() -> None:
    base = [P("a", FloatDomain(0.0, 1.0)), P("b", IntDomain(0, 1000))]
    more = [P("new", CategoricalDomain(("x", "y"))), *base]
    before = RANDOM.suggest(_spec(base), range(20))
    after = RANDOM.suggest(_spec(more), range(20))
    assert [{k: p[k] for k in ("a", "b")} for p in after] == before


# --- The unit-number mapping ---------------------------------------------------------------

BELOW_ONE = math.nextafter(1.0, 0.0)


def _number(value: ParamValue) -> float | int:
    assert not isinstance(value, str)
    return value


@pytest.mark.parametrize(
    ("domain", "first", "last"),
    [
        (FloatDomain(-2.0, 3.0), -2.0, 3.0),
        (FloatDomain(1e-4, 10.0, log=True), 1e-4, 10.0),
        (IntDomain(-7, 7), -7, 7),
        (IntDomain(2, 9, log=True), 2, 9),
        (CategoricalDomain(("a", "b", "c")), "a", "c"),
        (DiscreteDomain((1.0, 2.5)), 1.0, 2.5),
    ],
)
def test_unit_ends_map_to_domain_ends(
    domain: FloatDomain | IntDomain | CategoricalDomain | DiscreteDomain,
    first: ParamValue,
    last: ParamValue,
) -> None:
    assert value_from_unit(domain, 0.0) == first
    top = value_from_unit(domain, BELOW_ONE)
    if isinstance(domain, FloatDomain):
        assert top == pytest.approx(last, rel=1e-12)
        assert _number(top) <= domain.high
    else:
        assert top == last


def test_unit_outside_zero_one_is_refused() -> None:
    for u in (-0.1, 1.0, math.nan):
        with pytest.raises(ValueError):
            value_from_unit(FloatDomain(0.0, 1.0), u)


def test_huge_int_range_is_exact() -> None:
    assert value_from_unit(IntDomain(0, 2**80 - 1), 0.5) == 2**79
    assert _number(value_from_unit(IntDomain(0, 2**80 - 1), BELOW_ONE)) < 2**80
    assert _number(value_from_unit(IntDomain(-(2**63), 2**63 - 1), BELOW_ONE)) <= 2**63 - 1


def test_float_results_stay_inside_extreme_bounds() -> None:
    wide = FloatDomain(-1e308, 1e308)
    assert _number(value_from_unit(wide, BELOW_ONE)) <= 1e308
    assert value_from_unit(wide, 0.5) == 0.0
    for u in (0.1, 0.37, 0.999999):
        v = value_from_unit(FloatDomain(0.1, 0.7, log=True), u)
        assert type(v) is float
        assert 0.1 <= _number(v) <= 0.7
