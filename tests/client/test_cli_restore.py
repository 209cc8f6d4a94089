"""The ``hyperdial`` command restores what it exports, creates studies, drives trials from
scripts (``ask``, ``tell``, ``heartbeat``), and says which part of the service failed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import hyperdial as hd
from hyperdial import cli
from hyperdial_server.server import ServerConfig
from tests.client._support import blocked_python, new_id
from tests.client.test_cli import hyperdial_command
from tests.client.test_cli_commands import Run
from tests.process_groups import GROUP_GRACE, kill_group, popen
from tests.redis_server import RedisServer
from tests.server_harness import InProcessServer

#: Every kind of domain and scale, and a condition.
SPACE = [
    hd.Float("lr", 1e-5, 1e-1, log=True),
    hd.Int("layers", 1, 8),
    hd.Int("width", 16, 1024, log=True),
    hd.Categorical("opt", ["adam", "sgd"]),
    hd.Float("momentum", 0.0, 0.99, when=("opt", ["sgd"])),
    hd.Discrete("batch", [16, 32, 64]),
]
#: The same space as ``--param`` flags.
SPACE_FLAGS = [
    "--param=lr=float:1e-5:1e-1:log",
    "--param=layers=int:1:8",
    "--param=width=int:16:1024:log",
    "--param=opt=cat:adam,sgd",
    "--param=momentum=float:0:0.99@opt=sgd",
    "--param=batch=discrete:16,32,64",
]
OBJECTIVES = [hd.Objective("loss"), hd.Objective("acc", "maximize")]
SGD = {"lr": 0.001, "layers": 3, "width": 64, "opt": "sgd", "momentum": 0.5, "batch": 32.0}
ADAM = {"lr": 0.01, "layers": 8, "width": 1024, "opt": "adam", "batch": 16.0}


@pytest.fixture(params=["memory", "redis"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(the session's server, a fresh empty server), both on one kind of store."""
    if request.param == "memory":
        with InProcessServer() as empty:
            yield str(request.getfixturevalue("server_target")), empty.target
        return
    source = str(request.getfixturevalue("redis_server_target"))
    with RedisServer() as redis, InProcessServer(ServerConfig(redis_url=redis.url)) as empty:
        yield source, empty.target


@pytest.fixture
def open_client() -> Iterator[Any]:
    """Opens clients that stay open until the test ends (studies read later need theirs)."""
    clients: list[hd.Client] = []

    def make(target: str) -> hd.Client:
        clients.append(hd.Client(target))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def source_study(client: hd.Client) -> hd.Study:
    """Two objectives, an early-stopping policy, every option set, and a trial in every state
    (imported completed and failed, asked then completed, failed, stopped, running)."""
    study = client.create_study(
        new_id("src"),
        SPACE,
        OBJECTIVES,
        algorithm="random",
        seed=11,
        max_trials=50,
        initial_trials=4,
        lease_timeout=300,
        early_stopping=hd.EarlyStopping(
            hd.MedianStopping(warmup_steps=2), objective="loss", max_measurements_per_trial=7
        ),
    )
    study.add_trial(SGD, values={"loss": 0.5, "acc": 0.75}, metadata={"run": "a"})
    study.add_trial(ADAM, failure="out of memory")
    done, failed, stopped, _running = study.ask(4)
    done.report(values={"loss": 0.25, "acc": 0.9}, metadata={"run": "b"})
    failed.fail("diverged")
    stopped.report({"loss": 2.0, "acc": 0.1}, 1)
    stopped.stop("plateau")
    return client.get_study(study.study_id)


def outcomes(trials: list[hd.Trial]) -> list[tuple[Any, ...]]:
    return [
        (str(t.state), t.params, {k: type(v) for k, v in t.params.items()}, t.values)
        + (t.failure_reason, t.metadata)
        for t in trials
    ]


