"""``--sampler-priority``: how the sampler workers compete for the CPU with the node's other
work. The setting reaches the worker processes of a real replica (read from the kernel after
Bayesian asks over gRPC), bad values are usage errors, and the operations guide documents
it. Which default is right is measured, not tested: ``bench/bayes_busy.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial_server.cli import build_parser, main
from hyperdial_server.service import DEFAULT_SAMPLER_PRIORITY, SamplerPriority
from tests.e2e.protocol import ask, create, float_param, spec, tell
from tests.server_harness import ServerProcess

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from ``/proc/*/stat``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # The command name, in parentheses, may hold spaces: the fields start after the last ")".
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _bayesian_asks(target: str) -> None:
    """Model-based asks (each told), so that the replica starts its sampler workers."""
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        study = f"priority-{uuid.uuid4().hex}"
        create(
            stub,
            study,
            spec(
                float_param("x", 0, 1),
                float_param("y", 0, 1),
                algorithm=study_pb2.ALGORITHM_BAYESIAN,
                initial_trials=2,
            ),
        )
        for _ in range(4):
            (t,) = ask(stub, study)
            x, y = t.parameters["x"].double_value, t.parameters["y"].double_value
            tell(stub, t.name, loss=(x - 0.3) ** 2 + y)


def _scheduling(pid: int) -> tuple[int, int]:
    """(niceness, scheduling policy) of a process, as the kernel has them."""
    return os.getpriority(os.PRIO_PROCESS, pid), os.sched_getscheduler(pid)


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, None, DEFAULT_SAMPLER_PRIORITY),
        ("10", None, SamplerPriority(10)),
        ("batch:7", None, SamplerPriority(7, batch=True)),
        (None, "batch", SamplerPriority(0, batch=True)),
        ("3", "batch:9", SamplerPriority(3)),  # the flag wins over the variable
    ],
    ids=["default", "10", "batch:7", "env-batch", "flag-wins"],
)
def test_the_setting_reaches_every_worker_of_a_replica(
    redis_url: str, flag: str | None, env: str | None, expected: SamplerPriority
) -> None:
    extra = ["--sampler-processes", "2"] + (["--sampler-priority", flag] if flag else [])
    server = ServerProcess(
        redis_url, extra, env={"HYPERDIAL_SAMPLER_PRIORITY": env} if env else None
    )
    try:
        _bayesian_asks(server.target)
        replica = server.proc.pid
        base, base_policy = _scheduling(replica)
        assert base_policy == os.SCHED_OTHER
        fork_servers = [
            pid for pid in _children(replica) if "multiprocessing.forkserver" in _cmdline(pid)
        ]
        assert len(fork_servers) == 1
        # The fork server keeps the replica's priority; only what it forks, the workers, change.
        assert _scheduling(fork_servers[0]) == (base, os.SCHED_OTHER)
        workers = _children(fork_servers[0])
        assert 1 <= len(workers) <= 2, workers
        policy = os.SCHED_BATCH if expected.batch else os.SCHED_OTHER
        niceness = min(19, base + expected.niceness)
        assert [_scheduling(pid) for pid in workers] == [(niceness, policy)] * len(workers)
    finally:
        server.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", SamplerPriority(0)),
        ("10", SamplerPriority(10)),
        ("19", SamplerPriority(19)),
        ("batch", SamplerPriority(0, batch=True)),
        ("batch:5", SamplerPriority(5, batch=True)),
        (" Batch:0 ", SamplerPriority(0, batch=True)),
    ],
)
def test_good_values_parse_and_print_back(text: str, expected: SamplerPriority) -> None:
    parsed = build_parser().parse_args(["--sampler-priority", text]).sampler_priority
    assert parsed == expected
    assert SamplerPriority.parse(str(parsed)) == parsed


@pytest.mark.parametrize("text", ["20", "-1", "nice", "", "batch:", "batch:x", "5:batch", "1.5"])
def test_a_bad_value_is_a_usage_error_that_says_what_is_accepted(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--sampler-priority", text])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --sampler-priority" in err
    assert "0 to 19" in err and "batch:N" in err and repr(text) in err


def test_a_bad_variable_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HYPERDIAL_SAMPLER_PRIORITY", "lowest")
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "'lowest'" in capsys.readouterr().err


def test_a_bad_value_stops_the_server_before_it_listens() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyperdial_server", "--port", "0", "--sampler-priority", "25"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "listening" not in done.stdout
    assert "argument --sampler-priority" in done.stderr


def test_the_operations_guide_documents_the_setting_and_its_default() -> None:
    text = OPERATIONS.read_text()
    assert "## Bayesian asks on a busy node" in text
    section = text.split("## Bayesian asks on a busy node", 1)[1].split("\n## ", 1)[0]
    assert "--sampler-priority" in section
    assert "HYPERDIAL_SAMPLER_PRIORITY" in section
    assert f"default `{DEFAULT_SAMPLER_PRIORITY}`" in section
    assert "bench/bayes_busy.py" in section or "bench.bayes_busy" in section
    help_text = " ".join(build_parser().format_help().split())
    assert "--sampler-priority" in help_text and "Bayesian asks on a busy node" in help_text
