"""Several objectives: one Gaussian process per objective, expected hypervolume improvement.

How ``_bayes`` answers an ask of a study with 2 or more objectives (``docs/algorithms.md``,
"Several objectives", has the user-facing account and the measurements):

1. **Models.** Per objective, the values of ``_bayes._observations`` (completed trials, then
   stopped ones as point 3a of ``_bayes`` gives them) go through that objective's own output
   transform (``_bayes.fit_output_transform``) and get their own Gaussian process
   (``_gp.fit``), fitted once per ask. Failed and infeasible trials are in no model (point 3b
   of ``_bayes``). Above ``MAX_MODEL_TRIALS`` rows every model is fitted on the same subset:
   the best half by Pareto layer, plus a seeded random sample of the rest.
2. **What is improved on.** The completed trials (only the feasible ones when the caller says
   which are) on the transformed scale, against a reference point placed per objective a
   quarter of the way (``REFERENCE_SHARE``) from the Pareto front's worst value to the worst
   value of any completed trial, plus ``REFERENCE_MARGIN`` of the objective's range (see
   :func:`reference_point`).
3. **Acquisition.** The log of the expected hypervolume improvement of a candidate over those
   points, by the hypervolume scalarisation of ``_hypervolume`` averaged over
   ``N_DIRECTIONS`` fixed quasi-random directions and ``N_DRAWS`` fixed normal draws of the
   (independent) posteriors, softened so that it orders candidates where no draw improves;
   plus the log probability of feasibility when a feasibility model is given.
4. **Optimisation.** ``_acquisition.ranked_by`` on this acquisition: quasi-random candidates
   and perturbations of the Pareto-optimal trials, the best few improved by local search
   (L-BFGS-B over float coordinates with analytic gradients, every value of each discrete
   coordinate in turn).
5. **Batches.** Pending trials, then each point chosen, join every model at its predicted means
   (kriging believer), the set improved on and the feasibility model; points already
   evaluated or handed out, or within ``_bayes.MIN_GAP_IN_FLIGHT`` of a point in flight, are
   passed over, as with one objective. Concurrent asks compute the batch up to their position
   (``_bayes`` point 6) and get its points.

Pure: the directions and draws are seeded by the study seed and the history size, each
position's candidates by its position too; nothing is kept between calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudySpec
from hyperdial_server.samplers import _acquisition, _bayes, _gp
from hyperdial_server.samplers._encoder import Encoder
from hyperdial_server.samplers._hypervolume import (
    LogHvi,
    directions,
    normal_draws,
    pareto_mask,
    pareto_order,
)

Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Directions of the hypervolume scalarisation (a power of 2 keeps Sobol balanced).
N_DIRECTIONS = 32
#: Normal draws of the posterior at each candidate (common to all candidates).
N_DRAWS = 16
#: Where the reference point lies, per objective: this share of the way from the Pareto
#: front's worst value to the worst value of any completed trial, then ``REFERENCE_MARGIN``
#: of the objective's range beyond. Near the front (0), an early front of a few points is
#: never extended; far (1), points at the ends of the front, where one objective is at its
#: best and the others anywhere, outweigh the rest (measured in ``docs/algorithms.md``).
REFERENCE_SHARE = 0.25
REFERENCE_MARGIN = 0.1
#: Candidates scored at once (bounds the (candidates, draws, directions) arrays).
_CHUNK = 128
#: Step of the finite differences of a feasibility model's log probability.
_FD_STEP = 1e-6


class FeasibilityModel(Protocol):
    """A model of the constraints, as the acquisition uses it."""

    def log_pof(self, u: Array) -> Array:
        """Log probability that every constraint holds at the encoded rows ``u``."""
        ...

    def believe(self, row: Array) -> None:
        """Adds a pending point (an encoded row) at its predicted values."""
        ...


def batch(
    spec: StudySpec,
    enc: Encoder,
    data: _bayes._Data,
    busy: list[Array],
    base: int,
    size: int,
    *,
    feasibility: FeasibilityModel | None = None,
    feasible: BoolArray | None = None,
) -> list[Params]:
    """The first ``size`` points of the kriging-believer batch after ``busy`` points.

    Args:
        spec: The study spec (2 or more objectives).
        enc: Its encoder.
        data: The observations (``_bayes._observations``), at least one completed row.
        busy: Encoded points in flight (pending trials, initial points of this ask).
        base: Sampler indices used by the history (seeds every random choice).
        size: Points wanted: positions 0 to ``size - 1`` of the batch.
        feasibility: A model of the constraints, or ``None`` (all feasible).
        feasible: Which rows of ``data.u`` are feasible (only completed feasible rows are
            improved on); ``None``: all.

    Returns:
        ``size`` points, in order of position.
    """
    z = _outputs(data)
    posteriors = _fit(spec, enc, data, z, base)
    completed = z[: data.completed]
    ok = np.ones(data.completed, dtype=bool)
    if feasible is not None:
        ok = np.asarray(feasible, dtype=bool)[: data.completed]
    m = z.shape[1]
    on_front = pareto_mask(completed[ok])
    rng = _bayes._rng(spec, base, 5)
    hvi = LogHvi(
        reference_point(completed, completed[ok][on_front]),
        directions(m, N_DIRECTIONS, rng),
        normal_draws(m, N_DRAWS, rng),
        completed[ok],
    )
    anchors = data.u[: data.completed][ok][on_front]
    # As with one objective, failed trials' points may come again, infeasible ones' never.
    taken = {_bayes._key(enc.decode(row)) for row in (*busy, *data.u, *data.infeasible)}
    for row in busy:
        _believe(enc, posteriors, hvi, feasibility, row)
    points: list[Params] = []
    chosen: list[Array] = []
    design = _Coordinates(enc)
    acquisition = _Acquisition(enc, posteriors, hvi, feasibility)
    for position in range(size):
        rng = _bayes._rng(spec, base, position, 4)
        rows = _acquisition.ranked_by(design, acquisition, rng, anchors)
        in_flight = np.array([*busy, *chosen]) if busy or chosen else np.empty((0, enc.n_dims))
        point = enc.decode(rows[0])
        for row in rows:
            candidate = enc.decode(row)
            if _bayes._key(candidate) in taken:
                continue
            if len(in_flight):
                gap = np.min(np.linalg.norm(in_flight - enc.encode(candidate), axis=1))
                if gap < _bayes.MIN_GAP_IN_FLIGHT:
                    continue
            point = candidate
            break
        taken.add(_bayes._key(point))
        points.append(point)
        canonical = enc.encode(point)
        chosen.append(canonical)
        _believe(enc, posteriors, hvi, feasibility, canonical)
    return points


def reference_point(y: Array, front: Array) -> Array:
    """The reference point of completed trials' values ``y`` (minimised) whose Pareto front
    is ``front`` (the feasible ones'; may be empty).

    Per objective: from the front's worst value (its nadir), ``REFERENCE_SHARE`` of the way
    to the worst value of any completed trial, plus ``REFERENCE_MARGIN`` of the objective's
    range (of 1 when it is 0). Without a front, from the worst value.
    """
    worst = np.max(y, axis=0)
    span = worst - np.min(y, axis=0)
    nadir = np.max(front, axis=0) if len(front) else worst
    out: Array = (
        nadir + REFERENCE_SHARE * (worst - nadir) + REFERENCE_MARGIN * np.where(span > 0, span, 1.0)
    )
    return out


def _outputs(data: _bayes._Data) -> Array:
    """Model outputs of the rows of ``data.u``, one column per objective."""
    cols = [_bayes.fit_output_transform(data.y[:, j])[0] for j in range(data.y.shape[1])]
    out: Array = np.stack(cols, axis=1)
    return out


def _fit(
    spec: StudySpec, enc: Encoder, data: _bayes._Data, z: Array, base: int
) -> list[_gp.Posterior]:
    """One posterior per objective, on the same rows."""
    u = data.u
    if len(u) > _bayes.MAX_MODEL_TRIALS:
        order = pareto_order(z, _bayes.MAX_MODEL_TRIALS // 2)
        best = order[: _bayes.MAX_MODEL_TRIALS // 2]
        rest = np.setdiff1d(np.arange(len(u)), best)
        pick = _bayes._rng(spec, base, 3).choice(
            rest, _bayes.MAX_MODEL_TRIALS - len(best), replace=False
        )
        keep = np.sort(np.concatenate([best, pick]))
        u, z = u[keep], z[keep]
    x = enc.features(u)
    fixed = _gp.NOISE_VAR_BOUNDS[0] if spec.deterministic_objective else None
    out = []
    for j in range(z.shape[1]):
        hyper = _gp.fit(x, z[:, j], enc.groups, _bayes._rng(spec, base, 2, j), fixed_noise=fixed)
        out.append(_gp.Posterior(x, z[:, j], enc.groups, hyper))
    return out


def _believe(
    enc: Encoder,
    posteriors: list[_gp.Posterior],
    hvi: LogHvi,
    feasibility: FeasibilityModel | None,
    row: Array,
) -> None:
    """Adds a pending point to every model at its predicted mean, and to the points improved
    on: a point beside it then promises almost nothing, so the next one goes elsewhere."""
    x = enc.features(row[None, :])
    means = []
    for posterior in posteriors:
        mean, _ = posterior.predict(x)
        posterior.condition_on(x[0], float(mean[0]))
        means.append(float(mean[0]))
    hvi.add(np.array([means]))
    if feasibility is not None:
        feasibility.believe(row)


class _Coordinates:
    """The encoder as a ``_acquisition.Design`` whose features are the coordinates themselves.

    The acquisition then sees coordinates, as a feasibility model takes them, and builds the
    models' features itself; a float coordinate's column is the coordinate.
    """

    def __init__(self, enc: Encoder) -> None:
        self.enc = enc

    @property
    def n_dims(self) -> int:
        """Number of coordinates."""
        return self.enc.n_dims

    @property
    def float_dims(self) -> tuple[int, ...]:
        """Coordinates of float parameters."""
        return self.enc.float_dims

    @property
    def discrete_dims(self) -> tuple[int, ...]:
        """Coordinates of the other parameters with several values."""
        return self.enc.discrete_dims

    def from_unit(self, s: Array) -> Array:
        """Coordinates from unit-cube rows."""
        return self.enc.from_unit(s)

    def features(self, u: Array) -> Array:
        """The coordinates."""
        return u

    def feature_column(self, dim: int) -> int:
        """The coordinate."""
        return dim

    def active(self, u: Array) -> BoolArray:
        """Whether each parameter is active at each row."""
        return self.enc.active(u)

    def options(self, value: float, dim: int, rng: np.random.Generator) -> Array:
        """Values of discrete coordinate ``dim`` to try in a local search."""
        return self.enc.options(value, dim, rng)

    def perturb(self, u: Array, scale: float, rng: np.random.Generator) -> Array:
        """Rows near ``u``."""
        return self.enc.perturb(u, scale, rng)


class _Acquisition:
    """Log expected hypervolume improvement (plus log probability of feasibility) at
    coordinate rows, as ``_acquisition.ranked_by`` maximises it.

    Args:
        enc: The encoder.
        posteriors: One model per objective.
        hvi: The improvement over the points so far.
        feasibility: A model of the constraints, or ``None``.
    """

    def __init__(
        self,
        enc: Encoder,
        posteriors: list[_gp.Posterior],
        hvi: LogHvi,
        feasibility: FeasibilityModel | None,
    ) -> None:
        self.enc = enc
        self.posteriors = posteriors
        self.hvi = hvi
        self.feasibility = feasibility

    def value(self, u: Array) -> Array:
        """The acquisition at rows ``u``."""
        x = self.enc.features(u)
        out = np.empty(len(u))
        for start in range(0, len(u), _CHUNK):
            part = slice(start, start + _CHUNK)
            preds = [p.predict(x[part]) for p in self.posteriors]
            mean = np.stack([p[0] for p in preds], axis=1)
            var = np.stack([p[1] for p in preds], axis=1)
            out[part] = self.hvi.value(mean, var)
        if self.feasibility is not None:
            out += self.feasibility.log_pof(u)
        return out

    def value_and_grad(self, u: Array, columns: Sequence[int]) -> tuple[Array, Array]:
        """The acquisition at rows ``u`` (few: a local search's) and its derivatives by the
        float coordinates ``columns`` (by finite differences for the feasibility term, whose
        model gives values only)."""
        x = self.enc.features(u)
        cols = [self.enc.feature_column(d) for d in columns]
        parts = [p.predict_grad(x, cols) for p in self.posteriors]
        mean = np.stack([p[0] for p in parts], axis=1)
        var = np.stack([p[1] for p in parts], axis=1)
        val, g_mean, g_var = self.hvi.value_grad(mean, var)
        grad = np.zeros((len(u), len(cols)))
        for j, (_, _, d_mean, d_var) in enumerate(parts):
            grad += g_mean[:, j, None] * d_mean + g_var[:, j, None] * d_var
        if self.feasibility is not None:
            lp = self.feasibility.log_pof(u)
            val = val + lp
            # One moved copy of every row per coordinate, stepping inwards at the upper bound.
            dims = np.asarray(columns, dtype=np.intp)
            steps = np.where(u[:, dims] + _FD_STEP <= 1.0, _FD_STEP, -_FD_STEP)  # (N, C)
            moved = np.repeat(u[None, :, :], len(dims), axis=0)  # (C, N, d)
            for k, d in enumerate(dims):
                moved[k, :, d] += steps[:, k]
            shifted = self.feasibility.log_pof(moved.reshape(-1, u.shape[1]))
            grad += (shifted.reshape(len(dims), len(u)).T - lp[:, None]) / steps
        return val, grad
