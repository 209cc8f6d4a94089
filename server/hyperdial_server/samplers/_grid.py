"""Full factorial grid, visited in a seeded shuffled order without ever listing it.

Values of each parameter (its *axis*):

* categorical and discrete: every value, in order;
* int (linear or log scale): every integer of ``[low, high]``, counted, never listed;
* float: ``grid_resolution`` evenly spaced values with both bounds included, evenly in log
  space for log scale. Values that would coincide in floating point (a range only a few ulps
  wide) are kept once.

Conditional parameters are enumerated only under the parent values that activate them, so
the number of points of a parameter's subtree is

    count(p) = sum over values v of p of (product of count(c) over children c active under v)

and the grid has the product of ``count`` over the top-level parameters. Point *i* is decoded
from *i* by mixed radix over that tree in O(number of parameters), after a seeded bijection
of ``[0, N)`` has shuffled the visiting order, so the first points of a large grid are spread
over it rather than varying one parameter.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

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
from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Trial
from hyperdial_server.samplers._base import Sampler
from hyperdial_server.samplers._transform import check_indices

#: Most indices a grid hands out, so that every index fits a signed 64-bit counter. A grid
#: with more points is visited on ``MAX_GRID_CAPACITY`` of them, spread evenly over all of it.
MAX_GRID_CAPACITY = 2**62

_PERSON = b"hyperdial.grid"
_ROUNDS = 8
# Float grid values are computed in closed form when neighbours are further apart than this
# many ulps of the largest magnitude (far beyond the rounding error of the formula), and
# listed and de-duplicated otherwise.
_SAFE_ULPS = 64


class GridSampler(Sampler):
    """Visits every point of the full factorial grid exactly once, in a seeded order.

    ``capacity(spec)`` is the number of grid points (at most ``MAX_GRID_CAPACITY``); index *i*
    in ``[0, capacity)`` gives a distinct point, computed in O(number of parameters) whatever
    the size of the grid.
    """

    def capacity(self, spec: StudySpec) -> int | None:
        """Number of grid points, capped at ``MAX_GRID_CAPACITY``.

        Raises:
            ValueError: The space has a float parameter and ``spec.grid_resolution`` is unset.
        """
        return min(_plan(spec).count, MAX_GRID_CAPACITY)

    def suggest(
        self,
        spec: StudySpec,
        indices: Sequence[int],
        completed: Sequence[Trial] = (),
        pending: Sequence[Trial] = (),
    ) -> list[Params]:
        """Returns the grid point of each index, in order.

        Raises:
            ValueError: An index is outside ``[0, capacity(spec))``, or the space has a float
                parameter and ``spec.grid_resolution`` is unset.
        """
        if not indices:
            return []
        plan = _plan(spec)
        capacity = min(plan.count, MAX_GRID_CAPACITY)
        check_indices(indices, capacity)
        shuffle = _Shuffle(spec.seed, capacity)
        points: list[Params] = []
        for i in indices:
            flat = shuffle(i)
            if plan.count > capacity:
                # Stretch [0, capacity) over the whole grid; one-to-one since count > capacity.
                flat = flat * plan.count // capacity
            out: Params = {}
            _decode_product(plan.roots, flat, out)
            points.append({p.name: out[p.name] for p in spec.space.parameters if p.name in out})
        return points


# --- Axes: the values of one parameter, by index -------------------------------------------


class _ListAxis:
    def __init__(self, values: tuple[ParamValue, ...]) -> None:
        self.values = values
        # Keyed by type too: an int 1 is not the discrete value 1.0 (as in space.is_active).
        self._index = {(type(v), v): j for j, v in enumerate(values)}

    @property
    def size(self) -> int:
        return len(self.values)

    def value(self, j: int) -> ParamValue:
        return self.values[j]

    def index_of(self, value: ParamValue) -> int | None:
        return self._index.get((type(value), value))


@dataclass(frozen=True)
class _IntAxis:
    low: int
    high: int

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def value(self, j: int) -> ParamValue:
        return self.low + j

    def index_of(self, value: ParamValue) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            if self.low <= value <= self.high:
                return value - self.low
        return None


@dataclass(frozen=True)
class _FloatAxis:
    low: float
    high: float
    resolution: int
    log: bool

    @property
    def size(self) -> int:
        return self.resolution

    def value(self, j: int) -> ParamValue:
        # Both bounds exactly, then clamped: rounding must never step outside the domain.
        if j == 0:
            return float(self.low)
        if j == self.resolution - 1:
            return float(self.high)
        t = j / (self.resolution - 1)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            x = math.exp(lo * (1.0 - t) + hi * t)
        else:
            # A weighted sum cannot overflow the way high - low can.
            x = self.low * (1.0 - t) + self.high * t
        return float(min(max(x, self.low), self.high))

    def index_of(self, value: ParamValue) -> int | None:
        return None  # A float parameter is never a parent.


_Axis = _ListAxis | _IntAxis | _FloatAxis


def _axis(param: ParameterConfig, resolution: int | None) -> _Axis:
    d = param.domain
    if isinstance(d, CategoricalDomain):
        return _ListAxis(tuple(d.values))
    if isinstance(d, DiscreteDomain):
        return _ListAxis(tuple(float(v) for v in d.values))
    if isinstance(d, IntDomain):
        return _IntAxis(d.low, d.high)
    assert isinstance(d, FloatDomain)
    if resolution is None:
        raise ValueError(
            f"a grid over float parameter {param.name!r} needs grid_resolution in the study spec"
        )
    axis = _FloatAxis(d.low, d.high, resolution, d.log)
    if _well_separated(axis):
        return axis
    # A range a few ulps wide: list the distinct values (at most MAX_GRID_RESOLUTION of them).
    return _ListAxis(tuple(sorted({axis.value(j) for j in range(resolution)})))


def _well_separated(axis: _FloatAxis) -> bool:
    eps = sys.float_info.epsilon
    steps = axis.resolution - 1
    if axis.log:
        lo, hi = math.log(axis.low), math.log(axis.high)
        # Relative gap between neighbours vs relative error of exp(weighted sum of logs).
        return (hi - lo) / steps > _SAFE_ULPS * eps * (1.0 + max(abs(lo), abs(hi)))
    step = axis.high / steps - axis.low / steps
    return step > _SAFE_ULPS * math.ulp(max(abs(axis.low), abs(axis.high)))


# --- The tree of counts --------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A parameter, its axis, and the axis indices that activate children.

    ``special[k]`` is an axis index under which the children ``branches[k]`` are active; its
    ``weights[k]`` points (the product of their counts) start at flat offset ``offsets[k]``.
    Every other axis index carries one point. ``extras[k]`` is the sum of ``weights[m] - 1``
    for ``m <= k``: how far the flat offsets run ahead of the axis indices after ``k``.
    """

    name: str
    axis: _Axis
    count: int
    special: tuple[int, ...]
    weights: tuple[int, ...]
    offsets: tuple[int, ...]
    extras: tuple[int, ...]
    branches: tuple[tuple[_Node, ...], ...]


