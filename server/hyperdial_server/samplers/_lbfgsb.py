"""L-BFGS-B for the samplers' small problems: scipy's compiled core without ``minimize``.

A performance workaround kept apart from the models that use it (as Optuna keeps its batched
L-BFGS-B beside its GP sampler). The fitted GP hyperparameters (``_gp``) and the acquisition
search (``_acquisition``) run L-BFGS-B on problems whose function costs tens of microseconds,
where ``scipy.optimize.minimize``'s bookkeeping per evaluation (copies, array-namespace checks,
caches) costs about as much again. :func:`lbfgsb` runs ``minimize``'s own loop over the same
private compiled core, so it returns the same point, bit for bit.

The private core is trusted only where it is known to behave: scipy 1.15 or later (the C
rewrite with the ``setulb`` call used here), and only if :func:`_fast_path_agrees`, run once at
import, finds ``minimize``'s exact answer on a small bounded problem. Otherwise
(:data:`FAST_LBFGSB` false) :func:`lbfgsb` calls ``minimize`` itself: slower, same results.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import scipy
import scipy.optimize

try:  # The compiled core of scipy's L-BFGS-B: private, so possibly absent or different.
    from scipy.optimize import _lbfgsb as _lbfgsb_core
except ImportError:  # pragma: no cover - depends on the scipy build
    _lbfgsb_core = None

Array = npt.NDArray[np.float64]

#: What :func:`lbfgsb` minimises: returns the value and the gradient at a point.
Objective = Callable[[Array], tuple[float, Array]]


def _scipy_version() -> tuple[int, int]:
    major, minor = re.findall(r"\d+", scipy.__version__)[:2]
    return int(major), int(minor)


#: Whether :func:`lbfgsb` drives scipy's compiled L-BFGS-B core itself: scipy 1.15 rewrote the
#: core in C with the ``setulb`` call used here; older versions go through
#: ``scipy.optimize.minimize``. Checked once at import by :func:`_fast_path_agrees` as well (end
#: of this module), so that a scipy release that changes the private core's interface falls
#: back to ``minimize`` instead of failing or drifting.
FAST_LBFGSB = _lbfgsb_core is not None and _scipy_version() >= (1, 15)


def lbfgsb(
    fun: Objective,
    x0: Array,
    bounds: Sequence[tuple[float, float]],
    *,
    maxiter: int,
    ftol: float = 2.2204460492503131e-09,
    gtol: float = 1e-5,
) -> tuple[Array, float]:
    """``scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", ...)``, minus overhead.

    This runs the loop of ``scipy.optimize._minimize_lbfgsb`` (history 10, line search 20
    steps, the same stopping tests) over the same compiled core, so it returns the same point,
    bit for bit (``tests/samplers/test_lbfgsb.py`` checks it); without a usable core
    (:data:`FAST_LBFGSB` false) it calls ``minimize``.

    Args:
        fun: Returns the value and the gradient at a point; must not modify the point.
        x0: Starting point (clipped into the bounds).
        bounds: ``(low, high)`` per coordinate (infinite for none).
        maxiter: Most iterations.
        ftol: Relative reduction of the value under which the search stops.
        gtol: Projected gradient size under which the search stops.

    Returns:
        The last point and the last value the search evaluated, as ``minimize``'s result
        ``x`` and ``fun``.
    """
    if not FAST_LBFGSB:
        res = scipy.optimize.minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter, "ftol": ftol, "gtol": gtol},
        )
        return np.asarray(res.x, dtype=np.float64), float(res.fun)
    m = 10
    maxls = 20
    factr = ftol / np.finfo(float).eps
    bound_arr = np.array(bounds, dtype=np.float64).T
    x = np.array(np.clip(np.asarray(x0).ravel(), bound_arr[0], bound_arr[1]), dtype=np.float64)
    n = x.shape[0]
    # Bound kinds as the core wants them: 0 none, 1 lower, 2 both, 3 upper (a missing bound
    # is 0 in its array).
    has_lo = np.isfinite(bound_arr[0])
    has_hi = np.isfinite(bound_arr[1])
    nbd = np.where(has_lo, np.where(has_hi, 2, 1), np.where(has_hi, 3, 0)).astype(np.int32)
    lo = np.where(has_lo, bound_arr[0], 0.0)
    hi = np.where(has_hi, bound_arr[1], 0.0)
    f: float | Array = np.array(0.0, dtype=np.float64)
    g = np.zeros(n, dtype=np.float64)
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, dtype=np.float64)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task = np.zeros(2, dtype=np.int32)
    ln_task = np.zeros(2, dtype=np.int32)
    lsave = np.zeros(4, dtype=np.int32)
    isave = np.zeros(44, dtype=np.int32)
    dsave = np.zeros(29, dtype=np.float64)
    iterations = 0
    while True:
        g = g.astype(np.float64)
        _lbfgsb_core.setulb(
            m, x, lo, hi, nbd, f, g, factr, gtol, wa, iwa, task, lsave, isave, dsave, maxls,
            ln_task,
        )  # fmt: skip
        if task[0] == 3:  # wants the value and gradient at x
            f, g = fun(x.copy())
        elif task[0] == 1:  # a new iterate
            # (minimize's other test, more than 15000 evaluations, needs maxiter * maxls
            # beyond that; the samplers' searches stay far below.)
            iterations += 1
            if iterations >= maxiter:
                task[0] = 5
                task[1] = 504
        else:
            break
    return x, float(f)


def _fast_path_agrees() -> bool:
    """Whether :func:`lbfgsb`'s own loop gives ``minimize``'s answer on a small bounded problem."""

    def fun(x: Array) -> tuple[float, Array]:
        d = x - np.array([0.3, -2.0, 5.0])
        return float(d @ d + np.sin(3 * x[0])), 2 * d + np.array([3 * np.cos(3 * x[0]), 0, 0])

    bounds = [(-1.0, 1.0), (-1.0, np.inf), (-np.inf, 4.0)]
    x0 = np.array([0.9, 0.5, -3.0])
    try:
        fast = lbfgsb(fun, x0, bounds, maxiter=50)
    except Exception:  # any failure of the private interface means: do not use it
        return False
    ref = scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 50}
    )
    return bool(np.array_equal(fast[0], ref.x)) and fast[1] == float(ref.fun)


# The self-check, once per process: the fallback is chosen here, before any sampler runs.
if FAST_LBFGSB:
    FAST_LBFGSB = _fast_path_agrees()

__all__ = ["FAST_LBFGSB", "Objective", "lbfgsb"]
