"""Memory benchmark: Redis bytes per trial, and a replica's RSS as it touches many studies.

1. **Bytes per trial.** A RANDOM study of 10 parameters (floats, log floats, ints and
   categoricals) gets ``--trials`` trials asked and told (one objective, a client id); the
   ``MEMORY USAGE`` (``SAMPLES 0``: exact) of each key of the study is summed before and after,
   and the difference divided by the number of trials. Target: at most 1 KiB.
2. **RSS with many studies.** The server's resident set size (``VmRSS``) is read after it
   created and served one ask in ``--studies`` studies, then again after as many *more*
   studies (the first batch deleted through another replica in between, since a namespace
   holds at most 10,000 studies): every in-process cache is bounded (the servicer's study
   cache is an LRU of 10,000 entries), so the second batch must add much less than the first.
3. **Bytes per reported measurement.** ``--report-trials`` trials of the same study shape
   each report ``--report-steps`` intermediate measurements (``AddTrialMeasurement``), under
   each early-stopping policy: a median rule deciding at every step (so every report is kept
   in the study's values by step, the costliest case), successive halving (values kept at
   rungs only), and a median rule with a curve cap below the number of steps (thinning). The
   rules are set so that no trial stops (``min_trials`` out of reach; a reduction factor of 2
   with equal values), so every trial reports every step.

Both use real processes: a ``redis-server`` and ``python -m hyperdial_server --redis URL``.
Run from the repository root::

    python -m bench.memory                       # 10,000 trials, 2 x 9,000 studies
    python -m bench.memory --trials 2000 --studies 2000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from bench.load import redis_server, start_hyperdial

KIB = 1024
# The message of each rule field of EarlyStoppingPolicy.
_RULE_MESSAGES = {"median": "MedianStoppingRule", "successive_halving": "SuccessiveHalvingRule"}


def ten_parameter_spec() -> Any:
    """Ten parameters of every kind, one objective, RANDOM."""
    from hyperdial.v1 import study_pb2 as s

    log = s.SCALE_LOG
    return s.StudySpec(
        parameters=[
            s.ParameterSpec(name="lr", float_domain=s.FloatDomain(min=1e-5, max=1, scale=log)),
            s.ParameterSpec(
                name="weight_decay", float_domain=s.FloatDomain(min=1e-6, max=1e-2, scale=log)
            ),
            s.ParameterSpec(name="momentum", float_domain=s.FloatDomain(min=0.0, max=0.99)),
            s.ParameterSpec(name="dropout", float_domain=s.FloatDomain(min=0.0, max=0.5)),
            s.ParameterSpec(name="warmup", float_domain=s.FloatDomain(min=0.0, max=0.2)),
            s.ParameterSpec(name="layers", int_domain=s.IntDomain(min=1, max=12)),
            s.ParameterSpec(name="width", int_domain=s.IntDomain(min=16, max=4096, scale=log)),
            s.ParameterSpec(name="batch", int_domain=s.IntDomain(min=8, max=512, scale=log)),
            s.ParameterSpec(
                name="optimizer",
                categorical_domain=s.CategoricalDomain(values=["adam", "sgd", "rmsprop"]),
            ),
            s.ParameterSpec(
                name="activation",
                categorical_domain=s.CategoricalDomain(values=["relu", "gelu", "tanh"]),
            ),
        ],
        objectives=[s.ObjectiveSpec(name="loss", goal=s.GOAL_MINIMIZE)],
        algorithm=s.ALGORITHM_RANDOM,
    )


async def study_bytes(redis_url: str, study: str) -> dict[str, int]:
    """``MEMORY USAGE`` of every key of ``study`` (all share its hash tag), by key."""
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url, decode_responses=True)
    try:
        usage: dict[str, int] = {}
        async for key in r.scan_iter(match=f"*{{*/{study}}}*", count=1000):
            usage[key] = int(await r.memory_usage(key, samples=0) or 0)
        return usage
    finally:
        await r.aclose()


async def ask_and_tell(target: str, study: str, trials: int, in_flight: int = 16) -> None:
    """Asks ``trials`` trials (100 per ask) and tells each, ``in_flight`` calls at a time."""
    import grpc

    from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
    from hyperdial.v1 import tuning_service_pb2 as ts

    async with grpc.aio.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        names: list[str] = []
        while len(names) < trials:
            req = ts.SuggestTrialsRequest(
                parent=f"studies/{study}",
                count=min(100, trials - len(names)),
                # One worker per batch: an ask by a client holding RUNNING trials returns them.
                client_id=f"worker-{len(names) // 100:04d}",
            )
            names += [t.name for t in (await stub.SuggestTrials(req)).trials]
        gate = asyncio.Semaphore(in_flight)

        async def tell(i: int, name: str) -> None:
            async with gate:
                m = trial_pb2.Measurement(values={"loss": 1.0 / (i + 1)})
                await stub.CompleteTrial(ts.CompleteTrialRequest(name=name, final_measurement=m))

        await asyncio.gather(*(tell(i, n) for i, n in enumerate(names)))


async def touch_studies(target: str, prefix: str, n: int, in_flight: int = 16) -> None:
    """Creates ``n`` small studies and asks one trial in each."""
    import grpc

    from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
    from hyperdial.v1 import tuning_service_pb2 as ts

    spec = study_pb2.StudySpec(
        parameters=[
            study_pb2.ParameterSpec(name="x", float_domain=study_pb2.FloatDomain(min=0.0, max=1.0))
        ],
        objectives=[study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)],
        algorithm=study_pb2.ALGORITHM_RANDOM,
    )
    gate = asyncio.Semaphore(in_flight)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)

        async def touch(i: int) -> None:
            async with gate:
                sid = f"{prefix}-{i:06d}"
                await stub.CreateStudy(ts.CreateStudyRequest(study_id=sid, spec=spec))
                await stub.SuggestTrials(ts.SuggestTrialsRequest(parent=f"studies/{sid}", count=1))

        await asyncio.gather(*(touch(i) for i in range(n)))


async def delete_studies(target: str, prefix: str, n: int, in_flight: int = 16) -> None:
    """Deletes the studies :func:`touch_studies` created."""
    import grpc

    from hyperdial.v1 import tuning_service_pb2 as ts
    from hyperdial.v1 import tuning_service_pb2_grpc

    gate = asyncio.Semaphore(in_flight)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)

        async def delete(i: int) -> None:
            async with gate:
                name = f"studies/{prefix}-{i:06d}"
                await stub.DeleteStudy(ts.DeleteStudyRequest(name=name))

        await asyncio.gather(*(delete(i) for i in range(n)))


#: The policies of section 3, by name: (rule field, rule, max_measurements_per_trial).
REPORT_POLICIES: dict[str, tuple[str, dict[str, int], int]] = {
    "median, every step": ("median", {"min_trials": 1_000_000}, 0),
    "successive halving": ("successive_halving", {"reduction_factor": 2}, 0),
    "median, 20 kept": ("median", {"min_trials": 1_000_000}, 20),
}


async def report_steps(target: str, study: str, trials: int, steps: int) -> int:
    """Asks ``trials`` trials and has each report ``steps`` measurements (step 1, 2, ...),
    ``16`` calls in flight; returns the number of reports made."""
    import grpc

    from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
    from hyperdial.v1 import tuning_service_pb2 as ts

    async with grpc.aio.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        names: list[str] = []
        while len(names) < trials:
            req = ts.SuggestTrialsRequest(
                parent=f"studies/{study}",
                count=min(100, trials - len(names)),
                client_id=f"worker-{len(names) // 100:04d}",
            )
            names += [t.name for t in (await stub.SuggestTrials(req)).trials]
        gate = asyncio.Semaphore(16)

        async def report(name: str, step: int) -> None:
            async with gate:
                # Equal values: nobody is strictly better, so no rung stops anyone.
                m = trial_pb2.Measurement(values={"loss": 0.5}, step=step)
                req = ts.AddTrialMeasurementRequest(name=name, measurement=m)
                await stub.AddTrialMeasurement(req)

        for step in range(1, steps + 1):
            await asyncio.gather(*(report(n, step) for n in names))
        return trials * steps


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redis bytes per trial; server RSS.")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument(
        "--studies",
        type=int,
        default=9_000,
        help="studies per batch (a namespace holds at most 10,000 at a time)",
    )
    parser.add_argument("--report-trials", type=int, default=200)
    parser.add_argument("--report-steps", type=int, default=50)
    parser.add_argument("--redis", default="", help="a running Redis (default: start one)")
    args = parser.parse_args(argv)

    from bench.load import create_hyperdial_study

    with redis_server(args.redis or None) as redis_url:
        server = start_hyperdial(redis_url)
        try:
            # 1. Bytes per trial.
            study = "memory-10-params"
            create_hyperdial_study(server.target, study, ten_parameter_spec())
            empty = asyncio.run(study_bytes(redis_url, study))
            asyncio.run(ask_and_tell(server.target, study, args.trials))
            full = asyncio.run(study_bytes(redis_url, study))
            added = sum(full.values()) - sum(empty.values())
            print(f"## Redis bytes per trial (10 parameters, {args.trials:,} trials told)")
            print()
            print("| key | bytes | bytes per trial |")
            print("| --- | ---: | ---: |")
            for key in sorted(full):
                kind = key.rsplit("}:", 1)[-1]
                grown = full[key] - empty.get(key, 0)
                print(f"| {kind} | {full[key]:,} | {max(grown, 0) / args.trials:,.0f} |")
            per_trial = added / args.trials
            verdict = "within" if per_trial <= KIB else "OVER"
            print(f"| **all keys** | {sum(full.values()):,} | **{per_trial:,.0f}** |")
            print()
            print(f"{per_trial:,.0f} bytes per trial: {verdict} the 1 KiB target.")
            print()

            # 3. Bytes per reported measurement (before the RSS batches fill the namespace).
            from hyperdial.v1 import study_pb2

            print(
                f"## Redis bytes per reported measurement ({args.report_trials:,} trials x "
                f"{args.report_steps:,} steps, one objective)"
            )
            print()
            print(
                "| policy | bytes per report | curves (es_curves) | bookkeeping and values by "
                "trial (es_state) | values by step or rung (es_steps, es_rungs) |"
            )
            print("| --- | ---: | ---: | ---: | ---: |")
            for i, (label, (field, options, cap)) in enumerate(REPORT_POLICIES.items()):
                spec = ten_parameter_spec()
                policy = study_pb2.EarlyStoppingPolicy(max_measurements_per_trial=cap)
                getattr(policy, field).CopyFrom(
                    getattr(study_pb2, _RULE_MESSAGES[field])(**options)
                )
                spec.early_stopping.CopyFrom(policy)
                name = f"memory-reports-{i}"
                create_hyperdial_study(server.target, name, spec)
                before = asyncio.run(study_bytes(redis_url, name))
                reports = asyncio.run(
                    report_steps(server.target, name, args.report_trials, args.report_steps)
                )
                after = asyncio.run(study_bytes(redis_url, name))
                grown = {k: after[k] - before.get(k, 0) for k in after}
                # The asks' own bytes (trials, leases...) are not the reports': only the keys
                # that reports write are counted.
                curves = sum(v for k, v in grown.items() if k.endswith("es_curves"))
                state = sum(v for k, v in grown.items() if k.endswith("es_state"))
                ranks = sum(v for k, v in grown.items() if k.endswith(("es_steps", "es_rungs")))
                total = curves + state + ranks
                print(
                    f"| {label} | {total / reports:,.0f} | {curves / reports:,.0f} | "
                    f"{state / reports:,.0f} | {ranks / reports:,.0f} |"
                )
            print()

            # 2. RSS with many studies.
            create_hyperdial_study(server.target, "rss-warmup")
            asyncio.run(touch_studies(server.target, "rss-warm", 100))
            base = rss_kib(server.pid)
            asyncio.run(touch_studies(server.target, "rss-a", args.studies))
            first = rss_kib(server.pid)
            # Deleted through another replica, so the measured one keeps them in its cache,
            # as a replica does when others delete studies.
            other = start_hyperdial(redis_url)
            try:
                asyncio.run(delete_studies(other.target, "rss-a", args.studies))
            finally:
                other.stop()
            asyncio.run(touch_studies(server.target, "rss-b", args.studies))
            second = rss_kib(server.pid)
            print(f"## Server RSS (studies created and asked once, {args.studies:,} per batch)")
            print()
            print("| after | RSS MiB | growth MiB |")
            print("| --- | ---: | ---: |")
            print(f"| warm-up (100 studies) | {base / KIB:.1f} | |")
            grown = (first - base) / KIB
            print(f"| + {args.studies:,} studies | {first / KIB:.1f} | {grown:+.1f} |")
            print(
                f"| + {args.studies:,} more | {second / KIB:.1f} | {(second - first) / KIB:+.1f} |"
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
