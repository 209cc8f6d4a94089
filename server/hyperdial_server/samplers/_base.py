"""The ``Sampler`` interface.

A sampler is a pure function of its inputs: the study spec (search space, seed, grid
resolution), the sampler indices to fill, and the trial history. It does no I/O, keeps no
state between calls, touches no globals and sees no protobuf type. Index-based samplers
(grid, random, quasi-random) compute point *i* from *i* alone, which makes them O(1) per ask,
reproducible, and duplicate-free across replicas: the store hands out each index once.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Trial


class Sampler(abc.ABC):
    """Suggests points of a search space.

    Attributes:
        needs_history: Whether ``suggest`` reads ``completed`` / ``pending``. When false the
            service does not load trials for an ask.
        independent_draws: Whether each index's point is an independent draw, so that
            skipping indices changes nothing of what the others give (random): the service
            may then reserve indices ahead and ask in one store call.
    """

    needs_history: bool = False
    independent_draws: bool = False

    def capacity(self, spec: StudySpec) -> int | None:
        """Number of distinct indices the sampler can fill; ``None`` if unbounded."""
        return None

    @abc.abstractmethod
    def suggest(
        self,
        spec: StudySpec,
        indices: Sequence[int],
        completed: Sequence[Trial] = (),
        pending: Sequence[Trial] = (),
    ) -> list[Params]:
        """Returns one point per index, in order.

        Args:
            spec: The study spec (search space, seed, grid resolution).
            indices: Sampler indices handed out by the store, each below ``capacity(spec)``.
            completed: Finished trials (for model-based samplers).
            pending: Trials handed out and not finished yet (for model-based samplers).

        Returns:
            Points of ``spec.space``: every active parameter present with a value of its type
            inside its domain, every inactive parameter absent. The same inputs always give
            the same points.
        """
        raise NotImplementedError
