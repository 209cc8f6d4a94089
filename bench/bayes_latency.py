"""BAYESIAN ask latency as a study grows, next to Optuna's GPSampler, and its cost to other calls.

One invocation measures, on a real ``redis-server`` and one real replica
(``python -m hyperdial_server --port 0 --redis URL``):

1. ``hyperdial``: a D-dimensional BAYESIAN study (Hartmann-6's space, plus D - 6 coordinates
   in [0, 1] the objective ignores; D = 6 by default, ``--dims`` for more) holding N = 50, 300
   and 1,000 completed trials (imported with ``CreateTrial``): p50 and p99 of one
   ``SuggestTrials`` over gRPC, each suggestion told before the next ask.
2. ``optuna-gp``: Optuna's ``GPSampler`` (5.0 defaults) on the same space holding the same N
   completed trials (in-memory storage, so the figure is the sampler alone): p50 and p99 of
   ``study.ask()``, each trial told.
3. Interference: one client process loops RANDOM ask -> tell on the same replica; its p99 per
   call is measured idle, then while other client processes loop BAYESIAN asks on the
   300-trial study, then (a control) while plain busy loops run at the priority of the
   sampler's workers, as many as the replica has workers busy (no hyperdial work at all). The
   ratios are printed.

Run it from the repository root in an environment with the ``bench`` extra (Optuna, PyTorch)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m bench.bayes_latency
    python -m bench.bayes_latency --sizes 50,300 --asks 10 --optuna-asks-large 3
    python -m bench.bayes_latency --dims 20,30,50 --sizes 300 --skip-probe   # wide spaces
    python -m bench.bayes_latency --noise 0.11 --sizes 50,300 --skip-probe   # noisy results

The figures are one run on one machine: clients, the replica and Redis share its cores.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from bench.bayes_problems import PROBLEMS
from bench.load import Proc, redis_server, start_hyperdial
from hyperdial_server.service._compute import DEFAULT_SAMPLER_PROCESSES

PROBLEM = PROBLEMS["hartmann6"]
SIZES = (50, 300, 1000)


def _stub(target: str) -> Any:
    import grpc

    from hyperdial.v1 import tuning_service_pb2_grpc

    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=30)
    return tuning_service_pb2_grpc.TuningServiceStub(channel)


def _space(dims: int) -> list[tuple[str, float, float]]:
    """(name, low, high) of each parameter: Hartmann-6's, then ``dims - 6`` ignored ones."""
    own = [(p.name, p.low, p.high) for p in PROBLEM.params]
    return own + [(f"z{i}", 0.0, 1.0) for i in range(len(own), dims)]


def _fn(x: dict[str, float]) -> float:
    """Hartmann-6 of the point's first six coordinates."""
    return PROBLEM.fn({p.name: x[p.name] for p in PROBLEM.params})


def _spec(algorithm: str, dims: int = 6) -> Any:
    from hyperdial.v1 import study_pb2 as s

    return s.StudySpec(
        parameters=[
            s.ParameterSpec(name=name, float_domain=s.FloatDomain(min=low, max=high))
            for name, low, high in _space(dims)
        ],
        objectives=[s.ObjectiveSpec(name="y", goal=s.GOAL_MINIMIZE)],
        algorithm=getattr(s, f"ALGORITHM_{algorithm}"),
    )


#: Standard deviation of the Gaussian noise added to every result (``--noise``; 0: none).
NOISE = {"sd": 0.0}
_NOISE_RNG = random.Random(0)


def _result(x: dict[str, float]) -> float:
    """The objective's value at ``x``, with the noise of ``--noise``."""
    value = _fn(x)
    return value + _NOISE_RNG.gauss(0.0, NOISE["sd"]) if NOISE["sd"] else value


