"""A fleet of BAYESIAN studies asking at once on two replicas: throughput, latency, fairness
and memory; next to Optuna's gRPC proxy serving the same shape, scaled down, in one run.

One invocation starts a real ``redis-server``, two replicas (``python -m hyperdial_server
--port 0 --redis URL``, each with its default sampler workers) and Optuna's proxy
(``run_grpc_proxy_server`` over ``JournalRedisBackend``), then:

1. **hd fleet**: ``--studies`` BAYESIAN studies (4 parameters), each holding 50 to 300
   completed trials (imported with ``CreateTrial``) and asked by 1 to 4 workers (seeded). Each
   worker loops ask -> "train" (an exponential think time, so that the fleet offers ``--rate``
   asks per second in all) -> tell, through one channel per client process that balances calls
   over both replicas (``round_robin``), for ``--duration`` seconds.
2. **hd fleet + heavy**: the same, while ``--heavy`` studies (half of 5,000 trials, half of 50
   parameters and 300 trials) each have 4 workers that ask again as soon as they have told
   (no think time): the studies that would fill a first-come queue. Fairness is the small
   studies' p99 here against step 1.
3. **hd scaled** and **optuna scaled**: the fleet scaled down to ``--scaled-studies`` studies
   of the same shape (trials, workers, think time for ``--scaled-rate`` asks per second), on
   hyperdial and on Optuna (``GPSampler`` in the client, as Optuna computes suggestions there;
   a thread per worker, ``--clients`` processes).

Per step: asks done and per second; the serving side's CPU seconds per suggestion (hyperdial:
both replicas with their sampler workers; Optuna: its client processes, where GPSampler runs,
and its proxy) and so suggestions per second per core; p50 and p99 ask latency of the small
studies and of the heavy ones; errors; and the replicas' resident memory (with their workers)
before the first step and after the last.

Run it from the repository root in an environment with the ``bench`` extra::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m bench.fleet              # ~12 min
    python -m bench.fleet --studies 100 --duration 20 --skip-optuna             # a quick look

To measure another checkout of the server side by side (e.g. before a change), put its
packages first on the path: the replicas start with this interpreter and that path::

    PYTHONPATH=/tmp/before/server:/tmp/before/client python -m bench.fleet --skip-optuna

The figures are one run on one machine: clients, replicas, Redis and Optuna share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.bayes_latency import pct
from bench.load import (
    ROUND_ROBIN,
    Proc,
    process_cpu,
    redis_server,
    start_hyperdial,
    start_optuna,
)
from bench.long_study import process_tree

SMALL_DIMS = 4
HEAVY_DIMS = 50
HEAVY_TRIALS = 5000
#: Concurrent CreateTrial calls per importing process.
IMPORT_CONCURRENCY = 64


# --- the fleet's shape --------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One study of the fleet: its id, parameters, trials held at the start, workers and their
    mean think time (seconds; 0: ask again at once)."""

    study_id: str
    dims: int
    trials: int
    workers: int
    think: float
    heavy: bool = False


def fleet(n: int, rate: float, seed: int, prefix: str) -> list[Plan]:
    """``n`` small studies (50 to 300 trials, 1 to 4 workers) offering ``rate`` asks/s."""
    rng = random.Random(seed)
    shapes = [(rng.randint(50, 300), rng.randint(1, 4)) for _ in range(n)]
    workers = sum(w for _, w in shapes)
    think = workers / rate  # each worker asks once per think time, about
    return [
        Plan(f"{prefix}-{i}", SMALL_DIMS, trials, w, think) for i, (trials, w) in enumerate(shapes)
    ]


def heavy(n: int, prefix: str) -> list[Plan]:
    """``n`` heavy studies: half of ``HEAVY_TRIALS`` trials, half of ``HEAVY_DIMS`` parameters."""
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(Plan(f"{prefix}-long-{i}", 6, HEAVY_TRIALS, 4, 0.0, heavy=True))
        else:
            out.append(Plan(f"{prefix}-wide-{i}", HEAVY_DIMS, 300, 4, 0.0, heavy=True))
    return out


def objective(x: dict[str, float]) -> float:
    """A bowl whose minimum is at 0.3 on every coordinate."""
    return sum((v - 0.3) ** 2 for v in x.values())


def history(plan: Plan) -> list[dict[str, float]]:
    """The points of the trials a study holds at the start (seeded by its id)."""
    rng = random.Random(plan.study_id)
    return [{f"x{j}": rng.random() for j in range(plan.dims)} for _ in range(plan.trials)]


