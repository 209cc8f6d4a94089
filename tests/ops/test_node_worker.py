"""The Node.js example worker (examples/node) against a real server: npm install, then run it."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import grpc
import pytest

from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.process_groups import run

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"
TRIALS = 12


@pytest.fixture(scope="module")
def node_worker() -> Path:
    """``examples/node`` with its dependencies installed (kept in its node_modules)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed on CI machines")
        pytest.skip("node and npm are not installed")
    done = run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, timeout=600)
    assert done.returncode == 0, done.stderr
    return NODE_DIR / "worker.js"


def test_node_worker_runs_a_study_to_the_end(node_worker: Path, target: str) -> None:
    study = f"node-{uuid.uuid4().hex[:12]}"
    done = run(
        ["node", str(node_worker), "--study", study, "--trials", str(TRIALS), "--json"],
        env=dict(os.environ, HYPERDIAL_TARGET=target),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"created studies/{study} on {target}"
    result = json.loads(lines[-1])
    assert result["study"] == f"studies/{study}" and result["told"] == TRIALS

    # What the worker did is what the service stored.
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        trials = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{study}")).trials
        assert len(trials) == TRIALS
        assert all(t.state == trial_pb2.TRIAL_STATE_COMPLETED for t in trials)
        assert all(t.client_id.startswith("node-") for t in trials)
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
