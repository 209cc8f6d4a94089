"""SIGTERM: stop accepting, finish in-flight calls within the grace period, exit 0.

Calls are held in flight by pausing the writes of the test's own Redis (``CLIENT PAUSE ...
WRITE``): every ask and tell is a script, so it waits in Redis until ``CLIENT UNPAUSE``. The
tests wait for events (clients blocked in Redis, lines in the log), never for a time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
import redis as redis_lib
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.core.errors import Unavailable
from hyperdial_server.server import ServerConfig, _bounded, cancel_and_wait
from tests.e2e.protocol import float_param, measurement, spec
from tests.redis_server import RedisServer, free_port
from tests.server_harness import InProcessServer, ServerProcess

TUNING = "hyperdial.v1.TuningService"
SPEC = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, since the test pauses it."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def admin(redis: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis.url, decode_responses=True)
    yield client
    client.execute_command("CLIENT", "UNPAUSE")
    client.close()


def _until(condition: Callable[[], bool]) -> None:
    """Waits for an event (bounded by the test timeout)."""
    while not condition():
        time.sleep(0.01)


def _blocked(admin: redis_lib.Redis) -> int:
    """Clients whose commands wait in Redis (paused)."""
    return sum("b" in c["flags"] for c in admin.client_list())


def _in_flight(metrics_port: int, method: str) -> int:
    """Calls of ``method`` the server is handling, from its Prometheus endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) as r:
        text = r.read().decode()
    pattern = rf'^hyperdial_grpc_server_in_flight{{[^}}]*grpc_method="{method}"[^}}]*}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def _ask(count: int = 1) -> ts.SuggestTrialsRequest:
    return ts.SuggestTrialsRequest(parent="studies/s", count=count)


