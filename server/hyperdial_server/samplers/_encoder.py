"""The search space as the Bayesian sampler's model and optimiser see it: ``Encoder``.

A point of a search space becomes a row of coordinates, one per parameter, and a row of
coordinates a row of model features (``_gp``'s feature groups). ``Encoder`` implements
``_acquisition.Design``, so the acquisition search moves over the same coordinates and never
rounds a discrete value after the fact.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hyperdial_server.core.space import (
    CategoricalDomain,
    DiscreteDomain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    Params,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.samplers._gp import Group

Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Value of a numeric coordinate's feature while the parameter is inactive.
_INACTIVE = 0.5
# A categorical domain with more values is searched over a random subset in a local search.
_MAX_EXHAUSTIVE = 64
# Distances of the neighbours tried around a value of a large discrete range.
_STEPS = 2.0 ** -np.arange(1, 40, dtype=np.float64)


class Encoder:
    """The search space as coordinates and model features (implements ``_acquisition.Design``).

    Coordinates, one per parameter in ``space.parameters`` order: float and integer parameters
    in [0, 1] (log space for log scale; integers at ``(n - low) / (high - low)``), discrete
    parameters at ``rank / (count - 1)``, categorical ones as the code ``0..count-1``. An
    inactive parameter's coordinate is kept but ignored by the features.

    Args:
        space: The search space.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.params = space.parameters
        self._pos = {p.name: i for i, p in enumerate(self.params)}
        self._float: list[int] = []
        self._discrete: list[int] = []
        self._value_col: dict[int, int] = {}
        groups: list[Group] = []
        col = 0
        for i, p in enumerate(self.params):
            d = p.domain
            if isinstance(d, FloatDomain):
                self._float.append(i)
            elif _count(p) > 1:
                self._discrete.append(i)
            if p.condition is None and _count(p) == 1:
                continue  # a constant: nothing to model
            categorical = isinstance(d, CategoricalDomain)
            width = 1 if categorical or p.condition is None else 2
            groups.append(Group(tuple(range(col, col + width)), categorical))
            self._value_col[i] = col
            col += width
        self.groups = tuple(groups)
        self.n_features = col
        # For each conditional parameter: its parent's coordinate and the parent positions
        # (code, rank or integer) that activate it.
        self._conditions: dict[int, tuple[int, Array]] = {}
        for i, p in enumerate(self.params):
            if p.condition is not None:
                parent = self.space[p.condition.parent]
                keys = [_position_of(parent, v) for v in p.condition.values]
                self._conditions[i] = (self._pos[parent.name], np.array(keys, dtype=np.float64))
        # Coordinates given to inactive parameters: the middle (a valid value), code 0.
        neutral = np.full((1, len(self.params)), _INACTIVE)
        for i, p in enumerate(self.params):
            if isinstance(p.domain, CategoricalDomain):
                neutral[0, i] = 0.0
        self._neutral = self._snap(neutral)[0]
        # Every value of a small discrete coordinate, by coordinate (built on first use).
        self._every_value: dict[int, Array] = {}

    # -- Design ----------------------------------------------------------------------------

    @property
    def n_dims(self) -> int:
        """Number of coordinates."""
        return len(self.params)

    @property
    def float_dims(self) -> tuple[int, ...]:
        """Coordinates of float parameters."""
        return tuple(self._float)

    @property
    def discrete_dims(self) -> tuple[int, ...]:
        """Coordinates of integer, discrete and categorical parameters with several values."""
        return tuple(self._discrete)

    def feature_column(self, dim: int) -> int:
        """Feature column of coordinate ``dim``."""
        return self._value_col[dim]

    def from_unit(self, s: Array) -> Array:
        """Coordinates from unit-cube rows (each value region gets its share of the cube)."""
        u = np.empty_like(s)
        for i, p in enumerate(self.params):
            d = p.domain
            col = np.clip(s[:, i], 0.0, 1.0 - 2.0**-53)
            if isinstance(d, FloatDomain):
                u[:, i] = col
            elif isinstance(d, IntDomain):
                if d.log:
                    lo, hi = math.log(d.low - 0.5), math.log(d.high + 0.5)
                    n = np.floor(np.exp(lo + (hi - lo) * col) + 0.5)
                    u[:, i] = self._int_unit(d, n)
                else:
                    span = float(d.high - d.low)
                    u[:, i] = np.floor(col * (span + 1.0)) / span
            else:
                k = _count(p)
                r = np.floor(col * k)
                u[:, i] = r if isinstance(d, CategoricalDomain) else r / max(k - 1, 1)
        return self._snap(u)

    def active(self, u: Array) -> BoolArray:
        """Whether each parameter is active at each row."""
        act = np.ones(u.shape, dtype=bool)
        for i in range(len(self.params)):
            cond = self._conditions.get(i)
            if cond is None:
                continue
            parent, keys = cond
            act[:, i] = act[:, parent] & np.isin(self._parent_key(parent, u[:, parent]), keys)
        return act

    def features(self, u: Array) -> Array:
        """Model features of coordinate rows."""
        act = self.active(u)
        x = np.empty((u.shape[0], self.n_features), dtype=np.float64)
        for i, p in enumerate(self.params):
            col = self._value_col.get(i)
            if col is None:
                continue
            if isinstance(p.domain, CategoricalDomain):
                x[:, col] = np.where(act[:, i], u[:, i], -1.0)
            elif p.condition is None:
                x[:, col] = u[:, i]
            else:
                x[:, col] = np.where(act[:, i], u[:, i], _INACTIVE)
                x[:, col + 1] = act[:, i]
        return x

    def options(self, value: float, dim: int, rng: np.random.Generator) -> Array:
        """Values of discrete coordinate ``dim`` to try in a local search from ``value``."""
        p = self.params[dim]
        d = p.domain
        k = _count(p)
        if isinstance(d, CategoricalDomain):
            codes = np.arange(k, dtype=np.float64)
            if k > _MAX_EXHAUSTIVE:
                codes = rng.choice(codes, _MAX_EXHAUSTIVE, replace=False)
            out: Array = codes[codes != value]
            return out
        if (isinstance(d, DiscreteDomain) and k <= _MAX_EXHAUSTIVE) or (
            isinstance(d, IntDomain) and d.high - d.low < _MAX_EXHAUSTIVE
        ):
            every = self._every_value.get(dim)
            if every is None:  # the same for every start and round of a local search
                if isinstance(d, DiscreteDomain):
                    every = np.arange(k, dtype=np.float64) / (k - 1)
                else:
                    every = self._int_unit(d, np.arange(d.low, d.high + 1, dtype=np.float64))
                self._every_value[dim] = every
            out = every[every != value]
            return out
        # Large ranges: neighbours at growing distances, plus a few random values.
        cands = np.concatenate([value + _STEPS, value - _STEPS, rng.random(8)])
        snapped = self._snap_dim(dim, np.clip(cands, 0.0, 1.0))
        if isinstance(d, IntDomain):
            n = self._int_value(d, np.array([value]))[0]
            near = np.array([n - 1.0, n + 1.0])
            near = near[(near >= d.low) & (near <= d.high)]
            snapped = np.concatenate([snapped, self._int_unit(d, near)])
        else:
            r = round(value * (k - 1))
            near = np.array([r - 1.0, r + 1.0])
            near = near[(near >= 0) & (near < k)]
            snapped = np.concatenate([snapped, near / (k - 1)])
        uniq = np.unique(snapped)
        out = uniq[uniq != value]
        return out

    def perturb(self, u: Array, scale: float, rng: np.random.Generator) -> Array:
        """Rows near ``u``: numeric coordinates moved by N(0, scale), categories changed rarely."""
        out = u.copy()
        for i, p in enumerate(self.params):
            if isinstance(p.domain, CategoricalDomain):
                k = _count(p)
                flip = rng.random(len(u)) < min(0.5, 2.0 * scale)
                out[:, i] = np.where(flip, rng.integers(0, k, len(u)), u[:, i])
            else:
                out[:, i] = np.clip(u[:, i] + rng.normal(0.0, scale, len(u)), 0.0, 1.0)
        return self._snap(out)

    # -- points ----------------------------------------------------------------------------

    def encode(self, point: Params) -> Array:
        """Coordinates of a point of the space (inactive parameters at a neutral value)."""
        row: Array = self._neutral.copy()
        for i, p in enumerate(self.params):
            v = point.get(p.name)
            if v is not None:
                row[i] = _unit_of(p, v)
        return row

    def decode(self, row: Array) -> Params:
        """The point of the space at coordinates ``row``."""
        point: Params = {}
        for i, p in enumerate(self.params):
            if self.space.is_active(p, point):
                point[p.name] = _value_at(p, float(row[i]))
        return point

    # -- helpers ---------------------------------------------------------------------------

    def _snap(self, u: Array) -> Array:
        for i in self._discrete:
            u[:, i] = self._snap_dim(i, u[:, i])
        return u

    def _snap_dim(self, i: int, col: Array) -> Array:
        p = self.params[i]
        d = p.domain
        if isinstance(d, IntDomain):
            return self._int_unit(d, self._int_value(d, col))
        if isinstance(d, DiscreteDomain):
            k = len(d.values)
            out: Array = np.round(np.clip(col, 0.0, 1.0) * (k - 1)) / (k - 1)
            return out
        if isinstance(d, CategoricalDomain):
            out = np.clip(np.round(col), 0, len(d.values) - 1)
            return out
        return col

    @staticmethod
    def _int_value(d: IntDomain, col: Array) -> Array:
        col = np.clip(col, 0.0, 1.0)
        n: Array
        if d.log:
            lo, hi = math.log(d.low), math.log(d.high)
            n = np.round(np.exp(lo + (hi - lo) * col)).astype(np.float64)
        else:
            n = float(d.low) + np.round(col * float(d.high - d.low))
        out: Array = np.clip(n, d.low, d.high)
        return out

    @staticmethod
    def _int_unit(d: IntDomain, n: Array) -> Array:
        n = np.clip(n, d.low, d.high)
        if d.log:
            lo, hi = math.log(d.low), math.log(d.high)
            out: Array = (np.log(n) - lo) / (hi - lo)
        else:
            out = (n - d.low) / float(d.high - d.low)
        return np.clip(out, 0.0, 1.0)

    def _parent_key(self, parent: int, col: Array) -> Array:
        p = self.params[parent]
        d = p.domain
        if isinstance(d, IntDomain):
            return self._int_value(d, col)
        if isinstance(d, DiscreteDomain):
            out: Array = np.round(col * max(len(d.values) - 1, 1))
            return out
        return col