def _spec(dims: int) -> Any:
    from hyperdial.v1 import study_pb2 as s

    return s.StudySpec(
        parameters=[
            s.ParameterSpec(name=f"x{j}", float_domain=s.FloatDomain(min=0.0, max=1.0))
            for j in range(dims)
        ],
        objectives=[s.ObjectiveSpec(name="y", goal=s.GOAL_MINIMIZE)],
        algorithm=s.ALGORITHM_BAYESIAN,
    )


# --- hyperdial: setup and clients (client processes, asyncio) ----------------------------------


def _aio_stub(target: str) -> tuple[Any, Any]:
    import grpc

    from hyperdial.v1 import tuning_service_pb2_grpc

    options = [("grpc.service_config", ROUND_ROBIN)] if target.startswith("ipv4:") else []
    channel = grpc.aio.insecure_channel(target, options=options)
    return channel, tuning_service_pb2_grpc.TuningServiceStub(channel)


async def _import(target: str, plans: list[Plan]) -> None:
    from hyperdial.v1 import study_pb2, trial_pb2
    from hyperdial.v1 import tuning_service_pb2 as ts

    channel, stub = _aio_stub(target)
    gate = asyncio.Semaphore(IMPORT_CONCURRENCY)

    async def one(study_id: str, x: dict[str, float]) -> None:
        async with gate:
            await stub.CreateTrial(
                ts.CreateTrialRequest(
                    parent=f"studies/{study_id}",
                    parameters={k: study_pb2.ParameterValue(double_value=v) for k, v in x.items()},
                    final_measurement=trial_pb2.Measurement(values={"y": objective(x)}),
                )
            )

    try:
        for plan in plans:
            await stub.CreateStudy(
                ts.CreateStudyRequest(study_id=plan.study_id, spec=_spec(plan.dims))
            )
            await asyncio.gather(*(one(plan.study_id, x) for x in history(plan)))
    finally:
        await channel.close()


def _import_main(target: str, plans: list[Plan]) -> None:
    asyncio.run(_import(target, plans))


@dataclass
class Seen:
    """What a client process measured: ask latencies that ended in the window, by kind, and
    errors."""

    small: list[float] = field(default_factory=list)
    heavy: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds of the process over the window (Optuna clients)


async def _nap(seconds: float, end: float) -> None:
    """Sleeps ``seconds``, but not past ``end``: the step ends with its window (a think time
    drawn near the end is cut short, the trial told at once)."""
    await asyncio.sleep(max(0.0, min(seconds, end - time.monotonic())))


async def _hd_worker(
    stub: Any, plan: Plan, worker: int, start: float, end: float, seen: Seen
) -> None:
    import grpc

    from hyperdial.v1 import trial_pb2
    from hyperdial.v1 import tuning_service_pb2 as ts

    rng = random.Random(f"{plan.study_id}/{worker}")
    if plan.think:
        first = max(0.0, start - 1.0 - time.monotonic()) + rng.random() * plan.think
        await _nap(first, end)
    ask = ts.SuggestTrialsRequest(
        parent=f"studies/{plan.study_id}", count=1, client_id=f"w{worker}"
    )
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            (trial,) = (await stub.SuggestTrials(ask)).trials
        except grpc.aio.AioRpcError as e:
            seen.errors.append(f"{e.code().name}: {e.details()}")
            await asyncio.sleep(1.0)
            continue
        t1 = time.monotonic()
        if start <= t1 <= end:
            (seen.heavy if plan.heavy else seen.small).append(t1 - t0)
        if plan.think:
            await _nap(rng.expovariate(1.0 / plan.think), end)
        x = {k: v.double_value for k, v in trial.parameters.items()}
        await stub.CompleteTrial(
            ts.CompleteTrialRequest(
                name=trial.name, final_measurement=trial_pb2.Measurement(values={"y": objective(x)})
            )
        )


async def _hd_fleet(target: str, plans: list[Plan], start: float, end: float) -> Seen:
    channel, stub = _aio_stub(target)
    seen = Seen()
    try:
        await asyncio.gather(
            *(
                _hd_worker(stub, plan, w, start, end, seen)
                for plan in plans
                for w in range(plan.workers)
            )
        )
    finally:
        await channel.close()
    return seen


def _hd_main(target: str, plans: list[Plan], start: float, end: float, conn: Connection) -> None:
    conn.send(asyncio.run(_hd_fleet(target, plans, start, end)))


# --- Optuna: setup and clients (client processes, a thread per worker) -------------------------