def test_sigterm_finishes_in_flight_calls_then_exits_0(
    redis: RedisServer, admin: redis_lib.Redis
) -> None:
    metrics_port = free_port()
    server = ServerProcess(redis.url, ["--grace", "60", "--metrics-port", str(metrics_port)])
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            stub.CreateStudy(ts.CreateStudyRequest(study_id="s", spec=SPEC))
            (first,) = stub.SuggestTrials(_ask()).trials
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=TUNING)
            )
            statuses = (r.status for r in watch)
            assert next(statuses) == health_pb2.HealthCheckResponse.SERVING

            admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
            ask = stub.SuggestTrials.future(_ask(2))
            tell = stub.CompleteTrial.future(
                ts.CompleteTrialRequest(name=first.name, final_measurement=measurement(loss=0.5))
            )
            # Both calls are in flight, held by Redis: the server's calls to Redis share one
            # pipelined connection, which waits on the first write.
            _until(
                lambda: (
                    _in_flight(metrics_port, "SuggestTrials") == 1
                    and _in_flight(metrics_port, "CompleteTrial") == 1
                    and _blocked(admin) >= 1
                )
            )

            server.proc.send_signal(signal.SIGTERM)
            # Health watchers (load balancers) hear NOT_SERVING, then their stream ends: it
            # does not hold the stop until the grace period is over.
            assert next(statuses) == health_pb2.HealthCheckResponse.NOT_SERVING
            assert next(statuses, None) is None
            _until(lambda: "stopping: finishing in-flight calls" in server.read_log())
            # No new call is accepted.
            with grpc.insecure_channel(server.target) as late:
                with pytest.raises(grpc.RpcError) as refused:
                    tuning_service_pb2_grpc.TuningServiceStub(late).GetStudy(
                        ts.GetStudyRequest(name="studies/s"), timeout=30
                    )
                assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
            assert not ask.done() and not tell.done() and server.proc.poll() is None

            admin.execute_command("CLIENT", "UNPAUSE")
            assert len(ask.result(timeout=60).trials) == 2
            assert tell.result(timeout=60).trial.state == trial_pb2.TRIAL_STATE_COMPLETED
        assert server.proc.wait(timeout=60) == 0
        log = server.read_log()
    finally:
        server.terminate()
    assert log.rstrip().endswith("stopped")

    # What the in-flight calls did is in the store.
    again = InProcessServer(ServerConfig(redis_url=redis.url)).start()
    try:
        with grpc.insecure_channel(again.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            trials = stub.ListTrials(ts.ListTrialsRequest(parent="studies/s")).trials
    finally:
        again.stop()
    assert [t.state for t in trials] == [
        trial_pb2.TRIAL_STATE_COMPLETED,
        trial_pb2.TRIAL_STATE_RUNNING,
        trial_pb2.TRIAL_STATE_RUNNING,
    ]


def test_calls_still_running_when_the_grace_period_ends_are_cancelled(
    redis: RedisServer, admin: redis_lib.Redis
) -> None:
    server = ServerProcess(redis.url, ["--grace", "0.2"])
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            stub.CreateStudy(ts.CreateStudyRequest(study_id="s", spec=SPEC))
            admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
            ask = stub.SuggestTrials.future(_ask())
            _until(lambda: _blocked(admin) == 1)
            server.proc.send_signal(signal.SIGTERM)
            # Redis stays paused: the call cannot finish, the grace period ends, the server
            # cancels it, closes the store and still exits 0.
            assert server.proc.wait(timeout=60) == 0
            with pytest.raises(grpc.RpcError) as cut:
                ask.result(timeout=60)
            assert cut.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    finally:
        server.terminate()


# What Redis is doing when the replica gets SIGTERM.
_REDIS_PHASES = ("killed", "hung", "restarted", "reconnected")


@pytest.mark.parametrize("phase", _REDIS_PHASES)
def test_sigterm_during_each_phase_of_a_redis_restart_exits_in_time(phase: str) -> None:
    """Workers keep asking (BAYESIAN and RANDOM studies, so the sampler workers are busy too)
    and telling while Redis is killed, hangs (SIGSTOP) or comes back; SIGTERM then stops the
    replica within its grace period plus the store's reply bound, with exit status 0."""
    grace = 2
    with RedisServer("--appendonly", "yes") as redis:
        server = ServerProcess(redis.url, ["--grace", str(grace)])
        stop = threading.Event()
        calls = [0]
        try:
            with grpc.insecure_channel(server.target) as channel:
                stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
                for name, algorithm in (
                    ("bayes", study_pb2.ALGORITHM_BAYESIAN),
                    ("random", study_pb2.ALGORITHM_RANDOM),
                ):
                    two = spec(float_param("x", 0, 1), float_param("y", 0, 1), algorithm=algorithm)
                    stub.CreateStudy(ts.CreateStudyRequest(study_id=name, spec=two))

                def work(study: str) -> None:
                    ask = ts.SuggestTrialsRequest(parent=f"studies/{study}", count=1)
                    while not stop.is_set():
                        try:
                            (t,) = stub.SuggestTrials(ask, timeout=30).trials
                            stub.CompleteTrial(
                                ts.CompleteTrialRequest(
                                    name=t.name, final_measurement=measurement(loss=t.number)
                                ),
                                timeout=30,
                            )
                            calls[0] += 1
                        except grpc.RpcError:
                            stop.wait(0.05)

                workers = [
                    threading.Thread(target=work, args=(s,), daemon=True)
                    for s in ("bayes", "random", "bayes", "random")
                ]
                for w in workers:
                    w.start()
                _until(lambda: calls[0] >= 20)  # the sampler workers have started, too
                pid = redis.pid
                assert pid is not None
                if phase == "hung":
                    os.kill(pid, signal.SIGSTOP)
                else:
                    redis.kill()
                    if phase in ("restarted", "reconnected"):
                        redis.start()
                    if phase == "reconnected":
                        now = calls[0]
                        _until(lambda: calls[0] >= now + 10)
                server.proc.send_signal(signal.SIGTERM)
                # Grace for in-flight calls, then the store's 10 s reply bound at most for a
                # hung Redis; the rest is room for a busy machine. A replica that hangs fails.
                code = server.proc.wait(timeout=60)
                if phase == "hung":
                    os.kill(pid, signal.SIGCONT)
                stop.set()
                for w in workers:
                    w.join(timeout=60)
                log = server.read_log()
        finally:
            stop.set()
            if phase == "hung" and redis.running:
                os.kill(redis.pid, signal.SIGCONT)
            server.terminate()
    assert code == 0, log
    assert log.rstrip().endswith("stopped"), log


def test_a_second_sigterm_ends_a_stop_at_once(redis: RedisServer, admin: redis_lib.Redis) -> None:
    """An operator who does not want to wait out the grace period signals again: the replica
    exits at once (status 1), saying why and what its threads were doing."""
    metrics_port = free_port()
    server = ServerProcess(redis.url, ["--grace", "600", "--metrics-port", str(metrics_port)])
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            stub.CreateStudy(ts.CreateStudyRequest(study_id="s", spec=SPEC))
            admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
            held = stub.SuggestTrials.future(_ask())
            _until(lambda: _in_flight(metrics_port, "SuggestTrials") == 1 and _blocked(admin))
            server.proc.send_signal(signal.SIGTERM)
            _until(lambda: "stopping: finishing in-flight calls" in server.read_log())
            assert server.proc.poll() is None  # held by the call, for up to 600 s
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(timeout=60) == 1
            with pytest.raises(grpc.RpcError):
                held.result(timeout=60)
        log = server.read_log()
    finally:
        server.terminate()
    assert "exiting now: a second signal" in log
    assert "Thread" in log  # the threads' stacks, for whoever wonders why the stop hung


def test_cancel_and_wait_ends_a_task_that_swallows_a_cancellation() -> None:
    """A stop cancels its background loops until they end: the Redis client, reconnecting, can
    absorb one cancellation (seen as a stop that hung until its watchdog exited with 1)."""

    async def stubborn() -> None:
        swallowed = False
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # as a client's retry loop absorbing it

    async def body() -> bool:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel_and_wait(task), timeout=60)
        return task.cancelled()

    assert asyncio.run(body())


