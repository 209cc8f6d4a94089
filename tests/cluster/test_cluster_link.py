"""Scripts on a Redis Cluster over a pipelined link per primary (``store/_cluster_link.py``):
routing by slot, MOVED after a slot moved, ASK while it moves, and the cost of an ask and a tell
compared with a single server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.store import RedisStore, RequestId, Store
from hyperdial_server.store._cluster_link import ClusterLinks, slot_of
from hyperdial_server.store._keys import LEASE_INDEX, study_keys
from hyperdial_server.testing import claim, commit, complete, fast, make_record
from tests.cluster.redis_cluster import RedisClusterServer
from tests.redis_server import RedisServer
from tests.store.test_redis_store import busy_study


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServer]:
    """A 3-master cluster of this module's own: its tests move slots and reset statistics."""
    with RedisClusterServer(masters=3) as c:
        yield c


def run_on(url: str, body: Callable[[RedisStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = RedisStore.from_url(url)
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def links_of(store: RedisStore) -> ClusterLinks:
    links = store._cluster_links
    assert links is not None
    return links


def evalsha_calls(port: int) -> int:
    with redis.Redis(port=port, decode_responses=True) as c:
        stats = c.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def reset_stats(cluster: RedisClusterServer) -> None:
    for n in cluster.nodes:
        with redis.Redis(port=n.port) as c:
            c.config_resetstat()


def move_slot(cluster: RedisClusterServer, slot: int, to: int, *, finish: bool = True) -> int:
    """Moves ``slot`` to the master at port ``to`` as ``redis-cli --cluster reshard`` does:
    IMPORTING and MIGRATING, then MIGRATE of its keys, then (``finish``) SETSLOT NODE on every
    master. Returns the port of the master it came from."""
    with redis.Redis(port=cluster.nodes[0].port, decode_responses=True) as c:
        source = next(
            int(p[1])
            for start, end, p, *_ in c.execute_command("CLUSTER", "SLOTS")
            if int(start) <= slot <= int(end)
        )
    src, dst = (
        redis.Redis(port=source, decode_responses=True),
        redis.Redis(port=to, decode_responses=True),
    )
    try:
        src_id, dst_id = (
            src.execute_command("CLUSTER", "MYID"),
            dst.execute_command("CLUSTER", "MYID"),
        )
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", *keys)
        if finish:
            hand_over(cluster, slot, to, source)
    finally:
        src.close()
        dst.close()
    return source


def hand_over(cluster: RedisClusterServer, slot: int, to: int, source: int) -> None:
    """``CLUSTER SETSLOT slot NODE`` on every node: the new owner first, then the old one, as
    the Redis Cluster specification says (the new owner bumps its epoch, so gossip of the old
    owner cannot take the slot back)."""
    with redis.Redis(port=to, decode_responses=True) as c:
        dst_id = c.execute_command("CLUSTER", "MYID")
    order = [to, source, *(n.port for n in cluster.nodes if n.port not in (to, source))]
    for port in order:
        with redis.Redis(port=port) as c:
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


def other_master(cluster: RedisClusterServer, port: int) -> int:
    return next(n.port for n in cluster.nodes if n.port != port)


def test_scripts_go_to_the_primary_of_their_study(
    cluster: RedisClusterServer, namespace: str
) -> None:
    async def body(s: RedisStore) -> None:
        homes: dict[int, str] = {}
        for i in range(40):
            study_id = f"s{i}"
            port = cluster.node_serving(study_keys(namespace, study_id).study).port
            if port not in homes:
                homes[port] = study_id
                await s.create_study(namespace, make_record(study_id))
        assert len(homes) == 3
        for study_id in homes.values():  # the script loaded on every node
            await s.get_study(namespace, study_id)
        for port, study_id in homes.items():
            reset_stats(cluster)
            await s.get_study(namespace, study_id)  # one script call
            assert {n.port: evalsha_calls(n.port) for n in cluster.nodes} == {
                n.port: int(n.port == port) for n in cluster.nodes
            }
        # One link per primary, named as the cluster names its nodes.
        assert sorted(links_of(s)._links) == sorted(f"127.0.0.1:{p}" for p in homes)

    run_on(cluster.url, body)


def test_a_study_whose_slot_moved_keeps_working(
    cluster: RedisClusterServer, namespace: str
) -> None:
    async def body(s: RedisStore) -> None:
        rec = await busy_study(s, namespace, "moving")
        study_key = study_keys(namespace, "moving").study
        slot = slot_of(study_key)
        before = await s.get_study(namespace, "moving")
        home = cluster.node_serving(study_key).port
        to = other_master(cluster, home)
        await asyncio.to_thread(move_slot, cluster, slot, to)
        # The store's map still names the old node: its MOVED reply sends the call on.
        assert await s.get_study(namespace, "moving") == before
        assert await links_of(s).node_of(slot) == f"127.0.0.1:{to}"
        c = await claim(s, namespace, rec, 2, client_id="after")
        trials = await commit(s, namespace, rec, c, client_id="after")
        assert trials
        for t in trials:
            await complete(s, namespace, rec, t.number, 0.25, score=0.25)
        completed = before.state_counts.completed + len(trials)
        assert (await s.get_study(namespace, "moving")).state_counts.completed == completed
        # And back, to a store that follows again.
        await asyncio.to_thread(move_slot, cluster, slot, home)
        assert (await s.get_study(namespace, "moving")).state_counts.completed == completed

    run_on(cluster.url, body)


def test_asks_are_followed_while_a_slot_moves(cluster: RedisClusterServer, namespace: str) -> None:
    async def body(s: RedisStore) -> None:
        rec = make_record("mid")
        await s.create_study(namespace, rec)
        study_key = study_keys(namespace, "mid").study
        slot = slot_of(study_key)
        plain = f"hd:{{{namespace}/mid}}:probe"  # a key of the same slot
        links = links_of(s)
        assert (await links.send(slot, [["SET", plain, "v"]])) == ["OK"]
        home = cluster.node_serving(study_key).port
        to = other_master(cluster, home)
        # Keys moved, slot not yet handed over: the old node answers ASK for them.
        await asyncio.to_thread(move_slot, cluster, slot, to, finish=False)
        try:
            assert await links.send(slot, [["GET", plain]]) == ["v"]
            assert await links.node_of(slot) == f"127.0.0.1:{home}"  # ASK moves nothing
            # A script whose keys are not all there yet is refused with TRYAGAIN: retryable.
            try:
                assert (await s.get_study(namespace, "mid")).study_id == "mid"
            except Unavailable as e:
                assert "TRYAGAIN" in str(e) or "TryAgain" in str(e)
        finally:
            await asyncio.to_thread(hand_over, cluster, slot, to, home)
        assert (await s.get_study(namespace, "mid")).study_id == "mid"
        assert await links.send(slot, [["GET", plain]]) == ["v"]

    run_on(cluster.url, body)


# --- cost per call ---------------------------------------------------------------------------


class Counter:
    """Commands run by a set of servers, scripts' inner commands included, through one open
    connection to each (opened once: a connection's own handshake is not counted)."""

    def __init__(self, ports: list[int]) -> None:
        self.admins = [Redis(port=port, decode_responses=True) for port in ports]

    async def reset(self) -> None:
        for admin in self.admins:
            await admin.config_resetstat()

    async def count(self) -> int:
        total = 0
        for admin in self.admins:
            stats: dict[str, Any] = await admin.info("commandstats")
            total += sum(
                int(v["calls"])
                for k, v in stats.items()
                if not k.startswith(("cmdstat_info", "cmdstat_config", "cmdstat_cluster"))
            )
        return total

    async def close(self) -> None:
        for admin in self.admins:
            await admin.aclose()


async def _grown(s: Store, ns: str, rec: StudyRecord, size: int) -> None:
    """``size`` trials, half of them completed."""
    await s.create_study(ns, rec)
    c = await claim(s, ns, rec, size, client_id="w")
    trials = await commit(s, ns, rec, c, client_id="w")
    for t in trials[: size // 2]:
        await complete(s, ns, rec, t.number, float(t.number), score=1.0)


async def _random_ask_and_tell(
    s: RedisStore, ns: str, rec: StudyRecord, counter: Counter
) -> list[int]:
    """Commands of a RANDOM study's one-step ask (reserving its index, then the ask) and of the
    tell of the trial it made, each measured on its own."""
    counts = []
    first = await s.reserve_indices(ns, rec.study_id, rec.uid, 4)  # warm: scripts loaded
    await fast(s, ns, rec, [first], client_id="c", now=2.0)
    await counter.reset()
    await s.reserve_indices(ns, rec.study_id, rec.uid, 4)
    counts.append(await counter.count())
    await counter.reset()
    done = await fast(
        s, ns, rec, [first + 1], client_id="d", now=2.0, request_id=RequestId("a", 3600.0)
    )
    counts.append(await counter.count())
    (t,) = done.trials
    await counter.reset()
    await s.complete_trial(
        ns,
        rec.study_id,
        t.number,
        values={"loss": 0.5, "acc": 0.5},
        failure_reason=None,
        metadata={},
        now=3.0,
        score=0.5,
        request_id=RequestId("t", 3600.0),
    )
    counts.append(await counter.count())
    return counts


@pytest.mark.parametrize("size", [10, 1000])
def test_a_random_ask_and_a_tell_cost_the_same_commands_as_on_a_single_server(
    cluster: RedisClusterServer, namespace: str, size: int
) -> None:
    """Exactly the same: the lease index updates run on the index's node (often another one
    than the study's), but they are the same two ``ZADD``s."""
    counts: dict[str, list[int]] = {}

    async def measure(url: str, ports: list[int], name: str) -> None:
        s = RedisStore.from_url(url)
        counter = Counter(ports)
        try:
            rec = make_record(f"cost{size}")
            await _grown(s, namespace, rec, size)
            counts[name] = await _random_ask_and_tell(s, namespace, rec, counter)
        finally:
            await s.close()
            await counter.close()

    with RedisServer() as single:
        asyncio.run(measure(single.url, [single.port], "single"))
    asyncio.run(measure(cluster.url, [n.port for n in cluster.nodes], "cluster"))
    assert counts["cluster"] == counts["single"], counts
    # A reserve is one script; an ask one script and the two lease index ZADDs.
    assert all(n <= 25 for n in counts["single"]), counts


def test_the_lease_index_is_written_before_and_after_an_ask_on_its_own_node(
    cluster: RedisClusterServer, namespace: str
) -> None:
    """The two ZADDs of an ask go to the node of the lease index, wherever the study lives."""
    index_port = cluster.node_serving(LEASE_INDEX).port

    async def body(s: RedisStore) -> None:
        for i in range(12):
            rec = make_record(f"l{i}")
            await s.create_study(namespace, rec)
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 1)
            await fast(s, namespace, rec, [0], client_id="x")  # scripts loaded, links open
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 1)
            reset_stats(cluster)
            await fast(s, namespace, rec, [1], client_id="y")
            for n in cluster.nodes:
                with redis.Redis(port=n.port, decode_responses=True) as c:
                    zadd = int(c.info("commandstats").get("cmdstat_zadd", {}).get("calls", 0))
                home = cluster.node_serving(study_keys(namespace, rec.study_id).study).port
                # The script's own ZADDs run on the study's node; the index's two on its own.
                if n.port == index_port and n.port != home:
                    assert zadd == 2
                if n.port not in (index_port, home):
                    assert zadd == 0

    run_on(cluster.url, body)
