"""Processes the tests start, each in its own process group, so that ending it ends everything
it started too (a replica's fork server and sampler workers, a redis-server's save children).

Every such process is recorded here until its group is gone: whatever a failed or interrupted
test leaves behind is killed at exit (``atexit``), as a last resort after the fixtures'
teardown and the owning object's ``__del__``.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

#: Seconds a group gets to empty by itself (e.g. multiprocessing's resource tracker unlinking
#: the semaphores of a killed replica) before the rest of it is killed.
GROUP_GRACE = 5.0

_lock = threading.Lock()
_groups: set[int] = set()


def popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **kwargs)`` in a new session (so a new process group whose id
    is the process's pid), recorded for :func:`kill_group` and the exit-time sweep."""
    proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
    with _lock:
        _groups.add(proc.pid)
    return proc


def group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` still exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id is someone else's now
        return False
    return True


def kill_group(proc: subprocess.Popen[Any], grace: float = 0.0) -> None:
    """Kills (SIGKILL) what is left of the process group of ``proc``, a process from
    :func:`popen`, and reaps ``proc``.

    Args:
        proc: The group's leader.
        grace: Seconds the group gets to empty by itself first, once ``proc`` has exited.
    """
    pgid = proc.pid
    with _lock:
        recorded = pgid in _groups
    if not recorded:  # killed already: its id may be another group's by now
        proc.wait()
        return
    try:
        if proc.poll() is not None and grace > 0:
            deadline = time.monotonic() + grace
            while group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
        # Linux reuses no pid while a process still has it as its group id: a group whose
        # leader is reaped but whose members live on keeps its id.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    finally:
        with _lock:
            _groups.discard(pgid)


def run(args: Sequence[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)`` in a
    process group of its own, killed with whatever it started on every path (timeout and
    interrupt included): a server that starts after all, npm's install scripts."""
    with popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        finally:
            kill_group(proc, GROUP_GRACE)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _kill_leftovers() -> None:
    with _lock:
        left = sorted(_groups)
        _groups.clear()
    for pgid in left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


atexit.register(_kill_leftovers)
