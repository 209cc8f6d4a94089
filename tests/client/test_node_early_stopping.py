"""The Node.js example worker (examples/node) with early stopping, against real servers: it
reports each step of its fake training, stops the trials the policy stops, and heartbeats
through steps longer than the lease.

The plain run (no policy) is tested in ``tests/ops/test_node_worker.py``."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

import hyperdial as hd
from tests.process_groups import run

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"
STEPS = 5


@pytest.fixture(scope="module")
def worker() -> Path:
    """``examples/node/worker.js`` with its dependencies installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        # A missing toolchain fails, never skips: scripts/install_test_tools.sh installs it.
        pytest.fail("node and npm are needed (scripts/install_test_tools.sh installs them)")
    done = run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, timeout=600)
    assert done.returncode == 0, done.stderr
    return NODE_DIR / "worker.js"


def run_worker(worker: Path, target: str, *args: str) -> tuple[str, dict[str, Any]]:
    """Runs the worker on a new study; its id and the JSON summary it printed."""
    study = f"node-es-{uuid.uuid4().hex[:12]}"
    done = run(
        ["node", str(worker), "--study", study, "--json", *args],
        env=dict(os.environ, HYPERDIAL_TARGET=target),
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()  # --json: the summary and nothing else on stdout
    return study, json.loads(line)


@pytest.mark.parametrize(
    ("flag", "rule"),
    [
        ("median", "median"),
        ("successive-halving", "successive_halving"),
        ("hyperband", "hyperband"),
    ],
)
def test_the_worker_reports_and_stops_when_told(
    worker: Path, target: str, flag: str, rule: str
) -> None:
    study_id, result = run_worker(
        worker, target, "--trials", "12", "--early-stopping", flag, "--seed", "3"
    )
    assert result["told"] + result["stopped"] == 12 and result["lost"] == 0
    assert result["stopped"] > 0 and result["told"] > 0
    with hd.Client(target) as client:
        study = client.get_study(study_id)
        assert study.early_stopping is not None
        trials = study.trials(with_measurements=True)
    assert len(trials) == 12
    stopped = [t for t in trials if t.state == "STOPPED"]
    completed = [t for t in trials if t.state == "COMPLETED"]
    assert len(stopped) == result["stopped"] and len(completed) == result["told"]
    for t in stopped:
        assert t.stop_decision is not None and t.stop_decision.rule == rule
        assert t.last_step == t.stop_decision.step < STEPS  # it stopped training there
    for t in completed:
        assert [m.step for m in t.measurements] == list(range(1, STEPS + 1))
        curve = [m.values["loss"] for m in t.measurements]
        assert curve == sorted(curve, reverse=True) and curve[-1] == t.value
        assert all(m.elapsed is not None and m.elapsed >= 0 for m in t.measurements)
    assert result["reports"] == sum(t.measurement_count for t in trials)


def test_the_worker_heartbeats_through_steps_longer_than_the_lease(
    worker: Path, target: str
) -> None:
    # Each step takes 1.5 s, the lease 1 s: only the heartbeats keep the trials (without them
    # each report finds the lease expired, and the point is handed out again, forever).
    study_id, result = run_worker(
        worker,
        target,
        *("--trials", "2", "--steps", "2", "--step-seconds", "1.5", "--lease-timeout", "1"),
    )
    assert (result["told"], result["stopped"], result["lost"]) == (2, 0, 0)
    assert result["heartbeats"] >= 4  # at least two per step
    with hd.Client(target) as client:
        study = client.get_study(study_id)
        assert study.lease_timeout == 1.0
        trials = study.trials()
    assert [str(t.state) for t in trials] == ["COMPLETED", "COMPLETED"]
    assert all(t.original_number is None and t.reissued_number is None for t in trials)
    assert all(t.measurement_count == 2 and t.failure_reason == "" for t in trials)
