"""The ``Store`` contract (:mod:`hyperdial_server.testing`), run on every store of hyperdial:
memory, a real Redis and a real Redis Cluster, as an embedder runs it on theirs."""

from __future__ import annotations

import pytest

from hyperdial_server.store import MemoryStore, RedisStore
from hyperdial_server.testing import StoreContract, StoreHarness


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> StoreHarness:
        """One ``MemoryStore`` per test, which every replica shares."""
        return StoreHarness(MemoryStore, shared=True)


class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, redis_url: str) -> StoreHarness:
        """A ``RedisStore`` with its own connection pool per replica, on the session's Redis."""
        return StoreHarness(lambda: RedisStore.from_url(redis_url))


class TestClusterStore(StoreContract):
    @pytest.fixture
    def store(self, redis_cluster_url: str) -> StoreHarness:
        """A ``RedisStore`` per replica on the session's Redis Cluster."""
        return StoreHarness(lambda: RedisStore.from_url(redis_cluster_url))
