"""Learning-curve problems for ``early_stopping.py``: every one minimised, trained step by step.

A family is a search space (``bayes_problems.Param``), a full training length in steps
(``max_steps``) and a way to start training a point: ``family.start(params)`` returns a
:class:`Curve` whose ``next()`` trains one more step and returns the value a worker would
report after it. The curve of a point is a pure function of the point (noise included): two
methods that try the same point see the same values.

* ``rank``: early ranks predict final ranks. The final value is a smooth function of five
  hyperparameters (an interaction between learning rate and batch size, saturating far from
  the optimum); the curve falls as a power law towards it, from a height that grows with the
  final value, so a point that ends better is better at every step (up to noise and a mild
  width-dependent change of shape near ties). Known optimum 0.05.
* ``crossing``: curves cross. A higher learning rate (and less dropout) learns faster but
  plateaus higher; the best final values come from points that are slow and look bad for the
  first third of training. Known optimum computed numerically (about 0.085).
* ``mlp_digits``: a real model. scikit-learn's ``MLPClassifier`` (one hidden layer, SGD with
  Nesterov momentum, fixed ``random_state``) trained one epoch per step with ``partial_fit`` on
  the bundled digits data set (1,797 8x8 images; 2/3 train, 1/3 validation, stratified); the
  value is the validation cross-entropy. Its optimum is unknown: regrets are taken from the
  best full-length value any method found in the same run.

Synthetic values carry Gaussian noise (sd 0.001 + 0.02 / step) seeded by a hash of the point.
A worker ranks trials by what it observes; :attr:`Curve.true_final` is the noise-free value at
full length that regrets are computed from.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import numpy as np

from bench.bayes_problems import Param

Params = Mapping[str, float | int | str]

#: Steps of a full training in every family (27 = 3^3: rungs at 1, 3 and 9 for eta = 3).
MAX_STEPS = 27
#: Standard deviation of the noise on a synthetic curve's value at step t: NOISE + EARLY_NOISE / t
#: (early measurements are noisier, as on a small validation batch or a warming-up optimiser).
NOISE = 0.001
EARLY_NOISE = 0.02


class Curve(Protocol):
    """One training run of one point, advanced one step at a time."""

    def next(self) -> float:
        """Trains one more step; the value a worker reports after it."""
        ...

    @property
    def true_final(self) -> float:
        """The noise-free value at ``max_steps`` (what regrets are computed from)."""
        ...


@dataclass(frozen=True)
class Family:
    """A learning-curve problem to minimise."""

    name: str
    params: tuple[Param, ...]
    max_steps: int
    #: The best noise-free final value of the space; ``None``: unknown (a real model).
    optimum: float | None
    start: Callable[[Params], Curve]
    description: str


def _point_seed(params: Params) -> int:
    text = ",".join(f"{k}={params[k]!r}" for k in sorted(params))
    return zlib.crc32(text.encode())


class _SyntheticCurve:
    """A noise-free curve ``mean(t)`` (t = 1..max_steps) plus seeded Gaussian noise."""

    def __init__(self, mean: Callable[[int], float], max_steps: int, params: Params) -> None:
        self._mean = mean
        self._max_steps = max_steps
        self._step = 0
        self._rng = np.random.default_rng(_point_seed(params))

    def next(self) -> float:
        self._step += 1
        sd = NOISE + EARLY_NOISE / self._step
        return self._mean(self._step) + sd * float(self._rng.standard_normal())

    @property
    def true_final(self) -> float:
        return self._mean(self._max_steps)


# --- the synthetic families: one search space ------------------------------------------------

SYNTHETIC_PARAMS = (
    Param("lr", "float", 1e-4, 1.0, log=True),
    Param("width", "int", 16, 1024, log=True),
    Param("dropout", "float", 0.0, 0.8),
    Param("weight_decay", "float", 1e-6, 1e-1, log=True),
    Param("batch_size", "int", 16, 512, log=True),
)


def _rest(p: Params) -> float:
    """Distance from the best width, weight decay and batch size (0 at 256, 1e-4, 64)."""
    return (
        ((math.log2(int(p["width"])) - 8) / 3) ** 2
        + ((math.log10(float(p["weight_decay"])) + 4) / 2.5) ** 2
        + ((math.log2(int(p["batch_size"])) - 6) / 4) ** 2
    )


def _rank_final(p: Params) -> float:
    lr = math.log10(float(p["lr"]))
    best_lr = -2.5 + 0.3 * (math.log2(int(p["batch_size"])) - 6)  # larger batches, larger lr
    q = (lr - best_lr) ** 2 + ((float(p["dropout"]) - 0.3) / 0.4) ** 2 + _rest(p)
    return 0.05 + 0.6 * (1.0 - math.exp(-q / 2))


def _rank_start(p: Params) -> Curve:
    final = _rank_final(p)
    height = 0.4 + (final - 0.05)  # how far above its final value the curve starts
    shape = 0.7 + 0.2 * (math.log2(int(p["width"])) - 4) / 6  # wider nets fall a bit faster
    end = MAX_STEPS**-shape

    def mean(t: int) -> float:
        return final + height * (t**-shape - end) / (1.0 - end)

    return _SyntheticCurve(mean, MAX_STEPS, p)


def _crossing_speed_plateau(lr_log10: float, dropout: float, rest: float) -> tuple[float, float]:
    speed = 0.6 * 10 ** (0.5 * (lr_log10 + 2)) * (1 - 0.8 * dropout)
    plateau = (
        0.05
        + 0.15 / (1 + math.exp(-2.5 * (lr_log10 + 2)))  # fast learners plateau high
        + 0.25 * (dropout - 0.5) ** 2
        + 0.6 * (1 - math.exp(-rest / 2))
    )
    return speed, plateau


def _crossing_mean(lr_log10: float, dropout: float, rest: float, t: float) -> float:
    speed, plateau = _crossing_speed_plateau(lr_log10, dropout, rest)
    return plateau + (1.0 - plateau) * math.exp(-speed * t)


def _crossing_start(p: Params) -> Curve:
    lr, dropout, rest = math.log10(float(p["lr"])), float(p["dropout"]), _rest(p)
    return _SyntheticCurve(lambda t: _crossing_mean(lr, dropout, rest, t), MAX_STEPS, p)


@cache
def crossing_optimum() -> float:
    """The crossing family's best final value: width, weight decay and batch size at their
    best (they only raise the plateau), then learning rate and dropout on a fine grid, polished
    by a bounded local search."""
    from scipy.optimize import minimize

    grid = [
        (_crossing_mean(lr, d, 0.0, MAX_STEPS), lr, d)
        for lr in np.linspace(-4, 0, 401)
        for d in np.linspace(0, 0.8, 161)
    ]
    _, lr0, d0 = min(grid)
    res = minimize(
        lambda x: _crossing_mean(float(x[0]), float(x[1]), 0.0, MAX_STEPS),
        x0=[lr0, d0],
        bounds=[(-4, 0), (0, 0.8)],
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    return float(min(res.fun, min(grid)[0]))


# --- the real model ----------------------------------------------------------------------------

MLP_PARAMS = (
    Param("lr", "float", 1e-4, 1.0, log=True),
    Param("alpha", "float", 1e-6, 1e-1, log=True),
    Param("width", "int", 8, 128, log=True),
    Param("batch_size", "int", 32, 256, log=True),
    Param("momentum", "float", 0.0, 0.99),
)
#: The value reported for a diverged model (non-finite or huge loss); ln(10) is chance level.
MLP_CAP = 5.0


@cache
def _digits() -> tuple[Any, Any, Any, Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=1 / 3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_va), y_tr, y_va, np.unique(y)


class _MlpCurve:
    def __init__(self, p: Params) -> None:
        from sklearn.neural_network import MLPClassifier

        self._model = MLPClassifier(
            hidden_layer_sizes=(int(p["width"]),),
            solver="sgd",
            learning_rate_init=float(p["lr"]),
            alpha=float(p["alpha"]),
            batch_size=int(p["batch_size"]),
            momentum=float(p["momentum"]),
            nesterovs_momentum=True,
            random_state=0,
        )
        self._last = MLP_CAP

    def next(self) -> float:
        x_tr, x_va, y_tr, y_va, classes = _digits()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                self._model.partial_fit(x_tr, y_tr, classes=classes)
                proba = self._model.predict_proba(x_va)[np.arange(len(y_va)), y_va]
                value = float(-np.mean(np.log(np.clip(proba, 1e-15, 1.0))))
            except (ValueError, FloatingPointError):  # diverged: NaN weights
                value = MLP_CAP
        self._last = min(value, MLP_CAP) if math.isfinite(value) else MLP_CAP
        return self._last

    @property
    def true_final(self) -> float:
        return self._last


FAMILIES: dict[str, Family] = {
    "rank": Family(
        "rank",
        SYNTHETIC_PARAMS,
        MAX_STEPS,
        0.05,
        _rank_start,
        "early ranks predict final ranks (power-law curves, height grows with the final value)",
    ),
    "crossing": Family(
        "crossing",
        SYNTHETIC_PARAMS,
        MAX_STEPS,
        None,  # set below: computed once
        _crossing_start,
        "curves cross: fast learners (high lr, low dropout) plateau high",
    ),
    "mlp_digits": Family(
        "mlp_digits",
        MLP_PARAMS,
        MAX_STEPS,
        None,
        _MlpCurve,
        "scikit-learn MLPClassifier, one epoch of partial_fit per step, digits validation loss",
    ),
}


def optimum(family: Family) -> float | None:
    """The known optimum of a family (computed for ``crossing``); ``None`` when unknown."""
    if family.name == "crossing":
        return crossing_optimum()
    return family.optimum
