"""What only the Redis store promises: key layout, cleanup, unavailability, cost per call."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from hyperdial_server.core.early_stopping import EarlyStopping, PercentileRule, SuccessiveHalving
from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.study import Algorithm, StudyRecord
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store import MemoryStore, RedisStore, RequestId, Store, open_store
from hyperdial_server.store._codec import (
    decode_stored_trial,
    decode_study,
    encode_study,
    encode_trial_body,
    encode_trial_patch,
)
from hyperdial_server.store._keys import spec_bytes, study_index, study_keys
from hyperdial_server.testing import claim, commit, complete, enqueue, make_record
from tests.redis_server import RedisServer

_T = TypeVar("_T")


def run_with(url: str, body: Callable[[RedisStore, Redis], Awaitable[None]]) -> None:
    """Runs ``body(store, admin)`` with a RedisStore and a plain client on ``url``."""

    async def main() -> None:
        store = RedisStore.from_url(url)
        admin = Redis.from_url(url, decode_responses=True)
        try:
            await body(store, admin)
        finally:
            await store.close()
            await admin.aclose()

    asyncio.run(main())


async def keys_of(admin: Redis, pattern: str) -> set[str]:
    return {k async for k in admin.scan_iter(match=pattern, count=1000)}


async def busy_study(
    s: Store, ns: str, study_id: str, algorithm: Algorithm = Algorithm.RANDOM
) -> StudyRecord:
    """A study with a key of every kind: trials in every state, a queue, claims, scores,
    leases, a lease-expired trial waiting for re-issue, a client's trials, a request id,
    intermediate reports (a curve, the values of a step and of a rung)."""
    rec = make_record(study_id, algorithm=algorithm)
    await s.create_study(ns, rec)
    c = await claim(s, ns, rec, 3)
    await enqueue(s, ns, rec)  # 1
    await commit(s, ns, rec, c, lease=5.0)  # 2, 3, 4, leases until 6
    for step, rule in [(1, PercentileRule(median=True)), (2, SuccessiveHalving())]:
        await s.add_measurement(
            ns,
            study_id,
            2,
            Measurement(step, {"loss": 0.5}),
            policy=EarlyStopping(rule, objective="loss"),
            now=1.0,
            lease_timeout=5.0,
        )
    await s.complete_trial(
        ns,
        study_id,
        2,
        values={"loss": 0.5, "acc": 0.5},
        failure_reason=None,
        metadata={},
        now=2.0,
        score=0.5,
        request_id=RequestId("tell-2", 3600.0),
    )
    await s.complete_trial(  # STOPPED by its worker
        ns, study_id, 3, values=None, failure_reason=None, stop_reason="x", metadata={}, now=1
    )
    # Trial 1 RUNNING for client w (lease until 600), and an outstanding claim of index 3.
    await claim(s, ns, rec, 2, client_id="w")
    await enqueue(s, ns, rec)  # 5 WAITING
    await s.get_trial(ns, study_id, 4, now=100.0)  # trial 4's lease expires
    infeasible = Trial(0, TrialState.INFEASIBLE, {"lr": 0.9}, failure_reason="diverged")
    await s.create_trial(ns, study_id, infeasible)  # 6 INFEASIBLE, imported
    return rec


# --- key layout ------------------------------------------------------------------------------


def test_every_key_of_a_study_shares_one_hash_tag(redis_url: str, namespace: str) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        await busy_study(s, namespace, "one")
        await busy_study(s, namespace, "two")
        found = await keys_of(admin, f"*{namespace}*")
        # The namespace's keys: its study index and, in the same slot, its spec byte counts.
        of_namespace = {study_index(namespace), *spec_bytes(namespace)}
        assert of_namespace <= found
        per_study = found - of_namespace
        tags = {re.search(r"\{([^}]*)\}", k).group(1) for k in per_study}  # type: ignore[union-attr]
        assert tags == {f"{namespace}/one", f"{namespace}/two"}
        for k in per_study:
            assert k.startswith(f"hd:{{{namespace}/")
        expected = set(study_keys(namespace, "one").all) | set(study_keys(namespace, "two").all)
        # Every key kind exists here (WAITING holds trial 5), and nothing outside the layout.
        assert per_study == expected
        assert await admin.zrange(study_index(namespace), 0, -1) == ["one", "two"]

    run_with(redis_url, body)


def test_delete_leaves_no_key_of_the_study(redis_url: str, namespace: str) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        await busy_study(s, namespace, "gone")
        await busy_study(s, namespace, "kept")
        await s.delete_study(namespace, "gone")
        assert await keys_of(admin, f"*{namespace}/gone*") == set()
        assert len(await keys_of(admin, f"*{namespace}/kept*")) == len(study_keys("n", "s").all)
        assert await admin.zrange(study_index(namespace), 0, -1) == ["kept"]
        await s.delete_study(namespace, "kept")
        assert await keys_of(admin, f"*{namespace}*") == set()

    run_with(redis_url, body)


def test_key_builder_refuses_braces_and_slashes() -> None:
    for bad in ("a{b", "a}b", "a/b", "a b", ""):
        with pytest.raises(ValueError):
            study_keys("ns", bad)
    for bad in ("n{s", "n/s", "n:s"):
        with pytest.raises(ValueError):
            study_keys(bad, "id")
        with pytest.raises(ValueError):
            study_index(bad)


def test_list_studies_skips_and_removes_index_entries_without_a_study(
    redis_url: str, namespace: str
) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        for study_id in ("a", "c", "e"):
            await s.create_study(namespace, make_record(study_id))
        # What a crash between the index update and the study's creation leaves behind.
        index = study_index(namespace)
        await admin.zadd(index, {"b": 0, "d": 0, "f": 0, "g": 0})
        page, more = await s.list_studies(namespace, 2)
        assert [r.study_id for r in page] == ["a", "c"] and more
        page, more = await s.list_studies(namespace, 2, "c")
        assert [r.study_id for r in page] == ["e"] and not more
        assert await admin.zrange(index, 0, -1) == ["a", "c", "e"]

    run_with(redis_url, body)


def test_trials_are_stored_as_layers_python_wrote(redis_url: str, namespace: str) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        queued = Trial(0, TrialState.WAITING, {"x": 0.1}, metadata={"a": "1"})
        await s.create_trial(namespace, rec.study_id, queued)
        await claim(s, namespace, rec, 1, client_id="w")
        await s.complete_trial(
            namespace,
            rec.study_id,
            1,
            values={"loss": 1e-300},
            failure_reason=None,
            metadata={"b": "2"},
            now=3.5,
        )
        text = await admin.hget(study_keys(namespace, rec.study_id).trials, "1")
        assert text is not None
        layers = json.loads(text)
        assert [layer["state"] for layer in layers] == ["WAITING", "RUNNING", "COMPLETED"]
        assert layers[0]["number"] == 1
        assert '"loss":1e-300' in text and '"x":0.1' in text
        assert ", " not in text and '": ' not in text  # compact

    run_with(redis_url, body)


# --- codec -----------------------------------------------------------------------------------


def test_codec_round_trips_exactly() -> None:
    for algorithm in Algorithm:
        rec = make_record("c", max_trials=9, algorithm=algorithm)
        text = encode_study(rec)
        assert decode_study(text) == rec
        assert encode_study(decode_study(text)) == text
        assert ", " not in text and '": ' not in text
    trial = Trial(
        7,
        TrialState.COMPLETED,
        {"f": -0.0, "i": 2**90, "s": "ü", "one": 1.0},
        values={"v": 5e-324},
        client_id="c",
        create_time=0.1,
        complete_time=0.30000000000000004,
        failure_reason="",
        metadata={"k": "v"},
    )

    # Exactly, through the stored form: the body, numbered as the scripts splice it.
    def stored_alone(t: Trial) -> str:
        return '[{"number":7,' + encode_trial_body(t)[1:] + "]"

    assert decode_stored_trial(stored_alone(trial)) == trial
    assert stored_alone(decode_stored_trial(stored_alone(trial))) == stored_alone(trial)
    assert repr(decode_stored_trial(stored_alone(trial)).params) == repr(trial.params)
    # The stored layered form: the base layer, then patches merging metadata.
    body = encode_trial_body(Trial(0, TrialState.WAITING, {"x": 1}, metadata={"a": "1"}))
    stored = (
        "["
        + '{"number":4,'
        + body[1:]
        + ","
        + encode_trial_patch(state=TrialState.RUNNING, client_id="w")
        + ","
        + encode_trial_patch(
            state=TrialState.FAILED, failure_reason="r", complete_time=2.0, metadata={"b": "2"}
        )
        + "]"
    )
    got = decode_stored_trial(stored)
    assert got == Trial(
        4,
        TrialState.FAILED,
        {"x": 1},
        client_id="w",
        complete_time=2.0,
        failure_reason="r",
        metadata={"a": "1", "b": "2"},
    )


def test_every_state_round_trips_through_the_stored_form() -> None:
    for state in TrialState:
        trial = Trial(3, state, {"x": 0.5}, create_time=1.0, failure_reason="why")
        assert decode_stored_trial('[{"number":3,' + encode_trial_body(trial)[1:] + "]") == trial
    # A late infeasible verdict on a lease-expired trial: its reason replaces the expiry's.
    expired = encode_trial_patch(
        state=TrialState.FAILED, complete_time=2.0, failure_reason="lease expired"
    )
    verdict = encode_trial_patch(
        state=TrialState.INFEASIBLE, complete_time=3.0, failure_reason="diverged"
    )
    body = encode_trial_body(Trial(0, TrialState.RUNNING, {"x": 0.5}))
    got = decode_stored_trial(f'[{{"number":3,{body[1:]},{expired},{verdict}]')
    assert got == Trial(
        3, TrialState.INFEASIBLE, {"x": 0.5}, complete_time=3.0, failure_reason="diverged"
    )


# --- open_store ------------------------------------------------------------------------------


def test_stored_trials_leave_defaults_out_and_older_full_texts_still_decode() -> None:
    fresh = Trial(0, TrialState.RUNNING, {"x": 0.5}, create_time=1.25, sampler_index=3)
    body = encode_trial_body(fresh)
    assert body == '{"state":"RUNNING","params":{"x":0.5},"create_time":1.25,"index":3}'
    stored = '[{"number":4,' + body[1:] + "]"
    assert decode_stored_trial(stored) == Trial(
        4, TrialState.RUNNING, {"x": 0.5}, create_time=1.25, sampler_index=3
    )
    # A trial as stored before defaults were left out and indices recorded.
    older = (
        '[{"number":2,"state":"RUNNING","params":{"x":0.5},"values":null,"client_id":"w",'
        '"create_time":1.25,"complete_time":null,"failure_reason":"","metadata":{"a":"1"}},'
        '{"state":"COMPLETED","values":{"loss":0.5},"failure_reason":"","complete_time":2.5}]'
    )
    assert decode_stored_trial(older) == Trial(
        2,
        TrialState.COMPLETED,
        {"x": 0.5},
        {"loss": 0.5},
        client_id="w",
        create_time=1.25,
        complete_time=2.5,
        metadata={"a": "1"},
    )


def test_open_store_picks_the_store_by_url(redis_url: str) -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store(""), MemoryStore)

    async def main() -> None:
        store = open_store(redis_url)
        assert isinstance(store, RedisStore)
        await store.ping()
        await store.close()

    asyncio.run(main())
    for url in ("http://user:hunter2@host/", "memory", "mysql://u:hunter2@h/db"):
        with pytest.raises(ValueError) as e:
            open_store(url)
        assert "hunter2" not in str(e.value)
        assert "redis://" in str(e.value)


# --- unavailability --------------------------------------------------------------------------


def test_a_stopped_server_is_unavailable_and_recovers(namespace: str) -> None:
    with RedisServer() as server:

        async def main() -> None:
            store = RedisStore.from_url(server.url)
            try:
                await store.create_study(namespace, make_record("s"))
                server.stop()
                for call in (
                    store.ping(),
                    store.get_study(namespace, "s"),
                    store.list_studies(namespace, 10),
                    store.create_study(namespace, make_record("t")),
                    claim(store, namespace, make_record("s"), 1),
                ):
                    with pytest.raises(Unavailable) as e:
                        await call
                    assert e.value.reason == "STORE_UNAVAILABLE"
                    assert f"127.0.0.1:{server.port}" in e.value.message
                server.start()  # empty: the test server keeps no data
                await store.ping()
                await store.create_study(namespace, make_record("s"))
                assert (await store.get_study(namespace, "s")).study_id == "s"
            finally:
                await store.close()

        asyncio.run(main())


def test_the_password_never_appears_in_an_error(namespace: str) -> None:
    password = "s3cr3t-Pa55word"
    with RedisServer("--requirepass", password, password=password) as server:

        async def main() -> None:
            assert password in server.url
            store = RedisStore.from_url(server.url)
            wrong = RedisStore.from_url(server.url.replace(password, "wr0ng-Pa55word"))
            try:
                await store.create_study(namespace, make_record("s"))
                with pytest.raises(Unavailable) as e:
                    await wrong.ping()
                for text in (e.value.message, str(e.value), repr(e.value)):
                    assert "wr0ng-Pa55word" not in text and password not in text
                server.kill()
                for call in (store.ping(), store.get_study(namespace, "s")):
                    with pytest.raises(Unavailable) as e:
                        await call
                    for text in (e.value.message, str(e.value), repr(e.value)):
                        assert password not in text
                    assert e.value.__cause__ is None
            finally:
                await store.close()
                await wrong.close()

        asyncio.run(main())


# --- cost per call ---------------------------------------------------------------------------


async def commands(admin: Redis) -> int:
    """Commands the server ran since the last reset, scripts' inner commands included."""
    stats: dict[str, Any] = await admin.info("commandstats")
    return sum(
        int(v["calls"])
        for k, v in stats.items()
        if not k.startswith(("cmdstat_info", "cmdstat_config"))
    )


