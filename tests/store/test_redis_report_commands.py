"""An intermediate report costs Redis the same commands in a study of 10 trials and in one of
5,000: every decision reads only the values it needs (counted, not timed: INFO commandstats on
a Redis of its own, which counts the commands scripts run too)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from hyperdial_server.core.early_stopping import (
    EarlyStopping,
    Hyperband,
    PercentileRule,
    SuccessiveHalving,
    Threshold,
    hyperband_bracket,
)
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Measurement
from hyperdial_server.store import RedisStore
from hyperdial_server.testing import claim, commit, make_record
from tests.counting import commands
from tests.redis_server import RedisServer

MEDIAN = EarlyStopping(PercentileRule(median=True), objective="loss")
HALVING = EarlyStopping(SuccessiveHalving(reduction_factor=3), objective="loss")
HYPERBAND_RULE = Hyperband(max_resource=81)  # brackets' rungs: 1 3 9 27, 3 9 27, 9 27, 27, -
HYPERBAND = EarlyStopping(HYPERBAND_RULE, objective="loss")
THRESHOLD = EarlyStopping(Threshold(threshold=10.0, patience_steps=5), objective="loss")
#: The reports measured, each the first of a trial of its own: (policy, step, loss). Good
#: values continue, bad ones stop: both paths of each rule.
CASES = [
    (HALVING, 2, -1.0),
    (HALVING, 2, 1e9),
    (HYPERBAND, 81, -1.0),
    (HYPERBAND, 81, 1e9),
    (MEDIAN, 2, -1.0),
    (MEDIAN, 2, 1e9),
    (THRESHOLD, 3, 0.5),
    (THRESHOLD, 3, 1e9),
]
#: The two sizes differ by whole cycles of Hyperband's brackets (143 trials), so that trials
#: of the same rank after them fall in the same bracket.
SIZES = {"small": 10, "big": 10 + 143 * 35}
#: RUNNING trials after the population, for the measured reports.
POOL = 20
# Every report of the population at once would only queue; a few hundred keep Redis busy.
BATCH = 500


@pytest.fixture(scope="module")
def own_redis() -> Iterator[str]:
    """A Redis no other test writes to, so that its counts are this test's."""
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


async def _study(s: RedisStore, name: str, size: int) -> StudyRecord:
    """A study of ``size`` trials that all reported the same value (so none stopped, whatever
    the order): every one at step 2 under the median rule (step 2 holds ``size`` values), the
    even ones at step 2 under successive halving (rung 0 holds half), the odd ones at step 81
    under Hyperband (every rung of their bracket); then :data:`POOL` RUNNING trials."""
    rec = make_record(name)
    await s.create_study("ns", rec)
    total = size + POOL
    for first in range(0, total, BATCH):
        c = await claim(s, "ns", rec, min(BATCH, total - first), now=0.0, lease=1e6)
        await commit(s, "ns", rec, c, now=0.0, lease=1e6)
    for es, step, parity in [(MEDIAN, 2, None), (HALVING, 2, 0), (HYPERBAND, 81, 1)]:
        numbers = [n for n in range(1, size + 1) if parity is None or n % 2 == parity]
        for first in range(0, len(numbers), BATCH):
            batch = numbers[first : first + BATCH]
            stops = await asyncio.gather(*(_report(s, rec, n, step, 0.0, es) for n in batch))
            assert not any(stops)
    return rec


async def _report(
    s: RedisStore, rec: StudyRecord, number: int, step: int, loss: float, es: EarlyStopping | None
) -> bool:
    _, decision = await s.add_measurement(
        "ns",
        rec.study_id,
        number,
        Measurement(step, {"loss": loss, "acc": 0.5}),
        policy=es,
        now=1.0,
        lease_timeout=1e6,
    )
    return decision.stop


def _pool(size: int) -> list[int]:
    """The trial of each case, from the pool: Hyperband's in bracket 0 (rungs 1, 3, 9, 27), so
    that its good report crosses four rungs and its bad one stops at the first."""
    pool = range(size + 1, size + POOL + 1)
    zero = iter([n for n in pool if hyperband_bracket(HYPERBAND_RULE, n) == 0])
    rest = iter([n for n in pool if hyperband_bracket(HYPERBAND_RULE, n) != 0])
    return [next(zero) if es is HYPERBAND else next(rest) for es, _, _ in CASES]


