"""A call that waited behind the replica's own backlog is not blamed on Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions as rx
from redis.asyncio import BlockingConnectionPool

from hyperdial_server.core.errors import Unavailable
from hyperdial_server.store import RedisStore
from hyperdial_server.store._link import PipelinedLink, ReplicaBacklog
from tests.redis_server import RedisServer

# Keeps Redis busy for ARGV[1] seconds, then answers (a slow command that Redis does answer).
_SLOW_LUA = """
local t = redis.call('TIME')
local stop = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
while true do
  t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1e6 >= stop then return 1 end
end
"""


def test_a_backlog_fails_the_late_callers_alone_and_keeps_the_connection() -> None:
    async def body(url: str) -> None:
        pool = BlockingConnectionPool.from_url(url, decode_responses=True)
        link = PipelinedLink(pool.make_connection, reply_timeout=0.5)
        try:
            assert await link.execute(["PING"]) == ["PONG"]
            # Thirty slow commands queued at once: Redis answers one every 0.05 s, so the first
            # few come back in time and the last wait past the reply timeout behind the others.
            # (Padded past Redis's 16 KiB read: it reads, runs and answers them one by one, as
            # it does a deep queue of real calls, instead of all in one burst.)
            pad = "x" * 20_000
            calls = [
                asyncio.ensure_future(link.execute(["EVAL", _SLOW_LUA, 0, 0.05, pad]))
                for _ in range(30)
            ]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            answered = [o for o in outcomes if o == [1]]
            late = [o for o in outcomes if isinstance(o, BaseException)]
            assert answered and late, outcomes
            assert all(isinstance(o, ReplicaBacklog) for o in late), late
            assert "Redis kept answering" in str(late[0])
            # Only the late ones failed: the order is first answered, then late.
            assert outcomes[: len(answered)] == answered
            # The connection stayed up (no reconnect): its replies still match their callers.
            conn = link._conn
            assert conn is not None and conn.failure is None
            # A call sent now waits behind the rest of the backlog (failing the same way) until
            # Redis has worked through it; then it is answered on that same connection.
            for _ in range(20):
                try:
                    assert await link.execute(["ECHO", "after"]) == ["after"]
                    break
                except ReplicaBacklog:
                    continue
            else:
                pytest.fail("the backlog never drained")
            assert link._conn is conn
        finally:
            await link.close()
            await pool.aclose()

    with RedisServer() as server:
        asyncio.run(body(server.url))


def test_a_silent_redis_is_still_blamed_on_redis() -> None:
    async def body(url: str) -> None:
        pool = BlockingConnectionPool.from_url(url, decode_responses=True)
        link = PipelinedLink(pool.make_connection, reply_timeout=0.3)
        try:
            slow = asyncio.ensure_future(link.execute(["EVAL", _SLOW_LUA, 0, 1.0]))
            with pytest.raises(rx.TimeoutError) as raised:
                await slow
            assert not isinstance(raised.value, ReplicaBacklog)
            assert "no reply from Redis" in str(raised.value)
        finally:
            await link.close()
            await pool.aclose()

    with RedisServer() as server:
        asyncio.run(body(server.url))


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ReplicaBacklog("queue is 500 calls deep"), "REPLICA_OVERLOADED"),
        (rx.ConnectionError("No connection available."), "REPLICA_OVERLOADED"),
        (rx.TimeoutError("no reply from Redis within 10 s"), "STORE_UNAVAILABLE"),
        (rx.ConnectionError("Connection refused"), "STORE_UNAVAILABLE"),
    ],
)
def test_the_store_names_whose_queue_it_was(exc: BaseException, reason: str) -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0")
    error = store.errors.unavailable(exc)
    assert isinstance(error, Unavailable)
    assert error.reason == reason
    if reason == "REPLICA_OVERLOADED":
        assert "this replica is overloaded; retry on another" in error.message
        assert "Redis" not in error.message.split("(")[0]
    else:
        assert "cannot be reached" in error.message
