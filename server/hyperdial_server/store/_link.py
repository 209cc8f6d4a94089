"""``PipelinedLink``: the hot path of a replica to one Redis server, one connection shared by
every caller, their commands pipelined on it.

Every ask and tell is a few commands to Redis. Through redis-py's client each command takes a
pooled connection, arms a timeout, and parses its reply in Python: more CPU than the command
costs Redis. A link instead writes the commands of every caller to one connection as they come
(Redis answers in order, so replies are matched to callers by position) and parses replies with
hiredis, which is how multiplexing clients such as Lettuce and ioredis work. The Redis store
sends its script calls (and the lease index updates that go with them) through it on a single
server; the pool serves every other command.

* The connection is made, authenticated and TLS-wrapped by redis-py (the same URL options as
  the pool), then its streams are taken over.
* A command's reply is a value, or an exception *instance* for an error reply, so that a caller
  sending several commands sees every reply; a broken or silent connection fails every caller
  waiting on it with ``ConnectionError`` or ``TimeoutError`` and the next call reconnects.
* Commands sent during one turn of the event loop leave in one write; replies are parsed in
  the protocol's callback, with no task per connection.
* One timer per link checks the oldest unanswered command instead of a timeout per command.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
import redis.exceptions as rx
from redis._parsers.base import BaseParser
from redis.asyncio.connection import AbstractConnection

Command = Sequence[str | int | float | bytes]

# Seconds the reply timer fires after a command is due: ``_check`` compares with ">".
_SLACK = 0.001


def pack(commands: Sequence[Command]) -> bytes:
    """The RESP encoding of ``commands``, one array of bulk strings each (hiredis's encoder:
    str as UTF-8, int in decimal, float as ``repr``, which Redis parses back exactly)."""
    # hiredis's stub types the argument as a 1-tuple; any length is taken.
    packed = [hiredis.pack_command(tuple(command)) for command in commands]  # type: ignore[arg-type]
    return b"".join(packed)


class ReplicaBacklog(rx.TimeoutError):
    """A command waited out the reply timeout behind this replica's own backlog on the link
    while Redis kept answering: the replica is overloaded, not Redis. Only the callers that
    waited too long get it; the connection stays up and their replies are still consumed."""


def _error(reply: rx.ResponseError) -> rx.RedisError:
    """The redis-py exception for an error reply (e.g. ``NoScriptError`` for ``NOSCRIPT``)."""
    return BaseParser.parse_error(str(reply))  # type: ignore[no-any-return,no-untyped-call]


@dataclass
class _Waiter:
    future: asyncio.Future[list[Any]]
    expected: int
    sent: float
    replies: list[Any] = field(default_factory=list)


class _Connection(asyncio.Protocol):
    """One open connection: the callers waiting in order, replies parsed as bytes arrive.

    Commands written during one turn of the event loop leave in one ``send``.
    """

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        transport: asyncio.Transport,
        on_close: Callable[[], None],
    ) -> None:
        # The stream writer warns when collected before its transport closes: keep it as long.
        self._writer = writer
        self.transport = transport
        self.waiting: collections.deque[_Waiter] = collections.deque()
        self.failure: BaseException | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._on_close = on_close
        self._parser = hiredis.Reader(encoding="utf-8", replyError=rx.ResponseError)
        # When Redis last sent anything: tells a silent Redis from a long queue of our own.
        self.last_data = asyncio.get_running_loop().time()
        self._out: list[bytes] = []
        transport.set_protocol(self)

    def send(self, waiter: _Waiter, data: bytes) -> None:
        self.waiting.append(waiter)
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.failure is None:
            self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        self.last_data = asyncio.get_running_loop().time()
        try:
            self._parser.feed(data)
            while (reply := self._parser.gets()) is not False:
                waiter = self.waiting[0]
                waiter.replies.append(
                    _error(reply) if isinstance(reply, rx.ResponseError) else reply
                )
                if len(waiter.replies) == waiter.expected:
                    self.waiting.popleft()
                    if not waiter.future.done():  # its caller may have been cancelled
                        waiter.future.set_result(waiter.replies)
        except (hiredis.ProtocolError, IndexError) as exc:
            # IndexError: a reply nobody asked for; the stream cannot be trusted any more.
            self.fail(rx.ConnectionError(f"unexpected data from Redis ({exc!r})"))

    def eof_received(self) -> bool:
        self.fail(rx.ConnectionError("the Redis server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(rx.ConnectionError(f"the connection to Redis was lost ({exc or 'closed'})"))
        if not self.closed.done():
            self.closed.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """Fails every waiting caller with ``exc`` and closes the connection (idempotent)."""
        if self.failure is not None:
            return
        self.failure = exc
        self._on_close()
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(exc)
        # Nothing sent after a failure can be matched to a caller: drop it, close at once.
        self.transport.abort()


class PipelinedLink:
    """Commands of any number of callers pipelined over one connection to one Redis server.

    Args:
        connect: Makes a redis-py connection object (not yet connected); the link connects it,
            which runs its handshake (TLS, AUTH, SELECT), and then takes over its streams.
        reply_timeout: Seconds the oldest unanswered command may wait before the connection is
            given up as dead (``TimeoutError`` for every caller waiting on it).
    """

    def __init__(self, connect: Callable[[], AbstractConnection], *, reply_timeout: float) -> None:
        self._make = connect
        self._reply_timeout = reply_timeout
        self._conn: _Connection | None = None
        self._opening: asyncio.Future[_Connection] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def execute(self, *commands: Command) -> list[Any]:
        """Sends ``commands`` together and returns their replies, in order.

        An error reply comes back as a ``redis.exceptions.RedisError`` instance in its place.

        Raises:
            redis.exceptions.ConnectionError: Redis cannot be reached or the connection broke
                before every reply came (a command may or may not have run).
            redis.exceptions.TimeoutError: No reply within ``reply_timeout``.
        """
        conn = self._conn
        if conn is None or conn.failure is not None:
            conn = await self._open()
            if conn.failure is not None:  # broke while this caller was waking up
                raise conn.failure
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), len(commands), loop.time())
        conn.send(waiter, pack(commands))
        if self._timer is None:
            # Fires when this command can first be overdue (see ``_due``).
            self._timer = loop.call_at(waiter.sent + self._reply_timeout + _SLACK, self._check)
        return await waiter.future

    async def _open(self) -> _Connection:
        if self._closed:
            raise rx.ConnectionError("the store is closed")
        if self._opening is None:
            # The first caller connects; callers arriving meanwhile wait for the same result.
            self._opening = asyncio.ensure_future(self._connect())
        opening = self._opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _connect(self) -> _Connection:
        raw = self._make()
        # What fails here is redis-py's to report (refused, TLS, AUTH, timeout): a RedisError
        # or OSError, which the store maps to UNAVAILABLE.
        await raw.connect()  # type: ignore[no-untyped-call]
        try:
            writer, transport = _streams(raw)
            conn = _Connection(writer, transport, on_close=lambda: self._forget(conn))
            # The connection is the link's now: redis-py must not close it, nor warn of it.
            raw._reader = raw._writer = None
        except Exception as exc:
            # The socket may still be redis-py's: close it through redis-py, best effort (the
            # error that matters is the one raised below).
            with contextlib.suppress(Exception):
                await raw.disconnect()
            if isinstance(exc, rx.ConnectionError):
                raise
            # Not Redis failing but this link's reliance on redis-py and asyncio internals,
            # e.g. a redis-py release that moved its streams: a connection failure with the
            # reason (UNAVAILABLE from the store, like any unusable connection), never an
            # unexpected exception that would reach the client as INTERNAL.
            raise rx.ConnectionError(
                f"cannot take over the connection of redis-py {redis.__version__} for the "
                f"pipelined link ({type(exc).__name__}: {exc}); hyperdial supports the "
                "redis-py versions its package requires"
            ) from exc
        self._conn = conn
        return conn

    def _forget(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None

    def _check(self) -> None:
        """Gives up a connection whose oldest command has waited too long; re-arms itself."""
        self._timer = None
        conn = self._conn
        if conn is None or not conn.waiting:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - conn.waiting[0].sent > self._reply_timeout:
            if now - max(conn.last_data, conn.waiting[0].sent) > self._reply_timeout:
                conn.fail(rx.TimeoutError(f"no reply from Redis within {self._reply_timeout:g} s"))
                return
            # Redis is answering, just not reached our old commands yet: fail those callers
            # alone; their waiters stay queued so that later replies still match by position.
            backlog = ReplicaBacklog(
                f"this replica's queue to Redis is {len(conn.waiting)} calls deep and a reply "
                f"waited over {self._reply_timeout:g} s behind it while Redis kept answering"
            )
            for waiter in conn.waiting:
                if now - waiter.sent <= self._reply_timeout:
                    break
                if not waiter.future.done():
                    waiter.future.set_exception(backlog)
        self._timer = loop.call_at(self._due(conn) + _SLACK, self._check)

    def _due(self, conn: _Connection) -> float:
        """The loop time at which ``_check`` can next find something overdue: a silent Redis
        (``reply_timeout`` after its last data or the oldest command) or a caller still waiting
        ``reply_timeout`` after it sent. The timer fires then, not a period later, so a caller
        gets its answer within ``reply_timeout`` (plus ``_SLACK``), as documented."""
        first = conn.waiting[0].sent
        silent = max(conn.last_data, first)
        pending = next((w.sent for w in conn.waiting if not w.future.done()), silent)
        return min(silent, pending) + self._reply_timeout

    async def close(self) -> None:
        """Closes the connection; callers still waiting get ``ConnectionError``."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn = self._conn
        if conn is not None:
            conn.fail(rx.ConnectionError("the store is closed"))
            await conn.closed


