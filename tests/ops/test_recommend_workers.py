"""The recommendation computes in the sampler workers, as Bayesian suggestions do: the same
answer as in this process, and a dead worker costs one call (UNAVAILABLE
``SAMPLER_UNAVAILABLE``), never the replica."""

from __future__ import annotations

import asyncio
import os

import pytest

from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.space import FloatDomain, ParameterConfig, SearchSpace
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers._recommend import recommend
from hyperdial_server.service._compute import SAMPLER_UNAVAILABLE, SamplerWorkers


def _spec() -> StudySpec:
    space = SearchSpace(
        [ParameterConfig("x", FloatDomain(0.0, 1.0)), ParameterConfig("y", FloatDomain(0.0, 1.0))]
    )
    return StudySpec(
        space=space, objectives=[Objective("loss")], algorithm=Algorithm.RANDOM, seed=3
    )


def _completed(n: int) -> list[Trial]:
    out = []
    for i in range(1, n + 1):
        x, y = (i * 0.37) % 1, (i * 0.61) % 1
        out.append(
            Trial(i, TrialState.COMPLETED, {"x": x, "y": y}, values={"loss": (x - 0.3) ** 2 + y})
        )
    return out


class _KillsItsReader:
    """Unpickling this ends the process that does it, as an out-of-memory kill would."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return os._exit, (17,)


@pytest.mark.parametrize("processes", [1, 0])
def test_workers_give_the_recommendation_computed_here(processes: int) -> None:
    spec, trials = _spec(), _completed(12)
    workers = SamplerWorkers(processes)
    try:
        got = asyncio.run(workers.recommend(spec, [TrialPage(trials[:5]), TrialPage(trials[5:])]))
        too_few = asyncio.run(workers.recommend(spec, [TrialPage(trials[:1])]))
    finally:
        workers.close()
    assert got == recommend(spec, trials) and got
    assert too_few is None


def test_a_dead_worker_fails_that_recommendation_with_unavailable_and_the_next_works() -> None:
    spec, trials = _spec(), _completed(12)
    poisoned = Trial(99, TrialState.COMPLETED, {"x": 0.5, "y": _KillsItsReader()})  # type: ignore[dict-item]
    workers = SamplerWorkers(1)

    async def body() -> None:
        with pytest.raises(Unavailable) as e:
            await workers.recommend(spec, [TrialPage([*trials, poisoned])])
        assert e.value.reason == SAMPLER_UNAVAILABLE
        assert "computes the recommendation died" in e.value.message
        assert "computed it again" in e.value.message
        assert await workers.recommend(spec, [TrialPage(trials)]) == recommend(spec, trials)

    try:
        asyncio.run(body())
    finally:
        workers.close()


def test_a_closed_pool_refuses_the_recommendation_with_unavailable() -> None:
    workers = SamplerWorkers(1)
    workers.close()
    with pytest.raises(Unavailable) as e:
        asyncio.run(workers.recommend(_spec(), [TrialPage(_completed(3))]))
    assert e.value.reason == SAMPLER_UNAVAILABLE
