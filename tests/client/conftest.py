"""Fixtures of the client tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.client._support import RetryLog


@pytest.fixture(params=["server_target", "redis_server_target"], ids=["memory", "redis"])
def store_target(request: pytest.FixtureRequest) -> str:
    """The target of a real in-process server, once per store."""
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def retry_log() -> Iterator[RetryLog]:
    """The client's retries, as logged by the ``hyperdial`` logger."""
    handler = RetryLog()
    logger = logging.getLogger("hyperdial")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
