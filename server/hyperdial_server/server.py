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
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hyperdial.v1 import tuning_service_pb2, tuning_service_pb2_grpc
from hyperdial_server.core.errors import Unavailable
from hyperdial_server.service import TuningServicer
from hyperdial_server.store import Store, open_store

logger = logging.getLogger("hyperdial.server")

#: Largest request or response, in bytes.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
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
    """

    host: str = "127.0.0.1"
    port: int = 50051
    redis_url: str = ""
    grace: float = 10.0
    reflection: bool = True


def add_tuning_service(server: grpc.aio.Server, store: Store) -> TuningServicer:
    """Mounts ``hyperdial.v1.TuningService`` on a server the caller owns.

    Args:
        server: A ``grpc.aio`` server, not yet started.
        store: The store; the caller keeps ownership (and closes it).

    Returns:
        The servicer.
    """
    servicer = TuningServicer(store)
    tuning_service_pb2_grpc.add_TuningServiceServicer_to_server(servicer, server)
    return servicer


class RunningServer:
    """A started standalone server: its port, its store, and how to stop it."""

    def __init__(
        self, server: grpc.aio.Server, store: Store, port: int, health_task: asyncio.Task[None]
    ) -> None:
        self.server = server
        self.store = store
        self.port = port
        self._health_task = health_task

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting calls, lets in-flight ones finish within ``grace``, closes the store."""
        self._health_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._health_task
        await self.server.stop(grace)
        await self.store.close()


async def start(config: ServerConfig, store: Store | None = None) -> RunningServer:
    """Starts a standalone server (tuning, health and reflection services).

    Args:
        config: Settings.
        store: A store to use instead of opening ``config.redis_url``.
    """
    if store is None:
        store = open_store(config.redis_url or None)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    add_tuning_service(server, store)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    await server.start()
    task = asyncio.create_task(_watch_store(store, health_servicer))
    return RunningServer(server, store, port, task)


async def _watch_store(store: Store, servicer: health.aio.HealthServicer) -> None:
    """Keeps the health status in step with the store: SERVING only while it answers."""
    last: int | None = None
    while True:
        try:
            await store.ping()
            status = health_pb2.HealthCheckResponse.SERVING
        except Unavailable:
            status = health_pb2.HealthCheckResponse.NOT_SERVING
        if status != last:
            for service in ("", SERVICE_NAME):
                await servicer.set(service, status)
            if last is not None:
                logger.warning("store %s", "reachable" if status == 1 else "unreachable")
            last = status
        await asyncio.sleep(HEALTH_INTERVAL)


async def serve(config: ServerConfig, ready: Callable[[RunningServer], None] | None = None) -> None:
    """Runs a standalone server until SIGTERM or SIGINT, then stops gracefully."""
    running = await start(config)
    kind = "redis" if config.redis_url else "memory (embedded, not persistent)"
    logger.info("hyperdial listening on %s:%d, store: %s", config.host, running.port, kind)
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
