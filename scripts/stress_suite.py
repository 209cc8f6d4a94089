"""Runs the whole test suite several times in a row on a busy machine, and checks that no run
leaves a process behind.

Usage::

    python scripts/stress_suite.py [--runs 5] [--burners 4] [--clone] [-- PYTEST ARGS...]

``--burners N`` starts N CPU-bound processes (``while True: pass``) beside the suite for its
whole duration, as training jobs keep a shared node busy. ``--clone`` runs from a clean clone of
this checkout's ``HEAD`` in a temporary directory, installed from scratch into its own virtual
environment (as CI does), instead of this checkout. After each run the script lists the
processes that appeared during the run and are still alive (server replicas, fork servers,
resource trackers, sampler workers, redis-servers): any such survivor fails the stress run.

Exit status: 0 when every run passed and left nothing behind, 1 otherwise. Not part of
``.ci/run`` (five runs take too long for it); run it before resolving anything that touches
concurrency, processes or timing, and quote its summary.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the suite starts; a process matching one of these that outlives a run is an orphan.
_SUITE_PROCESSES = (
    "hyperdial_server",
    "hyperdial serve",
    "forkserver",
    "resource_tracker",
    "multiprocessing",
    "redis-server",
    "while True: pass",
)


def _processes() -> dict[int, str]:
    """Every process's pid and command line (from /proc, so no ``ps`` is needed)."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if raw:
            out[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return out


#: Set in the suite's environment, which everything it starts inherits (a working directory
#: would not do: redis-server changes its own), so that other work on the machine is not
#: taken for the suite's.
_MARK = "HYPERDIAL_STRESS_RUN"


def _marked(pid: int, mark: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return False
    return f"{_MARK}={mark}".encode() in environ.split(b"\0")


def _suite_processes(before: dict[int, str], burners: Sequence[int], mark: str) -> dict[int, str]:
    """Processes this run of the suite started that are alive now."""
    return {
        pid: args
        for pid, args in _processes().items()
        if pid not in before
        and pid not in burners
        and pid != os.getpid()
        and any(word in args for word in _SUITE_PROCESSES)
        and _marked(pid, mark)
    }


@contextmanager
def _burners(count: int) -> Iterator[list[int]]:
    """``count`` CPU-bound processes, each in its own process group, killed on every path."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def _clean_clone(into: Path) -> tuple[Path, Path]:
    """A clone of ``HEAD`` installed from scratch; returns (checkout, its python)."""
    checkout = into / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    venv = into / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", ".[test]"], cwd=checkout, check=True
    )
    return checkout, python


def _env_for(python: Path) -> dict[str, str]:
    """This environment with ``python``'s virtualenv first on PATH and no other virtualenv's
    ``bin`` on it: the suite finds programs (redis-server) as it would in that environment
    alone, not in the virtualenv this script was started from."""
    venv_bin = python.parent
    path = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d).parent / "pyvenv.cfg").exists()
    ]
    env = dict(os.environ, PATH=os.pathsep.join([str(venv_bin), *path]))
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    return env


def _wait_gone(
    before: dict[int, str], burners: Sequence[int], mark: str, seconds: float
) -> dict[int, str]:
    """Suite processes still alive after up to ``seconds`` (children get time to exit)."""
    deadline = time.monotonic() + seconds
    left = _suite_processes(before, burners, mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _suite_processes(before, burners, mark)
    return left


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs in a row (default 5)")
    parser.add_argument("--burners", type=int, default=4, help="CPU-bound processes (default 4)")
    parser.add_argument("--clone", action="store_true", help="run from a clean clone of HEAD")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    # SIGTERM ends the run through the cleanup paths (burners, the suite, the clone), as
    # Ctrl-C does; its default action would leave the burners running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="hyperdial-stress-") as tmp:
        checkout, python = ROOT, Path(sys.executable)
        if args.clone:
            print("cloning HEAD and installing it from scratch ...", flush=True)
            checkout, python = _clean_clone(Path(tmp))
        failures = 0
        with _burners(args.burners) as burners:
            print(f"{args.burners} CPU burners running: pids {burners}", flush=True)
            for run in range(1, args.runs + 1):
                before = _processes()
                mark = f"{os.getpid()}-{run}"
                started = time.monotonic()
                code = subprocess.call(
                    [
                        str(python),
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        *args.pytest_args,
                    ],
                    cwd=checkout,
                    env={**_env_for(python), _MARK: mark},
                )
                took = time.monotonic() - started
                # Grace for children that are exiting on their own (parent-death signals).
                left = _wait_gone(before, burners, mark, 10.0)
                verdict = "passed" if code == 0 and not left else "FAILED"
                print(
                    f"run {run}/{args.runs}: pytest exit {code}, {took:.0f} s, "
                    f"{len(left)} processes left behind: {verdict}",
                    flush=True,
                )
                for pid, cmd in sorted(left.items()):
                    print(f"  left behind: {pid} {cmd[:160]}", flush=True)
                if verdict != "passed":
                    failures += 1
        print(f"{args.runs - failures} of {args.runs} runs passed with {args.burners} burners")
        return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