def test_export_then_import_restores_the_study_on_an_empty_server(
    servers: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    open_client: Any,
) -> None:
    source_target, empty_target = servers
    original = source_study(open_client(source_target))
    path = tmp_path / "study.json"
    status, _, err = Run(source_target, capsys)(
        "export", original.study_id, "--format", "json", "-o", str(path)
    )
    assert status == 0, err
    document = json.loads(path.read_text())
    # The spec as the service stores it (defaults filled in), int64 fields as JSON strings.
    assert document["spec"]["early_stopping"]["median"] == {
        "warmup_steps": "2",
        "min_trials": 1,
        "interval_steps": "1",
    }

    restore = Run(empty_target, capsys)
    status, out, err = restore("import", original.study_id, str(path))
    assert status == 0, err
    assert out.splitlines() == [
        f"created {original.name} from the spec in {path}",
        f"imported 4 trials into {original.name} (2 completed, 2 failed); skipped 1 unfinished "
        "and 1 stopped (stopped trials cannot be imported)",
    ]
    with hd.Client(source_target) as client, hd.Client(empty_target) as copy:
        before = client.get_study(original.study_id)
        after = copy.get_study(original.study_id)
        assert after.spec == before.spec  # every field, compared as protobufs
        assert after.spec.early_stopping.max_measurements_per_trial == 7
        finished = before.trials(["COMPLETED", "FAILED"])
        assert outcomes(after.trials()) == outcomes(finished)
        # The spec matches now: importing again adds the trials again, as documented.
        summary = restore.json("import", original.study_id, str(path))
        assert isinstance(summary, dict) and summary["created"] is False
        assert summary["imported"] == 4 and summary["skipped_stopped"] == 1
        assert len(after.trials()) == 8


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_constraints_and_infeasible_trials_survive_export_and_import(
    servers: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    open_client: Any,
    fmt: str,
) -> None:
    source_target, empty_target = servers
    study = open_client(source_target).create_study(
        new_id("csrc"),
        SPACE,
        OBJECTIVES,
        algorithm="random",
        seed=4,
        constraints=["latency_ms <= 20", "0.1 <= sparsity <= 0.5"],
    )
    study.add_trial(
        SGD, values={"loss": 0.5, "acc": 0.75}, constraint_values={"latency_ms": 5, "sparsity": 0.2}
    )
    study.add_trial(ADAM, values={"loss": 0.25, "acc": 0.9, "latency_ms": 25.5, "sparsity": 0.05})
    study.add_trial(ADAM, infeasibility="out of memory", metadata={"gpu": "a100"})
    study.add_trial(SGD, failure="node lost")
    path = tmp_path / f"study.{fmt}"
    run = Run(source_target, capsys)
    status, _, err = run("export", study.study_id, "--format", fmt, "-o", str(path))
    assert status == 0, err
    if fmt == "csv":
        header = path.read_text().splitlines()[0].split(",")
        assert header[2:6] == [
            "values.loss",
            "values.acc",
            "constraints.latency_ms",
            "constraints.sparsity",
        ]
        assert {"infeasible", "infeasibility_reason"} <= set(header)
        # A CSV file holds trials only: into a study with the same spec.
        open_client(empty_target).create_study(
            study.study_id, SPACE, OBJECTIVES, constraints=study.constraints
        )
    else:
        document = json.loads(path.read_text())
        assert document["spec"]["constraints"][1] == {
            "name": "sparsity",
            "upper_bound": 0.5,
            "lower_bound": 0.1,
        }
        assert document["trials"][1]["infeasibility_reason"] == (
            "latency_ms = 25.5 > 20 (upper bound); sparsity = 0.05 < 0.1 (lower bound)"
        )
    restore = Run(empty_target, capsys)
    status, out, err = restore("import", study.study_id, str(path))
    assert status == 0, err
    assert out.splitlines()[-1] == (
        f"imported 4 trials into {study.name} (2 completed, 1 failed, 1 infeasible)"
    )

    def seen(trials: list[hd.Trial]) -> list[tuple[Any, ...]]:
        return [
            (str(t.state), t.params, t.values, t.constraint_values, t.infeasible)
            + (t.infeasibility_reason, t.failure_reason, t.metadata)
            for t in trials
        ]

    with hd.Client(empty_target) as copy:
        after = copy.get_study(study.study_id)
        assert after.constraints == study.constraints
        assert seen(after.trials()) == seen(study.trials())
        assert [t.number for t in after.best_trials] == [1]


