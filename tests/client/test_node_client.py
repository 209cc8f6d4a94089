"""The Node.js client module (examples/node/hyperdial.js) against real servers, over real gRPC:
retries with one request_id, lease heartbeats, decoded error details, its generated types.

Small Node.js scripts drive the module; the worker that uses it is tested in
``tests/ops/test_node_worker.py`` and ``tests/client/test_node_early_stopping.py``.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.security import Role
from hyperdial_server.server import ServerConfig
from tests.process_groups import GROUP_GRACE, kill_group, popen, run
from tests.redis_server import free_port
from tests.security.pki import Pki, make_pki
from tests.security.tokens import Tokens
from tests.server_harness import InProcessServer, ServerProcess

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"
WRITER = ("team-a", Role.READ_WRITE)
MODULE = NODE_DIR / "hyperdial.js"

# A study of two parameters, as the drivers below create it (JSON of the loader's objects).
SPEC: dict[str, Any] = {
    "parameters": [
        {"name": "x", "float_domain": {"min": 0, "max": 1, "scale": "SCALE_LINEAR"}},
        {"name": "k", "int_domain": {"min": 1, "max": 4, "scale": "SCALE_LINEAR"}},
    ],
    "objectives": [{"name": "loss", "goal": "GOAL_MINIMIZE"}],
    "algorithm": "ALGORITHM_RANDOM",
    "max_trials": 10,
}

# createStudy (with a spec; without one the study exists), then one ask; prints {"created",
# "trials"} on stdout and each retry as a JSON line on stderr. Arguments: target, study id,
# spec (JSON, or ""), channel options (JSON), client_id.
ASK_DRIVER = """
const hd = require(process.env.HYPERDIAL_MODULE);
const [target, studyId, spec, channelOptions, clientId] = process.argv.slice(2);
(async () => {
  const client = await hd.connect(target, {
    deadlineMs: 90_000,
    channelOptions: JSON.parse(channelOptions),
    onRetry: (event) => console.error(JSON.stringify({ retry: event })),
  });
  try {
    const { study, created } = spec
      ? await client.createStudy(studyId, JSON.parse(spec))
      : { study: { name: `studies/${studyId}` }, created: false };
    const trials = await client.suggest(study.name, { clientId });
    console.log(JSON.stringify({ created, trials: trials.map((t) => t.name) }));
  } finally {
    client.close();
  }
})().catch((err) => {
  console.error(`driver: ${err.message}`);
  process.exitCode = 1;
});
"""

# createStudy with the spec given; prints the HyperdialError it throws as JSON.
ERROR_DRIVER = """
const hd = require(process.env.HYPERDIAL_MODULE);
const [target, studyId, spec] = process.argv.slice(2);
(async () => {
  const client = await hd.connect(target);
  try {
    await client.createStudy(studyId, JSON.parse(spec));
    console.log(JSON.stringify({ created: true }));
  } catch (err) {
    if (!(err instanceof hd.HyperdialError)) throw err;
    console.log(JSON.stringify({ error: err, attempts: err.attempts, requestId: err.requestId }));
  } finally {
    client.close();
  }
})().catch((err) => {
  console.error(`driver: ${err.message}`);
  process.exitCode = 1;
});
"""

# Joins a study, asks one trial and runs it with runTrial: `steps` steps of `step-seconds`
# each, a report after each. Prints the outcome and the client's counts.
RUN_DRIVER = """
const hd = require(process.env.HYPERDIAL_MODULE);
const [target, studyName, steps, stepSeconds] = process.argv.slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  const client = await hd.connect(target);
  try {
    const [trial] = await client.suggest(studyName, { clientId: 'runner' });
    const outcome = await client.runTrial(trial, async (run) => {
      for (let step = 1; step <= Number(steps); step += 1) {
        await sleep(Number(stepSeconds) * 1000);
        const decision = await run.report(step, { loss: 1 / step });
        if (decision.should_stop) return null;
      }
      return { loss: Number(run.params.x) };
    });
    const { state, trial: { name } } = outcome;
    console.log(JSON.stringify({ state, trial: name, ...client.stats }));
  } finally {
    client.close();
  }
})().catch((err) => {
  console.error(`driver: ${err.message}`);
  process.exitCode = 1;
});
"""


@pytest.fixture(scope="module")
def node_dir() -> Path:
    """``examples/node`` with its dependencies installed (kept in its node_modules)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        # A missing toolchain fails, never skips: scripts/install_test_tools.sh installs it.
        pytest.fail("node and npm are needed (scripts/install_test_tools.sh installs them)")
    done = run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, timeout=600)
    assert done.returncode == 0, done.stderr
    return NODE_DIR


