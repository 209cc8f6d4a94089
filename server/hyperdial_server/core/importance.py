"""Parameter importance: which parameters matter to reach a study's best values (PED-ANOVA).

PED-ANOVA (Watanabe et al., IJCAI 2023, "PED-ANOVA: Efficiently Quantifying Hyperparameter
Importance in Arbitrary Subspaces") compares, one parameter at a time, where the *top* trials
(the best :data:`TOP_QUANTILE` of the completed ones) put that parameter with where *all*
completed trials put it. A parameter the best trials do not care about is spread among them as
among all trials; one that matters is concentrated where it is good. The importance of a
parameter is the Pearson divergence between the two one-dimensional densities:

    D = sum over x of p_all(x) * (p_top(x) / p_all(x) - 1) ** 2

which the paper shows is, up to a constant, the variance over the parameter's values of the
chance of being in the top quantile given that value: a local, functional ANOVA of reaching the
best values. It needs no model of the objective: two density estimates per parameter, about a
tenth of a second for 100,000 trials once they are read.

The densities (our choices, written down here and in ``docs/algorithms.md``):

* Each parameter's values are put on a grid: a float parameter on :data:`GRID_POINTS` evenly
  spaced points of its range (in log space for a log scale); an int parameter on its integers
  (on :data:`GRID_POINTS` evenly spaced points of its range, or of its log range for a log
  scale, when it has more); a discrete parameter on its values in order (their ranks, binned
  to :data:`GRID_POINTS` when there are more); a categorical parameter on its values.
* An ordered parameter (float, int, discrete) is smoothed with a Gaussian kernel on the grid
  (each kernel truncated to the grid), of the width of Scott's rule: 1.059 x min(standard
  deviation, IQR / 1.349) x n^(-1/5) in grid steps (the standard deviation alone when the IQR
  is 0), at least :data:`MIN_BANDWIDTH`. A categorical parameter is not smoothed: its values
  have no order.
* Both densities mix in a uniform prior of weight :data:`PRIOR_WEIGHT` (one pseudo-trial), so
  no grid point has density 0 and small top sets are not overconfident.

**Conditional parameters** (Conditional PED-ANOVA, the rule Optuna 5 follows). A parameter
inactive in a trial has no value there. Its divergence is computed from the trials where it is
active only (the top trials where it is active against all trials where it is active), and
weighted by ``alpha ** 2 / beta``, where ``alpha`` is the share of the top trials in which it
is active and ``beta`` the share of all trials. A parameter active in most of the best trials
but few of all counts more; one rarely active among the best counts less; the choice of being
active at all is its parent's, and counts in the parent's importance. A parameter active in
fewer than :data:`MIN_ACTIVE_TRIALS` trials, or in none of the top trials, has importance 0.
An unconditional parameter has ``alpha = beta = 1``.

Importances are normalised to sum to 1 (all 0 when none is above 0: the objective did not vary
among the trials, so the top quantile is every trial). The answer is a function of the set of
trials, not of their order: the same study gives the same importances on every replica.

This module is pure: numpy and scipy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from hyperdial_server.core.errors import FailedPrecondition
from hyperdial_server.core.space import (
    CategoricalDomain,
    DiscreteDomain,
    Domain,
    IntDomain,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import Objective
from hyperdial_server.core.trial import Trial, TrialState

#: The name of the method, as the response reports it.
METHOD = "ped-anova"
#: The top trials are the best ``ceil(n / TOP_DIVISOR)`` of ``n`` (ties included): 10%.
TOP_DIVISOR = 10
TOP_QUANTILE = 1 / TOP_DIVISOR
#: Fewest trials in the top quantile: one trial tells nothing about where the best ones are.
MIN_TOP_TRIALS = 2
#: Fewest completed trials: the smallest ``n`` whose top quantile holds ``MIN_TOP_TRIALS``.
MIN_TRIALS = (MIN_TOP_TRIALS - 1) * TOP_DIVISOR + 1
#: Fewest trials where a conditional parameter is active for it to be measured at all.
MIN_ACTIVE_TRIALS = 2
#: Points of the grid a float parameter (and an int or discrete one with more values) is put on.
GRID_POINTS = 50
#: Narrowest kernel, in grid steps: 90% of its mass stays in its own cell (0.5 / z_0.95).
MIN_BANDWIDTH = 0.5 / 1.6448536269514722
#: Weight of the uniform prior in each density, in trials.
PRIOR_WEIGHT = 1.0
#: ``ErrorInfo.reason`` when a study has too few completed trials (FAILED_PRECONDITION).
NOT_ENOUGH_TRIALS = "NOT_ENOUGH_TRIALS"

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ParameterImportance:
    """How much one parameter matters to an objective.

    Attributes:
        parameter: Its name.
        importance: Its share of the importance, from 0 to 1.
        active_trials: In how many of the trials used it was active.
    """

    parameter: str
    importance: float
    active_trials: int


@dataclass(frozen=True)
class Importances:
    """The importance of every parameter of a study to one objective.

    Attributes:
        parameters: Every parameter of the space, most important first (ties in the order of
            the space); importances sum to 1 unless all are 0.
        trial_count: How many completed trials they were computed from.
        method: :data:`METHOD`.
    """

    parameters: tuple[ParameterImportance, ...]
    trial_count: int
    method: str = METHOD


def top_count(n: int) -> int:
    """How many of ``n`` trials the top quantile holds (before ties): ``ceil(n / 10)``."""
    return -(-n // TOP_DIVISOR)


def completed_samples(
    trials: Iterable[Trial], objective: str
) -> tuple[list[Mapping[str, ParamValue]], list[float]]:
    """The points and values of ``objective`` of the COMPLETED ``trials`` that have a finite
    value for it, in the order given; FAILED, STOPPED, INFEASIBLE, RUNNING and WAITING trials
    are left out (a stopped trial's last report is not a result; an infeasible one has none).
    A completed trial that breaks an outcome constraint counts: its objective was measured."""
    points: list[Mapping[str, ParamValue]] = []
    values: list[float] = []
    for t in trials:
        if t.state is not TrialState.COMPLETED or t.values is None:
            continue
        value = t.values.get(objective)
        if value is None or not math.isfinite(value):
            continue
        points.append(t.params)
        values.append(float(value))
    return points, values


@dataclass(frozen=True, eq=False)
class Samples:
    """Completed trials reduced to what PED-ANOVA reads (see :func:`samples`): arrays, which
    pickle as raw bytes, where the trials themselves take tens of microseconds each.

    Attributes:
        cells: For each parameter of the space, in its order, each trial's grid cell (-1
            where the parameter is inactive).
        values: Each trial's value of the objective.
    """

    cells: tuple[IntArray, ...]
    values: FloatArray

    def __len__(self) -> int:
        return len(self.values)


def samples(space: SearchSpace, objective: str, trials: Iterable[Trial]) -> Samples:
    """The COMPLETED ``trials`` with a finite value of ``objective`` (see
    :func:`completed_samples`), on the grids of ``space``'s parameters."""
    points, values = completed_samples(trials, objective)
    return _on_grids(space, points, values)


