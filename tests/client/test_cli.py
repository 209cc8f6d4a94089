"""The ``hyperdial`` command, the quickstart example, and the client-only install guarantee."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import hyperdial as hd
from hyperdial import cli
from tests.client._support import blocked_python
from tests.process_groups import GROUP_GRACE, kill_group, popen

ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"hyperdial (\S+) listening on ([0-9.]+):([0-9]+)")
#: Modules only the server extra provides; the client must work without any of them.
SERVER_ONLY = ("numpy", "scipy", "redis", "grpc_status", "google.rpc", "hyperdial_server")


def hyperdial_command(*args: str) -> list[str]:
    """The installed ``hyperdial`` console script, or the module when it is not installed."""
    script = shutil.which("hyperdial", path=str(Path(sys.executable).parent))
    return [script, *args] if script else [sys.executable, "-m", "hyperdial.cli", *args]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"hyperdial {hd.__version__}\n"
    result = subprocess.run(
        hyperdial_command("--version"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"hyperdial {hd.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", hd.__version__)


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "a command is required" in capsys.readouterr().err
    assert cli.main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out


def test_serve_forwards_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "hyperdial serve" in out and "--port" in out and "--redis" in out
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--no-such-flag"])
    assert info.value.code == 2


def test_serve_runs_a_real_server_until_sigterm() -> None:
    # In a process group of its own, killed with whatever it started (its sampler workers'
    # fork server, the resource tracker) on every path.
    proc = popen(
        hyperdial_command("serve", "--port", "0", "--grace", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = LISTEN_RE.search(line)
        assert match, line
        assert match.group(1) == hd.__version__
        with hd.Client(f"{match.group(2)}:{match.group(3)}") as client:
            study = client.create_study("served", [hd.Int("x", 1, 3)], algorithm="grid")
            study.optimize(lambda t: float(t.params["x"]))
            assert study.best_trial.params == {"x": 1}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        kill_group(proc, GROUP_GRACE)  # an exited server's group gets the grace to end itself
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_quickstart_example_runs_twice(server_target: str) -> None:
    env = {**os.environ, "HYPERDIAL_TARGET": server_target}
    outputs = []
    for _ in range(2):  # the second run replaces the first run's study
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("best of 30 trials: #")
        outputs.append(result.stdout)
    # The example uses the default (model-based) algorithm with four workers: the points depend
    # on the order in which results arrive, so the two runs need not agree; each starts afresh.
    for out in outputs:
        assert re.match(r"best of 30 trials: #\d+ loss=\d+\.\d{4}\n  params: \{", out), out


_CLIENT_ONLY = """
    import json

    try:
        import grpc_status  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("the import blocker is not active")

    import hyperdial as hd

    with hd.Client(sys.argv[1]) as client:
        study = client.create_study(sys.argv[2], [hd.Int("n", 1, 3), hd.Float("x", 0, 1)], seed=1)
        asked = study.ask(2)
        done = [study.tell(t, float(t.params["n"])) for t in asked]
        try:
            client.get_study("no-such-study")
        except hd.NotFoundError as e:
            reason = e.reason
        with study.trial() as t:
            t.report(0.5)
        best = study.best_trial
    loaded = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
    print(json.dumps(dict(
        states=[str(t.state) for t in done],
        n_type=type(asked[0].params["n"]).__name__,
        reason=reason,
        best=best.value,
        loaded=loaded,
    )))
"""


def _blocked_python(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    return blocked_python(body, *args, blocked=SERVER_ONLY)


def test_client_works_without_the_server_extra(server_target: str) -> None:
    result = _blocked_python(_CLIENT_ONLY, server_target, "client-only")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "states": ["COMPLETED", "COMPLETED"],
        "n_type": "int",
        "reason": "STUDY_NOT_FOUND",
        "best": 0.5,
        "loaded": [],
    }


def test_serve_without_the_server_extra_prints_the_hint() -> None:
    body = """
        from hyperdial.cli import main
        sys.exit(main(["serve", "--port", "0"]))
    """
    result = _blocked_python(body)
    assert result.returncode == 2
    assert cli.SERVER_EXTRA_HINT in result.stderr
    # Runnable as printed from a checkout.
    assert "python3 -m pip install '.[server]'" in cli.SERVER_EXTRA_HINT
    assert "missing module: hyperdial_server" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
