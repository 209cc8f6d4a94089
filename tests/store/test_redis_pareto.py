"""What only the Redis store promises of Pareto fronts: a study stored before fronts were kept,
or written by an older server during a rolling upgrade, gets an exact front on its next read;
and reading the best trial or the front, or completing a trial, costs Redis the same commands
in a study of 10 trials and in one of 10,000 (INFO commandstats on a Redis of its own, which
counts the commands scripts run too)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from hyperdial.v1 import study_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.core.pareto import front_of
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.service import DEFAULT_NAMESPACE
from hyperdial_server.store import RedisStore
from hyperdial_server.store._keys import study_keys
from hyperdial_server.store._scripts import INSTALL_FRONT
from hyperdial_server.testing import claim, commit, make_record
from tests.counting import commands, quiet_server
from tests.e2e.protocol import float_param, maximize, minimize, spec
from tests.redis_server import RedisServer
from tests.store.test_redis_store import run_with

Vector = tuple[float, ...]
#: Two sizes of study, both with the same front.
SIZES = {"small": 10, "big": 10_000}
#: Trials written at once while a study is filled.
BATCH = 500


@pytest.fixture(scope="module")
def own_redis() -> Iterator[str]:
    """A Redis no other test writes to, so that its counts are this module's."""
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


class Vectors:
    """The front vector given to each trial, and the trials a read asked about (a front
    computed afresh asks about every COMPLETED and STOPPED trial)."""

    def __init__(self) -> None:
        self.given: dict[int, Vector | None] = {}
        self.asked: list[int] = []

    def __call__(self, trial: Trial) -> Vector | None:
        self.asked.append(trial.number)
        return self.given.get(trial.number)

    def front(self) -> list[int]:
        pairs = [(n, v) for n, v in sorted(self.given.items()) if v is not None]
        return [pairs[i][0] for i in front_of([v for _, v in pairs])]


async def _complete(s: RedisStore, rec: StudyRecord, number: int, vector: Vector | None) -> None:
    await s.complete_trial(
        "ns",
        rec.study_id,
        number,
        values={"loss": 1.0, "acc": 0.5},
        failure_reason=None,
        metadata={},
        now=9.0,
        front_vector=vector,
    )


async def _filled(s: RedisStore, n: int, vectors: Vectors, *, running: int = 0) -> StudyRecord:
    """A study whose first ``n`` trials completed with random vectors (ties common), then
    ``running`` RUNNING trials."""
    rng = random.Random(n)
    rec = make_record(f"pf-{n}-{rng.randrange(10**9)}")
    await s.create_study("ns", rec)
    for t in await commit(s, "ns", rec, await claim(s, "ns", rec, n + running)):
        if t.number <= n:
            v = (float(rng.randrange(4)), float(rng.randrange(4)))
            vectors.given[t.number] = v
            await _complete(s, rec, t.number, v)
    return rec


async def _read(s: RedisStore, rec: StudyRecord, vectors: Vectors) -> list[int]:
    return [t.number for t in await s.pareto_front("ns", rec.study_id, vector=vectors)]


def test_a_study_stored_before_fronts_were_kept_gets_one_on_its_first_read(
    own_redis: str,
) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        vectors = Vectors()
        rec = await _filled(s, 30, vectors)
        keys = study_keys("ns", rec.study_id)
        assert await _read(s, rec, vectors) == vectors.front()
        assert vectors.asked == []  # kept as the trials completed
        # As a study stored by an older server: no front, no count.
        await admin.delete(keys.front)
        await admin.hdel(keys.study, "front_seen")
        assert await _read(s, rec, vectors) == vectors.front()
        assert sorted(vectors.asked) == list(range(1, 31))  # computed afresh, once
        stored = await admin.hgetall(keys.front)
        assert (stored["u"], await admin.hget(keys.study, "front_seen")) == (rec.uid, "30")
        assert sorted(int(f) for f in stored if f != "u") == vectors.front()
        vectors.asked.clear()
        assert await _read(s, rec, vectors) == vectors.front()
        assert vectors.asked == []  # put back: exact again

    run_with(own_redis, body)


