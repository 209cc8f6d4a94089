"""Synthetic objectives whose parameter importance is known by construction.

Shared by ``bench/importance.py`` (rank agreement with the truth, against Optuna's evaluators)
and the tests of ``ComputeParameterImportance`` (``tests/core/test_importance.py``,
``tests/e2e/test_parameter_importance.py``), so that both measure the same functions.

Each :class:`Problem` has a search space (the client's parameter types), an objective, and
``truth``: a score per parameter that orders them by how much they matter to reach the best
values (equal scores: equally important; 0: irrelevant). Only the order is meant, not the
scale. Trials are uniform random points (log-uniform on a log scale), conditional parameters
drawn only where active, from a seeded ``random.Random``: the same seed gives the same trials.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import hyperdial as hd

Point = dict[str, hd.ParamValue]


@dataclass(frozen=True)
class Problem:
    """A synthetic objective with a known ranking of its parameters.

    Attributes:
        name: Short name (bench tables, test ids).
        what: One line on what is important and why.
        params: The search space.
        f: The objective of a point (its active parameters).
        truth: Score per parameter: a higher one matters more; equal ones as much; 0 not at
            all.
        goal: ``"minimize"`` or ``"maximize"``.
    """

    name: str
    what: str
    params: tuple[hd.Parameter, ...]
    f: Callable[[Mapping[str, hd.ParamValue]], float]
    truth: Mapping[str, float]
    goal: str = "minimize"


def sample(problem: Problem, rng: random.Random) -> Point:
    """A uniform random point of the problem's space (log-uniform on a log scale); a
    conditional parameter only when its parent takes one of its values."""
    point: Point = {}
    for p in problem.params:
        if p.when is not None:
            parent, values = p.when
            if point.get(parent) not in values:
                continue
        if isinstance(p, hd.Float):
            if p.log:
                point[p.name] = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
            else:
                point[p.name] = rng.uniform(p.low, p.high)
        elif isinstance(p, hd.Int):
            point[p.name] = rng.randint(p.low, p.high)
        elif isinstance(p, hd.Categorical):
            point[p.name] = rng.choice(list(p.values))
        elif isinstance(p, hd.Discrete):
            point[p.name] = rng.choice(list(p.values))
        else:
            raise TypeError(f"unknown parameter type {type(p).__name__}")
    return point


def trials(problem: Problem, n: int, seed: int) -> list[tuple[Point, float]]:
    """``n`` random points of the problem and their values, from ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        point = sample(problem, rng)
        out.append((point, problem.f(point)))
    return out


def _float(point: Mapping[str, hd.ParamValue], name: str) -> float:
    value = point[name]
    assert isinstance(value, (int, float))
    return float(value)


# --- one dominant parameter, two interacting, three irrelevant --------------------------------


def _dominant(x: Mapping[str, hd.ParamValue]) -> float:
    # x0 alone: a bowl of range 0 to 4.9 (variance 1.9). x1 and x2 only together: their product
    # term (range -2 to 2, variance 0.44) is lowest at opposite ends. x3, x4, x5: nothing.
    x0, x1, x2 = _float(x, "x0"), _float(x, "x1"), _float(x, "x2")
    return 10.0 * (x0 - 0.3) ** 2 + 8.0 * (x1 - 0.5) * (x2 - 0.5)


DOMINANT = Problem(
    name="dominant",
    what="x0 dominant; x1, x2 interacting (only their product counts); x3, x4, x5 irrelevant",
    params=tuple(hd.Float(f"x{i}", 0.0, 1.0) for i in range(6)),
    f=_dominant,
    truth={"x0": 3.0, "x1": 2.0, "x2": 2.0, "x3": 0.0, "x4": 0.0, "x5": 0.0},
)


# --- graded: six weights, halving -------------------------------------------------------------

_GRADED_WEIGHTS = (16.0, 8.0, 4.0, 2.0, 1.0, 0.0)
_GRADED_CENTRES = (0.2, 0.8, 0.5, 0.35, 0.65, 0.5)


