"""Early stopping through the asyncio client, against real servers on both stores."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

import hyperdial as hd
from hyperdial.aio import AsyncClient, AsyncStudy, AsyncTrial
from tests.client._support import new_id

T = TypeVar("T")
SPACE = [hd.Float("x", 0.0, 1.0)]


def run(target: str, body: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Runs ``body`` with a fresh client on a fresh event loop."""

    async def main() -> T:
        async with AsyncClient(target) as client:
            return await body(client)

    return asyncio.run(main())


async def _study(
    client: AsyncClient,
    policy: hd.EarlyStopping | hd.StoppingRule | None,
    *,
    seed: int | None = None,
    lease_timeout: float | None = None,
) -> AsyncStudy:
    return await client.create_study(
        new_id("aes"),
        SPACE,
        algorithm="random",
        seed=seed,
        lease_timeout=lease_timeout,
        early_stopping=policy,
    )


def test_reports_decisions_and_stopped_trials(store_target: str) -> None:
    async def body(client: AsyncClient) -> None:
        policy = hd.EarlyStopping(hd.MedianStopping(), rank_stopped_trials=True)
        study = await _study(client, policy)
        assert study.early_stopping == hd.EarlyStopping(
            hd.MedianStopping(),
            objective="value",
            max_measurements_per_trial=100,
            rank_stopped_trials=True,
        )
        assert (await client.get_study(study.name)).early_stopping == study.early_stopping
        a, b = await study.ask(2)
        keeper = client._leases
        assert keeper is not None
        go = await a.report(1.0, 1, elapsed=2.5)
        assert not go.should_stop and not a.should_stop and a.last_decision == go
        stop = await b.report({"value": 2.0}, 1)
        assert stop.should_stop and stop.rule == "median" and stop.compared_trials == 1
        assert b.should_stop and keeper.open_trials() == [a.name]
        assert await b.check_stopping() == stop
        assert (await b.stop("late")).stop_decision == stop  # answered as it is

        stored = await study.get_trial(b.number)
        assert stored.state == hd.TrialState.STOPPED and stored.stop_decision == stop
        assert stored.measurements == (hd.Measurement(1, {"value": 2.0}),)
        (basic,) = await study.trials(["STOPPED"])
        assert basic.measurements == () and basic.measurement_count == 1
        (full,) = await study.trials(["STOPPED"], with_measurements=True)
        assert full.measurements == stored.measurements
        assert (await study.get_trial(a.number, with_measurements=False)).measurements == ()
        assert (await study.get_trial(a.number)).measurements[0].elapsed == 2.5

        with pytest.raises(hd.FailedPreconditionError) as info:
            await b.report(0.5, 2)
        assert info.value.reason == "TRIAL_NOT_RUNNING"
        assert (await study.report(a.number, 0.9, 2)).step == 2
        assert (await study.check_stopping(a)).step == 2
        # Ranked by its last report: the stopped trial is worse than a's result.
        await a.report(0.5)
        assert [t.number for t in await study.best_trials] == [a.number]
        stopped = await study.stop_trial((await study.ask())[0], "budget", metadata={"why": "test"})
        assert stopped.state == "STOPPED" and stopped.metadata == {"why": "test"}
        assert keeper.open_trials() == []

    run(store_target, body)


def test_trial_stopped_in_async_with(store_target: str) -> None:
    async def body(client: AsyncClient) -> list[AsyncTrial]:
        study = await _study(client, hd.ThresholdStopping(threshold=0.5))
        async with study.trial() as by_policy:
            if (await by_policy.report(0.9, 0)).should_stop:
                raise hd.TrialStopped()
            raise AssertionError("not reached")
        async with study.trial() as by_worker:
            await by_worker.report(0.1, 3)
            raise hd.TrialStopped("plateau")
        async with study.trial() as early:
            await early.stop()
        async with study.trial() as ignored:
            assert (await ignored.report(0.7, 1)).should_stop
        assert client._leases is not None and client._leases.open_trials() == []
        return await study.trials()

    trials = run(store_target, body)
    assert [str(t.state) for t in trials] == ["STOPPED"] * 4
    rules = [t.stop_decision.rule if t.stop_decision else None for t in trials]
    assert rules == ["threshold", "worker", "worker", "threshold"]
    assert trials[1].stop_decision is not None and trials[1].stop_decision.message == "plateau"
    assert trials[1].value == 0.1 and trials[1].last_step == 3  # from its stop decision
    assert trials[2].values is None and trials[2].measurement_count == 0


def test_optimize_with_a_pruning_policy(store_target: str) -> None:
    async def objective(trial: AsyncTrial) -> float:
        x = float(trial.params["x"])
        for step in range(1, 5):
            await asyncio.sleep(0)
            if (await trial.report(x + 1 / step, step)).should_stop:
                raise hd.TrialStopped()
        return x

    def plain(trial: AsyncTrial) -> float:
        raise hd.TrialStopped("a plain function may stop its trial too")

    async def body(client: AsyncClient) -> list[AsyncTrial]:
        study = await _study(client, hd.ThresholdStopping(threshold=1.2, warmup_steps=2), seed=2)
        await study.optimize(objective, n_trials=16, n_workers=4, show_progress=False)
        await study.optimize(plain, n_trials=2)
        assert client._leases is not None and client._leases.open_trials() == []
        return await study.trials(with_measurements=True)

    trials = run(store_target, body)
    assert len(trials) == 18
    first, last = trials[:16], trials[16:]
    stopped = [t for t in first if t.state == "STOPPED"]
    assert stopped and len(stopped) < 16
    assert all(t.state == "COMPLETED" for t in first if t not in stopped)
    assert all(float(t.params["x"]) > 0.7 and t.last_step == 2 for t in stopped)
    assert all(t.stop_decision and t.stop_decision.rule == "worker" for t in last)


def test_optimize_moves_on_from_a_trial_ended_elsewhere(
    store_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(client: AsyncClient) -> list[str]:
        study = await _study(client, None)

        async def objective(trial: AsyncTrial) -> float:
            await trial.report(0.5, 1)
            if trial.number == 2:  # an operator stops it from another client
                async with AsyncClient(store_target) as other:
                    await (await other.get_study(study.study_id)).stop_trial(trial.number, "op")
            await trial.report(0.4, 2)  # for trial 2: TRIAL_NOT_RUNNING
            return 0.25

        await study.optimize(objective, n_trials=3, show_progress=False)
        assert client._leases is not None and client._leases.open_trials() == []
        return [str(t.state) for t in await study.trials()]

    with caplog.at_level(logging.WARNING, logger="hyperdial"):
        assert run(store_target, body) == ["COMPLETED", "STOPPED", "COMPLETED"]
    assert "ended without this worker (it is stopped)" in caplog.text


def test_reports_renew_the_lease_instead_of_heartbeats(store_target: str) -> None:
    async def body(client: AsyncClient) -> int:
        # A 9 s lease: the keeper would heartbeat every 3 s, so only a 3 s stall between two
        # reports (not a busy machine's hiccup) would make it send one.
        study = await _study(client, None, lease_timeout=9.0)
        async with study.trial() as trial:
            start, step = time.monotonic(), 0
            while time.monotonic() - start < 6.6:  # past two renewal intervals
                step += 1
                await trial.report(0.5, step)
                await asyncio.sleep(0.05)
            await trial.report(0.5)
        assert client._leases is not None
        return client._leases.sent

    assert run(store_target, body) == 0
