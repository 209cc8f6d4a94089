"""A BAYESIAN ask in a long study: latency, Redis CPU and replica CPU per ask as the study grows.

One invocation measures, on a real ``redis-server`` and one real replica
(``python -m hyperdial_server --port 0 --redis URL``), a 6-D BAYESIAN study (Hartmann-6's space)
holding N = 300, 1,000, 10,000 and 100,000 completed trials (imported with ``CreateTrial``
from several client processes): ``--asks`` asks over gRPC, each told before the next, after
one that is not counted. Per ask: p50 and p99 latency, Redis CPU (``INFO cpu``) and the
replica's CPU (the server process and its sampler workers, from ``/proc``), each next to the
study of 300 trials as a ratio. Then the same for ``--recommendations`` recommendations
(``ListOptimalTrials`` with ``OPTIMALITY_BASIS_MODEL``) of each study.

Run it from the repository root (``OPENBLAS_NUM_THREADS=1``: one thread per sampler worker)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m bench.long_study
    python -m bench.long_study --sizes 300,10000 --asks 20

To measure another checkout side by side (e.g. the commit before a change), put its packages
first on the path: the replica is started with this interpreter and that path::

    PYTHONPATH=/tmp/before/server:/tmp/before/client python -m bench.long_study

With ``--policy successive-halving`` or ``--policy median`` the study has that early-stopping
policy, and each trial is imported as a worker would run it: enqueued (``CreateTrial``), handed
out (``SuggestTrials`` of the queue, no sampling), one report at step 1 (``AddTrialMeasurement``:
the policy records its value, and stops it or not) and, if it continues, completed. Most stop,
so the study holds N trials of which most are STOPPED, and an ask's model compares them with
the completed ones through the values the policy recorded::

    python -m bench.long_study --policy successive-halving --sizes 300,1000,10000

The figures are one run on one machine: the client, the replica and Redis share its cores.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.bayes_latency import _fn, _history, _spec, _stub, ask_tell, pct
from bench.load import process_cpu, redis_cpu, redis_server, start_hyperdial

SIZES = (300, 1_000, 10_000, 100_000)
#: Client processes that import a study's trials.
IMPORTERS = 4


#: Trials an importer enqueues, then takes back and reports, at a time (``--policy``).
BATCH = 100


def _import_share(
    target: str, study_id: str, history: list[tuple[dict[str, float], float]], reported: bool
) -> None:
    """Imports ``history``: as completed trials (one ``CreateTrial`` each), or, ``reported``,
    as trials that ran under the study's policy (enqueued, handed out, reported at step 1,
    completed if the policy lets them continue). Each importer asks for no more trials than it
    enqueued, after enqueueing them, so the queue never runs dry: no ask samples a point."""
    from hyperdial.v1 import study_pb2, trial_pb2
    from hyperdial.v1 import tuning_service_pb2 as ts

    stub = _stub(target)
    parent = f"studies/{study_id}"
    if not reported:
        for x, y in history:
            stub.CreateTrial(
                ts.CreateTrialRequest(
                    parent=parent,
                    parameters={k: study_pb2.ParameterValue(double_value=v) for k, v in x.items()},
                    final_measurement=trial_pb2.Measurement(values={"y": y}),
                )
            )
        return
    for first in range(0, len(history), BATCH):
        batch = history[first : first + BATCH]
        for x, _ in batch:
            stub.CreateTrial(
                ts.CreateTrialRequest(
                    parent=parent,
                    parameters={k: study_pb2.ParameterValue(double_value=v) for k, v in x.items()},
                )
            )
        asked = ts.SuggestTrialsRequest(parent=parent, count=len(batch))
        for trial in stub.SuggestTrials(asked).trials:
            # The handed-out trial may be another importer's: its own point's value.
            y = _fn({k: v.double_value for k, v in trial.parameters.items()})
            answer = stub.AddTrialMeasurement(
                ts.AddTrialMeasurementRequest(
                    name=trial.name, measurement=trial_pb2.Measurement(step=1, values={"y": y})
                )
            )
            if not answer.decision.should_stop:
                stub.CompleteTrial(
                    ts.CompleteTrialRequest(
                        name=trial.name, final_measurement=trial_pb2.Measurement(values={"y": y})
                    )
                )


#: Early-stopping policies of ``--policy``: a rule of ``EarlyStoppingPolicy`` and its fields.
POLICIES: dict[str, tuple[str, str, dict[str, int]]] = {
    "successive-halving": (
        "successive_halving",
        "SuccessiveHalvingRule",
        {"min_resource": 1, "reduction_factor": 3, "max_resource": 27},
    ),
    "median": ("median", "MedianStoppingRule", {}),
}


def create_long_study(target: str, study_id: str, n: int, policy: str = "") -> float:
    """A BAYESIAN study of ``n`` trials, completed or (with a ``policy`` of
    :data:`POLICIES`) reported under it; the seconds the import took."""
    from hyperdial.v1 import study_pb2
    from hyperdial.v1 import tuning_service_pb2 as ts

    spec = _spec("BAYESIAN")
    if policy:
        field, message, options = POLICIES[policy]
        rule = getattr(study_pb2, message)(**options)
        spec.early_stopping.CopyFrom(study_pb2.EarlyStoppingPolicy(**{field: rule}))
    _stub(target).CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=spec))
    history = _history(n, seed=n)
    t0 = time.monotonic()
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=_import_share, args=(target, study_id, history[i::IMPORTERS], bool(policy))
        )
        for i in range(IMPORTERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"an importer of {study_id} failed ({p.exitcode})")
    return time.monotonic() - t0


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (the replica's fork server and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def measure(
    redis_url: str, server_pid: int, call: Callable[[], float], times: int
) -> tuple[list[float], float, float]:
    """``call`` (which returns the seconds it measured) ``times`` times after one warm-up:
    the seconds, and Redis and replica CPU seconds per call over them."""
    call()  # warm-up: the workers started, the spec cached
    pids = process_tree(server_pid)
    redis0, replica0 = redis_cpu(redis_url), process_cpu(pids)
    seconds = [call() for _ in range(times)]
    redis1, replica1 = redis_cpu(redis_url), process_cpu(pids)
    return seconds, (redis1 - redis0) / times, (replica1 - replica0) / times


def recommendation(stub: Any, study_id: str) -> float:
    """One recommendation (``ListOptimalTrials`` by the model); returns the seconds it took."""
    from hyperdial.v1 import tuning_service_pb2 as ts

    request = ts.ListOptimalTrialsRequest(
        parent=f"studies/{study_id}", basis=ts.OPTIMALITY_BASIS_MODEL
    )
    t0 = time.perf_counter()
    answer = stub.ListOptimalTrials(request, timeout=120)
    seconds = time.perf_counter() - t0
    assert len(answer.predictions) == 1, answer
    return seconds


Row = tuple[int, float, float, float, float]


def _row(n: int, measured: tuple[list[float], float, float]) -> Row:
    """Trials, p50 and p99 ms, Redis and replica CPU ms per call."""
    seconds, redis_s, replica_s = measured
    return n, pct(seconds, 0.5), pct(seconds, 0.99), 1e3 * redis_s, 1e3 * replica_s


def _table(what: str, rows: list[Row], trials: str = "completed trials") -> None:
    base = next((r for r in rows if r[0] == 300), rows[0] if rows else None)
    print()
    print(
        f"| {trials} | p50 ms | p99 ms | Redis CPU ms/{what} | replica CPU ms/{what} "
        "| p50 / 300 | Redis / 300 | replica / 300 |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, p50, p99, redis_ms, replica_ms in rows:
        assert base is not None
        print(
            f"| {n:,} | {p50:.1f} | {p99:.1f} | {redis_ms:.2f} | {replica_ms:.1f} "
            f"| {p50 / base[1]:.2f} | {redis_ms / base[3]:.2f} | {replica_ms / base[4]:.2f} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--asks", type=int, default=30, help="asks per size")
    parser.add_argument(
        "--recommendations", type=int, default=10, help="recommendations per size (0: none)"
    )
    parser.add_argument("--redis", default=None, help="a running Redis (default: start one)")
    parser.add_argument(
        "--policy",
        default="",
        choices=["", *POLICIES],
        help="an early-stopping policy; its trials reported at step 1 (default: none)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows: list[Row] = []
    recommendations: list[Row] = []
    with redis_server(args.redis) as url:
        server = start_hyperdial(url)
        try:
            stub = _stub(server.target)
            for n in sizes:
                study_id = f"long-{n}-{os.getpid()}"
                took = create_long_study(server.target, study_id, n, args.policy)
                ask = measure(
                    url, server.pid, functools.partial(ask_tell, stub, study_id), args.asks
                )
                row = _row(n, ask)
                rows.append(row)
                print(
                    f"# N={n:,} (imported in {took:.0f} s): p50 {row[1]:.1f} ms, p99 "
                    f"{row[2]:.1f} ms, Redis {row[3]:.2f} ms/ask, replica {row[4]:.1f} ms/ask, "
                    f"mean {1e3 * statistics.fmean(ask[0]):.1f} ms",
                    flush=True,
                )
                if args.recommendations:
                    rec = _row(
                        n,
                        measure(
                            url,
                            server.pid,
                            functools.partial(recommendation, stub, study_id),
                            args.recommendations,
                        ),
                    )
                    recommendations.append(rec)
                    print(
                        f"# N={n:,} recommendation: p50 {rec[1]:.1f} ms, p99 {rec[2]:.1f} ms, "
                        f"Redis {rec[3]:.2f} ms, replica {rec[4]:.1f} ms",
                        flush=True,
                    )
        finally:
            server.stop()
    trials = f"trials ({args.policy})" if args.policy else "completed trials"
    _table("ask", rows, trials)
    if recommendations:
        _table("call", recommendations, trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
