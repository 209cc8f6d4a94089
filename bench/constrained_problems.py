"""Constrained problems for ``constrained.py``: one objective to minimise, with constraints or
crashes, and the known constrained optimum.

A problem's function returns the objective and its constraint values, Optuna's convention:
a constraint holds when its value is at most 0 (a hyperdial study declares each with
``upper_bound: 0``, the mapping ``StudySpec.constraints`` documents). A point that crashes
raises :class:`Crash` instead: it has no objective and no constraint value.

* ``newbranin`` (a; after Sasena's "new Branin", 2002): minimise
  ``-(x1 - 10)^2 - (x2 - 15)^2`` on ``x1 in [-5, 10], x2 in [0, 15]`` subject to
  ``branin(x) - 5 <= 0``. Branin below 5 is three islands around its three minima: the feasible
  region is disconnected (8.5 % of the box) and the objective pulls away from all of them. The
  optimum, -268.78850 at (3.27302, 0.04887), is on the boundary of the middle island (and of the
  box). Worst feasible value -104.19834 (at (9.8289, 4.7937), the point of the islands nearest
  (10, 15)).
* ``gramacy`` (b; Gramacy et al. 2016, "Modeling an augmented Lagrangian for blackbox
  constrained optimization", the toy problem): minimise ``x1 + x2`` on [0, 1]^2 subject to
  ``c1 = 3/2 - x1 - 2 x2 - 1/2 sin(2 pi (x1^2 - 2 x2)) <= 0`` and
  ``c2 = x1^2 + x2^2 - 3/2 <= 0``. A linear objective: the optimum is on the constraint
  boundary (of c1), 0.5997881 at (0.19512, 0.40467), with local optima at about 0.75 and 0.86
  along the wavy boundary; 46 % of the box is feasible. Worst feasible value sqrt(3) (c2).
* ``oom`` (c): a training-like mixed space where 70 % of the points crash, out of memory.
  Parameters: ``optimizer`` (adam, sgd, rmsprop), ``lr`` (log float, 1e-5 to 1), ``layers``
  (int, 1 to 16), ``width`` (log int, 16 to 4096), ``batch_size`` (log int, 8 to 2048),
  ``dropout`` (float, 0 to 0.5). Memory in GiB is ``4 layers width (s width + 65536
  batch_size) / 2^30`` (weights, gradients and optimiser state, ``s`` = 2 for sgd, 3 for
  rmsprop, 4 for adam; activations of 4096 tokens, 16 floats per unit); above 14 GiB the run
  crashes (71.3 % of the space, uniform in the samplers' scales: log for ``width`` and
  ``batch_size``). The loss is ``B[optimizer] + 0.5 / sqrt(1 + layers width / 64)
  + 0.002 (layers - 8)^2 + 0.01 (log2 batch_size - 8)^2 + 0.08 (log10 lr - l*)^2
  + 0.3 (dropout - d*)^2`` with ``B = {adam: 0, rmsprop: 0.01, sgd: 0.02}``,
  ``l* = log10 L[optimizer] + 0.5 log10(batch_size / 256)``, ``L = {adam: 1e-3, rmsprop: 5e-4,
  sgd: 5e-2}``, and ``d* = clip(0.1 + 0.05 log2(width / 256), 0, 0.5)``: bigger models are
  better until they no longer fit, and a big model fits only with a smaller batch. ``l*`` and
  ``d*`` are always inside the bounds, so the optimum is found exactly by enumerating optimizer,
  layers and width with the largest batch that fits (at most 256): 0.1692992 with adam, 8
  layers, width 110, batch 65 (13.97 GiB: against the crash boundary; width 111 or batch 66
  crash). Worst value of a point that runs: 2.19475 (by enumeration, ``lr`` and ``dropout`` at
  their bounds).

``hartmann6_sum`` is not scored: it is the history of the ask-time measurement (Hartmann-6 with
``sum(x) - 3 <= 0``, one objective and one constraint in 6 dimensions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
from bayes_problems import PROBLEMS as PLAIN_PROBLEMS
from bayes_problems import Param

Params = Mapping[str, float | int | str]
#: The objective and every constraint value (a constraint holds at <= 0).
Outcome = tuple[float, dict[str, float]]


class Crash(Exception):
    """The evaluation crashed because of its parameters (out of memory): no result."""


@dataclass(frozen=True)
class ConstrainedProblem:
    """A problem to minimise under constraints, or with points that crash.

    Attributes:
        name: Short name (tables, ``--problems``).
        params: The search space; no conditional parameters.
        fn: The objective and constraint values of a point; raises :class:`Crash` where the
            point gives no result.
        constraints: Names of the constraint values ``fn`` returns (empty for ``oom``).
        optimum: Best objective value over the points that are feasible (and do not crash).
        worst: Worst objective value over those points: the score of a run that found none.
    """

    name: str
    params: tuple[Param, ...]
    fn: Callable[[Params], Outcome]
    constraints: tuple[str, ...]
    optimum: Callable[[], float]
    worst: Callable[[], float]

    @property
    def crashes(self) -> bool:
        """Whether points crash rather than break a declared constraint."""
        return not self.constraints


def _branin(x1: float, x2: float) -> float:
    return PLAIN_PROBLEMS["branin"].fn({"x1": x1, "x2": x2})


def _newbranin(p: Params) -> Outcome:
    x1, x2 = float(p["x1"]), float(p["x2"])
    return -((x1 - 10.0) ** 2) - (x2 - 15.0) ** 2, {"branin": _branin(x1, x2) - 5.0}


def _gramacy(p: Params) -> Outcome:
    x1, x2 = float(p["x1"]), float(p["x2"])
    c1 = 1.5 - x1 - 2.0 * x2 - 0.5 * math.sin(2.0 * math.pi * (x1**2 - 2.0 * x2))
    c2 = x1**2 + x2**2 - 1.5
    return x1 + x2, {"c1": c1, "c2": c2}


_OPT_STATE = {"adam": 4, "sgd": 2, "rmsprop": 3}
_OPT_BASE = {"adam": 0.0, "sgd": 0.02, "rmsprop": 0.01}
_OPT_LR = {"adam": 1e-3, "sgd": 5e-2, "rmsprop": 5e-4}
#: The memory budget, GiB.
OOM_BUDGET = 14.0
_ACTIVATIONS = 16 * 4096


def oom_memory(optimizer: str, layers: int, width: int, batch_size: int) -> float:
    """GiB a training run of these parameters needs (``oom`` crashes above ``OOM_BUDGET``)."""
    floats = layers * width * (_OPT_STATE[optimizer] * width + _ACTIVATIONS * batch_size)
    return 4.0 * floats / 2**30


def _oom_terms(optimizer: str, layers: int, width: int, batch_size: int) -> float:
    """The loss at the best ``lr`` and ``dropout``."""
    return (
        _OPT_BASE[optimizer]
        + 0.5 / math.sqrt(1.0 + layers * width / 64)
        + 0.002 * (layers - 8) ** 2
        + 0.01 * (math.log2(batch_size) - 8.0) ** 2
    )


def _oom_best_lr(optimizer: str, batch_size: int) -> float:
    return math.log10(_OPT_LR[optimizer]) + 0.5 * math.log10(batch_size / 256)


def _oom_best_dropout(width: int) -> float:
    return min(0.5, max(0.0, 0.1 + 0.05 * math.log2(width / 256)))


def _oom(p: Params) -> Outcome:
    opt, layers = str(p["optimizer"]), int(p["layers"])
    width, batch = int(p["width"]), int(p["batch_size"])
    memory = oom_memory(opt, layers, width, batch)
    if memory > OOM_BUDGET:
        raise Crash(f"out of memory: {memory:.1f} GiB > {OOM_BUDGET:g} GiB")
    loss = (
        _oom_terms(opt, layers, width, batch)
        + 0.08 * (math.log10(float(p["lr"])) - _oom_best_lr(opt, batch)) ** 2
        + 0.3 * (float(p["dropout"]) - _oom_best_dropout(width)) ** 2
    )
    return loss, {}


def _largest_batch(optimizer: str, layers: int, width: int) -> int:
    """The largest batch size that fits (0 when even 8 does not)."""
    room = OOM_BUDGET * 2**30 / (4.0 * layers * width) - _OPT_STATE[optimizer] * width
    batch = min(2048, math.floor(room / _ACTIVATIONS))
    # Guard the float division at the edge: the batch must really fit.
    while batch >= 8 and oom_memory(optimizer, layers, width, batch) > OOM_BUDGET:
        batch -= 1
    return batch if batch >= 8 else 0


@cache
def _oom_optimum() -> float:
    best = math.inf
    for opt in _OPT_STATE:
        for layers in range(1, 17):
            for width in range(16, 4097):
                top = _largest_batch(opt, layers, width)
                if top:
                    # The batch term falls up to 256: the best batch is the largest that fits.
                    best = min(best, _oom_terms(opt, layers, width, min(256, top)))
    return best


@cache
def _oom_worst() -> float:
    worst = -math.inf
    for opt in _OPT_STATE:
        for batch in range(8, 2049):
            lr_term = 0.08 * max(
                (lr - _oom_best_lr(opt, batch)) ** 2 for lr in (math.log10(1e-5), 0.0)
            )
            # The capacity and dropout terms are largest at the smallest width, which also
            # fits best: width 16 holds the maximum.
            for layers in range(1, 17):
                if oom_memory(opt, layers, 16, batch) > OOM_BUDGET:
                    continue
                d = _oom_best_dropout(16)
                worst = max(
                    worst,
                    _oom_terms(opt, layers, 16, batch) + lr_term + 0.3 * max(d, 0.5 - d) ** 2,
                )
    return worst


def _hartmann6_sum(p: Params) -> Outcome:
    value = PLAIN_PROBLEMS["hartmann6"].fn(p)
    return value, {"sum": sum(float(p[f"x{i}"]) for i in range(6)) - 3.0}


def _const(x: float) -> Callable[[], float]:
    return lambda: x


_BOX = (Param("x1", "float", -5.0, 10.0), Param("x2", "float", 0.0, 15.0))
_UNIT2 = (Param("x1", "float", 0.0, 1.0), Param("x2", "float", 0.0, 1.0))

PROBLEMS: dict[str, ConstrainedProblem] = {
    "newbranin": ConstrainedProblem(
        "newbranin",
        _BOX,
        _newbranin,
        ("branin",),
        _const(-268.788504868),
        _const(-104.198343),
    ),
    "gramacy": ConstrainedProblem(
        "gramacy",
        _UNIT2,
        _gramacy,
        ("c1", "c2"),
        _const(0.599788052),
        _const(math.sqrt(3.0)),
    ),
    "oom": ConstrainedProblem(
        "oom",
        (
            Param("optimizer", "categorical", values=("adam", "sgd", "rmsprop")),
            Param("lr", "float", 1e-5, 1.0, log=True),
            Param("layers", "int", 1, 16),
            Param("width", "int", 16, 4096, log=True),
            Param("batch_size", "int", 8, 2048, log=True),
            Param("dropout", "float", 0.0, 0.5),
        ),
        _oom,
        (),
        _oom_optimum,
        _oom_worst,
    ),
}

#: The history of the ask-time measurement (not scored: its optimum is not computed here).
TIMING_PROBLEM = ConstrainedProblem(
    "hartmann6_sum",
    tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(6)),
    _hartmann6_sum,
    ("sum",),
    _const(math.nan),
    _const(math.nan),
)


def uniform_point(
    params: tuple[Param, ...], rng: np.random.Generator
) -> dict[str, float | int | str]:
    """A uniform random point in the samplers' scales (log-uniform on a log scale)."""
    point: dict[str, float | int | str] = {}
    for p in params:
        if p.kind == "categorical":
            point[p.name] = p.values[int(rng.integers(len(p.values)))]
            continue
        if p.log:
            x = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
        else:
            x = float(rng.uniform(p.low, p.high))
        point[p.name] = min(int(p.high), max(int(p.low), round(x))) if p.kind == "int" else x
    return point


def check(n: int = 200_000) -> dict[str, dict[str, float]]:
    """Feasible fractions on uniform points and the optima against a dense search.

    A self-check of the constants above (``constrained.py --check``).

    Returns:
        Per problem: the fraction of ``n`` uniform points that are feasible (and run), the
        best and worst of their feasible values, and the documented optimum and worst value.
    """
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    for name, prob in PROBLEMS.items():
        values = []
        for _ in range(n):
            try:
                value, cons = prob.fn(uniform_point(prob.params, rng))
            except Crash:
                continue
            if all(c <= 0 for c in cons.values()):
                values.append(value)
        out[name] = {
            "feasible_fraction": len(values) / n,
            "best_sampled": min(values),
            "optimum": prob.optimum(),
            "worst_sampled": max(values),
            "worst": prob.worst(),
        }
    return out