async def one_ask(
    s: Store, admin: Redis, ns: str, rec: StudyRecord, now: float, tag: str
) -> list[int]:
    """Commands of each step of one worker's loop, each measured on its own: claim, commit,
    heartbeat, complete (with a client id and request ids), and a retried ask and tell."""
    counts = []

    async def measure(step: Awaitable[_T]) -> _T:
        await admin.config_resetstat()
        out = await step
        counts.append(await commands(admin))
        return out

    ask_id = RequestId(f"ask-{tag}", 3600.0, attempt=tag)
    c = await measure(claim(s, ns, rec, 1, now=now, client_id="m", request_id=ask_id))
    (t,) = await measure(commit(s, ns, rec, c, now=now, client_id="m", request_id=ask_id))
    await measure(s.heartbeat_trial(ns, rec.study_id, t.number, now=now, lease_timeout=60.0))
    tell_id = RequestId(f"tell-{tag}", 3600.0)
    for _ in range(2):  # the second time, a retry answered from the record
        await measure(
            s.complete_trial(
                ns,
                rec.study_id,
                t.number,
                values={"loss": 0.5, "acc": 0.5},
                failure_reason=None,
                metadata={},
                now=now,
                score=0.5,
                request_id=tell_id,
            )
        )
    replay = await measure(claim(s, ns, rec, 1, now=now, client_id="m", request_id=ask_id))
    assert replay.replayed and [r.number for r in replay.trials] == [t.number]
    return counts


