"""RESOURCE_EXHAUSTED ``TOO_MANY_REQUESTS`` over real gRPC: a replica with tiny admission
limits sheds concurrent list calls, and the client retries them after the server's
``google.rpc.RetryInfo`` delay."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

import hyperdial as hd
from hyperdial._channel import channel_options
from hyperdial_server.server import ServerConfig
from hyperdial_server.service._admission import AdmissionLimits
from tests.client._support import RetryLog, new_id
from tests.server_harness import InProcessServer

SPACE = [hd.Float("x", 0.0, 1.0)]
TRIALS = 300
THREADS = 8
# One list call at a time, no queue, no wait: any overlap is refused at once, with a RetryInfo
# delay of 0.1 to 0.2 s (the server's floor, jittered).
LIMITS = AdmissionLimits(replica=1, tenant=1, queue=0, wait=0.0)
LEAST_DELAY = 0.1


@pytest.fixture(scope="module")
def shedding() -> Iterator[InProcessServer]:
    """A real server in this process with the tiny admission limits."""
    config = ServerConfig(lease_sweep_interval=0, admission=LIMITS)
    with InProcessServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def study_id(shedding: InProcessServer) -> str:
    """A study with enough trials that a page takes a while to list."""
    with hd.Client(shedding.target) as client:
        study = client.create_study(new_id("shed"), SPACE, algorithm="random")
        for i in range(TRIALS):
            study.add_trial({"x": i / TRIALS}, float(i))
        return study.study_id


class Counter(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the attempts of each method (it sits under the client's retry loop)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        with self._lock:
            method = details.method.rsplit("/", 1)[-1]
            self.calls[method] = self.calls.get(method, 0) + 1
        return continuation(details, request)


def _shed(retry_log: RetryLog) -> list[logging.LogRecord]:
    return [
        r for r in retry_log.records if "RESOURCE_EXHAUSTED/TOO_MANY_REQUESTS" in r.getMessage()
    ]


def test_concurrent_lists_all_succeed_after_waiting_the_servers_delay(
    shedding: InProcessServer, study_id: str, retry_log: RetryLog
) -> None:
    counter = Counter()
    channel = grpc.intercept_channel(
        grpc.insecure_channel(shedding.target, options=channel_options()), counter
    )
    policy = hd.RetryPolicy(deadline=120, initial_backoff=0.01, max_backoff=0.05)
    lists = 0
    with hd.Client(channel=channel, retry=policy, renew_leases=False) as client:
        study = client.get_study(study_id)
        with ThreadPoolExecutor(THREADS) as pool:
            # Rounds of concurrent lists until some were shed (the first round nearly always).
            for _ in range(20):
                results = list(pool.map(lambda _: len(study.trials()), range(THREADS * 3)))
                lists += len(results)
                assert results == [TRIALS] * len(results)  # every list succeeded, in full
                if _shed(retry_log):
                    break
    channel.close()

    shed = _shed(retry_log)
    assert shed, "no list call was shed: the admission limits did not bite"
    # Every attempt is either an answered list or a logged retry: nothing else was retried.
    assert counter.calls["ListTrials"] == lists + len(retry_log.records)
    assert len(shed) == len(retry_log.records)
    for record in shed:
        delay = record.retry_delay  # type: ignore[attr-defined]
        wait = record.retry_wait  # type: ignore[attr-defined]
        # The RetryInfo arrived, and the client waited at least that long (plus jitter).
        assert LEAST_DELAY <= delay < 2 * LEAST_DELAY + 1e-6
        assert wait >= delay
        assert "server asked for" in record.getMessage()


def test_without_retries_the_error_carries_the_retry_delay(
    shedding: InProcessServer, study_id: str
) -> None:
    errors: list[hd.HyperdialError] = []
    with hd.Client(shedding.target, retry=None, renew_leases=False) as client:
        study = client.get_study(study_id)

        def listing(_: int) -> None:
            try:
                study.trials()
            except hd.HyperdialError as e:
                errors.append(e)

        with ThreadPoolExecutor(THREADS) as pool:
            for _ in range(20):
                list(pool.map(listing, range(THREADS * 3)))
                if errors:
                    break
    assert errors, "no list call was shed"
    for error in errors:
        assert isinstance(error, hd.ResourceExhaustedError)
        assert error.reason == "TOO_MANY_REQUESTS"
        assert error.metadata["scope"] in ("namespace", "replica")
        assert error.retry_delay is not None
        assert LEAST_DELAY <= error.retry_delay < 2 * LEAST_DELAY + 1e-6


def test_the_async_client_retries_shed_lists_too(
    shedding: InProcessServer, study_id: str, retry_log: RetryLog
) -> None:
    from hyperdial.aio import AsyncClient

    policy = hd.RetryPolicy(deadline=120, initial_backoff=0.01, max_backoff=0.05)

    async def main() -> list[int]:
        async with AsyncClient(shedding.target, retry=policy, renew_leases=False) as client:
            study = await client.get_study(study_id)
            counts: list[int] = []
            for _ in range(20):
                pages = await asyncio.gather(*(study.trials() for _ in range(THREADS * 3)))
                counts += [len(p) for p in pages]
                if _shed(retry_log):
                    break
            return counts

    counts = asyncio.run(main())
    assert counts and all(c == TRIALS for c in counts)
    assert _shed(retry_log)
    assert all(r.retry_wait >= r.retry_delay >= LEAST_DELAY for r in _shed(retry_log))  # type: ignore[attr-defined]
