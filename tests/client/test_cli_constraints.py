"""Outcome constraints and infeasible trials in the ``hyperdial`` command, through a real
server: declared with ``studies create --constraint``, told with ``tell --constraint-values``
and ``tell --infeasible``, shown by ``trials list``, ``trials get``, ``best`` and ``studies
get``, filtered with ``--state infeasible``, and carried by export and import."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import hyperdial as hd
from tests.client._support import new_id
from tests.client.test_cli_commands import Run, columns

SPACE = [hd.Int("layers", 1, 8), hd.Categorical("opt", ["adam", "sgd"])]


@pytest.fixture
def hyperdial(store_target: str, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(store_target, capsys)


@pytest.fixture
def constrained(store_target: str) -> Iterator[hd.Study]:
    """A study with two constraints: a feasible trial, one breaking a constraint (with the
    better value), an INFEASIBLE one, a failed one and a running one."""
    with hd.Client(store_target) as client:
        s = client.create_study(
            new_id("clic"),
            SPACE,
            algorithm="random",
            constraints=["latency_ms <= 20", "0.1 <= sparsity <= 0.5"],
        )
        s.add_trial(
            {"layers": 2, "opt": "adam"}, 0.5, constraint_values={"latency_ms": 5, "sparsity": 0.2}
        )
        s.add_trial(
            {"layers": 8, "opt": "sgd"}, 0.25, constraint_values={"latency_ms": 30, "sparsity": 0.2}
        )
        s.add_trial({"layers": 7, "opt": "sgd"}, infeasibility="out of memory")
        s.add_trial({"layers": 1, "opt": "adam"}, failure="node lost")
        s.ask()
        yield client.get_study(s.study_id)


def test_studies_create_with_constraints(hyperdial: Run, store_target: str) -> None:
    study_id = new_id("clic")
    status, out, err = hyperdial(
        "studies",
        "create",
        study_id,
        "--param",
        "x=float:0:1",
        "--constraint",
        "latency_ms<=20",
        "--constraint=accuracy >= 0.9",
        "--constraint",
        "0.1<=sparsity<=0.5",
    )
    assert status == 0, err
    assert out.startswith(f"created studies/{study_id}")
    with hd.Client(store_target) as client:
        assert client.get_study(study_id).constraints == [
            hd.Constraint("latency_ms", upper_bound=20),
            hd.Constraint("accuracy", lower_bound=0.9),
            hd.Constraint("sparsity", lower_bound=0.1, upper_bound=0.5),
        ]
    record = hyperdial.json("studies", "get", study_id)
    assert isinstance(record, dict)
    assert record["constraints"] == [
        {"name": "latency_ms", "lower_bound": None, "upper_bound": 20.0},
        {"name": "accuracy", "lower_bound": 0.9, "upper_bound": None},
        {"name": "sparsity", "lower_bound": 0.1, "upper_bound": 0.5},
    ]
    status, out, err = hyperdial("studies", "get", study_id)
    assert status == 0, err
    line = next(line for line in out.splitlines() if line.startswith("constraints"))
    assert line.split(None, 1)[1] == ("latency_ms <= 20, accuracy >= 0.9, 0.1 <= sparsity <= 0.5")


def test_a_spec_file_with_constraints(hyperdial: Run, store_target: str, tmp_path: Path) -> None:
    spec = {
        "parameters": [{"name": "x", "float_domain": {"min": 0, "max": 1}}],
        "objectives": [{"name": "loss", "goal": "GOAL_MINIMIZE"}],
        "constraints": [{"name": "latency_ms", "upper_bound": 20}],
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    study_id = new_id("clic")
    status, _, err = hyperdial("studies", "create", study_id, "--spec", str(path))
    assert status == 0, err
    with hd.Client(store_target) as client:
        assert client.get_study(study_id).constraints == [
            hd.Constraint("latency_ms", upper_bound=20)
        ]
    # Flags and a file: one or the other.
    status, _, err = hyperdial(
        "studies", "create", new_id("clic"), "--spec", str(path), "--constraint", "a<=1"
    )
    assert status == 2 and "not both" in err and "--constraint" in err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("latency_ms<20", "has no <= or >="),
        ("latency_ms=<20", "expected"),
        ("latency_ms<=fast", "one metric name"),
        ("0.5>=x<=1", "mixes <= and >="),
        ("latency_ms<=inf", "not a finite number"),
    ],
)
def test_malformed_constraints_are_usage_errors(hyperdial: Run, text: str, says: str) -> None:
    study_id = new_id("clic")
    status, out, err = hyperdial(
        "studies", "create", study_id, "--param", "x=float:0:1", "--constraint", text
    )
    assert status == 2 and out == ""
    [line] = err.splitlines()  # one line, naming the flag and the text
    assert line.startswith("hyperdial: error: --constraint: ")
    assert repr(text) in line and says in line
    status, _, err = hyperdial("studies", "get", study_id)
    assert status == 3  # nothing was created


def test_constraints_the_service_refuses(hyperdial: Run) -> None:
    status, _, err = hyperdial(
        "studies",
        "create",
        new_id("clic"),
        "--param",
        "x=float:0:1",
        "--constraint",
        "2<=x_rate<=1",
    )
    assert status == 5 and "INVALID_CONSTRAINTS" in err


def test_tell_with_constraint_values_and_infeasible(hyperdial: Run, store_target: str) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(
            new_id("clic"), SPACE, algorithm="random", constraints=["latency_ms <= 20"]
        )
        a, b, c, d = study.ask(4)
    sid = study.study_id

    # Without the constraint's value: the service's refusal, on one line, exit 5.
    status, out, err = hyperdial("tell", sid, str(a.number), "--value", "0.5")
    assert status == 5 and out == ""
    assert "MISSING_CONSTRAINT_VALUE" in err and "latency_ms" in err

    told = hyperdial.json(
        "tell", sid, str(a.number), "--value", "0.5", "--constraint-values", "latency_ms=25"
    )
    assert isinstance(told, dict)
    trial = told["trial"]
    assert trial["state"] == "COMPLETED" and trial["values"] == {"value": 0.5}
    assert trial["constraint_values"] == {"latency_ms": 25.0}
    assert trial["infeasible"] is True
    assert trial["infeasibility_reason"] == "latency_ms = 25 > 20 (upper bound)"

    told = hyperdial.json("tell", sid, str(b.number), "--values", "value=1", "latency_ms=3")
    assert isinstance(told, dict) and told["trial"]["infeasible"] is False

    told = hyperdial.json("tell", sid, str(c.number), "--infeasible", "diverged")
    assert isinstance(told, dict)
    assert (told["trial"]["state"], told["trial"]["infeasibility_reason"]) == (
        "INFEASIBLE",
        "diverged",
    )
    # Told again (a job re-run): the same answer, not TRIAL_NOT_RUNNING.
    again = hyperdial.json("tell", sid, str(c.number), "--infeasible", "diverged")
    assert isinstance(again, dict) and again["trial"] == told["trial"]
    told = hyperdial.json("tell", sid, str(d.number), "--infeasible")
    assert isinstance(told, dict) and told["trial"]["state"] == "INFEASIBLE"

    # Bad combinations: usage errors, before any call.
    for args in (
        ["--failed", "x", "--constraint-values", "latency_ms=1"],
        ["--infeasible", "--value", "1"],
        ["--value", "1", "--constraint-values", "latency_ms"],
        ["--values", "value=1", "latency_ms=1", "--constraint-values", "latency_ms=2"],
    ):
        status, _, err = hyperdial("tell", sid, "99", *args)
        assert status == 2, (args, err)


def test_trials_list_get_and_best_show_feasibility(hyperdial: Run, constrained: hd.Study) -> None:
    sid = constrained.study_id
    status, out, err = hyperdial("trials", "list", sid)
    assert status == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["NUMBER", "STATE", "VALUE", "LATENCY_MS", "SPARSITY", "layers"]
    for name in ("FEASIBLE", "FAILURE", "INFEASIBILITY"):
        assert name in header
    starts = columns(header)
    names = header.split()
    feasible = starts[names.index("FEASIBLE")]
    reason = starts[names.index("INFEASIBILITY")]
    by_number = {int(r.split()[0]): r for r in rows}
    assert by_number[1][feasible:].startswith("yes")
    assert by_number[2][feasible:].startswith("no")
    assert by_number[2][reason:] == "latency_ms = 30 > 20 (upper bound)"
    assert by_number[3][reason:] == "out of memory" and by_number[3].split()[1] == "INFEASIBLE"
    assert by_number[4][feasible:].startswith("-")  # failed: no result, neither
    assert "node lost" in by_number[4]

    status, out, _ = hyperdial("trials", "list", sid, "--state", "infeasible")
    assert [r.split()[0] for r in out.splitlines()[1:]] == ["3"]
    listed = hyperdial.json("trials", "list", sid)
    assert isinstance(listed, list)
    assert [t["infeasible"] for t in listed] == [False, True, True, False, False]

    status, out, err = hyperdial("trials", "get", sid, "2")
    assert status == 0, err
    facts = [line.split("  ", 1) for line in out.split("\n\n")[0].splitlines()]
    shown = {key.strip(): value.strip() for key, value in facts}
    assert shown["constraint latency_ms"] == "30 (latency_ms <= 20)"
    assert shown["constraint sparsity"] == "0.2 (0.1 <= sparsity <= 0.5)"
    assert shown["feasible"] == "no"
    assert shown["infeasibility"] == "latency_ms = 30 > 20 (upper bound)"
    status, out, _ = hyperdial("trials", "get", sid, "3")
    assert "out of memory" in out and "INFEASIBLE" in out

    # Only the feasible trial is best, though trial 2 has the better value.
    status, out, err = hyperdial("best", sid)
    assert status == 0, err
    header, *rows = out.splitlines()
    assert [r.split()[0] for r in rows] == ["1"] and "FEASIBLE" in header
    best = hyperdial.json("best", sid)
    assert isinstance(best, list) and [t["number"] for t in best] == [1]


def test_best_says_when_no_trial_holds_the_constraints(hyperdial: Run, store_target: str) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("clic"), SPACE, constraints=["latency_ms <= 20"])
        study.add_trial({"layers": 1, "opt": "adam"}, 1.0, constraint_values={"latency_ms": 99})
    status, out, err = hyperdial("best", study.study_id)
    assert status == 0, err
    assert out.strip() == f"no trial of {study.name} has completed within its constraints yet"
