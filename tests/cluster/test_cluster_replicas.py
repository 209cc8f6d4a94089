"""The two-replica end-to-end tests of ``tests/e2e/test_replicas.py``, on a Redis Cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_replicas import (
    test_grid_exhausted_by_32_workers_over_two_replicas,
    test_numbers_are_unique_across_replicas,
)
from tests.server_harness import ServerProcess

__all__ = [
    "replicas",
    "test_grid_exhausted_by_32_workers_over_two_replicas",
    "test_numbers_are_unique_across_replicas",
]


@pytest.fixture(scope="module")
def replicas(redis_cluster_url: str) -> Iterator[list[str]]:
    """Two server processes on the session's Redis Cluster (``--redis redis+cluster://...``)."""
    servers = [ServerProcess(redis_cluster_url) for _ in range(2)]
    yield [s.target for s in servers]
    codes = [s.terminate() for s in servers]
    assert codes == [0, 0]  # SIGTERM is a clean, graceful stop
