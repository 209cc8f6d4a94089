"""What the dashboard's tests share: the dashboard as a process, plain HTTP, and seeded studies.

Every study is made with the real Python client on a real server: no mocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hyperdial as hd
from tests.process_groups import kill_group, popen

#: Seconds the dashboard gets to print its URL.
START_TIMEOUT = 60.0


class DashboardProcess:
    """``python -m hyperdial dashboard --port 0 ...`` in a process group of its own (killed on
    every path by :meth:`close`, or at the latest by the exit-time sweep of
    ``tests/process_groups.py``).

    Args:
        args: Arguments after ``dashboard`` (``--target`` and so on).

    Raises:
        RuntimeError: It did not print its URL.
    """

    def __init__(self, args: Sequence[str]) -> None:
        self.proc: subprocess.Popen[str] = popen(
            [sys.executable, "-m", "hyperdial", "dashboard", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        try:
            line = self.proc.stdout.readline()
        except BaseException:
            self.close()
            raise
        if " on http://" not in line:
            self.close()
            raise RuntimeError(f"the dashboard did not start: {line!r}")
        self.url = line.split(" on ", 1)[1].split()[0].rstrip("/")

    def close(self) -> None:
        kill_group(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> DashboardProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Answer:
    """An HTTP answer; header names in lower case."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def http(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 60
) -> Answer:
    """One HTTP request; an error status is an answer, not an exception."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, _lower(response.headers), response.read())
    except urllib.error.HTTPError as e:
        with e:
            return Answer(e.code, _lower(e.headers), e.read())


def wait_for(condition: Any, what: str, timeout: float = 90.0) -> Any:
    """Polls ``condition()`` until it is truthy and returns it (generous: a busy machine)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


# -- seeded studies ------------------------------------------------------------------------


@dataclass
class Seeded:
    """The studies a module seeded: id -> what the service holds (read back after seeding)."""

    target: str
    studies: dict[str, list[hd.Trial]] = field(default_factory=dict)

    def completed(self, study_id: str) -> list[hd.Trial]:
        return [t for t in self.studies[study_id] if t.state is hd.TrialState.COMPLETED]

    def state_count(self, study_id: str, state: str) -> int:
        return sum(1 for t in self.studies[study_id] if t.state.value == state)


def _loss(params: dict[str, Any]) -> float:
    lr = float(params["lr"])
    return (
        (lr - 0.01) ** 2 * 100
        + 0.05 * int(params["layers"])
        + (0.1 if params["optimizer"] == "sgd" else 0.0)
    )


def seed_main(client: hd.Client, study_id: str, *, trials: int = 24) -> None:
    """One objective, four parameters (one conditional), an early-stopping policy, learning
    curves, some failed trials and two left RUNNING."""
    study = client.create_study(
        study_id,
        [
            hd.Float("lr", 1e-4, 1.0, log=True),
            hd.Int("layers", 1, 8),
            hd.Categorical("optimizer", ["adam", "sgd"]),
            hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),
        ],
        hd.Objective("loss", "minimize"),
        algorithm="random",
        seed=7,
        early_stopping=hd.MedianStopping(warmup_steps=2),
    )
    for i in range(trials):
        (trial,) = study.ask(client_id=f"worker-{i % 3}")
        if i % 8 == 5:
            study.fail(trial, "out of memory")
            continue
        final = _loss(trial.params)
        stopped = False
        for step in range(1, 6):
            decision = study.report(trial, final + 1.0 / step, step)
            if decision.should_stop:
                stopped = True
                break
        if not stopped:
            study.tell(trial, final)
    study.ask(client_id="worker-running-1")
    study.ask(client_id="worker-running-2")


def seed_leases(client: hd.Client, study_id: str) -> None:
    """A trial whose worker vanished: its lease (1 s) expires, its point is handed out again."""
    study = client.create_study(
        study_id, [hd.Float("x", 0.0, 1.0)], algorithm="random", seed=3, lease_timeout=1.0
    )
    (lost,) = study.ask(client_id="vanished")
    wait_for(
        lambda: study.get_trial(lost.number).state is hd.TrialState.FAILED,
        "the lease of the abandoned trial to expire",
    )
    study.ask(client_id="replacement")  # gets the expired point again: reissued