@dataclass(frozen=True)
class _Plan:
    roots: tuple[_Node, ...]
    count: int


def _plan(spec: StudySpec) -> _Plan:
    space = spec.space
    roots = tuple(_node(space, p, spec.grid_resolution) for p in space.roots)
    return _Plan(roots, math.prod(r.count for r in roots))


def _node(space: SearchSpace, param: ParameterConfig, resolution: int | None) -> _Node:
    axis = _axis(param, resolution)
    children = space.children(param.name)
    nodes = {c.name: _node(space, c, resolution) for c in children}
    # Only the values named by the children's conditions can activate one; whether they do is
    # decided by space.is_active itself, so the grid agrees with validate_point.
    candidates: set[int] = set()
    for c in children:
        assert c.condition is not None
        for v in c.condition.values:
            j = axis.index_of(v)
            if j is not None:
                candidates.add(j)
    special: list[int] = []
    weights: list[int] = []
    offsets: list[int] = []
    extras: list[int] = []
    branches: list[tuple[_Node, ...]] = []
    extra = 0
    for j in sorted(candidates):
        parent_value = {param.name: axis.value(j)}
        active = tuple(nodes[c.name] for c in children if space.is_active(c, parent_value))
        if not active:
            continue
        weight = math.prod(n.count for n in active)
        special.append(j)
        weights.append(weight)
        offsets.append(j + extra)
        extra += weight - 1
        extras.append(extra)
        branches.append(active)
    return _Node(
        name=param.name,
        axis=axis,
        count=axis.size + extra,
        special=tuple(special),
        weights=tuple(weights),
        offsets=tuple(offsets),
        extras=tuple(extras),
        branches=tuple(branches),
    )


def _decode(node: _Node, flat: int, out: Params) -> None:
    k = bisect.bisect_right(node.offsets, flat) - 1
    if k >= 0 and flat < node.offsets[k] + node.weights[k]:
        out[node.name] = node.axis.value(node.special[k])
        _decode_product(node.branches[k], flat - node.offsets[k], out)
        return
    out[node.name] = node.axis.value(flat - (node.extras[k] if k >= 0 else 0))


def _decode_product(nodes: Sequence[_Node], flat: int, out: Params) -> None:
    # Mixed radix, the first node most significant.
    digits: list[int] = []
    for node in reversed(nodes):
        flat, digit = divmod(flat, node.count)
        digits.append(digit)
    for node, digit in zip(nodes, reversed(digits), strict=True):
        _decode(node, digit, out)


# --- The shuffle ---------------------------------------------------------------------------


class _Shuffle:
    """A seeded bijection of ``[0, n)``.

    A balanced Feistel network permutes ``[0, 4**h)``, the smallest power of four not below
    ``n``; cycle-walking (applying it again while the result is ``>= n``) restricts it to
    ``[0, n)``, in fewer than four applications on average.
    """

    def __init__(self, seed: int, n: int) -> None:
        self._n = n
        self._half = max(1, ((n - 1).bit_length() + 1) // 2)
        self._mask = (1 << self._half) - 1
        material = hashlib.blake2b(
            str(seed).encode("ascii"), digest_size=8 * _ROUNDS, person=_PERSON
        ).digest()
        self._keys = [material[8 * r : 8 * r + 8] for r in range(_ROUNDS)]

    def __call__(self, i: int) -> int:
        if self._n <= 1:
            return i
        x = self._permute(i)
        while x >= self._n:
            x = self._permute(x)
        return x

    def _permute(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for key in self._keys:
            f = hashlib.blake2b(right.to_bytes(8, "big"), digest_size=8, key=key).digest()
            left, right = right, left ^ (int.from_bytes(f, "big") & self._mask)
        return (left << self._half) | right
