"""Pareto fronts and the log expected hypervolume improvement of ``_multi``, numpy only.

Objectives are minimised. The hypervolume of a set ``Y`` against a reference point ``r`` (the
volume of the points between ``r`` and something in ``Y``) has a scalarised form (Golovin and
Zhang, 2020, "Random hypervolume scalarizations for provable multi-objective black box
optimization"; used in Vizier's GP bandit): with ``m`` objectives and ``w`` uniform on the
positive part of the unit sphere,

    HV(Y) = c_m * E_w[max_{y in Y} s_w(y)],   s_w(y) = min_i (max(0, r_i - y_i) / w_i) ** m,

``c_m`` a constant. Since ``max(a, b) - b = max(0, a - b)``, the improvement a new point ``p``
brings is ``c_m * E_w[max(0, s_w(p) - max_{y in Y} s_w(y))]``: one expectation over directions,
whatever ``m``, with no box decomposition. :class:`LogHvi` averages it over fixed directions and
fixed normal draws of a Gaussian posterior (common random numbers: every candidate is judged
by the same draws, so comparisons between candidates are much surer than each estimate), and
returns its logarithm, softened so that it stays finite and ordered where no draw improves.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.special
from scipy.stats import qmc

Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Width of the softened positive part of ``s_w(p) - b_w`` (on the standardised scale of the
#: outputs): below it the improvement decays like ``exp((s - b) / width)`` instead of being 0,
#: so candidates that improve in no draw are still ranked by how close they come. Measured
#: (``docs/algorithms.md``): 1e-3 and 1e-4 alike, 1e-2 worse, 1e-1 much worse (near misses
#: then count as improvements).
SOFTNESS = 1e-3
# Below this log ratio of the softened improvement to the front's distance, the first-order
# expansion of ``(b + d) ** m - b ** m`` is exact to double precision.
_LOG_RATIO_SMALL = -30.0
# Below this, log(softplus(x)) = x to double precision.
_SOFTPLUS_LINEAR = -30.0
# Rows compared at once when finding a Pareto front.
_BLOCK = 256


def pareto_mask(y: Array) -> BoolArray:
    """Which rows of ``y`` (minimised) no other row dominates; of equal rows, the first.

    Rows are visited in lexicographic order, where whatever dominates a row comes before it,
    a block at a time: a row of a block is on the front unless a row before it in the block,
    or one of the front so far, is at least as good in every objective.
    """
    n = len(y)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(y.T[::-1])
    ys = y[order]
    keep = np.zeros(n, dtype=bool)
    front = ys[:0]
    for start in range(0, n, _BLOCK):
        block = ys[start : start + _BLOCK]
        # covered[i, j]: row j of the block, before row i, is at least as good everywhere.
        covered = np.all(block[None, :, :] <= block[:, None, :], axis=2)
        dominated = np.any(covered & np.tri(len(block), k=-1, dtype=bool), axis=1)
        if len(front):
            dominated |= np.any(np.all(front[None, :, :] <= block[:, None, :], axis=2), axis=1)
        keep[start : start + len(block)] = ~dominated
        front = np.vstack([front, block[~dominated]])
    mask[order[keep]] = True
    return mask


def pareto_order(y: Array, limit: int | None = None) -> npt.NDArray[np.intp]:
    """Rows of ``y`` by Pareto layer (the front, then the front of the rest, ...), within a
    layer by index; with ``limit``, only the layers that hold the first ``limit`` rows."""
    left = np.arange(len(y))
    out: list[npt.NDArray[np.intp]] = []
    count = 0
    while len(left) and (limit is None or count < limit):
        mask = pareto_mask(y[left])
        out.append(left[mask])
        count += int(mask.sum())
        left = left[~mask]
    return np.concatenate(out) if out else np.empty(0, dtype=np.intp)


def directions(m: int, n: int, rng: np.random.Generator) -> Array:
    """``n`` quasi-random unit vectors of the positive part of the ``m``-sphere, uniformly
    spread (normalised absolute values of scrambled Sobol normal draws)."""
    g = np.abs(normal_draws(m, n, rng))
    g = np.maximum(g, 1e-12)
    out: Array = g / np.linalg.norm(g, axis=1, keepdims=True)
    return out


def normal_draws(m: int, n: int, rng: np.random.Generator) -> Array:
    """``n`` quasi-random draws of ``m`` independent standard normals (scrambled Sobol)."""
    s = qmc.Sobol(m, scramble=True, rng=rng).random(n)
    out: Array = scipy.special.ndtri(np.clip(s, 1e-12, 1.0 - 1e-12))
    return out


def distances(y: Array, ref: Array, w: Array) -> Array:
    """``min_i max(0, ref_i - y_i) / w_i`` for each row of ``y`` and direction: shape
    (len(y), len(w)); ``s_w`` of the module docstring is its ``m``-th power."""
    gap = np.maximum(ref - y, 0.0)
    out: Array = np.min(gap[:, None, :] / w[None, :, :], axis=2)
    return out


class LogHvi:
    """Log of the expected hypervolume improvement over a set of points (module docstring).

    Args:
        ref: The reference point, shape (m,).
        w: Directions, shape (W, m), unit vectors with positive entries.
        draws: Standard normal draws, shape (S, m): the posterior at a candidate is sampled as
            ``mean + sd * draws``.
        points: The points improved on, shape (k, m) (dominated ones change nothing).
    """

    def __init__(self, ref: Array, w: Array, draws: Array, points: Array) -> None:
        self.ref = np.asarray(ref, dtype=np.float64)
        self.w = np.asarray(w, dtype=np.float64)
        self.inv_w = 1.0 / self.w
        self.draws = np.asarray(draws, dtype=np.float64)
        self.m = len(self.ref)
        # Per direction, the largest distance of a point: its improvement threshold.
        self.b = np.zeros(len(self.w))
        self._prepare()
        self.add(np.asarray(points, dtype=np.float64).reshape(-1, self.m))

    def add(self, points: Array) -> None:
        """Adds points (rows) to the set improved on."""
        if len(points):
            self.b = np.maximum(self.b, np.max(distances(points, self.ref, self.w), axis=0))
            self._prepare()

    def _prepare(self) -> None:
        # Far below the threshold (x = (s - b) / SOFTNESS below `_cut`), the log improvement
        # is `_const + _slope * x` to double precision: most draws of most candidates are
        # there, and skip the exact cases.
        m = self.m
        log_tau = math.log(SOFTNESS)
        pos = self.b > 0.0
        with np.errstate(divide="ignore"):
            log_b = np.log(self.b)
        self._const = np.where(pos, math.log(m) + (m - 1) * log_b + log_tau, m * log_tau)
        self._slope = np.where(pos, 1.0, float(m))
        self._cut = np.where(
            pos, np.minimum(_SOFTPLUS_LINEAR, _LOG_RATIO_SMALL + log_b - log_tau), _SOFTPLUS_LINEAR
        )

    def value(self, mean: Array, var: Array) -> Array:
        """The log improvement (up to a constant) of candidates with posterior ``mean`` and
        ``var``, shape (N, m) each; returns shape (N,)."""
        return self._evaluate(mean, var, False)[0]

    def value_grad(self, mean: Array, var: Array) -> tuple[Array, Array, Array]:
        """:meth:`value` and its derivatives by ``mean`` and by ``var``, shape (N, m) each."""
        val, d_mean, d_var = self._evaluate(mean, var, True)
        assert d_mean is not None and d_var is not None
        return val, d_mean, d_var

    def _evaluate(
        self, mean: Array, var: Array, with_grad: bool
    ) -> tuple[Array, Array | None, Array | None]:
        m = self.m
        n = len(mean)
        sd = np.sqrt(np.maximum(var, 0.0))
        # Posterior draws (N, S, m); their distance s per direction (N, S, W), the minimum
        # over objectives, and the objective that sets it.
        f = mean[:, None, :] + sd[:, None, :] * self.draws[None, :, :]
        gap = np.maximum(self.ref - f, 0.0)
        s = gap[:, :, 0, None] * self.inv_w[:, 0]
        which = np.zeros(s.shape, dtype=np.intp) if with_grad else None
        for i in range(1, m):
            t = gap[:, :, i, None] * self.inv_w[:, i]
            if which is not None:
                which[t < s] = i
            s = np.minimum(s, t)
        # Softened improvement of the m-th powers, (b + d) ** m - b ** m with d the softplus
        # of s - b of width SOFTNESS, in logs: linear in x far below, exact cases near.
        x = (s - self.b) / SOFTNESS
        log_imp = self._const + self._slope * x
        d_x = np.broadcast_to(self._slope, x.shape).copy() if with_grad else None
        near = x >= self._cut
        if near.any():
            b = np.broadcast_to(self.b, x.shape)[near]
            log_imp[near], d_near = _log_improvement(x[near], b, m)
            if d_x is not None:
                d_x[near] = d_near
        flat = log_imp.reshape(n, -1)
        top = np.max(flat, axis=1, keepdims=True)
        weights = np.exp(flat - top)
        total = weights.sum(axis=1, keepdims=True)
        val: Array = (top + np.log(total))[:, 0] - math.log(flat.shape[1])
        if which is None or d_x is None:
            return val, None, None
        # d val / d s: the softmax weight of each (draw, direction) in the log mean times
        # d log_imp / d x / SOFTNESS; d s / d f_i = -1 / w_i for the objective that sets s,
        # while inside the reference point.
        coef = (weights / total).reshape(x.shape) * d_x / SOFTNESS
        coef = np.where(s > 0.0, coef * self.inv_w[np.arange(len(self.w)), which], 0.0)
        d_mean = np.empty((n, m))
        d_sd = np.empty((n, m))
        for i in range(m):
            per_draw = np.sum(np.where(which == i, coef, 0.0), axis=2)  # (N, S)
            d_mean[:, i] = -per_draw.sum(axis=1)
            d_sd[:, i] = -per_draw @ self.draws[:, i]
        d_var = np.where(sd > 0.0, d_sd / (2.0 * np.maximum(sd, 1e-300)), 0.0)
        return val, d_mean, d_var


def _log_improvement(x: Array, b: Array, m: int) -> tuple[Array, Array]:
    """``log((b + d) ** m - b ** m)`` with ``d = SOFTNESS * softplus(x)``, and its derivative
    by ``x`` (1-D arrays), by cases that stay finite: b = 0, d tiny next to b, the rest."""
    ls = _log_softplus(x)
    log_d = math.log(SOFTNESS) + ls
    ratio = np.exp(_log_sigmoid(x) - ls)  # sigmoid(x) / softplus(x)
    out = m * log_d
    grad = m * ratio
    pos = b > 0.0
    if pos.any():
        bp, xp, log_dp = b[pos], x[pos], log_d[pos]
        log_b = np.log(bp)
        lq = log_dp - log_b
        small = lq < _LOG_RATIO_SMALL
        q = np.exp(np.minimum(lq, 700.0))
        u = m * np.log1p(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            exact = m * log_b + np.log(np.expm1(u))
            d_exact = m * SOFTNESS * scipy.special.expit(xp) / (bp * (1.0 + q) * -np.expm1(-u))
        out[pos] = np.where(small, math.log(m) + (m - 1) * log_b + log_dp, exact)
        grad[pos] = np.where(small, ratio[pos], d_exact)
    return out, grad


def _log_softplus(x: Array) -> Array:
    """``log(log(1 + exp(x)))``, finite for every x."""
    with np.errstate(divide="ignore"):
        out: Array = np.where(
            x < _SOFTPLUS_LINEAR, x, np.log(np.logaddexp(0.0, np.maximum(x, _SOFTPLUS_LINEAR)))
        )
    return out


def _log_sigmoid(x: Array) -> Array:
    out: Array = -np.logaddexp(0.0, -x)
    return out
