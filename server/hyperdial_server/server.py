"""Running the service: building a ``grpc.aio`` server, health, reflection, graceful stop.

Two entry points:

* :func:`add_tuning_service` mounts the tuning service on a ``grpc.aio.Server`` the caller
  owns, with a store the caller provides (embedding in an existing platform).
* :func:`serve` runs a standalone server until SIGTERM or SIGINT (``hyperdial serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hyperdial.v1 import tuning_service_pb2
from hyperdial_server import _tracing
from hyperdial_server._dashboard import dashboard_token, loopback, open_dashboard
from hyperdial_server._reflection import enable_reflection
from hyperdial_server.core import limits
from hyperdial_server.core.errors import HyperdialError, ResourceExhausted, Unavailable
from hyperdial_server.security import TokenRegistry, check_tls_paths, server_credentials
from hyperdial_server.service import (
    DEFAULT_SAMPLER_PRIORITY,
    DEFAULT_SAMPLER_PROCESSES,
    SPEC_CACHE_BYTES,
    STORE_UNAVAILABLE,
    AdmissionLimits,
    AuthInterceptor,
    CallInterceptor,
    HealthServicer,
    Metrics,
    MetricsEndpoint,
    SamplerPriority,
    SamplerWorkers,
    TracingInterceptor,
    TuningServicer,
    add_tuning_servicer,
)
from hyperdial_server.store import RedisStore, Store, open_store
from hyperdial_server.store._redis import REQUIRED_EVICTION_POLICY

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from hyperdial.dashboard import DashboardServer

logger = logging.getLogger("hyperdial.server")

T = TypeVar("T")

#: Largest request or response, in bytes.
MAX_MESSAGE_BYTES = limits.MAX_MESSAGE_BYTES
#: Seconds between two store checks of the health service.
HEALTH_INTERVAL = 2.0
#: Seconds a health check waits for the store before counting it down: a store that stalls
#: turns health NOT_SERVING within HEALTH_INTERVAL + HEALTH_TIMEOUT (5 s) of the stall.
HEALTH_TIMEOUT = 3.0
#: Seconds a stopping server waits for its sampler workers to be gone (their pool's shutdown
#: done) before it returns and the interpreter exits.
SAMPLER_STOP_WAIT = 5.0
SERVICE_NAME = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"].full_name


@dataclass
class ServerConfig:
    """Settings of a standalone server; each has a ``hyperdial serve`` flag and env var.

    Attributes:
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        redis_url: Redis URL; empty for the embedded in-memory store.
        allow_evicting_redis: Serve (with a loud warning) from a Redis whose
            ``maxmemory-policy`` is not ``noeviction``, instead of refusing to start.
        grace: Seconds in-flight calls get to finish on shutdown.
        reflection: Whether to serve gRPC server reflection (``v1`` and ``v1alpha``).
        tls_cert: PEM certificate chain of the server; with ``tls_key``, the port speaks TLS.
        tls_key: PEM private key of ``tls_cert`` (unencrypted).
        tls_client_ca: PEM CA certificates; set, every client must present a certificate
            they signed (mutual TLS).
        tokens_file: File of token hashes, namespaces and roles; set, every call of the
            tuning service needs a bearer token (``docs/security.md``).
        metrics_port: Port of the Prometheus ``/metrics`` endpoint (on ``host``); 0 picks a
            free one; ``None``: no endpoint.
        lease_timeout: Lease of the RUNNING trials of studies created without one, seconds.
        request_id_ttl: Seconds the answer of a call with a ``request_id`` is kept.
        lease_sweep_interval: Seconds between two sweeps of expired leases; 0: no sweep (leases
            then expire only when their study is asked or listed).
        sampler_processes: Worker processes of model-based samplers; 0: threads instead.
        sampler_priority: How those worker processes compete for the CPU
            (``docs/operations.md``, "Bayesian asks on a busy node").
        admission: Bounds of the heavy reads (list calls) in flight and waiting per replica
            and per namespace (``docs/operations.md``, "Load shedding").
        spec_cache_bytes: Most bytes of study specs a replica caches.
        namespace_spec_bytes: Most bytes of stored study specs per namespace; 0: no budget.
        tracing: Whether to trace calls with OpenTelemetry (``docs/operations.md``,
            "Tracing"; needs ``pip install 'hyperdial[tracing]'``).
        tracer_provider: With ``tracing``, the OpenTelemetry provider spans go to (no flag:
            for embedding and tests); ``None``: the process's global one if set, else one
            configured from the standard ``OTEL_*`` variables, closed when the server stops.
        dashboard_port: Port of the web dashboard (on ``host``), which reads this replica
            over loopback from a thread of its own (``docs/dashboard.md``); 0 picks a free
            one; ``None``: no dashboard. Needs the ``dashboard`` extra; not with TLS.
        dashboard_token_file: With ``tokens_file``, a file holding the token the dashboard
            reads with (read-only is enough); its namespace is the one the dashboard shows.
    """

    host: str = "127.0.0.1"
    port: int = 50051
    redis_url: str = ""
    allow_evicting_redis: bool = False
    grace: float = 10.0
    reflection: bool = True
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    tokens_file: str = ""
    metrics_port: int | None = None
    lease_timeout: float = limits.DEFAULT_LEASE_TIMEOUT
    request_id_ttl: float = limits.DEFAULT_REQUEST_ID_TTL
    lease_sweep_interval: float = 1.0
    sampler_processes: int = DEFAULT_SAMPLER_PROCESSES
    sampler_priority: SamplerPriority = DEFAULT_SAMPLER_PRIORITY
    admission: AdmissionLimits = AdmissionLimits()
    spec_cache_bytes: int = SPEC_CACHE_BYTES
    namespace_spec_bytes: int = limits.DEFAULT_NAMESPACE_SPEC_BYTES
    tracing: bool = False
    tracer_provider: TracerProvider | None = field(default=None, compare=False, repr=False)
    dashboard_port: int | None = None
    dashboard_token_file: str = ""


def add_tuning_service(
    server: grpc.aio.Server,
    store: Store,
    *,
    lease_timeout: float = limits.DEFAULT_LEASE_TIMEOUT,
    request_id_ttl: float = limits.DEFAULT_REQUEST_ID_TTL,
    sampler_processes: int = DEFAULT_SAMPLER_PROCESSES,
    sampler_priority: SamplerPriority = DEFAULT_SAMPLER_PRIORITY,
    admission: AdmissionLimits | None = None,
    spec_cache_bytes: int = SPEC_CACHE_BYTES,
) -> TuningServicer:
    """Mounts ``hyperdial.v1.TuningService`` on a server the caller owns.

    Expired leases are enforced lazily by asks and lists; run :func:`sweep_leases` too so that
    a study nobody asks anymore gets its leases expired.

    Args:
        server: A ``grpc.aio`` server, not yet started.
        store: The store; the caller keeps ownership (and closes it).
        lease_timeout: Lease of the RUNNING trials of studies created without one, seconds.
        request_id_ttl: Seconds the answer of a call with a ``request_id`` is kept.
        sampler_processes: Worker processes of model-based samplers (started on the first
            Bayesian ask); 0: threads of this process instead.
        sampler_priority: How those worker processes compete for the CPU.
        admission: Bounds of the heavy reads in flight and waiting; ``None``: the defaults.
        spec_cache_bytes: Most bytes of study specs the servicer caches.

    Returns:
        The servicer; call its ``close()`` after stopping the server, to stop the workers.
    """
    servicer = TuningServicer(
        store,
        lease_timeout=lease_timeout,
        request_id_ttl=request_id_ttl,
        samplers=SamplerWorkers(sampler_processes, sampler_priority),
        admission=admission,
        spec_cache_bytes=spec_cache_bytes,
    )
    # Not the generated add_TuningServiceServicer_to_server: unparsable requests get
    # INVALID_ARGUMENT instead of UNKNOWN.
    add_tuning_servicer(servicer, server)
    return servicer


async def sweep_leases(store: Store, interval: float) -> None:
    """Expires due trial leases every ``interval`` seconds, until cancelled.

    Every replica runs one: the store expires each lease once whoever gets there, so no leader
    is needed. A store that cannot be reached or is full is retried at the next tick (the health
    service reports it); any other failure is logged and retried too, so the sweep never stops.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await store.expire_leases(now=time.time())
        except (Unavailable, ResourceExhausted):
            continue  # the store is down or full: the health service reports it
        except HyperdialError as exc:  # a damaged study (DATA_LOSS), a refused command
            logger.error("the lease sweep failed: %s; it runs again in %.1f s", exc, interval)
            continue
        except Exception:
            logger.exception("the lease sweep failed; it runs again in %.1f s", interval)
            continue
        if expired:
            logger.info("%d trial leases expired (no heartbeat, no result)", expired)


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancels ``task`` until it has ended.

    One cancellation is not always enough: the Redis client, reconnecting to a server that has
    just come back, can turn a cancellation into a timeout that its retry loop absorbs, and a
    loop around that call (the lease sweep, the store watch) then runs on. A stop that awaited
    such a task once hung until its watchdog ended the process with status 1.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class RunningServer:
    """A started standalone server: its port, its store, and how to stop it."""

    def __init__(
        self,
        server: grpc.aio.Server,
        store: Store,
        port: int,
        health_task: asyncio.Task[None],
        *,
        health_servicer: health.aio.HealthServicer | None = None,
        metrics: Metrics | None = None,
        metrics_endpoint: MetricsEndpoint | None = None,
        sweep_task: asyncio.Task[None] | None = None,
        servicer: TuningServicer | None = None,
        close_tracing: Callable[[], None] | None = None,
        dashboard: DashboardServer | None = None,
    ) -> None:
        self.server = server
        self._servicer = servicer
        self.store = store
        self.port = port
        self._health_task = health_task
        self._health = health_servicer
        self.metrics = metrics
        self.metrics_endpoint = metrics_endpoint
        self._sweep_task = sweep_task
        self._close_tracing = close_tracing
        #: The web dashboard beside the replica (``dashboard_port``), else ``None``.
        self.dashboard = dashboard

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting calls, lets in-flight ones finish within ``grace``, closes the store."""
        if self.dashboard is not None:
            # First: its reads of this replica end before the replica stops answering.
            await asyncio.to_thread(self.dashboard.close)
        for task in (self._health_task, self._sweep_task):
            if task is not None:
                await cancel_and_wait(task)
        if self._health is not None:
            # NOT_SERVING first, so health watchers (load balancers) drain this replica.
            await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self._servicer is not None:
            self._servicer.close()
        await self.store.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()
        if self._servicer is not None:
            # Bounded: a suggestion still computing is not worth holding the stop for.
            await asyncio.to_thread(self._servicer.wait_closed, SAMPLER_STOP_WAIT)
        if self._close_tracing is not None:
            # Exports the spans still batched (a network call): off the event loop.
            await asyncio.to_thread(self._close_tracing)


async def start(config: ServerConfig, store: Store | None = None) -> RunningServer:
    """Starts a standalone server (tuning, health and reflection services).

    Args:
        config: Settings.
        store: A store to use instead of opening ``config.redis_url``.

    Raises:
        SecurityConfigError: A TLS file or the tokens file is missing or malformed (checked
            before anything is opened).
        EvictingStoreError: Redis may evict keys (see :func:`check_eviction`) and
            ``config.allow_evicting_redis`` is off.
        TracingUnavailable: ``config.tracing`` is on and OpenTelemetry, or the exporter
            ``OTEL_TRACES_EXPORTER`` names, is not installed (checked before anything opens).
    """
    tls = check_tls_paths(config.tls_cert, config.tls_key, config.tls_client_ca)
    credentials = server_credentials(tls) if tls is not None else None
    tokens = TokenRegistry(config.tokens_file) if config.tokens_file else None
    dashboard_auth: tuple[str | None, str] = (None, "default")
    if config.dashboard_port is not None:  # checked before anything opens
        dashboard_auth = dashboard_token(tokens, config.dashboard_token_file, tls=tls is not None)
    # Off: no interceptor, and OpenTelemetry is never imported.
    tracing: list[TracingInterceptor] = []
    close_tracing = None
    if config.tracing:
        provider = config.tracer_provider
        if provider is None:
            provider, close_tracing = _tracing.provider_from_env()
        tracing.append(TracingInterceptor(provider))
    owned = store is None
    if store is None:
        store = open_store(config.redis_url or None, max_spec_bytes=config.namespace_spec_bytes)
    verified = False  # whether the eviction policy was checked here
    try:
        verified = await check_eviction(store, allow=config.allow_evicting_redis)
        if not verified:
            raise EvictingStoreError(
                "refusing to start: Redis may evict keys (its maxmemory-policy is not "
                f"{REQUIRED_EVICTION_POLICY}), which damages studies; set it with 'CONFIG SET "
                f"maxmemory-policy {REQUIRED_EVICTION_POLICY}' (and in redis.conf), or pass "
                "--allow-evicting-redis (docs/operations.md)"
            )
    except HyperdialError:
        pass  # not reachable yet: checked once it answers (``_check_store``)
    except EvictingStoreError:
        if owned:
            await store.close()
        raise
    metrics = Metrics()
    server = grpc.aio.server(
        interceptors=[
            *tracing,  # first: its span covers the whole call
            CallInterceptor(metrics),
            *([AuthInterceptor(tokens)] if tokens else []),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            # Clients ping every 10 s, idle or not, to notice a frozen replica (docs/protocol.md);
            # the gRPC default (one per 5 minutes) would answer with GOAWAY "too_many_pings".
            # Half the clients' interval, so timer jitter never counts as a strike. (The C
            # name is GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; its string is
            # this one; "grpc.http2.min_recv_ping_..." would be silently ignored.)
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    servicer = add_tuning_service(
        server,
        store,
        lease_timeout=config.lease_timeout,
        request_id_ttl=config.request_id_ttl,
        sampler_processes=config.sampler_processes,
        sampler_priority=config.sampler_priority,
        admission=config.admission,
        spec_cache_bytes=config.spec_cache_bytes,
    )
    metrics.watch(servicer.samplers.queue)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        # grpc.reflection.v1 and v1alpha, each listing both.
        enable_reflection((SERVICE_NAME, health.SERVICE_NAME), server)
    address = f"{config.host}:{config.port}"
    if credentials is not None:
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    dashboard = None
    if config.dashboard_port is not None:
        try:
            dashboard = open_dashboard(
                config.host, config.dashboard_port, loopback(config.host, port), *dashboard_auth
            )
        except BaseException:
            if owned:
                await store.close()
            raise
    endpoint = None
    if config.metrics_port is not None:
        endpoint = MetricsEndpoint(metrics, config.host, config.metrics_port)
    # The health status is known before the first call arrives.
    allow = config.allow_evicting_redis
    status = await _check_store(
        store, health_servicer, metrics, None, allow_evicting=allow, verified=verified
    )
    await server.start()
    task = asyncio.create_task(
        _watch_store(store, health_servicer, metrics, status, allow_evicting=allow)
    )
    sweep = None
    if config.lease_sweep_interval > 0:
        sweep = asyncio.create_task(sweep_leases(store, config.lease_sweep_interval))
    if dashboard is not None:
        await asyncio.to_thread(dashboard.start)
    return RunningServer(
        server,
        store,
        port,
        task,
        health_servicer=health_servicer,
        metrics=metrics,
        metrics_endpoint=endpoint,
        sweep_task=sweep,
        servicer=servicer,
        close_tracing=close_tracing,
        dashboard=dashboard,
    )


class EvictingStoreError(ValueError):
    """The store may evict keys (``maxmemory-policy`` is not ``noeviction``) and evicting
    stores are not allowed: the server refuses to start."""


async def check_eviction(store: Store, *, allow: bool) -> bool:
    """Whether ``store`` may be served from: Redis must never evict a key of a study.

    Every primary's ``maxmemory-policy`` must be ``noeviction``: under any other policy a full
    Redis drops keys, and a study that lost some (a trial record, its study hash) is damaged
    (DATA_LOSS). ``volatile-*`` policies are refused too: they evict only keys with a TTL, but
    a few of ours have one. A server that refuses ``CONFIG GET`` (managed Redis) is served
    from, with a warning to check the setting by hand.

    Args:
        store: The store; only a Redis store is checked.
        allow: Serve from an evicting Redis anyway, with a loud warning.

    Returns:
        ``False`` when the store may evict and ``allow`` is off (logged as an error).

    Raises:
        HyperdialError: The store cannot be reached (``Unavailable``...).
    """
    if not isinstance(store, RedisStore):
        return True
    policies = await store.eviction_policies()
    unknown = sorted(where for where, policy in policies.items() if policy is None)
    if unknown:
        logger.warning(
            "cannot read maxmemory-policy of %s (CONFIG GET refused, as managed Redis often "
            "does): make sure it is %s, or a full Redis drops keys of studies "
            "(docs/operations.md)",
            ", ".join(unknown),
            REQUIRED_EVICTION_POLICY,
        )
    bad = {w: p for w, p in policies.items() if p is not None and p != REQUIRED_EVICTION_POLICY}
    if not bad:
        return True
    shown = ", ".join(f"{where}: {policy}" for where, policy in sorted(bad.items()))
    if allow:
        logger.warning(
            "REDIS MAY EVICT KEYS OF STUDIES (maxmemory-policy %s, not %s): serving anyway "
            "because of --allow-evicting-redis; a study whose keys Redis evicts is damaged "
            "and answers DATA_LOSS",
            shown,
            REQUIRED_EVICTION_POLICY,
        )
        return True
    logger.error(
        "Redis may evict keys of studies (maxmemory-policy %s, not %s): not serving from it "
        "(--allow-evicting-redis overrides)",
        shown,
        REQUIRED_EVICTION_POLICY,
    )
    return False


async def _bounded(call: Coroutine[Any, Any, T], timeout: float) -> T:
    """``call``'s result within ``timeout`` seconds (``asyncio.TimeoutError`` after).

    Like ``asyncio.wait_for``, with one difference: when the caller is cancelled (the health
    watch at a stop) and the call ends with an error rather than cancelled (a Redis client
    turns the cancellation of a read from a hung server into a connection error), the error
    is read here, not logged as "Task exception was never retrieved" after the server stopped.
    """
    task = asyncio.ensure_future(call)
    task.add_done_callback(_retrieve)
    return await asyncio.wait_for(task, timeout)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _check_store(
    store: Store,
    servicer: health.aio.HealthServicer,
    metrics: Metrics | None,
    last: int | None,
    *,
    allow_evicting: bool = True,
    verified: bool = False,
) -> int:
    """Probes the store once and sets the health status from the answer, which it returns.

    SERVING only if the store takes a write (``Store.ping``) within ``HEALTH_TIMEOUT``: a
    read-only replica, a full or a stalled Redis is NOT_SERVING. Whenever the store comes
    (back) into service, its eviction policy is checked again (a failover may have brought
    another server), unless ``verified`` (just checked by the caller).
    """
    serving = health_pb2.HealthCheckResponse.SERVING
    why = ""
    try:
        await _bounded(store.ping(), HEALTH_TIMEOUT)
        status = serving
    except (HyperdialError, asyncio.TimeoutError) as exc:
        status = health_pb2.HealthCheckResponse.NOT_SERVING
        why = getattr(exc, "message", "") or f"no answer within {HEALTH_TIMEOUT:g} s"
        if metrics is not None:
            reason = getattr(exc, "reason", STORE_UNAVAILABLE)  # a timeout: no answer at all
            metrics.store_errors.labels("health_check", reason).inc()
    if status == serving and last != serving and not verified:
        try:
            if not await _bounded(check_eviction(store, allow=allow_evicting), HEALTH_TIMEOUT):
                status = health_pb2.HealthCheckResponse.NOT_SERVING
                why = "its maxmemory-policy lets it evict keys"
        except (HyperdialError, asyncio.TimeoutError) as exc:
            status = health_pb2.HealthCheckResponse.NOT_SERVING
            why = getattr(exc, "message", "") or f"no answer within {HEALTH_TIMEOUT:g} s"
    if metrics is not None:
        metrics.store_up.set(1 if status == serving else 0)
    if status != last:
        for service in ("", SERVICE_NAME):
            await servicer.set(service, status)
        if status != serving:
            logger.warning("store unusable (%s): health NOT_SERVING until it takes writes", why)
        elif last is not None:
            logger.info("store takes writes again: health SERVING")
    return int(status)


async def _watch_store(
    store: Store,
    servicer: health.aio.HealthServicer,
    metrics: Metrics | None = None,
    last: int | None = None,
    *,
    allow_evicting: bool = True,
) -> None:
    """Keeps the health status in step with the store: SERVING only while it takes writes."""
    while True:
        await asyncio.sleep(HEALTH_INTERVAL)
        last = await _check_store(store, servicer, metrics, last, allow_evicting=allow_evicting)


async def serve(config: ServerConfig, ready: Callable[[RunningServer], None] | None = None) -> None:
    """Runs a standalone server until SIGTERM or SIGINT, then stops gracefully."""
    # Caught from the start: a signal that comes while starting (or right after the ready
    # line) stops the server gracefully instead of killing it without a clean-up.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start(config)
    kind = "redis" if config.redis_url else "memory (embedded, not persistent)"
    if ready is None:
        logger.info("hyperdial listening on %s:%d, store: %s", config.host, running.port, kind)
    else:
        # ``ready`` announces the address (``hyperdial serve`` prints its line on stdout, the
        # one scripts read): logging it too showed it twice where both streams are seen.
        logger.info("store: %s", kind)
    tls = "mutual TLS" if config.tls_client_ca else "TLS" if config.tls_cert else "plaintext"
    auth = "bearer tokens" if config.tokens_file else "none (every caller is trusted)"
    logger.info("transport: %s; authentication: %s", tls, auth)
    if config.tokens_file and not config.tls_cert:
        logger.warning("bearer tokens travel in clear text: use TLS unless a proxy terminates it")
    if running.metrics_endpoint is not None and ready is None:
        logger.info("metrics on http://%s:%d/metrics", config.host, running.metrics_endpoint.port)
    if running.dashboard is not None and ready is None:
        logger.info("dashboard on %s", running.dashboard.url)
    if ready is not None:
        ready(running)
    await stop.wait()
    logger.info("stopping: finishing in-flight calls (grace %.0f s)", config.grace)
    # From here the stop is bounded whatever it waits on (a Redis that hangs, a sampler
    # worker, a thread at interpreter exit), and a second signal ends it at once.
    _exit_after(config.grace + STOP_BOUND)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _exit_now, "a second signal")
    await running.stop(config.grace)
    logger.info("stopped")


#: Seconds past the grace period after which a stopping replica exits anyway: the store's
#: reply bound (a call to a hung Redis fails within it) plus time to close everything.
STOP_BOUND = 15.0


def _exit_after(seconds: float) -> None:
    """Exits the process (status 1) if it is still running ``seconds`` from now: a daemon
    thread, so it fires even when the event loop or interpreter shutdown is stuck."""
    timer = threading.Timer(seconds, _exit_now, (f"no clean stop within {seconds:.0f} s",))
    timer.daemon = True
    timer.start()


def _exit_now(why: str) -> None:
    logger.error("exiting now: %s; the threads were doing:", why)
    faulthandler.dump_traceback(all_threads=True)
    # Buffered log lines first: os._exit skips every clean-up, flushing included.
    logging.shutdown()
    os._exit(1)