# The control shows the defect on the Pythons that have it: from 3.12, wait_for hands the
# inner error to its cancelled caller instead of leaving it unread.
_WAIT_FOR = pytest.param(
    asyncio.wait_for,
    id="wait_for",
    marks=pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12's wait_for reads it"),
)


@pytest.mark.parametrize("bound", [pytest.param(_bounded, id="bounded"), _WAIT_FOR])
def test_a_health_probe_cancelled_at_a_stop_leaves_no_unretrieved_error(
    bound: Callable[..., object],
) -> None:
    """A Redis client turns the cancellation of a read from a hung server into a connection
    error: ``asyncio.wait_for`` then leaves that error unread, and asyncio logs "Task exception
    was never retrieved" after the server said "stopped". The health probe's bound reads it."""
    seen: list[dict[str, object]] = []

    async def main() -> None:
        reading = asyncio.Event()

        async def hung_read() -> None:
            reading.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise Unavailable("the store cannot be reached (connection closed)") from None

        asyncio.get_running_loop().set_exception_handler(lambda _, context: seen.append(context))
        probe = asyncio.ensure_future(bound(hung_read(), 60))  # type: ignore[arg-type]
        await reading.wait()
        probe.cancel()
        # Cancelled (up to 3.11), or the read's own error (3.12 and later).
        with pytest.raises((asyncio.CancelledError, Unavailable)):
            await probe
        gc.collect()  # an unread error is reported when its task is collected
        await asyncio.sleep(0)

    asyncio.run(main())
    if bound is asyncio.wait_for:
        # The control: the defect this guards against is real on this Python.
        assert [c["message"] for c in seen] == ["Task exception was never retrieved"]
    else:
        assert seen == []
