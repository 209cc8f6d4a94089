"""Deleting studies leaves nothing behind in Redis: a key scan of a Redis of its own after
creating and deleting studies with every kind of state (trials in every state, leases, expired
leases and re-issues, claims left uncommitted, client holds, request records, reserved
indices, intermediate reports: curves, the values of steps and rungs, stopped trials)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from hyperdial_server.core.early_stopping import EarlyStopping, PercentileRule, SuccessiveHalving
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store import RedisStore, RequestId, Store
from hyperdial_server.store._keys import study_keys
from hyperdial_server.testing import claim, commit, make_record
from tests.redis_server import RedisServer

STUDIES = 12


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A Redis no other test writes to, so that a scan sees only this test's keys."""
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


async def _busy_study(s: Store, ns: str, i: int) -> None:
    """A study with something in every key a study may have, and in the lease index."""
    rec = make_record(f"s{i:03d}")
    await s.create_study(ns, rec, request_id=RequestId(f"c{i}", 100.0, fingerprint="f"))
    ask = RequestId(f"a{i}", 100.0, attempt="x", fingerprint="f")
    c = await claim(s, ns, rec, 5, now=0.0, lease=10.0, client_id="w", request_id=ask)
    await commit(s, ns, rec, c, now=0.0, lease=10.0, client_id="w", request_id=ask)  # 1-5
    await s.create_trial(ns, rec.study_id, Trial(0, TrialState.WAITING, {"lr": 0.5}))  # 6
    tell = RequestId(f"t{i}", 100.0, fingerprint="f")
    await s.complete_trial(
        ns,
        rec.study_id,
        1,
        values={"loss": 1.0, "acc": 0.5},
        failure_reason=None,
        metadata={},
        now=1.0,
        score=1.0,
        request_id=tell,
    )
    await s.complete_trial(
        ns, rec.study_id, 2, values=None, failure_reason="oom", metadata={}, now=1.0
    )
    # Trials 3-5 expire: 3's point is handed out again (7, held by "v", with a lease), 4's
    # is claimed and left uncommitted, 5's waits in the re-issue queue, 6 in the queue.
    again = await claim(s, ns, rec, 1, now=11.0, lease=600.0, client_id="v")
    await commit(s, ns, rec, again, now=11.0, lease=600.0, client_id="v")
    await claim(s, ns, rec, 1, now=11.0, lease=600.0)
    await s.reserve_indices(ns, rec.study_id, rec.uid, 8)
    # Trial 7 reports under a percentile rule (a step's values), then under successive halving
    # (a rung's), with request ids; its worker stops it (STOPPED).
    for step, rule in [(1, PercentileRule(median=True)), (2, SuccessiveHalving())]:
        await s.add_measurement(
            ns,
            rec.study_id,
            7,
            Measurement(step, {"loss": 0.5, "acc": 0.5}),
            policy=EarlyStopping(rule, objective="loss"),
            now=12.0,
            lease_timeout=600.0,
            request_id=RequestId(f"m{i}-{step}", 100.0, fingerprint="f"),
        )
    await s.complete_trial(
        ns,
        rec.study_id,
        7,
        values=None,
        failure_reason=None,
        stop_reason="enough",
        metadata={},
        now=13.0,
    )
    infeasible = Trial(0, TrialState.INFEASIBLE, {"lr": 0.9}, failure_reason="diverged")
    await s.create_trial(ns, rec.study_id, infeasible)  # 8, imported


def test_deleting_studies_leaves_no_key_behind(own_redis: str) -> None:
    client = redis.Redis.from_url(own_redis, decode_responses=True)

    async def main() -> None:
        s = RedisStore.from_url(own_redis)
        try:
            for i in range(STUDIES):
                await _busy_study(s, "ns", i)
            assert client.zcard("hd:leases") == STUDIES
            assert client.dbsize() > STUDIES * 10
            keys = study_keys("ns", "s000")
            for key in (
                keys.stopped,
                keys.infeasible,
                keys.es_state,
                keys.es_curves,
                keys.es_steps,
                keys.es_rungs,
            ):
                assert client.exists(key), key
            for i in range(STUDIES):
                await s.delete_study("ns", f"s{i:03d}", now=20.0)
        finally:
            await s.close()

    asyncio.run(main())
    left = {key: client.memory_usage(key) for key in client.scan_iter(count=1000)}
    assert left == {}, f"{sum(v or 0 for v in left.values())} bytes left in {sorted(left)}"


def test_a_deletion_with_a_request_id_leaves_only_its_expiring_record(own_redis: str) -> None:
    client = redis.Redis.from_url(own_redis, decode_responses=True)

    async def main() -> None:
        s = RedisStore.from_url(own_redis)
        try:
            await _busy_study(s, "ns", 0)
            await s.delete_study("ns", "s000", request_id=RequestId("d", 60.0), now=20.0)
        finally:
            await s.close()

    asyncio.run(main())
    # The record of the deletion outlives the study on purpose (a retry answers OK), and
    # expires with the request id's time.
    (key,) = client.scan_iter(count=1000)
    assert key == "hd:{ns/s000}:deleted"
    assert 0 < client.pttl(key) <= 60_000