def test_commands_per_report_do_not_grow_with_the_study(own_redis: str) -> None:
    client = redis.Redis.from_url(own_redis)

    async def main() -> dict[str, list[tuple[bool, dict[str, int]]]]:
        s = RedisStore.from_url(own_redis)
        costs: dict[str, list[tuple[bool, dict[str, int]]]] = {}
        try:
            for name, size in SIZES.items():
                rec = await _study(s, name, size)
                numbers = _pool(size)
                warm = max(set(range(size + 1, size + POOL + 1)) - set(numbers))
                await _report(s, rec, warm, 1, 0.0, None)  # scripts loaded
                costs[name] = []
                for number, (es, step, loss) in zip(numbers, CASES, strict=True):
                    client.config_resetstat()
                    stopped = await _report(s, rec, number, step, loss, es)
                    costs[name].append((stopped, commands(client)))
        finally:
            await s.close()
        return costs

    costs = asyncio.run(main())
    assert client.hlen("hd:{ns/big}:trials") == SIZES["big"] + POOL
    assert client.zcard("hd:{ns/big}:es_steps") >= SIZES["big"]  # the median's step 2
    assert [stopped for stopped, _ in costs["small"]] == [False, True] * (len(CASES) // 2)
    for case, small, big in zip(CASES, costs["small"], costs["big"], strict=True):
        assert small == big, case
        assert small[1]["cmdstat_evalsha"] == 1, case  # one script call per report
        assert sum(small[1].values()) <= 40, (case, small[1])
    # Each value at a rung or a step is under its trial too ("<n>:r", "<n>@<step>"), and
    # counted: the counts match.
    state = client.hmget("hd:{ns/big}:es_state", ["rungs", "steps"])
    assert state == [
        str(client.zcard("hd:{ns/big}:es_rungs")).encode(),
        str(client.zcard("hd:{ns/big}:es_steps")).encode(),
    ]


async def _running(s: RedisStore, name: str, n: int) -> StudyRecord:
    """A study of ``n`` RUNNING trials."""
    rec = make_record(name)
    await s.create_study("ns", rec)
    c = await claim(s, "ns", rec, n, now=0.0, lease=1e6)
    await commit(s, "ns", rec, c, now=0.0, lease=1e6)
    return rec


#: What the model reads per policy kind: the policy, the reports (trial, step, loss) after
#: which trials 1 to 3 hold one value each and 3 is STOPPED (4 never reports), the field of
#: trial 3 and the count in es_state, and the command that reads every value instead.
OLDER = {
    "rungs": (HALVING, [(1, 2, 0.0), (2, 2, 1.0), (3, 2, 9.0)], "3:r", "rungs", "zrange"),
    "steps": (
        EarlyStopping(PercentileRule(median=True, warmup_steps=2), objective="loss"),
        # The median rule records (and decides) from step 2: 3 stops there.
        [(1, 1, 1.0), (2, 1, 0.9), (1, 2, 0.0), (2, 2, 1.0), (3, 1, 1.5), (3, 2, 9.0)],
        "3@2",
        "steps",
        "zrangebylex",
    ),
}


@pytest.mark.parametrize("kind", list(OLDER))
def test_values_for_the_model_read_the_given_trials_and_all_where_an_older_server_wrote(
    own_redis: str, kind: str
) -> None:
    """The values a policy recorded for the model (at rungs; by step), read for a page of
    trials, cost the page, not the study; a study where an older server recorded values
    without the trial's field (it kept none) is read whole, so that no value goes missing."""
    client = redis.Redis.from_url(own_redis)
    es, reports, field, count, whole_read = OLDER[kind]
    state = f"hd:{{ns/older-{kind}}}:es_state"

    async def main() -> None:
        s = RedisStore.from_url(own_redis)
        read = s.rung_values if kind == "rungs" else s.percentile_values
        try:
            rec = await _running(s, f"older-{kind}", 4)
            for number, step, loss in reports:
                await _report(s, rec, number, step, loss, es)
            whole = await read("ns", rec.study_id, [1, 2, 3, 4])
            assert sorted((v.number, v.value) for v in whole) == [(1, 0.0), (2, 1.0), (3, 9.0)]
            (third,) = [v for v in whole if v.number == 3]
            client.config_resetstat()
            assert await read("ns", rec.study_id, [3]) == [third]
            assert f"cmdstat_{whole_read}" not in commands(client)  # the trial's field alone
            # Trial 3's value as an older server recorded it: in the policy's set only.
            client.hdel(state, field)
            client.hincrby(state, count, -1)
            client.config_resetstat()
            assert await read("ns", rec.study_id, [3]) == [third]
            assert commands(client).get(f"cmdstat_{whole_read}") == 1  # all, then filtered
            again = await read("ns", rec.study_id, [4, 3, 2, 1])
            assert sorted(again, key=lambda v: v.number) == sorted(whole, key=lambda v: v.number)
        finally:
            await s.close()

    asyncio.run(main())
