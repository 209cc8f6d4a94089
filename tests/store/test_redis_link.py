"""The pipelined connection of the Redis store: replies reach the right callers, in every case."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
import redis.exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection

from hyperdial_server.core.errors import Unavailable
from hyperdial_server.store import RedisStore
from hyperdial_server.store._link import PipelinedLink, pack
from hyperdial_server.testing import claim, commit, complete, make_record
from tests.redis_server import RedisServer


def _link(url: str, reply_timeout: float = 10.0) -> PipelinedLink:
    pool = BlockingConnectionPool.from_url(url, decode_responses=True)
    return PipelinedLink(pool.make_connection, reply_timeout=reply_timeout)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


def test_pack_is_resp() -> None:
    assert pack([["SET", "k", 12], ["GET", b"k\r\n", 0.5]]) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n*3\r\n$3\r\nGET\r\n$3\r\nk\r\n\r\n$3\r\n0.5\r\n"
    )


def test_concurrent_callers_get_their_own_replies(redis_url: str, namespace: str) -> None:
    async def body() -> None:
        link = _link(redis_url)
        try:
            # Many callers at once, batches of several sizes, interleaved on one connection.
            async def caller(i: int) -> None:
                await asyncio.sleep(random.random() / 100)
                n = 1 + i % 4
                keys = [f"{namespace}:{i}:{j}" for j in range(n)]
                replies = await link.execute(
                    *[["SET", k, f"v{i}-{j}"] for j, k in enumerate(keys)],
                    *[["GET", k] for k in keys],
                )
                assert replies == ["OK"] * n + [f"v{i}-{j}" for j in range(n)]

            await asyncio.gather(*(caller(i) for i in range(300)))
        finally:
            await link.close()

    run(body)


def test_error_replies_stay_in_their_place(redis_url: str, namespace: str) -> None:
    async def body() -> None:
        link = _link(redis_url)
        try:
            key = f"{namespace}:text"
            replies = await link.execute(
                ["SET", key, "x"], ["INCR", key], ["EVALSHA", "0" * 40, 0], ["GET", key]
            )
            assert replies[0] == "OK" and replies[3] == "x"
            assert type(replies[1]) is rx.ResponseError
            assert isinstance(replies[2], rx.NoScriptError)
            # Nil and nested replies come through as redis-py would give them.
            assert await link.execute(["GET", f"{namespace}:none"]) == [None]
            nested = await link.execute(["EVAL", "return {1, {'a', false}, 'b'}", 0])
            assert nested == [[1, ["a", None], "b"]]
        finally:
            await link.close()

    run(body)


def test_a_cancelled_caller_does_not_shift_the_replies_of_others(
    redis_url: str, namespace: str
) -> None:
    async def body() -> None:
        link = _link(redis_url)
        admin = Redis.from_url(redis_url, decode_responses=True)
        try:
            key = f"{namespace}:k"
            slow = asyncio.ensure_future(link.execute(["EVAL", _BUSY_LUA, 0, 0.2]))
            await asyncio.sleep(0.05)
            blocked = asyncio.ensure_future(link.execute(["SET", key, "1"], ["GET", key]))
            await asyncio.sleep(0.01)
            slow.cancel()
            after = await link.execute(["INCR", key])
            assert await blocked == ["OK", "1"]
            assert after == [2]
            assert await admin.get(key) == "2"
        finally:
            await admin.aclose()
            await link.close()

    run(body)


# Keeps Redis busy for ARGV[1] seconds: other commands wait behind it.
_BUSY_LUA = """
local t = redis.call('TIME')
local stop = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
while true do
  t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1e6 >= stop then break end
