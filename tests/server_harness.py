"""Real hyperdial servers for tests: one kind in this process, one kind as a process of its own.

* :class:`InProcessServer` — a real gRPC server on loopback, run by an event loop in a thread of
  the test process. Any :class:`~hyperdial_server.server.ServerConfig` (Redis, TLS, tokens,
  metrics, admission limits...); its store, metrics URL and a stub at hand; coroutines run on
  its loop. Optionally a clock the test moves (``clock_at``) or a servicer the test builds
  (``servicer``). Every in-process server of the tests is one of these.
* :class:`ServerProcess` — ``python -m hyperdial_server`` as a subprocess (a replica), in a
  process group of its own, with any flags and environment variables: for what needs a real
  process (signals, exit codes, logs, sampler worker processes, several replicas).

And readers of a server's Prometheus page: :func:`scrape` and :func:`sample`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import grpc
from prometheus_client.parser import text_string_to_metric_families

from hyperdial.v1 import tuning_service_pb2_grpc
from hyperdial_server.server import RunningServer, ServerConfig, start
from hyperdial_server.service import SamplerWorkers, TuningServicer, add_tuning_servicer
from hyperdial_server.store import Store, open_store
from tests.process_groups import GROUP_GRACE, kill_group, popen

T = TypeVar("T")

#: Where a test-moved clock usually starts (``InProcessServer(clock_at=CLOCK_START)``): far
#: ahead of the real time, so that the real-time sweep of any other server on the same Redis
#: never finds its leases due.
CLOCK_START = 4_000_000_000.0

#: Builds the servicer of an :class:`InProcessServer` from the server's store and clock. It runs
#: on the server's event loop, before the server starts (so asyncio objects it makes belong to
#: that loop); the harness closes the servicer when the server stops.
ServicerFactory = Callable[[Store, Callable[[], float]], TuningServicer]

# Settings of the standalone server only: the tuning service alone (a test clock or a custom
# servicer) raises when one is set, rather than ignore it.
_STANDALONE_SETTINGS = (
    "allow_evicting_redis",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "tokens_file",
    "metrics_port",
)
# Settings of the servicer: a custom servicer's factory decides them itself.
_SERVICER_SETTINGS = (
    "lease_timeout",
    "request_id_ttl",
    "sampler_processes",
    "admission",
    "spec_cache_bytes",
)


class InProcessServer:
    """A real gRPC server on loopback, run by an event loop in a background thread.

    By default it is the standalone server (:func:`hyperdial_server.server.start`, what
    ``hyperdial serve`` runs): tuning, health and reflection services, metrics and token
    interceptors, TLS, the periodic lease sweep, all as ``config`` says.

    With ``clock_at`` or ``servicer`` it is the tuning service alone on a plain ``grpc.aio``
    server: no health or reflection service, interceptors, TLS, metrics endpoint or periodic
    lease sweep (call :meth:`sweep`). Of ``config`` it applies ``redis_url`` and
    ``namespace_spec_bytes``, and the servicer settings unless ``servicer`` is given;
    ``lease_sweep_interval`` must be 0, and any setting it cannot apply raises ``ValueError``.

    Use it as a context manager, or call :meth:`start` and then :meth:`stop` in a ``finally``:
    :meth:`stop` closes everything the server opened (server, store, servicer, the stub's
    channel, the loop and its thread), also after a failed start; a second call does nothing.

    Args:
        config: Settings; default ``ServerConfig()``. ``host``, ``port`` and ``grace`` are the
            harness's: loopback, a free port, 1 s to stop.
        clock_at: Set: the servicer's clock stands at this time (usually :data:`CLOCK_START`)
            and moves only when the test sets :attr:`now`, so lease tests count seconds
            without waiting for them. ``None``: the real clock.
        servicer: Set: builds the servicer instead of the standard one (e.g. with scripted
            samplers or a short claim TTL); see :data:`ServicerFactory`.

    Raises:
        ValueError: ``clock_at`` or ``servicer`` with a setting the tuning service alone
            cannot apply.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        clock_at: float | None = None,
        servicer: ServicerFactory | None = None,
    ) -> None:
        self.config = dataclasses.replace(
            config if config is not None else ServerConfig(), host="127.0.0.1", port=0, grace=1.0
        )
        self._alone = clock_at is not None or servicer is not None
        if self._alone:
            _check_alone(self.config, custom_servicer=servicer is not None)
        self._now = clock_at
        self._make_servicer = servicer or self._standard_servicer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        # The standalone server, or the parts of the tuning service alone.
        self._running: RunningServer | None = None
        self._server: grpc.aio.Server | None = None
        self._servicer: TuningServicer | None = None
        self._store: Store | None = None
        self._channel: grpc.Channel | None = None
        self._stub: tuning_service_pb2_grpc.TuningServiceStub | None = None

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> InProcessServer:
        """Starts the loop's thread and the server on it; returns ``self``."""
        if self._loop is not None:
            raise RuntimeError("this server was started already")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hyperdial-test-server", daemon=True
        )
        self._thread.start()
        try:
            self.run(self._start(), timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the server, closes what it opened and ends its loop; safe to call twice."""
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            try:
                self.run(self._stop(), timeout=60)
            finally:
                self.run(_cancel_leftovers(), timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            if thread.is_alive():
                raise RuntimeError("the server's event loop did not stop")
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        if not self._alone:
            self._running = await start(self.config)
            self._port = self._running.port
            return
        # Attributes are set as each part opens, so that stop() closes what a failure left.
        self._store = open_store(
            self.config.redis_url or None, max_spec_bytes=self.config.namespace_spec_bytes
        )
        self._servicer = self._make_servicer(self._store, lambda: self.now)
        self._server = grpc.aio.server()
        add_tuning_servicer(self._servicer, self._server)
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def _stop(self) -> None:
        running, self._running = self._running, None
        server, self._server = self._server, None
        servicer, self._servicer = self._servicer, None
        store, self._store = self._store, None
        try:
            if running is not None:  # it closes its servicer and store itself
                await running.stop(self.config.grace)
            if server is not None:
                await server.stop(None)
        finally:
            try:
                if servicer is not None:
                    servicer.close()  # after the server: it stops the sampler workers
            finally:
                if store is not None:
                    await store.close()

    def _standard_servicer(self, store: Store, clock: Callable[[], float]) -> TuningServicer:
        """The servicer the standalone server mounts (``add_tuning_service``), on ``clock``."""
        config = self.config
        return TuningServicer(
            store,
            clock=clock,
            samplers=SamplerWorkers(config.sampler_processes),
            lease_timeout=config.lease_timeout,
            request_id_ttl=config.request_id_ttl,
            admission=config.admission,
            spec_cache_bytes=config.spec_cache_bytes,
        )

    # --- the running server --------------------------------------------------------------

    @property
    def target(self) -> str:
        """``host:port`` of the server."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return f"127.0.0.1:{self._port}"

    @property
    def store(self) -> Store:
        """The server's store (use it on the server's loop: :meth:`run`)."""
        store = self._running.store if self._running is not None else self._store
        if store is None:
            raise RuntimeError("the server is not running")
        return store

    @property
    def running(self) -> RunningServer:
        """The standalone server's handle (its metrics, metrics endpoint, gRPC server)."""
        if self._running is None:
            raise RuntimeError("no standalone server is running (a test clock or servicer?)")
        return self._running

    @property
    def metrics_url(self) -> str:
        """URL of the ``/metrics`` page (``metrics_port`` set in the config)."""
        endpoint = self.running.metrics_endpoint
        if endpoint is None:
            raise RuntimeError("this server has no metrics endpoint: set metrics_port")
        return f"http://127.0.0.1:{endpoint.port}/metrics"

    @property
    def stub(self) -> tuning_service_pb2_grpc.TuningServiceStub:
        """A tuning service stub on a plaintext channel to the server, opened on first use and
        closed by :meth:`stop` (a TLS server needs a channel of the test's own)."""
        if self._stub is None:
            self._channel = grpc.insecure_channel(self.target)
            self._stub = tuning_service_pb2_grpc.TuningServiceStub(self._channel)
        return self._stub

    @property
    def now(self) -> float:
        """The server's time: where the test set its clock (``clock_at``), else the real time.
        Setting it moves a test clock."""
        return time.time() if self._now is None else self._now

    @now.setter
    def now(self, value: float) -> None:
        if self._now is None:
            raise ValueError("this server reads the real clock: pass clock_at to move it")
        self._now = value

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Runs ``coro`` on the server's loop (e.g. a call of its store) and returns its result."""
        if self._loop is None:
            coro.close()  # never awaited otherwise: a RuntimeWarning at collection
            raise RuntimeError("the server is not started")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()  # a timeout or an interrupt leaves nothing running on the loop
            raise

    def sweep(self) -> int:
        """One lease sweep at the server's time (:attr:`now`), as the periodic one would run it;
        returns how many leases expired."""
        return self.run(self.store.expire_leases(now=self.now))


async def _cancel_leftovers() -> None:
    """Cancels the tasks still on the loop once the server stopped (e.g. the handler of a health
    stream the client left), as ``asyncio.run`` does before it closes its loop: a task left
    pending is destroyed later, with an error message in whatever runs then."""
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=10)


