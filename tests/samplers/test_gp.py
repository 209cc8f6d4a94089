"""The Gaussian process and the acquisition of the Bayesian sampler, against direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from hyperdial_server.samplers import _acquisition, _gp

# Two numeric groups (the second with an "active" column, as a conditional parameter has) and
# one categorical group.
GROUPS = (_gp.Group((0,)), _gp.Group((1, 2)), _gp.Group((3,), categorical=True))


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    active = rng.random(n) < 0.7
    x = np.column_stack(
        [
            rng.random(n),
            np.where(active, rng.random(n), 0.5),
            active.astype(float),
            rng.integers(0, 3, n).astype(float),
        ]
    )
    y = np.sin(6 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.3 * (x[:, 3] == 1)
    return x, (y - y.mean()) / y.std()


HYPER = _gp.Hyper((math.log(4.0), math.log(2.0), math.log(1.5)), math.log(1.3), math.log(1e-3))


def _direct_kernel(a: np.ndarray, b: np.ndarray, hyper: _gp.Hyper) -> np.ndarray:
    """The kernel written out element by element."""
    rho = np.exp(hyper.log_rho)
    out = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            r2 = rho[0] * (a[i, 0] - b[j, 0]) ** 2
            r2 += rho[1] * ((a[i, 1] - b[j, 1]) ** 2 + (a[i, 2] - b[j, 2]) ** 2)
            r2 += rho[2] * float(a[i, 3] != b[j, 3])
            r = math.sqrt(5 * r2)
            out[i, j] = math.exp(hyper.log_signal) * (1 + r + r * r / 3) * math.exp(-r)
    return out


def _assert_textbook_prediction(
    post: _gp.Posterior, x: np.ndarray, y: np.ndarray, xs: np.ndarray, noise: np.ndarray
) -> None:
    """``post``'s mean and variance at ``xs`` against the formulas written out, with noise
    variance ``noise[i]`` at training point ``i``."""
    k = _direct_kernel(x, x, HYPER) + np.diag(noise)
    ks = _direct_kernel(xs, x, HYPER)
    mean = ks @ np.linalg.solve(k, y)
    var = math.exp(HYPER.log_signal) - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T))
    got_mean, got_var = post.predict(xs)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got_var, var, rtol=1e-7, atol=1e-10)


def test_posterior_matches_the_textbook_formulas() -> None:
    x, y = _data(12)
    xs, _ = _data(7, seed=1)
    post = _gp.Posterior(x, y, GROUPS, HYPER)
    _assert_textbook_prediction(post, x, y, xs, np.full(len(y), math.exp(HYPER.log_noise)))
    ks = _direct_kernel(xs, x, HYPER)
    # The kernel itself, and the mean at a training point is close to its value (low noise).
    np.testing.assert_allclose(post.kernel(xs, x), ks, rtol=1e-12)
    assert abs(post.predict(x[:1])[0][0] - y[0]) < 0.05


def test_conditioning_on_a_point_equals_refitting_with_it() -> None:
    x, y = _data(10)
    extra, _ = _data(2, seed=5)
    post = _gp.Posterior(x, y, GROUPS, HYPER)
    post.condition_on(extra[0], 0.25)
    post.condition_on(extra[1], -1.0)
    direct = _gp.Posterior(np.vstack([x, extra]), np.append(y, [0.25, -1.0]), GROUPS, HYPER)
    xs, _ = _data(5, seed=9)
    for a, b in zip(post.predict(xs), direct.predict(xs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_likelihood_gradient_matches_finite_differences() -> None:
    x, y = _data(15)
    dists = _gp.group_sq_dists(x, x, GROUPS)
    theta = np.array([0.7, -0.4, 1.1, 0.2, math.log(0.05)])
    _, grad = _gp.neg_log_posterior(theta, dists, y)
    h = 1e-6
    for j in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        fd = (_gp.neg_log_posterior(up, dists, y)[0] - _gp.neg_log_posterior(down, dists, y)[0]) / (
            2 * h
        )
        assert grad[j] == pytest.approx(fd, rel=1e-4, abs=1e-6), j


def test_likelihood_value_matches_the_gaussian_density() -> None:
    x, y = _data(9)
    dists = _gp.group_sq_dists(x, x, GROUPS)
    theta = HYPER.vector()
    k = _direct_kernel(x, x, HYPER) + math.exp(HYPER.log_noise) * np.eye(len(y))
    sign, logdet = np.linalg.slogdet(k)
    assert sign > 0
    nll = 0.5 * y @ np.linalg.solve(k, y) + 0.5 * logdet + 0.5 * len(y) * math.log(2 * math.pi)
    got, _ = _gp.neg_log_posterior(theta, dists, y)
    # The value adds the negative log priors, which do not depend on the data.
    zero, _ = _gp.neg_log_posterior(theta, np.zeros_like(dists), np.zeros_like(y))
    k0 = math.exp(HYPER.log_signal) * np.ones((len(y), len(y))) + math.exp(
        HYPER.log_noise
    ) * np.eye(len(y))
    prior = zero - (0.5 * np.linalg.slogdet(k0)[1] + 0.5 * len(y) * math.log(2 * math.pi))
    assert got - prior == pytest.approx(nll, rel=1e-9)


def test_predictive_gradient_matches_finite_differences() -> None:
    x, y = _data(14)
    post = _gp.Posterior(x, y, GROUPS, HYPER)
    xs, _ = _data(3, seed=4)
    xs[:, 2] = 1.0  # active, so column 1 is a free coordinate
    cols = [0, 1]
    mean, var, d_mean, d_var = post.predict_grad(xs, cols)
    np.testing.assert_allclose((mean, var), post.predict(xs), rtol=1e-10)
    h = 1e-6
    for c_i, c in enumerate(cols):
        up, down = xs.copy(), xs.copy()
        up[:, c] += h
        down[:, c] -= h
        (mu_u, v_u), (mu_d, v_d) = post.predict(up), post.predict(down)
        np.testing.assert_allclose(d_mean[:, c_i], (mu_u - mu_d) / (2 * h), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(d_var[:, c_i], (v_u - v_d) / (2 * h), rtol=1e-4, atol=1e-6)


def test_fit_finds_the_relevant_dimension_and_low_noise() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((40, 2))
    y = np.sin(5 * x[:, 0])  # the second dimension is irrelevant; no noise
    y = (y - y.mean()) / y.std()
    groups = (_gp.Group((0,)), _gp.Group((1,)))
    hyper = _gp.fit(x, y, groups, np.random.default_rng(0))
    relevant, irrelevant = hyper.log_rho
    assert relevant > irrelevant + 2  # much shorter length scale where y varies
    assert math.exp(hyper.log_noise) < 1e-2
    # A warm start from the answer gives (nearly) the same answer.
    again = _gp.fit(x, y, groups, np.random.default_rng(1), warm=hyper)
    dists = _gp.group_sq_dists(x, x, groups)
    f1 = _gp.neg_log_posterior(hyper.vector(), dists, y)[0]
    f2 = _gp.neg_log_posterior(again.vector(), dists, y)[0]
    assert f2 <= f1 + 1e-3


def test_fit_on_many_points_goes_through_a_subset_and_stays_sane() -> None:
    rng = np.random.default_rng(4)
    n = _gp.SUBSET_FIT_ABOVE + 20
    x = rng.random((n, 2))
    y = np.sin(5 * x[:, 0])
    y = (y - y.mean()) / y.std()
    groups = (_gp.Group((0,)), _gp.Group((1,)))
    hyper = _gp.fit(x, y, groups, np.random.default_rng(0))
    assert hyper.log_rho[0] > hyper.log_rho[1] + 2
    post = _gp.Posterior(x, y, groups, hyper)
    xs = rng.random((20, 2))
    err = (
        post.predict(xs)[0]
        - (np.sin(5 * xs[:, 0]) - np.sin(5 * x[:, 0]).mean()) / np.sin(5 * x[:, 0]).std()
    )
    assert float(np.max(np.abs(err))) < 0.05


# -- acquisition ----------------------------------------------------------------------------


def _log_h_direct(z: float) -> float:
    return math.log(math.exp(-z * z / 2) / math.sqrt(2 * math.pi) + z * scipy.special.ndtr(z))


def test_log_h_matches_direct_computation_where_that_is_accurate() -> None:
    zs = np.linspace(-8.0, 8.0, 161)
    got = _acquisition.log_h(zs)
    want = np.array([_log_h_direct(float(z)) for z in zs])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_log_ei_stays_finite_and_ordered_far_from_the_incumbent() -> None:
    # Direct EI underflows to 0 (log -inf) from about z = -38; the stable form keeps going.
    z = -np.array([10.0, 40.0, 100.0, 1e4, 1e6, 1e8, 1e12])
    got = _acquisition.log_h(z)
    assert np.all(np.isfinite(got))
    assert np.all(np.diff(got) < 0)  # further from the incumbent: strictly worse
    # Asymptotically log h(z) ~ -z^2/2 - log(2 pi)/2 - 2 log|z|.
    asym = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(-z)
    np.testing.assert_allclose(got[3:], asym[3:], rtol=1e-9)
    # The gradient of log EI is finite and points back towards the incumbent.
    mean = np.array([1e3, 1e5])
    var = np.array([1.0, 1.0])
    val, d_mean, d_var = _acquisition.log_ei_grad(mean, var, best=0.0)
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(d_mean)) and np.all(np.isfinite(d_var))
    assert np.all(d_mean < 0)  # a lower mean is better when minimising
    assert np.all(d_var > 0)  # more uncertainty is better when far from the incumbent


def test_log_ei_gradient_matches_finite_differences() -> None:
    mean = np.array([-1.0, 0.0, 0.3, 4.0, 25.0])
    var = np.array([0.5, 1.0, 0.01, 2.0, 0.3])
    _, d_mean, d_var = _acquisition.log_ei_grad(mean, var, best=0.1)
    h = 1e-6
    fd_mean = (
        _acquisition.log_ei(mean + h, var, 0.1) - _acquisition.log_ei(mean - h, var, 0.1)
    ) / (2 * h)
    fd_var = (_acquisition.log_ei(mean, var + h, 0.1) - _acquisition.log_ei(mean, var - h, 0.1)) / (
        2 * h
    )
    np.testing.assert_allclose(d_mean, fd_mean, rtol=1e-5)
    np.testing.assert_allclose(d_var, fd_var, rtol=1e-5)


def test_log_ei_is_exact_against_closed_form_expected_improvement() -> None:
    rng = np.random.default_rng(0)
    mean = rng.normal(size=20)
    var = rng.random(20) + 0.1
    sigma = np.sqrt(var)
    z = (0.2 - mean) / sigma
    ei = sigma * (np.exp(-z * z / 2) / math.sqrt(2 * math.pi) + z * scipy.special.ndtr(z))
    np.testing.assert_allclose(np.exp(_acquisition.log_ei(mean, var, 0.2)), ei, rtol=1e-10)


# -- fast paths: the same numbers as the general code ---------------------------------------


def test_likelihood_value_alone_is_the_same_number() -> None:
    x, y = _data(17)
    dists = _gp.group_sq_dists(x, x, GROUPS)
    flat = dists.reshape(len(GROUPS), -1)
    rng = np.random.default_rng(2)
    for _ in range(5):
        theta = HYPER.vector() + rng.normal(size=len(GROUPS) + 2)
        value, grad = _gp.neg_log_posterior(theta, dists, y)
        assert _gp._neg_log_value(theta, flat, y) == value
        assert np.array_equal(_gp._neg_log_value_and_grad(theta, flat, y)[1], grad)


def test_matern_value_and_derivative_together_are_the_same_numbers() -> None:
    r2 = np.concatenate([[0.0, 1e-300], np.random.default_rng(0).random(50) * 10.0])
    corr, grad = _gp._matern52_and_grad(r2)
    assert np.array_equal(corr, _gp.matern52(r2))
    assert np.array_equal(grad, _gp.matern52_grad(r2))


def test_posterior_distances_to_its_points_are_those_of_the_general_function() -> None:
    # The posterior keeps the training side of the distances; it must equal a fresh
    # computation, before and after points are added (categorical and two-column groups too).
    x, y = _data(12)
    xs, _ = _data(6, seed=3)
    post = _gp.Posterior(x, y, GROUPS, HYPER)
    for extra in range(3):
        want = _gp.scaled_sq_dists(xs, post.x, GROUPS, post.rho)
        assert np.array_equal(post._sq_dists(xs), want)
        k = post.kernel(xs, post.x)
        assert np.array_equal(post.predict(xs)[0], k @ post.alpha)
        post.condition_on(xs[extra], 0.1 * extra)
    assert len(post.y) == 15


def test_log_h_gives_the_same_numbers_with_and_without_far_points() -> None:
    # Points all above -1 take a shortcut past the per-branch masks; the numbers must not
    # depend on which path a point took.
    z = np.linspace(-0.999, 6.0, 37)
    alone = _acquisition.log_h(z)
    mixed = _acquisition.log_h(np.concatenate([z, [-3.0, -1e8]]))
    assert np.array_equal(alone, mixed[: len(z)])
    # Likewise log(1 - exp(t)) with every t above -log 2, or not.
    t = np.linspace(-0.69, -1e-6, 23)
    assert np.array_equal(
        _acquisition._log1mexp(t), _acquisition._log1mexp(np.append(t, -5.0))[:-1]
    )


def test_latent_samples_have_the_posterior_mean_and_covariance() -> None:
    x, y = _data(8)
    noisy = _gp.Hyper(HYPER.log_rho, HYPER.log_signal, math.log(0.3))
    post = _gp.Posterior(x, y, GROUPS, noisy)
    draws = post.latent_samples(40_000, np.random.default_rng(0))
    mean, var = post.predict(x)
    # 40,000 draws: the sample mean within 4 standard errors, the variance within 5 %.
    np.testing.assert_array_less(np.abs(draws.mean(axis=1) - mean), 4 * np.sqrt(var / 40_000))
    np.testing.assert_allclose(draws.var(axis=1), var, rtol=0.05)
    # Joint, not independent: the correlation of two close points is the posterior's.
    k = post.kernel(x, x)
    c = post.solve(k)
    cov = k - k @ c
    np.testing.assert_allclose(np.cov(draws), cov, atol=0.02)


def test_the_noiseless_model_interpolates_the_values_it_is_given() -> None:
    x, y = _data(10)
    post = _gp.Posterior(x, y, GROUPS, HYPER).noiseless()
    values = np.column_stack([y, -y, 2 * y + 1])
    mean, var = post.predict(x, post.solve(values))
    assert mean.shape == (10, 3)
    np.testing.assert_allclose(mean, values, atol=1e-3)
    assert np.all(var < 1e-4)


def test_noisy_log_ei_gradient_matches_finite_differences() -> None:
    x, y = _data(14)
    noisy = _gp.Hyper(HYPER.log_rho, HYPER.log_signal, math.log(0.2))
    post = _gp.Posterior(x, y, GROUPS, noisy)
    acq = _acquisition.NoisyLogEI(post, np.ones(14, dtype=bool), np.random.default_rng(1))
    xs, _ = _data(3, seed=4)
    xs[:, 2] = 1.0
    cols = [0, 1]
    val, grad = acq.value_and_grad(xs, cols)
    np.testing.assert_allclose(val, acq.value(xs), rtol=1e-10)
    h = 1e-6
    for c_i, c in enumerate(cols):
        up, down = xs.copy(), xs.copy()
        up[:, c] += h
        down[:, c] -= h
        fd = (acq.value(up) - acq.value(down)) / (2 * h)
        np.testing.assert_allclose(grad[:, c_i], fd, rtol=1e-4, atol=1e-6)


def test_noisy_log_ei_without_noise_is_log_ei_below_the_best_value() -> None:
    x, y = _data(12)
    quiet = _gp.Hyper(HYPER.log_rho, HYPER.log_signal, math.log(1e-6))
    post = _gp.Posterior(x, y, GROUPS, quiet)
    acq = _acquisition.NoisyLogEI(post, np.ones(12, dtype=bool), np.random.default_rng(2))
    np.testing.assert_allclose(acq.best, y.min(), atol=1e-2)
    xs, _ = _data(50, seed=5)
    expected = _acquisition.LogEI(post, y.min()).value(xs)
    # Close in log space, also far out where log EI is in the hundreds below zero.
    np.testing.assert_allclose(acq.value(xs), expected, rtol=1e-3, atol=0.02)


def test_noisy_log_ei_takes_its_incumbents_from_the_eligible_points_only() -> None:
    x, y = _data(12)
    noisy = _gp.Hyper(HYPER.log_rho, HYPER.log_signal, math.log(0.05))
    post = _gp.Posterior(x, y, GROUPS, noisy)
    best_row = int(np.argmin(y))
    eligible = np.ones(12, dtype=bool)
    eligible[best_row] = False
    everyone = _acquisition.NoisyLogEI(post, np.ones(12, dtype=bool), np.random.default_rng(3))
    others = _acquisition.NoisyLogEI(post, eligible, np.random.default_rng(3))
    # The same draws: leaving out the best point raises every draw's incumbent or keeps it.
    assert np.all(others.best >= everyone.best)
    assert np.any(others.best > everyone.best)


def test_extra_noise_per_point_matches_the_textbook_formulas() -> None:
    x, y = _data(12)
    xs, _ = _data(7, seed=1)
    extra = np.where(np.arange(len(y)) % 3 == 0, 0.4, 0.0)
    post = _gp.Posterior(x, y, GROUPS, HYPER, extra)
    _assert_textbook_prediction(post, x, y, xs, math.exp(HYPER.log_noise) + extra)
    # The reported noise is the fitted one, shared by every point; zeros change nothing.
    assert post.noise == math.exp(HYPER.log_noise)
    plain = _gp.Posterior(x, y, GROUPS, HYPER)
    zeros = _gp.Posterior(x, y, GROUPS, HYPER, np.zeros(len(y)))
    np.testing.assert_array_equal(zeros.predict(xs)[0], plain.predict(xs)[0])


def test_likelihood_with_extra_noise_matches_the_density_and_its_gradient() -> None:
    x, y = _data(15)
    dists = _gp.group_sq_dists(x, x, GROUPS)
    extra = np.linspace(0.0, 0.5, len(y))
    theta = np.array([0.7, -0.4, 1.1, 0.2, math.log(0.05)])
    value, grad = _gp.neg_log_posterior(theta, dists, y, extra)
    # Against the density written out, less the same priors (the value at no extra noise minus
    # the density there).
    hyper = _gp.Hyper.from_vector(theta)

    def density(e: np.ndarray) -> float:
        k = _direct_kernel(x, x, hyper) + np.diag(math.exp(hyper.log_noise) + e)
        logdet = np.linalg.slogdet(k)[1]
        return float(0.5 * y @ np.linalg.solve(k, y) + 0.5 * logdet)

    plain, _ = _gp.neg_log_posterior(theta, dists, y)
    zero = np.zeros_like(extra)
    assert value - plain == pytest.approx(density(extra) - density(zero), rel=1e-8)
    h = 1e-6
    for j in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        fd = (
            _gp.neg_log_posterior(up, dists, y, extra)[0]
            - _gp.neg_log_posterior(down, dists, y, extra)[0]
        ) / (2 * h)
        assert grad[j] == pytest.approx(fd, rel=1e-4, abs=1e-6), j


def test_values_given_extra_noise_do_not_raise_the_fitted_noise() -> None:
    # A smooth noise-free function, a third of whose values are estimates off by up to 0.8 sd:
    # fitted as they are, the misfit reads as noise; given their own variance, it does not.
    rng = np.random.default_rng(4)
    x = rng.random((45, 2))
    y = np.sin(4 * x[:, 0]) + x[:, 1] ** 2
    y = (y - y.mean()) / y.std()
    estimated = np.arange(len(y)) % 3 == 0
    y[estimated] += rng.uniform(-0.8, 0.8, estimated.sum())
    groups = (_gp.Group((0,)), _gp.Group((1,)))
    as_measured = _gp.fit(x, y, groups, np.random.default_rng(0))
    extra = np.where(estimated, 0.8**2 / 3, 0.0)
    as_estimates = _gp.fit(x, y, groups, np.random.default_rng(0), extra_noise=extra)
    assert math.exp(as_measured.log_noise) > 0.02
    assert math.exp(as_estimates.log_noise) < 1e-3
    # The model then follows the measured values closely.
    post = _gp.Posterior(x, y, groups, as_estimates, extra)
    measured = ~estimated
    assert np.max(np.abs(post.predict(x[measured])[0] - y[measured])) < 0.05
