"""The standard gRPC health service (``grpc.health.v1.Health``), ready for graceful stops."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2

_Status = health_pb2.HealthCheckResponse


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """``grpc.health.v1.Health`` whose ``Watch`` streams end when the server shuts down.

    The base class's ``Watch`` streams last until the client leaves. A server stopping while a
    watcher is connected (a load balancer, a gRPC client with health checking) would then wait
    out its whole grace period for that stream. Here :meth:`enter_graceful_shutdown` sends
    every watcher NOT_SERVING and ends its stream, so only real work holds the stop.
    ``Check`` is the base class's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._statuses: dict[str, int] = {"": _Status.SERVING}
        self._changed = asyncio.Condition()
        self._stopping = False

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> None:
        last: int | None = None
        async with self._changed:
            while True:
                status = self._statuses.get(request.service, _Status.SERVICE_UNKNOWN)
                if status != last:
                    await context.write(_Status(status=status))
                    last = status
                if self._stopping:
                    return
                await self._changed.wait()

    async def set(self, service: str, status: int) -> None:
        """Sets the status of a service (ignored once the server is shutting down)."""
        await super().set(service, status)
        if not self._stopping:
            await self._publish(service, status)

    async def enter_graceful_shutdown(self) -> None:
        """Sets every service NOT_SERVING for good and ends the ``Watch`` streams."""
        self._stopping = True
        await super().enter_graceful_shutdown()
        for service in list(self._statuses):
            await self._publish(service, _Status.NOT_SERVING)

    async def _publish(self, service: str, status: int) -> None:
        async with self._changed:
            self._statuses[service] = status
            self._changed.notify_all()
