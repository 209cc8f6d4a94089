"""Running the service: building a ``grpc.aio`` server, health, reflection, graceful stop.

Two entry points:

* :func:`add_tuning_service` mounts the tuning service on a ``grpc.aio.Server`` the caller
  owns, with a store the caller provides (embedding in an existing platform).
* :func:`serve` runs a standalone server until SIGTERM or SIGINT (``hyperdial serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hyperdial.v1 import tuning_service_pb2
from hyperdial_server.core import limits
from hyperdial_server.core.errors import Unavailable
from hyperdial_server.security import TokenRegistry, check_tls_paths, server_credentials
from hyperdial_server.service import TuningServicer
from hyperdial_server.service._auth import AuthInterceptor
from hyperdial_server.service._compute import DEFAULT_SAMPLER_PROCESSES, SamplerWorkers
from hyperdial_server.service._health import HealthServicer
from hyperdial_server.service._metrics import CallInterceptor, Metrics, MetricsEndpoint
from hyperdial_server.service._registration import add_tuning_servicer
from hyperdial_server.store import Store, open_store

logger = logging.getLogger("hyperdial.server")

#: Largest request or response, in bytes.
MAX_MESSAGE_BYTES = limits.MAX_MESSAGE_BYTES
#: Seconds between two store checks of the health service.
HEALTH_INTERVAL = 2.0
SERVICE_NAME = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"].full_name


@dataclass
class ServerConfig:
    """Settings of a standalone server; each has a ``hyperdial serve`` flag and env var.

    Attributes:
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        redis_url: Redis URL; empty for the embedded in-memory store.
        grace: Seconds in-flight calls get to finish on shutdown.
        reflection: Whether to serve gRPC server reflection.
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
    """

    host: str = "127.0.0.1"
    port: int = 50051
    redis_url: str = ""
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


def add_tuning_service(
    server: grpc.aio.Server,
    store: Store,
    *,
    lease_timeout: float = limits.DEFAULT_LEASE_TIMEOUT,
    request_id_ttl: float = limits.DEFAULT_REQUEST_ID_TTL,
    sampler_processes: int = DEFAULT_SAMPLER_PROCESSES,
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

    Returns:
        The servicer; call its ``close()`` after stopping the server, to stop the workers.
    """
    servicer = TuningServicer(
        store,
        lease_timeout=lease_timeout,
        request_id_ttl=request_id_ttl,
        samplers=SamplerWorkers(sampler_processes),
    )
    # Not the generated add_TuningServiceServicer_to_server: unparsable requests get
    # INVALID_ARGUMENT instead of UNKNOWN.
    add_tuning_servicer(servicer, server)
    return servicer


async def sweep_leases(store: Store, interval: float) -> None:
    """Expires due trial leases every ``interval`` seconds, until cancelled.

    Every replica runs one: the store expires each lease once whoever gets there, so no leader
    is needed. A store that cannot be reached is retried at the next tick (the health service
    reports it); any other failure is logged and retried too, so the sweep never stops.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await store.expire_leases(now=time.time())
        except Unavailable:
            continue
        except Exception:
            logger.exception("the lease sweep failed; it runs again in %.1f s", interval)
            continue
        if expired:
            logger.info("%d trial leases expired (no heartbeat, no result)", expired)


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

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting calls, lets in-flight ones finish within ``grace``, closes the store."""
        for task in (self._health_task, self._sweep_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._health is not None:
            # NOT_SERVING first, so health watchers (load balancers) drain this replica.
            await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self._servicer is not None:
            self._servicer.close()
        await self.store.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()


async def start(config: ServerConfig, store: Store | None = None) -> RunningServer:
    """Starts a standalone server (tuning, health and reflection services).

    Args:
        config: Settings.
        store: A store to use instead of opening ``config.redis_url``.

    Raises:
        SecurityConfigError: A TLS file or the tokens file is missing or malformed (checked
            before anything is opened).
    """
    tls = check_tls_paths(config.tls_cert, config.tls_key, config.tls_client_ca)
    credentials = server_credentials(tls) if tls is not None else None
    tokens = TokenRegistry(config.tokens_file) if config.tokens_file else None
    if store is None:
        store = open_store(config.redis_url or None)
    metrics = Metrics()
    server = grpc.aio.server(
        interceptors=[CallInterceptor(metrics), *([AuthInterceptor(tokens)] if tokens else [])],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            # Clients keep long asks alive with pings every 60 s; the gRPC default (one per
            # 5 minutes) would answer them with GOAWAY "too_many_pings".
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    servicer = add_tuning_service(
        server,
        store,
        lease_timeout=config.lease_timeout,
        request_id_ttl=config.request_id_ttl,
        sampler_processes=config.sampler_processes,
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = f"{config.host}:{config.port}"
    if credentials is not None:
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    endpoint = None
    if config.metrics_port is not None:
        endpoint = MetricsEndpoint(metrics, config.host, config.metrics_port)
    # The health status is known before the first call arrives.
    status = await _check_store(store, health_servicer, metrics, None)
    await server.start()
    task = asyncio.create_task(_watch_store(store, health_servicer, metrics, status))
    sweep = None
    if config.lease_sweep_interval > 0:
        sweep = asyncio.create_task(sweep_leases(store, config.lease_sweep_interval))
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
    )


async def _check_store(
    store: Store,
    servicer: health.aio.HealthServicer,
    metrics: Metrics | None,
    last: int | None,
) -> int:
    """Pings the store once and sets the health status from the answer, which it returns."""
    try:
        await store.ping()
        status = health_pb2.HealthCheckResponse.SERVING
    except Unavailable:
        status = health_pb2.HealthCheckResponse.NOT_SERVING
        if metrics is not None:
            metrics.store_errors.labels("health_check").inc()
    if metrics is not None:
        metrics.store_up.set(1 if status == health_pb2.HealthCheckResponse.SERVING else 0)
    if status != last:
        for service in ("", SERVICE_NAME):
            await servicer.set(service, status)
        if status != health_pb2.HealthCheckResponse.SERVING:
            logger.warning("store unreachable: health NOT_SERVING until it answers")
        elif last is not None:
            logger.info("store reachable again: health SERVING")
    return int(status)


async def _watch_store(
    store: Store,
    servicer: health.aio.HealthServicer,
    metrics: Metrics | None = None,
    last: int | None = None,
) -> None:
    """Keeps the health status in step with the store: SERVING only while it answers."""
    while True:
        await asyncio.sleep(HEALTH_INTERVAL)
        last = await _check_store(store, servicer, metrics, last)


async def serve(config: ServerConfig, ready: Callable[[RunningServer], None] | None = None) -> None:
    """Runs a standalone server until SIGTERM or SIGINT, then stops gracefully."""
    running = await start(config)
    kind = "redis" if config.redis_url else "memory (embedded, not persistent)"
    logger.info("hyperdial listening on %s:%d, store: %s", config.host, running.port, kind)
    tls = "mutual TLS" if config.tls_client_ca else "TLS" if config.tls_cert else "plaintext"
    auth = "bearer tokens" if config.tokens_file else "none (every caller is trusted)"
    logger.info("transport: %s; authentication: %s", tls, auth)
    if config.tokens_file and not config.tls_cert:
        logger.warning("bearer tokens travel in clear text: use TLS unless a proxy terminates it")
    if running.metrics_endpoint is not None:
        logger.info("metrics on http://%s:%d/metrics", config.host, running.metrics_endpoint.port)
    if ready is not None:
        ready(running)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("stopping: finishing in-flight calls (grace %.0f s)", config.grace)
    await running.stop(config.grace)
    logger.info("stopped")