def not_enough_trials(count: int) -> FailedPrecondition:
    """The error of a study with ``count`` completed trials, fewer than :data:`MIN_TRIALS`."""
    return FailedPrecondition(
        f"parameter importance needs at least {MIN_TRIALS} completed trials (the best "
        f"{TOP_QUANTILE:.0%} of them must hold at least {MIN_TOP_TRIALS}); the study has "
        f"{count}: ask again once more trials have completed",
        reason=NOT_ENOUGH_TRIALS,
        metadata={"completed_trials": str(count), "min_trials": str(MIN_TRIALS)},
    )


def ped_anova(
    space: SearchSpace,
    objective: Objective,
    points: Sequence[Mapping[str, ParamValue]],
    values: Sequence[float],
) -> Importances:
    """The importance of every parameter of ``space`` to ``objective`` (see the module).

    Args:
        space: The study's search space.
        objective: The objective explained; its direction says which trials are the best.
        points: The completed trials' parameter values (an inactive parameter is absent).
            A value outside its parameter's domain (which the service never stores) counts
            as inactive.
        values: Their values of ``objective``, finite, in the same order.

    Raises:
        FailedPrecondition: Fewer than :data:`MIN_TRIALS` trials (``NOT_ENOUGH_TRIALS``).
    """
    if len(points) != len(values):
        raise ValueError(f"{len(points)} points but {len(values)} values")
    return ped_anova_of(space, objective, [_on_grids(space, points, values)])


