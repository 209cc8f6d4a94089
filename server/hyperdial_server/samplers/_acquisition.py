"""Log expected improvement and the optimisation of an acquisition over a mixed search space.

The usual acquisition is the logarithm of expected improvement (for minimisation), computed so
that it stays finite and keeps a useful gradient far from the incumbent, where expected
improvement itself underflows to zero (Ament et al., 2023, "Unexpected improvements to expected
improvement for Bayesian optimization"). Any :class:`Acquisition` (a value and its gradient at
feature rows) is optimised the same way: :class:`LogEI`, the log probability of feasibility of
``_constrained``, or their :class:`Sum` (log EI plus log probability of feasibility: constrained
expected improvement in log space).

An acquisition is maximised over a *design* (see :class:`Design`): points are rows of one
number per parameter (a unit-cube coordinate for numeric parameters, an integer code for
categorical ones). The search scores many quasi-random candidates plus perturbations of the
best observed points, then improves the best few by local search that alternates L-BFGS-B
steps over the active float coordinates (analytic gradient) with exhaustive or neighbourhood
search over each integer, discrete and categorical coordinate, so discrete values are
searched as such, never rounded afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import scipy.special
from scipy.stats import qmc

from hyperdial_server.samplers._gp import Posterior
from hyperdial_server.samplers._lbfgsb import lbfgsb

Array = npt.NDArray[np.float64]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_PI_OVER_2 = 0.5 * math.log(math.pi / 2.0)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
# Below this z the asymptotic expansion is exact to double precision.
_Z_ASYMPTOTIC = -1e7

#: Quasi-random candidates scored per search (a power of 2 keeps Sobol balanced).
N_CANDIDATES = 1024
#: Candidates drawn around each of the best observed points.
N_LOCAL_CANDIDATES = 64
#: Candidates improved by local search.
N_LOCAL_STARTS = 4
#: Rounds of alternating continuous / discrete local search.
LOCAL_ROUNDS = 3


class Design(Protocol):
    """How the optimiser sees the search space (implemented by the sampler's encoder)."""

    @property
    def n_dims(self) -> int:
        """Number of coordinates of a point (one per parameter)."""
        ...

    @property
    def float_dims(self) -> tuple[int, ...]:
        """Coordinates of float parameters (optimised by gradient)."""
        ...

    @property
    def discrete_dims(self) -> tuple[int, ...]:
        """Coordinates of integer, discrete and categorical parameters (searched discretely)."""
        ...

    def from_unit(self, s: Array) -> Array:
        """Points from rows of the unit cube (discrete coordinates snapped to valid values)."""
        ...

    def features(self, u: Array) -> Array:
        """Model features of points (rows)."""
        ...

    def feature_column(self, dim: int) -> int:
        """The feature column holding float coordinate ``dim`` (its derivative is 1 when active)."""
        ...

    def active(self, u: Array) -> npt.NDArray[np.bool_]:
        """Whether each parameter is active at each point, shape (m, n_dims)."""
        ...

    def options(self, value: float, dim: int, rng: np.random.Generator) -> Array:
        """Values of discrete coordinate ``dim`` to try from ``value`` in a local search."""
        ...

    def perturb(self, u: Array, scale: float, rng: np.random.Generator) -> Array:
        """Random points near the rows of ``u``."""
        ...


class Acquisition(Protocol):
    """What the optimiser maximises: a value per point and its gradient, at rows of features."""

    def value(self, x: Array) -> Array:
        """The acquisition at feature rows ``x``, shape (m,)."""
        ...

    def value_and_grad(self, x: Array, columns: Sequence[int]) -> tuple[Array, Array]:
        """The value at ``x`` and its derivatives by the numeric feature ``columns``, shape
        (m, len(columns))."""
        ...


class LogEI:
    """Log expected improvement below ``best`` of a posterior (outputs minimised).

    Args:
        posterior: The model.
        best: Incumbent value on the model's scale.
    """

    def __init__(self, posterior: Posterior, best: float) -> None:
        self.posterior = posterior
        self.best = best

    def value(self, x: Array) -> Array:
        """Log EI at feature rows ``x``."""
        mean, var = self.posterior.predict(x)
        return log_ei(mean, var, self.best)

    def value_and_grad(self, x: Array, columns: Sequence[int]) -> tuple[Array, Array]:
        """Log EI at ``x`` and its derivatives by the feature ``columns``."""
        mean, var, d_mean, d_var = self.posterior.predict_grad(x, columns)
        val, g_mean, g_var = log_ei_grad(mean, var, self.best)
        grad: Array = g_mean[:, None] * d_mean + g_var[:, None] * d_var
        return val, grad


#: Joint draws of the noise-free values at the observed points in :class:`NoisyLogEI`.
NEI_SAMPLES = 32


class NoisyLogEI:
    """Log noisy expected improvement (Letham et al., 2019, "Constrained Bayesian optimization
    with noisy experiments"): the expected improvement averaged over joint posterior draws of
    the noise-free values at the observed points, each draw with its own incumbent (its best
    value among the ``eligible`` points) and the model conditioned on it without noise.

    With noisy results the best *observed* value is a lucky measurement: an incumbent set
    there makes every point look hopeless but the unexplored ones. Here the incumbent is what
    the best point's value may really be, and the uncertainty about which point that is counts.

    Args:
        posterior: The model (with its fitted noise).
        eligible: Which training points (rows of ``posterior.x``) may be the incumbent.
        rng: Draws the samples.
        samples: How many.
    """

    def __init__(
        self,
        posterior: Posterior,
        eligible: npt.NDArray[np.bool_],
        rng: np.random.Generator,
        samples: int = NEI_SAMPLES,
    ) -> None:
        draws = posterior.latent_samples(samples, rng)
        self.best = draws[eligible].min(axis=0)
        self.model = posterior.noiseless()
        self._alpha = self.model.solve(draws)
        self._log_count = math.log(samples)

    def value(self, x: Array) -> Array:
        """Log noisy EI at feature rows ``x``."""
        mean, var = self.model.predict(x, self._alpha)
        each = log_ei(mean, var[:, None], self.best)
        out: Array = scipy.special.logsumexp(each, axis=1) - self._log_count
        return out

    def value_and_grad(self, x: Array, columns: Sequence[int]) -> tuple[Array, Array]:
        """Log noisy EI at ``x`` and its derivatives by the feature ``columns``."""
        mean, var, d_mean, d_var = self.model.predict_grad(x, columns, self._alpha)
        each, g_mean, g_var = log_ei_grad(mean, var[:, None], self.best)
        total = scipy.special.logsumexp(each, axis=1)
        weight = np.exp(each - total[:, None])  # each draw's share of the average
        grad: Array = np.einsum("ms,msc->mc", weight * g_mean, d_mean) + (
            (weight * g_var).sum(axis=1)[:, None] * d_var
        )
        return total - self._log_count, grad


class Sum:
    """The sum of log-scale acquisitions: the log of the product of what they measure (log EI
    plus log probabilities of feasibility is the log of constrained expected improvement).

    Args:
        terms: The acquisitions added, at least one.
    """

    def __init__(self, *terms: Acquisition) -> None:
        if not terms:
            raise ValueError("a sum of acquisitions needs at least one term")
        self.terms = terms

    def value(self, x: Array) -> Array:
        """The sum of the terms' values at ``x``."""
        out: Array = self.terms[0].value(x)
        for term in self.terms[1:]:
            out = out + term.value(x)
        return out

    def value_and_grad(self, x: Array, columns: Sequence[int]) -> tuple[Array, Array]:
        """The sum of the terms' values and gradients at ``x``."""
        val, grad = self.terms[0].value_and_grad(x, columns)
        for term in self.terms[1:]:
            v, g = term.value_and_grad(x, columns)
            val, grad = val + v, grad + g
        return val, grad


#: Raw candidates added after the local-search results in :func:`ranked_by`.
N_RANKED = 64


def log_h(z: Array) -> Array:
    """``log(phi(z) + z * Phi(z))``, stable for every z (EI = sigma * h((mu* - mu) / sigma))."""
    z = np.asarray(z, dtype=np.float64)
    upper = z > -1.0
    if upper.all():
        # The usual case in a local search: the first branch for every z, without the masks.
        whole: Array = np.log(
            np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) + z * scipy.special.ndtr(z)
        )
        return whole
    out = np.empty_like(z)
    # Empty branches are skipped: these run on a handful of points per call, many times.
    if upper.any():
        zu = z[upper]
        out[upper] = np.log(
            np.exp(-0.5 * zu * zu) / math.sqrt(2 * math.pi) + zu * scipy.special.ndtr(zu)
        )
    mid = (~upper) & (z > _Z_ASYMPTOTIC)
    if mid.any():
        zm = z[mid]
        # h(z) = phi(z) * (1 - |z| * erfcx(-z/sqrt2) * sqrt(pi/2)) for z < 0.
        t = np.log(scipy.special.erfcx(-zm * _INV_SQRT2) * np.abs(zm)) + _HALF_LOG_PI_OVER_2
        out[mid] = -0.5 * zm * zm - _HALF_LOG_2PI + _log1mexp(t)
    low = ~(upper | mid)
    if low.any():
        zl = z[low]
        out[low] = -0.5 * zl * zl - _HALF_LOG_2PI - 2.0 * np.log(np.abs(zl))
    return out


