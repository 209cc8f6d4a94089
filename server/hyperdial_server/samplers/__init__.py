"""Samplers: pure functions from a study spec and sampler indices to points of its space.

``get_sampler`` gives the sampler of a study's algorithm.
"""

from __future__ import annotations

from collections.abc import Mapping

from hyperdial_server.core.study import Algorithm
from hyperdial_server.samplers._base import Sampler
from hyperdial_server.samplers._bayes import BayesianSampler
from hyperdial_server.samplers._grid import GridSampler
from hyperdial_server.samplers._random import RandomSampler
from hyperdial_server.samplers._sobol import QuasiRandomSampler

__all__ = [
    "BayesianSampler",
    "GridSampler",
    "QuasiRandomSampler",
    "RandomSampler",
    "Sampler",
    "get_sampler",
]

_REGISTRY: Mapping[Algorithm, type[Sampler]] = {
    Algorithm.GRID: GridSampler,
    Algorithm.RANDOM: RandomSampler,
    Algorithm.QUASI_RANDOM: QuasiRandomSampler,
    Algorithm.BAYESIAN: BayesianSampler,
}


def get_sampler(algorithm: Algorithm) -> Sampler:
    """The sampler of ``algorithm``.

    Samplers keep no state, so the instance returned may be shared freely.

    Raises:
        ValueError: No sampler implements ``algorithm``.
    """
    try:
        cls = _REGISTRY[algorithm]
    except KeyError:
        raise ValueError(f"no sampler implements algorithm {algorithm!r}") from None
    return cls()