def _check_alone(config: ServerConfig, *, custom_servicer: bool) -> None:
    """Raises ``ValueError`` for a setting the tuning service alone would silently ignore."""
    default = ServerConfig()
    names = _STANDALONE_SETTINGS + (_SERVICER_SETTINGS if custom_servicer else ())
    ignored = [n for n in names if getattr(config, n) != getattr(default, n)]
    if config.lease_sweep_interval != 0:
        ignored.append("lease_sweep_interval (must be 0: the test calls sweep())")
    if ignored:
        raise ValueError(
            "a server with a test clock or a custom servicer is the tuning service alone; "
            f"it cannot apply: {', '.join(ignored)}"
        )


_LISTEN_RE = re.compile(r"listening on ([0-9.]+):([0-9]+)")


class ServerProcess:
    """``python -m hyperdial_server --port 0 --grace 2`` as a separate process (a replica).

    The replica leads a process group of its own (:func:`tests.process_groups.popen`), with its
    fork server and sampler workers: :meth:`terminate`, :meth:`kill` and :meth:`close` end the
    replica, then kill whatever of its group is left, and so does the garbage collector or the
    exit of the test run when none of them ran. Its stderr (the log) goes to a file
    (:meth:`read_log`); its stdout is a pipe (:meth:`next_line`).

    Args:
        redis_url: ``--redis``; empty for the memory store.
        extra: More flags; a flag given twice takes its last value (e.g. ``--grace 60``).
        env: Variables added to this process's environment for the server.

    Raises:
        RuntimeError: The server did not print its listening line (its log is in the message).
    """

    def __init__(
        self,
        redis_url: str = "",
        extra: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        args = [sys.executable, "-m", "hyperdial_server", "--port", "0", "--grace", "2"]
        if redis_url:
            args += ["--redis", redis_url]
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        # The log goes to a file: an unread pipe would fill up and block the server.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc: subprocess.Popen[str] = popen(
            [*args, *extra], stdout=subprocess.PIPE, stderr=self.log, text=True, env=environ
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

    def next_line(self) -> str:
        """The next line the server prints on stdout (after its listening line)."""
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def read_log(self) -> str:
        """Everything logged so far."""
        self.log.flush()
        self.log.seek(0)
        text = self.log.read()
        self.log.seek(0, os.SEEK_END)
        return text

    def stop_and_read_log(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM, waits for the exit; returns the exit code and everything logged. What is
        left of the process group then is killed; the log stays readable."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.reap_group()
        return code, self.read_log()

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

    def close(self) -> None:
        """For a ``finally``: kills the replica if it still runs (as :meth:`kill`), kills what
        is left of its group and closes its pipe and log. Does nothing the second time."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.reap_group()  # a no-op for a replica killed or terminated already
        self._close_files()

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


# --- metrics ---------------------------------------------------------------------------------

#: Samples of a ``/metrics`` page: ``(name, sorted labels) -> value``.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Samples of the ``/metrics`` page at ``url`` (e.g. :attr:`InProcessServer.metrics_url`)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a counter never incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
