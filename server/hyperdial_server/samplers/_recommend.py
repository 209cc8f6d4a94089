"""The recommendation: the completed trials judged by a model's prediction, not by their luck.

With a noisy objective the best observed value is biased: among many measurements, the lowest
is often a good point measured lucky. The recommendation fits, per objective, the Bayesian
sampler's Gaussian process (same encoding, output transform, kernel and priors; noise fitted
unless the study declares ``deterministic_objective``, and under noise outputs only
standardised, whatever the power transform) on every completed trial, and judges each
distinct point by its prediction: a point whose neighbours, or repeated measurements, agree
is preferred to one lucky result. Repeated measurements of the same parameters are one point:
the model averages them (each is an observation), and the point is represented by its
lowest-numbered trial.

With one objective the recommendation is the point of lowest predicted value plus
``RECOMMEND_SD`` standard deviations of the prediction (oriented by the goal); with several,
the points whose predicted means no other point's dominate. With outcome
constraints, the model is fitted on every completed trial (an infeasible trial's objective
values are real measurements) but only points whose trials all hold the constraints can be
recommended. Pure: the same trials give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import _gp
from hyperdial_server.samplers._bayes import (
    MAX_MODEL_TRIALS,
    OutputTransform,
    fit_output_transform,
    noisy_results,
)
from hyperdial_server.samplers._encoder import Encoder

Array = npt.NDArray[np.float64]

#: Fewest completed trials a recommendation is made from; below, callers use observed values.
MIN_RECOMMEND_TRIALS = 2
#: With one objective, points are ranked by their predicted value plus this many standard
#: deviations of the prediction (oriented, so never better than predicted): of two points
#: predicted alike, the one the model is surer of. Under noise the lowest predicted mean is
#: often an extrapolation at the edge of the space, pulled down by a few lucky results
#: (bench/README.md, "Noisy objectives": Branin at 20 % noise, 9.80 to 5.87 at 60 trials).
RECOMMEND_SD = 1.0


@dataclass(frozen=True)
class Recommended:
    """One recommended point.

    Attributes:
        trial: The lowest-numbered completed trial measured at the point.
        mean: Predicted noise-free value per objective (on the objective's own scale).
        stddev: Standard deviation of that prediction per objective.
        noise_stddev: The fitted noise of one measurement at the point per objective (0 for a
            deterministic objective).
        measurements: Completed trials measured at exactly the point's parameters.
    """

    trial: Trial
    mean: dict[str, float]
    stddev: dict[str, float]
    noise_stddev: dict[str, float]
    measurements: int


def recommend(spec: StudySpec, trials: Sequence[Trial]) -> list[Recommended] | None:
    """The recommended trials, in order of number; ``None`` with fewer than
    ``MIN_RECOMMEND_TRIALS`` usable completed trials (the caller answers by observed values);
    empty when no point is feasible.

    Args:
        spec: The study spec.
        trials: The study's trials; only COMPLETED ones with a finite value for every
            objective are used.
    """
    names = [o.name for o in spec.objectives]
    enc = Encoder(spec.space)
    rows: list[Array] = []
    values: list[list[float]] = []
    used: list[Trial] = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state is not TrialState.COMPLETED or t.values is None:
            continue
        try:
            row = enc.encode(t.params)
        except (KeyError, ValueError, TypeError):
            continue
        v = [t.values.get(n, math.nan) for n in names]
        if not all(math.isfinite(x) for x in v):
            continue
        rows.append(row)
        values.append(v)
        used.append(t)
    if len(used) < MIN_RECOMMEND_TRIALS:
        return None
    u = np.array(rows, dtype=np.float64)
    sign = np.array([-1.0 if o.maximize else 1.0 for o in spec.objectives])
    y = np.array(values, dtype=np.float64) * sign
    # Distinct points, each represented by its first (lowest-numbered) trial.
    first: dict[bytes, int] = {}
    owner = np.empty(len(used), dtype=np.intp)
    for i, row in enumerate(u):
        owner[i] = first.setdefault(row.tobytes(), i)
    points = np.array(sorted(first.values()), dtype=np.intp)
    counts = np.bincount(owner, minlength=len(used))[points]
    # A point is feasible when every measurement of it holds the constraints.
    broken = np.zeros(len(used), dtype=bool)
    for i, t in enumerate(used):
        broken[i] = spec.infeasibility(t.values) is not None
    ok = np.bincount(owner, weights=broken, minlength=len(used))[points] == 0
    if not ok.any():
        return []
    model = _model_rows(y, spec.seed)
    x_all = enc.features(u)
    mean = np.empty((len(points), len(names)))
    sd = np.empty_like(mean)
    noise = np.empty_like(mean)
    bound = np.empty_like(mean)
    for j in range(len(names)):
        z, transform = fit_output_transform(y[model, j])
        if transform is None:  # every value equal: nothing to tell points apart
            mean[:, j] = y[model[0], j]
            bound[:, j] = y[model[0], j]
            sd[:, j] = 0.0
            noise[:, j] = 0.0
            continue
        fixed = _gp.NOISE_VAR_BOUNDS[0] if spec.deterministic_objective else None
        rng = np.random.default_rng([spec.seed % 2**64, 7, j])
        hyper = _gp.fit(x_all[model], z, enc.groups, rng, None, fixed_noise=fixed)
        posterior = _gp.Posterior(x_all[model], z, enc.groups, hyper)
        if noisy_results(spec, posterior):
            # As the sampler does under noise: outputs only standardised (the power transform
            # stretches the noise of the good region), and the model fitted again on them.
            z, transform = _standardised(y[model, j])
            hyper = _gp.fit(x_all[model], z, enc.groups, rng, None, fixed_noise=fixed)
            posterior = _gp.Posterior(x_all[model], z, enc.groups, hyper)
        m, var = posterior.predict(x_all[points])
        s = np.sqrt(var)
        n_sd = math.sqrt(posterior.noise)
        # Back on the objective's scale: the mean through the inverse transform (the median
        # of the prediction there), spreads from the transformed one-sd band around it.
        mean[:, j] = transform.inverse(m)
        # The transform is increasing, so this is the prediction's upper end on the
        # objective's scale.
        bound[:, j] = transform.inverse(m + RECOMMEND_SD * s)
        sd[:, j] = 0.5 * np.abs(transform.inverse(m + s) - transform.inverse(m - s))
        noise[:, j] = (
            0.0
            if spec.deterministic_objective
            else 0.5 * np.abs(transform.inverse(m + n_sd) - transform.inverse(m - n_sd))
        )
    candidates = np.flatnonzero(ok)
    # One objective: the lowest upper end of the prediction. Several: the front of the
    # predictions themselves (the trade-off a user reads off), measured no other way.
    ranked = bound if len(names) == 1 else mean
    chosen = [int(candidates[k]) for k in _best(ranked[candidates])]
    out = []
    for k in chosen:
        i = int(points[k])
        out.append(
            Recommended(
                trial=used[i],
                mean={n: float(mean[k, j] * sign[j]) for j, n in enumerate(names)},
                stddev={n: float(sd[k, j]) for j, n in enumerate(names)},
                noise_stddev={n: float(noise[k, j]) for j, n in enumerate(names)},
                measurements=int(counts[k]),
            )
        )
    return sorted(out, key=lambda r: r.trial.number)


def _standardised(y: Array) -> tuple[Array, OutputTransform]:
    """``y`` less its mean, over its standard deviation, and that transform (``y`` varies)."""
    mean, sd = float(np.mean(y)), float(np.std(y))
    out: Array = (y - mean) / sd
    return out, OutputTransform(0.0, 1.0, None, mean, sd)


def _model_rows(y: Array, seed: int) -> npt.NDArray[np.intp]:
    """Rows the model is fitted on: all, or beyond ``MAX_MODEL_TRIALS`` the best half by the
    scalar sum of ranks plus a seeded sample of the rest (as the sampler's cap)."""
    n = len(y)
    if n <= MAX_MODEL_TRIALS:
        return np.arange(n)
    ranks = np.argsort(np.argsort(y, axis=0, kind="stable"), axis=0, kind="stable").sum(axis=1)
    order = np.argsort(ranks, kind="stable")
    keep = order[: MAX_MODEL_TRIALS // 2]
    rest = order[MAX_MODEL_TRIALS // 2 :]
    pick = np.random.default_rng([seed % 2**64, 11]).choice(
        rest, MAX_MODEL_TRIALS - len(keep), replace=False
    )
    out: npt.NDArray[np.intp] = np.sort(np.concatenate([keep, pick]))
    return out


def _best(mean: Array) -> list[int]:
    """Indices of the best row (one column; the first among ties) or of the rows no other
    row dominates (several columns; lower is better)."""
    if mean.shape[1] == 1:
        return [int(np.argmin(mean[:, 0]))]
    keep = []
    for i in range(len(mean)):
        dominated = np.any(np.all(mean <= mean[i], axis=1) & np.any(mean < mean[i], axis=1))
        if not dominated:
            keep.append(i)
    return keep
