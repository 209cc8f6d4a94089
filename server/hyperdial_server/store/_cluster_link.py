"""``ClusterLinks``: the hot path of a replica to a Redis Cluster, one pipelined link per primary.

On a single server every script call goes over one :class:`._link.PipelinedLink`. On a cluster
the same holds per primary node: a script runs on the node that serves the hash slot of its
study's keys, so this module keeps a slot map (slot -> primary) and a link to each primary, and
sends each script call on the link of its slot's primary. Other commands keep going through
redis-py's cluster client.

* **Topology.** The first map comes from the cluster client's discovery (which knows the seed
  nodes and the URL's options); later ones from ``CLUSTER SLOTS`` asked over the links, in the
  background, after a redirection or a broken connection.
* **Redirections.** A ``MOVED`` or ``ASK`` reply means the command did not run, so sending it
  again is no retry: ``MOVED`` moves the slot in the map at once (and asks for a new map) and
  the batch goes to the named node; ``ASK`` sends ``ASKING`` and the batch to the named node in
  one write, without changing the map. A batch sent again must hold only commands that are safe
  to repeat besides the one that was redirected (see :meth:`ClusterLinks.send`).
* **Failures.** A broken connection fails its callers (the command may have run) and asks for a
  new map, so that the new primary is found after a failover; ``TRYAGAIN`` and ``CLUSTERDOWN``
  come back as error replies, which the store maps to retryable errors. A link to a node that
  left the map is closed once the calls already sent on it had time to be answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions as rx
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.cluster import PRIMARY
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from hyperdial_server.store._link import Command, PipelinedLink, ReplicaBacklog, replies_or_raise

#: Redirections one call follows before it gives up (a slot moving back and forth).
MAX_REDIRECTS = 5
#: Seconds between two topology refreshes at least: errors during a failover ask for one each.
REFRESH_INTERVAL = 0.25
#: Seconds a link to a node that left the slot map stays open for the calls already sent on
#: it: longer than a call may wait for its reply (``_redis_connect.SOCKET_TIMEOUT``).
RETIRE_AFTER = 15.0


def slot_of(key: str) -> int:
    """The hash slot of ``key`` (its hash tag's, when it has one)."""
    return int(key_slot(key.encode()))


class ClusterLinks:
    """A pipelined link per primary of a Redis Cluster, and the slot map that picks one.

    Args:
        cluster: The store's cluster client: its discovery gives the first slot map, and its
            connection options (TLS, credentials) are those of every link.
        make_link: Makes the link to one node from the redis-py node description.
    """

    def __init__(
        self, cluster: RedisCluster, make_link: Callable[[ClusterNode], PipelinedLink]
    ) -> None:
        self._cluster = cluster
        self._make_link = make_link
        # Node name ("host:port") serving each slot; empty until the first map.
        self._slots: list[str] = []
        self._links: dict[str, PipelinedLink] = {}
        # Nodes a refresh may ask: every node of the last map, replicas included.
        self._known: list[tuple[str, int]] = []
        self._loading: asyncio.Future[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self._stale = False
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    # --- sending ---------------------------------------------------------------------------

    async def node_of(self, slot: int) -> str:
        """The name of the primary that serves ``slot`` in the current map.

        Raises:
            redis.exceptions.RedisClusterException: No node of the cluster answers (first map).
        """
        if not self._slots:
            await self._first_map()
        return self._slots[slot]

    async def send(
        self, slot: int, commands: Sequence[Command], node: str | None = None
    ) -> list[Any]:
        """Sends ``commands`` (all for ``slot``) together to the primary of ``slot``, following
        redirections, and returns their replies (error replies as exception instances).

        The batch is sent again whole when a reply redirects: every command in it other than
        the redirected one must be safe to repeat (``ZADD ... LT``, ``SCRIPT LOAD``), as at
        most one may have run.

        Args:
            slot: The hash slot of the keys of every command.
            commands: The commands.
            node: Where to send first (the caller looked it up); default: the slot's primary.

        Raises:
            redis.exceptions.ConnectionError: The node cannot be reached, or the connection
                broke before every reply came (a command may or may not have run).
            redis.exceptions.TimeoutError: No reply in time.
            redis.exceptions.TryAgainError: Still redirected after :data:`MAX_REDIRECTS`
                redirections (nothing ran).
            redis.exceptions.RedisClusterException: No node answers (first map).
        """
        target = node if node is not None else await self.node_of(slot)
        asking = False
        for _ in range(MAX_REDIRECTS):
            batch = [["ASKING"], *commands] if asking else list(commands)
            replies = await self._execute(target, batch)
            if asking:
                replies = replies[1:]
            redirect = next((r for r in replies if _redirected(r)), None)
            if redirect is None:
                if any(isinstance(r, rx.ClusterDownError) for r in replies):
                    self._ask_refresh()
                return replies
            target = _name(redirect.host, redirect.port)
            # (redis-py's MovedError is a kind of AskError: test for MOVED.)
            asking = not isinstance(redirect, rx.MovedError)
            if not asking:
                # The slot is served elsewhere now (a migration or a failover): point the map
                # at the new owner at once, and ask for the whole new map.
                self._slots[redirect.slot_id] = target
                self._ask_refresh()
        # The slot keeps moving (or the nodes disagree while a failover settles): retryable.
        raise rx.TryAgainError(f"slot {slot} was redirected {MAX_REDIRECTS} times ({redirect})")

    async def eval(
        self, sha: str, text: str, keys: Sequence[str], args: Sequence[Any], index: Command | None
    ) -> Any:
        """The reply of a script called by SHA on its keys' primary, loading it where missing.

        With ``index`` (the lease index ``ZADD ... LT``, idempotent), the index is written
        before and after the script, as on a single server. When the index's slot lives on the
        script's node the three go in one batch on one connection, which Redis runs in order:
        as on a single server. Otherwise the index is another node's, and nothing orders two
        connections: the first ``ZADD`` is acknowledged before the script is sent, so a
        replica that dies after the script has left its lease indexed, and one that cannot
        reach the index's node creates no lease at all. (Sending both at once would save a
        round trip but let a script create a lease that no sweep can find.)

        Raises:
            redis.exceptions.RedisError: The first error reply, or a failure of a link.
        """
        slot = slot_of(keys[0])
        command: list[Any] = ["EVALSHA", sha, len(keys), *keys, *args]
        if index is not None:
            index_slot = slot_of(str(index[1]))
            node = await self.node_of(slot)
            if node == await self.node_of(index_slot):
                replies = await self._execute(node, [index, command, index])
                if not _redirected(replies[1]) and not isinstance(replies[1], rx.NoScriptError):
                    if _redirected(replies[0]) or _redirected(replies[2]):
                        # The script ran; the index's slot moved away meanwhile (a rare
                        # migration): write the index where it lives now before answering.
                        replies_or_raise(await self.send(index_slot, [index]))
                        replies = [None, replies[1], None]
                    return replies_or_raise(replies)[1]
                # Redirected or not loaded: nothing ran but the idempotent ZADDs; the general
                # path below sends everything again.
            replies_or_raise(await self.send(index_slot, [index]))
        reply = await self._script(slot, command, text)
        if index is not None:
            replies_or_raise(await self.send(index_slot, [index]))
        return reply

    async def _script(self, slot: int, command: Command, text: str) -> Any:
        (reply,) = await self.send(slot, [command])
        if isinstance(reply, rx.NoScriptError):
            # First call on this node since it started (or a failover to a replica that never
            # ran it): nothing ran. Load it and run it on the same node, in one batch.
            _, reply = await self.send(slot, [["SCRIPT", "LOAD", text], command])
        return replies_or_raise([reply])[0]

    async def _execute(self, name: str, batch: Sequence[Command]) -> list[Any]:
        try:
            return await self._link(name).execute(*batch)
        except (rx.ConnectionError, rx.TimeoutError) as exc:
            if not isinstance(exc, ReplicaBacklog):  # that one is our own queue, not Redis
                self._ask_refresh()  # a failover may be under way: find the new primary
            raise

    def _link(self, name: str) -> PipelinedLink:
        link = self._links.get(name)
        if link is None:
            if self._closed:
                raise rx.ConnectionError("the store is closed")
            host, _, port = name.rpartition(":")
            node = ClusterNode(
                host, int(port), PRIMARY, **self._cluster.nodes_manager.connection_kwargs
            )
            link = self._links[name] = self._make_link(node)
        return link

    # --- topology --------------------------------------------------------------------------

    async def _first_map(self) -> None:
        if self._loading is None:
            # The first caller loads it; callers arriving meanwhile wait for the same result.
            self._loading = asyncio.ensure_future(self._load_from_client())
        loading = self._loading
        try:
            await asyncio.shield(loading)
        finally:
            if loading.done() and self._loading is loading:
                self._loading = None

    async def _load_from_client(self) -> None:
        await self._cluster.initialize()
        cache = self._cluster.nodes_manager.slots_cache
        slots = []
        for slot in range(REDIS_CLUSTER_HASH_SLOTS):
            nodes = cache.get(slot)
            if not nodes:
                raise rx.ClusterDownError(f"the cluster has no node for slot {slot}")
            slots.append(nodes[0].name)
        known = {(n.host, int(n.port)) for nodes in cache.values() for n in nodes}
        if not self._slots:
            self._slots = slots
            self._known = sorted(known)

    def _ask_refresh(self) -> None:
        """Refreshes the slot map in the background (one refresh at a time, spaced out)."""
        self._stale = True
        if self._closed or (self._refresh is not None and not self._refresh.done()):
            return
        self._refresh = asyncio.ensure_future(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._stale and not self._closed:
            wait = self._last_refresh + REFRESH_INTERVAL - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._stale = False
            self._last_refresh = loop.time()
            await self._refresh_once()

    async def _refresh_once(self) -> None:
        """Asks nodes for ``CLUSTER SLOTS`` (primaries first) until one answers with a map
        that covers every slot; keeps the current map when none does."""
        primaries = list(dict.fromkeys(self._slots))
        others = [_name(h, p) for h, p in self._known if _name(h, p) not in primaries]
        for name in [*primaries, *others]:
            try:
                (reply,) = await self._link(name).execute(["CLUSTER", "SLOTS"])
            except (rx.RedisError, OSError):
                continue
            parsed = _parse_slots(reply, name)
            if parsed is None:
                continue
            self._slots, self._known = parsed
            self._close_unused()
            return
        self._stale = True  # nobody answered with a whole map: try again later

    def _close_unused(self) -> None:
        """Retires the links to nodes that serve no slot any more (a failed-over master)."""
        used = set(self._slots)
        for name in [n for n in self._links if n not in used]:
            task = asyncio.ensure_future(self._retire(self._links.pop(name)))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _retire(self, link: PipelinedLink) -> None:
        """Closes ``link`` once the calls already sent on it had their replies: a demoted
        master still answers them (with MOVED, which sends them on), and closing at once
        would fail them with a connection error although nothing ran."""
        try:
            await asyncio.sleep(RETIRE_AFTER)
        finally:
            await link.close()

    async def close(self) -> None:
        """Closes every link; callers still waiting get ``ConnectionError``."""
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh
        links, self._links = list(self._links.values()), {}
        for task in self._closing:
            task.cancel()  # retiring links close now
        await asyncio.gather(*(link.close() for link in links))
        await asyncio.gather(*self._closing, return_exceptions=True)


def _redirected(reply: Any) -> bool:
    return isinstance(reply, rx.AskError)  # MOVED too: redis-py's MovedError is an AskError


def _name(host: str, port: int | str) -> str:
    return f"{host}:{port}"


def _parse_slots(reply: Any, asked: str) -> tuple[list[str], list[tuple[str, int]]] | None:
    """The slot map and every node of a ``CLUSTER SLOTS`` reply; ``None`` unless the reply
    covers every slot. A node announced without a host is on the host that was asked."""
    if not isinstance(reply, list):
        return None
    asked_host = asked.rpartition(":")[0]
    slots: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    known: set[tuple[str, int]] = set()
    for entry in reply:
        start, end, *nodes = entry
        addresses = [(str(n[0]) or asked_host, int(n[1])) for n in nodes]
        if not addresses:
            continue
        known.update(addresses)
        primary = _name(*addresses[0])
        for slot in range(int(start), int(end) + 1):
            slots[slot] = primary
    if any(s is None for s in slots):
        return None
    return [s for s in slots if s is not None], sorted(known)


__all__ = ["MAX_REDIRECTS", "ClusterLinks", "slot_of"]
