"""The session's Redis Cluster fixture, imported by ``tests/conftest.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cluster.redis_cluster import RedisClusterServer


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """``redis+cluster://`` URL of a real 3-master Redis Cluster: ``$REDIS_CLUSTER_URL`` if
    set, else one started from the same ``redis-server`` binary for the session.

    Tests share it; each isolates its data with its own ``namespace``.
    """
    url = os.environ.get("REDIS_CLUSTER_URL")
    if url:
        yield url
        return
    cluster = RedisClusterServer(masters=3).start()
    try:
        yield cluster.url
    finally:
        cluster.close()