def test_a_candidate_an_older_server_made_is_found_on_the_next_read(own_redis: str) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        vectors = Vectors()
        rec = await _filled(s, 8, vectors, running=3)
        keys = study_keys("ns", rec.study_id)
        # An older server completes trial 9 without keeping the front: undo what this one
        # did to it.
        vectors.given[9] = (-1.0, -1.0)  # dominates every other
        await _complete(s, rec, 9, vectors.given[9])
        await admin.hdel(keys.front, "9")
        await admin.hincrby(keys.study, "front_seen", -1)
        # Then this server completes trial 10, on a front that lacks 9.
        vectors.given[10] = (3.0, 3.0)
        await _complete(s, rec, 10, vectors.given[10])
        assert await _read(s, rec, vectors) == [9] == vectors.front()
        assert vectors.asked  # found short of a candidate: computed afresh
        vectors.asked.clear()
        vectors.given[11] = (-1.0, -1.0)  # a tie with 9
        await _complete(s, rec, 11, vectors.given[11])
        assert await _read(s, rec, vectors) == [9, 11]
        assert vectors.asked == []

    run_with(own_redis, body)


def test_a_front_left_by_a_deleted_study_is_not_taken_for_the_new_ones(own_redis: str) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        vectors = Vectors()
        old = await _filled(s, 5, vectors)
        keys = study_keys("ns", old.study_id)
        left: dict[Any, Any] = await admin.hgetall(keys.front)
        # An older server deletes the study and creates it again: it knows no front key, so
        # the old study's front stays behind.
        await s.delete_study("ns", old.study_id)
        new = make_record(old.study_id)
        await s.create_study("ns", new)
        await admin.delete(keys.front)
        await admin.hset(keys.front, mapping=left)
        (t,) = await commit(s, "ns", new, await claim(s, "ns", new, 1))
        fresh = Vectors()
        fresh.given[t.number] = (9.0, 9.0)  # dominated by the old study's front
        await _complete(s, new, t.number, fresh.given[t.number])
        assert await _read(s, new, fresh) == [t.number]
        assert fresh.asked == [t.number]
        assert (await admin.hget(keys.front, "u")) == new.uid

    run_with(own_redis, body)


def test_a_stop_after_a_report_of_an_older_server_leaves_the_front_to_be_computed(
    own_redis: str,
) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        vectors = Vectors()
        rec = await _filled(s, 4, vectors, running=1)
        keys = study_keys("ns", rec.study_id)
        vectors.given[5] = (-2.0, -2.0)
        await s.add_measurement(
            "ns",
            rec.study_id,
            5,
            Measurement(1, {"loss": 0.5, "acc": 0.5}),
            policy=None,
            now=1.0,
            lease_timeout=600.0,
            front_vector=vectors.given[5],
        )
        # The report as an older server writes it: eight fields, no front vector.
        line = str(await admin.hget(keys.es_state, "5"))
        await admin.hset(keys.es_state, "5", line.rsplit("|", 1)[0])
        await s.complete_trial(
            "ns",
            rec.study_id,
            5,
            values=None,
            failure_reason=None,
            stop_reason="enough",
            metadata={},
            now=9.0,
        )
        assert await admin.hget(keys.study, "front_seen") == "4"  # short of the stopped one
        assert await _read(s, rec, vectors) == [5]
        assert 5 in vectors.asked

    run_with(own_redis, body)


def test_a_front_computed_afresh_is_put_back_only_if_no_candidate_came_since(
    own_redis: str,
) -> None:
    async def body(s: RedisStore, admin: Redis) -> None:
        vectors = Vectors()
        rec = await _filled(s, 3, vectors)
        keys = study_keys("ns", rec.study_id)
        before = await admin.hgetall(keys.front)
        for uid, seen in ((rec.uid, "2"), ("another", "3")):
            reply = await s._eval(  # noqa: SLF001 - the script itself, under a race
                INSTALL_FRONT,
                INSTALL_FRONT.call_args(keys, uid=uid, seen=seen, members=["1", "9.0,9.0"]),
            )
            assert reply == ["CHANGED"]
            assert await admin.hgetall(keys.front) == before

    run_with(own_redis, body)