def _graded(x: Mapping[str, hd.ParamValue]) -> float:
    return sum(
        w * (_float(x, f"x{i}") - c) ** 2
        for i, (w, c) in enumerate(zip(_GRADED_WEIGHTS, _GRADED_CENTRES, strict=True))
    )


GRADED = Problem(
    name="graded",
    what="x0..x5 weighted 16, 8, 4, 2, 1, 0 (a bowl each, optimum inside; the variances of "
    "the terms keep that order)",
    params=tuple(hd.Float(f"x{i}", 0.0, 1.0) for i in range(6)),
    f=_graded,
    truth={f"x{i}": w for i, w in enumerate(_GRADED_WEIGHTS)},
)


# --- mixed types --------------------------------------------------------------------------------

_OPTIMISERS = {"adam": 0.0, "rmsprop": 0.5, "sgd": 1.0}
_BATCHES = (16.0, 32.0, 64.0, 128.0, 256.0)


def _mixed(x: Mapping[str, hd.ParamValue]) -> float:
    # Each term spans 0 to 1 before its weight: lr 8 (log scale, best at 1e-3), layers 4
    # (int, best at 3), optimiser 1 (categorical), batch 1 (discrete, best at 32); dropout and
    # activation 0. The variances of the terms under random sampling order them: 4.39, 1.75,
    # 0.167, 0.133 (the truth below).
    lr = (math.log10(_float(x, "lr")) + 3.0) / 3.0
    layers = (_float(x, "layers") - 3.0) / 5.0
    batch = (_BATCHES.index(_float(x, "batch")) - 1.0) / 3.0
    optimiser = x["optimizer"]
    assert isinstance(optimiser, str)
    return 8.0 * lr**2 + 4.0 * layers**2 + 1.0 * _OPTIMISERS[optimiser] + 1.0 * batch**2


MIXED = Problem(
    name="mixed",
    what="lr (log float), layers (int), optimizer (categorical), batch (discrete), in this "
    "order; dropout (float) and activation (categorical) irrelevant",
    params=(
        hd.Float("lr", 1e-5, 1.0, log=True),
        hd.Int("layers", 1, 8),
        hd.Categorical("optimizer", ["adam", "rmsprop", "sgd"]),
        hd.Discrete("batch", list(_BATCHES)),
        hd.Float("dropout", 0.0, 0.5),
        hd.Categorical("activation", ["relu", "tanh", "gelu"]),
    ),
    f=_mixed,
    truth={
        "lr": 4.39,
        "layers": 1.75,
        "optimizer": 0.167,
        "batch": 0.133,
        "dropout": 0.0,
        "activation": 0.0,
    },
)


# --- conditional ----------------------------------------------------------------------------


def _conditional(x: Mapping[str, hd.ParamValue]) -> float:
    # sgd with momentum near 0.9 is the best (0), far from it the worst (up to 6); adam is
    # always 1. lr (log scale, best at 10^-2.5) adds 0 to 4. noise: nothing.
    lr = (math.log10(_float(x, "lr")) + 2.5) / 1.5
    if x["optimizer"] == "sgd":
        opt = 6.0 * ((_float(x, "momentum") - 0.9) / 0.9) ** 2
    else:
        opt = 1.0
    return 4.0 * lr**2 + opt


CONDITIONAL = Problem(
    name="conditional",
    what="optimizer, momentum (active with sgd only) and lr matter; noise does not",
    params=(
        hd.Categorical("optimizer", ["adam", "sgd"]),
        hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),
        hd.Float("lr", 1e-4, 1e-1, log=True),
        hd.Float("noise", 0.0, 1.0),
    ),
    f=_conditional,
    truth={"optimizer": 1.0, "momentum": 1.0, "lr": 1.0, "noise": 0.0},
)

#: Every problem, by name.
PROBLEMS = {p.name: p for p in (DOMINANT, GRADED, MIXED, CONDITIONAL)}