def ped_anova_of(space: SearchSpace, objective: Objective, parts: Sequence[Samples]) -> Importances:
    """:func:`ped_anova` of the trials of ``parts`` (from :func:`samples` on the same space),
    taken together.

    Raises:
        FailedPrecondition: Fewer than :data:`MIN_TRIALS` trials (``NOT_ENOUGH_TRIALS``).
    """
    n = sum(len(part) for part in parts)
    if n < MIN_TRIALS:
        raise not_enough_trials(n)
    loss = np.concatenate([part.values for part in parts])
    if objective.maximize:
        loss = -loss
    cutoff = np.partition(loss, top_count(n) - 1)[top_count(n) - 1]
    top = loss <= cutoff
    n_top = int(top.sum())
    raw: list[float] = []
    active_counts: list[int] = []
    for i, p in enumerate(space.parameters):
        cells = np.concatenate([part.cells[i] for part in parts])
        size = _grid_size(p.domain)
        active = cells >= 0
        n_active = int(active.sum())
        top_active = active & top
        n_top_active = int(top_active.sum())
        active_counts.append(n_active)
        if size < 2 or n_active < MIN_ACTIVE_TRIALS or n_top_active == 0:
            raw.append(0.0)
            continue
        ordered = not isinstance(p.domain, CategoricalDomain)
        divergence = _pearson_divergence(
            _density(np.bincount(cells[top_active], minlength=size), ordered),
            _density(np.bincount(cells[active], minlength=size), ordered),
        )
        alpha, beta = n_top_active / n_top, n_active / n
        raw.append(alpha * alpha / beta * divergence)
    total = math.fsum(raw)
    shares = [r / total if total > 0 else 0.0 for r in raw]
    order = sorted(range(len(shares)), key=lambda i: (-shares[i], i))
    return Importances(
        parameters=tuple(
            ParameterImportance(space.parameters[i].name, shares[i], active_counts[i])
            for i in order
        ),
        trial_count=n,
    )


# --- the grid -----------------------------------------------------------------------------


def _on_grids(
    space: SearchSpace, points: Sequence[Mapping[str, ParamValue]], values: Sequence[float]
) -> Samples:
    cells = tuple(
        _cells(p.domain, [point.get(p.name) for point in points])[0] for p in space.parameters
    )
    return Samples(cells=cells, values=np.asarray(values, dtype=np.float64))


def _grid_size(domain: Domain) -> int:
    """How many cells the grid of a parameter has."""
    if isinstance(domain, CategoricalDomain):
        return len(domain.values)
    if isinstance(domain, DiscreteDomain):
        return min(len(domain.values), GRID_POINTS)
    if isinstance(domain, IntDomain):
        return min(domain.high - domain.low + 1, GRID_POINTS)
    return GRID_POINTS


