"""Optimal trials: the best one, or the Pareto front with several objectives.

A trial's place on the front is its *front vector*: its value of each objective, in the order
of the study's objectives, oriented so that lower is better (a maximised objective negated).
Only a feasible trial judged by its values with a value of every objective has one
(:func:`front_vector`); the stores keep the front of these vectors as trials become candidates
(``Store.pareto_front``), and :func:`pareto_front` computes the same front from the trials.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from hyperdial_server.core.feasibility import judged_by_values, trial_infeasibility
from hyperdial_server.core.study import Objective, StudySpec
from hyperdial_server.core.trial import Trial

#: A front vector: each objective's value, lower is better (see the module docstring).
FrontVector = tuple[float, ...]


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
    kept = [t for t in trials if t.values is not None]
    vectors = [oriented(t.values or {}, objectives) for t in kept]
    return sorted((kept[i] for i in front_of(vectors)), key=lambda t: t.number)


def front_of(vectors: Sequence[FrontVector]) -> list[int]:
    """The positions in ``vectors`` of those no other vector dominates (equal vectors are all
    kept, as neither dominates the other), in ascending order of position."""
    # Sorting by the vector means a dominator always comes before what it dominates, so each
    # candidate only needs checking against the front kept so far.
    order = sorted(range(len(vectors)), key=lambda i: vectors[i])
    front: list[int] = []
    for i in order:
        if not any(dominates(vectors[f], vectors[i]) for f in front):
            front.append(i)
    return sorted(front)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether front vector ``a`` dominates ``b``: at least as good (no greater) everywhere,
    strictly better (less) somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def oriented(values: Mapping[str, float], objectives: Sequence[Objective]) -> FrontVector:
    """The values of ``objectives`` in their order, lower is better (every one must be there)."""
    return tuple(-values[o.name] if o.maximize else values[o.name] for o in objectives)


def front_vector(spec: StudySpec, values: Mapping[str, float] | None) -> FrontVector | None:
    """The front vector of a candidate judged by ``values`` (a COMPLETED trial's final values,
    or the report that ranks a STOPPED trial): ``None`` for a study of one objective (it has
    a best trial, not a front), without values, when a value of an objective is missing, or
    when the values break or lack an outcome constraint (an infeasible trial is never
    optimal)."""
    if len(spec.objectives) < 2 or values is None:
        return None
    if any(o.name not in values for o in spec.objectives):
        return None
    if spec.constraints and spec.infeasibility(values) is not None:
        return None
    return oriented(values, spec.objectives)


def trial_front_vector(spec: StudySpec, trial: Trial) -> FrontVector | None:
    """The front vector of ``trial`` as it is stored: that of its values if it is judged by
    them (COMPLETED, or STOPPED with a report when the study's policy ranks stopped trials)
    and feasible; else ``None``."""
    if not judged_by_values(spec, trial) or trial_infeasibility(spec, trial) is not None:
        return None
    return front_vector(spec, trial.values)