def test_import_into_an_existing_study_needs_the_same_spec(
    servers: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    open_client: Any,
) -> None:
    source_target, empty_target = servers
    original = source_study(open_client(source_target))
    path = tmp_path / "study.json"
    Run(source_target, capsys)("export", original.study_id, "--format", "json", "-o", str(path))
    other = open_client(empty_target).create_study(
        original.study_id, SPACE, OBJECTIVES, algorithm="quasi_random", seed=3
    )
    restore = Run(empty_target, capsys)
    status, out, err = restore("import", other.study_id, str(path))
    assert status == cli.EXIT_INVALID and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"hyperdial: error: {other.name} exists with another spec than ")
    assert (
        f'algorithm: "ALGORITHM_QUASI_RANDOM" in {other.name}, "ALGORITHM_RANDOM" in {path}' in err
    )
    assert f'seed: "3" in {other.name}, "11" in {path}' in err
    assert "early_stopping: unset in" in err and "--ignore-spec" in err
    assert other.trials() == []  # nothing added
    summary = restore.json("import", other.study_id, str(path), "--ignore-spec")
    assert isinstance(summary, dict) and summary["imported"] == 4


def test_files_without_a_spec_import_into_an_existing_study_only(
    store_target: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, open_client: Any
) -> None:
    original = source_study(open_client(store_target))
    run = Run(store_target, capsys)
    _, text, _ = run("export", original.study_id, "--format", "json")
    document = json.loads(text)
    del document["spec"]  # as written by older versions
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    _, csv_text, _ = run("export", original.study_id)
    csv_path = tmp_path / "trials.csv"
    csv_path.write_text(csv_text)

    missing = new_id("missing")
    for path in (old, csv_path):
        status, out, err = run("import", missing, str(path))
        assert status == cli.EXIT_NOT_FOUND and out == ""
        assert err.startswith("hyperdial: error: STUDY_NOT_FOUND: ")
        assert f"and {path} holds no spec to create it from" in err and err.count("\n") == 1
    target = open_client(store_target).create_study(
        new_id("old"), SPACE, OBJECTIVES, algorithm="random"
    )
    for path in (old, csv_path):
        summary = run.json("import", target.study_id, str(path))
        assert isinstance(summary, dict) and summary["imported"] == 4
    assert outcomes(target.trials()[:4]) == outcomes(original.trials(["COMPLETED", "FAILED"]))


def test_studies_create_from_flags_and_from_spec_files(
    store_target: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, open_client: Any
) -> None:
    run = Run(store_target, capsys)
    flags = [*SPACE_FLAGS, "--objective", "loss", "--objective", "acc:max"]
    options = ["--algorithm", "random", "--seed", "7", "--max-trials", "20"]
    created = run.json("studies", "create", new_id("flags"), *flags, *options)
    assert isinstance(created, dict) and created["seed"] == 7
    with hd.Client(store_target) as client:
        expected = client.create_study(
            new_id("py"), SPACE, OBJECTIVES, algorithm="random", seed=7, max_trials=20
        )
        from_flags = client.get_study(created["study_id"])
        assert from_flags.spec == expected.spec

        status, out, err = run("studies", "get", from_flags.study_id)
        assert status == 0, err
        assert re.search(r"^width +int +\[16, 1024\] log +-$", out, re.M)
        assert re.search(r"^max trials +20$", out, re.M)
        assert run.json("studies", "get", from_flags.study_id)["spec"] == json.loads(  # type: ignore[index]
            json.dumps(created["spec"])
        )

        # The shape of an export's spec, as JSON and as YAML; a flag overrides the file.
        original = source_study(open_client(store_target))
        spec = run.json("studies", "get", original.study_id)["spec"]  # type: ignore[index]
        json_file = tmp_path / "spec.json"
        json_file.write_text(json.dumps(spec))
        yaml_file = tmp_path / "spec.yaml"
        yaml_file.write_text(yaml.safe_dump(spec))
        for path in (json_file, yaml_file):
            status, out, err = run("studies", "create", new_id("file"), "--spec", str(path))
            assert status == 0, err
            name = re.fullmatch(r"created (studies/\S+) \(random, seed 11\)\n", out)
            assert name, out
            assert client.get_study(name.group(1)).spec == original.spec
        status, out, _ = run(
            "studies", "create", new_id("file"), "--spec", str(yaml_file), "--seed", "1"
        )
        assert status == 0 and out.endswith("(random, seed 1)\n")

    for args, message in (
        ([], "a study needs parameters: --param NAME=TYPE:... (repeatable) or --spec FILE"),
        (["--param", "x=float:0"], "--param 'x=float:0': expected NAME=float:LOW:HIGH[:log]"),
        (["--param", "x=int:1:2.5"], "--param 'x=int:1:2.5': '2.5' is not an integer"),
        (["--param", "x=bool:1"], "--param 'x=bool:1': unknown type 'bool'"),
        (["--param", "x=cat:a", "--objective", "v:up"], "--objective 'v:up': expected NAME"),
        (["--param", "x=cat:a", "--spec", str(json_file)], "not both"),
    ):
        status, out, err = run("studies", "create", new_id("bad"), *args)
        assert (status, out) == (cli.EXIT_USAGE, ""), err
        assert err.startswith("hyperdial: error: ") and message in err and err.count("\n") == 1
    bad_spec = tmp_path / "bad.json"
    bad_spec.write_text(json.dumps({"parameters": [], "colour": "blue"}))
    status, _, err = run("studies", "create", new_id("bad"), "--spec", str(bad_spec))
    assert status == cli.EXIT_INVALID and 'no field named "colour"' in err
    status, _, err = run("studies", "create", new_id("bad"), "--param", "x=float:1:0")
    assert status == cli.EXIT_INVALID and "INVALID_SEARCH_SPACE" in err  # the service's word