# --- counted ---------------------------------------------------------------------------------

#: The front of every counted study (two objectives, lower is better): three trials, and
#: every other trial is dominated by the first.
FRONT = [(0.0, -0.5), (1.0, -0.8), (2.0, -1.0)]


def _vector(number: int) -> Vector:
    return FRONT[number - 1] if number <= len(FRONT) else (10.0 + number, 0.0)


async def _import(
    s: RedisStore, ns: str, study_id: str, n: int, *, pareto: bool, stopped: bool = False
) -> None:
    """Imports ``n`` COMPLETED trials, the vectors (or scores) of :func:`_vector`; with
    ``stopped``, trials 2 and 3 are STOPPED instead."""
    for first in range(1, n + 1, BATCH):
        numbers = range(first, min(first + BATCH, n + 1))
        await asyncio.gather(
            *(
                s.create_trial(
                    ns,
                    study_id,
                    Trial(
                        0,
                        TrialState.STOPPED if stopped and i in (2, 3) else TrialState.COMPLETED,
                        {"x": 0.5},
                        values={"loss": _vector(i)[0], "acc": -_vector(i)[1]},
                        create_time=1.0,
                        complete_time=1.0,
                    ),
                    score=None if pareto or stopped else _vector(i)[0],
                    front_vector=_vector(i) if pareto else None,
                    now=1.0,
                )
                for i in numbers
            )
        )


def test_reading_the_best_trial_and_the_front_costs_the_same_at_10_and_10000(
    own_redis: str,
) -> None:
    client = redis.Redis.from_url(own_redis)
    costs: dict[str, list[dict[str, int]]] = {}

    async def body(s: RedisStore, admin: Redis) -> None:
        for name, size in SIZES.items():
            rec = make_record(f"read-{name}")
            await s.create_study("ns", rec)
            await _import(s, "ns", rec.study_id, size, pareto=True)
            one = make_record(f"read-one-{name}")
            await s.create_study("ns", one)
            await _import(s, "ns", one.study_id, size, pareto=False)
            costs[name] = []
            # Warm up: the scripts loaded.
            await s.best_trial("ns", one.study_id)
            await s.pareto_front("ns", rec.study_id, vector=_no_vector)
            for read in (
                s.best_trial("ns", one.study_id),
                s.pareto_front("ns", rec.study_id, vector=_no_vector),
            ):
                client.config_resetstat()
                got = await read
                costs[name].append(commands(client))
                assert got is not None
                numbers = [got.number] if isinstance(got, Trial) else [t.number for t in got]
                assert numbers == ([1] if isinstance(got, Trial) else [1, 2, 3])

    run_with(own_redis, body)
    assert costs["small"] == costs["big"], costs
    best, front = costs["small"]
    assert best["cmdstat_evalsha"] == front["cmdstat_evalsha"] == 1
    assert best["cmdstat_zrange"] == 1  # the lowest score: O(log n)
    # The study's uid and count, the front's fields, then each trial on it and its revision.
    assert front["cmdstat_hgetall"] == 1 and front["cmdstat_hget"] == 3, front
    print("best_trial:", sum(best.values()), best, "pareto_front:", sum(front.values()), front)


