"""Helpers of the client tests: ids, servers on chosen ports, a retry log, a lossy proxy."""

from __future__ import annotations

import logging
import select
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator, Sequence

import pytest

from tests.server_harness import ServerProcess


def new_id(prefix: str = "c") -> str:
    """A study id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def server_on_port(redis_url: str, port: int) -> ServerProcess:
    """A server process on a chosen port (to restart a replica where clients expect it).

    ``ServerProcess`` passes ``--port 0``; a later ``--port`` wins in the server's parser.
    """
    return ServerProcess(redis_url, extra=["--port", str(port)])


class RetryLog(logging.Handler):
    """Collects the client's "retrying ..." log records, and lets a test wait for them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying "):
            with self._cond:
                self.records.append(record)
                self._cond.notify_all()

    @property
    def messages(self) -> list[str]:
        with self._cond:
            return [r.getMessage() for r in self.records]

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Blocks until ``count`` retries were logged (``timeout`` only guards a hang)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.records) >= count, timeout):
                raise AssertionError(f"expected {count} retries; saw {self.records}")


@pytest.fixture
def retry_log() -> Iterator[RetryLog]:
    """The client's retries, as logged by the ``hyperdial`` logger (a fixture: import it into
    a test module or conftest to use it)."""
    handler = RetryLog()
    logger = logging.getLogger("hyperdial")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


class CuttingProxy:
    """A TCP proxy on loopback that can swallow answers and then cut the connections.

    ``hold()`` keeps every byte the server sends from reaching the client (requests still
    flow to the server); ``cut()`` then closes every connection: the client has lost the
    answers to whatever it sent meanwhile. New connections afterwards pass normally.

    Args:
        upstream: ``host:port`` of the server.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._holding = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        #: Bytes the server sent while held, never delivered.
        self.swallowed = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def hold(self) -> None:
        with self._lock:
            self._holding = True

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self._holding = False
        for client, server in pairs:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is server:
                        with self._lock:
                            if self._holding:
                                self.swallowed += len(data)
                                continue
                    peers[s].sendall(data)
        except (OSError, ValueError):  # closed by cut()
            return


_BLOCKER = """
    import importlib.abc
    import sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
"""


def blocked_python(
    body: str, *args: str, blocked: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    """Runs ``body`` in a fresh interpreter where the ``blocked`` modules cannot be imported
    (as on a machine without them)."""
    code = textwrap.dedent(_BLOCKER.format(blocked=tuple(blocked))) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
