"""The consistency check finds what is broken (else the fuzz and fault tests prove nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis

from hyperdial_server.core.study import Algorithm
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import RedisStore, RequestId
from hyperdial_server.store._keys import LEASE_INDEX, study_keys
from tests.reliability.consistency import check_study, study_ids
from tests.store.test_redis_store import busy_study

Breakage = Callable[[redis.Redis, str], object]


BREAKAGES: dict[str, Breakage] = {
    "two states": lambda r, ns: r.zadd(study_keys(ns, "busy").running, {"2": 2}),
    "no state": lambda r, ns: r.zrem(study_keys(ns, "busy").stopped, "3"),
    "lease of a finished trial": lambda r, ns: r.zadd(study_keys(ns, "busy").leases, {"2": 9}),
    "running without lease": lambda r, ns: r.zrem(study_keys(ns, "busy").leases, "1"),
    "bad trial json": lambda r, ns: r.hset(study_keys(ns, "busy").trials, "2", "[{"),
    "queue of a running trial": lambda r, ns: r.rpush(study_keys(ns, "busy").queue, "1"),
    "claim of an untaken index": lambda r, ns: r.zadd(study_keys(ns, "busy").claims, {"99:t": 1}),
    "re-issue of a completed trial": lambda r, ns: r.zadd(study_keys(ns, "busy").reissue, {"2": 2}),
    "owner of a finished trial": lambda r, ns: r.hset(study_keys(ns, "busy").owners, "2", "w"),
    "malformed request record": lambda r, ns: r.hset(study_keys(ns, "busy").requests, "x", "?"),
    "counter behind": lambda r, ns: r.hset(study_keys(ns, "busy").study, "handed_out", "0"),
    "lease index late": lambda r, ns: r.zadd(LEASE_INDEX, {f"{ns}/busy": 1e12}),
    "stray key": lambda r, ns: r.set(f"hd:{{{ns}/busy}}:stray", "1"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_broken_invariant_is_reported(redis_url: str, namespace: str, breakage: str) -> None:
    async def build() -> None:
        store = RedisStore.from_url(redis_url)
        # Not RANDOM, whose indices may be reserved ahead of the count ("counter behind").
        await busy_study(store, namespace, "busy", Algorithm.QUASI_RANDOM)
        failed = Trial(0, TrialState.FAILED, {})
        await store.create_trial(namespace, "busy", failed, request_id=RequestId("import", 60.0))
        await store.close()

    asyncio.run(build())
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert study_ids(r, namespace) == ["busy"]
        assert check_study(r, namespace, "busy") == []
        BREAKAGES[breakage](r, namespace)
        assert check_study(r, namespace, "busy") != []
    finally:
        r.close()
