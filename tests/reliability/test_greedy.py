"""One greedy client must not sink a replica.

A replica (a real ``hyperdial serve`` process on a real Redis) serves a study of 20,000 trials;
a greedy tenant sends hundreds of concurrent legal ``ListTrials(page_size=1000)`` while a polite
tenant asks and tells. Every polite call must succeed; each greedy call either succeeds or is
refused with RESOURCE_EXHAUSTED ``TOO_MANY_REQUESTS`` and a ``RetryInfo``; nothing is blamed on
Redis. The test counts outcomes, never wall-clock: latencies are printed (``pytest -s``) for the
record, not asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.security import Role
from tests.e2e.protocol import float_param, measurement, spec
from tests.security.tokens import Tokens
from tests.server_harness import ServerProcess

#: Trials of the greedy tenant's study, and concurrent list calls per wave.
TRIALS = int(os.environ.get("HYPERDIAL_GREEDY_TRIALS", "20000"))
GREEDY = 600
WAVES = 2
GREEDY_NS, POLITE_NS = "greedy", "polite"

pytestmark = pytest.mark.timeout(600)

_LIST_TRIALS = "/hyperdial.v1.TuningService/ListTrials"


@pytest.fixture(scope="module")
def replica(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Tokens]]:
    """A replica process with tokens of both tenants, its default admission budget."""
    tokens = Tokens(
        tmp_path_factory.mktemp("greedy") / "tokens",
        [(GREEDY_NS, Role.READ_WRITE), (POLITE_NS, Role.READ_WRITE)],
    )
    extra = [
        "--tokens-file", str(Path(tokens.path)),
        "--lease-sweep-interval", "0",
        "--sampler-processes", "0",
        "--no-reflection",
    ]  # fmt: skip
    server = ServerProcess(redis_url, extra)
    try:
        yield server.target, tokens
    finally:
        server.terminate()


def _auth(tokens: Tokens, namespace: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tokens[(namespace, Role.READ_WRITE)]}"),)


def _details(err: grpc.aio.AioRpcError) -> tuple[str, float | None]:
    """(ErrorInfo reason, RetryInfo delay in seconds) of a failed call."""
    reason, delay = "", None
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                delay = retry.retry_delay.ToNanoseconds() / 1e9
    return reason, delay


async def _fill(
    stub: tuning_service_pb2_grpc.TuningServiceStub, md: tuple[tuple[str, str], ...]
) -> None:
    """The greedy tenant's study: TRIALS completed trials, created 200 calls at a time."""
    await stub.CreateStudy(
        ts.CreateStudyRequest(study_id="big", spec=spec(float_param("x", 0.0, 1.0))), metadata=md
    )
    gate = asyncio.Semaphore(200)

    async def one(i: int) -> None:
        async with gate:
            await stub.CreateTrial(
                ts.CreateTrialRequest(
                    parent="studies/big",
                    parameters={"x": study_pb2.ParameterValue(double_value=i / TRIALS)},
                    final_measurement=measurement(loss=float(i)),
                ),
                metadata=md,
            )

    await asyncio.gather(*(one(i) for i in range(TRIALS)))


