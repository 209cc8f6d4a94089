"""Fixtures of the client tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["server_target", "redis_server_target"], ids=["memory", "redis"])
def store_target(request: pytest.FixtureRequest) -> str:
    """The target of a real in-process server, once per store."""
    return str(request.getfixturevalue(request.param))
