"""Seeded random sampling: point *i* is a pure function of (seed, *i*, parameter names)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hyperdial_server.core.space import ParameterConfig, Params
from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Trial
from hyperdial_server.samplers._base import Sampler
from hyperdial_server.samplers._transform import check_indices, point_from_units

# Domain separation: the same seed drives other hash-based choices (the grid's shuffle).
_PERSON = b"hyperdial.random"
_TWO_POW_53 = float(2**53)


class RandomSampler(Sampler):
    """Independent uniform sampling; log-uniform for log-scale parameters.

    Each parameter's unit number is a BLAKE2b hash of (seed, index, parameter name), so a point
    depends neither on the other indices of an ask nor on the library versions installed, and
    adding a parameter to a space leaves the values of the others unchanged. Conditional
    parameters get a value only when their condition holds. The sequence is unbounded.
    """

    independent_draws = True

    def capacity(self, spec: StudySpec) -> int | None:
        """Always ``None``: every index has a point."""
        return None

    def suggest(
        self,
        spec: StudySpec,
        indices: Sequence[int],
        completed: Sequence[Trial] = (),
        pending: Sequence[Trial] = (),
    ) -> list[Params]:
        """Returns the random point of each index, in order.

        Raises:
            ValueError: An index is negative.
        """
        check_indices(indices, None)
        return [_point(spec, i) for i in indices]


def _point(spec: StudySpec, index: int) -> Params:
    def unit(_position: int, param: ParameterConfig) -> float:
        return _unit_hash(spec.seed, index, param.name)

    return point_from_units(spec.space, unit)


def _unit_hash(seed: int, index: int, name: str) -> float:
    """A uniform number in ``[0, 1)`` from (seed, index, name), with 53 random bits.

    The encoding is unambiguous: two decimal integers, each ended by a colon, then the name.
    """
    data = f"{seed}:{index}:".encode("ascii") + name.encode("utf-8")
    digest = hashlib.blake2b(data, digest_size=8, person=_PERSON).digest()
    return (int.from_bytes(digest, "big") >> 11) / _TWO_POW_53
