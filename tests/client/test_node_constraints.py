"""Outcome constraints and infeasible trials in the Node.js example (examples/node), against
real servers over real gRPC: the module's ``infeasible`` and ``TrialInfeasible``, the decoded
refusal of a result without its constraint's value, and the worker's ``--max-latency`` and
``--oom-layers``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hyperdial as hd
from tests.client.test_node_client import driver, node_dir, only_json, run_node  # noqa: F401
from tests.process_groups import run

WORKER = Path(__file__).resolve().parents[2] / "examples" / "node" / "worker.js"

# Creates a study with a constraint and drives four trials through the module: a result
# without the constraint's value (refused), then with it; a trial told infeasible; runTrial
# with a function that throws TrialInfeasible, and one that throws another error. Prints what
# each step answered. Arguments: target, study id.
DRIVER = """
const hd = require(process.env.HYPERDIAL_MODULE);
const [target, studyId] = process.argv.slice(2);
const brief = (t) => ({
  name: t.name, state: t.state, infeasible: t.infeasible, reason: t.infeasibility_reason,
  failure: t.failure_reason, values: t.final_measurement ? t.final_measurement.values : null,
});
(async () => {
  const client = await hd.connect(target);
  try {
    const { study } = await client.createStudy(studyId, {
      parameters: [{ name: 'x', float_domain: { min: 0, max: 1, scale: 'SCALE_LINEAR' } }],
      objectives: [{ name: 'loss', goal: 'GOAL_MINIMIZE' }],
      constraints: [{ name: 'latency_ms', upper_bound: 20 }],
      algorithm: 'ALGORITHM_RANDOM',
    });
    const out = { constraints: study.spec.constraints };
    const [a, b, c, d] = await client.suggest(study.name, { count: 4, clientId: 'driver' });
    try {
      await client.complete(a, { loss: 0.5 });
    } catch (err) {
      if (!(err instanceof hd.HyperdialError)) throw err;
      out.refused = { codeName: err.codeName, reason: err.reason, metadata: err.metadata };
    }
    out.completed = brief(await client.complete(a, { loss: 0.5, latency_ms: 25 }));
    out.told = brief(await client.infeasible(b, 'diverged'));
    const oom = await client.runTrial(c, async () => {
      throw new hd.TrialInfeasible('out of memory');
    });
    out.oom = { state: oom.state, trial: brief(oom.trial) };
    const crash = await client.runTrial(d, async () => {
      throw new Error('node lost');
    });
    out.crash = { state: crash.state, trial: brief(crash.trial) };
    out.optimal = (await client.listOptimalTrials(study.name)).map((t) => t.name);
    console.log(JSON.stringify(out));
  } finally {
    client.close();
  }
})().catch((err) => {
  console.error(`driver: ${err.message}`);
  process.exitCode = 1;
});
"""


def test_the_module_reports_constraints_and_tells_infeasible_trials(
    driver: Callable[[str], Path],  # noqa: F811
    target: str,
) -> None:
    study_id = f"node-con-{uuid.uuid4().hex[:12]}"
    done = run_node(driver(DRIVER), target, study_id)
    assert done.returncode == 0, done.stderr
    out = only_json(done.stdout)
    [constraint] = out["constraints"]
    assert (constraint["name"], constraint["upper_bound"]) == ("latency_ms", 20)
    assert out["refused"] == {
        "codeName": "INVALID_ARGUMENT",
        "reason": "MISSING_CONSTRAINT_VALUE",
        "metadata": {"constraint": "latency_ms", "field": "final_measurement.values[latency_ms]"},
    }
    completed = out["completed"]
    assert completed["state"] == "TRIAL_STATE_COMPLETED" and completed["infeasible"] is True
    assert completed["values"] == {"loss": 0.5, "latency_ms": 25}
    assert completed["reason"] == "latency_ms = 25 > 20 (upper bound)"
    assert out["told"]["state"] == "TRIAL_STATE_INFEASIBLE"
    assert (out["told"]["reason"], out["told"]["failure"]) == ("diverged", "")
    assert out["oom"]["state"] == "infeasible"
    assert out["oom"]["trial"]["state"] == "TRIAL_STATE_INFEASIBLE"
    assert out["oom"]["trial"]["reason"] == "out of memory"
    # Any other error: FAILED, not INFEASIBLE.
    assert out["crash"]["state"] == "failed"
    assert out["crash"]["trial"]["state"] == "TRIAL_STATE_FAILED"
    assert out["crash"]["trial"]["failure"] == "node lost"
    assert out["crash"]["trial"]["infeasible"] is False
    assert out["optimal"] == []  # the one completed trial breaks the constraint

    with hd.Client(target) as client:
        states = [str(t.state) for t in client.get_study(study_id).trials()]
    assert states == ["COMPLETED", "INFEASIBLE", "INFEASIBLE", "FAILED"]


def run_worker(target: str, study: str, *args: str) -> Any:
    return run(
        ["node", str(WORKER), "--study", study, "--json", *args],
        env=dict(os.environ, HYPERDIAL_TARGET=target),
        timeout=180,
    )


def latency(params: dict[str, Any]) -> float:
    """The worker's simulated latency (worker.js, latencyMs)."""
    return 2.5 * int(params["layers"]) + (1.0 if params["optimizer"] == "sgd" else 0.0)