def _optuna_study(target: str, plan: Plan) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    from optuna.distributions import FloatDistribution
    from optuna.storages import GrpcStorageProxy

    host, port = target.rsplit(":", 1)
    storage = GrpcStorageProxy(host=host, port=int(port))
    try:
        study = optuna.create_study(study_name=plan.study_id, storage=storage)
        dists = {f"x{j}": FloatDistribution(0.0, 1.0) for j in range(plan.dims)}
        study.add_trials(
            [
                optuna.trial.create_trial(params=x, distributions=dists, value=objective(x))
                for x in history(plan)
            ]
        )
    finally:
        storage.close()


def _optuna_main(
    target: str, plans: list[Plan], start: float, end: float, conn: Connection
) -> None:
    import optuna
    import torch  # noqa: F401  GPSampler's, imported here before the window, not in it
    from optuna.distributions import FloatDistribution
    from optuna.storages import GrpcStorageProxy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    host, port = target.rsplit(":", 1)
    seen = Seen()
    lock = threading.Lock()

    def worker(plan: Plan, w: int) -> None:
        rng = random.Random(f"{plan.study_id}/{w}")
        storage = GrpcStorageProxy(host=host, port=int(port))
        try:
            study = optuna.load_study(
                study_name=plan.study_id,
                storage=storage,
                sampler=optuna.samplers.GPSampler(seed=rng.randrange(2**31)),
            )
            dists = {f"x{j}": FloatDistribution(0.0, 1.0) for j in range(plan.dims)}
            first = max(0.0, start - 1.0 - time.monotonic()) + rng.random() * plan.think
            time.sleep(max(0.0, min(first, end - time.monotonic())))
            while time.monotonic() < end:
                t0 = time.monotonic()
                trial = study.ask(dists)
                t1 = time.monotonic()
                if start <= t1 <= end:
                    with lock:
                        seen.small.append(t1 - t0)
                think = rng.expovariate(1.0 / plan.think)
                time.sleep(max(0.0, min(think, end - time.monotonic())))
                study.tell(trial, objective(trial.params))
        except Exception as e:  # reported, and the step fails
            with lock:
                seen.errors.append(f"{type(e).__name__}: {e}")
        finally:
            storage.close()

    threads = [
        threading.Thread(target=worker, args=(plan, w))
        for plan in plans
        for w in range(plan.workers)
    ]
    for t in threads:
        t.start()
    time.sleep(max(0.0, start - time.monotonic()))
    cpu0 = time.process_time()
    time.sleep(max(0.0, end - time.monotonic()))
    seen.cpu = time.process_time() - cpu0
    for t in threads:
        t.join()
    conn.send(seen)


# --- the run ------------------------------------------------------------------------------------


def _spread(plans: list[Plan], n: int) -> list[list[Plan]]:
    return [plans[i::n] for i in range(n)]


def _processes(target: Any, args: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Runs ``target(*a, conn)`` in a spawned process per ``a``; their answers."""
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for a in args:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=target, args=(*a, theirs), daemon=True)
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    out = [p.recv() for p in pipes]
    for proc in procs:
        proc.join(timeout=60)
    return out


def _run_all(target: Any, args: Sequence[tuple[Any, ...]]) -> None:
    """Runs ``target(*a)`` in a spawned process per ``a`` and waits; fails if one does."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a setup process failed ({p.exitcode})")


