"""Fixtures shared by every test."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from types import FrameType

# As the server does (hyperdial_server/__main__.py): one BLAS thread, set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

from tests.redis_server import RedisServer  # noqa: E402


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped by SIGTERM (a CI timeout, ``kill``) ends as one stopped by Ctrl-C: the
    fixtures' teardown still kills the processes the tests started, and the exit-time sweep of
    ``tests/process_groups.py`` whatever they left. SIGTERM would end Python without either."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _interrupt)


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


# A real Redis Cluster (three masters), for the cluster runs of the store contract and e2e tests.
from tests.client._support import retry_log  # noqa: E402
from tests.cluster.fixtures import redis_cluster_url  # noqa: E402

# Servers: real gRPC servers on loopback, on the memory store and on Redis.
from tests.fixtures_server import redis_server_target, server_target, stub, target  # noqa: E402

__all__ = [
    "namespace",
    "redis_cluster_url",
    "redis_server_target",
    "retry_log",
    "redis_url",
    "server_target",
    "stub",
    "target",
]
