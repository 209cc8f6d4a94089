"""Mapping of unit numbers in ``[0, 1)`` to parameter values, shared by the random samplers.

Random and quasi-random sampling draw one unit number per active parameter and map it here, so
both treat every domain (and its scale) the same way:

* float, linear: uniform in ``[low, high]``;
* float, log: uniform in ``[log(low), log(high)]``, exponentiated;
* int, linear: uniform over the integers ``low..high``, both ends included;
* int, log: log-uniform over ``[low - 0.5, high + 0.5]``, rounded to the nearest integer, so
  every integer of the range can come out and small ones come out more often;
* categorical and discrete: the value at index ``floor(u * n)``.

Every result is clamped into its domain, since floating-point rounding may step just outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from hyperdial_server.core.space import (
    CategoricalDomain,
    DiscreteDomain,
    Domain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    Params,
    ParamValue,
    SearchSpace,
)


def value_from_unit(domain: Domain, u: float) -> ParamValue:
    """Maps ``u`` in ``[0, 1)`` to a value of ``domain``.

    Args:
        domain: The parameter's domain.
        u: A unit number, ``0 <= u < 1``.

    Returns:
        A value inside ``domain``: ``float`` for float and discrete domains, ``int`` for int
        domains, ``str`` for categorical ones.

    Raises:
        ValueError: ``u`` is not in ``[0, 1)``.
    """
    if not 0.0 <= u < 1.0:
        raise ValueError(f"unit number {u!r} is not in [0, 1)")
    if isinstance(domain, FloatDomain):
        if domain.log:
            lo, hi = math.log(domain.low), math.log(domain.high)
            # exp(log(low)) may miss low by an ulp; u = 0 must give the bound itself.
            x = math.exp(lo + (hi - lo) * u) if u > 0.0 else domain.low
        else:
            # Weighted sum rather than low + u * (high - low): the difference of two finite
            # bounds can overflow to infinity.
            x = domain.low * (1.0 - u) + domain.high * u
        return float(min(max(x, domain.low), domain.high))
    if isinstance(domain, IntDomain):
        if domain.log:
            lo, hi = math.log(domain.low - 0.5), math.log(domain.high + 0.5)
            n = math.floor(math.exp(lo + (hi - lo) * u) + 0.5)
            return int(min(max(n, domain.low), domain.high))
        return domain.low + _scaled_index(u, domain.high - domain.low + 1)
    if isinstance(domain, CategoricalDomain):
        return domain.values[_scaled_index(u, len(domain.values))]
    assert isinstance(domain, DiscreteDomain)
    return float(domain.values[_scaled_index(u, len(domain.values))])


def point_from_units(space: SearchSpace, unit: Callable[[int, ParameterConfig], float]) -> Params:
    """Builds a point of ``space`` from one unit number per active parameter.

    Args:
        space: The search space.
        unit: Gives the unit number of a parameter from its position in ``space.parameters``
            and its config. Called only for active parameters, parents first.

    Returns:
        The point: every active parameter set, every inactive one absent.
    """
    point: Params = {}
    # space.parameters is topological, so a parent's value is set before its children ask.
    for position, param in enumerate(space.parameters):
        if space.is_active(param, point):
            point[param.name] = value_from_unit(param.domain, unit(position, param))
    return point


def check_indices(indices: Iterable[int], capacity: int | None) -> None:
    """Checks that every sampler index is in ``[0, capacity)``.

    Raises:
        ValueError: Naming the first index out of range.
    """
    for i in indices:
        if i < 0 or (capacity is not None and i >= capacity):
            bound = "unbounded" if capacity is None else str(capacity)
            raise ValueError(f"sampler index {i} is out of range [0, {bound})")


def _scaled_index(u: float, n: int) -> int:
    # floor(u * n) in exact integer arithmetic: a float u is an exact dyadic fraction, and a
    # float product would round up to n for n past 2**53 (huge int ranges).
    num, den = u.as_integer_ratio()
    return num * n // den
