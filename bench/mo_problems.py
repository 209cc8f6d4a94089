"""Two-objective problems for ``multiobjective.py``: both objectives minimised, true front known.

* ``zdt1`` and ``zdt2`` (Zitzler, Deb and Thiele 2000) in 5 dimensions on [0, 1]^5:
  ``f1 = x0``, ``g = 1 + 9/4 * (x1 + x2 + x3 + x4)``, ``f2 = g * (1 - sqrt(f1 / g))`` (ZDT1,
  convex front ``f2 = 1 - sqrt(f1)``) or ``f2 = g * (1 - (f1 / g)^2)`` (ZDT2, concave front
  ``f2 = 1 - f1^2``); the front is ``x1 = ... = x4 = 0``. Reference point (11, 11), as
  BoTorch's ZDT problems: every point of the space lies inside it (``f1 <= 1``, ``f2 <= 10``).
  True hypervolume ``121 - 1/3`` (ZDT1) and ``121 - 2/3`` (ZDT2).
* ``dtlz2`` (Deb, Thiele, Laumanns and Zitzler 2002), 2 objectives in 5 dimensions on [0, 1]^5:
  ``g = sum((x_i - 0.5)^2, i = 1..4)``, ``f1 = (1 + g) cos(pi/2 x0)``,
  ``f2 = (1 + g) sin(pi/2 x0)``; the front is the quarter of the unit circle (``g = 0``).
  Reference point (1.1, 1.1); true hypervolume ``1.21 - pi/4``.
* ``training_mo``: a training-like mixed space, validation error against inference latency.
  Parameters: ``lr`` (log float, 1e-5 to 1), ``layers`` (int, 1 to 8), ``width`` (log int, 16
  to 1024), ``precision`` (categorical: fp32, bf16, int8), ``dropout`` (float, 0 to 0.5).
  ``error = 0.4 / sqrt(1 + layers * width / 32) + 0.004 (layers - 4)^2 + P[precision]
  + 0.08 (log10 lr - log10 3e-3)^2 + 0.3 (dropout - d*(width))^2`` with
  ``P = {fp32: 0, bf16: 0.005, int8: 0.03}`` and ``d*(width) = clip(0.1 + 0.05 log2(width /
  256), 0, 0.5)``; ``latency_ms = M[precision] * (0.2 + layers * width / 64)`` with
  ``M = {fp32: 1, bf16: 0.6, int8: 0.35}``. Bigger models are more accurate and slower, lower
  precision is faster and a little less accurate. Latency does not depend on ``lr`` or
  ``dropout``, and both terms are 0 at their best values (always inside the bounds), so the
  true front is the non-dominated set of the best error of every (layers, width, precision):
  computed exactly by enumeration (24,216 points). Reference point (error 0.5, latency 130 ms):
  the slowest model takes 128.2 ms.

The hypervolume is that of the non-dominated set of the observed values of every trial,
within the box between the origin side and the reference point (points beyond it in either
objective add nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
from bayes_problems import Param

Params = Mapping[str, float | int | str]
Values = tuple[float, float]


@dataclass(frozen=True)
class MOProblem:
    """A problem with two objectives to minimise.

    Attributes:
        name: Short name (tables, ``--problems``).
        params: The search space; no conditional parameters.
        fn: Both objective values of a point.
        objectives: Names of the two objectives (the hyperdial study's objective names).
        reference: The reference point of the hypervolume.
        true_hv: Hypervolume of the true Pareto front with respect to ``reference``.
    """

    name: str
    params: tuple[Param, ...]
    fn: Callable[[Params], Values]
    objectives: tuple[str, str]
    reference: Values
    true_hv: Callable[[], float]


def hypervolume(points: Iterable[Values], reference: Values) -> float:
    """Area dominated by ``points`` (both minimised) and bounded by ``reference``.

    Args:
        points: Objective values; any number, dominated ones and duplicates included.
        reference: The corner no point counts beyond.

    Returns:
        The hypervolume; 0 when no point is strictly better than ``reference`` in both.
    """
    r1, r2 = reference
    inside = sorted((f1, f2) for f1, f2 in points if f1 < r1 and f2 < r2)
    area, best_f2 = 0.0, r2
    # Sweep by increasing f1: each point that lowers the best f2 so far adds the strip between
    # its f2 and the previous best, from its f1 to the reference.
    for f1, f2 in inside:
        if f2 < best_f2:
            area += (r1 - f1) * (best_f2 - f2)
            best_f2 = f2
    return area


def _zdt_g(p: Params) -> float:
    return 1.0 + 9.0 / 4.0 * sum(float(p[f"x{i}"]) for i in range(1, 5))


def _zdt1(p: Params) -> Values:
    f1, g = float(p["x0"]), _zdt_g(p)
    return f1, g * (1.0 - math.sqrt(f1 / g))


def _zdt2(p: Params) -> Values:
    f1, g = float(p["x0"]), _zdt_g(p)
    return f1, g * (1.0 - (f1 / g) ** 2)


def _dtlz2(p: Params) -> Values:
    g = sum((float(p[f"x{i}"]) - 0.5) ** 2 for i in range(1, 5))
    angle = 0.5 * math.pi * float(p["x0"])
    return (1.0 + g) * math.cos(angle), (1.0 + g) * math.sin(angle)


_PRECISION_ERROR = {"fp32": 0.0, "bf16": 0.005, "int8": 0.03}
_PRECISION_SPEED = {"fp32": 1.0, "bf16": 0.6, "int8": 0.35}


def _best_dropout(width: int) -> float:
    return min(0.5, max(0.0, 0.1 + 0.05 * math.log2(width / 256)))


def _capacity_error(layers: int, width: int, precision: str) -> float:
    """The error left at the best ``lr`` and ``dropout``."""
    return (
        0.4 / math.sqrt(1.0 + layers * width / 32)
        + 0.004 * (layers - 4) ** 2
        + _PRECISION_ERROR[precision]
    )


def _latency(layers: int, width: int, precision: str) -> float:
    return _PRECISION_SPEED[precision] * (0.2 + layers * width / 64)


def _training_mo(p: Params) -> Values:
    layers, width, precision = int(p["layers"]), int(p["width"]), str(p["precision"])
    error = (
        _capacity_error(layers, width, precision)
        + 0.08 * (math.log10(float(p["lr"])) - math.log10(3e-3)) ** 2
        + 0.3 * (float(p["dropout"]) - _best_dropout(width)) ** 2
    )
    return error, _latency(layers, width, precision)


_TRAINING_MO_REFERENCE = (0.5, 130.0)


@cache
def _training_mo_true_hv() -> float:
    # Every point's best error is reached at lr = 3e-3 and the best dropout: the true front is
    # among these 8 x 1009 x 3 points.
    best = [
        (_capacity_error(layers, width, precision), _latency(layers, width, precision))
        for layers in range(1, 9)
        for width in range(16, 1025)
        for precision in _PRECISION_ERROR
    ]
    return hypervolume(best, _TRAINING_MO_REFERENCE)


def _unit_box(n: int) -> tuple[Param, ...]:
    return tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(n))


PROBLEMS: dict[str, MOProblem] = {
    "zdt1": MOProblem(
        "zdt1", _unit_box(5), _zdt1, ("f1", "f2"), (11.0, 11.0), lambda: 121.0 - 1.0 / 3.0
    ),
    "zdt2": MOProblem(
        "zdt2", _unit_box(5), _zdt2, ("f1", "f2"), (11.0, 11.0), lambda: 121.0 - 2.0 / 3.0
    ),
    "dtlz2": MOProblem(
        "dtlz2", _unit_box(5), _dtlz2, ("f1", "f2"), (1.1, 1.1), lambda: 1.21 - math.pi / 4.0
    ),
    "training_mo": MOProblem(
        "training_mo",
        (
            Param("lr", "float", 1e-5, 1.0, log=True),
            Param("layers", "int", 1, 8),
            Param("width", "int", 16, 1024, log=True),
            Param("precision", "categorical", values=("fp32", "bf16", "int8")),
            Param("dropout", "float", 0.0, 0.5),
        ),
        _training_mo,
        ("error", "latency_ms"),
        _TRAINING_MO_REFERENCE,
        _training_mo_true_hv,
    ),
}


def check_true_fronts(n: int = 2001) -> dict[str, tuple[float, float]]:
    """The analytic true hypervolumes beside those of ``n`` points on each true front.

    A self-check of the constants above (``multiobjective.py --check``).

    Returns:
        Per problem: (analytic or enumerated hypervolume, hypervolume of ``n`` points on the
        front; for ``training_mo``, of ``n`` uniform random points, which must stay below).
    """
    t = np.linspace(0.0, 1.0, n)
    zero = {f"x{i}": 0.0 for i in range(1, 5)}
    half = {f"x{i}": 0.5 for i in range(1, 5)}
    out: dict[str, tuple[float, float]] = {}
    for name, rest in (("zdt1", zero), ("zdt2", zero), ("dtlz2", half)):
        prob = PROBLEMS[name]
        pts = [prob.fn({"x0": float(x), **rest}) for x in t]
        out[name] = (prob.true_hv(), hypervolume(pts, prob.reference))
    prob = PROBLEMS["training_mo"]
    # Random points never beat the enumerated front.
    rng = np.random.default_rng(0)
    pts = [
        prob.fn(
            {
                "lr": float(10 ** rng.uniform(-5, 0)),
                "layers": int(rng.integers(1, 9)),
                "width": int(round(2 ** rng.uniform(4, 10))),
                "precision": str(rng.choice(["fp32", "bf16", "int8"])),
                "dropout": float(rng.uniform(0, 0.5)),
            }
        )
        for _ in range(n)
    ]
    out["training_mo"] = (prob.true_hv(), hypervolume(pts, prob.reference))
    return out
