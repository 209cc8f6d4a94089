"""Server fixtures, imported by ``conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from hyperdial.v1 import tuning_service_pb2_grpc
from hyperdial_server.server import ServerConfig
from tests.server_harness import InProcessServer


@pytest.fixture(scope="session")
def server_target() -> Iterator[str]:
    """A real server on the embedded memory store, shared by the session."""
    with InProcessServer() as server:
        yield server.target


@pytest.fixture(scope="session")
def redis_server_target(redis_url: str) -> Iterator[str]:
    """A real server on the session's real Redis.

    It does not sweep leases: the store tests share this Redis and run on made-up clocks, whose
    leases a sweep on the real clock would expire under them (the lease index is global).
    """
    with InProcessServer(ServerConfig(redis_url=redis_url, lease_sweep_interval=0)) as server:
        yield server.target


@pytest.fixture(params=["memory", "redis"])
def target(request: pytest.FixtureRequest) -> str:
    """The target of a real server, once per store."""
    name = "server_target" if request.param == "memory" else "redis_server_target"
    return str(request.getfixturevalue(name))


@pytest.fixture
def stub(target: str) -> Iterator[tuning_service_pb2_grpc.TuningServiceStub]:
    """A raw generated stub (what a Go or Java user has) on a real server, once per store."""
    with grpc.insecure_channel(target) as channel:
        yield tuning_service_pb2_grpc.TuningServiceStub(channel)