def _log1mexp(t: Array) -> Array:
    """``log(1 - exp(t))`` for t < 0, accurate on both sides of -log 2."""
    out = np.empty_like(t)
    near = t > -math.log(2.0)
    if near.all():
        out[:] = np.log(-np.expm1(t))
        return out
    out[near] = np.log(-np.expm1(t[near]))
    out[~near] = np.log1p(-np.exp(t[~near]))
    return out


def log_ei(mean: Array, var: Array, best: float | Array) -> Array:
    """Log expected improvement below ``best`` of a Gaussian ``N(mean, var)``."""
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    out: Array = np.log(sigma) + log_h(z)
    return out


def log_ei_grad(mean: Array, var: Array, best: float | Array) -> tuple[Array, Array, Array]:
    """Log EI and its derivatives with respect to the mean and the variance."""
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    lh = log_h(z)
    # d log h / dz = Phi(z) / h(z), in log space so it stays finite far out.
    ratio = np.exp(scipy.special.log_ndtr(z) - lh)
    d_mean = -ratio / sigma
    d_sigma = 1.0 / sigma - ratio * z / sigma
    d_var = d_sigma / (2.0 * sigma)
    return np.log(sigma) + lh, d_mean, d_var


def score(design: Design, acquisition: Acquisition, u: Array) -> Array:
    """The acquisition at the points ``u``."""
    return acquisition.value(design.features(u))


