"""Quasi-random (Sobol) specifics: stratification, agreement with the sequence, batching."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.samplers import QuasiRandomSampler
from hyperdial_server.samplers._sobol import SOBOL_BITS

P = ParameterConfig
SOBOL = QuasiRandomSampler()


def _spec(params: list[ParameterConfig], seed: int = 5) -> StudySpec:
    return StudySpec(SearchSpace(params), (Objective("loss"),), Algorithm.QUASI_RANDOM, seed)


UNIT = [P("x", FloatDomain(0.0, 1.0))]


@pytest.mark.parametrize("seed", [0, 5, -(2**63)])
@pytest.mark.parametrize("k", range(11))
def test_first_power_of_two_points_are_stratified(seed: int, k: int) -> None:
    n = 2**k
    values = [float(p["x"]) for p in SOBOL.suggest(_spec(UNIT, seed), range(n))]
    # One point in each interval [j / n, (j + 1) / n).
    assert sorted(math.floor(v * n) for v in values) == list(range(n))


def test_every_dimension_is_stratified() -> None:
    params = [P(f"x{d}", FloatDomain(0.0, 1.0)) for d in range(5)]
    n = 64
    points = SOBOL.suggest(_spec(params), range(n))
    for d in range(5):
        cells = sorted(math.floor(float(p[f"x{d}"]) * n) for p in points)
        assert cells == list(range(n)), d


def test_next_block_is_stratified_too() -> None:
    values = [float(p["x"]) for p in SOBOL.suggest(_spec(UNIT), range(32, 64))]
    assert sorted(math.floor(v * 32) for v in values) == list(range(32))


def test_categorical_values_come_in_balanced_rounds() -> None:
    spec = _spec([P("c", CategoricalDomain(tuple("abcdefgh")))])
    points = SOBOL.suggest(spec, range(16))
    assert sorted(p["c"] for p in points[:8]) == list("abcdefgh")
    assert sorted(p["c"] for p in points[8:]) == list("abcdefgh")


def test_points_are_the_scrambled_sobol_sequence() -> None:
    params = [P("x", FloatDomain(0.0, 1.0)), P("y", FloatDomain(0.0, 1.0))]
    engine = qmc.Sobol(2, scramble=True, bits=SOBOL_BITS, rng=np.random.default_rng(5))
    expected = engine.random_base2(8)
    points = SOBOL.suggest(_spec(params, seed=5), range(256))
    assert [(p["x"], p["y"]) for p in points] == [(float(a), float(b)) for a, b in expected]


def test_runs_and_gaps_in_one_ask_match_single_asks() -> None:
    spec = _spec(UNIT + [P("n", IntDomain(0, 9))])
    indices = [0, 1, 2, 7, 8, 9, 10, 11, 300, 301, 5, 2]
    batch = SOBOL.suggest(spec, indices)
    assert batch == [SOBOL.suggest(spec, [i])[0] for i in indices]


@pytest.mark.parametrize("indices", [[0, 1, 2], [0, 1, 2, 3, 4], [0], [0, 5, 6, 7], [3, 4, 5]])
def test_no_warning_for_any_count(indices: list[int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        points = SOBOL.suggest(_spec(UNIT), indices)
    assert len(points) == len(indices)


def test_inactive_dimensions_are_skipped_not_shifted() -> None:
    # A parameter keeps its own dimension whether or not the ones before it are active.
    params = [
        P("gate", CategoricalDomain(("on", "off"))),
        P("child", FloatDomain(0.0, 1.0), Condition("gate", ("on",))),
        P("x", FloatDomain(0.0, 1.0)),
    ]
    points = SOBOL.suggest(_spec(params), range(64))
    assert sorted(math.floor(float(p["x"]) * 64) for p in points) == list(range(64))
    assert any("child" in p for p in points)
    assert any("child" not in p for p in points)


def test_capacity_is_the_length_of_the_sequence() -> None:
    spec = _spec(UNIT)
    assert SOBOL.capacity(spec) == 2**SOBOL_BITS
    with pytest.raises(ValueError, match="out of range"):
        SOBOL.suggest(spec, [2**SOBOL_BITS])