def seed_failed_only(client: hd.Client, study_id: str) -> None:
    study = client.create_study(study_id, [hd.Float("x", 0.0, 1.0)], algorithm="random")
    for i in range(3):
        study.add_trial({"x": 0.1 * (i + 1)}, failure=f"crash {i}")


def seed_wide(client: hd.Client, study_id: str, *, trials: int = 30) -> None:
    """50 parameters, ten of them active only on one branch of five (absent in most trials)."""
    params: list[hd.Parameter] = [hd.Categorical("branch", ["a", "b", "c", "d", "e"])]
    params += [hd.Float(f"p{i:02d}", -1.0, 1.0) for i in range(39)]
    params += [hd.Float(f"rare{i}", 0.0, 1.0, when=("branch", ["e"])) for i in range(10)]
    study = client.create_study(study_id, params, algorithm="random", seed=11)
    for _ in range(trials):
        (trial,) = study.ask()
        study.tell(trial, sum(float(v) ** 2 for k, v in trial.params.items() if k != "branch"))


def seed_multi(client: hd.Client, study_id: str, objectives: int, *, trials: int = 24) -> None:
    goals = [hd.Objective("error", "minimize"), hd.Objective("speed", "maximize")]
    goals += [hd.Objective("memory", "minimize")]
    study = client.create_study(
        study_id,
        [hd.Float("x", 0.0, 1.0), hd.Float("y", 0.0, 1.0)],
        goals[:objectives],
        algorithm="random",
        seed=5,
    )
    for _ in range(trials):
        (trial,) = study.ask()
        x, y = float(trial.params["x"]), float(trial.params["y"])
        # A trial is dominated by any with both x and y smaller: a small front, many others.
        values = {"error": x, "speed": 1.0 - y, "memory": x + y}
        study.tell(
            trial, values={name: values[name] for name in [g.name for g in goals[:objectives]]}
        )


#: The constraint of the constrained study, and the layer count from which a model "runs out
#: of memory" there.
LATENCY_LIMIT = 20.0
OOM_LAYERS = 7


def seed_constrained(client: hd.Client, study_id: str, *, trials: int = 24) -> None:
    """Two objectives and an outcome constraint (``latency_ms <= 20``): trials within it,
    completed trials that break it (some with the best values), INFEASIBLE ones (out of
    memory) and a failed one."""
    study = client.create_study(
        study_id,
        [hd.Int("layers", 1, 8), hd.Float("width", 0.0, 1.0)],
        [hd.Objective("error", "minimize"), hd.Objective("speed", "maximize")],
        algorithm="random",
        seed=13,
        constraints=[f"latency_ms <= {LATENCY_LIMIT:g}"],
    )
    for i in range(trials):
        (trial,) = study.ask(client_id=f"worker-{i % 2}")
        layers, width = int(trial.params["layers"]), float(trial.params["width"])
        if i == 3:
            study.fail(trial, "node lost")
        elif layers >= OOM_LAYERS:
            study.mark_infeasible(trial, f"out of memory: {layers} layers")
        else:
            # Bigger models err less and run slower: the best errors break the constraint.
            study.tell(
                trial,
                values={"error": 1.0 / layers + 0.1 * width, "speed": 1.0 + width},
                constraint_values={"latency_ms": 4.0 * layers + 2.0 * width},
            )


def seed_big(client: hd.Client, study_id: str, trials: int) -> None:
    """Many completed trials, imported (no ask): enough to switch the charts to WebGL and
    samples."""
    study = client.create_study(
        study_id,
        [hd.Float("a", 0.0, 1.0), hd.Float("b", 0.0, 1.0), hd.Int("c", 1, 10)],
        algorithm="random",
        seed=2,
    )
    for i in range(trials):
        a, b, c = (i * 0.618) % 1.0, (i * 0.382) % 1.0, 1 + i % 10
        study.add_trial({"a": a, "b": b, "c": c}, (a - 0.3) ** 2 + (b - 0.6) ** 2 + 0.01 * c)


def read_back(client: hd.Client, seeded: Seeded, study_ids: Sequence[str]) -> None:
    for study_id in study_ids:
        seeded.studies[study_id] = client.get_study(study_id).trials()