def _count(p: ParameterConfig) -> int:
    d = p.domain
    if isinstance(d, (CategoricalDomain, DiscreteDomain)):
        return len(d.values)
    return 2  # float and int domains have at least two values


def _position_of(parent: ParameterConfig, value: ParamValue) -> float:
    """The key of a parent value as ``Encoder._parent_key`` computes it."""
    d = parent.domain
    if isinstance(d, CategoricalDomain):
        return float(d.values.index(str(value)))
    if isinstance(d, DiscreteDomain):
        return float(d.values.index(float(value)))
    return float(value)


def _unit_of(p: ParameterConfig, v: ParamValue) -> float:
    d = p.domain
    if isinstance(d, FloatDomain):
        x = float(v)
        if d.log:
            lo, hi = math.log(d.low), math.log(d.high)
            return min(max((math.log(x) - lo) / (hi - lo), 0.0), 1.0)
        # Halves: the difference of two finite bounds can overflow.
        u = (0.5 * x - 0.5 * d.low) / (0.5 * d.high - 0.5 * d.low)
        return min(max(u, 0.0), 1.0)
    if isinstance(d, IntDomain):
        if not isinstance(v, int):
            raise TypeError(f"{p.name}: {v!r} is not an integer")
        if d.log:
            lo, hi = math.log(d.low), math.log(d.high)
            return min(max((math.log(v) - lo) / (hi - lo), 0.0), 1.0)
        return (v - d.low) / (d.high - d.low)
    if isinstance(d, CategoricalDomain):
        return float(d.values.index(str(v)))
    k = len(d.values)
    return d.values.index(float(v)) / (k - 1) if k > 1 else 0.0


def _value_at(p: ParameterConfig, u: float) -> ParamValue:
    """The value of ``p`` at coordinate ``u`` (exact integer arithmetic for integers)."""
    d = p.domain
    if isinstance(d, FloatDomain):
        u = min(max(u, 0.0), 1.0)
        if d.log:
            lo, hi = math.log(d.low), math.log(d.high)
            x = d.low if u <= 0.0 else d.high if u >= 1.0 else math.exp(lo + (hi - lo) * u)
        else:
            x = d.low * (1.0 - u) + d.high * u
        return float(min(max(x, d.low), d.high))
    if isinstance(d, IntDomain):
        u = min(max(u, 0.0), 1.0)
        if d.log:
            lo, hi = math.log(d.low), math.log(d.high)
            n = round(math.exp(lo + (hi - lo) * u))
        else:
            n = d.low + round(u * (d.high - d.low))
        return int(min(max(n, d.low), d.high))
    if isinstance(d, CategoricalDomain):
        return d.values[int(min(max(round(u), 0), len(d.values) - 1))]
    k = len(d.values)
    return float(d.values[int(min(max(round(u * (k - 1)), 0), k - 1))])


__all__ = ["Encoder"]
