"""The asyncio client against a real server, on the memory store and on Redis."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest

import hyperdial as hd
from hyperdial.aio import AsyncClient, AsyncStudy, AsyncTrial
from tests.client._support import CuttingProxy, RetryLog, new_id

T = TypeVar("T")
SPACE = [
    hd.Float("lr", 1e-4, 1e-1, log=True),
    hd.Int("layers", 1, 4),
    hd.Categorical("optimizer", ["sgd", "adam"]),
    hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),
]


def run(target: str, body: Callable[[AsyncClient], Awaitable[T]], **kwargs: Any) -> T:
    """Runs ``body`` with a fresh client on a fresh event loop."""

    async def main() -> T:
        async with AsyncClient(target, **kwargs) as client:
            return await body(client)

    return asyncio.run(main())


def loss(trial: hd.BaseTrial) -> float:
    return float(trial.params["lr"]) * int(trial.params["layers"])


def test_studies(store_target: str) -> None:
    async def body(client: AsyncClient) -> None:
        study_id = new_id()
        study = await client.create_study(study_id, SPACE, algorithm="random", seed=3)
        assert isinstance(study, AsyncStudy)
        assert repr(study) == f"AsyncStudy('studies/{study_id}')"
        assert study.parameters == SPACE and study.spec.seed == 3
        again = await client.get_study(f"studies/{study_id}")
        assert again.spec == study.spec
        names = [s.name async for s in client.list_studies()]
        assert study.name in names and names == sorted(names)
        await client.delete_study(study)
        with pytest.raises(hd.NotFoundError) as info:
            await client.get_study(study_id)
        assert info.value.reason == "STUDY_NOT_FOUND"  # read from grpc.aio's trailers
        with pytest.raises(hd.AlreadyExistsError) as exists:
            await client.create_study("dup-" + study_id, SPACE)
            await client.create_study("dup-" + study_id, SPACE)
        assert exists.value.reason == "STUDY_ALREADY_EXISTS"
        with pytest.raises(hd.InvalidArgumentError) as invalid:
            await client.create_study(new_id(), [hd.Float("x", 1.0, 0.0)])
        assert invalid.value.metadata["field"].startswith("spec.parameters[0]")

    run(store_target, body)


def test_ask_tell_and_trials(store_target: str) -> None:
    async def body(client: AsyncClient) -> None:
        study = await client.create_study(new_id(), SPACE, algorithm="random")
        first, second, third = await study.ask(3, client_id="w")
        assert isinstance(first, AsyncTrial) and first.state == "RUNNING"
        done = await study.tell(first, 1.5, metadata={"k": "v"})
        assert done.state == "COMPLETED" and done.value == 1.5 and done.metadata == {"k": "v"}
        assert (await second.report(values={"value": 0.5})).value == 0.5
        failed = await third.fail("oom")
        assert failed.state == "FAILED" and failed.failure_reason == "oom"
        with pytest.raises(hd.FailedPreconditionError) as info:
            await study.tell(first, 0.0)
        assert info.value.reason == "TRIAL_NOT_RUNNING"

        point = {"lr": 0.01, "layers": 2, "optimizer": "adam"}
        waiting = await study.enqueue(point)
        assert waiting.state == "WAITING"
        added = await study.add_trial(point, 0.1)
        assert added.state == "COMPLETED"
        assert [t.number for t in await study.trials(["COMPLETED"])] == [1, 2, 5]
        assert (await study.get_trial(4)).params == point
        assert (await study.best_trial).value == 0.1
        assert [t.value for t in await study.best_trials] == [0.1]
        assert await study.trials([]) == []

    run(store_target, body)


def test_trial_context(store_target: str) -> None:
    async def body(client: AsyncClient) -> None:
        study = await client.create_study(new_id(), SPACE, algorithm="random")
        async with study.trial(client_id="ctx") as t:
            await t.report(loss(t))
        with pytest.raises(RuntimeError, match="boom"):
            async with study.trial() as t2:
                raise RuntimeError("boom")
        async with study.trial() as t3:
            pass
        trials = {t.number: t for t in await study.trials()}
        assert trials[t.number].state == "COMPLETED" and trials[t.number].client_id == "ctx"
        assert trials[t2.number].failure_reason == "RuntimeError: boom"
        assert trials[t3.number].failure_reason == "no result reported"

    run(store_target, body)


def test_optimize_grid_with_concurrent_tasks(store_target: str) -> None:
    space = [hd.Int("a", 1, 4), hd.Categorical("b", ["x", "y", "z"]), hd.Discrete("c", [1, 2])]
    seen: list[tuple[object, ...]] = []
    started = 0
    all_four: asyncio.Event | None = None

    async def objective(trial: AsyncTrial) -> float:
        nonlocal started, all_four
        if all_four is None:
            all_four = asyncio.Event()
        started += 1
        if started == 4:
            all_four.set()
        if started <= 4:
            # The first four trials run at once, one per worker, or this times out.
            await asyncio.wait_for(all_four.wait(), 60)
        seen.append((trial.params["a"], trial.params["b"], trial.params["c"]))
        return float(trial.params["a"])

    async def body(client: AsyncClient) -> list[AsyncTrial]:
        study = await client.create_study(new_id(), space, algorithm="grid")
        await study.optimize(objective, n_workers=4, client_id="g", show_progress=False)
        await study.optimize(objective, n_workers=4)  # complete: returns at once
        return await study.trials()

    trials = run(store_target, body)
    grid = set(itertools.product(range(1, 5), "xyz", (1.0, 2.0)))
    assert len(seen) == len(grid) == 24 and set(seen) == grid
    assert all(t.state == "COMPLETED" for t in trials)
    assert {t.client_id for t in trials} <= {f"g-{i}" for i in range(4)}


def test_optimize_plain_objectives_catch_and_errors(store_target: str) -> None:
    async def body(client: AsyncClient) -> list[AsyncTrial]:
        study = await client.create_study(new_id(), SPACE, algorithm="random")
        await study.optimize(loss, n_trials=3)  # a plain function

        def odd_fails(trial: AsyncTrial) -> float:
            if trial.number % 2:
                raise ValueError(f"odd {trial.number}")
            return 1.0

        await study.optimize(odd_fails, n_trials=2, catch=(ValueError,))
        with pytest.raises(KeyError, match="stop"):

            async def fails(trial: AsyncTrial) -> float:
                raise KeyError("stop")

            await study.optimize(fails, n_trials=5, n_workers=2)
        with pytest.raises(ValueError):
            await study.optimize(loss, n_workers=0)
        return await study.trials()

    trials = run(store_target, body)
    states = [str(t.state) for t in trials]
    assert states[:5] == ["COMPLETED"] * 3 + ["COMPLETED", "FAILED"]
    assert trials[4].failure_reason == "ValueError: odd 5"
    # Two workers each ran one trial before the first error stopped the run.
    assert states[5:] == ["FAILED", "FAILED"]
    assert {t.failure_reason for t in trials[5:]} == {"KeyError: 'stop'"}


def test_study_complete(store_target: str) -> None:
    async def body(client: AsyncClient) -> None:
        study = await client.create_study(new_id(), SPACE, algorithm="random", max_trials=1)
        await study.ask()
        with pytest.raises(hd.StudyCompleteError) as info:
            await study.ask()
        assert info.value.code == grpc.StatusCode.OUT_OF_RANGE

    run(store_target, body)


def test_unreachable_service_is_retried_then_unavailable(retry_log: RetryLog) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = hd.RetryPolicy(deadline=None, max_attempts=3, initial_backoff=0.01, max_backoff=0.01)

    async def body(client: AsyncClient) -> None:
        with pytest.raises(hd.ServiceUnreachableError) as info:
            await client.get_study("anything")
        # Never reached: the error says so, with the count (see test_first_contact.py).
        assert "no connection in 3 attempts" in info.value.message

    run(f"127.0.0.1:{port}", body, retry=policy)
    assert len(retry_log.records) == 2


def test_a_retried_tell_whose_answer_was_lost_does_not_fail(store_target: str) -> None:
    proxy = CuttingProxy(store_target)
    fast = hd.RetryPolicy(deadline=60, initial_backoff=0.01, max_backoff=0.2)

    async def body(client: AsyncClient) -> AsyncTrial:
        async with AsyncClient(store_target) as direct:
            study = await client.create_study(new_id(), SPACE, algorithm="random")
            (trial,) = await study.ask()
            proxy.hold()
            tell = asyncio.ensure_future(study.tell(trial, 0.75))
            seen = await direct.get_study(study.study_id)
            deadline = time.monotonic() + 60  # only guards a hang
            while (await seen.get_trial(trial.number)).state != "COMPLETED":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            proxy.cut()
            return await tell

    try:
        done = run(proxy.target, body, retry=fast, renew_leases=False)
    finally:
        proxy.close()
    assert done.state == "COMPLETED" and done.value == 0.75
