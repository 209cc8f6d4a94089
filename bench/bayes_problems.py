"""The benchmark problems: every one minimised, with its known optimum.

A problem is a list of parameters (name, kind, bounds or values, log scale, optional parent
condition) and a function of a dict of the active parameters' values. ``bayes.py`` turns the
parameters into a hyperdial search space and into Optuna suggestions.

Two sets (``SETS``): "low", the original four problems in 2 to 6 dimensions, and "high", five
problems in 15 to 30 dimensions: Hartmann-6 hidden among 30 coordinates, Levy 15-D, Ackley 20-D,
Rosenbrock 10-D and a 21-parameter training-like space with conditional parameters. Outside
the sets, ``hartmann6_50d``: Hartmann-6 hidden among 50 coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Params = Mapping[str, float | int | str]


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is "float", "int" or "categorical".

    With ``parent`` set, the parameter is conditional: active only when the parent (a categorical
    or int parameter) takes one of ``parent_values``; an inactive parameter is absent from the
    point. Conditions may nest: the parent of an inactive parent is inactive too.
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    values: tuple[str, ...] = ()
    parent: str = ""
    parent_values: tuple[str | int, ...] = ()

    def active(self, point: Params) -> bool:
        """Whether the parameter is active given the values chosen so far.

        Args:
            point: Values of the parameters before this one (at least its parent's).

        Returns:
            True for a top-level parameter, or when the parent is present with a listed value.
        """
        return not self.parent or point.get(self.parent) in self.parent_values


@dataclass(frozen=True)
class Problem:
    """A problem to minimise.

    Parents come before their children in ``params``: Optuna's define-by-run suggestions are
    made in this order, and a child needs its parent's value to know whether it is active.
    """

    name: str
    params: tuple[Param, ...]
    fn: Callable[[Params], float]
    optimum: float

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for p in self.params:
            if p.parent and p.parent not in seen:
                raise ValueError(f"{self.name}: {p.name}'s parent {p.parent!r} must come first")
            seen.add(p.name)

    @property
    def conditional(self) -> bool:
        """Whether some parameter is conditional."""
        return any(p.parent for p in self.params)


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


# Hartmann-6's coordinate j lives in x{_H6_30D_DIMS[j]} of 30: scattered and shuffled, so that no
# sampler gains from the relevant coordinates coming first or in order.
_H6_30D_DIMS = (19, 3, 28, 8, 25, 14)


def _hartmann6_30d(p: Params) -> float:
    return _hartmann6({f"x{j}": p[f"x{k}"] for j, k in enumerate(_H6_30D_DIMS)})


# The same in 50 coordinates (not in a set: ``--problems hartmann6_50d``).
_H6_50D_DIMS = (41, 7, 33, 19, 48, 2)


def _hartmann6_50d(p: Params) -> float:
    return _hartmann6({f"x{j}": p[f"x{k}"] for j, k in enumerate(_H6_50D_DIMS)})


# The functions below take their dimension from the point: x0 .. x{len(p) - 1}.


def _rosenbrock(p: Params) -> float:
    x = [float(p[f"x{i}"]) for i in range(len(p))]
    return sum(100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def _levy(p: Params) -> float:
    w = [1.0 + (float(p[f"x{i}"]) - 1.0) / 4.0 for i in range(len(p))]
    total = math.sin(math.pi * w[0]) ** 2
    for wi in w[:-1]:
        total += (wi - 1.0) ** 2 * (1.0 + 10.0 * math.sin(math.pi * wi + 1.0) ** 2)
    return total + (w[-1] - 1.0) ** 2 * (1.0 + math.sin(2.0 * math.pi * w[-1]) ** 2)


def _ackley(p: Params) -> float:
    x = [float(p[f"x{i}"]) for i in range(len(p))]
    rms = math.sqrt(sum(v * v for v in x) / len(x))
    mean_cos = sum(math.cos(2.0 * math.pi * v) for v in x) / len(x)
    return -20.0 * math.exp(-0.2 * rms) - math.exp(mean_cos) + 20.0 + math.e


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


# training20: six parameters matter much (optimizer, lr, weight_decay, layers, width, dropout),
# the others slightly or not at all (num_workers, eps). Every term is 0 at the optimum, so the
# minimum is exactly 0: adamw, lr 2e-3, weight_decay 3e-2, 6 layers, width 256, dropout 0.1,
# batch 128, 500 warmup steps, gelu, cosine, label smoothing 0.1, grad_clip 1, kaiming,
# beta1 0.9, beta2 0.999.
_T20_BASE = {"adamw": 0.0, "adam": 0.01, "sgd": 0.02, "rmsprop": 0.04}
_T20_BEST_LR = {"adamw": 2e-3, "adam": 1e-3, "sgd": 1e-1, "rmsprop": 5e-4}
_T20_BEST_WD = {"adamw": 3e-2, "adam": 1e-5, "sgd": 5e-4, "rmsprop": 1e-5}
_T20_ACTIVATION = {"relu": 0.008, "gelu": 0.0, "silu": 0.003, "tanh": 0.03}
_T20_SCHEDULER = {"constant": 0.02, "cosine": 0.0, "linear": 0.004, "step": 0.01}
_T20_INIT = {"xavier": 0.002, "kaiming": 0.0, "normal": 0.006}


def _training20(p: Params) -> float:
    # Reads only the active parameters: a conditional one under its branch.
    opt = str(p["optimizer"])
    log_batch = math.log2(int(p["batch_size"]))
    log_width = math.log2(int(p["width"]))
    # Interactions: bigger batches want a larger learning rate (linear scaling rule), wider
    # networks more dropout.
    best_lr = math.log10(_T20_BEST_LR[opt]) + 0.15 * (log_batch - 7.0)
    best_dropout = max(0.0, 0.1 + 0.05 * (log_width - 8.0))
    loss = (
        _T20_BASE[opt]
        + 0.08 * (math.log10(float(p["lr"])) - best_lr) ** 2
        + 0.02 * (math.log10(float(p["weight_decay"])) - math.log10(_T20_BEST_WD[opt])) ** 2
        + 0.01 * (int(p["layers"]) - 6) ** 2
        + 0.015 * (log_width - 8.0) ** 2
        + 0.5 * (float(p["dropout"]) - best_dropout) ** 2
        + 0.004 * (log_batch - 7.0) ** 2
        + 0.01 * ((int(p["warmup_steps"]) - 500) / 1000) ** 2
        + _T20_ACTIVATION[str(p["activation"])]
        + _T20_SCHEDULER[str(p["scheduler"])]
        + 0.1 * (float(p["label_smoothing"]) - 0.1) ** 2
        + 0.003 * math.log10(float(p["grad_clip"])) ** 2
        + _T20_INIT[str(p["init"])]
    )
    if p["scheduler"] == "step":
        loss += 0.02 * (float(p["step_gamma"]) - 0.5) ** 2
    if opt == "sgd":
        # Plain SGD is poor without momentum: a large effect, but only on this branch.
        loss += 0.4 * (float(p["momentum"]) - 0.9) ** 2
        loss += 0.0 if p["nesterov"] == "yes" else 0.005
    elif opt == "rmsprop":
        loss += 0.5 * (float(p["rmsprop_alpha"]) - 0.99) ** 2
    else:
        # Same expression for the best beta2, so the term is exactly 0 there.
        loss += 0.5 * (float(p["beta1"]) - 0.9) ** 2
        loss += 0.005 * (math.log10(1.0 - float(p["beta2"])) - math.log10(1.0 - 0.999)) ** 2
    return loss


_ADAM = ("adam", "adamw")

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
    "hartmann6_30d": Problem(
        "hartmann6_30d",
        tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(30)),
        _hartmann6_30d,
        -3.32237,
    ),
    "hartmann6_50d": Problem(
        "hartmann6_50d",
        tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(50)),
        _hartmann6_50d,
        -3.32237,
    ),
    # Not Levy's usual [-10, 10]: its centre (0) would sit next to the optimum (1), which
    # favours a method that starts in the middle (CMA-ES).
    "levy15": Problem(
        "levy15",
        tuple(Param(f"x{i}", "float", -5.0, 10.0) for i in range(15)),
        _levy,
        0.0,
    ),
    # Not Ackley's usual symmetric box: the optimum at 0 is off the centre.
    "ackley20": Problem(
        "ackley20",
        tuple(Param(f"x{i}", "float", -5.0, 10.0) for i in range(20)),
        _ackley,
        0.0,
    ),
    "rosenbrock10": Problem(
        "rosenbrock10",
        tuple(Param(f"x{i}", "float", -5.0, 10.0) for i in range(10)),
        _rosenbrock,
        0.0,
    ),
    "training20": Problem(
        "training20",
        (
            Param("optimizer", "categorical", values=("adamw", "adam", "sgd", "rmsprop")),
            Param("lr", "float", 1e-5, 1.0, log=True),
            Param("weight_decay", "float", 1e-6, 1e-1, log=True),
            Param("layers", "int", 1, 12),
            Param("width", "int", 16, 2048, log=True),
            Param("dropout", "float", 0.0, 0.7),
            Param("batch_size", "int", 8, 1024, log=True),
            Param("warmup_steps", "int", 0, 2000),
            Param("activation", "categorical", values=("relu", "gelu", "silu", "tanh")),
            Param("scheduler", "categorical", values=("constant", "cosine", "linear", "step")),
            Param("step_gamma", "float", 0.1, 0.9, parent="scheduler", parent_values=("step",)),
            Param("label_smoothing", "float", 0.0, 0.3),
            Param("grad_clip", "float", 0.1, 10.0, log=True),
            Param("init", "categorical", values=("xavier", "kaiming", "normal")),
            Param("num_workers", "int", 0, 16),
            Param("momentum", "float", 0.0, 0.99, parent="optimizer", parent_values=("sgd",)),
            Param(
                "nesterov",
                "categorical",
                values=("yes", "no"),
                parent="optimizer",
                parent_values=("sgd",),
            ),
            Param("beta1", "float", 0.8, 0.99, parent="optimizer", parent_values=_ADAM),
            Param("beta2", "float", 0.9, 0.9999, parent="optimizer", parent_values=_ADAM),
            Param("eps", "float", 1e-10, 1e-6, log=True, parent="optimizer", parent_values=_ADAM),
            Param(
                "rmsprop_alpha",
                "float",
                0.8,
                0.999,
                parent="optimizer",
                parent_values=("rmsprop",),
            ),
        ),
        _training20,
        0.0,
    ),
}

#: Problem names per ``bayes.py --set``.
SETS: dict[str, tuple[str, ...]] = {
    "low": ("branin", "hartmann6", "rosenbrock4", "fake_training"),
    "high": ("hartmann6_30d", "levy15", "ackley20", "rosenbrock10", "training20"),
}