def ranked_by(
    design: Design,
    acquisition: Acquisition,
    rng: np.random.Generator,
    anchors: Array,
) -> Array:
    """Points of high acquisition, best first: the local-search results, then the best
    candidates.

    The caller takes the first that is not a point it already has, so a batch never repeats a
    point of a discrete space while an almost-as-good one exists.

    Args:
        design: The search space as the optimiser sees it.
        acquisition: What to maximise (e.g. :class:`LogEI`).
        rng: Source of candidates.
        anchors: Rows of good observed points: candidates are drawn around them and the best
            of them start a local search too.

    Returns:
        Rows of ``design.n_dims`` numbers, highest acquisition first.
    """
    engine = qmc.Sobol(design.n_dims, scramble=True, rng=rng)
    cands = [design.from_unit(engine.random(N_CANDIDATES))]
    if len(anchors):
        for scale in (0.02, 0.1):
            reps = np.repeat(anchors, max(1, N_LOCAL_CANDIDATES // (2 * len(anchors))), axis=0)
            cands.append(design.perturb(reps, scale, rng))
    u = np.vstack(cands)
    values = score(design, acquisition, u)
    order = np.argsort(-values, kind="stable")
    starts: list[Array] = []
    for i in order:
        if len(starts) >= N_LOCAL_STARTS:
            break
        if not any(np.array_equal(u[i], s) for s in starts):
            starts.append(u[i].copy())
    for a in anchors[:1]:
        if not any(np.array_equal(a, s) for s in starts):
            starts.append(a.copy())
    cand, vals = _local_search(design, acquisition, np.array(starts), rng)
    top = order[:N_RANKED]
    rows = np.vstack([cand, u[top]])
    scores = np.concatenate([vals, values[top]])
    out: Array = rows[np.argsort(-scores, kind="stable")]
    return out


def _local_search(
    design: Design, acquisition: Acquisition, starts: Array, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Improves every start at once; returns the points and their acquisition values."""
    u = starts.copy()
    value = score(design, acquisition, u)
    for _ in range(LOCAL_ROUNDS):
        improved = False
        if design.float_dims:
            u2, v2 = _continuous_step(design, acquisition, u)
            better = v2 > value + 1e-12
            if np.any(better):
                u[better], value[better], improved = u2[better], v2[better], True
        if not design.discrete_dims:
            break
        for dim in design.discrete_dims:
            active = design.active(u)[:, dim]
            rows: list[Array] = []
            # Each start's trials are one block [begin, end) of `trials`, starts in order.
            blocks: list[tuple[int, int, int]] = []
            end = 0
            for s in np.flatnonzero(active):
                opts = design.options(float(u[s, dim]), dim, rng)
                if not len(opts):
                    continue
                trial = np.repeat(u[s][None, :], len(opts), axis=0)
                trial[:, dim] = opts
                rows.append(trial)
                blocks.append((int(s), end, end + len(opts)))
                end += len(opts)
            if not blocks:
                continue
            trials = np.vstack(rows)
            vals = score(design, acquisition, trials)
            for row, begin, stop in blocks:
                j = begin + int(np.argmax(vals[begin:stop]))
                if vals[j] > value[row] + 1e-12:
                    u[row], value[row], improved = trials[j], vals[j], True
        if not improved:
            break
    return u, value


def _continuous_step(design: Design, acquisition: Acquisition, u: Array) -> tuple[Array, Array]:
    """One L-BFGS-B run over the active float coordinates of every row at once.

    The rows are independent, so the sum of their acquisition values is maximised jointly: one
    optimiser loop and one batched model evaluation per iteration instead of one per row.
    """
    active = design.active(u)
    mask = np.zeros_like(active)
    fdims = list(design.float_dims)
    mask[:, fdims] = active[:, fdims]
    if not mask.any():
        return u, score(design, acquisition, u)
    cols = [design.feature_column(d) for d in fdims]
    base = design.features(u)
    sub = mask[:, fdims]
    # Where the free coordinates sit: in `sub` (row-major, as boolean indexing orders them)
    # and in the feature matrix.
    rows, which = np.nonzero(sub)
    feature_cols = np.asarray(cols)[which]

    def objective(z: Array) -> tuple[float, Array]:
        x = base.copy()
        x[rows, feature_cols] = z
        val, grad = acquisition.value_and_grad(x, cols)
        return -float(np.sum(val)), -grad[rows, which]

    z, _ = lbfgsb(objective, u[:, fdims][sub], [(0.0, 1.0)] * int(sub.sum()), maxiter=100)
    out = u.copy()
    block = out[:, fdims]
    block[sub] = np.clip(z, 0.0, 1.0)
    out[:, fdims] = block
    return out, score(design, acquisition, out)