@pytest.fixture
def driver(node_dir: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Writes a driver script into a temporary file; returns its path."""

    def write(source: str) -> Path:
        path = tmp_path / f"driver-{uuid.uuid4().hex[:8]}.js"
        path.write_text(source)
        return path

    return write


def node_env() -> dict[str, str]:
    return dict(os.environ, HYPERDIAL_MODULE=str(MODULE))


def run_node(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run(["node", str(script), *args], env=node_env(), timeout=timeout)


def only_json(stdout: str) -> dict[str, Any]:
    """The one JSON line a driver printed; fails when stdout holds anything else."""
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    result: dict[str, Any] = json.loads(lines[0])
    return result


def retries(stderr: str) -> list[dict[str, Any]]:
    """The retry events a driver logged on stderr."""
    events = []
    for line in stderr.splitlines():
        if line.startswith('{"retry"'):
            events.append(json.loads(line)["retry"])
    return events


def list_trials(target: str, study: str) -> list[trial_pb2.Trial]:
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        return list(stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{study}")).trials)


# --- generated types and type checking --------------------------------------------------------


def test_the_committed_types_are_generated_from_the_protos(node_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "types"
    done = run(["node", "gen-types.js", str(out)], cwd=node_dir, timeout=120)
    assert done.returncode == 0, done.stderr

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    committed, fresh = files(node_dir / "types"), files(out)
    assert committed == fresh, "regenerate with: cd examples/node && npm run gen-types"
    _, mismatch, errors = filecmp.cmpfiles(node_dir / "types", out, sorted(fresh), shallow=False)
    assert (mismatch, errors) == ([], []), "stale: cd examples/node && npm run gen-types"


def test_the_module_and_worker_typecheck_against_the_generated_types(node_dir: Path) -> None:
    tsc = node_dir / "node_modules" / "typescript" / "bin" / "tsc"
    done = run(["node", str(tsc), "-p", "."], cwd=node_dir, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


# --- error details ----------------------------------------------------------------------------


def test_a_bad_request_is_decoded_with_its_reason_and_field(
    driver: Callable[[str], Path], target: str
) -> None:
    bad = json.loads(json.dumps(SPEC))
    bad["parameters"][0]["float_domain"] = {"min": 1, "max": 0, "scale": "SCALE_LINEAR"}
    study = f"node-bad-{uuid.uuid4().hex[:12]}"
    done = run_node(driver(ERROR_DRIVER), target, study, json.dumps(bad))
    assert done.returncode == 0, done.stderr
    result = only_json(done.stdout)
    error = result["error"]
    assert result["attempts"] == 1  # INVALID_ARGUMENT is never retried
    assert len(result["requestId"]) == 36  # a UUID4 was sent
    assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert error["codeName"] == "INVALID_ARGUMENT"
    assert error["reason"] == "INVALID_SEARCH_SPACE"
    assert error["domain"] == "hyperdial.dev"
    assert error["retryDelay"] is None
    [violation] = error["fieldViolations"]
    assert violation["field"] == "spec.parameters[0].float_domain"

    # The same request from Python, decoded by grpcio-status: the same details.
    python_spec = study_pb2.StudySpec(
        parameters=[
            study_pb2.ParameterSpec(
                name="x",
                float_domain=study_pb2.FloatDomain(min=1, max=0, scale=study_pb2.SCALE_LINEAR),
            ),
            study_pb2.ParameterSpec(
                name="k", int_domain=study_pb2.IntDomain(min=1, max=4, scale=study_pb2.SCALE_LINEAR)
            ),
        ],
        objectives=[study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)],
        algorithm=study_pb2.ALGORITHM_RANDOM,
        max_trials=10,
    )
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=python_spec))
    status = rpc_status.from_call(raised.value)
    assert status is not None and status.message == error["message"]
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    for detail in status.details:
        detail.Unpack(info) or detail.Unpack(bad_request)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        error["reason"],
        error["domain"],
        error["metadata"],
    )
    assert [
        {"field": v.field, "description": v.description} for v in bad_request.field_violations
    ] == error["fieldViolations"]


# --- retries with one request_id --------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_calls_retry_until_a_late_server_answers(
    driver: Callable[[str], Path], request: pytest.FixtureRequest, store: str
) -> None:
    """The server is not listening yet: createStudy retries (one request_id on every attempt)
    until a server starts on the port, then creates the study once, and the ask gets a trial."""
    redis_url = str(request.getfixturevalue("redis_url")) if store == "redis" else ""
    port = free_port()
    target = f"127.0.0.1:{port}"
    study = f"node-late-{uuid.uuid4().hex[:12]}"
    proc = popen(
        ["node", str(driver(ASK_DRIVER)), target, study, json.dumps(SPEC), "{}", "driver"],
        env=node_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server: ServerProcess | None = None
    try:
        assert proc.stderr is not None and proc.stdout is not None
        # Wait until the driver has retried at least once: the call really failed first.
        first = proc.stderr.readline()
        assert first.startswith('{"retry"'), first + proc.stderr.read()
        server = ServerProcess(redis_url, ["--port", str(port)])
        assert server.target == target
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        events = retries(first + stderr)
        result = only_json(stdout)
        assert result["created"] is True  # not ALREADY_EXISTS: created by one of its attempts
        create_ids = {e["requestId"] for e in events if e["method"] == "CreateStudy"}
        assert len(create_ids) == 1 and len(next(iter(create_ids))) == 36
        assert all(e["codeName"] == "UNAVAILABLE" for e in events)
        trials = list_trials(target, study)
        assert [t.name for t in trials] == result["trials"] == [f"studies/{study}/trials/1"]
    finally:
        kill_group(proc, GROUP_GRACE)
        if server is not None:
            server.close()


class AnswerEater:
    """A TCP proxy on loopback to ``upstream`` (a gRPC server) that, until :meth:`heal`, drops
    the server's answers to calls: it forwards what the client sends, and of what the server
    sends only the HTTP/2 frames of the connection itself (stream 0: settings, pings, window
    updates), not those of any call. So a call reaches the server and takes effect, and its
    answer is lost while the connection stays up. :meth:`heal` closes those connections (the
    client sees UNAVAILABLE) and forwards everything on every later one."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.eating = True
        self.lock = threading.Lock()
        self.eaten: list[socket.socket] = []
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # shut down by close()
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                eat = self.eating
                self.sockets += [client, server]
                if eat:
                    self.eaten += [client, server]
            self._start(self._pump, client, server, False)
            self._start(self._pump, server, client, eat)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, eat: bool) -> None:
        pending = b""
        try:
            while data := src.recv(65536):
                if not eat:
                    dst.sendall(data)
                    continue
                pending += data
                # Whole HTTP/2 frames: a 9-byte header (24-bit length, type, flags, stream).
                while len(pending) >= 9:
                    size = 9 + int.from_bytes(pending[:3], "big")
                    if len(pending) < size:
                        break
                    frame, pending = pending[:size], pending[size:]
                    if int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF == 0:
                        dst.sendall(frame)
        except OSError:
            pass
        finally:
            _shut(src, dst)

    def heal(self) -> None:
        with self.lock:
            self.eating = False
            eaten, self.eaten = self.eaten, []
        _shut(*eaten)

    def close(self) -> None:
        _shut(self.listener)
        self.listener.close()
        with self.lock:
            sockets = list(self.sockets)
        _shut(*sockets)
        for thread in self.threads:
            thread.join(timeout=30)
        for s in sockets:
            s.close()


