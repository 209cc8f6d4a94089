"""No process of a replica outlives it, however it ends: its sampler workers, their fork server
and multiprocessing's resource tracker end with it, on a SIGKILL (as an out-of-memory kill
ends it) as on a SIGTERM (a normal stop)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from tests.e2e.protocol import ask, create, float_param, spec, tell
from tests.process_groups import kill_group, popen
from tests.server_harness import ServerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: Seconds the replica's processes get to end once it has.
PATIENCE = 20.0

#: A process, as (pid, start time in clock ticks since boot): a pid alone may be reused.
Ident = tuple[int, int]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, ppid, start time)`` of a process, from ``/proc/<pid>/stat``; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: the fields start after the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> set[Ident]:
    """Every process below ``root``, by the parent links of ``/proc/*/stat``."""
    children: dict[int, list[Ident]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[1], []).append((int(entry), stat[2]))
    found: set[Ident] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child[0])
    return found


def alive(ident: Ident) -> bool:
    """Whether the process still runs (a zombie has ended: only its exit status is left)."""
    stat = _stat(ident[0])
    return stat is not None and stat[2] == ident[1] and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    """The process's command line, or ``?`` once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def wait_until_gone(procs: set[Ident], timeout: float = PATIENCE) -> list[str]:
    """Waits until none of ``procs`` runs; the ``pid ppid cmdline`` of those left at the end."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [f"{p[0]} ppid={(_stat(p[0]) or ('', 0))[1]} {cmdline(p[0])}" for p in procs if alive(p)]


def _bayesian_asks(target: str) -> None:
    """Model-based asks (and tells), so that the replica starts its sampler workers."""
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        study = spec(
            float_param("x", 0, 1),
            float_param("y", 0, 1),
            algorithm=study_pb2.ALGORITHM_BAYESIAN,
            initial_trials=2,
        )
        create(stub, "orphans", study)
        for _ in range(3):
            (t,) = ask(stub, "orphans")
            x, y = t.parameters["x"].double_value, t.parameters["y"].double_value
            tell(stub, t.name, loss=(x - 0.3) ** 2 + y)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_no_process_of_a_replica_outlives_it(how: signal.Signals) -> None:
    server = ServerProcess(extra=["--sampler-processes", "2"])
    try:
        _bayesian_asks(server.target)
        tree = descendants(server.proc.pid)
        commands = [cmdline(pid) for pid, _ in tree]
        # What this test is about: a resource tracker, a fork server and a worker at least.
        assert sum("multiprocessing.resource_tracker" in c for c in commands) == 1, commands
        assert sum("multiprocessing.forkserver" in c for c in commands) >= 2, commands
        # Only the replica gets the signal: no process-group kill here, its children must end
        # by themselves.
        os.kill(server.proc.pid, how)
        code = server.proc.wait(timeout=60)
        assert code == (-signal.SIGKILL if how is signal.SIGKILL else 0)
        left = wait_until_gone(tree)
        assert not left, f"{len(left)} of {len(tree)} processes outlived the replica: {left}"
    finally:
        server.kill()  # a failure's leftovers: the rest of the replica's process group
        server.log.close()


_THREADED = textwrap.dedent(
    """
    import asyncio, multiprocessing.forkserver as fs, os, threading, time
    from hyperdial_server.core.study import Algorithm
    from hyperdial_server.service._compute import SamplerWorkers
    from tests.ops.test_sampler_workers import _spec

    def serve():  # a server whose event loop runs in a thread that ends before the process
        workers = SamplerWorkers(1)
        asyncio.run(workers.suggest(Algorithm.BAYESIAN, _spec(), [0], []))
        workers.close()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    time.sleep(0.5)  # time enough for a parent-death signal to kill the fork server
    pid = fs._forkserver._forkserver_pid
    with open(f"/proc/{pid}/stat") as f:  # not waitpid: that would reap it
        print(pid, f.read().rsplit(")", 1)[1].split()[0] not in "ZX", flush=True)
    workers = SamplerWorkers(1)  # and the next pool works
    points, _ = asyncio.run(workers.suggest(Algorithm.BAYESIAN, _spec(), [1], []))
    workers.close()
    print(len(points), pid == fs._forkserver._forkserver_pid, flush=True)
    """
)


def test_the_fork_server_outlives_the_thread_that_first_needed_it() -> None:
    # Linux sends the parent-death signal when the *thread* that started a process ends: the
    # fork server is started from a thread that lives as long as the process, not from the
    # event loop's, which may be a thread that ends first (an in-process server).
    code, out, err = _run(_THREADED, timeout=120)
    assert code == 0, err
    first, second = out.split("\n")[:2]
    assert first.split()[1] == "True", out  # the fork server still runs
    assert second == "1 True", out  # the same fork server served the next pool


_WATCHED = textwrap.dedent(
    """
    import os, sys, time
    from hyperdial_server.samplers import _worker

    _worker._set_parent_death_signal = lambda: False  # as where prctl is unavailable
    r, w = os.pipe()
    parent = os.fork()
    if parent == 0:
        null = os.open(os.devnull, os.O_WRONLY)  # the test reads our output to its end
        os.dup2(null, 1)
        os.dup2(null, 2)
        if os.fork() == 0:  # the child, whose parent is about to die
            _worker.die_with_parent(os.getppid())
            os.write(w, b"%d" % os.getpid())
            time.sleep(60)
        else:
            time.sleep(60)
        os._exit(0)
    child = int(os.read(r, 32))
    os.kill(parent, 9)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        print("alive", child, flush=True)
        sys.exit(1)
    print("gone", flush=True)
    """
)


def _run(script: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)  # whatever it started, on every path
    return proc.returncode, out, err


def test_where_the_signal_is_unavailable_a_watch_of_the_parent_pid_ends_the_child() -> None:
    code, out, err = _run(_WATCHED)
    assert (code, out) == (0, "gone\n"), err


def test_a_parent_dead_before_the_signal_was_set_ends_the_child_at_once() -> None:
    # Its parent is not the pid it was told (that parent died first): nothing would signal it.
    script = (
        "import os\n"
        "from hyperdial_server.samplers import _worker\n"
        "_worker.die_with_parent(os.getppid() + 1)\n"
        "print('still alive')\n"
    )
    code, out, err = _run(script)
    assert code == -signal.SIGKILL, (out, err)
    assert out == ""