def test_completing_a_trial_costs_the_same_at_10_and_10000(own_redis: str) -> None:
    client = redis.Redis.from_url(own_redis)
    costs: dict[str, list[dict[str, int]]] = {}

    async def body(s: RedisStore, admin: Redis) -> None:
        for name, size in SIZES.items():
            rec = make_record(f"tell-{name}")
            await s.create_study("ns", rec)
            await _import(s, "ns", rec.study_id, size, pareto=True)
            trials = await commit(s, "ns", rec, await claim(s, "ns", rec, 3))
            costs[name] = []
            await s.heartbeat_trial(  # warm up: connection open
                "ns", rec.study_id, trials[0].number, now=2.0, lease_timeout=600.0
            )
            # On no front; dominated; joining the front and dropping a member of it.
            for t, v in zip(trials, [None, (50.0, 50.0), (1.0, -0.9)], strict=True):
                client.config_resetstat()
                await _complete(s, rec, t.number, v)
                costs[name].append(commands(client))
            got = await s.pareto_front("ns", rec.study_id, vector=_no_vector)
            assert [t.number for t in got] == [1, 3, trials[2].number]

    run_with(own_redis, body)
    assert costs["small"] == costs["big"], costs
    for cost in costs["small"]:
        assert cost["cmdstat_evalsha"] == 1, cost
    # Keeping the front costs no command for a trial on none (its count is written with the
    # study's update time), one (HGETALL) for a dominated one, and a write or two for one
    # that joins it.
    none, dominated, joins = (sum(c.values()) for c in costs["small"])
    assert (dominated - none, joins - none) == (1, 3), costs["small"]
    print("complete_trial:", [sum(c.values()) for c in costs["small"]], costs["small"])


def _no_vector(trial: Trial) -> Sequence[float] | None:
    raise AssertionError(f"the front was computed afresh (asked about trial {trial.number})")


# --- ListOptimalTrials, through the real server ---------------------------------------------


@pytest.fixture(scope="module")
def served(own_redis: str) -> Iterator[tuple[redis.Redis, Any]]:
    """A hyperdial server on the module's Redis, without background commands (no lease
    sweep, no periodic health check) that would land in the counts."""
    with quiet_server(own_redis) as both:
        yield both


def test_list_optimal_trials_costs_the_same_at_10_and_10000(
    own_redis: str, served: tuple[redis.Redis, Any]
) -> None:
    client, stub = served
    objectives = {
        "one": [minimize("loss")],
        "two": [minimize("loss"), maximize("acc")],
        # Stopped trials compete too: the front is read the same way.
        "ranked": [minimize("loss"), maximize("acc")],
    }
    for kind, objs in objectives.items():
        for name in SIZES:
            extra: dict[str, Any] = {}
            if kind == "ranked":
                extra["early_stopping"] = study_pb2.EarlyStoppingPolicy(
                    threshold=study_pb2.ThresholdStoppingRule(threshold=1e9),
                    objective="loss",
                    rank_stopped_trials=True,
                )
            stub.CreateStudy(
                ts.CreateStudyRequest(
                    study_id=f"opt-{kind}-{name}",
                    spec=spec(float_param("x", 0.0, 1.0), objectives=objs, **extra),
                )
            )

    async def fill(s: RedisStore, admin: Redis) -> None:
        for kind in objectives:
            for name, size in SIZES.items():
                await _import(
                    s,
                    DEFAULT_NAMESPACE,
                    f"opt-{kind}-{name}",
                    size,
                    pareto=kind != "one",
                    stopped=kind == "ranked",
                )

    run_with(own_redis, fill)
    costs: dict[str, dict[str, dict[str, int]]] = {}
    for kind in objectives:
        costs[kind] = {}
        for name in SIZES:
            request = ts.ListOptimalTrialsRequest(parent=f"studies/opt-{kind}-{name}")
            stub.ListOptimalTrials(request)  # the study's spec cached
            client.config_resetstat()
            got = stub.ListOptimalTrials(request)
            costs[kind][name] = commands(client)
            want = ["1"] if kind == "one" else ["1", "2", "3"]
            assert [t.name.rsplit("/", 1)[1] for t in got.trials] == want
        assert costs[kind]["small"] == costs[kind]["big"], (kind, costs[kind])
        assert costs[kind]["small"]["cmdstat_evalsha"] == 1, costs[kind]
    print("ListOptimalTrials:", {k: sum(c["small"].values()) for k, c in costs.items()}, costs)
