"""``RedisBase``: the clients of a Redis store, and the one path every command takes.

:class:`._redis.RedisStore` is made of this base and two sets of methods on it, in the way
redis-py splits its commands: :class:`._redis_studies.StudyCommands` (create, read, list and
delete studies) and :class:`._redis_trials.TrialCommands` (hand out trials, take results, renew
and expire leases, read trials). Every command goes through :meth:`RedisBase._do` and every
script through :meth:`RedisBase._eval`: on a single server over the pipelined link
(:mod:`._link`), on a cluster over a pipelined link per primary (:mod:`._cluster_link`); other
commands on a cluster pass the gate that bounds the calls in flight; and any failure of Redis
becomes a typed error (:class:`._errors.RedisErrors`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar, cast

import redis.exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from hyperdial_server import _tracing as tracing
from hyperdial_server.core.limits import DEFAULT_NAMESPACE_SPEC_BYTES, MAX_STUDIES_PER_NAMESPACE
from hyperdial_server.store._base import Store
from hyperdial_server.store._cluster_link import ClusterLinks
from hyperdial_server.store._errors import STORE_FAILURES, RedisErrors, store_error
from hyperdial_server.store._keys import LEASE_INDEX, PREFIX
from hyperdial_server.store._link import PipelinedLink, replies_or_raise
from hyperdial_server.store._redis_connect import cluster_links
from hyperdial_server.store._scripts import SCRIPTS, Arg, Script

_T = TypeVar("_T")


class RedisBase(Store):
    """The clients of a Redis store and how its commands reach Redis; see :mod:`._redis_base`.

    Its arguments are those of :class:`._redis.RedisStore`, which documents them.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        where: str = "Redis",
        hide: Sequence[str] = (),
        max_studies: int = MAX_STUDIES_PER_NAMESPACE,
        link: PipelinedLink | None = None,
        max_spec_bytes: int = DEFAULT_NAMESPACE_SPEC_BYTES,
    ) -> None:
        self.max_studies = max_studies
        self.max_spec_bytes = max_spec_bytes
        self._r = client
        self._link = link
        self._where = where
        #: Maps this store's failed commands to typed errors (credentials scrubbed).
        self.errors = RedisErrors(where, hide)
        # Bounds in-flight calls on a cluster (see ``_redis_connect``); None: the pool waits.
        self._gate: asyncio.Semaphore | None = None
        # Where scripts go on a cluster; closed by ``close``.
        self._cluster_links: ClusterLinks | None = (
            cluster_links(client) if isinstance(client, RedisCluster) else None
        )
        # Written by every health check (see ``ping``); one per store, so replicas never race.
        self._health_key = f"{PREFIX}:health:{random.getrandbits(64):016x}"
        self._scripts: dict[str, AsyncScript] = {
            script.name: client.register_script(script.source()) for script in SCRIPTS
        }

    async def _do(self, call: Awaitable[_T], study_id: str | None = None) -> _T:
        try:
            if self._gate is not None:
                return await self._on_cluster(self._gate, call)
            return await call
        except STORE_FAILURES as exc:
            # ``from None``: the original error is described in the message, scrubbed.
            raise self.errors.failure(exc, study_id) from None

    async def _on_cluster(self, gate: asyncio.Semaphore, call: Awaitable[_T]) -> _T:
        """Runs ``call`` on a Redis Cluster, at most ``max_connections`` at a time."""
        try:
            async with gate:
                try:
                    # Discovers the nodes first, under the client's lock: commands racing
                    # through the cluster client's lazy start-up break its connections.
                    await cast(RedisCluster, self._r).initialize()
                except rx.RedisClusterException as exc:  # no node of the cluster answers
                    raise self.errors.unavailable(exc) from None
                return await call
        finally:
            if isinstance(call, Coroutine):
                call.close()  # a no-op once it ran; else it never starts

    async def _eval(
        self,
        script: Script,
        call: tuple[Sequence[str], Sequence[Arg]],
        lease: tuple[str, float] | None = None,
    ) -> list[Any]:
        """The reply of ``script`` to ``call`` (its KEYS and ARGV, from ``script.call_args``).

        With ``lease`` (lease index member, deadline), the member's score in the lease index is
        lowered to the deadline before and after the script (see ``_index_lease_member``); on a
        single server the three go in one round trip, on a cluster as
        :meth:`._cluster_link.ClusterLinks.eval` says."""
        keys, args = call
        # A span per script call in a traced call; a shared no-op when tracing is off.
        with tracing.redis_script(script.name, len(keys)):
            link = self._link
            if link is None and self._cluster_links is not None:
                return await self._eval_on_cluster(self._cluster_links, script, keys, args, lease)
            if link is None:
                if lease is not None:
                    await self._index_lease_member(*lease)
                reply = await self._do(self._run_script(script, keys, args), _study_of(keys))
                if lease is not None:
                    await self._index_lease_member(*lease)
                return cast(list[Any], reply)
            registered = self._scripts[script.name]
            command: list[str | int] = ["EVALSHA", registered.sha, len(keys), *keys, *args]
            batch = [command]
            if lease is not None:
                deadline = repr(float(lease[1]))
                index: list[str | int] = ["ZADD", LEASE_INDEX, "LT", deadline, lease[0]]
                batch = [index, command, index]
            try:
                replies = await link.execute(*batch)
                if isinstance(replies[len(batch) // 2], rx.NoScriptError):
                    # First call since Redis started (or SCRIPT FLUSH): nothing ran; load it,
                    # run it again.
                    replies_or_raise(await link.execute(["SCRIPT", "LOAD", _text(registered)]))
                    replies = await link.execute(*batch)
                return cast(list[Any], replies_or_raise(replies)[len(batch) // 2])
            except STORE_FAILURES as exc:
                raise self.errors.failure(exc, _study_of(keys)) from None

    async def _eval_on_cluster(
        self,
        links: ClusterLinks,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
        lease: tuple[str, float] | None,
    ) -> list[Any]:
        registered = self._scripts[script.name]
        index: list[str | int] | None = None
        if lease is not None:
            index = ["ZADD", LEASE_INDEX, "LT", repr(float(lease[1])), lease[0]]
        try:
            reply = await links.eval(registered.sha, _text(registered), keys, args, index)
        except STORE_FAILURES as exc:
            raise self.errors.failure(exc, _study_of(keys)) from None
        except rx.RedisClusterException as exc:  # no node of the cluster answers
            raise self.errors.unavailable(exc) from None
        return cast(list[Any], reply)

    async def _run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """EVALSHA, or EVAL where the script is not loaded yet. Not redis-py's ``Script``:
        on a cluster it answers NOSCRIPT with SCRIPT LOAD on every master, so the first call
        of a script after one master died failed for studies on the others as well. EVAL
        goes to the key's node only, and leaves the script in its cache for the next EVALSHA.
        """
        registered = self._scripts[script.name]
        try:
            return await self._r.evalsha(registered.sha, len(keys), *keys, *args)
        except rx.NoScriptError:
            return await self._r.eval(_text(registered), len(keys), *keys, *args)

    async def _script(
        self,
        script: Script,
        call: tuple[Sequence[str], Sequence[Arg]],
        study_id: str,
        number: int | None = None,
        lease: tuple[str, float] | None = None,
    ) -> list[Any]:
        """Like ``_eval``; a reply other than ``{"OK", ...}`` raises its typed error."""
        reply = await self._eval(script, call, lease)
        if reply[0] != "OK":
            detail = reply[1] if len(reply) > 1 else ""
            raise store_error(reply[0], study_id, number, detail)
        return reply

    async def _index_lease_member(self, member: str, deadline: float) -> None:
        """Lowers a study's score in the lease index to ``deadline`` (or adds it).

        The index lives in its own slot, so it cannot change in the script that creates a
        lease. Callers write it before the script (a replica dying after the script leaves the
        lease indexed) and after it (a sweep that moved the entry to a later score in between
        cannot hide the new lease). The score only ever goes down here; the sweep moves it up.
        """
        await self._do(self._r.zadd(LEASE_INDEX, {member: deadline}, lt=True))


def _text(script: AsyncScript) -> str:
    text = script.script
    return text if isinstance(text, str) else bytes(text).decode()


def _study_of(keys: Sequence[str]) -> str | None:
    """The study id in a script's first key (``hd:{namespace/study}:study``), or ``None``."""
    tag = keys[0].partition("{")[2].partition("}")[0] if keys else ""
    _, slash, study_id = tag.partition("/")
    return study_id if slash and study_id else None
