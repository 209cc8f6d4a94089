"""Optimal trials: the best one, or the Pareto front with several objectives."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from hyperdial_server.core.study import Objective
from hyperdial_server.core.trial import Trial


class OptimalityBasis(enum.Enum):
    """What optimal trials are judged by (``ListOptimalTrials``)."""

    #: The values the trials reported.
    OBSERVED = "OBSERVED"
    #: A model's prediction of each trial's noise-free values (the recommendation:
    #: ``samplers._recommend``).
    MODEL = "MODEL"


def pareto_front(trials: Sequence[Trial], objectives: Sequence[Objective]) -> list[Trial]:
    """Completed trials that no other completed trial dominates, in order of number.

    A trial dominates another when it is at least as good on every objective and strictly
    better on one. Trials with equal values are all kept.
    """
    signed = [
        (t, tuple(-t.values[o.name] if o.maximize else t.values[o.name] for o in objectives))
        for t in trials
        if t.values is not None
    ]
    # Sorting by the signed vector means a dominator always comes before what it dominates,
    # so each candidate only needs checking against the front kept so far.
    signed.sort(key=lambda pair: pair[1])
    front: list[tuple[Trial, tuple[float, ...]]] = []
    for t, v in signed:
        if not any(_dominates(f, v) for _, f in front):
            front.append((t, v))
    return sorted((t for t, _ in front), key=lambda t: t.number)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )
