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


def test_rung_values_read_the_given_trials_and_every_value_where_an_older_server_wrote(
    own_redis: str,
) -> None:
    """The rung values of a page of trials cost the page, not the study; a study where an
    older server recorded values without the trial's field (it kept none) is read whole, so
    that no value goes missing."""
    client = redis.Redis.from_url(own_redis)

    async def main() -> None:
        s = RedisStore.from_url(own_redis)
        try:
            rec = make_record("older")
            await s.create_study("ns", rec)
            c = await claim(s, "ns", rec, 4, now=0.0, lease=1e6)
            await commit(s, "ns", rec, c, now=0.0, lease=1e6)
            # Trial 1 continues at rung 0 (step 1), 2 and 3 stop there; 4 never reports.
            for number, loss in [(1, 0.0), (2, 1.0), (3, 2.0)]:
                await _report(s, rec, number, 2, loss, HALVING)
            whole = await s.rung_values("ns", rec.study_id, [1, 2, 3, 4])
            assert sorted((v.number, v.rung, v.value) for v in whole) == [
                (1, 0, 0.0),
                (2, 0, 1.0),
                (3, 0, 2.0),
            ]
            (second,) = [v for v in whole if v.number == 2]
            client.config_resetstat()
            assert await s.rung_values("ns", rec.study_id, [2]) == [second]
            assert "cmdstat_zrange" not in commands(client)  # the trial's field alone
            # Trial 2's value as an older server recorded it: in es_rungs only.
            client.hdel("hd:{ns/older}:es_state", "2:r")
            client.hincrby("hd:{ns/older}:es_state", "rungs", -1)
            client.config_resetstat()
            assert await s.rung_values("ns", rec.study_id, [2]) == [second]
            assert commands(client).get("cmdstat_zrange") == 1  # every value, then filtered
            again = await s.rung_values("ns", rec.study_id, [4, 3, 2, 1])
            assert sorted(again, key=lambda v: v.number) == whole
        finally:
            await s.close()

    asyncio.run(main())


def test_percentile_values_read_the_given_trials_and_every_value_where_an_older_server_wrote(
    own_redis: str,
) -> None:
    """The same for the values a percentile rule recorded by step."""
    client = redis.Redis.from_url(own_redis)
    median = EarlyStopping(PercentileRule(median=True, warmup_steps=2), objective="loss")

    async def main() -> None:
        s = RedisStore.from_url(own_redis)
        try:
            rec = make_record("older-median")
            await s.create_study("ns", rec)
            c = await claim(s, "ns", rec, 4, now=0.0, lease=1e6)
            await commit(s, "ns", rec, c, now=0.0, lease=1e6)
            # Trials 1 and 2 report at steps 1 and 2; 3 stops at step 2 (the rule records and
            # decides from step 2); 4 never reports.
            script = [(1, 1, 1.0), (2, 1, 0.9), (1, 2, 0.5), (2, 2, 0.4), (3, 1, 1.5)]
            for number, step, loss in [*script, (3, 2, 9.0)]:
                assert await _report(s, rec, number, step, loss, median) is (loss > 5)
            whole = await s.percentile_values("ns", rec.study_id, [1, 2, 3, 4])
            assert sorted((v.number, v.step, v.value) for v in whole) == [
                (1, 2, 0.5),
                (2, 2, 0.4),
                (3, 2, 9.0),
            ]
            (third,) = [v for v in whole if v.number == 3]
            client.config_resetstat()
            assert await s.percentile_values("ns", rec.study_id, [3]) == [third]
            assert "cmdstat_zrangebylex" not in commands(client)  # the trial's fields alone
            # Trial 2's value at step 2 as an older server recorded it: in es_steps only.
            client.hdel("hd:{ns/older-median}:es_state", "2@2")
            client.hincrby("hd:{ns/older-median}:es_state", "steps", -1)
            client.config_resetstat()
            again = await s.percentile_values("ns", rec.study_id, [4, 3, 2, 1])
            assert sorted(again, key=lambda v: v.number) == sorted(whole, key=lambda v: v.number)
            assert commands(client).get("cmdstat_zrangebylex") == 1  # the step, then filtered
        finally:
            await s.close()

    asyncio.run(main())
