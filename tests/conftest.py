"""Fixtures shared by every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer

# Redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis: ``$REDIS_URL`` if set, else a redis-server started for the session.

    Tests share it; each isolates its data with its own ``namespace``.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"t-{uuid.uuid4().hex}"


# Servers: real gRPC servers on loopback, on the memory store and on Redis.
from tests.fixtures_server import redis_server_target, server_target, stub, target  # noqa: E402

__all__ = ["namespace", "redis_server_target", "redis_url", "server_target", "stub", "target"]