def test_the_worker_reports_its_constraint_and_marks_oom_trials_infeasible(
    node_dir: Path,  # noqa: F811
    target: str,
) -> None:
    study_id = f"node-con-{uuid.uuid4().hex[:12]}"
    done = run_worker(
        target,
        study_id,
        "--trials",
        "16",
        "--seed",
        "3",
        "--max-latency",
        "12",
        "--oom-layers",
        "7",
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()  # --json: the summary and nothing else on stdout
    result = json.loads(line)
    assert result["told"] + result["infeasible"] == 16
    assert (result["stopped"], result["failed"], result["lost"]) == (0, 0, 0)

    with hd.Client(target) as client:
        study = client.get_study(study_id)
        assert study.constraints == [hd.Constraint("latency_ms", upper_bound=12)]
        trials = study.trials()
        best = study.best_trial
    assert len(trials) == 16
    oom = [t for t in trials if int(t.params["layers"]) >= 7]
    ran = [t for t in trials if int(t.params["layers"]) < 7]
    for t in oom:
        assert t.state is hd.TrialState.INFEASIBLE and t.infeasible
        assert t.infeasibility_reason == f"out of memory: {t.params['layers']} layers"
        assert t.values is None and t.measurement_count == 0  # it never trained
    for t in ran:
        assert t.state is hd.TrialState.COMPLETED
        assert t.constraint_values == {"latency_ms": latency(t.params)}
        assert t.infeasible == (latency(t.params) > 12)
    broken = [t for t in ran if t.infeasible]
    # The seed gives trials of each kind; the summary counts them as the service does.
    assert oom and broken and len(broken) < len(ran)
    assert result["infeasible"] == len(oom) and result["violations"] == len(broken)

    # The best is the lowest loss among the trials within the constraint.
    assert not best.infeasible
    assert best.value == min(t.value for t in ran if not t.infeasible and t.value is not None)
    assert result["best"]["name"] == best.name and result["best"]["loss"] == best.value
    assert result["best"]["latency_ms"] == latency(best.params) <= 12


def test_the_worker_refuses_a_study_whose_constraints_it_cannot_measure(
    node_dir: Path,  # noqa: F811
    target: str,
) -> None:
    study_id = f"node-con-{uuid.uuid4().hex[:12]}"
    with hd.Client(target) as client:
        client.create_study(
            study_id,
            [hd.Float("lr", 1e-5, 1.0, log=True), hd.Int("layers", 1, 8)],
            hd.Objective("loss"),
            constraints=["memory_gb <= 16"],
        )
    done = run_worker(target, study_id, "--trials", "2")
    assert done.returncode == 1 and done.stdout == ""
    assert f"studies/{study_id} has constraints this worker cannot measure: memory_gb" in (
        done.stderr
    )
    with hd.Client(target) as client:
        assert client.get_study(study_id).trials() == []  # it asked for nothing


@pytest.mark.parametrize("flags", [(), ("--oom-layers", "99")])
def test_without_a_constraint_the_worker_reports_the_loss_alone(
    node_dir: Path,  # noqa: F811
    target: str,
    flags: tuple[str, ...],
) -> None:
    study_id = f"node-con-{uuid.uuid4().hex[:12]}"
    done = run_worker(target, study_id, "--trials", "3", *flags)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["told"], result["infeasible"], result["violations"]) == (3, 0, 0)
    assert "latency_ms" not in result["best"]
    with hd.Client(target) as client:
        trials = client.get_study(study_id).trials()
    assert all(t.constraint_values is None and not t.infeasible for t in trials)
