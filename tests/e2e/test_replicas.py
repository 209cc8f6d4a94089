"""Two server processes (replicas) sharing one real Redis, driven by many concurrent workers."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import (
    ask,
    cat_param,
    create,
    disc_param,
    error_reason,
    float_param,
    int_param,
    maximize,
    py_params,
    spec,
    tell,
    when,
)
from tests.server_harness import ServerProcess

WORKERS = 32


@pytest.fixture(scope="module")
def replicas(redis_url: str) -> Iterator[list[str]]:
    servers = [ServerProcess(redis_url) for _ in range(2)]
    yield [s.target for s in servers]
    codes = [s.terminate() for s in servers]
    assert codes == [0, 0]  # SIGTERM is a clean, graceful stop


def _stubs(targets: list[str]) -> tuple[list[grpc.Channel], list[Any]]:
    channels = [grpc.insecure_channel(t) for t in targets]
    return channels, [tuning_service_pb2_grpc.TuningServiceStub(c) for c in channels]


def _run_threads(target: Callable[[], None], n: int) -> None:
    """Runs ``target`` in ``n`` threads at once, waits for them all and raises the first error
    any of them raised.

    No timeout of its own: on a busy machine the workers take as long as they take, and the
    test's timeout (pytest-timeout) bounds a hang. Returning early would assert on half the
    results.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as e:  # noqa: BLE001 - reported by the test's thread below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.slow
def test_grid_exhausted_by_32_workers_over_two_replicas(replicas: list[str]) -> None:
    sid = f"grid-{uuid.uuid4().hex[:8]}"
    grid = spec(
        cat_param("opt", ["adam", "sgd", "rmsprop"]),
        int_param("layers", 1, 4),
        float_param("lr", 1e-4, 1e-1, log=True),
        float_param("momentum", 0.0, 0.9, condition=when("opt", "sgd")),
        disc_param("batch", [32.0, 64.0]),
        algorithm=study_pb2.ALGORITHM_GRID,
        grid_resolution=4,
    )
    # adam, rmsprop: 4 layers x 4 lr x 2 batch = 32 each; sgd: 32 x 4 momentum = 128.
    expected = 32 + 32 + 128
    channels, stubs = _stubs(replicas)
    create(stubs[0], sid, grid)
    handed: list[tuple[str, dict[str, Any]]] = []
    finished: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        stub = stubs[i % 2]  # round-robin over the replicas
        try:
            while True:
                try:
                    (trial,) = ask(stub, sid, client_id=f"w{i}")
                except grpc.RpcError as e:
                    code, reason, _ = error_reason(e)
                    assert (code, reason) == (grpc.StatusCode.OUT_OF_RANGE, "STUDY_COMPLETE")
                    with lock:
                        finished.append(f"w{i}")
                    return
                params = py_params(trial)
                tell(stub, trial.name, loss=float(len(str(params))))
                with lock:
                    handed.append((trial.name, params))
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for c in channels:
        c.close()
    assert not errors, errors[:3]
    assert len(finished) == WORKERS  # every worker saw the typed "complete" signal
    points = [tuple(sorted(p.items())) for _, p in handed]
    assert len(points) == expected
    assert len(set(points)) == expected  # every grid point exactly once
    assert len({name for name, _ in handed}) == expected
    momentum_values = {p["momentum"] for _, p in handed if "momentum" in p}
    assert len(momentum_values) == 4


def test_replica_with_stale_cache_sees_recreated_study(replicas: list[str]) -> None:
    channels, (a, b) = _stubs(replicas)
    sid = f"stale-{uuid.uuid4().hex[:8]}"
    create(a, sid, spec(float_param("x", 0, 1)))
    ask(a, sid)  # replica a now caches the first incarnation (objective "loss")
    b.DeleteStudy(ts.DeleteStudyRequest(name=f"studies/{sid}"))
    create(b, sid, spec(cat_param("c", ["u", "v"]), objectives=[maximize("acc")]))
    (t1,) = ask(b, sid)
    # a tells a trial of the new incarnation: it must validate against the new objectives.
    done = tell(a, t1.name, acc=0.5)
    assert dict(done.final_measurement.values) == {"acc": 0.5}
    # a asks: it must sample the new search space, not the cached one.
    (t2,) = ask(a, sid)
    assert set(py_params(t2)) == {"c"} and t2.number == 2
    for c in channels:
        c.close()


def test_numbers_are_unique_across_replicas(replicas: list[str]) -> None:
    channels, stubs = _stubs(replicas)
    sid = f"num-{uuid.uuid4().hex[:8]}"
    create(stubs[0], sid, spec(float_param("x", 0, 1)))
    numbers: list[int] = []
    lock = threading.Lock()
    counter = itertools.count()

    def worker() -> None:
        stub = stubs[next(counter) % 2]
        for _ in range(10):
            got = [t.number for t in ask(stub, sid, count=3)]
            with lock:
                numbers.extend(got)

    _run_threads(worker, 8)
    for c in channels:
        c.close()
    assert sorted(numbers) == list(range(1, 241))


def test_random_asks_over_two_replicas_stop_at_max_trials_with_distinct_points(
    replicas: list[str],
) -> None:
    """Each replica asks RANDOM studies in one step from indices it reserved ahead: the
    studies' counters keep the replicas' blocks apart, and max_trials holds exactly."""
    channels, stubs = _stubs(replicas)
    sid = f"rand-{uuid.uuid4().hex[:8]}"
    create(
        stubs[0],
        sid,
        spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM, max_trials=150),
    )
    handed: list[tuple[int, float]] = []
    reasons: list[str] = []
    lock = threading.Lock()
    counter = itertools.count()

    def worker() -> None:
        i = next(counter)
        stub = stubs[i % 2]
        while True:
            try:
                trials = ask(stub, sid, count=1 + i % 3, client_id=f"w{i}")
            except grpc.RpcError as e:
                with lock:
                    reasons.append(error_reason(e)[1])
                return
            with lock:
                handed.extend((t.number, t.parameters["x"].double_value) for t in trials)
            for t in trials:
                tell(stub, t.name, loss=0.5)

    _run_threads(worker, 16)
    for c in channels:
        c.close()
    assert reasons == ["STUDY_COMPLETE"] * 16
    assert sorted(n for n, _ in handed) == list(range(1, 151))
    assert len({x for _, x in handed}) == 150


def test_a_replica_never_uses_indices_reserved_for_a_deleted_study(replicas: list[str]) -> None:
    channels, (a, b) = _stubs(replicas)
    sid = f"resv-{uuid.uuid4().hex[:8]}"
    random_spec = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM, seed=7)
    create(a, sid, random_spec)
    (first,) = ask(a, sid)  # replica a reserved a block of the first incarnation
    b.DeleteStudy(ts.DeleteStudyRequest(name=f"studies/{sid}"))
    create(b, sid, random_spec)
    (again,) = ask(a, sid)
    assert again.number == 1
    # Same seed, and index 0 of the new incarnation: the same point as the first trial had.
    assert again.parameters["x"].double_value == first.parameters["x"].double_value
    for c in channels:
        c.close()
