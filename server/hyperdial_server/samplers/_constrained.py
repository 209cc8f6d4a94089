"""Outcome constraints and infeasible trials in the Bayesian sampler: the feasibility model.

A study's outcome constraints (``StudySpec.constraints``) bound metrics its trials report
beside the objectives; a trial may also end INFEASIBLE (its parameters cannot give a result:
out of memory, diverged) and report nothing. :class:`Feasibility` models the probability that
a point holds every constraint and gives a result, as constrained Bayesian optimisation does
(Gardner et al., 2014; Gelbart et al., 2014; BoTorch's and Optuna's ``GPSampler``), on numpy
and scipy:

* **One GP per bound of a constraint**, on ``g = value - upper`` (or ``lower - value``), so that
  the bound holds where ``g <= 0``: a two-sided constraint is two models. Its data are the
  completed trials that reported the metric (a stopped trial's last report is no final value).
  ``P(g <= 0)`` is the Gaussian probability under the model's prediction.
* **One GP on the outcome** when some trial ended INFEASIBLE: on the label +1 for INFEASIBLE
  trials and -1 for trials that gave values (completed or stopped), centred on the labels'
  mean (a point far from every trial is as likely to crash as the trials so far were), and
  ``P(label <= 0)`` as above. A GP classifier (probit, Laplace) was measured too and did worse:
  ``docs/algorithms.md``.
* The parts are taken independent: the log probability of feasibility is the sum of their log
  probabilities.

The sampler adds it to log expected improvement (``_acquisition.Sum``), measures improvement
from the best feasible completed trial, and maximises the log probability of feasibility
alone until a feasible trial exists. Pending points are believed at the predicted mean of
every part too (:meth:`Feasibility.believe`), as the objective's model believes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import scipy.special

from hyperdial_server.core.study import StudySpec
from hyperdial_server.samplers import _gp
from hyperdial_server.samplers._encoder import Encoder

if TYPE_CHECKING:
    from hyperdial_server.samplers._bayes import _Data

Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Lowest noise variance of a constraint's model (on its standardised scale), below the
#: objective's ``_gp.NOISE_VAR_BOUNDS[0]``: an optimum often lies on a bound, which the model
#: must then place finely. At the objective's floor it could not: on two problems with the
#: optimum on a bound, 72 % and 86 % of the trials fell just beyond it (``docs/algorithms.md``).
MIN_NOISE_VAR = 1e-9

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def log_prob_below(mean: Array, var: Array, threshold: Array | float) -> Array:
    """``log P(Y <= threshold)`` for ``Y ~ N(mean, var)``, finite far in either tail."""
    z = (threshold - mean) / np.sqrt(var)
    out: Array = scipy.special.log_ndtr(z)
    return out


def log_prob_below_grad(
    mean: Array, var: Array, threshold: Array | float
) -> tuple[Array, Array, Array]:
    """:func:`log_prob_below` and its derivatives with respect to the mean and the variance."""
    sigma = np.sqrt(var)
    z = (threshold - mean) / sigma
    log_cdf = scipy.special.log_ndtr(z)
    # d log Phi(z) / dz = phi(z) / Phi(z), in log space so it stays finite far out.
    ratio = np.exp(-0.5 * z * z - _HALF_LOG_2PI - log_cdf)
    d_mean = -ratio / sigma
    d_var = -ratio * z / (2.0 * var)
    return log_cdf, d_mean, d_var


class _Part:
    """One feasibility condition: the modelled quantity is at most ``threshold``."""

    def __init__(self, posterior: _gp.Posterior, threshold: float) -> None:
        self.posterior = posterior
        self.threshold = threshold


class Feasibility:
    """The log probability that a point holds every outcome constraint and gives a result.

    Built by :meth:`fit` (``None`` when the study has no constraint and no INFEASIBLE trial).
    It is an ``_acquisition.Acquisition`` on feature rows (:meth:`value`,
    :meth:`value_and_grad`), so it is maximised alone before any trial is feasible and added to
    log expected improvement after; :meth:`log_pof` takes encoded coordinates.

    Args:
        encoder: The study's encoder (coordinates to features).
        parts: The conditions, each a model and the threshold its output must not exceed.
    """

    def __init__(self, encoder: Encoder, parts: Sequence[_Part]) -> None:
        self._encoder = encoder
        self._parts = list(parts)

    @staticmethod
    def fit(
        spec: StudySpec,
        enc: Encoder,
        data: _Data,
        rng: np.random.Generator,
        max_trials: int,
    ) -> Feasibility | None:
        """Fits the feasibility model of one ask.

        Args:
            spec: The study spec (its constraints; a deterministic objective fits no noise).
            enc: The study's encoder.
            data: The ask's observations (``_bayes._observations``): the completed trials'
                constraint values, and where trials gave values or ended INFEASIBLE.
            rng: Source of the fits' random starting points and of subsets.
            max_trials: Most trials one model is fitted on.

        Returns:
            The model, or ``None`` when the study has no constraint and no trial ended
            INFEASIBLE (nothing to model: every point counts as feasible).
        """
        if not spec.constraints and not len(data.infeasible):
            return None
        fixed = MIN_NOISE_VAR if spec.deterministic_objective else None
        parts: list[_Part] = []
        x = enc.features(data.u[: data.completed])
        for j, c in enumerate(spec.constraints):
            values = data.constraints[:, j]
            have = np.isfinite(values)
            for bound, sign in ((c.upper, 1.0), (c.lower, -1.0)):
                if bound is None:
                    continue
                g = sign * (values[have] - bound)
                part = _fit_bound(x[have], g, enc, rng, max_trials, fixed)
                if part is not None:
                    parts.append(part)
        if len(data.infeasible):
            parts.append(_fit_outcome(enc, data.u, data.infeasible, rng, max_trials))
        return Feasibility(enc, parts)

    def log_pof(self, u: Array) -> Array:
        """Log probability of feasibility at rows ``u`` of encoded coordinates, shape (n,)."""
        return self.value(self._encoder.features(u))

    def value(self, x: Array) -> Array:
        """Log probability of feasibility at feature rows ``x``."""
        out: Array = np.zeros(len(x))
        for part in self._parts:
            mean, var = part.posterior.predict(x)
            out = out + log_prob_below(mean, var, part.threshold)
        return out

    def value_and_grad(self, x: Array, columns: Sequence[int]) -> tuple[Array, Array]:
        """Log probability of feasibility at feature rows ``x`` and its derivatives by the
        numeric feature ``columns`` (shape (n, len(columns))), for the local search."""
        val: Array = np.zeros(len(x))
        grad: Array = np.zeros((len(x), len(columns)))
        for part in self._parts:
            mean, var, d_mean, d_var = part.posterior.predict_grad(x, columns)
            v, g_mean, g_var = log_prob_below_grad(mean, var, part.threshold)
            val = val + v
            grad = grad + g_mean[:, None] * d_mean + g_var[:, None] * d_var
        return val, grad

    def holds(self, u: Array) -> BoolArray:
        """Whether every part's predicted mean is feasible at rows ``u`` of coordinates (what a
        believed point is: see :meth:`believe`)."""
        x = self._encoder.features(u)
        out: BoolArray = np.ones(len(u), dtype=bool)
        for part in self._parts:
            mean, _ = part.posterior.predict(x)
            out &= mean <= part.threshold
        return out

    def believe(self, row: Array) -> None:
        """Conditions every part on a pending point (a row of coordinates) at its predicted
        mean (kriging believer), as the objective's model is."""
        x = self._encoder.features(row[None, :])
        for part in self._parts:
            mean, _ = part.posterior.predict(x)
            part.posterior.condition_on(x[0], float(mean[0]))