def test_a_yaml_spec_without_pyyaml_says_what_to_install(
    server_target: str, tmp_path: Path
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("parameters:\n  - name: x\n    float_domain: {min: 0, max: 1}\n")
    body = """
        from hyperdial.cli import main
        sys.exit(main(["studies", "create", "y", "--spec", sys.argv[1], "--target", sys.argv[2]]))
    """
    result = blocked_python(body, str(path), server_target, blocked=("yaml",))
    assert result.returncode == cli.EXIT_INVALID, result.stderr
    assert result.stderr == (
        f"hyperdial: error: {path} is YAML: reading YAML needs PyYAML (pip install pyyaml); "
        "or write the file as JSON\n"
    )


def test_ask_tell_and_heartbeat_print_json_and_survive_a_rerun(
    store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(store_target, capsys)
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("job"), SPACE, algorithm="random", seed=2)
        multi = client.create_study(new_id("job"), SPACE, OBJECTIVES, algorithm="random")

    def command(*args: str) -> dict[str, Any]:
        status, out, err = run(*args)
        assert status == 0 and err == "", err
        document = json.loads(out)  # stdout is JSON and nothing else
        assert isinstance(document, dict)
        return document

    asked = command("ask", study.study_id, "--count", "2", "--client-id", "node-7")
    first, second = asked["trials"]
    assert asked["study"] == study.name and re.fullmatch(r"[0-9a-f-]{36}", asked["request_id"])
    assert first["name"] == f"{study.name}/trials/1" and first["state"] == "RUNNING"
    assert first["client_id"] == "node-7" and first["lease_expire_time"].endswith("Z")
    # The same worker asking again gets its running trials back; so does the same request id.
    again = command("ask", study.study_id, "--count", "2", "--client-id", "node-7")
    assert [t["name"] for t in again["trials"]] == [first["name"], second["name"]]
    rid = command("ask", study.study_id, "--request-id", "job-42-ask")
    rerun = command("ask", study.study_id, "--request-id", "job-42-ask")
    assert rid["trials"][0]["name"] == rerun["trials"][0]["name"] == f"{study.name}/trials/3"

    beat = command("heartbeat", study.study_id, "1")
    assert beat["trial"]["state"] == "RUNNING" and beat["trial"]["lease_expire_time"]

    told = command("tell", study.study_id, "1", "--value", "0.125", "--metadata", "node=7")
    assert told["trial"]["state"] == "COMPLETED" and told["trial"]["values"] == {"value": 0.125}
    assert told["trial"]["metadata"] == {"node": "7"}
    # A job whose tell lost its answer runs it again: the same answer, not TRIAL_NOT_RUNNING.
    assert command("tell", study.study_id, "1", "--value", "0.125", "--metadata", "node=7") == told
    status, out, err = run("tell", study.study_id, "1", "--value", "0.5")
    assert status == cli.EXIT_INVALID and out == "" and "REQUEST_ID_MISMATCH" in err

    failed = command("tell", study.study_id, f"{study.name}/trials/2", "--failed", "node lost")
    assert failed["trial"]["state"] == "FAILED" and failed["trial"]["failure_reason"] == "node lost"
    stopped = command("tell", study.study_id, "3", "--stopped", "budget")
    assert stopped["trial"]["state"] == "STOPPED"
    assert stopped["trial"]["stop_decision"]["message"] == "budget"

    (trial,) = command("ask", multi.study_id)["trials"]
    status, _, err = run("tell", multi.study_id, str(trial["number"]), "--value", "1")
    assert status == cli.EXIT_USAGE
    assert "give each its value with --values loss=VALUE acc=VALUE" in err
    number = str(trial["number"])
    done = command("tell", multi.study_id, number, "--values", "loss=1", "acc=0.5")
    assert done["trial"]["values"] == {"loss": 1.0, "acc": 0.5}

    for args, status_expected, message in (
        (("tell", study.study_id, "one", "--value", "1"), cli.EXIT_USAGE, "TRIAL must be"),
        (
            ("tell", study.study_id, "studies/other/trials/1", "--value", "1"),
            cli.EXIT_USAGE,
            "TRIAL must be",
        ),
        (("heartbeat", study.study_id, "99"), cli.EXIT_NOT_FOUND, "TRIAL_NOT_FOUND"),
        (("ask", new_id("none")), cli.EXIT_NOT_FOUND, "STUDY_NOT_FOUND"),
    ):
        status, out, err = run(*args)
        assert (status, out) == (status_expected, ""), (args, err)
        assert message in err and err.count("\n") == 1
    # argparse's own usage error: the usage, then one error line.
    status, out, err = run("tell", study.study_id, "4")
    assert (status, out) == (cli.EXIT_USAGE, "")
    assert err.endswith(
        "error: one of the arguments --value --values --failed --stopped --infeasible is required\n"
    )


def test_delete_checks_every_name_before_deleting_any(
    store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(store_target, capsys)
    with hd.Client(store_target) as client:
        names = [client.create_study(new_id("del"), SPACE).name for _ in range(2)]
        missing = f"studies/{new_id('gone')}"
        status, out, err = run("studies", "delete", names[0], missing, names[1])
        assert status == cli.EXIT_NOT_FOUND and out == ""
        assert err == (
            f"hyperdial: error: STUDY_NOT_FOUND: no study {missing}: nothing deleted; "
            "pass --yes to delete the 2 that exist\n"
        )
        assert [client.get_study(n).name for n in names] == names  # both still there
        result = run.json("studies", "delete", names[0], missing, names[1], "--yes")
        assert result == {"deleted": names, "missing": [missing]}
        for name in names:
            with pytest.raises(hd.NotFoundError):
                client.get_study(name)


def test_a_store_outage_is_not_an_unreachable_service(capsys: pytest.CaptureFixture[str]) -> None:
    with RedisServer() as redis, InProcessServer(ServerConfig(redis_url=redis.url)) as server:
        assert cli.main(["studies", "list", "--target", server.target]) == 0
        redis.stop()
        capsys.readouterr()
        status = cli.main(["studies", "list", "--target", server.target, "--timeout", "5"])
        err = capsys.readouterr().err
    assert status == cli.EXIT_UNAVAILABLE
    assert re.fullmatch(
        rf"hyperdial: error: the service at {server.target} is up, but its store is "
        r"unavailable: STORE_UNAVAILABLE: [^\n]+\n",
        err,
    ), err


def test_serve_says_where_it_listens_once() -> None:
    with tempfile.TemporaryFile("w+") as log:
        proc = popen(
            hyperdial_command("serve", "--port", "0", "--grace", "2"),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # returns once the server listens
            assert re.match(r"hyperdial \S+ listening on 127\.0\.0\.1:\d+$", first), first
            proc.send_signal(signal.SIGTERM)
            rest = proc.stdout.read()
            assert proc.wait(timeout=60) == 0
        finally:
            kill_group(proc, GROUP_GRACE)
            if proc.stdout is not None:
                proc.stdout.close()
        log.seek(0)
        logged = log.read()
    everything = (first + rest + logged).splitlines()
    assert [line for line in everything if "listening" in line] == [first.rstrip("\n")]
    assert "store: memory (embedded, not persistent)" in logged  # the log keeps the facts
