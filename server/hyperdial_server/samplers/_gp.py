"""Gaussian-process regression for the Bayesian sampler: numpy and scipy only.

The model works on a feature matrix built by the sampler (``_bayes``): every parameter is one
*group* of feature columns with its own length scale (automatic relevance determination).

* A numeric group holds numbers in the unit cube (one column, plus a 0/1 "active" column for a
  conditional parameter); its squared distance is the squared Euclidean one.
* A categorical group holds one column of category codes; its squared distance is 0 between
  equal codes and 1 between different ones (Hamming), which is the squared Euclidean distance
  of a one-hot encoding scaled by ``1/sqrt(2)``.

The kernel is Matérn-5/2 on ``r**2 = sum_g rho_g * d_g**2`` (``rho_g`` the inverse squared
length scale of group ``g``) times a signal variance, plus homoscedastic noise (and, for
outputs that are estimates rather than measurements, a known variance of their own per point:
``extra_noise``). Since every ``d_g**2`` is a squared Euclidean distance of an explicit
feature map, the kernel is positive definite for any data.

Hyperparameters (log inverse squared length scales, log signal variance, log noise variance)
are fitted by maximising the log marginal likelihood plus log priors with L-BFGS-B and
analytic gradients (through ``_lbfgsb``), from a few starting points (a warm start, when
given, among them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import scipy.linalg
from scipy.linalg.lapack import dpotrf as _dpotrf
from scipy.linalg.lapack import dpotri as _dpotri
from scipy.linalg.lapack import dpotrs as _dpotrs
from scipy.linalg.lapack import dtrtrs as _dtrtrs

from hyperdial_server.samplers._lbfgsb import lbfgsb

Array = npt.NDArray[np.float64]

_LOG_2PI = math.log(2.0 * math.pi)

#: Bounds of the noise variance, on the standardised output scale. The floor keeps the kernel
#: matrix well conditioned; objectives are often deterministic, so it is low.
NOISE_VAR_BOUNDS = (1e-6, 1.0)
#: Bounds of the signal variance (outputs are standardised, so it is near 1).
SIGNAL_VAR_BOUNDS = (0.05, 20.0)
#: Bounds of the length scales (features lie in the unit cube).
LENGTH_SCALE_BOUNDS = (5e-3, 1e3)
#: Above this many points, ``fit`` starts from a fit on ``SUBSET_FIT_SIZE`` random ones.
SUBSET_FIT_ABOVE = 100
SUBSET_FIT_SIZE = 64
#: Most L-BFGS-B iterations of the refinement on all points.
REFINE_MAX_ITER = 8
#: Random starting points of a fit (around the default), scored with the default and any
#: warm start; the ``OPTIMISED_STARTS`` best of them are refined with L-BFGS-B.
RANDOM_STARTS = 4
OPTIMISED_STARTS = 1
# Prior of the log noise variance: log-normal, median 1e-4, wide.
_NOISE_PRIOR = (math.log(1e-4), 3.0)
# Prior of the log signal variance: log-normal around 1.
_SIGNAL_PRIOR = (0.0, 1.0)


@dataclass(frozen=True)
class Group:
    """One parameter's block of feature columns.

    Attributes:
        columns: Indices of its columns in the feature matrix.
        categorical: Whether the (single) column holds category codes compared by equality.
    """

    columns: tuple[int, ...]
    categorical: bool = False


@dataclass(frozen=True)
class Hyper:
    """Fitted hyperparameters.

    Attributes:
        log_rho: Log inverse squared length scale of each group.
        log_signal: Log signal variance.
        log_noise: Log noise variance.
    """

    log_rho: tuple[float, ...]
    log_signal: float
    log_noise: float

    def vector(self) -> Array:
        """The hyperparameters as one vector, in the order of ``from_vector``."""
        return np.array([*self.log_rho, self.log_signal, self.log_noise], dtype=np.float64)

    @staticmethod
    def from_vector(theta: Array) -> Hyper:
        """The inverse of ``vector``."""
        return Hyper(tuple(float(v) for v in theta[:-2]), float(theta[-2]), float(theta[-1]))


def matern52(r2: Array) -> Array:
    """Matérn-5/2 correlation as a function of the squared scaled distance."""
    s = np.sqrt(5.0 * np.maximum(r2, 0.0))
    out: Array = (1.0 + s + s * s / 3.0) * np.exp(-s)
    return out


def matern52_grad(r2: Array) -> Array:
    """Derivative of ``matern52`` with respect to ``r2`` (finite at 0: -5/6)."""
    s = np.sqrt(5.0 * np.maximum(r2, 0.0))
    out: Array = (-5.0 / 6.0) * (1.0 + s) * np.exp(-s)
    return out


def _matern52_and_grad(r2: Array) -> tuple[Array, Array]:
    """``matern52(r2)`` and ``matern52_grad(r2)`` sharing the square root and exponential.

    The same operations in the same order as the two functions, so the same numbers.
    """
    s = np.sqrt(5.0 * np.maximum(r2, 0.0))
    e = np.exp(-s)
    one_s = 1.0 + s
    corr: Array = (one_s + s * s / 3.0) * e
    grad: Array = (-5.0 / 6.0) * one_s * e
    return corr, grad


def group_sq_dists(a: Array, b: Array, groups: Sequence[Group]) -> Array:
    """Per-group squared distances between the rows of ``a`` and ``b``: shape (G, na, nb)."""
    out = np.empty((len(groups), a.shape[0], b.shape[0]), dtype=np.float64)
    for g, group in enumerate(groups):
        if group.categorical:
            c = group.columns[0]
            out[g] = a[:, c, None] != b[None, :, c]
        else:
            cols = list(group.columns)
            diff = a[:, None, cols] - b[None, :, cols]
            out[g] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def scaled_sq_dists(a: Array, b: Array, groups: Sequence[Group], rho: Array) -> Array:
    """``sum_g rho_g * d_g**2`` between the rows of ``a`` and ``b`` without a per-group stack."""
    num_cols: list[int] = []
    num_scale: list[float] = []
    r2 = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    for g, group in enumerate(groups):
        if group.categorical:
            c = group.columns[0]
            r2 += rho[g] * (a[:, c, None] != b[None, :, c])
        else:
            num_cols.extend(group.columns)
            num_scale.extend([math.sqrt(rho[g])] * len(group.columns))
    if num_cols:
        scale = np.asarray(num_scale)
        sa = a[:, num_cols] * scale
        sb = b[:, num_cols] * scale
        cross = sa @ sb.T
        r2 += np.einsum("ij,ij->i", sa, sa)[:, None] + np.einsum("ij,ij->i", sb, sb)[None, :]
        r2 -= 2.0 * cross
        np.maximum(r2, 0.0, out=r2)
    return r2


#: Prior of each inverse squared length scale rho: log p(rho) = -(a / rho + b * rho) + const,
#: (a, b) below. Its mode, rho = sqrt(a / b) = 1, is a length scale of the unit cube's side; a
#: long length scale costs a / rho, so a parameter the data say nothing about settles at a few
#: times the cube (the model is almost flat along it, yet still defined) rather than at tens of
#: times, where the log-normal prior with a median growing with the square root of the
#: dimension (Hvarfner et al., 2024) left it. Measured in bench/README.md: that prior made 15-30-D
#: problems no better than random search at 60 trials, and this one is better on every problem
#: of both sets.
_INV_SQ_LENGTH_PRIOR = (0.1, 0.1)


def _start_log_length_scale(n_groups: int) -> float:
    # Where a fit starts: a smooth model (a long length scale, growing with the dimension) that
    # the data shorten along the parameters that matter.
    return math.sqrt(2.0) + 0.5 * math.log(max(n_groups, 1)) - math.log(4.0)


def _bounds(n_groups: int) -> list[tuple[float, float]]:
    lo_l, hi_l = LENGTH_SCALE_BOUNDS
    rho = (-2.0 * math.log(hi_l), -2.0 * math.log(lo_l))
    return [rho] * n_groups + [
        (math.log(SIGNAL_VAR_BOUNDS[0]), math.log(SIGNAL_VAR_BOUNDS[1])),
        (math.log(NOISE_VAR_BOUNDS[0]), math.log(NOISE_VAR_BOUNDS[1])),
    ]


def neg_log_posterior(
    theta: Array, dists: Array, y: Array, extra: Array | None = None
) -> tuple[float, Array]:
    """Negative (log marginal likelihood + log prior) of the hyperparameters and its gradient.

    Args:
        theta: ``Hyper.vector()``: G log inverse squared length scales, log signal variance,
            log noise variance.
        dists: Per-group squared distances of the training points, shape (G, n, n).
        y: Training outputs (standardised), shape (n,).
        extra: Noise variance of each training output on top of the fitted one, shape (n,),
            or ``None`` (none).

    Returns:
        The value and its gradient with respect to ``theta``. A kernel matrix that is not
        positive definite in floating point gives ``inf`` and a zero gradient.
    """
    flat = np.ascontiguousarray(dists).reshape(dists.shape[0], -1)
    value, grad = _neg_log_posterior(theta, flat, y, extra, True)
    assert grad is not None
    return value, grad


def _neg_log_value(theta: Array, flat: Array, y: Array, extra: Array | None = None) -> float:
    """The value of ``neg_log_posterior`` alone (no gradient work)."""
    return _neg_log_posterior(theta, flat, y, extra, False)[0]


def _neg_log_value_and_grad(
    theta: Array, flat: Array, y: Array, extra: Array | None = None
) -> tuple[float, Array]:
    """``neg_log_posterior`` on distances flattened to (G, n * n) (the L-BFGS-B objective)."""
    value, grad = _neg_log_posterior(theta, flat, y, extra, True)
    assert grad is not None
    return value, grad


def _neg_log_posterior(
    theta: Array, flat: Array, y: Array, extra: Array | None, with_grad: bool
) -> tuple[float, Array | None]:
    # This runs dozens of times per fit on small matrices, where the number of numpy and
    # LAPACK calls, not their arithmetic, sets the cost: LAPACK is called directly (the
    # wrappers' checks add up), work buffers are overwritten in place, and the gradient part
    # is skipped when only the value is wanted. `flat` holds the per-group squared distances
    # as (G, n * n), so `rho @ flat` is the one matrix product `np.tensordot` would make.
    n_groups = flat.shape[0]
    n = y.shape[0]
    rho = np.exp(theta[:n_groups])
    signal = math.exp(theta[n_groups])
    noise = math.exp(theta[n_groups + 1])
    r2 = np.dot(rho.reshape(1, n_groups), flat).reshape(n, n)
    corr, corr_grad = _matern52_and_grad(r2)
    k = signal * corr
    c = k.copy()
    c.ravel()[:: n + 1] += noise
    if extra is not None:
        c.ravel()[:: n + 1] += extra
    chol, info = _dpotrf(c, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        return math.inf, np.zeros_like(theta) if with_grad else None
    alpha, _ = _dpotrs(chol, y, lower=1)
    log_det = 2.0 * float(np.log(chol.diagonal()).sum())
    nll = 0.5 * float(y @ alpha) + 0.5 * log_det + 0.5 * n * _LOG_2PI
    grad: Array | None = None
    if with_grad:
        # The strict upper triangle of `chol` is zero (clean=1), and stays so in the inverse:
        # adding the transpose makes it symmetric, doubling the diagonal (halved back; both
        # exact in floating point).
        c_inv, _ = _dpotri(chol, lower=1, overwrite_c=1)
        c_inv += c_inv.T
        c_inv.ravel(order="K")[:: n + 1] *= 0.5
        # d(log likelihood)/d(theta_j) = 1/2 tr((alpha alpha^T - C^-1) dC/dtheta_j).
        w = np.outer(alpha, alpha)
        w -= c_inv
        grad = np.empty_like(theta)
        a = w * (signal * corr_grad)
        grad[:n_groups] = -0.5 * rho * np.dot(flat, a.reshape(n * n, 1)).reshape(n_groups)
        grad[n_groups] = -0.5 * float(np.sum(w * k))
        grad[n_groups + 1] = -0.5 * noise * float(np.trace(w))
    # Priors. Length scales: on rho = exp(theta_g) (see _INV_SQ_LENGTH_PRIOR), whose
    # derivative by theta_g is rho itself.
    pa, pb = _INV_SQ_LENGTH_PRIOR
    nll += float(np.sum(pa / rho + pb * rho))
    if grad is not None:
        grad[:n_groups] += pb * rho - pa / rho
    # Signal and noise variances: Gaussian in log space.
    for j, (m, sd) in ((n_groups, _SIGNAL_PRIOR), (n_groups + 1, _NOISE_PRIOR)):
        nll += (theta[j] - m) ** 2 / (2.0 * sd * sd)
        if grad is not None:
            grad[j] += (theta[j] - m) / (sd * sd)
    return nll, grad


def default_hyper(n_groups: int) -> Hyper:
    """A neutral starting point: the same long length scale for every parameter."""
    log_rho = -2.0 * _start_log_length_scale(n_groups)
    return Hyper((log_rho,) * n_groups, 0.0, math.log(1e-3))


def fit(
    x: Array,
    y: Array,
    groups: Sequence[Group],
    rng: np.random.Generator,
    warm: Hyper | None = None,
    *,
    fixed_noise: float | None = None,
    min_noise: float | None = None,
    extra_noise: Array | None = None,
) -> Hyper:
    """Fits the hyperparameters by maximum a posteriori estimation.

    Starting points are the default, ``warm`` (when it has the right size) and
    ``RANDOM_STARTS`` draws around the default; the ``OPTIMISED_STARTS`` best of them by
    posterior value are refined with L-BFGS-B, and the best result wins.

    Args:
        x: Training features, shape (n, F).
        y: Standardised training outputs, shape (n,).
        groups: The feature groups.
        rng: Source of the random starting points.
        warm: Hyperparameters of an earlier fit on related data, tried first. Within one
            model fit only: the fit on a subset of many points starts the fit on all of them,
            and in a multi-objective ask each position's scalarisation starts from the
            previous position's fit (``_bayes._batch``). Nothing carries a fit from one ask to
            the next (that was tried and made results worse; see ``docs/algorithms.md``).
        fixed_noise: A noise variance to keep instead of fitting one (a deterministic
            objective: ``NOISE_VAR_BOUNDS[0]``, the floor that keeps the kernel matrix well
            conditioned).
        min_noise: The lowest noise variance fitted, instead of ``NOISE_VAR_BOUNDS[0]``.
        extra_noise: Noise variance of each output on top of the fitted one, shape (n,)
            (values that are estimates rather than measurements), or ``None`` (none).

    Returns:
        The fitted hyperparameters.
    """
    n_groups = len(groups)
    max_iter = 200
    random_starts = RANDOM_STARTS
    if len(y) > SUBSET_FIT_ABOVE and warm is None:
        # Large data: fit a random subset first (cheap), then refine on all points from there;
        # hyperparameters change little between the two, so the refinement is short.
        sub = rng.choice(len(y), SUBSET_FIT_SIZE, replace=False)
        warm = fit(
            x[sub],
            y[sub],
            groups,
            rng,
            None,
            fixed_noise=fixed_noise,
            min_noise=min_noise,
            extra_noise=None if extra_noise is None else extra_noise[sub],
        )
        random_starts = 0
        max_iter = REFINE_MAX_ITER
    # Distances once per fit, flattened for the likelihood (they do not depend on theta).
    flat = group_sq_dists(x, x, groups).reshape(n_groups, -1)
    bounds = _bounds(n_groups)
    if fixed_noise is not None:
        # Equal bounds: L-BFGS-B holds the variable there.
        bounds[-1] = (math.log(fixed_noise), math.log(fixed_noise))
    elif min_noise is not None:
        bounds[-1] = (math.log(min_noise), bounds[-1][1])
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    base = np.clip(default_hyper(n_groups).vector(), lo, hi)
    starts = [base]
    if warm is not None and len(warm.log_rho) == n_groups:
        starts.insert(0, np.clip(warm.vector(), lo, hi))
    for _ in range(random_starts):
        jitter = rng.normal(0.0, 1.0, size=base.shape)
        jitter[:n_groups] *= 1.5
        starts.append(np.clip(base + jitter, lo, hi))
    scored = sorted(
        ((_neg_log_value(s, flat, y, extra_noise), i) for i, s in enumerate(starts)),
        key=lambda t: t[0],
    )
    best_theta = starts[scored[0][1]]
    best_value = scored[0][0]
    for _, i in scored[:OPTIMISED_STARTS]:
        theta, value = lbfgsb(
            lambda t: _neg_log_value_and_grad(t, flat, y, extra_noise),
            starts[i],
            bounds,
            maxiter=max_iter,
            ftol=1e-7,
            gtol=1e-4,
        )
        if np.isfinite(value) and value < best_value:
            best_value = value
            best_theta = theta
    return Hyper.from_vector(best_theta)


class Posterior:
    """The GP posterior given training data and hyperparameters.

    ``condition_on`` adds observations (e.g. fantasies of pending points) by extending the
    Cholesky factor, in O(n**2) per point, without refitting the hyperparameters.

    Args:
        x: Training features, shape (n, F).
        y: Training outputs, shape (n,).
        groups: The feature groups.
        hyper: The hyperparameters.
        extra_noise: Noise variance of each training output on top of ``hyper``'s, shape
            (n,), or ``None`` (none). Observations added later have none.
    """

    def __init__(
        self,
        x: Array,
        y: Array,
        groups: Sequence[Group],
        hyper: Hyper,
        extra_noise: Array | None = None,
    ) -> None:
        self.groups = tuple(groups)
        self.hyper = hyper
        self.rho = np.exp(np.asarray(hyper.log_rho, dtype=np.float64))
        self.signal = math.exp(hyper.log_signal)
        self.noise = math.exp(hyper.log_noise)
        self.x = np.array(x, dtype=np.float64)
        self.y = np.array(y, dtype=np.float64)
        # What `scaled_sq_dists` derives from the groups on every call, once: the acquisition
        # search predicts at a few points hundreds of times per ask.
        num_cols: list[int] = []
        num_scale: list[float] = []
        self._categorical: list[tuple[int, np.float64]] = []
        self._rho_col = np.zeros(self.x.shape[1])
        for g, group in enumerate(self.groups):
            if group.categorical:
                self._categorical.append((group.columns[0], self.rho[g]))
            else:
                num_cols.extend(group.columns)
                num_scale.extend([math.sqrt(self.rho[g])] * len(group.columns))
            for c in group.columns:
                self._rho_col[c] = self.rho[g]
        self._num_cols = np.asarray(num_cols, dtype=np.intp)
        self._num_scale = np.asarray(num_scale)
        self._columns: dict[tuple[int, ...], tuple[npt.NDArray[np.intp], Array, Array]] = {}
        self._scale_training()
        k = self.kernel(self.x, self.x)
        k[np.diag_indices(len(self.y))] += self.noise
        if extra_noise is not None:
            k[np.diag_indices(len(self.y))] += extra_noise
        self._chol = _robust_cholesky(k)
        self._refresh()

    def _refresh(self) -> None:
        self.alpha = scipy.linalg.cho_solve((self._chol, True), self.y, check_finite=False)

    def _scale_training(self) -> None:
        """Caches the training points' side of ``scaled_sq_dists`` (after ``x`` changes)."""
        if len(self._num_cols):
            self._sx = self.x[:, self._num_cols] * self._num_scale
            self._sx_sq = np.einsum("ij,ij->i", self._sx, self._sx)
        self._columns.clear()

    def _sq_dists(self, xc: Array) -> Array:
        """``scaled_sq_dists(xc, self.x, ...)``: the same operations in the same order."""
        r2: Array | None = None
        for c, rho_g in self._categorical:
            term = rho_g * (xc[:, c, None] != self.x[None, :, c])
            r2 = term if r2 is None else r2 + term
        if len(self._num_cols):
            # (Column selection gives a Fortran-ordered array, and the matrix product below
            # depends on the order in its last bits: keep it rather than use `xc` as it is.)
            sa = xc[:, self._num_cols] * self._num_scale
            cross = sa @ self._sx.T
            sq = np.einsum("ij,ij->i", sa, sa)[:, None] + self._sx_sq[None, :]
            if r2 is None:
                r2 = sq
            else:
                r2 += sq
            r2 -= 2.0 * cross
            np.maximum(r2, 0.0, out=r2)
        if r2 is None:
            r2 = np.zeros((xc.shape[0], self.x.shape[0]))
        return r2

    def kernel(self, a: Array, b: Array) -> Array:
        """Kernel matrix between the rows of ``a`` and ``b`` (no noise)."""
        out: Array = self.signal * matern52(scaled_sq_dists(a, b, self.groups, self.rho))
        return out

    def predict(self, xc: Array, alpha: Array | None = None) -> tuple[Array, Array]:
        """Posterior mean and variance (of the latent function) at the rows of ``xc``.

        Args:
            xc: Points, shape (m, F).
            alpha: ``C^-1 y`` of other outputs at the same training points, shape (n, S)
                (:meth:`solve`): the means of those, shape (m, S), instead of this model's.
        """
        kx = self.signal * matern52(self._sq_dists(xc))
        mean: Array = kx @ (self.alpha if alpha is None else alpha)
        v = _solve_lower(self._chol, kx.T, False)
        var = self.signal - np.einsum("ij,ij->j", v, v)
        return mean, np.maximum(var, 1e-12 * self.signal)

    def predict_grad(
        self, xc: Array, columns: Sequence[int], alpha: Array | None = None
    ) -> tuple[Array, Array, Array, Array]:
        """Mean, variance and their gradients with respect to numeric ``columns`` of ``xc``.

        Args:
            xc: Points, shape (m, F).
            columns: Numeric feature columns to differentiate by.
            alpha: As for :meth:`predict`: the means (m, S) and their gradients (m, S,
                len(columns)) of those outputs instead.

        Returns:
            ``(mean, var, d_mean, d_var)``; the gradients have shape (m, len(columns)).
        """
        r2 = self._sq_dists(xc)
        corr, corr_grad = _matern52_and_grad(r2)
        kx = self.signal * corr
        dk_dr2 = self.signal * corr_grad
        mean: Array = kx @ (self.alpha if alpha is None else alpha)
        v = _solve_lower(self._chol, kx.T, False)
        var = self.signal - np.einsum("ij,ij->j", v, v)
        # C^-1 k(x) for the variance gradient.
        ck = _solve_lower(self._chol, v, True).T
        cols = tuple(columns)
        cached = self._columns.get(cols)
        if cached is None:
            index = np.asarray(cols, dtype=np.intp)
            cached = (index, self.x[:, index], 2.0 * self._rho_col[index])
            self._columns[cols] = cached
        index, x_cols, two_rho = cached
        # dr2/dx_f = 2 rho_f (x_f - X_if), shape (m, n, |cols|).
        diff = xc[:, index][:, None, :] - x_cols[None, :, :]
        dr2 = two_rho * diff
        dk = dk_dr2[:, :, None] * dr2
        if alpha is None:
            d_mean = np.einsum("mnc,n->mc", dk, self.alpha)
        else:
            d_mean = np.einsum("mnc,ns->msc", dk, alpha)
        d_var = -2.0 * np.einsum("mnc,mn->mc", dk, ck)
        floor = 1e-12 * self.signal
        clipped = var < floor
        d_var[clipped] = 0.0
        return mean, np.maximum(var, floor), d_mean, d_var

    def solve(self, outputs: Array) -> Array:
        """``C^-1 outputs`` for other outputs at the training points (shape (n, S)): what
        :meth:`predict` takes to predict them with this model's kernel and noise."""
        out: Array = scipy.linalg.cho_solve((self._chol, True), outputs, check_finite=False)
        return out

    def latent_samples(self, count: int, rng: np.random.Generator) -> Array:
        """Joint draws of the latent (noise-free) function at the training points from the
        posterior, shape (n, count)."""
        k = self.kernel(self.x, self.x)
        v = _solve_lower(self._chol, k, False)
        mean = k @ self.alpha
        cov = k - v.T @ v
        cov = 0.5 * (cov + cov.T)
        chol = _robust_cholesky(cov + (1e-9 * self.signal) * np.eye(len(cov)))
        out: Array = mean[:, None] + chol @ rng.standard_normal((len(cov), count))
        return out

    def noiseless(self) -> Posterior:
        """The same kernel on the same points with the noise at its floor: conditioned on
        (sampled) noise-free values it interpolates them."""
        hyper = replace(self.hyper, log_noise=math.log(NOISE_VAR_BOUNDS[0]))
        return Posterior(self.x, self.y, self.groups, hyper)

    def condition_on(self, xn: Array, yn: float) -> None:
        """Adds one observation ``(xn, yn)`` in place (hyperparameters unchanged)."""
        xn = xn.reshape(1, -1)
        kx = (self.signal * matern52(self._sq_dists(xn)))[0]
        l21 = _solve_lower(self._chol, kx, False)
        d = self.signal + self.noise - float(l21 @ l21)
        l22 = math.sqrt(max(d, 1e-12 * self.signal))
        n = len(self.y)
        chol = np.zeros((n + 1, n + 1))
        chol[:n, :n] = self._chol
        chol[n, :n] = l21
        chol[n, n] = l22
        self._chol = chol
        self.x = np.vstack([self.x, xn])
        self.y = np.append(self.y, yn)
        self._scale_training()
        self._refresh()