def rss_mb(pids: Sequence[int]) -> float:
    """Resident memory of processes, MiB (``VmRSS``)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue  # gone meanwhile
    return total / 1024


@dataclass
class Step:
    name: str
    studies: int
    workers: int
    asks: int
    duration: float
    cpu_per_ask: float
    small: list[float]
    heavy: list[float]
    errors: list[str]


def _step(
    name: str,
    plans: list[Plan],
    run: Any,
    target: str,
    clients: int,
    duration: float,
    serving_cpu: Any,
    lead: float = 5.0,
) -> Step:
    # The client processes start, connect (and Optuna's load PyTorch) before the window.
    start = time.monotonic() + lead
    end = start + duration
    cpu: list[float] = []

    def sample() -> None:
        time.sleep(max(0.0, start - time.monotonic()))
        before = serving_cpu()
        time.sleep(max(0.0, end - time.monotonic()))
        cpu.append(serving_cpu() - before)

    sampler = threading.Thread(target=sample)
    sampler.start()
    done = _processes(run, [(target, share, start, end) for share in _spread(plans, clients)])
    sampler.join()
    small = [x for s in done for x in s.small]
    heavy_ = [x for s in done for x in s.heavy]
    asks = len(small) + len(heavy_)
    used = cpu[0] + sum(s.cpu for s in done)
    step = Step(
        name,
        len(plans),
        sum(p.workers for p in plans),
        asks,
        duration,
        used / asks if asks else math.nan,
        small,
        heavy_,
        [e for s in done for e in s.errors],
    )
    print(
        f"# {name}: {asks} asks, small p50 {pct(small, 0.5):.0f} ms p99 {pct(small, 0.99):.0f} ms"
        f", heavy p50 {pct(heavy_, 0.5):.0f} ms p99 {pct(heavy_, 0.99):.0f} ms, "
        f"{1e3 * step.cpu_per_ask:.1f} CPU ms/ask, {len(step.errors)} errors",
        flush=True,
    )
    return step


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--heavy", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="asks/s the fleet offers")
    parser.add_argument("--scaled-studies", type=int, default=10)
    parser.add_argument("--scaled-rate", type=float, default=4.0)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per step")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-optuna", action="store_true")
    args = parser.parse_args(argv)

    run_id = f"{os.getpid()}"
    small = fleet(args.studies, args.rate, args.seed, f"f{run_id}")
    heavies = heavy(args.heavy, f"h{run_id}")
    scaled = fleet(args.scaled_studies, args.scaled_rate, args.seed + 1, f"s{run_id}")
    steps: list[Step] = []
    with redis_server(None) as url:
        replicas = [start_hyperdial(url), start_hyperdial(url)]
        optuna: Proc | None = None if args.skip_optuna else start_optuna(url)
        try:
            target = "ipv4:" + ",".join(r.target for r in replicas)
            t0 = time.monotonic()
            setup = [*small, *heavies, *scaled]
            _run_all(_import_main, [(target, share) for share in _spread(setup, args.clients)])
            trials = sum(p.trials for p in setup)
            print(f"# imported {trials:,} trials in {time.monotonic() - t0:.0f} s", flush=True)

            def trees() -> list[int]:
                return [p for r in replicas for p in process_tree(r.pid)]

            def hd_cpu() -> float:
                return process_cpu(trees())

            rss = [rss_mb(trees())]
            n = args.clients
            steps.append(_step("hd fleet", small, _hd_main, target, n, args.duration, hd_cpu))
            rss.append(rss_mb(trees()))
            steps.append(
                _step(
                    "hd fleet + heavy",
                    [*small, *heavies],
                    _hd_main,
                    target,
                    n,
                    args.duration,
                    hd_cpu,
                )
            )
            rss.append(rss_mb(trees()))
            steps.append(_step("hd scaled", scaled, _hd_main, target, n, args.duration, hd_cpu))
            rss.append(rss_mb(trees()))
            if optuna is not None:
                proxy = optuna
                _run_all(_optuna_study, [(proxy.target, p) for p in scaled])
                steps.append(
                    _step(
                        "optuna scaled",
                        scaled,
                        _optuna_main,
                        proxy.target,
                        min(n, 2),
                        args.duration,
                        lambda: process_cpu([proxy.pid]),
                        lead=30.0,
                    )
                )
        finally:
            for r in replicas:
                r.stop()
            if optuna is not None:
                optuna.stop()

    print()
    print(
        "| step | studies | workers | asks | asks/s | serving CPU ms/ask | asks/s per core "
        "| small p50 ms | small p99 ms | heavy p50 ms | heavy p99 ms | errors |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in steps:
        print(
            f"| {s.name} | {s.studies:,} | {s.workers:,} | {s.asks:,} | {s.asks / s.duration:.1f}"
            f" | {1e3 * s.cpu_per_ask:.1f} | {1 / s.cpu_per_ask:.1f}"
            f" | {pct(s.small, 0.5):.0f} | {pct(s.small, 0.99):.0f}"
            f" | {pct(s.heavy, 0.5):.0f} | {pct(s.heavy, 0.99):.0f} | {len(s.errors)} |"
        )
    print()
    print(
        "replicas' resident memory (both, with their sampler workers), MiB: "
        + ", ".join(f"{m:.0f}" for m in rss)
        + " (before the first step, then after each hyperdial step)"
    )
    for s in steps:
        if s.errors:
            print(f"{s.name}: e.g. {s.errors[0]}")
    if len(steps) >= 2 and steps[0].small and steps[1].small:
        ratio = pct(steps[1].small, 0.99) / pct(steps[0].small, 0.99)
        print(f"fairness: small studies' p99 with the heavy ones / without = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