def _shut(*sockets: socket.socket) -> None:
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture
def eater(target: str) -> Iterator[AnswerEater]:
    host, port = target.rsplit(":", 1)
    proxy = AnswerEater((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()


def test_an_ask_whose_answer_was_lost_is_answered_once_on_retry(
    driver: Callable[[str], Path],
    stub: tuning_service_pb2_grpc.TuningServiceStub,
    target: str,
    eater: AnswerEater,
) -> None:
    """The ask takes effect on the server but its answer is lost: the retry, with the same
    request_id, gets that trial, and no second trial is handed out."""
    study = f"node-lost-{uuid.uuid4().hex[:12]}"
    spec = ts.CreateStudyRequest(study_id=study)
    spec.spec.parameters.add(name="x").float_domain.CopyFrom(
        study_pb2.FloatDomain(min=0, max=1, scale=study_pb2.SCALE_LINEAR)
    )
    spec.spec.objectives.add(name="loss", goal=study_pb2.GOAL_MINIMIZE)
    spec.spec.algorithm = study_pb2.ALGORITHM_RANDOM
    stub.CreateStudy(spec)
    # gRPC's own retries off: the lost answer reaches the module's retry loop. No client_id:
    # an ask with one would get the trials it holds back, whatever its request_id.
    options = json.dumps({"grpc.enable_retries": 0})
    proxied = f"127.0.0.1:{eater.port}"
    proc = popen(
        ["node", str(driver(ASK_DRIVER)), proxied, study, "", options, ""],
        env=node_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list_trials(target, study):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the ask never reached the server"
            time.sleep(0.05)
        eater.heal()
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    finally:
        kill_group(proc, GROUP_GRACE)
    result = only_json(stdout)
    trials = list_trials(target, study)
    assert [t.name for t in trials] == result["trials"] == [f"studies/{study}/trials/1"]
    asks = [e for e in retries(stderr) if e["method"] == "SuggestTrials"]
    assert asks, stderr  # the ask's first attempt failed: its answer never came
    assert len({e["requestId"] for e in asks}) == 1


# --- lease heartbeats -------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def short_lease_target(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server whose default lease (``--lease-timeout``) is 3 s: heartbeats every second
    keep a trial with 2 s to spare, however busy the machine."""
    if request.param == "memory":
        config = ServerConfig(lease_timeout=3.0)
    else:
        # No periodic sweep on the shared Redis (see tests/fixtures_server.py): leases expire
        # when their study is asked or listed, which the test does.
        redis_url = str(request.getfixturevalue("redis_url"))
        config = ServerConfig(redis_url=redis_url, lease_timeout=3.0, lease_sweep_interval=0)
    with InProcessServer(config) as server:
        yield server.target


def test_run_trial_heartbeats_through_steps_longer_than_the_lease(
    driver: Callable[[str], Path], short_lease_target: str
) -> None:
    target = short_lease_target
    study = f"node-hb-{uuid.uuid4().hex[:12]}"
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        request = ts.CreateStudyRequest(study_id=study)
        request.spec.parameters.add(name="x").float_domain.CopyFrom(
            study_pb2.FloatDomain(min=0, max=1, scale=study_pb2.SCALE_LINEAR)
        )
        request.spec.objectives.add(name="loss", goal=study_pb2.GOAL_MINIMIZE)
        request.spec.algorithm = study_pb2.ALGORITHM_RANDOM
        created = stub.CreateStudy(request).study
        assert created.spec.lease_timeout == duration_pb2.Duration(seconds=3)  # the server's

        # Each step takes 4.5 s, the lease 3 s: only the heartbeats keep the trial.
        proc = popen(
            ["node", str(driver(RUN_DRIVER)), target, f"studies/{study}", "2", "4.5"],
            env=node_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Meanwhile, asks of another worker expire any lapsed lease and would take its
            # point: there must be nothing to take.
            while proc.poll() is None:
                other = stub.SuggestTrials(
                    ts.SuggestTrialsRequest(parent=f"studies/{study}", count=1, client_id="other")
                )
                assert all(t.original_trial == "" for t in other.trials)
                for t in other.trials:
                    stub.CompleteTrial(
                        ts.CompleteTrialRequest(
                            name=t.name, failure=ts.TrialFailure(reason="not this test's")
                        )
                    )
                time.sleep(0.5)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            kill_group(proc, GROUP_GRACE)
        assert proc.returncode == 0, stderr
        result = only_json(stdout)
        assert result["state"] == "completed" and result["reports"] == 2
        assert result["heartbeats"] >= 4  # at least two per step
        trial = stub.GetTrial(ts.GetTrialRequest(name=result["trial"])).trial
    assert trial.state == trial_pb2.TRIAL_STATE_COMPLETED and trial.client_id == "runner"
    assert trial.reissued_trial == "" and trial.failure_reason == ""
    assert [m.step for m in trial.measurements] == [1, 2]


# --- TLS and bearer tokens --------------------------------------------------------------------

# Connects over mutual TLS with the PEM files given and a bearer token (or none), creates a
# study and runs one trial; prints {"state", "trial"} or the HyperdialError as JSON.
# Arguments: target, study id, spec (JSON), CA, client certificate, client key, token.
SECURE_DRIVER = """
const fs = require('node:fs');
const hd = require(process.env.HYPERDIAL_MODULE);
const [target, studyId, spec, ca, cert, key, token] = process.argv.slice(2);
(async () => {
  const tls = {
    rootCerts: fs.readFileSync(ca),
    certChain: fs.readFileSync(cert),
    privateKey: fs.readFileSync(key),
  };
  const client = await hd.connect(target, { tls, token, deadlineMs: 30_000 });
  try {
    const { study } = await client.createStudy(studyId, JSON.parse(spec));
    const [trial] = await client.suggest(study.name, { clientId: 'secure' });
    const done = await client.complete(trial.name, { loss: 0.5 });
    console.log(JSON.stringify({ state: done.state, trial: done.name }));
  } catch (err) {
    if (!(err instanceof hd.HyperdialError)) throw err;
    console.log(JSON.stringify({ error: err }));
  } finally {
    client.close();
  }
})().catch((err) => {
  console.error(`driver: ${err.message}`);
  process.exitCode = 1;
});
"""


@pytest.fixture(scope="module")
def secure_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pki, Tokens]]:
    """A server with mutual TLS and bearer tokens (one read-write token of namespace
    ``team-a``)."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    tokens = Tokens(tmp_path_factory.mktemp("tokens") / "tokens.txt", [WRITER])
    config = ServerConfig(
        tls_cert=str(pki.server.cert),
        tls_key=str(pki.server.key),
        tls_client_ca=str(pki.ca.cert),
        tokens_file=str(tokens.path),
    )
    with InProcessServer(config) as server:
        yield server.target, pki, tokens


def test_mutual_tls_and_a_bearer_token_reach_the_service(
    driver: Callable[[str], Path], secure_target: tuple[str, Pki, Tokens]
) -> None:
    target, pki, tokens = secure_target
    script = driver(SECURE_DRIVER)
    files = [str(pki.ca.cert), str(pki.client.cert), str(pki.client.key)]
    study = f"node-tls-{uuid.uuid4().hex[:12]}"
    done = run_node(script, target, study, json.dumps(SPEC), *files, tokens[WRITER])
    assert done.returncode == 0, done.stderr
    result = only_json(done.stdout)
    assert result == {"state": "TRIAL_STATE_COMPLETED", "trial": f"studies/{study}/trials/1"}

    # A token the server does not know: UNAUTHENTICATED, decoded, not retried.
    other = f"node-tls-{uuid.uuid4().hex[:12]}"
    done = run_node(script, target, other, json.dumps(SPEC), *files, "not-a-token")
    assert done.returncode == 0, done.stderr
    error = only_json(done.stdout)["error"]
    assert (error["codeName"], error["reason"]) == ("UNAUTHENTICATED", "TOKEN_INVALID")
    # No token at all: the client sends no authorization header.
    done = run_node(script, target, other, json.dumps(SPEC), *files, "")
    error = only_json(done.stdout)["error"]
    assert (error["codeName"], error["reason"]) == ("UNAUTHENTICATED", "TOKEN_MISSING")