def _solve_lower(chol: Array, b: Array, transposed: bool) -> Array:
    """``solve_triangular(chol, b, lower=True, trans=transposed)`` without its checks.

    LAPACK ``trtrs`` directly, called the way ``scipy.linalg.solve_triangular`` calls it (a
    C-ordered factor is passed as its transpose, an upper factor), so the numbers are the same.
    """
    if chol.flags.f_contiguous:
        x, info = _dtrtrs(chol, b, lower=1, trans=int(transposed))
    else:
        x, info = _dtrtrs(chol.T, b, lower=0, trans=int(not transposed))
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular solve failed (LAPACK info {info})")
    out: Array = x
    return out


def _robust_cholesky(k: Array) -> Array:
    """Cholesky factor of ``k``, adding jitter to the diagonal if floating point needs it."""
    jitter = 0.0
    scale = float(np.mean(np.diag(k)))
    for _ in range(6):
        try:
            a = k if jitter == 0.0 else k + jitter * np.eye(len(k))
            out: Array = scipy.linalg.cholesky(a, lower=True, check_finite=False)
            return out
        except np.linalg.LinAlgError:
            jitter = scale * 1e-9 if jitter == 0.0 else jitter * 100.0
    raise np.linalg.LinAlgError("kernel matrix is not positive definite")
