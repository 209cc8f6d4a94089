"""The Java example worker (examples/java), built once per session with Debian's grpc-java
(``examples/java/build.sh``), run against real servers on the memory store and on Redis:
concurrent threads, retries with the same ``request_id``, heartbeats, decoded ``ErrorInfo``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.server import ServerConfig
from hyperdial_server.service import TuningServicer
from hyperdial_server.store import Store
from tests.process_groups import GROUP_GRACE, kill_group, popen, run
from tests.redis_server import free_port
from tests.server_harness import InProcessServer, ServerProcess

JAVA_DIR = Path(__file__).resolve().parents[2] / "examples" / "java"
MAIN_CLASS = "dev.hyperdial.examples.Worker"
#: Seconds one run of the worker may take at most (its calls' own deadline is 120 s).
RUN_TIMEOUT = 240

COMPLETED = trial_pb2.TRIAL_STATE_COMPLETED
STOPPED = trial_pb2.TRIAL_STATE_STOPPED


@pytest.fixture(scope="session")
def java_worker(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs the worker, built once into a temporary directory. A missing
    toolchain fails here with the apt packages to install (``build.sh`` names them)."""
    out = tmp_path_factory.mktemp("java-build")
    try:
        done = run(["bash", str(JAVA_DIR / "build.sh"), str(out)], timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail("examples/java/build.sh took over 900 s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"examples/java/build.sh failed (exit {done.returncode}):\n{done.stderr}",
            pytrace=False,
        )
    classpath = (out / "classpath").read_text().strip()
    return ["java", "-cp", classpath, MAIN_CLASS]


def _run(java_worker: list[str], *args: str) -> tuple[dict[str, Any], str]:
    """Runs the worker to its end; returns its summary (the last line of stdout) and stderr."""
    done = run([*java_worker, *args], timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _trials(target: str, study: str) -> list[trial_pb2.Trial]:
    """Every trial of ``studies/{study}``, read with the Python stub (leases due expire first)."""
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        trials: list[trial_pb2.Trial] = []
        token = ""
        while True:
            page = stub.ListTrials(
                ts.ListTrialsRequest(parent=f"studies/{study}", page_size=1000, page_token=token),
                timeout=30,
            )
            trials.extend(page.trials)
            token = page.next_page_token
            if not token:
                return trials


def _assert_each_point_once(trials: list[trial_pb2.Trial], count: int) -> None:
    """``count`` trials, numbered 1 to ``count``, each finished, none handed out twice."""
    assert sorted(t.number for t in trials) == list(range(1, count + 1))
    assert all(t.state in (COMPLETED, STOPPED) for t in trials), [t.state for t in trials]
    assert not any(t.original_trial or t.reissued_trial for t in trials)
    points = {
        tuple(sorted((k, v.WhichOneof("kind"), str(v)) for k, v in t.parameters.items()))
        for t in trials
    }
    assert len(points) == count


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """``redis_url`` of a server config: empty for the memory store, else the session's Redis."""
    return "" if request.param == "memory" else str(request.getfixturevalue("redis_url"))


# --- concurrent threads ----------------------------------------------------------------------


def test_java_worker_runs_a_study_on_concurrent_threads(
    java_worker: list[str], target: str
) -> None:
    study = f"java-{uuid.uuid4().hex[:12]}"
    summary, _ = _run(
        java_worker,
        *("--target", target, "--study", study, "--trials", "12", "--threads", "4"),
        *("--steps", "3", "--step-seconds", "0.3", "--early-stopping", "median"),
    )
    assert summary["study"] == f"studies/{study}" and summary["threads"] == 4
    assert summary["lost"] == 0
    assert summary["completed"] + summary["stopped"] == 12
    # The first trial to report at the last step has no one to compare with: it completes.
    assert summary["completed"] >= 1

    trials = _trials(target, study)
    _assert_each_point_once(trials, 12)
    states = Counter(t.state for t in trials)
    assert (states[COMPLETED], states[STOPPED]) == (summary["completed"], summary["stopped"])
    assert summary["reports"] == sum(t.measurement_count for t in trials)
    clients = {t.client_id for t in trials}
    assert all(c.startswith("java-") for c in clients) and len(clients) >= 2
    losses = {t.name: t.final_measurement.values["loss"] for t in trials if t.state == COMPLETED}
    best = summary["best"]
    assert best["loss"] == min(losses.values()) == losses[best["name"]]
    assert set(best["params"]) == {"lr", "layers", "optimizer"}


# --- retries with the same request_id --------------------------------------------------------


class LosingServicer(TuningServicer):
    """The tuning service, except that the answer of the first call of each kind below is lost
    after the call took effect: SuggestTrials and AddTrialMeasurement answer UNAVAILABLE, and
    CompleteTrial keeps its answer until the client's deadline passed and its retry (with the
    same ``request_id``) arrived, so the client sees DEADLINE_EXCEEDED. Every ``request_id`` is
    recorded, by method."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        super().__init__(store, clock=clock)
        self.request_ids: dict[str, list[str]] = {
            "SuggestTrials": [],
            "AddTrialMeasurement": [],
            "CompleteTrial": [],
        }
        self.lost: dict[str, str] = {}
        self._retried = asyncio.Event()  # built on the server's loop (see ServicerFactory)

    def _first(self, method: str, request_id: str) -> bool:
        self.request_ids[method].append(request_id)
        if method in self.lost:
            return False
        self.lost[method] = request_id
        return True

    async def SuggestTrials(
        self, request: ts.SuggestTrialsRequest, context: grpc.aio.ServicerContext
    ) -> ts.SuggestTrialsResponse:
        first = self._first("SuggestTrials", request.request_id)
        answer = await super().SuggestTrials(request, context)
        if first:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the answer was lost")
        return answer

    async def AddTrialMeasurement(
        self, request: ts.AddTrialMeasurementRequest, context: grpc.aio.ServicerContext
    ) -> ts.AddTrialMeasurementResponse:
        first = self._first("AddTrialMeasurement", request.request_id)
        answer = await super().AddTrialMeasurement(request, context)
        if first:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the answer was lost")
        return answer

    async def CompleteTrial(
        self, request: ts.CompleteTrialRequest, context: grpc.aio.ServicerContext
    ) -> ts.CompleteTrialResponse:
        first = self._first("CompleteTrial", request.request_id)
        if not first and request.request_id == self.lost["CompleteTrial"]:
            self._retried.set()
        answer = await super().CompleteTrial(request, context)
        if first:  # the client gives up on this attempt meanwhile
            await asyncio.wait_for(self._retried.wait(), RUN_TIMEOUT)
        return answer


def test_java_worker_retries_lost_answers_with_the_same_request_id(
    java_worker: list[str], store_url: str
) -> None:
    servicers: list[LosingServicer] = []

    def factory(store: Store, clock: Callable[[], float]) -> TuningServicer:
        servicers.append(LosingServicer(store, clock))
        return servicers[-1]

    config = ServerConfig(redis_url=store_url, lease_sweep_interval=0)
    with InProcessServer(config, servicer=factory) as server:
        study = f"java-{uuid.uuid4().hex[:12]}"
        summary, stderr = _run(
            java_worker,
            *("--target", server.target, "--study", study, "--trials", "6", "--threads", "2"),
            *("--steps", "2", "--attempt-deadline", "3", "--verbose"),
        )
        trials = _trials(server.target, study)
    (servicer,) = servicers

    # Every trial handed out once and told once: a retried ask that got new trials would have
    # left the first ones RUNNING, a retried tell with another id would be TRIAL_NOT_RUNNING.
    assert summary["completed"] == 6 and summary["stopped"] == summary["lost"] == 0
    _assert_each_point_once(trials, 6)
    assert all(t.state == COMPLETED for t in trials)
    assert summary["retries"] >= 3

    # Each lost call came again with its request_id; every other call had an id of its own.
    assert set(servicer.lost) == {"SuggestTrials", "AddTrialMeasurement", "CompleteTrial"}
    for method, lost_id in servicer.lost.items():
        counts = Counter(servicer.request_ids[method])
        assert lost_id and counts[lost_id] >= 2, (method, counts)
        assert all(n == 1 for rid, n in counts.items() if rid != lost_id), (method, counts)
        assert f"retry {method} attempt=2 request_id={lost_id} after" in stderr, stderr
    lost_tell = servicer.lost["CompleteTrial"]
    assert f"request_id={lost_tell} after DEADLINE_EXCEEDED" in stderr, stderr


def test_java_worker_waits_for_a_server_not_yet_listening(
    java_worker: list[str], store_url: str
) -> None:
    port = free_port()
    study = f"java-{uuid.uuid4().hex[:12]}"
    worker = popen(
        [*java_worker, "--target", f"127.0.0.1:{port}", "--study", study, "--trials", "4"]
        + ["--threads", "2", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server: ServerProcess | None = None
    try:
        assert worker.stderr is not None
        seen: list[str] = []
        for line in worker.stderr:  # ends at the worker's exit at the latest
            seen.append(line)
            if "retry CreateStudy" in line:
                break
        assert seen and "after UNAVAILABLE" in seen[-1], "".join(seen)
        first_id = seen[-1].split("request_id=")[1].split()[0]
        extra = ["--port", str(port), "--lease-sweep-interval", "0"]
        server = ServerProcess(store_url, extra)
        stdout, rest = worker.communicate(timeout=RUN_TIMEOUT)
        stderr = "".join(seen) + rest
        assert worker.returncode == 0, stderr
        summary = json.loads(stdout.strip().splitlines()[-1])
        trials = _trials(server.target, study)
    finally:
        kill_group(worker, GROUP_GRACE)
        if server is not None:
            server.close()

    assert summary["completed"] == 4 and summary["lost"] == 0 and summary["retries"] >= 1
    # Every attempt of the creation carried the id of its first.
    create_ids = {
        line.split("request_id=")[1].split()[0]
        for line in stderr.splitlines()
        if "retry CreateStudy" in line
    }
    assert create_ids == {first_id}
    _assert_each_point_once(trials, 4)


# --- google.rpc.ErrorInfo --------------------------------------------------------------------


def test_java_worker_decodes_error_info(java_worker: list[str], target: str) -> None:
    """The reason and field come from ``hyperdial_server.core.space`` (an empty parameter
    name), through the ``grpc-status-details-bin`` trailer."""
    answer, _ = _run(java_worker, "--target", target, "--probe-invalid")
    assert answer == {
        "probe": "CreateStudy",
        "code": "INVALID_ARGUMENT",
        "reason": "INVALID_SEARCH_SPACE",
        "domain": "hyperdial.dev",
        "metadata": {"field": "spec.parameters[0].name"},
        "fields": ["spec.parameters[0].name"],
    }


# --- heartbeats ------------------------------------------------------------------------------

LEASE = 3.0  # seconds: heartbeats every second
STEP = 4.5  # seconds of one step: longer than the lease


@pytest.fixture
def short_lease_target(store_url: str) -> Iterator[str]:
    """A server whose studies get a lease of ``LEASE`` seconds. On Redis it does not sweep (the
    session's Redis holds other tests' leases, on made-up clocks): a heartbeat or report then
    finds a due lease expired."""
    config = ServerConfig(
        redis_url=store_url, lease_timeout=LEASE, lease_sweep_interval=0 if store_url else 1.0
    )
    with InProcessServer(config) as server:
        yield server.target


def test_java_worker_heartbeats_keep_trials_past_their_lease(
    java_worker: list[str], short_lease_target: str
) -> None:
    study = f"java-{uuid.uuid4().hex[:12]}"
    summary, _ = _run(
        java_worker,
        *("--target", short_lease_target, "--study", study, "--trials", "2", "--threads", "2"),
        *("--steps", "2", "--step-seconds", str(STEP)),
    )
    assert summary["completed"] == 2 and summary["lost"] == 0
    assert summary["heartbeats"] >= 2
    trials = _trials(short_lease_target, study)
    _assert_each_point_once(trials, 2)
    for t in trials:
        assert t.state == COMPLETED and not t.failure_reason
        # RUNNING for two steps, more than twice its lease, without losing it.
        ran = t.complete_time.ToDatetime() - t.create_time.ToDatetime()
        assert ran.total_seconds() > 2 * LEASE
    with grpc.insecure_channel(short_lease_target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        spec = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{study}"), timeout=30).study.spec
    assert spec.lease_timeout.ToTimedelta().total_seconds() == LEASE  # the server's lease