end
return 'done'
"""


def test_a_silent_server_times_out_every_waiting_caller_then_the_link_recovers() -> None:
    async def body(url: str) -> None:
        link = _link(url, reply_timeout=0.3)
        try:
            assert await link.execute(["PING"]) == ["PONG"]
            # Scripts cannot be interrupted before lua-time-limit: 1.5 s of silence.
            busy = asyncio.ensure_future(link.execute(["EVAL", _BUSY_LUA, 0, 1.5]))
            await asyncio.sleep(0.05)
            waiting = [asyncio.ensure_future(link.execute(["PING"])) for _ in range(5)]
            for f in [busy, *waiting]:
                with pytest.raises(rx.TimeoutError):
                    await f
            # A fresh connection answers once the script is over (however long it took).
            while True:
                try:
                    assert await link.execute(["PING"]) == ["PONG"]
                    break
                except rx.TimeoutError:
                    continue
        finally:
            await link.close()

    with RedisServer() as server:
        run(lambda: body(server.url))


def test_the_store_survives_a_restart_and_a_script_flush(namespace: str) -> None:
    async def body(server: RedisServer) -> None:
        store = RedisStore.from_url(server.url)
        admin = Redis.from_url(server.url, decode_responses=True)
        try:
            rec = make_record("s")
            await store.create_study(namespace, rec)
            c = await claim(store, namespace, rec, 2, client_id="w")
            (t1, t2) = await commit(store, namespace, rec, c, client_id="w")
            # Scripts forgotten: the next call loads them again, and nothing runs twice.
            await admin.script_flush()
            await complete(store, namespace, rec, t1.number, 1.0, score=1.0)
            # Redis gone: every caller waiting or arriving gets Unavailable, with no secret.
            server.kill()
            for _ in range(2):
                with pytest.raises(Unavailable):
                    await complete(store, namespace, rec, t2.number, 2.0, score=2.0)
            server.start()  # the same port, data from its append-only file
            await complete(store, namespace, rec, t2.number, 2.0, score=2.0)
            trials, _ = await store.list_trials(namespace, rec.study_id, page_size=10)
            assert [t.state.name for t in trials] == ["COMPLETED", "COMPLETED"]
        finally:
            await admin.aclose()
            await store.close()

    with RedisServer("--appendonly", "yes", "--appendfsync", "always") as server:
        run(lambda: body(server))


def test_a_closed_link_refuses_calls(redis_url: str) -> None:
    async def body() -> None:
        link = _link(redis_url)
        assert await link.execute(["PING"]) == ["PONG"]
        await link.close()
        with pytest.raises(rx.ConnectionError):
            await link.execute(["PING"])

    run(body)


def test_a_wrong_password_on_the_hot_path_is_unavailable_without_the_secret(
    namespace: str,
) -> None:
    password = "s3cr3t-Pa55word"

    async def body(server: RedisServer) -> None:
        store = RedisStore.from_url(server.url)
        wrong = RedisStore.from_url(server.url.replace(password, "wr0ng-Pa55word"))
        try:
            rec = make_record("s")
            await store.create_study(namespace, rec)
            with pytest.raises(Unavailable) as e:
                await claim(wrong, namespace, rec, 1)
            assert e.value.reason == "STORE_UNAVAILABLE"
            for text in (e.value.message, str(e.value), repr(e.value)):
                assert "wr0ng-Pa55word" not in text and password not in text
            assert (await claim(store, namespace, rec, 1)).indices == [0]
        finally:
            await store.close()
            await wrong.close()

    with RedisServer("--requirepass", password, password=password) as server:
        run(lambda: body(server))


class _Unusual:
    """A connection object the link cannot take over: a redis-py that keeps its streams under
    other names (``streams=None``), or under the same names but not as asyncio streams."""

    def __init__(self, streams: Any = None) -> None:
        if streams is not None:
            self._reader = self._writer = streams
        self.disconnected = False

    async def connect(self) -> None:
        pass

    async def disconnect(self, nowait: bool = False) -> None:
        self.disconnected = True


@pytest.mark.parametrize("streams", [None, object()], ids=["no-streams", "not-streams"])
def test_a_connection_that_cannot_be_taken_over_is_a_connection_error(streams: Any) -> None:
    made: list[_Unusual] = []

    def connect() -> AbstractConnection:
        made.append(_Unusual(streams))
        return cast(AbstractConnection, made[-1])

    async def body() -> None:
        link = PipelinedLink(connect, reply_timeout=1.0)
        try:
            # A redis ConnectionError (the store's UNAVAILABLE) naming the cause, never an
            # unexpected exception (INTERNAL); every call tries a new connection again.
            for attempt in (1, 2):
                with pytest.raises(rx.ConnectionError, match="redis-py") as e:
                    await link.execute(["PING"])
                assert "keeps its streams elsewhere" in str(e.value)
                assert len(made) == attempt and made[-1].disconnected
        finally:
            await link.close()

    run(body)


def test_a_link_that_cannot_take_over_its_connection_makes_the_store_unavailable(
    redis_url: str, namespace: str
) -> None:
    async def body() -> None:
        store = RedisStore(
            Redis.from_url(redis_url, decode_responses=True),
            link=PipelinedLink(lambda: cast(AbstractConnection, _Unusual()), reply_timeout=1.0),
        )
        try:
            with pytest.raises(Unavailable) as e:
                await store.create_study(namespace, make_record("s"))
            assert e.value.reason == "STORE_UNAVAILABLE"
            assert "redis-py" in e.value.message
        finally:
            await store.close()

    run(body)
