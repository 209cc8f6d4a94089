"""The Node.js example worker (examples/node/worker.js, on the client module hyperdial.js)
against real servers: npm install, then run it."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import hyperdial as hd
from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.server import ServerConfig
from tests.process_groups import run
from tests.server_harness import InProcessServer

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"
TRIALS = 12


@pytest.fixture(scope="module")
def node_worker() -> Path:
    """``examples/node`` with its dependencies installed (kept in its node_modules)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        # A missing toolchain fails, never skips: scripts/install_test_tools.sh installs it.
        pytest.fail("node and npm are needed (scripts/install_test_tools.sh installs them)")
    done = run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, timeout=600)
    assert done.returncode == 0, done.stderr
    return NODE_DIR / "worker.js"


def test_node_worker_runs_a_study_to_the_end(node_worker: Path, target: str) -> None:
    study = f"node-{uuid.uuid4().hex[:12]}"
    done = run(
        [
            *("node", str(node_worker), "--study", study, "--trials", str(TRIALS)),
            *("--json", "--verbose", "--concurrency", "3"),
        ],
        env=dict(os.environ, HYPERDIAL_TARGET=target),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # --json: stdout is one JSON line and nothing else; the log went to stderr.
    [line] = done.stdout.splitlines()
    result = json.loads(line)
    assert done.stderr.splitlines()[0] == f"created studies/{study} on {target}"
    assert result["study"] == f"studies/{study}" and result["created"] is True
    counts = (result["told"], result["stopped"], result["failed"], result["lost"])
    assert counts == (TRIALS, 0, 0, 0)
    assert result["reports"] == 5 * TRIALS  # 5 steps each, a report after each

    # What the worker did is what the service stored.
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        trials = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{study}")).trials
        assert len(trials) == TRIALS
        assert all(t.state == trial_pb2.TRIAL_STATE_COMPLETED for t in trials)
        assert all(t.client_id.startswith("node-") for t in trials)
        assert len({t.client_id for t in trials}) > 1  # the three loops shared the work
        losses = {t.name: t.final_measurement.values["loss"] for t in trials}
    best = result["best"]
    assert best["loss"] == min(losses.values()) == losses[best["name"]]
    assert set(best["params"]) == {"lr", "layers", "optimizer"}
    assert isinstance(best["params"]["layers"], int) and best["params"]["optimizer"] in (
        "adam",
        "sgd",
    )


def test_node_worker_reports_an_unreachable_server(node_worker: Path) -> None:
    from tests.redis_server import free_port

    done = run(["node", str(node_worker), "--target", f"127.0.0.1:{free_port()}"], timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("hyperdial worker: UNAVAILABLE")


def test_node_worker_joins_a_study_another_created(node_worker: Path, target: str) -> None:
    study = f"node-{uuid.uuid4().hex[:12]}"
    args = ["node", str(node_worker), "--study", study, "--trials", "2", "--json"]
    env = dict(os.environ, HYPERDIAL_TARGET=target)
    first = run(args, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    second = run(args, env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stderr.splitlines()[0] == f"joining studies/{study} on {target}"
    result = json.loads(second.stdout)
    assert result["created"] is False and result["told"] == 0  # the study was complete


@pytest.fixture(params=["memory", "redis"])
def short_lease_target(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server whose default lease (``--lease-timeout``) is 3 s: heartbeats every second
    keep a trial with 2 s to spare, however busy the machine."""
    if request.param == "memory":
        config = ServerConfig(lease_timeout=3.0)
    else:
        # No periodic sweep on the shared Redis (tests/fixtures_server.py says why): the
        # workers' own asks expire lapsed leases.
        redis_url = str(request.getfixturevalue("redis_url"))
        config = ServerConfig(redis_url=redis_url, lease_timeout=3.0, lease_sweep_interval=0)
    with InProcessServer(config) as server:
        yield server.target


def test_node_workers_keep_trials_that_run_longer_than_the_lease(
    node_worker: Path, short_lease_target: str
) -> None:
    # The server's lease is 3 s (the study has none of its own), a trial runs 8 s: only the
    # heartbeats keep the trials. Two loops ask while the other one trains, and each ask
    # expires the leases that lapsed: a trial whose lease lapsed would be handed out again.
    target = short_lease_target
    study_id = f"node-{uuid.uuid4().hex[:12]}"
    done = run(
        [
            *("node", str(node_worker), "--study", study_id, "--trials", "3", "--json"),
            *("--concurrency", "2", "--steps", "2", "--step-seconds", "4"),
        ],
        env=dict(os.environ, HYPERDIAL_TARGET=target),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["told"], result["stopped"], result["lost"]) == (3, 0, 0)
    assert result["heartbeats"] >= 6  # at least two per step
    with hd.Client(target) as client:
        study = client.get_study(study_id)
        assert study.lease_timeout == 3.0  # the server's, as GetStudy resolved it
        trials = study.trials()
    assert [str(t.state) for t in trials] == ["COMPLETED"] * 3
    assert all(t.original_number is None and t.reissued_number is None for t in trials)
