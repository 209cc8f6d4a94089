"""What the counting tests share: Redis commands counted with ``INFO commandstats`` (no wall
clock), and a real server on a private Redis that sends no background commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
import redis

from hyperdial.v1 import tuning_service_pb2_grpc
from hyperdial_server import server as server_module
from hyperdial_server.server import ServerConfig
from tests.server_harness import InProcessServer

# The counting calls themselves, left out of the counts.
_OWN = ("cmdstat_config|resetstat", "cmdstat_config", "cmdstat_info")


def commands(client: redis.Redis) -> dict[str, int]:
    """Calls of each command since Redis's statistics were last reset (``CONFIG RESETSTAT``),
    commands run by scripts included, the counting's own ``CONFIG`` and ``INFO`` left out."""
    stats: dict[str, Any] = client.info("commandstats")
    counts = {name: int(value["calls"]) for name, value in stats.items()}
    for name in _OWN:
        counts.pop(name, None)
    return counts


@contextlib.contextmanager
def quiet_server(
    redis_url: str,
) -> Iterator[tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub]]:
    """A real server on ``redis_url`` without background commands that would land in the
    counts (no lease sweep; no periodic health check after the first), a client of that Redis
    and a stub of the server."""
    interval, server_module.HEALTH_INTERVAL = server_module.HEALTH_INTERVAL, 24 * 3600.0
    try:
        hyperdial = InProcessServer(ServerConfig(redis_url=redis_url, lease_sweep_interval=0))
        try:
            hyperdial.start()
            client = redis.Redis.from_url(redis_url)
            channel = grpc.insecure_channel(hyperdial.target)
            try:
                yield client, tuning_service_pb2_grpc.TuningServiceStub(channel)
            finally:
                channel.close()
                client.close()
        finally:
            hyperdial.stop()
    finally:
        server_module.HEALTH_INTERVAL = interval
