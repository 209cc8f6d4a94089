"""Model-based samplers compute in worker processes: the same points, no GIL shared with the
event loop, and a dead worker costs one ask at most (UNAVAILABLE), never the replica. The
recommendation (``ListOptimalTrials`` by the model) computes there too, with the same
guarantees."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import threading

import grpc
import pytest

from hyperdial.v1 import study_pb2
from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.space import FloatDomain, ParameterConfig, Params, SearchSpace
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import get_sampler
from hyperdial_server.samplers._recommend import recommend
from hyperdial_server.samplers._worker import SAMPLER_NICENESS
from hyperdial_server.server import ServerConfig
from hyperdial_server.service._compute import SAMPLER_UNAVAILABLE, SamplerWorkers
from hyperdial_server.store import RedisStore
from tests.e2e.protocol import ask, create, float_param, spec, tell
from tests.process_groups import kill_group, popen
from tests.server_harness import InProcessServer


def _spec() -> StudySpec:
    space = SearchSpace(
        [ParameterConfig("x", FloatDomain(0.0, 1.0)), ParameterConfig("y", FloatDomain(0.0, 1.0))]
    )
    return StudySpec(
        space=space, objectives=[Objective("loss")], algorithm=Algorithm.BAYESIAN, seed=3
    )


def _history(n: int) -> list[Trial]:
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


def test_workers_give_the_sampler_s_own_points_and_its_compute_time() -> None:
    spec, history = _spec(), _history(12)
    expected = get_sampler(Algorithm.BAYESIAN).suggest(spec, [12, 13], history, [])
    workers = SamplerWorkers(1)
    try:
        points, seconds = asyncio.run(
            workers.suggest(Algorithm.BAYESIAN, spec, [12, 13], [TrialPage(history)])
        )
    finally:
        workers.close()
    assert points == expected
    assert seconds > 0


def test_a_dead_worker_fails_that_ask_with_unavailable_and_the_next_ask_works() -> None:
    spec, history = _spec(), _history(12)
    poisoned = Trial(99, TrialState.RUNNING, {"x": 0.5, "y": _KillsItsReader()})  # type: ignore[dict-item]
    workers = SamplerWorkers(1)

    async def body() -> None:
        # The worker dies; so does the one started for the retry: UNAVAILABLE, with a reason
        # of its own (not the store's), and a message that says what died.
        with pytest.raises(Unavailable) as e:
            await workers.suggest(Algorithm.BAYESIAN, spec, [12], [TrialPage([*history, poisoned])])
        assert e.value.reason == SAMPLER_UNAVAILABLE == "SAMPLER_UNAVAILABLE"
        assert "BAYESIAN sampler's worker process died" in e.value.message
        assert "computed it again" in e.value.message
        # A new pool serves the next ask.
        points, _ = await workers.suggest(Algorithm.BAYESIAN, spec, [12], [TrialPage(history)])
        assert len(points) == 1

    try:
        asyncio.run(body())
    finally:
        workers.close()


@pytest.mark.parametrize("processes", [1, 0])
def test_close_then_wait_closed_sees_the_workers_gone(processes: int) -> None:
    """``close`` does not block; ``wait_closed`` returns once the pool's shutdown is complete,
    so no manager thread is still closing its pipe when the interpreter exits (that raced
    concurrent.futures' exit hook: "Bad file descriptor" on stderr after "stopped")."""
    spec, history = _spec(), _history(12)
    workers = SamplerWorkers(processes)
    assert workers.wait_closed(0)  # nothing started, nothing to wait for
    asyncio.run(workers.suggest(Algorithm.BAYESIAN, spec, [12], [TrialPage(history)]))
    executor = workers._executor
    procs = []
    if processes:
        assert isinstance(executor, concurrent.futures.ProcessPoolExecutor)
        procs = list(executor._processes.values())
        assert procs and all(p.is_alive() for p in procs)
    workers.close()
    assert workers.wait_closed(60)
    assert not any(p.is_alive() for p in procs)  # every worker joined by the shutdown


def test_a_closed_pool_refuses_with_unavailable() -> None:
    workers = SamplerWorkers(1)
    workers.close()
    with pytest.raises(Unavailable) as e:
        asyncio.run(workers.suggest(Algorithm.BAYESIAN, _spec(), [0], []))
    assert e.value.reason == SAMPLER_UNAVAILABLE
    assert "stopping" in e.value.message


def test_negative_processes_are_refused() -> None:
    with pytest.raises(ValueError):
        SamplerWorkers(-1)


@pytest.mark.parametrize("processes", [0, 2])
def test_bayesian_asks_over_grpc_with_processes_or_threads(processes: int) -> None:
    server = InProcessServer(ServerConfig(sampler_processes=processes)).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            from hyperdial.v1 import tuning_service_pb2_grpc

            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            create(
                stub,
                "bo",
                spec(
                    float_param("x", 0, 1),
                    float_param("y", 0, 1),
                    algorithm=study_pb2.ALGORITHM_BAYESIAN,
                    initial_trials=3,
                ),
            )
            results: list[int] = []

            def worker() -> None:
                for _ in range(4):
                    (t,) = ask(stub, "bo")
                    x = t.parameters["x"].double_value
                    tell(stub, t.name, loss=(x - 0.3) ** 2)
                    results.append(t.number)

            threads = [threading.Thread(target=worker) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()  # no margin of its own: pytest-timeout bounds a hang
            assert sorted(results) == list(range(1, 13))
    finally:
        server.stop()


def test_a_redis_page_decodes_in_the_worker_to_the_trials_the_store_lists(
    redis_url: str, namespace: str
) -> None:
    from hyperdial_server.testing import claim, commit, complete, make_record

    async def body() -> None:
        store = RedisStore.from_url(redis_url)
        workers = SamplerWorkers(1)
        try:
            rec = make_record("s")
            await store.create_study(namespace, rec)
            trials = await commit(store, namespace, rec, await claim(store, namespace, rec, 5))
            for t in trials[:3]:
                await complete(store, namespace, rec, t.number, float(t.number), score=1.0)
            listed, _ = await store.list_trials(namespace, rec.study_id, page_size=3, after=1)
            page, more = await store.list_trial_page(namespace, rec.study_id, page_size=3, after=1)
            assert more and page.last == listed[-1].number == 4
            assert page.decode() == listed
            # Decoded by a worker process: the same trials come back (pickled both ways).
            loop = asyncio.get_running_loop()
            pool = workers._pool()
            assert await loop.run_in_executor(pool, TrialPage.decode, page) == listed
        finally:
            workers.close()
            await store.close()

    asyncio.run(body())


def test_workers_run_at_a_lower_priority_and_still_progress_on_saturated_cores() -> None:
    # Every core busy with normal-priority work: a worker must still get its share (an idle
    # scheduling class would starve it and hold the ask forever).
    burn = "print('busy', flush=True)\nwhile True:\n    pass\n"
    # Each in a process group of its own, killed on every path (kill_group in the finally, or
    # the exit-time sweep of tests/process_groups.py after an interrupt).
    burners: list[subprocess.Popen[str]] = []
    workers = SamplerWorkers(1)

    async def body() -> tuple[int, list[Params]]:
        loop = asyncio.get_running_loop()
        niceness = await loop.run_in_executor(workers._pool(), os.nice, 0)
        if hasattr(os, "sched_getscheduler"):
            # The normal class, whose niceness still gives a share of a busy core; the idle
            # class gets next to none and held asks for minutes on a saturated machine.
            policy = await loop.run_in_executor(workers._pool(), os.sched_getscheduler, 0)
            assert policy == os.SCHED_OTHER
        points, _ = await workers.suggest(
            Algorithm.BAYESIAN, _spec(), [40], [TrialPage(_history(40))]
        )
        return niceness, points

    try:
        for _ in range(os.cpu_count() or 1):
            burners.append(popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True))
        for b in burners:  # every core is busy before the worker starts
            assert b.stdout is not None and b.stdout.readline() == "busy\n"
        niceness, points = asyncio.run(body())
    finally:
        workers.close()
        for b in burners:
            kill_group(b)
            if b.stdout is not None:
                b.stdout.close()
    assert niceness == min(19, os.nice(0) + SAMPLER_NICENESS)
    assert len(points) == 1


def test_the_default_leaves_a_core_to_the_event_loop() -> None:
    """One worker per core this process may use, but one: at least 1, at most 4."""
    script = (
        "import os\n"
        "os.sched_setaffinity(0, {cores})\n"
        "from hyperdial_server.service._compute import DEFAULT_SAMPLER_PROCESSES as d\n"
        "print(d)\n"
    )
    available = sorted(os.sched_getaffinity(0))
    expected = {1: 1, 2: 1, 3: 2, 5: 4, 8: 4}
    for n, want in expected.items():
        if n > len(available):
            continue
        out = subprocess.run(
            [sys.executable, "-c", script.format(cores=set(available[:n]))],
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(out.stdout) == want, (n, out.stdout)


@pytest.mark.parametrize("processes", [1, 0])
def test_workers_give_the_recommendation_computed_here(processes: int) -> None:
    spec, trials = _spec(), _history(12)
    workers = SamplerWorkers(processes)
    try:
        got = asyncio.run(workers.recommend(spec, [TrialPage(trials[:5]), TrialPage(trials[5:])]))
        too_few = asyncio.run(workers.recommend(spec, [TrialPage(trials[:1])]))
    finally:
        workers.close()
    assert got == recommend(spec, trials) and got
    assert too_few is None


def test_a_dead_worker_fails_that_recommendation_with_unavailable_and_the_next_works() -> None:
    spec, trials = _spec(), _history(12)
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
        asyncio.run(workers.recommend(_spec(), [TrialPage(_history(3))]))
    assert e.value.reason == SAMPLER_UNAVAILABLE