def _history(n: int, seed: int, dims: int = 6) -> list[tuple[dict[str, float], float]]:
    """``n`` uniformly random points of the space and their objective values."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {name: rng.uniform(low, high) for name, low, high in _space(dims)}
        out.append((x, _result(x)))
    return out


def create_study(stub: Any, study_id: str, algorithm: str, n: int, dims: int = 6) -> None:
    """A study holding ``n`` completed trials (imported in one call each)."""
    from hyperdial.v1 import study_pb2, trial_pb2
    from hyperdial.v1 import tuning_service_pb2 as ts

    stub.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=_spec(algorithm, dims)))
    for x, y in _history(n, seed=n, dims=dims):
        stub.CreateTrial(
            ts.CreateTrialRequest(
                parent=f"studies/{study_id}",
                parameters={k: study_pb2.ParameterValue(double_value=v) for k, v in x.items()},
                final_measurement=trial_pb2.Measurement(values={"y": y}),
            )
        )


def ask_tell(stub: Any, study_id: str, client_id: str = "") -> float:
    """One ask and its tell; returns the seconds the ask took."""
    from hyperdial.v1 import trial_pb2
    from hyperdial.v1 import tuning_service_pb2 as ts

    t0 = time.perf_counter()
    (trial,) = stub.SuggestTrials(
        ts.SuggestTrialsRequest(parent=f"studies/{study_id}", count=1, client_id=client_id)
    ).trials
    seconds = time.perf_counter() - t0
    x = {k: v.double_value for k, v in trial.parameters.items()}
    stub.CompleteTrial(
        ts.CompleteTrialRequest(
            name=trial.name,
            final_measurement=trial_pb2.Measurement(values={"y": _result(x)}),
        )
    )
    return seconds


def hyperdial_asks(stub: Any, n: int, asks: int, dims: int = 6) -> list[float]:
    study_id = f"bayes-{dims}d-{n}"
    create_study(stub, study_id, "BAYESIAN", n, dims)
    ask_tell(stub, study_id)  # warm-up (worker start), not counted
    return [ask_tell(stub, study_id) for _ in range(asks)]


def optuna_asks(n: int, asks: int, dims: int = 6) -> list[float]:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    dists = {
        name: optuna.distributions.FloatDistribution(low, high) for name, low, high in _space(dims)
    }
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
    study.add_trials(
        [
            optuna.trial.create_trial(params=x, distributions=dists, value=y)
            for x, y in _history(n, seed=n, dims=dims)
        ]
    )
    out = []
    for i in range(asks + 1):  # the first one warms PyTorch up and is not counted
        t0 = time.perf_counter()
        trial = study.ask(dists)
        if i:
            out.append(time.perf_counter() - t0)
        study.tell(trial, _result(trial.params))
    return out


# --- interference -----------------------------------------------------------------------------


def _loop(target: str, study_id: str, client_id: str, conn: Connection) -> None:
    """A client process: ask -> tell until told to stop; sends back its ask latencies."""
    stub = _stub(target)
    conn.send("ready")
    conn.recv()  # go
    seconds: list[float] = []
    while not conn.poll():
        seconds.append(ask_tell(stub, study_id, client_id))
    conn.send(seconds)


def _run_clients(target: str, loops: Sequence[tuple[str, str]], duration: float) -> list[Any]:
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for study_id, client_id in loops:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_loop, args=(target, study_id, client_id, theirs))
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    for p in pipes:
        assert p.recv() == "ready"
    for p in pipes:
        p.send("go")
    time.sleep(duration)
    for p in pipes:
        p.send("stop")
    results = [p.recv() for p in pipes]
    for proc in procs:
        proc.join(timeout=30)
    return results


# A busy loop at the niceness of the sampler's workers (``service/_compute.py``).
_BURN = "import os\nos.nice(10)\nwhile True:\n    pass\n"


def interference(
    target: str, stub: Any, duration: float, bayes_clients: int, burners: int, rounds: int = 1
) -> dict[str, Any]:
    """The probe idle, while clients loop Bayesian asks, and (a control that involves no
    hyperdial work) while ``burners`` busy loops run at the workers' priority; ``rounds``
    times in turn, so that a drift of the machine reaches the three alike. Each phase's
    samples are pooled over the rounds; ``ratios`` holds each round's p99 ratios to idle."""
    create_study(stub, "random-probe", "RANDOM", 0)
    create_study(stub, "bayes-load", "BAYESIAN", 300)
    out: dict[str, Any] = {"idle": [], "busy": [], "bayes": [], "burned": [], "ratios": []}
    for _ in range(rounds):
        idle = _run_clients(target, [("random-probe", "probe")], duration)[0]
        loops = [("random-probe", "probe")]
        loops += [("bayes-load", f"b{i}") for i in range(bayes_clients)]
        busy_all = _run_clients(target, loops, duration)
        busy = busy_all[0]
        procs = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(burners)]
        try:
            burned = _run_clients(target, [("random-probe", "probe")], duration)[0]
        finally:
            for b in procs:
                b.kill()
                b.wait()
        out["idle"] += idle
        out["busy"] += busy
        out["bayes"] += [s for r in busy_all[1:] for s in r]
        out["burned"] += burned
        base = pct(idle, 0.99)
        out["ratios"].append((pct(busy, 0.99) / base, pct(burned, 0.99) / base))
    return out


