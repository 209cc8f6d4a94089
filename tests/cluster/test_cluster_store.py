"""What the Redis store promises on a Redis Cluster, beyond the store contract (which
``tests/store/test_store_contract.py`` runs on the session's cluster too)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio.cluster import RedisCluster

from hyperdial_server.core.errors import NotFound, Unavailable
from hyperdial_server.store import RedisStore, open_store
from hyperdial_server.store._keys import study_index, study_keys
from hyperdial_server.testing import make_record
from tests.cluster.redis_cluster import RedisClusterServer
from tests.store.test_redis_store import busy_study


def run_on(url: str, body: Callable[[RedisStore, RedisCluster], Awaitable[None]]) -> None:
    """Runs ``body(store, admin)`` with a store opened by URL and a plain cluster client."""

    async def main() -> None:
        store = open_store(url)
        assert isinstance(store, RedisStore)
        admin = RedisCluster.from_url(
            url.replace("redis+cluster://", "redis://"), decode_responses=True
        )
        try:
            await admin.initialize()
            await body(store, admin)
        finally:
            await store.close()
            await admin.aclose()

    asyncio.run(main())


async def node_of(admin: RedisCluster, key: str) -> str:
    return str(admin.get_node_from_key(key).name)


def test_every_key_of_a_study_is_in_one_slot(redis_cluster_url: str, namespace: str) -> None:
    async def body(s: RedisStore, admin: RedisCluster) -> None:
        await busy_study(s, namespace, "one")  # trials in every state, a queue, claims, scores
        found = {k async for k in admin.scan_iter(match=f"*{namespace}/one*", count=1000)}
        study = study_keys(namespace, "one").study
        assert study in found and len(found) >= 8
        assert {admin.keyslot(k) for k in found} == {admin.keyslot(study)}

    run_on(redis_cluster_url, body)


def test_list_studies_spans_every_shard(redis_cluster_url: str, namespace: str) -> None:
    async def body(s: RedisStore, admin: RedisCluster) -> None:
        ids = [f"s{i:02d}" for i in range(30)]
        for study_id in ids:
            await s.create_study(namespace, make_record(study_id))
        # The studies live on every master; the index on one of them.
        nodes = {await node_of(admin, study_keys(namespace, i).study) for i in ids}
        assert len(nodes) == 3
        listed: list[str] = []
        after = None
        while True:
            page, more = await s.list_studies(namespace, 7, after)
            listed += [r.study_id for r in page]
            if not more:
                break
            after = page[-1].study_id
        assert listed == ids

    run_on(redis_cluster_url, body)


def test_list_studies_drops_dangling_entries_on_a_cluster(
    redis_cluster_url: str, namespace: str
) -> None:
    async def body(s: RedisStore, admin: RedisCluster) -> None:
        for study_id in ("a", "c", "e"):
            await s.create_study(namespace, make_record(study_id))
        # What a crash between the index update and the study's creation leaves behind.
        index = study_index(namespace)
        await admin.zadd(index, {"b": 0, "d": 0, "f": 0})
        page, more = await s.list_studies(namespace, 10)
        assert [r.study_id for r in page] == ["a", "c", "e"] and not more
        assert await admin.zrange(index, 0, -1) == ["a", "c", "e"]

    run_on(redis_cluster_url, body)


def test_a_cluster_url_with_another_database_is_refused() -> None:
    with pytest.raises(ValueError, match="Redis Cluster") as e:
        open_store("redis+cluster://:hunter2@127.0.0.1:7000/3")
    assert "hunter2" not in str(e.value)


def test_an_unreachable_cluster_is_unavailable_without_its_password() -> None:
    async def main() -> None:
        store = open_store("redis+cluster://:hunter2@127.0.0.1:1")
        try:
            with pytest.raises(Unavailable) as e:
                await store.get_study("ns", "x")
            assert "hunter2" not in str(e.value)
            assert "redis+cluster://127.0.0.1:1" in str(e.value)
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_dead_master_makes_only_its_studies_unavailable(namespace: str) -> None:
    """Studies on other masters keep working; the dead one's answer UNAVAILABLE, then (their
    data was not persisted here) NOT_FOUND once the node is back."""
    with RedisClusterServer(masters=3) as cluster:

        async def body(s: RedisStore, admin: RedisCluster) -> None:
            ids = [f"s{i}" for i in range(12)]
            for study_id in ids:
                await s.create_study(namespace, make_record(study_id))
            victim = cluster.nodes[1]
            home = {i: await node_of(admin, study_keys(namespace, i).study) for i in ids}
            on_victim = {i for i in ids if home[i].endswith(f":{victim.port}")}
            assert on_victim and len(on_victim) < len(ids)
            victim.kill()
            for study_id in ids:
                if study_id in on_victim:
                    with pytest.raises(Unavailable, match=re.escape("retry later")):
                        await s.get_study(namespace, study_id)
                else:
                    assert (await s.get_study(namespace, study_id)).study_id == study_id
            await asyncio.to_thread(cluster.restart, victim)
            with pytest.raises(NotFound):
                await s.get_study(namespace, sorted(on_victim)[0])

        run_on(cluster.url, body)
