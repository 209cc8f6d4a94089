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
    (record,) = hyperdial.json("best", study.study_id)  # type: ignore[misc]
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
        copy = client.create_study(new_id("copy"), SPACE, algorithm="random")
        status, out, err = hyperdial("import", copy.study_id, str(path))
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

    again = hyperdial.json("import", copy.study_id, str(path))
    assert again == {
        "study": copy.name,
        "imported": 3,
        "completed": 2,
        "failed": 1,
        "skipped": 1,
    }


def test_export_formats(hyperdial: Run, study: hd.Study) -> None:
    _, csv_text, _ = hyperdial("export", study.study_id)  # csv by default
    lines = csv_text.splitlines()
    assert lines[0] == (
        "number,state,values.value,params.lr,params.layers,params.opt,params.momentum,"
        "params.batch,client_id,failure_reason,create_time,complete_time,metadata.note,"
        "metadata.run"
    )
    assert lines[1].startswith("1,COMPLETED,0.25,0.001,3,adam,,32.0,,,")
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
    assert hyperdial.json("studies", "delete", *names) == {"deleted": names}
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
    # Refused connections (UNAVAILABLE), or the deadline passed while connecting.
    assert re.match(
        rf"hyperdial: error: cannot reach the service at {target}: "
        r"(UNAVAILABLE|DEADLINE_EXCEEDED): [^\n]+$",
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
        json.dumps([{"state": "RUNNING"}, {"state": "failed", "failure_reason": "oom"}]),
        "json",
        params,
    )
    assert skipped == 1 and [(t.failure, t.values) for t in trials] == [("oom", None)]
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
