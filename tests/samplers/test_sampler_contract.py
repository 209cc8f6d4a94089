"""The ``Sampler`` contract, run against the sampler of every algorithm.

A new algorithm gets this whole suite by being added to the registry of ``get_sampler``.
"""

from __future__ import annotations

import pytest

from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    DiscreteDomain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    Params,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.samplers import Sampler, get_sampler

P = ParameterConfig

SPACES: dict[str, SearchSpace] = {
    "every_kind": SearchSpace(
        [
            P("f", FloatDomain(-2.5, 7.0)),
            P("f_log", FloatDomain(1e-5, 1.0, log=True)),
            P("i", IntDomain(-3, 3)),
            P("i_log", IntDomain(1, 1000, log=True)),
            P("c", CategoricalDomain(("a", "b", "c"))),
            P("d", DiscreteDomain((0.5, 1.0, 4.0))),
        ]
    ),
    "extremes": SearchSpace(
        [
            P("wide", FloatDomain(-1e308, 1e308)),
            P("wide_log", FloatDomain(1e-300, 1e300, log=True)),
            P("narrow", FloatDomain(1.0, 1.0 + 4e-16)),
            P("huge_int", IntDomain(-(10**12), 10**12)),
            P("huge_int_log", IntDomain(1, 2**62, log=True)),
            P("one", CategoricalDomain(("only",))),
            P("one_d", DiscreteDomain((-0.0,))),
        ]
    ),
    # Two levels of conditions under categorical, int and discrete parents.
    "conditional": SearchSpace(
        [
            P("opt", CategoricalDomain(("sgd", "adam", "rms"))),
            P("momentum", FloatDomain(0.0, 0.99), Condition("opt", ("sgd",))),
            P("nesterov", CategoricalDomain(("yes", "no")), Condition("opt", ("sgd",))),
            P("beta", DiscreteDomain((0.9, 0.99, 0.999)), Condition("opt", ("adam", "rms"))),
            P("eps_log", FloatDomain(1e-9, 1e-6, log=True), Condition("beta", (0.999,))),
            P("layers", IntDomain(1, 4)),
            P("width", DiscreteDomain((64.0, 128.0, 256.0)), Condition("layers", (2, 3, 4))),
            P("act", CategoricalDomain(("relu", "gelu")), Condition("layers", (4,))),
            P("dropout", IntDomain(1, 50, log=True), Condition("width", (128.0, 256.0))),
            P("batch", DiscreteDomain((16.0, 32.0, 64.0))),
            P("accum", IntDomain(1, 4), Condition("batch", (16.0,))),
            P("clip", CategoricalDomain(("none", "norm")), Condition("accum", (2, 4))),
        ]
    ),
    # Children listed before their parents, and a huge int parent with a few special values.
    "unordered_huge_parent": SearchSpace(
        [
            P("grandchild", FloatDomain(0.0, 1.0), Condition("child", ("on",))),
            P("child", CategoricalDomain(("on", "off")), Condition("steps", (0, 10**12))),
            P("steps", IntDomain(0, 10**12)),
        ]
    ),
}

ALGORITHMS = list(Algorithm)


def _spec(space: SearchSpace, algorithm: Algorithm, seed: int = 7) -> StudySpec:
    return StudySpec(space, (Objective("loss"),), algorithm, seed, grid_resolution=4)


def _indices(sampler: Sampler, spec: StudySpec) -> list[int]:
    cap = sampler.capacity(spec)
    first = list(range(32 if cap is None else min(cap, 32)))
    later = [i for i in (97, 1000, 65_537) if cap is None or i < cap]
    last = [cap - 1] if cap is not None and 32 < cap <= 10**6 else []
    return first + later + last


_TYPES = {FloatDomain: float, IntDomain: int, CategoricalDomain: str, DiscreteDomain: float}


def _check_point(space: SearchSpace, point: Params) -> None:
    assert space.validate_point(point) == point
    for name, value in point.items():
        assert type(value) is _TYPES[type(space[name].domain)], (name, value)


@pytest.fixture(params=ALGORITHMS, ids=lambda a: a.value)
def algorithm(request: pytest.FixtureRequest) -> Algorithm:
    value: Algorithm = request.param
    return value