def _fit_bound(
    x: Array,
    g: Array,
    enc: Encoder,
    rng: np.random.Generator,
    max_trials: int,
    fixed_noise: float | None,
) -> _Part | None:
    """The model of one bound, ``g <= 0`` feasible; ``None`` without any value."""
    if not len(g):
        return None
    if len(g) > max_trials:
        # The values nearest the bound decide where it runs; the rest, a seeded sample.
        order = np.argsort(np.abs(g), kind="stable")
        near = order[: max_trials // 2]
        pick = rng.choice(order[max_trials // 2 :], max_trials - len(near), replace=False)
        keep = np.sort(np.concatenate([near, pick]))
        x, g = x[keep], g[keep]
    mean = float(np.mean(g))
    sd = float(np.std(g))
    sd = sd if sd > 0 else 1.0
    z = (g - mean) / sd
    hyper = _gp.fit(x, z, enc.groups, rng, fixed_noise=fixed_noise, min_noise=MIN_NOISE_VAR)
    return _Part(_gp.Posterior(x, z, enc.groups, hyper), -mean / sd)


def _fit_outcome(
    enc: Encoder, ran: Array, crashed: Array, rng: np.random.Generator, max_trials: int
) -> _Part:
    """The model of the outcome: +1 where trials ended INFEASIBLE, -1 where they gave values,
    feasible below 0."""
    u = np.vstack([ran, crashed])
    labels = np.concatenate([np.full(len(ran), -1.0), np.ones(len(crashed))])
    if len(labels) > max_trials:
        keep = np.sort(rng.choice(len(labels), max_trials, replace=False))
        u, labels = u[keep], labels[keep]
    x = enc.features(u)
    # Centred: far from every trial, a point is as likely to crash as the trials so far did.
    mean = float(np.mean(labels))
    z = labels - mean
    hyper = _gp.fit(x, z, enc.groups, rng)
    return _Part(_gp.Posterior(x, z, enc.groups, hyper), -mean)