def _streams(raw: AbstractConnection) -> tuple[asyncio.StreamWriter, asyncio.Transport]:
    """The writer and transport of a connected redis-py connection, checked, not yet taken.

    Raises:
        redis.exceptions.ConnectionError: Redis sent data after the handshake.
        TypeError: The connection does not keep its streams as the redis-py versions this
            link is tested with do (``_reader`` and ``_writer``, asyncio streams).
    """
    reader, writer = getattr(raw, "_reader", None), getattr(raw, "_writer", None)
    if not isinstance(reader, asyncio.StreamReader) or not isinstance(writer, asyncio.StreamWriter):
        raise TypeError("this redis-py version keeps its streams elsewhere")
    transport = writer.transport
    # The StreamReader's private buffer: the only way to see that the handshake left bytes.
    buffered = getattr(reader, "_buffer", None)
    if not isinstance(transport, asyncio.Transport) or not isinstance(buffered, bytearray):
        raise TypeError("this Python's asyncio streams are not as the link expects")
    if buffered:
        raise rx.ConnectionError("unexpected data from Redis after the handshake")
    return writer, transport


def replies_or_raise(replies: Sequence[Any]) -> list[Any]:
    """``replies``, raising the first error reply among them."""
    for reply in replies:
        if isinstance(reply, rx.RedisError):
            raise reply
    return list(replies)


__all__ = ["Command", "PipelinedLink", "ReplicaBacklog", "pack", "replies_or_raise"]
