"""The ``hyperdial`` commands that talk to a running service, each through a real server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hyperdial as hd
from hyperdial import cli
from tests.client._support import new_id

SPACE = [
    hd.Float("lr", 1e-5, 1.0, log=True),
    hd.Int("layers", 1, 8),
    hd.Categorical("opt", ["adam", "sgd"]),
    hd.Float("momentum", 0.0, 0.99, when=("opt", ["sgd"])),
    hd.Discrete("batch", [16, 32, 64]),
]
POINTS = [
    {"lr": 0.001, "layers": 3, "opt": "adam", "batch": 32.0},
    {"lr": 0.1, "layers": 1, "opt": "sgd", "momentum": 0.9, "batch": 16.0},
    {"lr": 1e-05, "layers": 8, "opt": "sgd", "momentum": 0.0, "batch": 64.0},
]


class Run:
    """Runs ``hyperdial`` in-process against one server; returns (status, stdout, stderr)."""

    def __init__(self, target: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.target = target
        self._capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        status = cli.main([*args, "--target", self.target])
        out, err = self._capsys.readouterr()
        return status, out, err

    def json(self, *args: str) -> object:
        status, out, err = self(*args, "--json")
        assert status == 0, err
        return json.loads(out)


@pytest.fixture
def hyperdial(store_target: str, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(store_target, capsys)


@pytest.fixture
def study(store_target: str) -> Iterator[hd.Study]:
    """A study with two completed trials, one failed and one running."""
    with hd.Client(store_target) as client:
        s = client.create_study(new_id("cli"), SPACE, algorithm="random", seed=5)
        s.add_trial(POINTS[0], 0.25, metadata={"run": "a", "note": 'x,y "q"'})
        s.add_trial(POINTS[1], 0.5)
        s.add_trial(POINTS[2], failure="diverged")
        s.ask()
        yield client.get_study(s.study_id)


def columns(header: str) -> list[int]:
    """Where each column of a table starts."""
    return [m.start() for m in re.finditer(r"\S+( \S+)*", header)]


def test_studies_list(hyperdial: Run, study: hd.Study) -> None:
    status, out, err = hyperdial("studies", "list")
    assert status == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split() == ["STUDY", "ALGORITHM", "OBJECTIVES", "TRIALS", "CREATED"]
    (row,) = [r for r in rows if r.startswith(study.study_id + " ")]
    starts = columns(header)
    assert row[starts[1] :].startswith("random ")  # aligned under ALGORITHM
    assert row[starts[2] :].startswith("value (minimize)")
    trials_end = starts[3] + len("TRIALS")
    assert row[:trials_end].endswith(" 4")  # numbers aligned right
    listed = hyperdial.json("studies", "list")
    assert isinstance(listed, list)
    (record,) = [s for s in listed if s["study_id"] == study.study_id]
    assert record["trial_count"] == 4 and record["algorithm"] == "random"


def test_studies_get(hyperdial: Run, study: hd.Study) -> None:
    status, out, _ = hyperdial("studies", "get", study.study_id)
    assert status == 0
    assert re.search(rf"^study +{study.name}$", out, re.M)
    assert re.search(r"^seed +5$", out, re.M)
    assert re.search(r"^trials +4$", out, re.M)
    assert re.search(r"^lr +float +\[1e-05, 1\] log +-$", out, re.M)
    assert re.search(r"^momentum +float +\[0, 0\.99\] +opt in \{sgd\}$", out, re.M)
    assert re.search(r"^batch +discrete +16, 32, 64 +-$", out, re.M)
    record = hyperdial.json("studies", "get", study.name)
    assert isinstance(record, dict)
    assert record["seed"] == 5 and record["objectives"] == [{"name": "value", "goal": "minimize"}]
    assert record["parameters"][3] == {
        "name": "momentum",
        "type": "float",
        "low": 0.0,
        "high": 0.99,
        "log": False,
        "when": {"parent": "opt", "values": ["sgd"]},
    }


def test_trials_list(hyperdial: Run, study: hd.Study) -> None:
    status, out, _ = hyperdial("trials", "list", study.study_id)
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "NUMBER", "STATE", "VALUE", "lr", "layers", "opt", "momentum", "batch", "CLIENT", "FAILURE"
    ]  # fmt: skip
    assert [r.split()[:2] for r in rows] == [
        ["1", "COMPLETED"],
        ["2", "COMPLETED"],
        ["3", "FAILED"],
        ["4", "RUNNING"],
    ]
    assert rows[2].endswith("diverged")
    starts = columns(header)
    opt = header.index("opt")
    assert [r[opt : opt + 4].strip() for r in rows[:3]] == ["adam", "sgd", "sgd"]
    assert len({len(header)} | {starts[-1]}) == 2  # one FAILURE column at the end

    status, out, _ = hyperdial("trials", "list", study.study_id, "--state", "failed")
    assert status == 0 and [r.split()[0] for r in out.splitlines()[1:]] == ["3"]
    records = hyperdial.json("trials", "list", study.study_id, "--state", "COMPLETED")
    assert isinstance(records, list)
    assert [(r["number"], r["values"], r["params"]) for r in records] == [
        (1, {"value": 0.25}, POINTS[0]),
        (2, {"value": 0.5}, POINTS[1]),
    ]
    assert records[0]["metadata"] == {"run": "a", "note": 'x,y "q"'}
    status, out, _ = hyperdial("trials", "list", study.study_id, "--state", "WAITING")
    assert status == 0 and out == f"no trials in state WAITING in {study.name}\n"


def test_best(hyperdial: Run, study: hd.Study, store_target: str) -> None:
    status, out, _ = hyperdial("best", study.study_id)
    assert status == 0
    header, row = out.splitlines()
    assert row.split()[:3] == ["1", "COMPLETED", "0.25"]
    best = hyperdial.json("best", study.study_id)
    assert isinstance(best, list)
    (record,) = best
    assert record["number"] == 1 and record["params"] == POINTS[0]

    with hd.Client(store_target) as client:
        multi = client.create_study(
            new_id("cli"), SPACE, [hd.Objective("loss"), hd.Objective("acc", "maximize")]
        )
        multi.add_trial(POINTS[0], values={"loss": 1.0, "acc": 0.9})
        multi.add_trial(POINTS[1], values={"loss": 0.5, "acc": 0.5})
        multi.add_trial(POINTS[2], values={"loss": 2.0, "acc": 0.1})  # dominated
        empty = client.create_study(new_id("cli"), SPACE)
    status, out, _ = hyperdial("best", multi.study_id)
    lines = out.splitlines()
    assert lines[0] == f"Pareto front of {multi.name}: 2 trials"
    assert lines[1].split()[:4] == ["NUMBER", "STATE", "LOSS", "ACC"]
    assert [r.split()[0] for r in lines[2:]] == ["1", "2"]
    status, out, _ = hyperdial("best", empty.study_id)
    assert status == 0 and out == f"no trial of {empty.name} has completed yet\n"
    assert hyperdial.json("best", empty.study_id) == []


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_keeps_every_value_and_type(
    hyperdial: Run, study: hd.Study, store_target: str, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"trials.{fmt}"
    status, out, err = hyperdial("export", study.study_id, "--format", fmt, "-o", str(path))
    assert status == 0 and out == ""
    assert err == f"exported 4 trials of {study.name} to {path}\n"
    status, to_stdout, _ = hyperdial("export", study.study_id, "--format", fmt)
    assert to_stdout == path.read_text()

    with hd.Client(store_target) as client:
        # Another study of the same space: its seed differs from the file's spec.
        copy = client.create_study(new_id("copy"), SPACE, algorithm="random")
        status, out, err = hyperdial("import", copy.study_id, str(path), "--ignore-spec")
        assert status == 0, err
        assert out == (
            f"imported 3 trials into {copy.name} (2 completed, 1 failed); skipped 1 unfinished\n"
        )
        original, imported = study.trials(), copy.trials()
    assert len(imported) == 3
    for before, after in zip(original[:3], imported, strict=True):
        assert after.state == before.state
        assert after.params == before.params
        assert {k: type(v) for k, v in after.params.items()} == {
            k: type(v) for k, v in before.params.items()
        }
        assert after.values == before.values
        assert after.failure_reason == before.failure_reason
        assert after.metadata == before.metadata
    assert imported[0].metadata == {"run": "a", "note": 'x,y "q"'}

    again = hyperdial.json("import", copy.study_id, str(path), "--ignore-spec")
    assert again == {
        "study": copy.name,
        "created": False,
        "imported": 3,
        "completed": 2,
        "failed": 1,
        "infeasible": 0,
        "skipped": 1,
        "skipped_stopped": 0,
    }


def test_export_formats(hyperdial: Run, study: hd.Study) -> None:
    _, csv_text, _ = hyperdial("export", study.study_id)  # csv by default
    lines = csv_text.splitlines()
    assert lines[0] == (
        "number,state,values.value,params.lr,params.layers,params.opt,params.momentum,"
        "params.batch,client_id,failure_reason,infeasible,infeasibility_reason,create_time,"
        "complete_time,measurement_count,stop_rule,stop_step,metadata.note,metadata.run"
    )
    assert lines[1].startswith("1,COMPLETED,0.25,0.001,3,adam,,32.0,,,false,,")
    _, json_text, _ = hyperdial("export", study.study_id, "--format", "json")
    document = json.loads(json_text)
    assert document["study"] == study.name
    assert [t["state"] for t in document["trials"]] == [
        "COMPLETED",
        "COMPLETED",
        "FAILED",
        "RUNNING",
    ]


def test_import_refuses_bad_files_with_a_clear_line(
    hyperdial: Run, study: hd.Study, tmp_path: Path
) -> None:
    bad_cell = tmp_path / "bad.csv"
    bad_cell.write_text("state,values.value,params.layers\nCOMPLETED,0.5,three\n")
    status, out, err = hyperdial("import", study.study_id, str(bad_cell))
    assert status == cli.EXIT_INVALID and out == ""
    assert err == "hyperdial: error: row 2: params.layers = 'three' is not a int value\n"

    no_values = tmp_path / "no-values.json"
    no_values.write_text(json.dumps({"trials": [{"number": 7, "state": "COMPLETED"}]}))
    status, _, err = hyperdial("import", study.study_id, str(no_values))
    assert status == cli.EXIT_INVALID
    assert "trial 7: a COMPLETED trial needs its objective values" in err

    outside = tmp_path / "outside.json"
    trial = {"state": "COMPLETED", "params": {"layers": 99}, "values": {"value": 1}}
    outside.write_text(json.dumps({"trials": [trial]}))
    status, _, err = hyperdial("import", study.study_id, str(outside))
    assert status == cli.EXIT_INVALID
    assert err.startswith(f"hyperdial: error: INVALID_PARAMETERS: trial 1 of {outside}: ")
    assert err.count("\n") == 1

    status, _, err = hyperdial("import", study.study_id, str(tmp_path / "missing.csv"))
    assert status == cli.EXIT_INVALID and "cannot read" in err
    status, _, err = hyperdial("import", new_id("nope"), str(bad_cell))
    assert status == cli.EXIT_NOT_FOUND and "STUDY_NOT_FOUND" in err


def test_delete_and_errors(hyperdial: Run, study: hd.Study) -> None:
    status, out, _ = hyperdial("studies", "delete", study.study_id)
    assert status == 0 and out == f"deleted {study.name}\n"
    for args in (
        ("studies", "get", study.study_id),
        ("studies", "delete", study.study_id),
        ("trials", "list", study.study_id),
        ("best", study.study_id),
        ("export", study.study_id),
    ):
        status, out, err = hyperdial(*args)
        assert status == cli.EXIT_NOT_FOUND, args
        assert out == ""
        assert err.startswith("hyperdial: error: STUDY_NOT_FOUND: ") and err.count("\n") == 1

    status, _, err = hyperdial("studies", "get", "not a valid id")
    assert status == cli.EXIT_INVALID and "INVALID_" in err
    status, _, err = hyperdial("trials", "list", "x", "--state", "DONE")
    assert status == cli.EXIT_USAGE and "invalid choice" in err
    status, _, err = hyperdial("studies")
    assert status == cli.EXIT_USAGE


def test_delete_several_as_json(hyperdial: Run, store_target: str) -> None:
    with hd.Client(store_target) as client:
        names = [client.create_study(new_id("del"), SPACE).name for _ in range(2)]
    assert hyperdial.json("studies", "delete", *names) == {"deleted": names, "missing": []}
    status, _, err = hyperdial("studies", "get", names[0])
    assert status == cli.EXIT_NOT_FOUND


def test_connection_flags_before_or_after_the_command(
    store_target: str, study: hd.Study, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["--json", "--target", store_target, "best", study.study_id]) == 0
    (before,) = json.loads(capsys.readouterr().out)
    # After the command, a flag wins over the same flag before it.
    args = ["--target", "127.0.0.1:1", "best", study.study_id, "--target", store_target, "--json"]
    assert cli.main(args) == 0
    (after,) = json.loads(capsys.readouterr().out)
    assert before == after and before["number"] == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_service(capsys: pytest.CaptureFixture[str]) -> None:
    target = f"127.0.0.1:{free_port()}"
    status = cli.main(["studies", "list", "--target", target, "--timeout", "0.5"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_UNAVAILABLE
    # Never reached: one line that names the target, what to check and the transport's error.
    assert re.match(
        rf"hyperdial: error: cannot reach the hyperdial service at {target}: [^\n]*"
        r"Is the server running[^\n]*--tls on the command line[^\n]*"
        r"Last error: (UNAVAILABLE|DEADLINE_EXCEEDED): [^\n]+$",
        err,
    ), err
    assert err.count("\n") == 1
    assert cli.main(["studies", "list", "--timeout", "0"]) == cli.EXIT_INVALID


def test_target_from_the_environment_in_a_real_process(store_target: str, study: hd.Study) -> None:
    env = {**os.environ, "HYPERDIAL_TARGET": store_target}
    result = subprocess.run(
        [sys.executable, "-m", "hyperdial", "--json", "studies", "get", study.study_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == study.name
    missing = subprocess.run(
        [sys.executable, "-m", "hyperdial", "best", new_id("none")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode == cli.EXIT_NOT_FOUND
    assert missing.stdout == "" and missing.stderr.count("\n") == 1


def test_record_parsing_details() -> None:
    from hyperdial._records import detect_format, parse_records

    assert detect_format("a.JSON", "x") == "json" and detect_format("a.csv", "{") == "csv"
    assert detect_format("-", '  [{"state": "FAILED"}]') == "json"
    assert detect_format("-", "state,values.v\n") == "csv"
    params = {p.name: p for p in SPACE}
    # A bare list of trials; unfinished ones are counted, not imported.
    trials, skipped = parse_records(
        json.dumps(
            [
                {"state": "RUNNING"},
                {"state": "failed", "failure_reason": "oom"},
                {"state": "stopped", "values": {"value": 1.0}},
            ]
        ),
        "json",
        params,
    )
    assert skipped == {"RUNNING": 1, "STOPPED": 1}
    assert [(t.failure, t.values) for t in trials] == [("oom", None)]
    _, skipped = parse_records("state,values.value\nSTOPPED,0.5\nWAITING,\n", "csv", params)
    assert skipped == {"STOPPED": 1, "WAITING": 1}
    # CSV cells take the parameter's type; "3.0" for an int parameter stays a whole number.
    text = "state,values.value,params.layers,params.lr,params.opt,params.other\n"
    text += "COMPLETED,1,3.0,1e-05,adam,7\n"
    (trial,), _ = parse_records(text, "csv", params)
    assert trial.params == {"layers": 3.0, "lr": 1e-05, "opt": "adam", "other": 7}
    assert type(trial.params["lr"]) is float and type(trial.params["other"]) is int
    with pytest.raises(ValueError, match="row 2: values.value = 'inf' is not a finite number"):
        parse_records("state,values.value\nCOMPLETED,inf\n", "csv", params)
    with pytest.raises(ValueError, match="unknown state 'DONE'"):
        parse_records("state\nDONE\n", "csv", params)
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_records("{", "json", params)


# -- early stopping ------------------------------------------------------------------------------


@pytest.fixture
def stopping(store_target: str) -> Iterator[hd.Study]:
    """A study under the median rule: trial 1 completed after reports at steps 1 to 3, trial 2
    stopped by the rule at step 1, trial 3 stopped by its worker at step 2, trial 4 running
    after one report."""
    with hd.Client(store_target) as client:
        s = client.create_study(
            new_id("cli"),
            SPACE,
            algorithm="random",
            seed=5,
            early_stopping=hd.MedianStopping(warmup_steps=1),
        )
        t1, t2, t3, t4 = s.ask(4)
        for step in (1, 2, 3):
            t1.report(1.0 / step, step, elapsed=1.5 * step)
        t1.report(0.25)
        assert t2.report(2.0, 1).should_stop
        t3.report(0.5, 1)
        t3.report(0.75, 2)
        t3.stop("plateau")
        t4.report(0.4, 1)
        yield client.get_study(s.study_id)


def test_trials_list_shows_stopped_trials_and_the_last_step(
    hyperdial: Run, stopping: hd.Study
) -> None:
    status, out, _ = hyperdial("trials", "list", stopping.study_id)
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split()[-4:] == ["CLIENT", "STEP", "STOPPED", "BY"]
    assert [r.split()[:2] for r in rows] == [
        ["1", "COMPLETED"],
        ["2", "STOPPED"],
        ["3", "STOPPED"],
        ["4", "RUNNING"],
    ]
    step, by = header.index("STEP"), header.index("STOPPED BY")
    assert [r[step - 2 : by].strip() for r in rows] == ["3", "1", "2", "1"]  # aligned right
    assert [r[by:].strip() for r in rows] == ["-", "median", "worker", "-"]

    status, out, _ = hyperdial("trials", "list", stopping.study_id, "--state", "stopped")
    assert status == 0 and [r.split()[0] for r in out.splitlines()[1:]] == ["2", "3"]
    records = hyperdial.json("trials", "list", stopping.study_id, "--state", "STOPPED")
    assert isinstance(records, list)
    rule, worker = records
    assert rule["state"] == "STOPPED" and rule["values"] == {"value": 2.0}
    assert rule["stop_decision"]["rule"] == "median" and rule["stop_decision"]["step"] == 1
    assert rule["measurement_count"] == 1 and rule["last_step"] == 1
    assert "measurements" not in rule  # the curve is for trials get
    assert worker["stop_decision"] == {
        "should_stop": True,
        "rule": "worker",
        "step": 2,
        "rung": None,
        "message": "plateau",
        "compared_trials": 0,
    }


def test_trials_get_prints_the_curve_and_the_stop_decision(
    hyperdial: Run, stopping: hd.Study
) -> None:
    status, out, _ = hyperdial("trials", "get", stopping.study_id, "2")
    assert status == 0
    assert re.search(rf"^trial +{stopping.name}/trials/2$", out, re.M)
    assert re.search(r"^state +STOPPED$", out, re.M)
    assert re.search(r"^value +2$", out, re.M)
    assert re.search(r"^reports +1$", out, re.M)
    assert re.search(r"^stopped by +median at step 1 \(1 compared\)$", out, re.M)
    assert re.search(r"^ +best value 2 is worse than the median", out, re.M)
    assert re.search(r"^PARAMETER +VALUE$", out, re.M)

    status, out, _ = hyperdial("trials", "get", stopping.study_id, "1")
    assert status == 0
    curve = out[out.index("STEP") :].splitlines()
    assert curve[0].split() == ["STEP", "VALUE", "ELAPSED"]
    assert [r.split() for r in curve[1:]] == [
        ["1", "1", "1.5", "s"],
        ["2", "0.5", "3", "s"],
        ["3", "0.333333", "4.5", "s"],
    ]
    assert "stopped by" not in out and re.search(r"^state +COMPLETED$", out, re.M)

    record = hyperdial.json("trials", "get", stopping.study_id, "1")
    assert isinstance(record, dict)
    assert record["measurements"] == [
        {"step": 1, "values": {"value": 1.0}, "elapsed": 1.5},
        {"step": 2, "values": {"value": 0.5}, "elapsed": 3.0},
        {"step": 3, "values": {"value": 1 / 3}, "elapsed": 4.5},
    ]
    assert record["last_step"] == 3 and record["stop_decision"] is None
    running = hyperdial.json("trials", "get", stopping.study_id, "4")
    assert isinstance(running, dict) and running["state"] == "RUNNING"
    status, out, _ = hyperdial("trials", "get", stopping.study_id, "4")
    assert re.search(r"^lease expires +\d{4}-", out, re.M)

    status, _, err = hyperdial("trials", "get", stopping.study_id, "99")
    assert status == cli.EXIT_NOT_FOUND and err.startswith("hyperdial: error: TRIAL_NOT_FOUND")
    status, _, err = hyperdial("trials", "get", stopping.study_id, "two")
    assert status == cli.EXIT_USAGE


def test_studies_get_shows_the_policy(hyperdial: Run, stopping: hd.Study, study: hd.Study) -> None:
    status, out, _ = hyperdial("studies", "get", stopping.study_id)
    assert status == 0
    assert re.search(
        r"^early stopping +median \(warmup_steps 1, min_trials 1, interval_steps 1\) on value; "
        r"keeps 100 measurements$",
        out,
        re.M,
    )
    record = hyperdial.json("studies", "get", stopping.study_id)
    assert isinstance(record, dict)
    assert record["early_stopping"] == {
        "rule": "median",
        "warmup_steps": 1,
        "min_trials": 1,
        "interval_steps": 1,
        "objective": "value",
        "max_measurements_per_trial": 100,
        "rank_stopped_trials": False,
    }
    _, out, _ = hyperdial("studies", "get", study.study_id)
    assert re.search(r"^early stopping +-$", out, re.M)
    plain = hyperdial.json("studies", "get", study.study_id)
    assert isinstance(plain, dict) and plain["early_stopping"] is None


def test_export_carries_stopped_trials_and_import_skips_them(
    hyperdial: Run, stopping: hd.Study, store_target: str, tmp_path: Path
) -> None:
    _, json_text, _ = hyperdial("export", stopping.study_id, "--format", "json")
    trials = json.loads(json_text)["trials"]
    assert [t["state"] for t in trials] == ["COMPLETED", "STOPPED", "STOPPED", "RUNNING"]
    assert [len(t["measurements"]) for t in trials] == [3, 1, 2, 1]
    assert trials[2]["measurements"][1] == {"step": 2, "values": {"value": 0.75}, "elapsed": None}
    assert trials[2]["stop_decision"]["message"] == "plateau"
    _, csv_text, _ = hyperdial("export", stopping.study_id)
    header, *rows = csv_text.splitlines()
    assert "measurement_count,stop_rule,stop_step" in header
    assert rows[1].split(",")[:3] == ["2", "STOPPED", "2.0"]
    assert rows[1].endswith(",1,median,1") and rows[2].endswith(",2,worker,2")
    assert rows[0].endswith(",3,,") and rows[3].endswith(",1,,")

    for fmt, text in (("json", json_text), ("csv", csv_text)):
        path = tmp_path / f"stopping.{fmt}"
        path.write_text(text)
        with hd.Client(store_target) as client:
            copy = client.create_study(new_id("copy"), SPACE, algorithm="random")
        status, out, _ = hyperdial("import", copy.study_id, str(path), "--ignore-spec")
        assert status == 0
        assert out == (
            f"imported 1 trials into {copy.name} (1 completed, 0 failed); skipped 1 "
            "unfinished and 2 stopped (stopped trials cannot be imported)\n"
        )
        summary = hyperdial.json("import", copy.study_id, str(path), "--ignore-spec")
        assert isinstance(summary, dict)
        assert (summary["skipped"], summary["skipped_stopped"]) == (3, 2)


def test_best_may_list_stopped_trials(hyperdial: Run, store_target: str) -> None:
    with hd.Client(store_target) as client:
        policy = hd.EarlyStopping(hd.ThresholdStopping(threshold=5.0), rank_stopped_trials=True)
        s = client.create_study(new_id("cli"), SPACE, early_stopping=policy)
        done, stopped = s.ask(2)
        done.report(0.5)
        stopped.report(0.1, 4)
        stopped.stop()
    status, out, _ = hyperdial("best", s.study_id)
    assert status == 0
    header, row = out.splitlines()
    assert header.split()[-4:] == ["CLIENT", "STEP", "STOPPED", "BY"]
    assert row.split()[:3] == ["2", "STOPPED", "0.1"] and row.rstrip().endswith("4  worker")
