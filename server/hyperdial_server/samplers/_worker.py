"""The entry point of a sampler worker process (see ``service/_compute.py``).

It lives with the samplers so that a worker imports them and nothing of the server's gRPC
side: workers fork from a process that has imported exactly this (and the store's pure codec,
to decode the history).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from hyperdial_server.core.space import Params
from hyperdial_server.core.study import Algorithm, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import get_sampler
from hyperdial_server.store._base import TrialPage


def run_suggest(
    algorithm: Algorithm,
    spec: StudySpec,
    indices: Sequence[int],
    history: Sequence[TrialPage],
) -> tuple[list[Params], float]:
    """The sampler's points for ``indices`` given the study's history, and the seconds it took.

    Args:
        algorithm: The sampler.
        spec: The study spec.
        indices: Sampler indices.
        history: Pages of the study's finished and RUNNING trials, decoded here (so that the
            replica's event loop does not spend its time on it).
    """
    start = time.perf_counter()
    completed: list[Trial] = []
    pending: list[Trial] = []
    for page in history:
        for t in page.decode():
            # Failed trials go with the finished ones: the model learns to avoid them.
            if t.state is TrialState.RUNNING:
                pending.append(t)
            elif t.state is not TrialState.WAITING:
                completed.append(t)
    points = get_sampler(algorithm).suggest(spec, indices, completed, pending)
    return points, time.perf_counter() - start
