"""Gaussian-process regression for the Bayesian sampler: numpy and scipy only.

The model works on a feature matrix built by the sampler (``_bayes``): every parameter is one
*group* of feature columns with its own length scale (automatic relevance determination).

* A numeric group holds numbers in the unit cube (one column, plus a 0/1 "active" column for a
  conditional parameter); its squared distance is the squared Euclidean one.
* A categorical group holds one column of category codes; its squared distance is 0 between
  equal codes and 1 between different ones (Hamming), which is the squared Euclidean distance
  of a one-hot encoding scaled by ``1/sqrt(2)``.

The kernel is Matérn-5/2 on ``r**2 = sum_g rho_g * d_g**2`` (``rho_g`` the inverse squared
length scale of group ``g``) times a signal variance, plus homoscedastic noise. Since every
``d_g**2`` is a squared Euclidean distance of an explicit feature map, the kernel is positive
definite for any data.

Hyperparameters (log inverse squared length scales, log signal variance, log noise variance)
are fitted by maximising the log marginal likelihood plus log priors with L-BFGS-B and
analytic gradients, from a few starting points (a warm start, when given, among them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.optimize
from scipy.linalg.lapack import dpotrf as _dpotrf
from scipy.linalg.lapack import dpotri as _dpotri
from scipy.linalg.lapack import dpotrs as _dpotrs

Array = npt.NDArray[np.float64]

_SQRT5 = math.sqrt(5.0)
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


def _length_scale_prior(n_groups: int) -> tuple[float, float]:
    # Log-normal prior on each length scale whose median grows with the square root of the
    # dimension (Hvarfner et al., 2024, "Vanilla Bayesian optimization performs great in high
    # dimensions"): (mean, variance) of the log length scale.
    return math.sqrt(2.0) + 0.5 * math.log(max(n_groups, 1)), 3.0


def _bounds(n_groups: int) -> list[tuple[float, float]]:
    lo_l, hi_l = LENGTH_SCALE_BOUNDS
    rho = (-2.0 * math.log(hi_l), -2.0 * math.log(lo_l))
    return [rho] * n_groups + [
        (math.log(SIGNAL_VAR_BOUNDS[0]), math.log(SIGNAL_VAR_BOUNDS[1])),
        (math.log(NOISE_VAR_BOUNDS[0]), math.log(NOISE_VAR_BOUNDS[1])),
    ]


def neg_log_posterior(theta: Array, dists: Array, y: Array) -> tuple[float, Array]:
    """Negative (log marginal likelihood + log prior) of the hyperparameters and its gradient.

    Args:
        theta: ``Hyper.vector()``: G log inverse squared length scales, log signal variance,
            log noise variance.
        dists: Per-group squared distances of the training points, shape (G, n, n).
        y: Training outputs (standardised), shape (n,).

    Returns:
        The value and its gradient with respect to ``theta``. A kernel matrix that is not
        positive definite in floating point gives ``inf`` and a zero gradient.
    """
    n_groups = dists.shape[0]
    n = y.shape[0]
    rho = np.exp(theta[:n_groups])
    signal = math.exp(theta[n_groups])
    noise = math.exp(theta[n_groups + 1])
    r2 = np.tensordot(rho, dists, axes=1)
    corr = matern52(r2)
    k = signal * corr
    c = k.copy()
    c[np.diag_indices(n)] += noise
    # LAPACK directly: this runs dozens of times per fit, and the wrappers' checks add up.
    chol, info = _dpotrf(c, lower=1, clean=1)
    if info != 0:
        return math.inf, np.zeros_like(theta)
    alpha, _ = _dpotrs(chol, y, lower=1)
    log_det = 2.0 * float(np.sum(np.log(np.diag(chol))))
    nll = 0.5 * float(y @ alpha) + 0.5 * log_det + 0.5 * n * _LOG_2PI
    c_inv, _ = _dpotri(chol, lower=1)
    c_inv = np.tril(c_inv) + np.tril(c_inv, -1).T
    # d(log likelihood)/d(theta_j) = 1/2 tr((alpha alpha^T - C^-1) dC/dtheta_j).
    w = np.outer(alpha, alpha) - c_inv
    grad = np.empty_like(theta)
    a = w * (signal * matern52_grad(r2))
    grad[:n_groups] = -0.5 * rho * np.tensordot(dists, a, axes=([1, 2], [0, 1]))
    grad[n_groups] = -0.5 * float(np.sum(w * k))
    grad[n_groups + 1] = -0.5 * noise * float(np.trace(w))
    # Priors (Gaussian in log space); log length scale = -theta/2.
    mu, var = _length_scale_prior(n_groups)
    log_ls = -0.5 * theta[:n_groups]
    nll += float(np.sum((log_ls - mu) ** 2)) / (2.0 * var)
    grad[:n_groups] += -0.5 * (log_ls - mu) / var
    for j, (m, sd) in ((n_groups, _SIGNAL_PRIOR), (n_groups + 1, _NOISE_PRIOR)):
        nll += (theta[j] - m) ** 2 / (2.0 * sd * sd)
        grad[j] += (theta[j] - m) / (sd * sd)
    return nll, grad


def default_hyper(n_groups: int) -> Hyper:
    """A neutral starting point: length scales of a quarter of the prior median."""
    mu, _ = _length_scale_prior(n_groups)
    log_rho = -2.0 * (mu - math.log(4.0))
    return Hyper((log_rho,) * n_groups, 0.0, math.log(1e-3))


def fit(
    x: Array,
    y: Array,
    groups: Sequence[Group],
    rng: np.random.Generator,
    warm: Hyper | None = None,
    *,
    random_starts: int = 4,
    optimised_starts: int = 1,
) -> Hyper:
    """Fits the hyperparameters by maximum a posteriori estimation.

    Starting points are the default, ``warm`` (when it has the right size) and
    ``random_starts`` draws around the default; the ``optimised_starts`` best of them by
    posterior value are refined with L-BFGS-B, and the best result wins.

    Args:
        x: Training features, shape (n, F).
        y: Standardised training outputs, shape (n,).
        groups: The feature groups.
        rng: Source of the random starting points.
        warm: Hyperparameters of an earlier fit, tried first.
        random_starts: Random starting points evaluated.
        optimised_starts: Starting points refined by L-BFGS-B.

    Returns:
        The fitted hyperparameters.
    """
    n_groups = len(groups)
    max_iter = 200
    if len(y) > SUBSET_FIT_ABOVE and warm is None:
        # Large data: fit a random subset first (cheap), then refine on all points from there;
        # hyperparameters change little between the two, so the refinement is short.
        sub = rng.choice(len(y), SUBSET_FIT_SIZE, replace=False)
        warm = fit(x[sub], y[sub], groups, rng, None)
        random_starts = 0
        max_iter = REFINE_MAX_ITER
    dists = group_sq_dists(x, x, groups)
    bounds = _bounds(n_groups)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    base = default_hyper(n_groups).vector()
    starts = [base]
    if warm is not None and len(warm.log_rho) == n_groups:
        starts.insert(0, np.clip(warm.vector(), lo, hi))
    for _ in range(random_starts):
        jitter = rng.normal(0.0, 1.0, size=base.shape)
        jitter[:n_groups] *= 1.5
        starts.append(np.clip(base + jitter, lo, hi))
    scored = sorted(
        ((neg_log_posterior(s, dists, y)[0], i) for i, s in enumerate(starts)),
        key=lambda t: t[0],
    )
    best_theta = starts[scored[0][1]]
    best_value = scored[0][0]
    for _, i in scored[:optimised_starts]:
        res = scipy.optimize.minimize(
            neg_log_posterior,
            starts[i],
            args=(dists, y),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": 1e-7, "gtol": 1e-4},
        )
        if np.isfinite(res.fun) and res.fun < best_value:
            best_value = float(res.fun)
            best_theta = np.asarray(res.x, dtype=np.float64)
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
    """

    def __init__(self, x: Array, y: Array, groups: Sequence[Group], hyper: Hyper) -> None:
        self.groups = tuple(groups)
        self.hyper = hyper
        self.rho = np.exp(np.asarray(hyper.log_rho, dtype=np.float64))
        self.signal = math.exp(hyper.log_signal)
        self.noise = math.exp(hyper.log_noise)
        self.x = np.array(x, dtype=np.float64)
        self.y = np.array(y, dtype=np.float64)
        k = self.kernel(self.x, self.x)
        k[np.diag_indices(len(self.y))] += self.noise
        self._chol = _robust_cholesky(k)
        self._refresh()

    def _refresh(self) -> None:
        self.alpha = scipy.linalg.cho_solve((self._chol, True), self.y, check_finite=False)

    def kernel(self, a: Array, b: Array) -> Array:
        """Kernel matrix between the rows of ``a`` and ``b`` (no noise)."""
        out: Array = self.signal * matern52(scaled_sq_dists(a, b, self.groups, self.rho))
        return out

    def predict(self, xc: Array) -> tuple[Array, Array]:
        """Posterior mean and variance (of the latent function) at the rows of ``xc``."""
        kx = self.kernel(xc, self.x)
        mean: Array = kx @ self.alpha
        v = scipy.linalg.solve_triangular(self._chol, kx.T, lower=True, check_finite=False)
        var = self.signal - np.einsum("ij,ij->j", v, v)
        return mean, np.maximum(var, 1e-12 * self.signal)

    def predict_grad(self, xc: Array, columns: Sequence[int]) -> tuple[Array, Array, Array, Array]:
        """Mean, variance and their gradients with respect to numeric ``columns`` of ``xc``.

        Args:
            xc: Points, shape (m, F).
            columns: Numeric feature columns to differentiate by.

        Returns:
            ``(mean, var, d_mean, d_var)``; the gradients have shape (m, len(columns)).
        """
        r2 = scaled_sq_dists(xc, self.x, self.groups, self.rho)
        kx = self.signal * matern52(r2)
        dk_dr2 = self.signal * matern52_grad(r2)
        mean: Array = kx @ self.alpha
        v = scipy.linalg.solve_triangular(self._chol, kx.T, lower=True, check_finite=False)
        var = self.signal - np.einsum("ij,ij->j", v, v)
        # C^-1 k(x) for the variance gradient.
        ck = scipy.linalg.solve_triangular(
            self._chol, v, lower=True, trans="T", check_finite=False
        ).T
        rho_col = np.zeros(self.x.shape[1])
        for g, group in enumerate(self.groups):
            for c in group.columns:
                rho_col[c] = self.rho[g]
        cols = list(columns)
        # dr2/dx_f = 2 rho_f (x_f - X_if), shape (m, n, |cols|).
        diff = xc[:, None, cols] - self.x[None, :, cols]
        dr2 = 2.0 * rho_col[cols] * diff
        dk = dk_dr2[:, :, None] * dr2
        d_mean = np.einsum("mnc,n->mc", dk, self.alpha)
        d_var = -2.0 * np.einsum("mnc,mn->mc", dk, ck)
        floor = 1e-12 * self.signal
        clipped = var < floor
        d_var[clipped] = 0.0
        return mean, np.maximum(var, floor), d_mean, d_var

    def condition_on(self, xn: Array, yn: float) -> None:
        """Adds one observation ``(xn, yn)`` in place (hyperparameters unchanged)."""
        xn = xn.reshape(1, -1)
        kx = self.kernel(xn, self.x)[0]
        l21 = scipy.linalg.solve_triangular(self._chol, kx, lower=True, check_finite=False)
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
        self._refresh()


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
