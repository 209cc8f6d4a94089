"""A real server with a full ``ServerConfig`` (TLS, tokens), in process, and call helpers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc

from hyperdial.v1 import tuning_service_pb2_grpc
from hyperdial_server.security import Role, hash_token, new_token
from hyperdial_server.server import RunningServer, ServerConfig, start


class ConfiguredServer:
    """A real gRPC server on loopback with any ``ServerConfig``, run by an event loop in a
    background thread. ``host`` and ``port`` are forced to 127.0.0.1 and a free port."""

    def __init__(self, config: ServerConfig) -> None:
        config.host, config.port, config.grace = "127.0.0.1", 0, 1.0
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningServer | None = None

    def start(self) -> ConfiguredServer:
        self._thread.start()
        try:
            self._running = self.run(start(self.config))
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    @property
    def target(self) -> str:
        assert self._running is not None
        return f"127.0.0.1:{self._running.port}"

    @property
    def running(self) -> RunningServer:
        assert self._running is not None
        return self._running

    def run(self, coro: Any) -> Any:
        """Runs a coroutine on the server's loop and returns its result."""
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=60)

    def stop(self) -> None:
        if self._running is not None:
            self.run(self._running.stop(1.0))
            self._running = None
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> ConfiguredServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Tokens:
    """Fresh random tokens for (namespace, role) pairs, and the tokens file holding their
    hashes."""

    def __init__(self, path: Path, grants: Sequence[tuple[str, Role]]) -> None:
        self.path = path
        self.by_grant: dict[tuple[str, Role], str] = {g: new_token() for g in grants}
        self.write()

    def __getitem__(self, grant: tuple[str, Role]) -> str:
        return self.by_grant[grant]

    def line(self, grant: tuple[str, Role]) -> str:
        namespace, role = grant
        label = f"{namespace}-{role.value}"
        return f"{hash_token(self.by_grant[grant])}  {namespace}  {role.value}  {label}"

    def write(self) -> None:
        lines = ["# test tokens: hash namespace role label"]
        lines += [self.line(g) for g in self.by_grant]
        self.path.write_text("\n".join(lines) + "\n")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries ``token``."""
    return (("authorization", f"Bearer {token}"),)


def stub(channel: grpc.Channel) -> tuning_service_pb2_grpc.TuningServiceStub:
    return tuning_service_pb2_grpc.TuningServiceStub(channel)
