"""Serving the dashboard with uvicorn: in the foreground (``hyperdial dashboard``), or in a
thread of its own with its own event loop beside a replica (``hyperdial serve
--dashboard-port``), so that building the JSON of a big study never holds up the replica's
gRPC loop."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

__all__ = ["DashboardServer"]

logger = logging.getLogger("hyperdial.dashboard")

#: Seconds open connections get to finish when the dashboard stops.
STOP_GRACE = 2


class DashboardServer:
    """An HTTP server for the dashboard's application, its socket bound at construction (so a
    port in use fails here, and port 0 is known at once: :attr:`port`).

    Args:
        app: The application (:func:`hyperdial.dashboard.create_app`).
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.

    Raises:
        OSError: The address cannot be bound.
    """

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(128)
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,  # the process's logging stays as it is
            log_level="warning",  # its start and stop lines would read as the replica's
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=STOP_GRACE,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serves on this thread until SIGINT or SIGTERM (uvicorn handles them on the main
        thread), or until :meth:`close` from another thread."""
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        finally:
            self._socket.close()

    def start(self, timeout: float = 30.0) -> DashboardServer:
        """Serves in a daemon thread with its own event loop; returns once it answers.

        Raises:
            RuntimeError: It did not start within ``timeout`` seconds (its error is logged).
        """

        def run() -> None:
            try:
                self.serve_forever()
            except BaseException as e:  # reported by start() or logged
                self._failed = e
                logger.exception("the dashboard stopped with an error")

        self._thread = threading.Thread(target=run, name="hyperdial-dashboard", daemon=True)
        self._thread.start()
        # uvicorn sets a flag once it serves (no event to wait on): look at it now and then.
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if not self._server.started:
            self.close()
            raise RuntimeError(f"the dashboard did not start on {self.url}: {self._failed!r}")
        return self

    def close(self, timeout: float = STOP_GRACE + 5.0) -> None:
        """Stops serving (open connections get ``STOP_GRACE`` seconds), closes the client, and
        waits for the thread; safe to call twice."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("the dashboard did not stop within %.0f s", timeout)
            self._thread = None
        else:
            self._socket.close()