def _polite(
    target: str, md: tuple[tuple[str, str], ...], stop: threading.Event, minimum: int
) -> tuple[list[float], list[grpc.aio.AioRpcError]]:
    """Asks and tells, from a thread, loop and channel of their own (so that the greedy
    client's work in this process delays them as little as it can), until ``stop`` is set and
    ``minimum`` are done: each pair's seconds, and the errors."""

    async def calls() -> tuple[list[float], list[grpc.aio.AioRpcError]]:
        seconds: list[float] = []
        errors: list[grpc.aio.AioRpcError] = []
        async with grpc.aio.insecure_channel(target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            while not stop.is_set() or len(seconds) < minimum:
                started = time.perf_counter()
                try:
                    got = await stub.SuggestTrials(
                        ts.SuggestTrialsRequest(
                            parent="studies/small", count=1, client_id="polite"
                        ),
                        metadata=md,
                    )
                    await stub.CompleteTrial(
                        ts.CompleteTrialRequest(
                            name=got.trials[0].name, final_measurement=measurement(loss=0.5)
                        ),
                        metadata=md,
                    )
                except grpc.aio.AioRpcError as e:
                    errors.append(e)
                    continue
                seconds.append(time.perf_counter() - started)
        return seconds, errors

    return asyncio.run(calls())


def _figures(seconds: list[float]) -> str:
    cuts = statistics.quantiles(seconds, n=100)
    return f"n={len(seconds)} p50={cuts[49] * 1e3:.1f} ms p99={cuts[98] * 1e3:.1f} ms"


def test_greedy_lists_do_not_sink_the_replica(replica: tuple[str, Tokens]) -> None:
    target, tokens = replica
    greedy_md, polite_md = _auth(tokens, GREEDY_NS), _auth(tokens, POLITE_NS)
    outcomes: Counter[str] = Counter()
    bad: list[str] = []

    async def scenario() -> tuple[list[float], list[float], list[grpc.aio.AioRpcError], float]:
        async with grpc.aio.insecure_channel(target) as ch:
            stub = tuning_service_pb2_grpc.TuningServiceStub(ch)
            await _fill(stub, greedy_md)
            await stub.CreateStudy(
                ts.CreateStudyRequest(study_id="small", spec=spec(float_param("y", 0.0, 1.0))),
                metadata=polite_md,
            )
            # Baseline: the polite tenant alone.
            done = threading.Event()
            done.set()
            alone, alone_errors = await asyncio.to_thread(_polite, target, polite_md, done, 200)
            assert not alone_errors

            # Raw bytes back: the greedy client spends no CPU decoding, the replica all of it.
            list_trials = ch.unary_unary(
                _LIST_TRIALS,
                request_serializer=ts.ListTrialsRequest.SerializeToString,
                response_deserializer=None,
            )
            request = ts.ListTrialsRequest(parent="studies/big", page_size=1000)

            async def greedy_call() -> None:
                try:
                    reply = await list_trials(request, metadata=greedy_md)
                    assert len(reply) > 1000  # a full page (not decoded here)
                    outcomes["OK"] += 1
                except grpc.aio.AioRpcError as e:
                    reason, delay = _details(e)
                    if (
                        e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        and reason == "TOO_MANY_REQUESTS"
                        and delay is not None
                        and delay > 0
                    ):
                        outcomes["TOO_MANY_REQUESTS"] += 1
                    else:
                        bad.append(f"{e.code().name} {reason}: {e.details()}")

            stop = threading.Event()
            busy = asyncio.ensure_future(asyncio.to_thread(_polite, target, polite_md, stop, 100))
            started = time.perf_counter()
            for _ in range(WAVES):
                await asyncio.gather(*(greedy_call() for _ in range(GREEDY)))
            greedy_seconds = time.perf_counter() - started
            stop.set()
            loaded, loaded_errors = await busy
        return alone, loaded, loaded_errors, greedy_seconds

    alone, loaded, loaded_errors, greedy_seconds = asyncio.run(scenario())
    print(
        f"\npolite ask+tell alone: {_figures(alone)}"
        f"\npolite ask+tell beside {GREEDY} concurrent ListTrials x{WAVES}: {_figures(loaded)}"
        f"\ngreedy outcomes {dict(outcomes)} in {greedy_seconds:.1f} s; other: {bad[:3]}"
        f"\npolite errors: {len(loaded_errors)} {[e.details() for e in loaded_errors[:2]]}"
    )
    assert not loaded_errors, [e.details() for e in loaded_errors[:3]]
    assert not bad, bad[:5]
    # Work, not time: the budget shed some of the greedy calls and served the others.
    assert outcomes["OK"] > 0
    assert outcomes["TOO_MANY_REQUESTS"] > 0
    assert outcomes["OK"] + outcomes["TOO_MANY_REQUESTS"] == GREEDY * WAVES
