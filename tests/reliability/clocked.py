"""A real gRPC server on loopback whose servicer reads a clock the test moves, so lease tests
count seconds without waiting for them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

import grpc

from hyperdial.v1 import tuning_service_pb2_grpc
from hyperdial_server.service import TuningServicer
from hyperdial_server.service._registration import add_tuning_servicer
from hyperdial_server.store import Store, open_store

T = TypeVar("T")

#: Where the clock starts: far ahead of the real time, so that the real-time sweep of any other
#: server on the same Redis never finds these leases due.
START = 4_000_000_000.0


class ClockedServer:
    """The tuning service on ``redis_url`` (memory store when empty), clock at :attr:`now`."""

    def __init__(self, redis_url: str = "") -> None:
        self.now = START
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.store: Store = open_store(redis_url or None)
        self._server = self.run(self._start())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self._port}")
        self.stub = tuning_service_pb2_grpc.TuningServiceStub(self.channel)

    async def _start(self) -> grpc.aio.Server:
        server = grpc.aio.server()
        add_tuning_servicer(TuningServicer(self.store, clock=lambda: self.now), server)
        self._port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server

    def run(self, coro: Awaitable[T]) -> T:
        """Runs a coroutine on the server's loop (for example a sweep of its store)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)  # type: ignore[arg-type]

    def sweep(self) -> int:
        """One lease sweep at the server's time, as the periodic one would run it."""
        return self.run(self.store.expire_leases(now=self.now))

    def close(self) -> None:
        self.channel.close()
        self.run(self._server.stop(None))
        self.run(self.store.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
