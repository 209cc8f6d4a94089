"""Bayesian optimisation: a Gaussian-process model and log expected improvement.

How one ask is answered (``docs/algorithms.md`` has the user-facing account):

1. **Initial design.** Index *i* gets the quasi-random (scrambled Sobol) point *i*, except
   that index 0 gets the centre of the space (``centre``) in a space of at least
   ``CENTRE_FROM_PARAMETERS`` parameters, while
   ``i < initial_trials`` and fewer than ``initial_trials`` trials have values, and whenever
   fewer than two have (a model needs data) unless one has and another ended INFEASIBLE (the
   feasibility model then says where trials run, 3b), where trials with values are the
   completed ones and, once one has completed, the stopped ones that reported (see 3a).
2. **Encoding** (``_encoder.Encoder``). Every parameter becomes one coordinate: floats and
   integers in the unit cube (in log space for log scale), discrete values by rank, categorical
   values by code. The model sees a feature map of it (see ``_gp``): one length scale per
   parameter; a conditional parameter gets an extra 0/1 "active" column and a fixed value while
   inactive, so inactive parameters never look like real values; a categorical parameter is
   compared by equality.
3. **Outputs.** Objectives are turned into one number to minimise: the objective itself
   (negated when maximised); 2 or 3 objectives go to ``_multi`` instead (one model per
   objective, expected hypervolume improvement); with 4 or more, where that measured worse, a
   random augmented Chebyshev scalarisation of the objectives normalised to [0, 1] (ParEGO),
   with weights drawn per suggestion. The numbers are robustly standardised, passed through a
   Yeo-Johnson transform fitted by maximum likelihood (tames heavy tails) and standardised
   again. Stopped trials
   (early stopping) enter as in point 3a; failed and infeasible ones as in point 3b.
3a. **Stopped trials.** A STOPPED trial's values are its last intermediate report, taken
   before training ended: no result, yet its region was measured and judged. It enters the
   model, per objective, at ``max(its estimated final value, the median of the completed
   trials' values)`` (oriented: lower is better): never better than the median completed
   result, worse when its own curve says so. The estimate is its own last value, except for
   the watched objective of a successive-halving, Hyperband or percentile (median) policy,
   where the trials carry the values the policy compared them by (``Trial.measurements``:
   at the rungs, or at the steps where trials stopped; see ``_worker.run_suggest``): there a
   least-squares line ``final = a + b * value`` (``b >= 0``) through the completed trials'
   values at the stopped trial's last such step and their results maps its value to the
   scale of results (``_final_estimates``; at least ``MIN_RUNG_PAIRS`` completed trials).
   With one objective, such a line estimate replaces the floor: it enters as it is, and as
   an estimate, with the variance of the completed trials' results about the line as its
   own noise variance (``_Data.estimate_var``, carried to the outputs' scale through the
   output transform's derivative; ``_gp.fit``'s ``extra_noise``). The fitted noise is then
   the objective's own: an estimate that misses by the line's scatter neither reads as noise
   (which would switch a deterministic objective to noisy expected improvement, point 7)
   nor pins the model, and a steep line (early values that predict results) keeps a cut
   trial's own standing even where it is better than the median. Several objectives keep
   the floor (their models take no per-point variance). Why the floor: the rules stop a
   trial for falling behind its peers (below the median or a percentile, outside the best
   1/eta of a rung) or a bar the user set, so a stop says "about average at best"; and a GP
   needs a value, not a rank like Optuna's TPE (every pruned trial below every completed
   one), which as a value (the worst seen) would make a close call cut at a late rung as
   bad as a diverged trial. Only completed trials set the incumbent and the ParEGO
   normalisation. Before any trial completed there is no median: stopped trials wait, and the
   design stays quasi-random. After one, they count towards the two a model needs (under ASHA
   most trials stop, and a second completion may take many trials). A missing objective value
   counts as the median; a stopped trial with no value (its worker stopped it before any
   report) counts as failed. A study whose stops end at final values (patience, a worker's own
   plateau test) says so with ``rank_stopped_trials``, as ``ListOptimalTrials`` then ranks
   them: a stopped trial with every objective's value is then modelled as completed.
3b. **Failed trials, infeasible trials, constraints.** A FAILED trial means the infrastructure
   failed (a lost worker, an expired lease), not its point: it is left out of every model and
   of the points already evaluated, so its point comes again only if the model still wants it
   (as Optuna treats a failed trial). An INFEASIBLE trial's point cannot give a result (out of
   memory, diverged): it is not in the objective's model (it has no value), is never suggested
   again, and teaches a model of the outcome. With outcome constraints (``StudySpec.
   constraints``), each bound of a constraint gets a model of the completed trials' values
   (``_constrained.Feasibility``); a completed trial that breaks a constraint stays in the
   objective's model (its value is real) but is never the incumbent. The acquisition adds the
   log probability that every bound holds and the trial runs to log EI; until a completed
   trial holds every constraint there is no incumbent, and the log probability of feasibility
   alone is maximised.
4. **Model.** At most ``MAX_MODEL_TRIALS`` finished trials enter the model: beyond that, the
   best half plus a seeded random sample of the rest. Hyperparameters are fitted by MAP
   (``_gp.fit``). (The replica hands a long study's sampler a window of its history, not all
   of it: ``service._asker.MODEL_HISTORY_*``.)
5. **Pending trials.** RUNNING trials, and the points already chosen in this ask, are added to
   the model as observations at their predicted mean (kriging believer) before the next point
   is chosen, so ``count = k`` gives k different points and a worker is not sent where another
   one already is.
6. **Concurrent asks.** Two asks computed at the same time do not see each other's points. The
   store hands out sampler indices in order and trials record theirs, so the indices below an
   ask's own that no trial of its history records count the asks in flight before it, even
   when their trials were committed out of order (for studies stored before indices were
   recorded, ``index - (highest trial number - trials imported as finished)`` estimates it,
   high with enqueued trials or trials imported as failed). An ask at position *p* computes
   the kriging-believer batch up to position *p*, with the randomness of each position seeded
   by (seed, history size, position), and returns point *p*: concurrent asks then get the
   points of one batch, all different. Positions are capped at ``MAX_LOOKAHEAD``.
7. **Acquisition.** Log expected improvement (plus the log probability of feasibility, 3b),
   maximised by ``_acquisition.ranked_by`` (the best point not evaluated or handed out
   already is taken). When the fitted noise variance is above ``NOISY_ABOVE`` (and the
   objective is not declared deterministic), log *noisy* expected improvement
   (``_acquisition.NoisyLogEI``) instead: with noisy results the best observed value is a
   lucky measurement, and an incumbent set there sends the search away from the good region;
   the incumbents are drawn from the model at the points that may be the incumbent; and when
   the power transform of point 3 does not clearly compress a tail of bad values
   (``drops_transform_under_noise``), the model is fitted again on outputs only standardised
   (additive noise, squeezed in the good region and stretched elsewhere by a transform that
   compresses the good values, is no longer of one variance there, and the model blurs the
   good region; a transform near the identity is fitted to the noise; one that compresses
   bad values keeps the good region sharp, and stays). Pending points are believed by the
   feasibility model too, and a believed value counts towards the incumbent only where the
   point is believed feasible.

The sampler is pure: the same inputs give the same points. Nothing is kept between calls, not
even fitted hyperparameters: every ask fits its model from the same starting points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hyperdial_server.core.early_stopping import EarlyStopping
from hyperdial_server.core.space import (
    CategoricalDomain,
    ParameterConfig,
    Params,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.samplers import _acquisition, _gp, _multi
from hyperdial_server.samplers._base import Sampler
from hyperdial_server.samplers._constrained import Feasibility
from hyperdial_server.samplers._encoder import Encoder
from hyperdial_server.samplers._sobol import QuasiRandomSampler
from hyperdial_server.samplers._transform import check_indices, point_from_units

Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Most finished trials the model is fitted on (cost control: fitting is cubic in this).
MAX_MODEL_TRIALS = 200
#: Completed trials a stopped trial's step needs before their values there map the stopped
#: trial's value to a final one (point 3a): a line through fewer says little.
MIN_RUNG_PAIRS = 3
#: Most asks in flight that an ask accounts for (see point 6 of the module docstring).
MAX_LOOKAHEAD = 16
#: Smallest distance (in the unit coordinates) between a new point and a point in flight;
#: closer candidates are passed over for the next best.
MIN_GAP_IN_FLIGHT = 1e-3
#: Fitted noise variance (on the standardised output scale) above which the acquisition is
#: noisy expected improvement rather than expected improvement below the best observed value.
NOISY_ABOVE = 0.01
#: Highest Yeo-Johnson exponent of the output transform that the model keeps under noise
#: (``drops_transform_under_noise``). Measured in bench/README.md ("The sampler under noise"):
#: at 20 % noise 93 % of Branin's exponents are 0.8 or below, 99 % of Hartmann-6's above; a
#: bound of 1 kept Hartmann-6's near-identity exponents (0.85 to 1, a sixth of its fits) and
#: lost it at 60 trials.
KEEP_TRANSFORM_UNDER_NOISE_UP_TO = 0.8
#: Fewest parameters of a space whose initial design starts at its centre (``centre``). In
#: fewer dimensions the quasi-random design already has a point near it, and the centre
#: measured no gain (bench/README.md).
CENTRE_FROM_PARAMETERS = 10
#: Fewest and most initial quasi-random trials of the default (2 per parameter in between).
MIN_DEFAULT_INITIAL = 5
MAX_DEFAULT_INITIAL = 10
#: Most objectives ``_multi``'s expected hypervolume improvement handles; studies with more use
#: ParEGO, which was better with 4 (docs/algorithms.md, "Several objectives").
MAX_HYPERVOLUME_OBJECTIVES = 3
#: Weight of the sum in the augmented Chebyshev scalarisation of several objectives (ParEGO).
CHEBYSHEV_RHO = 0.05


def centre(space: SearchSpace) -> Params:
    """The centre of ``space``, the first point of the initial design in a space of at least
    ``CENTRE_FROM_PARAMETERS`` parameters: every numeric parameter at the middle of its range
    (in log space for a log scale; the middle value of a discrete or integer one), every
    categorical parameter at its first value.

    Why: a space is drawn around what its author expects to work, and in many dimensions
    every quasi-random point is far from the centre: from 10 parameters on, the nearest of
    the 10 design points is, at the median, 0.38 of the unit range from it in some coordinate
    (0.19 in 2-D). Vizier's GP bandit and Optuna's CMA-ES start there too. Measured in
    bench/README.md ("In 10 to 30 dimensions"); where the centre is bad, it costs one trial
    of the design.
    """

    def unit(_position: int, param: ParameterConfig) -> float:
        return 0.0 if isinstance(param.domain, CategoricalDomain) else 0.5

    return point_from_units(space, unit)


def _initial_design(spec: StudySpec, indices: Sequence[int]) -> list[Params]:
    """The initial-design points of sampler ``indices`` (point 1)."""
    sobol = QuasiRandomSampler().suggest(spec, indices)
    if len(spec.space.parameters) < CENTRE_FROM_PARAMETERS:
        return sobol
    return [centre(spec.space) if i == 0 else p for i, p in zip(indices, sobol, strict=True)]


def default_initial_trials(space: SearchSpace) -> int:
    """Initial quasi-random trials of a study that does not set ``initial_trials``."""
    return min(MAX_DEFAULT_INITIAL, max(MIN_DEFAULT_INITIAL, 2 * len(space)))


class BayesianSampler(Sampler):
    """Gaussian-process Bayesian optimisation with log expected improvement.

    See the module docstring for the method. Cost per ask: fitting is O(n**3) in the trials
    modelled (at most ``MAX_MODEL_TRIALS``) times a few dozen L-BFGS-B iterations; choosing a
    point scores ``_acquisition.N_CANDIDATES`` candidates in O(n) each and runs a few short local
    searches; each further point of an ask, or ask in flight, repeats the choice (not the fit).
    """

    needs_history = True

    def suggest(
        self,
        spec: StudySpec,
        indices: Sequence[int],
        completed: Sequence[Trial] = (),
        pending: Sequence[Trial] = (),
    ) -> list[Params]:
        """Returns one point per index, in order.

        Args:
            spec: The study spec.
            indices: Sampler indices (non-negative).
            completed: Finished trials: COMPLETED ones feed the model; STOPPED ones as in
                point 3a of the module docstring; INFEASIBLE ones the feasibility model and
                FAILED ones nothing, as in point 3b.
            pending: RUNNING trials: their points are avoided.

        Raises:
            ValueError: An index is negative.
        """
        check_indices(indices, None)
        if not indices:
            return []
        enc = Encoder(spec.space)
        data = _observations(spec, enc, completed)
        n_ok = len(data.y)  # completed trials, and stopped ones once one trial completed
        n_init = spec.initial_trials or default_initial_trials(spec.space)
        wanted = list(dict.fromkeys(indices))
        # One trial with values beside an infeasible one: the outcome's model knows where
        # trials run, which beats more quasi-random points when most of the space crashes.
        ready = n_ok >= 2 or (n_ok == 1 and len(data.infeasible) > 0)
        initial = [i for i in wanted if not ready or (i < n_init and n_ok < n_init)]
        model = [i for i in wanted if i not in set(initial)]
        out: dict[int, Params] = {}
        if initial:
            out.update(zip(initial, _initial_design(spec, initial), strict=True))
        if model:
            busy = _encode_all(enc, [t.params for t in pending])
            busy += [enc.encode(out[i]) for i in initial]
            base = _sampled_before(completed, pending)
            history = (*completed, *pending)
            recorded = {t.sampler_index for t in history if t.sampler_index is not None}
            # Position of each index in the batch of asks in flight (distinct within a call).
            positions: dict[int, int] = {}
            last = -1
            for i in sorted(model):
                ahead = _in_flight_before(i, base, recorded)
                last = max(min(ahead, MAX_LOOKAHEAD), last + 1)
                positions[i] = last
            chosen = _batch(spec, enc, data, busy, base, last + 1)
            for i, position in positions.items():
                out[i] = chosen[position]
        return [out[i] for i in indices]


def _in_flight_before(index: int, base: int, recorded: set[int]) -> int:
    """Asks in flight before the ask of ``index``: the indices below it (at most
    ``MAX_LOOKAHEAD`` back) that no trial of the history records.

    Counting the missing indices, not ``index - base``, keeps asks whose trials committed out of
    order apart: with 12 and 14 in flight and 13 already RUNNING, both see ``base`` 14, yet 12
    has no ask in flight before it and 14 has one. Without recorded indices (studies stored
    before they were), ``index - base``, from :func:`_sampled_before`'s estimate.
    """
    if not recorded:
        return max(index - base, 0)
    return sum(1 for j in range(max(index - MAX_LOOKAHEAD, 0), index) if j not in recorded)


def _sampled_before(completed: Sequence[Trial], pending: Sequence[Trial]) -> int:
    """Sampler indices used by the trials of the history: one past the highest recorded.

    Trials record the index their point came from (``Trial.sampler_index``). Without any such
    trial (a study stored before indices were recorded), an estimate: trials are numbered in
    order of creation, so the highest number counts every trial created so far, less those
    imported as finished (created and completed at the same instant). Enqueued trials and
    imported failed trials take no index but cannot be told apart there, so that estimate is
    high with them.
    """
    history = (*completed, *pending)
    recorded = [t.sampler_index for t in history if t.sampler_index is not None]
    if recorded:
        return max(recorded) + 1
    imported = sum(1 for t in history if t.complete_time == t.create_time)
    return max((t.number for t in history), default=0) - imported


@dataclass
class _Data:
    """Observations on the encoded space."""

    u: Array  # (n, d) coordinates of completed trials, then of stopped ones
    y: Array  # (n, m) objective values, oriented for minimisation (stopped: capped, see 3a)
    failed: Array  # (f, d) coordinates of failed trials (not modelled, see 3b)
    completed: int  # rows of u and y that are completed trials (the first ones)
    feasible: BoolArray  # (n,) the row's values hold every constraint (all True without any)
    constraints: Array  # (completed, k) values of the spec's constraints, NaN where missing
    infeasible: Array  # (q, d) coordinates of INFEASIBLE trials
    # (n,) with one objective: the variance of a row's value as an estimate of a final result
    # (a stopped trial's, see 3a), 0 for a measured one; zeros with several objectives
    estimate_var: Array


def _encode_all(enc: Encoder, points: Sequence[Params]) -> list[Array]:
    out = []
    for point in points:
        try:
            out.append(enc.encode(point))
        except (KeyError, ValueError, TypeError):
            continue
    return out


def _observations(spec: StudySpec, enc: Encoder, completed: Sequence[Trial]) -> _Data:
    names = [o.name for o in spec.objectives]
    sign = np.array([-1.0 if o.maximize else 1.0 for o in spec.objectives])
    policy = spec.early_stopping
    ranked = policy is not None and policy.rank_stopped_trials
    rows: list[Array] = []
    ys: list[list[float]] = []
    failed: list[Array] = []
    infeasible: list[Array] = []
    holds: list[bool] = []  # completed rows, then stopped ones: every constraint holds
    bounded: list[list[float]] = []  # completed rows' constraint values
    stopped_holds: list[bool] = []
    stopped_rows: list[Array] = []
    stopped_ys: list[list[float]] = []
    # What the policy compared trials by (rung values, percentile values), by trial.
    stopped_at: list[Measurement | None] = []  # a stopped trial's last such measurement
    curves: list[list[Measurement]] = []  # a completed trial's
    for t in completed:
        # A trial that does not fit the space (impossible through the service) is skipped
        # rather than trusted.
        try:
            row = enc.encode(t.params)
        except (KeyError, ValueError, TypeError):
            continue
        if t.state is TrialState.FAILED:
            failed.append(row)
            continue
        if t.state is TrialState.INFEASIBLE:
            infeasible.append(row)
            continue
        values = t.values or {}
        if t.state is TrialState.STOPPED:
            # NaN for a value not reported: the median stands in for it (below).
            last = [_finite(values.get(n)) for n in names]
            if all(math.isnan(x) for x in last):
                failed.append(row)  # stopped before any report: nothing measured
                continue
            # A policy that ranks stopped trials makes a full last report a result.
            if not (ranked and not any(math.isnan(x) for x in last)):
                stopped_rows.append(row)
                stopped_ys.append(last)
                stopped_at.append(t.measurements[-1] if t.measurements else None)
                stopped_holds.append(spec.infeasibility(values) is None)
                continue
        elif t.state is not TrialState.COMPLETED or any(n not in values for n in names):
            continue
        v = [float(values[n]) for n in names]
        if not all(math.isfinite(x) for x in v):
            continue
        rows.append(row)
        ys.append(v)
        curves.append(t.measurements)
        holds.append(spec.infeasibility(values) is None)
        bounded.append([_finite(values.get(c.name)) for c in spec.constraints])
    d, m = enc.n_dims, len(names)
    y = np.array(ys, dtype=np.float64).reshape(-1, m) * sign
    estimate_var = np.zeros(len(y))
    if stopped_rows and len(y):
        stopped = np.array(stopped_ys, dtype=np.float64).reshape(-1, m) * sign
        median = np.median(y, axis=0)
        # Never better than the median completed result (fmax: NaN takes the median)...
        values = np.fmax(stopped, median)
        stopped_var = np.zeros(len(stopped))
        if policy is not None and policy.objective in names:
            j = names.index(policy.objective)
            estimates, variances, mapped = _final_estimates(
                stopped[:, j], stopped_at, curves, y[:, j], policy
            )
            values[:, j] = np.fmax(estimates, median[j])
            if m == 1:
                # ...unless, with one objective, the completed trials' line gave the estimate:
                # then it enters as it is, with the line's residual variance as its own noise
                # (point 3a).
                values[:, 0] = np.where(mapped, estimates, values[:, 0])
                stopped_var = np.where(mapped, variances, 0.0)
        y = np.vstack([y, values])
        estimate_var = np.concatenate([estimate_var, stopped_var])
        rows += stopped_rows
        holds += stopped_holds
    # With no completed trial there is no median, and no model either (point 1): left out.
    return _Data(
        u=np.array(rows, dtype=np.float64).reshape(-1, d),
        y=y,
        failed=np.array(failed, dtype=np.float64).reshape(-1, d),
        completed=len(ys),
        feasible=np.array(holds, dtype=bool),
        constraints=np.array(bounded, dtype=np.float64).reshape(len(ys), len(spec.constraints)),
        infeasible=np.array(infeasible, dtype=np.float64).reshape(-1, d),
        estimate_var=estimate_var,
    )


def _final_estimates(
    last: Array,
    at: Sequence[Measurement | None],
    curves: Sequence[Sequence[Measurement]],
    finals: Array,
    policy: EarlyStopping,
) -> tuple[Array, Array, BoolArray]:
    """Stopped trials' values of the watched objective on the scale of final values (oriented:
    lower is better), where the completed trials say how a value at a stopped trial's last
    rung (or a percentile rule's step) maps to a final one (point 3a of the module docstring),
    the variance of each such estimate, and which trials have one.

    For each such step, a least-squares line ``final = a + b * value at the step`` through the
    completed trials measured there, with ``b >= 0`` (a worse value at a step never predicts
    a better result). With fewer than ``MIN_RUNG_PAIRS`` such trials, or values that do not
    differ, a stopped trial keeps its own last value.

    Args:
        last: The stopped trials' last values, oriented.
        at: Each stopped trial's last measurement the policy compared, or ``None``.
        curves: Each completed trial's such measurements, in the order of ``finals``.
        finals: The completed trials' final values, oriented.
        policy: The study's policy (the watched objective and its direction).
    """
    out: Array = last.copy()
    var = np.zeros(len(out))
    mapped = np.zeros(len(out), dtype=bool)
    sign = -1.0 if policy.maximize else 1.0
    name = policy.objective
    lines: dict[int, tuple[float, float, float] | None] = {}
    for i, m in enumerate(at):
        if m is None or name not in m.values or not math.isfinite(out[i]):
            continue
        if m.step not in lines:
            lines[m.step] = _rung_line(m.step, name, sign, curves, finals)
        line = lines[m.step]
        if line is not None:
            out[i] = line[0] + line[1] * m.values[name] * sign
            var[i] = line[2]
            mapped[i] = True
    return out, var, mapped


def _rung_line(
    step: int,
    name: str,
    sign: float,
    curves: Sequence[Sequence[Measurement]],
    finals: Array,
) -> tuple[float, float, float] | None:
    """``(a, b, v)`` of the line ``final = a + b * value at step`` fitted on the completed
    trials with a measurement at ``step`` (slope at least 0), ``v`` the variance of their
    final values about it (the residual sum of squares over ``max(1, n - 2)``); ``None``
    without enough of them."""
    xs: list[float] = []
    fs: list[float] = []
    for curve, final in zip(curves, finals, strict=True):
        for m in curve:
            if m.step == step and name in m.values and math.isfinite(m.values[name]):
                xs.append(m.values[name] * sign)
                fs.append(float(final))
                break
    if len(xs) < MIN_RUNG_PAIRS:
        return None
    x, f = np.array(xs), np.array(fs)
    spread = float(np.var(x))
    if not spread > 0.0:
        return None
    slope = max(0.0, float(np.mean((x - x.mean()) * (f - f.mean()))) / spread)
    a = float(f.mean() - slope * x.mean())
    resid = f - (a + slope * x)
    return a, slope, float(resid @ resid) / max(1, len(x) - 2)


def _finite(value: float | None) -> float:
    """``value`` as a float, NaN when absent or not finite."""
    if value is None or not math.isfinite(value):
        return math.nan
    return float(value)


def _rng(spec: StudySpec, *keys: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed % 2**64, *keys])


def _scalarise(y: Array, rng: np.random.Generator, completed: int) -> Array:
    """One number per trial: the objective, or a random augmented Chebyshev scalarisation,
    normalised by the first ``completed`` rows (completed trials)."""
    if y.shape[1] == 1:
        out: Array = y[:, 0].copy()
        return out
    # Not by stopped trials: their early values, often far worse, would squash the completed
    # ones' spread on an objective, and with it that objective's weight.
    ref = y[:completed]
    lo = ref.min(axis=0)
    span = ref.max(axis=0) - lo
    f = (y - lo) / np.where(span > 0, span, 1.0)
    w = rng.dirichlet(np.ones(y.shape[1]))
    scal: Array = np.max(f * w, axis=1) + CHEBYSHEV_RHO * (f @ w)
    return scal


@dataclass(frozen=True)
class OutputTransform:
    """The fitted transform of :func:`fit_output_transform`, invertible.

    Attributes:
        median: Subtracted first.
        scale: Divided by next (robust spread).
        lam: The Yeo-Johnson exponent, or ``None`` when none was applied.
        mean: Subtracted from the transformed values.
        sd: Divided by last.
    """

    median: float
    scale: float
    lam: float | None
    mean: float
    sd: float

    def inverse(self, z: Array) -> Array:
        """Values on the objective's scale (oriented) of transformed values ``z``."""
        t = np.asarray(z, dtype=np.float64) * self.sd + self.mean
        if self.lam is not None:
            t = _yeo_johnson_inverse(t, self.lam)
        out: Array = t * self.scale + self.median
        return out


def fit_output_transform(y: Array) -> tuple[Array, OutputTransform | None]:
    """Robust standardisation, Yeo-Johnson transform, standardisation of values to minimise:
    the transformed values and the transform that gave them (``None`` when the values do not
    vary: every output is 0 and nothing maps back)."""
    if len(y) == 0:
        empty: Array = y.copy()
        return empty, None
    med = float(np.median(y))
    q75, q25 = np.percentile(y, [75.0, 25.0])
    scale = float(q75 - q25) / 1.349
    if not scale > 0:
        scale = float(np.std(y))
    if not scale > 0:
        return np.zeros_like(y), None
    z = (y - med) / scale
    lam: float | None = None
    if len(z) >= 4:
        z, lam = _yeo_johnson(z)
    sd = float(np.std(z))
    sd = sd if sd > 0 else 1.0
    mean = float(np.mean(z))
    out: Array = (z - mean) / sd
    return out, OutputTransform(med, scale, lam, mean, sd)


#: Yeo-Johnson exponents tried; the best by profile likelihood is used.
_YJ_LAMBDAS = np.linspace(-1.0, 2.0, 61)


def _yeo_johnson(z: Array) -> tuple[Array, float | None]:
    """Yeo-Johnson transform of ``z`` with the exponent of highest Gaussian likelihood, and
    that exponent (``None``: ``z`` returned as it is)."""
    lam = _YJ_LAMBDAS[:, None]
    pos = z >= 0
    a = np.log1p(np.abs(z))  # log(1 + |z|)
    with np.errstate(all="ignore"):
        # (exp(l * a) - 1) / l, tending to a as l -> 0 (same on the negative side with 2 - l).
        lp = np.where(np.abs(lam) < 1e-8, a, np.expm1(lam * a) / np.where(lam == 0, 1, lam))
        l2 = 2.0 - lam
        ln = np.where(np.abs(l2) < 1e-8, a, np.expm1(l2 * a) / np.where(l2 == 0, 1, l2))
        t = np.where(pos, lp, -ln)
        var = np.var(t, axis=1)
        llf = -0.5 * len(z) * np.log(var) + (_YJ_LAMBDAS - 1.0) * float(np.sum(np.sign(z) * a))
    llf = np.where(np.isfinite(llf) & (var > 0), llf, -np.inf)
    if not np.any(np.isfinite(llf)):
        return z, None
    k = int(np.argmax(llf))
    out: Array = t[k]
    if not np.all(np.isfinite(out)):
        return z, None
    return out, float(_YJ_LAMBDAS[k])


def _yeo_johnson_inverse(t: Array, lam: float) -> Array:
    """The inverse of the Yeo-Johnson transform of exponent ``lam``."""
    out = np.empty_like(t)
    pos = t >= 0
    with np.errstate(all="ignore"):
        if abs(lam) < 1e-8:
            out[pos] = np.expm1(t[pos])
        else:
            # Beyond the transform's range (lam < 0 bounds it): a large finite value.
            base = np.maximum(lam * t[pos] + 1.0, 1e-12)
            out[pos] = np.expm1(np.log(base) / lam)
        l2 = 2.0 - lam
        if abs(l2) < 1e-8:
            out[~pos] = -np.expm1(-t[~pos])
        else:
            base = np.maximum(1.0 - l2 * t[~pos], 1e-12)
            out[~pos] = -np.expm1(np.log(base) / l2)
    return out


class _ModelData(NamedTuple):
    """What one scalarisation's model is fitted on (:func:`_model_data`).

    Attributes:
        u: Coordinates of the rows modelled.
        z: Their model outputs.
        best: The incumbent output; ``None`` while no completed trial holds every constraint.
        anchors: The best rows' coordinates, where the acquisition's local searches start.
        eligible: The rows that may be the incumbent.
        lam: The power transform's exponent; ``None`` when none was applied.
        estimate_var: Each output's variance as an estimate (a stopped trial's), on the
            outputs' scale; 0 for a measured one.
    """

    u: Array
    z: Array
    best: float | None
    anchors: Array
    eligible: BoolArray
    lam: float | None
    estimate_var: Array


def _model_data(
    spec: StudySpec, data: _Data, y: Array, base: int, position: int, *, warp: bool = True
) -> _ModelData:
    """The model data of one scalarisation ``y`` of ``data``; the outputs standardised only,
    without the power transform, if not ``warp`` (the same rows: both keep the order of
    ``y``)."""
    if warp:
        z, transform = fit_output_transform(y)
        lam = transform.lam if transform is not None else None
        derivative = _transform_derivative(y, transform)
    else:
        z, lam = _standardised(y), None
        sd_y = float(np.std(y))
        derivative = np.full(len(y), 1.0 / sd_y if sd_y > 0 else 1.0)
    # An estimate's variance follows its value onto the outputs' scale (to first order).
    estimate_var = data.estimate_var * derivative**2
    u = data.u
    feasible = data.feasible
    # Which rows may be the incumbent: completed trials that hold every constraint. A stopped
    # trial is never better than the median per objective, yet a scalarisation may still rank
    # it first; a trial that breaks a constraint is a real value of the objective (modelled)
    # but no solution.
    ok = (np.arange(len(z)) < data.completed) & feasible
    if len(z) > MAX_MODEL_TRIALS:
        order = np.argsort(z, kind="stable")
        keep_best = order[: MAX_MODEL_TRIALS // 2]
        rest = order[MAX_MODEL_TRIALS // 2 :]
        pick = _rng(spec, base, position, 3).choice(
            rest, MAX_MODEL_TRIALS - len(keep_best), replace=False
        )
        keep = np.sort(np.concatenate([keep_best, pick]))
        u, z, ok, feasible = u[keep], z[keep], ok[keep], feasible[keep]
        estimate_var = estimate_var[keep]
    sd = float(np.std(z))
    z = (z - float(np.mean(z))) / (sd if sd > 0 else 1.0)
    estimate_var = estimate_var / (sd * sd if sd > 0 else 1.0)
    best: float | None = None
    if np.any(ok):
        best = float(np.min(z[ok]))
    elif data.feasible.all():
        best = float(np.min(z))  # every completed row left out of the subset: the best row
        ok = np.ones(len(z), dtype=bool)
    # The best rows, feasible ones first.
    order = np.argsort(z, kind="stable") if feasible.all() else np.lexsort((z, ~feasible))
    anchors = u[order[:3]]
    return _ModelData(u, z, best, anchors, ok, lam, estimate_var)


def _transform_derivative(y: Array, transform: OutputTransform | None) -> Array:
    """The derivative of ``transform`` (fitted by :func:`fit_output_transform`) at each value
    of ``y``; zeros without one (every output is 0)."""
    if transform is None:
        return np.zeros(len(y))
    t = (y - transform.median) / transform.scale
    if transform.lam is None:
        d = np.ones(len(y))
    else:
        lam = transform.lam
        d = np.where(t >= 0, (1.0 + np.abs(t)) ** (lam - 1.0), (1.0 + np.abs(t)) ** (1.0 - lam))
    out: Array = d / (transform.scale * transform.sd)
    return out


def _standardised(y: Array) -> Array:
    """``y`` less its mean, over its standard deviation (the model outputs under noise)."""
    sd = float(np.std(y))
    out: Array = (y - float(np.mean(y))) / (sd if sd > 0 else 1.0)
    return out


def _batch(
    spec: StudySpec,
    enc: Encoder,
    data: _Data,
    busy: list[Array],
    base: int,
    size: int,
) -> list[Params]:
    """The first ``size`` points of the kriging-believer batch after ``busy`` points."""
    feasibility = Feasibility.fit(spec, enc, data, _rng(spec, base, 0, 5), MAX_MODEL_TRIALS)
    if 1 < data.y.shape[1] <= MAX_HYPERVOLUME_OBJECTIVES:
        # Expected hypervolume improvement, one model per objective.
        return _multi.batch(
            spec, enc, data, busy, base, size, feasibility=feasibility, feasible=data.feasible
        )
    points: list[Params] = []
    chosen: list[Array] = []
    posterior: _gp.Posterior | None = None
    # With 4 or more objectives (ParEGO) every position fits its own scalarisation, from the
    # previous position's fit (the same points under another scalarisation, so a good start);
    # the first starts from the defaults.
    hyper: _gp.Hyper | None = None
    best: float | None = None
    anchors = np.empty((0, enc.n_dims))
    eligible = np.zeros(0, dtype=bool)
    multi = data.y.shape[1] > 1
    # Failed trials are not in it (point 3b): their points may come again.
    taken = {_key(enc.decode(row)) for row in (*busy, *data.u, *data.infeasible)}
    if feasibility is not None:
        for row in busy:
            feasibility.believe(row)
    for position in range(size):
        if posterior is None or multi:
            y = _scalarise(data.y, _rng(spec, base, position, 1), data.completed)
            md = _model_data(spec, data, y, base, position)
            best, anchors, eligible, lam = md.best, md.anchors, md.eligible, md.lam
            x = enc.features(md.u)
            hyper, posterior = _fit(spec, enc, x, md, _rng(spec, base, position, 2), hyper)
            if not multi and noisy_results(spec, posterior) and drops_transform_under_noise(lam):
                # Noisy results, and a power transform that does not clearly compress a tail
                # of bad values: one squeezing the good values together (and their noise with
                # them) while it stretches the bad ones, or one near the identity, fitted to
                # the noise more than to the objective's shape. One noise variance cannot
                # model the first, and the model blurs the region that matters; the values
                # are only standardised (point 7).
                md = _model_data(spec, data, y, base, position, warp=False)
                best, anchors, eligible = md.best, md.anchors, md.eligible
                hyper, posterior = _fit(spec, enc, x, md, _rng(spec, base, position, 2), None)
            for row in [*busy, *chosen]:
                best = _incumbent(best, _believe(posterior, enc, row), row, feasibility)
                eligible = np.append(eligible, _counts(row, feasibility))
        acquisition: _acquisition.Acquisition
        if best is None:
            # No feasible trial yet: find one first (point 3b).
            assert feasibility is not None  # without constraints every row is feasible
            acquisition = feasibility
        else:
            improvement: _acquisition.Acquisition
            if not multi and noisy_results(spec, posterior):
                improvement = _acquisition.NoisyLogEI(
                    posterior, eligible, _rng(spec, base, position, 6)
                )
            else:
                improvement = _acquisition.LogEI(posterior, best)
            acquisition = (
                improvement if feasibility is None else _acquisition.Sum(improvement, feasibility)
            )
        rows = _acquisition.ranked_by(enc, acquisition, _rng(spec, base, position, 4), anchors)
        # The best point not handed out or evaluated already (discrete spaces run out of new
        # points near the optimum; re-running a known point teaches the model nothing).
        # Nor one almost on top of a point in flight: that worker is already measuring it.
        in_flight = np.array([*busy, *chosen]) if busy or chosen else np.empty((0, enc.n_dims))
        point = enc.decode(rows[0])
        for row in rows:
            candidate = enc.decode(row)
            if _key(candidate) in taken:
                continue
            if len(in_flight):
                gap = np.min(np.linalg.norm(in_flight - enc.encode(candidate), axis=1))
                if gap < MIN_GAP_IN_FLIGHT:
                    continue
            point = candidate
            break
        taken.add(_key(point))
        points.append(point)
        canonical = enc.encode(point)
        chosen.append(canonical)
        best = _incumbent(best, _believe(posterior, enc, canonical), canonical, feasibility)
        eligible = np.append(eligible, _counts(canonical, feasibility))
        if feasibility is not None:
            feasibility.believe(canonical)
    return points


def _fit(
    spec: StudySpec,
    enc: Encoder,
    x: Array,
    md: _ModelData,
    rng: np.random.Generator,
    warm: _gp.Hyper | None,
) -> tuple[_gp.Hyper, _gp.Posterior]:
    """The model of ``md``'s outputs at features ``x``: fitted hyperparameters (from ``warm``
    when given) and the posterior, stopped trials' estimates weighed by their variances."""
    fixed = _gp.NOISE_VAR_BOUNDS[0] if spec.deterministic_objective else None
    hyper = _gp.fit(x, md.z, enc.groups, rng, warm, fixed_noise=fixed, extra_noise=md.estimate_var)
    return hyper, _gp.Posterior(x, md.z, enc.groups, hyper, md.estimate_var)


def drops_transform_under_noise(lam: float | None) -> bool:
    """Whether a Yeo-Johnson transform of exponent ``lam`` (``None``: none) is dropped when the
    results are noisy (point 7): every exponent above ``KEEP_TRANSFORM_UNDER_NOISE_UP_TO``.
    Above 1 the transform compresses the low (good, once oriented) values and stretches the
    high ones, the shape of a narrow deep optimum; between that bound and 1 it is near the
    identity, bending the values by what the noise suggests. At or below the bound it
    compresses a long tail of bad values (diverged runs, a steep corner of the space), which
    keeps the model's attention on the good region, noise or not."""
    return lam is not None and lam > KEEP_TRANSFORM_UNDER_NOISE_UP_TO


def noisy_results(spec: StudySpec, posterior: _gp.Posterior) -> bool:
    """Whether the results are noisy enough for noisy expected improvement (point 7): the
    fitted noise variance, on the standardised scale, above ``NOISY_ABOVE``."""
    return not spec.deterministic_objective and posterior.noise > NOISY_ABOVE


def _counts(row: Array, feasibility: Feasibility | None) -> bool:
    """Whether a pending point believed at its predicted mean may be the incumbent (as
    :func:`_incumbent` counts it)."""
    return feasibility is None or bool(feasibility.holds(row[None, :])[0])


def _incumbent(
    best: float | None, believed: float, row: Array, feasibility: Feasibility | None
) -> float | None:
    """The incumbent once a pending point is believed at ``believed``: that value counts when
    the point is believed feasible too (every constraint model's mean holds)."""
    if feasibility is not None and not feasibility.holds(row[None, :])[0]:
        return best
    return believed if best is None else min(best, believed)


def _key(point: Params) -> tuple[tuple[str, ParamValue], ...]:
    return tuple(sorted(point.items()))


def _believe(posterior: _gp.Posterior, enc: Encoder, row: Array) -> float:
    """Adds a pending point to the model at its predicted mean; returns that mean.

    The believed value also counts towards the incumbent: otherwise a point predicted to
    improve keeps its expected improvement after conditioning (variance gone, improvement
    "certain"), and the next point lands right beside it.
    """
    x = enc.features(row[None, :])
    mean, _ = posterior.predict(x)
    posterior.condition_on(x[0], float(mean[0]))
    return float(mean[0])
