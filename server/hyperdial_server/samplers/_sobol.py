"""Quasi-random sampling: a scrambled Sobol sequence, point *i* for index *i*."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.stats import qmc

from hyperdial_server.core.space import ParameterConfig, Params
from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Trial
from hyperdial_server.samplers._base import Sampler
from hyperdial_server.samplers._transform import check_indices, point_from_units

#: Bits of the Sobol generator: the sequence has ``2**SOBOL_BITS`` distinct points. SciPy's
#: default; the ``fast_forward`` of SciPy 1.17 fails on the 64-bit generator.
SOBOL_BITS = 30
_CAPACITY = 1 << SOBOL_BITS

_Row = npt.NDArray[np.float64]


class QuasiRandomSampler(Sampler):
    """Scrambled Sobol sampling (SciPy's LMS + digital shift scrambling, seeded by the study).

    There is one dimension per parameter of the space, in ``space.parameters`` order; the
    dimensions of inactive conditional parameters are ignored. The first ``2**k`` points are
    stratified in every dimension: one per interval of width ``2**-k``.

    Cost: building the engine is constant, and reaching index *i* walks the sequence, so an
    ask costs O(d * i) in compiled code plus O(d * count). Indices of one ask that follow each
    other are drawn in one pass.

    The scrambling draws from a NumPy ``Generator``; NumPy does not promise that its streams
    stay the same across versions, so the points of a seed may change with a NumPy or SciPy
    upgrade (each point still lies in the space).
    """

    def capacity(self, spec: StudySpec) -> int | None:
        """``2**SOBOL_BITS``: the number of distinct points of the sequence."""
        return _CAPACITY

    def suggest(
        self,
        spec: StudySpec,
        indices: Sequence[int],
        completed: Sequence[Trial] = (),
        pending: Sequence[Trial] = (),
    ) -> list[Params]:
        """Returns the Sobol point of each index, in order.

        Raises:
            ValueError: An index is outside ``[0, capacity(spec))``.
        """
        check_indices(indices, _CAPACITY)
        if not indices:
            return []
        units = _sobol_rows(spec, sorted(set(indices)))
        return [_point(spec, units[i]) for i in indices]


def _point(spec: StudySpec, row: _Row) -> Params:
    def unit(position: int, _param: ParameterConfig) -> float:
        return float(row[position])

    return point_from_units(spec.space, unit)


def _sobol_rows(spec: StudySpec, wanted: list[int]) -> dict[int, _Row]:
    """Sobol rows of the sorted, distinct indices ``wanted``, walking the sequence once."""
    # The int64 seed of the wire maps one-to-one onto the non-negative seeds NumPy accepts.
    engine = qmc.Sobol(
        len(spec.space.parameters),
        scramble=True,
        bits=SOBOL_BITS,
        rng=np.random.default_rng(spec.seed % 2**64),
    )
    rows: dict[int, _Row] = {}
    k = 0
    while k < len(wanted):
        # A run of consecutive indices wanted[k:end] is drawn by one call.
        end = k + 1
        while end < len(wanted) and wanted[end] == wanted[end - 1] + 1:
            end += 1
        start = wanted[k]
        position = engine.num_generated
        if start > position:
            engine.fast_forward(start - position)
        block: list[_Row] = []
        n = end - k
        if engine.num_generated == 0 and n & (n - 1):
            # Drawing a non-power-of-2 count from the start makes SciPy warn that the balance
            # of the full sample is lost; each point here is used on its own, so draw the first
            # point alone (a count of 1 does not warn) and the rest after it.
            block.append(engine.random(1))
            n -= 1
        block.append(engine.random(n))
        for offset, row in enumerate(np.concatenate(block)):
            rows[start + offset] = row
        k = end
    return rows