# --- reporting --------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``, in milliseconds."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument(
        "--dims", default="6", help="dimensions of the spaces (Hartmann-6 plus ignored ones)"
    )
    parser.add_argument("--skip-probe", action="store_true", help="skip the interference probe")
    parser.add_argument("--asks", type=int, default=30, help="asks per size (hyperdial)")
    parser.add_argument("--optuna-asks", type=int, default=20, help="asks per size (Optuna)")
    parser.add_argument(
        "--optuna-asks-large", type=int, default=5, help="Optuna asks at sizes over 300"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per probe run")
    parser.add_argument("--bayes-clients", type=int, default=2)
    parser.add_argument(
        "--probe-rounds", type=int, default=1, help="rounds of idle / busy / control probes"
    )
    parser.add_argument("--redis", default=None, help="a running Redis (default: start one)")
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="sd of Gaussian noise on every result (Hartmann-6's range is about 3.3)",
    )
    args = parser.parse_args(argv)
    NOISE["sd"] = args.noise
    sizes = [int(s) for s in args.sizes.split(",") if s]  # --sizes "": the probes alone
    dims = [int(d) for d in args.dims.split(",") if d]
    if any(d < len(PROBLEM.params) for d in dims):
        parser.error(f"--dims: at least {len(PROBLEM.params)} (Hartmann-6's own)")
    out: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731

    rows = []
    with redis_server(args.redis) as url:
        server: Proc = start_hyperdial(url)
        try:
            stub = _stub(server.target)
            for d in dims:
                for n in sizes:
                    hd = hyperdial_asks(stub, n, args.asks, d)
                    p50, p99 = pct(hd, 0.5), pct(hd, 0.99)
                    out(f"# hyperdial D={d} N={n}: p50 {p50:.1f} ms  p99 {p99:.1f} ms")
                    op: list[float] = []
                    if not args.skip_optuna:
                        k = args.optuna_asks if n <= 300 else args.optuna_asks_large
                        op = optuna_asks(n, k, d)
                        p50, p99 = pct(op, 0.5), pct(op, 0.99)
                        out(f"# optuna-gp D={d} N={n}: p50 {p50:.1f} ms  p99 {p99:.1f} ms")
                    rows.append((d, n, hd, op))
            probe = None
            if not args.skip_probe:
                # As many busy loops as the Bayesian clients can keep the replica's workers busy.
                burners = min(args.bayes_clients, DEFAULT_SAMPLER_PROCESSES)
                probe = interference(
                    server.target,
                    stub,
                    args.duration,
                    args.bayes_clients,
                    burners,
                    args.probe_rounds,
                )
        finally:
            server.stop()

    out("")
    out(
        "| D | completed trials | hyperdial p50 ms | p99 ms | Optuna GP p50 ms | p99 ms | "
        "hyperdial / Optuna (p50) | asks |"
    )
    out("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for d, n, hd, op in rows:
        ratio_text = f"{pct(hd, 0.5) / pct(op, 0.5):.2f}" if op else "-"
        out(
            f"| {d} | {n:,} | {pct(hd, 0.5):.1f} | {pct(hd, 0.99):.1f} | {pct(op, 0.5):.1f} | "
            f"{pct(op, 0.99):.1f} | {ratio_text} | {len(hd)} / {len(op)} |"
        )
    if probe is None:
        return 0
    idle, busy, bayes = probe["idle"], probe["busy"], probe["bayes"]
    out("")
    out("| RANDOM asks on the replica | asks | p50 ms | p99 ms |")
    out("| --- | ---: | ---: | ---: |")
    out(f"| idle | {len(idle)} | {pct(idle, 0.5):.2f} | {pct(idle, 0.99):.2f} |")
    out(
        f"| while {args.bayes_clients} clients loop BAYESIAN asks (300 trials; "
        f"{len(bayes)} asks, p50 {pct(bayes, 0.5):.0f} ms) | {len(busy)} | "
        f"{pct(busy, 0.5):.2f} | {pct(busy, 0.99):.2f} |"
    )
    burned = probe["burned"]
    out(
        f"| control: while {burners} busy loop(s) at the workers' niceness (no hyperdial "
        f"work) | {len(burned)} | {pct(burned, 0.5):.2f} | {pct(burned, 0.99):.2f} |"
    )
    ratio = pct(busy, 0.99) / pct(idle, 0.99)
    control = pct(burned, 0.99) / pct(idle, 0.99)
    out(f"\nRANDOM p99 busy / idle = {ratio:.2f}x (target <= 2x); control / idle = {control:.2f}x")
    if len(probe["ratios"]) > 1:
        rounds = ", ".join(f"{b:.2f}x / {c:.2f}x" for b, c in probe["ratios"])
        out(f"each round, busy / idle and control / idle: {rounds}")
    if rows:
        medians = [statistics.median(hd) for _, _, hd, _ in rows]
        out("hyperdial p50 by size: " + ", ".join(f"{1000 * m:.1f} ms" for m in medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