def test_commands_per_ask_do_not_grow_with_the_study(namespace: str) -> None:
    with RedisServer() as server:

        async def body(s: RedisStore, admin: Redis) -> None:
            sizes = {"small": 10, "big": 5000}
            recs = {}
            for name, size in sizes.items():
                rec = recs[name] = make_record(name)
                await s.create_study(namespace, rec)
                c = await claim(s, namespace, rec, size, client_id="w")
                trials = await commit(s, namespace, rec, c, client_id="w")
                for t in trials[: size // 2]:
                    await complete(s, namespace, rec, t.number, float(t.number), score=1.0)
                for i in range(size // 5):  # request records, and trials in the queue
                    await enqueue(s, namespace, rec)
                    await s.create_trial(
                        namespace,
                        rec.study_id,
                        Trial(0, TrialState.FAILED, {"lr": 0.5}),
                        request_id=RequestId(f"import-{i}", 3600.0),
                    )
            # The asks below take fresh indices: empty the queues first.
            for rec in recs.values():
                while (await claim(s, namespace, rec, 100, capacity=0)).trials:
                    pass
            # Warm up: scripts loaded, connection open.
            await one_ask(s, admin, namespace, recs["small"], 1.0, "warm")
            small = await one_ask(s, admin, namespace, recs["small"], 2.0, "a")
            big = await one_ask(s, admin, namespace, recs["big"], 2.0, "a")
            assert small == big
            # One script call each (the ask also keeps the lease index: one command before
            # the claim and one each side of the commit), and a bounded handful inside it
            # (16, 20, 9, 20, 7, 10 today; each change of a trial costs three, for its
            # revision: HINCRBY, ZADD and HSET of ``touch`` in lua/_lib.lua).
            assert all(n <= 20 for n in small), small

        run_with(server.url, body)
