"""Real hyperdial servers for tests: in-process (own thread and event loop) or as processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from hyperdial_server.server import RunningServer, ServerConfig, start
from hyperdial_server.service._compute import DEFAULT_SAMPLER_PROCESSES
from tests.process_groups import GROUP_GRACE, kill_group, popen


class InProcessServer:
    """A real gRPC server on loopback, run by an event loop in a background thread.

    Args:
        redis_url: Redis URL; empty for the memory store.
        lease_sweep_interval: Seconds between lease sweeps; 0 for none.
        sampler_processes: Worker processes of model-based samplers; 0 for threads.
    """

    def __init__(
        self,
        redis_url: str = "",
        *,
        lease_sweep_interval: float = 1.0,
        sampler_processes: int = DEFAULT_SAMPLER_PROCESSES,
    ) -> None:
        self._config = ServerConfig(
            host="127.0.0.1",
            port=0,
            redis_url=redis_url,
            grace=1.0,
            lease_sweep_interval=lease_sweep_interval,
            sampler_processes=sampler_processes,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningServer | None = None

    def start(self) -> InProcessServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(start(self._config), self._loop)
        self._running = fut.result(timeout=30)
        return self

    @property
    def target(self) -> str:
        assert self._running is not None
        return f"127.0.0.1:{self._running.port}"

    def run(self, coro: object) -> object:
        """Runs a coroutine on the server's loop (e.g. to inspect its store)."""
        fut: Future[object] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return fut.result(timeout=60)

    @property
    def store(self) -> object:
        assert self._running is not None
        return self._running.store

    def stop(self) -> None:
        if self._running is not None:
            asyncio.run_coroutine_threadsafe(self._running.stop(1.0), self._loop).result(30)
            self._running = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


_LISTEN_RE = re.compile(r"listening on ([0-9.]+):([0-9]+)")


class ServerProcess:
    """``python -m hyperdial_server`` as a separate process (a replica), port picked by the OS.

    The replica leads a process group of its own, with its fork server and sampler workers:
    :meth:`terminate` and :meth:`kill` end the replica, then kill whatever of its group is
    left, and so does the garbage collector or the exit of the test run when neither ran.
    """

    def __init__(self, redis_url: str = "", extra: Sequence[str] = ()) -> None:
        args = [sys.executable, "-m", "hyperdial_server", "--port", "0", "--grace", "2"]
        if redis_url:
            args += ["--redis", redis_url]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # The log goes to a file: an unread pipe would fill up and block the server.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc: subprocess.Popen[str] = popen(
            [*args, *extra], stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        assert self.proc.stdout is not None
        try:
            line = self.proc.stdout.readline()
        except BaseException:  # e.g. KeyboardInterrupt while it starts
            kill_group(self.proc)
            self._close_files()
            raise
        match = _LISTEN_RE.search(line)
        if not match:
            kill_group(self.proc)
            self.log.seek(0)
            err = self.log.read()
            self._close_files()
            raise RuntimeError(f"server did not start: {line!r} {err}")
        self.target = f"{match.group(1)}:{match.group(2)}"

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then waits; returns the exit code. Then kills what is left of its group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.reap_group()
            self._close_files()

    def kill(self) -> None:
        """SIGKILL: the process dies without any cleanup (its log stays readable). Only the
        replica is killed, as a crash would; its children then end by themselves, and what is
        left of its group after :data:`~tests.process_groups.GROUP_GRACE` is killed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reap_group()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def reap_group(self, grace: float = GROUP_GRACE) -> None:
        """Kills (SIGKILL) what is left of the replica's process group, and the replica if it
        still runs; an exited replica's group gets ``grace`` seconds to end by itself."""
        kill_group(self.proc, grace)

    def _close_files(self) -> None:
        # Closed here, not left to the garbage collector: an unclosed file's ResourceWarning
        # would surface in whatever test happens to run when it is collected.
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()

    def __del__(self) -> None:
        if not hasattr(self, "proc"):
            return
        kill_group(self.proc)  # a last resort: a test that neither terminated nor killed it
        if not self.log.closed:
            self._close_files()