def _cells(domain: Domain, column: Sequence[ParamValue | None]) -> tuple[IntArray, int]:
    """Each value's grid cell (-1 where the parameter is inactive, or the value is not in
    the domain), and the number of cells."""
    if isinstance(domain, CategoricalDomain):
        index = {v: i for i, v in enumerate(domain.values)}
        cells = np.fromiter(
            (index.get(v, -1) if isinstance(v, str) else -1 for v in column),
            dtype=np.int64,
            count=len(column),
        )
        return cells, _grid_size(domain)
    x = np.fromiter(
        (
            float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
            for v in column
        ),
        dtype=np.float64,
        count=len(column),
    )
    if isinstance(domain, DiscreteDomain):
        ranks = {v: float(i) for i, v in enumerate(domain.values)}
        x = np.fromiter((ranks.get(v, math.nan) for v in x.tolist()), np.float64, len(column))
        return _on_grid(x, 0.0, len(domain.values) - 1.0, _grid_size(domain))
    low, high = float(domain.low), float(domain.high)
    size = _grid_size(domain)
    if domain.log:
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.log(np.where(x > 0, x, math.nan))
        low, high = math.log(low), math.log(high)
    return _on_grid(x, low, high, size)


def _on_grid(x: FloatArray, low: float, high: float, size: int) -> tuple[IntArray, int]:
    """The nearest of ``size`` evenly spaced points of ``[low, high]`` to each of ``x`` (-1
    for NaN or a value outside the range, past rounding)."""
    if size < 2:
        inside = (x >= low) & (x <= high)
        return np.where(inside, 0, -1).astype(np.int64), max(size, 1)
    position = (x - low) / (high - low) * (size - 1)
    with np.errstate(invalid="ignore"):
        inside = (position > -0.5) & (position < size - 0.5)
    cells = np.floor(np.where(inside, position, -1.0) + 0.5).astype(np.int64)
    return np.where(inside, cells, -1), size


# --- densities ----------------------------------------------------------------------------


def _density(counts: IntArray, ordered: bool) -> FloatArray:
    """The density on the grid of a sample given by its ``counts`` per cell: kernels (on an
    ordered grid) or the histogram (categorical), mixed with a uniform prior."""
    size = len(counts)
    n = float(counts.sum())
    weights = counts.astype(np.float64)
    smoothed = _kernels(size, _bandwidth(weights)) @ weights if ordered else weights
    density: FloatArray = (smoothed + PRIOR_WEIGHT / size) / (n + PRIOR_WEIGHT)
    return density


def _bandwidth(counts: FloatArray) -> float:
    """Scott's rule in grid steps, robust to outliers (the IQR's estimate of the spread when
    it is the smaller one), at least :data:`MIN_BANDWIDTH`."""
    n = float(counts.sum())
    grid = np.arange(len(counts), dtype=np.float64)
    mean = float(counts @ grid) / n
    sd = math.sqrt(float(counts @ (grid - mean) ** 2) / max(n - 1.0, 1.0))
    cumulative = np.cumsum(counts)
    q1 = int(np.searchsorted(cumulative, 0.25 * n))
    q3 = int(np.searchsorted(cumulative, 0.75 * n))
    spread: float = min(sd, (q3 - q1) / 1.349) if q3 > q1 else sd
    return max(1.059 * spread * math.pow(n, -0.2), MIN_BANDWIDTH)


def _kernels(size: int, bandwidth: float) -> FloatArray:
    """``K[i, j]``: the mass a Gaussian kernel centred on grid point ``j`` (standard deviation
    ``bandwidth`` grid steps) puts in cell ``i``, truncated to the grid (columns sum to 1)."""
    edges = np.arange(size + 1, dtype=np.float64) - 0.5
    centres = np.arange(size, dtype=np.float64)
    mass: FloatArray = np.diff(ndtr((edges[:, None] - centres[None, :]) / bandwidth), axis=0)
    kernels: FloatArray = mass / mass.sum(axis=0, keepdims=True)
    return kernels


def _pearson_divergence(top: FloatArray, region: FloatArray) -> float:
    """``sum region * (top / region - 1) ** 2``: 0 for equal densities, never negative."""
    return float(region @ (top / region - 1.0) ** 2)