@pytest.fixture
def sampler(algorithm: Algorithm) -> Sampler:
    s = get_sampler(algorithm)
    assert isinstance(s, Sampler)
    return s


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_points_are_members_with_exact_types(
    algorithm: Algorithm, sampler: Sampler, space_name: str
) -> None:
    spec = _spec(SPACES[space_name], algorithm)
    indices = _indices(sampler, spec)
    points = sampler.suggest(spec, indices)
    assert len(points) == len(indices)
    for point in points:
        _check_point(spec.space, point)


def test_conditional_parameters_appear_both_active_and_inactive(
    algorithm: Algorithm, sampler: Sampler
) -> None:
    spec = _spec(SPACES["conditional"], algorithm)
    points = sampler.suggest(spec, range(64))
    seen = {name for point in points for name in point}
    assert seen == {p.name for p in spec.space.parameters}
    for name in ("momentum", "accum", "eps_log", "clip"):
        assert any(name not in point for point in points), name


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_deterministic_and_independent_of_the_batch(
    algorithm: Algorithm, sampler: Sampler, space_name: str
) -> None:
    spec = _spec(SPACES[space_name], algorithm)
    indices = _indices(sampler, spec)
    batch = sampler.suggest(spec, indices)
    again = get_sampler(spec.algorithm).suggest(_spec(SPACES[space_name], spec.algorithm), indices)
    assert again == batch
    one_by_one = [sampler.suggest(spec, [i])[0] for i in indices]
    assert one_by_one == batch
    shuffled = indices[::-2] + indices[::2]
    by_index = dict(zip(indices, batch, strict=True))
    assert sampler.suggest(spec, shuffled) == [by_index[i] for i in shuffled]


def test_repeated_index_in_a_batch_gives_the_same_point(
    algorithm: Algorithm, sampler: Sampler
) -> None:
    spec = _spec(SPACES["every_kind"], algorithm)
    a, b, c = sampler.suggest(spec, [5, 3, 5])
    assert a == c
    assert a != b


@pytest.mark.parametrize("space_name", ["every_kind", "conditional"])
def test_different_seeds_give_different_points(
    algorithm: Algorithm, sampler: Sampler, space_name: str
) -> None:
    one = sampler.suggest(_spec(SPACES[space_name], algorithm, seed=1), range(16))
    two = sampler.suggest(_spec(SPACES[space_name], algorithm, seed=2), range(16))
    assert one != two
    # Not just a reordering of a few points: most positions differ.
    assert sum(a != b for a, b in zip(one, two, strict=True)) >= 12


def test_negative_and_int64_seeds(algorithm: Algorithm, sampler: Sampler) -> None:
    for seed in (0, -1, 2**63 - 1, -(2**63)):
        spec = _spec(SPACES["every_kind"], algorithm, seed=seed)
        for point in sampler.suggest(spec, range(4)):
            _check_point(spec.space, point)


def test_empty_indices_give_no_points(algorithm: Algorithm, sampler: Sampler) -> None:
    spec = _spec(SPACES["every_kind"], algorithm)
    assert sampler.suggest(spec, []) == []


def test_indices_out_of_range_are_refused(algorithm: Algorithm, sampler: Sampler) -> None:
    spec = _spec(SPACES["every_kind"], algorithm)
    with pytest.raises(ValueError):
        sampler.suggest(spec, [0, -1])
    cap = sampler.capacity(spec)
    if cap is not None:
        with pytest.raises(ValueError):
            sampler.suggest(spec, [cap])


def test_inputs_are_not_mutated(algorithm: Algorithm, sampler: Sampler) -> None:
    spec = _spec(SPACES["conditional"], algorithm)
    indices = [4, 1, 9]
    before = (spec, list(spec.space.parameters), list(indices))
    sampler.suggest(spec, indices)
    assert (spec, list(spec.space.parameters), indices) == before


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError):
        get_sampler("BAYES")  # type: ignore[arg-type]


def test_only_random_declares_independent_draws(algorithm: Algorithm, sampler: Sampler) -> None:
    """A sampler whose indices a replica may reserve ahead and skip: unbounded, history-free,
    and point i the same whichever other indices were ever drawn (checked above). Grid and
    quasi-random rely on every index being handed out, so they must not declare it."""
    assert sampler.independent_draws == (algorithm is Algorithm.RANDOM)
    if sampler.independent_draws:
        spec = _spec(SPACES["conditional"], algorithm)
        assert sampler.capacity(spec) is None and not sampler.needs_history
