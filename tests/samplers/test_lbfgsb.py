"""The samplers' L-BFGS-B (``_lbfgsb``): ``scipy.optimize.minimize``'s answers, bit for bit,
whether it drives scipy's private core or falls back to ``minimize``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize

from hyperdial_server.samplers import _gp, _lbfgsb
from tests.samplers.test_gp import GROUPS, _data


def _rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    a, b = x[:-1], x[1:]
    grad = np.zeros_like(x)
    grad[:-1] = -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
    grad[1:] += 200.0 * (b - a * a)
    return float(np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)), grad


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("maxiter", [3, 200])
def test_lbfgsb_returns_exactly_what_scipy_minimize_returns(
    maxiter: int, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bit for bit, on a hard function (stopped by maxiter or converged, a start outside the
    # bounds clipped, one-sided bounds) and on the likelihood the fit optimises: `lbfgsb` may
    # replace `minimize` only because nothing changes. Also through the fallback of older
    # scipy versions.
    if fast and not _lbfgsb.FAST_LBFGSB:
        pytest.skip("this scipy has no compiled L-BFGS-B core to drive")
    monkeypatch.setattr(_lbfgsb, "FAST_LBFGSB", fast)
    x, y = _data(20)
    flat = _gp.group_sq_dists(x, x, GROUPS).reshape(len(GROUPS), -1)
    cases = [
        (_rosenbrock, np.array([-1.5, 2.5, 0.3, -0.7]), [(-2.0, 2.0)] * 4, {}),
        (
            _rosenbrock,
            np.array([-1.5, 2.5, 0.3, -0.7]),
            [(-math.inf, math.inf), (0.5, math.inf), (-math.inf, 0.2), (-1.0, 1.0)],
            {},
        ),
        (
            lambda t: _gp.neg_log_posterior(t, flat.reshape(len(GROUPS), 20, 20), y),
            _gp.default_hyper(len(GROUPS)).vector() + 0.5,
            _gp._bounds(len(GROUPS)),
            {"ftol": 1e-7, "gtol": 1e-4},
        ),
    ]
    for fun, x0, bounds, tol in cases:
        want = scipy.optimize.minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter, **tol},
        )
        got_x, got_f = _lbfgsb.lbfgsb(fun, x0, bounds, maxiter=maxiter, **tol)
        assert np.array_equal(got_x, want.x)
        assert got_f == want.fun


def test_the_import_check_refuses_a_private_core_that_does_not_behave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A scipy whose private core changed (here: it refuses the call) must send every search
    # through `minimize`: the check that decides so runs once, at import.
    if _lbfgsb.FAST_LBFGSB:
        assert _lbfgsb._fast_path_agrees()  # this scipy's core, as checked at import

    class Changed:
        @staticmethod
        def setulb(*args: object) -> None:
            raise TypeError("setulb() takes different arguments now")

    monkeypatch.setattr(_lbfgsb, "_lbfgsb_core", Changed)
    monkeypatch.setattr(_lbfgsb, "FAST_LBFGSB", True)
    assert not _lbfgsb._fast_path_agrees()
