"""The benchmark problems: every one minimised, with its known optimum.

A problem is a list of parameters (name, kind, bounds or values, log scale) and a function of a
dict of parameter values. ``bayes.py`` turns the parameters into a hyperdial search space and
into Optuna distributions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Params = Mapping[str, float | int | str]


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is "float", "int" or "categorical"."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A problem to minimise."""

    name: str
    params: tuple[Param, ...]
    fn: Callable[[Params], float]
    optimum: float


def _branin(p: Params) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5.0 / math.pi
    r, s, t = 6.0, 10.0, 1.0 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
_H6_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
_H6_ALPHA = [1.0, 1.2, 3.0, 3.2]


def _hartmann6(p: Params) -> float:
    x = [float(p[f"x{i}"]) for i in range(6)]
    total = 0.0
    for i in range(4):
        inner = sum(_H6_A[i][j] * (x[j] - 1e-4 * _H6_P[i][j]) ** 2 for j in range(6))
        total += _H6_ALPHA[i] * math.exp(-inner)
    return -total


def _rosenbrock(p: Params) -> float:
    x = [float(p[f"x{i}"]) for i in range(4)]
    return sum(100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


_BEST_LR = {"adam": 3e-3, "sgd": 5e-2, "rmsprop": 1e-3}
_BASE = {"adam": 0.0, "sgd": 0.03, "rmsprop": 0.015}


def _fake_training(p: Params) -> float:
    opt = str(p["optimizer"])
    return (
        0.08 * (math.log10(float(p["lr"])) - math.log10(_BEST_LR[opt])) ** 2
        + 0.01 * (int(p["layers"]) - 4) ** 2
        + 0.3 * (float(p["dropout"]) - 0.2) ** 2
        + _BASE[opt]
        + 0.02 * (math.log2(int(p["batch_size"])) - 6) ** 2
    )


PROBLEMS: dict[str, Problem] = {
    "branin": Problem(
        "branin",
        (Param("x1", "float", -5.0, 10.0), Param("x2", "float", 0.0, 15.0)),
        _branin,
        0.397887,
    ),
    "hartmann6": Problem(
        "hartmann6",
        tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(6)),
        _hartmann6,
        -3.32237,
    ),
    "rosenbrock4": Problem(
        "rosenbrock4",
        tuple(Param(f"x{i}", "float", -5.0, 10.0) for i in range(4)),
        _rosenbrock,
        0.0,
    ),
    "fake_training": Problem(
        "fake_training",
        (
            Param("lr", "float", 1e-5, 1.0, log=True),
            Param("layers", "int", 1, 8),
            Param("optimizer", "categorical", values=("adam", "sgd", "rmsprop")),
            Param("dropout", "float", 0.0, 0.8),
            Param("batch_size", "int", 8, 1024, log=True),
        ),
        _fake_training,
        0.0,
    ),
}
