"""Benchmark: hyperdial's early stopping over gRPC against Optuna's pruners, side by side.

Learning-curve problems (``early_stopping_problems.py``) with a budget counted in training
steps. K workers (K = 1 and 4) are simulated by one deterministic schedule, the same for every
method: each tick, every worker in turn asks for a trial if it has none, trains it one step
and reports the value; a trial told to stop frees its worker, and a trial that reaches
``max_steps`` is completed with its value at that step (no report there). Once the steps spent
reach the budget, nothing more is trained or launched; trials still running are left
unfinished. The score of a run at a budget b is what a user would deploy: among the trials that
trained to full length within the first b steps, the one with the best observed final value;
its regret is its noise-free final value minus the family's optimum (``mlp_digits``: minus the
best full-length value any run of the family found).

hyperdial: a real server (``python -m hyperdial_server --port 0``, memory store) driven with the
generated stub: ``SuggestTrials``, ``AddTrialMeasurement`` after every step (its
``EarlyStoppingDecision`` says stop or go on; a stopped trial is STOPPED already),
``CompleteTrial``; samplers BAYESIAN and RANDOM, policies none, median, successive halving and
Hyperband. Optuna: ``study.ask`` / ``trial.report`` / ``trial.should_prune`` / ``study.tell``
(PRUNED when told to stop), in-memory storage, the same K-in-flight schedule (its pruners see
RUNNING trials as Optuna does); samplers ``TPESampler`` and ``RandomSampler`` (defaults,
seeded), pruners none (``NopPruner``), ``MedianPruner``, ``SuccessiveHalvingPruner`` and
``HyperbandPruner``. Both sides use the same rule settings: min resource 1 step, eta 3,
max resource ``max_steps`` (27), the median rule after 5 trials (Optuna's
``n_startup_trials=5``, hyperdial's ``min_trials=5``), no warm-up.

Then the overhead of a report: ``AddTrialMeasurement`` latency (p50, p99) on a Redis-backed
server (``--redis URL``, or a ``redis-server`` started here as ``load.py`` does) with W
concurrent reporter processes, per policy.

Run from the repository root (needs the ``bench`` extra: Optuna, scikit-learn)::

    python -m bench.early_stopping                 # full run (see bench/README.md)
    python -m bench.early_stopping --quick         # smoke run: 2 seeds, small budget
    python -m bench.early_stopping --families rank --workers 1 --methods hd-bayes-hyperband
"""

from __future__ import annotations

import os

# One BLAS / OpenMP thread everywhere (this process, the server, the jobs): multi-threaded
# BLAS spins against the other processes on a small machine (see bench/README.md).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Protocol  # noqa: E402

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import grpc  # noqa: E402

from bench.bayes_problems import Param  # noqa: E402
from bench.early_stopping_problems import FAMILIES, Family, Params, optimum  # noqa: E402
from hyperdial.v1 import (  # noqa: E402
    study_pb2,
    trial_pb2,
    tuning_service_pb2,
    tuning_service_pb2_grpc,
)

STOPPINGS = ("none", "median", "sh", "hyperband")
#: Every method: (side, sampler, stopping). hyperdial first.
METHODS: dict[str, tuple[str, str, str]] = {
    **{f"hd-{s}-{p}": ("hyperdial", s, p) for s in ("bayes", "random") for p in STOPPINGS},
    **{f"optuna-{s}-{p}": ("optuna", s, p) for s in ("tpe", "random") for p in STOPPINGS},
}
#: Rule settings shared by both sides.
REDUCTION_FACTOR = 3
MIN_RESOURCE = 1
MEDIAN_MIN_TRIALS = 5
#: Budget fractions at which regrets are computed (1 %, 2 %, ... 100 %).
GRID = [i / 100 for i in range(1, 101)]
#: Budget fractions of the regret-by-budget table.
CURVE_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)


# --- the tuners: one interface over hyperdial's stub and Optuna's ask-and-tell ----------------


class Tuner(Protocol):
    def ask(self) -> tuple[Any, Params]: ...

    def report(self, handle: Any, step: int, value: float) -> bool:
        """Reports ``value`` at ``step``; whether the trial was told to stop."""
        ...

    def complete(self, handle: Any, value: float) -> None: ...

    def close(self) -> None: ...


def _param_pb(p: Param) -> study_pb2.ParameterSpec:
    scale = study_pb2.SCALE_LOG if p.log else study_pb2.SCALE_LINEAR
    if p.kind == "float":
        domain = study_pb2.FloatDomain(min=p.low, max=p.high, scale=scale)
        return study_pb2.ParameterSpec(name=p.name, float_domain=domain)
    if p.kind == "int":
        domain_i = study_pb2.IntDomain(min=int(p.low), max=int(p.high), scale=scale)
        return study_pb2.ParameterSpec(name=p.name, int_domain=domain_i)
    domain_c = study_pb2.CategoricalDomain(values=list(p.values))
    return study_pb2.ParameterSpec(name=p.name, categorical_domain=domain_c)


def hyperdial_policy(stopping: str, max_steps: int) -> study_pb2.EarlyStoppingPolicy | None:
    """The study's early-stopping policy for a stopping name (``None``: no policy)."""
    p = study_pb2
    if stopping == "none":
        return None
    if stopping == "median":
        return p.EarlyStoppingPolicy(median=p.MedianStoppingRule(min_trials=MEDIAN_MIN_TRIALS))
    if stopping == "sh":
        rule = p.SuccessiveHalvingRule(
            min_resource=MIN_RESOURCE, reduction_factor=REDUCTION_FACTOR, max_resource=max_steps
        )
        return p.EarlyStoppingPolicy(successive_halving=rule)
    if stopping == "hyperband":
        hb = p.HyperbandRule(
            min_resource=MIN_RESOURCE, max_resource=max_steps, reduction_factor=REDUCTION_FACTOR
        )
        return p.EarlyStoppingPolicy(hyperband=hb)
    raise ValueError(stopping)


def create_study(
    stub: Any,
    family: Family,
    algorithm: int,
    stopping: str,
    seed: int,
    label: str,
) -> str:
    """Creates a hyperdial study for ``family``; its name."""
    spec = study_pb2.StudySpec(
        parameters=[_param_pb(p) for p in family.params],
        objectives=[study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)],
        algorithm=algorithm,
        seed=seed,
    )
    policy = hyperdial_policy(stopping, family.max_steps)
    if policy is not None:
        spec.early_stopping.CopyFrom(policy)
    study_id = f"{label}-{uuid.uuid4().hex[:10]}"
    stub.CreateStudy(tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=spec))
    return f"studies/{study_id}"


def _params(trial: trial_pb2.Trial) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {}
    for name, v in trial.parameters.items():
        out[name] = getattr(v, str(v.WhichOneof("kind")))
    return out


class HyperdialTuner:
    """One study on a hyperdial server, through the generated stub."""

    def __init__(
        self, stub: Any, family: Family, sampler: str, stopping: str, seed: int, label: str
    ) -> None:
        algorithm = (
            study_pb2.ALGORITHM_BAYESIAN if sampler == "bayes" else study_pb2.ALGORITHM_RANDOM
        )
        self.stub = stub
        self.parent = create_study(stub, family, algorithm, stopping, seed, label)
        self.ask_s: list[float] = []
        self.report_s: list[float] = []

    def ask(self) -> tuple[Any, Params]:
        t0 = time.perf_counter()
        resp = self.stub.SuggestTrials(
            tuning_service_pb2.SuggestTrialsRequest(parent=self.parent, count=1)
        )
        self.ask_s.append(time.perf_counter() - t0)
        trial = resp.trials[0]
        return trial.name, _params(trial)

    def report(self, handle: Any, step: int, value: float) -> bool:
        req = tuning_service_pb2.AddTrialMeasurementRequest(
            name=handle, measurement=trial_pb2.Measurement(step=step, values={"loss": value})
        )
        t0 = time.perf_counter()
        resp = self.stub.AddTrialMeasurement(req)
        self.report_s.append(time.perf_counter() - t0)
        return bool(resp.decision.should_stop)

    def complete(self, handle: Any, value: float) -> None:
        self.stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=handle, final_measurement=trial_pb2.Measurement(values={"loss": value})
            )
        )

    def close(self) -> None:
        self.stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=self.parent))


class OptunaTuner:
    """One in-memory Optuna study, driven by ask-and-tell."""

    def __init__(self, family: Family, sampler: str, stopping: str, seed: int, label: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.optuna = optuna
        samplers = optuna.samplers
        chosen: optuna.samplers.BaseSampler = (
            samplers.TPESampler(seed=seed)
            if sampler == "tpe"
            else samplers.RandomSampler(seed=seed)
        )
        pruners = optuna.pruners
        pruner: optuna.pruners.BasePruner
        if stopping == "none":
            pruner = pruners.NopPruner()
        elif stopping == "median":
            pruner = pruners.MedianPruner(n_startup_trials=MEDIAN_MIN_TRIALS, n_warmup_steps=0)
        elif stopping == "sh":
            pruner = pruners.SuccessiveHalvingPruner(
                min_resource=MIN_RESOURCE, reduction_factor=REDUCTION_FACTOR
            )
        else:
            pruner = pruners.HyperbandPruner(
                min_resource=MIN_RESOURCE,
                max_resource=family.max_steps,
                reduction_factor=REDUCTION_FACTOR,
            )
        # A fixed study name: Hyperband's brackets are a hash of it and the trial number.
        self.study = optuna.create_study(
            study_name=label, sampler=chosen, pruner=pruner, direction="minimize"
        )
        self.dists: dict[str, Any] = {}
        d = optuna.distributions
        for p in family.params:
            if p.kind == "float":
                self.dists[p.name] = d.FloatDistribution(p.low, p.high, log=p.log)
            elif p.kind == "int":
                self.dists[p.name] = d.IntDistribution(int(p.low), int(p.high), log=p.log)
            else:
                self.dists[p.name] = d.CategoricalDistribution(list(p.values))
        self.ask_s: list[float] = []
        self.report_s: list[float] = []

    def ask(self) -> tuple[Any, Params]:
        t0 = time.perf_counter()
        trial = self.study.ask(self.dists)
        self.ask_s.append(time.perf_counter() - t0)
        return trial, trial.params

    def report(self, handle: Any, step: int, value: float) -> bool:
        t0 = time.perf_counter()
        handle.report(value, step)
        prune = bool(handle.should_prune())
        if prune:
            self.study.tell(handle, state=self.optuna.trial.TrialState.PRUNED)
        self.report_s.append(time.perf_counter() - t0)
        return prune

    def complete(self, handle: Any, value: float) -> None:
        self.study.tell(handle, value)

    def close(self) -> None:
        pass


# --- one run: the deterministic K-worker schedule ---------------------------------------------


@dataclass
class RunResult:
    family: str
    workers: int
    method: str
    seed: int
    budget: int
    #: (steps spent when it finished, observed final value, noise-free final value)
    completions: list[tuple[int, float, float]] = field(default_factory=list)
    trials: int = 0
    ask_ms: float = math.nan
    report_ms: float = math.nan
    seconds: float = 0.0


def run_schedule(tuner: Tuner, family: Family, workers: int, budget: int) -> RunResult:
    """Runs the schedule to ``budget`` steps; fills completions and trials of a result."""
    result = RunResult(family.name, workers, "", 0, budget)
    spent = 0
    # Per worker: [handle, curve, steps trained] or None when idle.
    slots: list[list[Any] | None] = [None] * workers
    while spent < budget:
        for w in range(workers):
            if spent >= budget:
                break
            slot = slots[w]
            if slot is None:
                handle, params = tuner.ask()
                result.trials += 1
                slot = slots[w] = [handle, family.start(params), 0]
            handle, curve, steps = slot
            value = curve.next()
            steps += 1
            spent += 1
            if steps == family.max_steps:
                tuner.complete(handle, value)
                result.completions.append((spent, value, curve.true_final))
                slots[w] = None
            elif tuner.report(handle, steps, value):
                slots[w] = None
            else:
                slot[2] = steps
    return result


@dataclass(frozen=True)
class Job:
    family: str
    workers: int
    method: str
    seed: int
    budget: int


_STUB: Any = None


def _stub(target: str) -> Any:
    global _STUB
    if _STUB is None:
        _STUB = tuning_service_pb2_grpc.TuningServiceStub(grpc.insecure_channel(target))
    return _STUB


def run_job(job: Job, target: str) -> RunResult:
    """One seeded run of one method (in this process or a pool's)."""
    family = FAMILIES[job.family]
    side, sampler, stopping = METHODS[job.method]
    label = f"es-{job.family}-k{job.workers}-{job.method}-s{job.seed}"
    t0 = time.perf_counter()
    tuner: HyperdialTuner | OptunaTuner
    if side == "hyperdial":
        tuner = HyperdialTuner(_stub(target), family, sampler, stopping, job.seed, label)
    else:
        tuner = OptunaTuner(family, sampler, stopping, job.seed, label)
    try:
        result = run_schedule(tuner, family, job.workers, job.budget)
    finally:
        tuner.close()
    result.method, result.seed = job.method, job.seed
    result.seconds = time.perf_counter() - t0
    if tuner.ask_s:
        result.ask_ms = 1000 * statistics.median(tuner.ask_s)
    if tuner.report_s:
        result.report_ms = 1000 * statistics.median(tuner.report_s)
    return result


# --- servers ----------------------------------------------------------------------------------


class Server:
    """A hyperdial server process on a free loopback port (memory store unless ``redis``)."""

    def __init__(self, redis: str = "") -> None:
        args = [sys.executable, "-m", "hyperdial_server", "--port", "0"]
        if redis:
            args += ["--redis", redis]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on ([0-9.]+):([0-9]+)", line)
        if not match:
            self.proc.kill()
            self.log.seek(0)
            raise RuntimeError(f"server did not start: {line!r}\n{self.log.read()[-3000:]}")
        self.target = f"{match.group(1)}:{match.group(2)}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


@contextmanager
def server(redis: str = "") -> Iterator[Server]:
    s = Server(redis)
    try:
        yield s
    finally:
        s.stop()


@contextmanager
def redis_server(url: str) -> Iterator[str]:
    """``url``, or a ``redis-server`` started for the run (as ``load.py`` does)."""
    if url:
        yield url
        return
    from tests.redis_server import RedisServer

    with RedisServer() as r:
        yield r.url


# --- scoring ----------------------------------------------------------------------------------


def regret_curve(result: RunResult, opt: float) -> list[float]:
    """Regret at every budget fraction of ``GRID`` (inf before any trial trained to the end)."""
    out: list[float] = []
    done = sorted(result.completions)
    i, best_obs, best_true = 0, math.inf, math.inf
    for frac in GRID:
        b = round(frac * result.budget)
        while i < len(done) and done[i][0] <= b:
            if done[i][1] < best_obs:
                best_obs, best_true = done[i][1], done[i][2]
            i += 1
        out.append(best_true - opt)
    return out


@dataclass
class Row:
    family: str
    workers: int
    method: str
    curve: list[float]  # median regret over seeds at each GRID fraction
    finals: list[float]  # per-seed regret at the full budget
    trials: float
    full_length: float
    ask_ms: float
    report_ms: float
    seconds: float

    @property
    def regret(self) -> float:
        return self.curve[-1]

    def at(self, frac: float) -> float:
        return self.curve[GRID.index(frac)]

    def fraction_to(self, target: float) -> float | None:
        """Smallest budget fraction at which the median regret is at or below ``target``."""
        for frac, r in zip(GRID, self.curve, strict=True):
            if r <= target:
                return frac
        return None


def _median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def aggregate(results: list[RunResult]) -> tuple[list[Row], dict[str, float]]:
    """Rows in the order of ``METHODS``, per family and K; the optimum used per family."""
    opts: dict[str, float] = {}
    for name in {r.family for r in results}:
        known = optimum(FAMILIES[name])
        if known is None:  # the best full-length value found by any run of the family
            finals = [c[2] for r in results if r.family == name for c in r.completions]
            known = min(finals) if finals else math.nan
        opts[name] = known
    groups: dict[tuple[str, int, str], list[RunResult]] = defaultdict(list)
    for r in results:
        groups[(r.family, r.workers, r.method)].append(r)
    rows: list[Row] = []
    order = {m: i for i, m in enumerate(METHODS)}
    fam_order = {f: i for i, f in enumerate(FAMILIES)}
    for (fam, k, method), runs in sorted(
        groups.items(), key=lambda kv: (fam_order[kv[0][0]], kv[0][1], order[kv[0][2]])
    ):
        runs.sort(key=lambda r: r.seed)
        curves = [regret_curve(r, opts[fam]) for r in runs]
        median_curve = [statistics.median(c[i] for c in curves) for i in range(len(GRID))]
        rows.append(
            Row(
                fam,
                k,
                method,
                median_curve,
                [c[-1] for c in curves],
                _median([r.trials for r in runs]),
                _median([len(r.completions) for r in runs]),
                _median([r.ask_ms for r in runs]),
                _median([r.report_ms for r in runs]),
                sum(r.seconds for r in runs),
            )
        )
    return rows, opts


def _g(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}"


def print_regret_tables(rows: list[Row], opts: dict[str, float]) -> None:
    counts = sorted({len(r.finals) for r in rows})
    seeds = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    print(
        f"\nMedian over {seeds} seeds. regret: at the full budget; at 40 %: with 40 % of it; "
        "to reach no-stop: the least budget at which the median regret is at or below the same "
        "sampler's no-stopping regret at the full budget.\n"
    )
    print(
        "| family | K | method | median regret | at 40 % | to reach no-stop | trials "
        "| full-length | ask ms | report ms |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_key = {(r.family, r.workers, r.method): r for r in rows}
    for r in rows:
        side, sampler, _ = METHODS[r.method]
        prefix = "hd" if side == "hyperdial" else "optuna"
        ref = by_key.get((r.family, r.workers, f"{prefix}-{sampler}-none"))
        reach = "-"
        if ref is not None and ref is not r and math.isfinite(ref.regret):
            frac = r.fraction_to(ref.regret)
            reach = f"{100 * frac:.0f} %" if frac is not None else "never"
        print(
            f"| {r.family} | {r.workers} | {r.method} | {_g(r.regret)} | {_g(r.at(0.4))} "
            f"| {reach} | {r.trials:.0f} | {r.full_length:.0f} | {r.ask_ms:.2f} "
            f"| {r.report_ms:.2f} |"
        )
    print()
    for fam, opt in opts.items():
        what = "known optimum" if optimum(FAMILIES[fam]) is not None else "best found in the run"
        print(f"- {fam}: regret = final value - {opt:.6g} ({what})")


def print_summary(rows: list[Row], frac: float = 1.0) -> None:
    """One line per method: its median regret at ``frac`` of the budget per family and K;
    the lowest of each column in bold."""
    cols = sorted(
        {(r.family, r.workers) for r in rows},
        key=lambda c: (list(FAMILIES).index(c[0]), c[1]),
    )
    by_key = {(r.family, r.workers, r.method): r for r in rows}
    best = {
        c: min((r.at(frac) for r in rows if (r.family, r.workers) == c), default=math.nan)
        for c in cols
    }
    what = "the full budget" if frac == 1.0 else f"{100 * frac:.0f} % of the budget"
    print(f"\nMedian regret at {what}:\n")
    print("| method | " + " | ".join(f"{f} K={k}" for f, k in cols) + " |")
    print("| --- |" + " ---: |" * len(cols))
    for method in METHODS:
        cells = []
        for c in cols:
            r = by_key.get((c[0], c[1], method))
            if r is None:
                cells.append("")
                continue
            text = _g(r.at(frac))
            cells.append(f"**{text}**" if r.at(frac) == best[c] else text)
        if any(cells):
            print(f"| {method} | " + " | ".join(cells) + " |")


def print_budget_curves(rows: list[Row], fractions: Sequence[float] = CURVE_FRACTIONS) -> None:
    """Median regret at a few fractions of the budget, per family, K and method."""
    cols = " | ".join(f"{100 * f:.0f} %" for f in fractions)
    print(f"\nMedian regret by budget spent:\n\n| family | K | method | {cols} |")
    print("| --- | ---: | --- |" + " ---: |" * len(fractions))
    for r in rows:
        cells = " | ".join(_g(r.at(f)) for f in fractions)
        print(f"| {r.family} | {r.workers} | {r.method} | {cells} |")


def print_targets(rows: list[Row]) -> None:
    """The issue's targets, per family and K."""
    print(
        "\n| family | K | hyperdial BAYESIAN: best policy | regret | best Optuna | regret "
        "| lower? | hyperband (fixed in advance) | lower? | best policy: to reach no-stop |"
    )
    print("| --- | ---: | --- | ---: | --- | ---: | --- | ---: | --- | ---: |")
    keys = sorted(
        {(r.family, r.workers) for r in rows}, key=lambda k: (list(FAMILIES).index(k[0]), k[1])
    )
    by_key = {(r.family, r.workers, r.method): r for r in rows}
    for fam, k in keys:
        hd = [
            r
            for r in rows
            if (r.family, r.workers) == (fam, k) and METHODS[r.method][:2] == ("hyperdial", "bayes")
        ]
        op = [
            r
            for r in rows
            if (r.family, r.workers) == (fam, k) and METHODS[r.method][0] == "optuna"
        ]
        if not hd or not op:
            continue
        best_hd = min(hd, key=lambda r: r.regret)
        best_op = min(op, key=lambda r: r.regret)
        hb = by_key.get((fam, k, "hd-bayes-hyperband"))
        nostop = by_key.get((fam, k, "hd-bayes-none"))
        reach = "-"
        if nostop is not None and best_hd.method != "hd-bayes-none":
            frac = best_hd.fraction_to(nostop.regret)
            reach = f"{100 * frac:.0f} %" if frac is not None else "never"
        hb_cells = (
            f"{_g(hb.regret)} | {'yes' if hb.regret < best_op.regret else 'no'}" if hb else "- | -"
        )
        print(
            f"| {fam} | {k} | {best_hd.method} | {_g(best_hd.regret)} | {best_op.method} "
            f"| {_g(best_op.regret)} | {'yes' if best_hd.regret < best_op.regret else '**no**'} "
            f"| {hb_cells} | {reach} |"
        )


# --- the overhead of a report on Redis ----------------------------------------------------------


def _reporter(
    target: str,
    parent: str,
    barrier: Any,
    seconds: float,
    warmup: float,
    index: int,
    out: Any,
) -> None:
    """Loops ask → reports (until stopped or full length) → tell; sends report latencies."""
    import random

    family = FAMILIES["rank"]
    stub = tuning_service_pb2_grpc.TuningServiceStub(grpc.insecure_channel(target))
    rnd = random.Random(index)
    lat: list[float] = []
    barrier.wait()
    start = time.perf_counter()
    end = start + warmup + seconds
    while time.perf_counter() < end:
        trial = stub.SuggestTrials(
            tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1)
        ).trials[0]
        curve = family.start(_params(trial))
        stopped = False
        for step in range(1, family.max_steps):
            value = curve.next() + 0.01 * rnd.random()
            req = tuning_service_pb2.AddTrialMeasurementRequest(
                name=trial.name,
                measurement=trial_pb2.Measurement(step=step, values={"loss": value}),
            )
            t0 = time.perf_counter()
            resp = stub.AddTrialMeasurement(req)
            t1 = time.perf_counter()
            if t0 >= start + warmup and t1 <= end:
                lat.append(t1 - t0)
            if resp.decision.should_stop:
                stopped = True
                break
            if t1 > end:
                break
        if not stopped:
            stub.CompleteTrial(
                tuning_service_pb2.CompleteTrialRequest(
                    name=trial.name,
                    final_measurement=trial_pb2.Measurement(values={"loss": curve.next()}),
                )
            )
    out.put(lat)


def measure_overhead(
    redis_url: str, workers: Sequence[int], policies: Sequence[str], seconds: float, warmup: float
) -> None:
    family = FAMILIES["rank"]
    ctx = mp.get_context("spawn")
    print(
        f"\nAddTrialMeasurement over gRPC, Redis store, one replica; W reporter processes "
        f"looping ask, a report per step until stopped or step {family.max_steps - 1}, tell "
        f"(RANDOM study, {family.name} curves); {seconds:g} s after {warmup:g} s of warm-up.\n"
    )
    print("| policy | W | reports | reports/s | p50 ms | p90 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with redis_server(redis_url) as url, server(url) as srv:
        stub = tuning_service_pb2_grpc.TuningServiceStub(grpc.insecure_channel(srv.target))
        for w in workers:
            for stopping in policies:
                parent = create_study(
                    stub, family, study_pb2.ALGORITHM_RANDOM, stopping, 0, f"es-overhead-{stopping}"
                )
                barrier = ctx.Barrier(w)
                out = ctx.Queue()
                procs = [
                    ctx.Process(
                        target=_reporter,
                        args=(srv.target, parent, barrier, seconds, warmup, i, out),
                    )
                    for i in range(w)
                ]
                for p in procs:
                    p.start()
                lat: list[float] = []
                for _ in procs:
                    lat += out.get()
                for p in procs:
                    p.join()
                stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=parent))
                lat.sort()

                def pct(q: float, lat: list[float] = lat) -> float:
                    return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else math.nan

                print(
                    f"| {stopping} | {w} | {len(lat):,} | {len(lat) / seconds:,.0f} "
                    f"| {pct(0.5):.2f} | {pct(0.9):.2f} | {pct(0.99):.2f} |",
                    flush=True,
                )


# --- main -------------------------------------------------------------------------------------


def describe_machine() -> str:
    """What ran: hyperdial's commit (and whether its tree had changes), versions, the machine."""
    from importlib.metadata import PackageNotFoundError, version

    def run(*cmd: str) -> str:
        try:
            out = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True, timeout=10)
            return out.stdout.strip()
        except OSError:
            return ""

    commit = run("git", "rev-parse", "--short", "HEAD") or "unknown"
    dirty = run("git", "status", "--porcelain", "--", "server", "client", "protos")
    versions = []
    for name in ("optuna", "scikit-learn", "grpcio"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} missing")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"hyperdial {commit}{' with uncommitted changes' if dirty else ''}; "
        f"{', '.join(versions)}; {os.cpu_count()} CPUs, load average at the start: {load}"
    )


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_runs(path: str) -> list[RunResult]:
    """The runs saved in ``path`` (JSON lines, one run per line; none if it does not exist)."""
    if not path or not os.path.exists(path):
        return []
    runs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                d["completions"] = [tuple(c) for c in d["completions"]]
                runs.append(RunResult(**d))
    return runs


def run_all(jobs: list[Job], target: str, n_jobs: int, save: str = "") -> list[RunResult]:
    """Runs ``jobs``; with ``save``, appends each run to that file as it ends."""
    results: list[RunResult] = []
    total = len(jobs)
    t0 = time.perf_counter()
    out = open(save, "a") if save else None

    def done(r: RunResult) -> None:
        results.append(r)
        if out is not None:
            out.write(json.dumps(asdict(r)) + "\n")
            out.flush()
        _log(
            f"# [{len(results)}/{total} {time.perf_counter() - t0:.0f} s] {r.family} K={r.workers} "
            f"{r.method} seed {r.seed}: {r.trials} trials, {len(r.completions)} full-length, "
            f"best {min((c[1] for c in r.completions), default=math.inf):.4g}, "
            f"{r.seconds:.1f} s"
        )

    try:
        if n_jobs <= 1:
            for job in jobs:
                done(run_job(job, target))
            return results
        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_job, job, target) for job in jobs]
            for f in as_completed(futures):
                done(f.result())
        return results
    finally:
        if out is not None:
            out.close()


def main(argv: Sequence[str] | None = None) -> int:
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 seeds, a budget of 8 full trainings, 2 s per overhead measurement",
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds per method, family and K")
    parser.add_argument(
        "--budget", type=int, default=40, help="the budget in full trainings (x 27 steps)"
    )
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    parser.add_argument("--workers", default="1,4", help="values of K, comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="runs at a time, in worker processes; the schedule is deterministic, so results "
        "do not depend on it (times do)",
    )
    parser.add_argument(
        "--redis", default="", help="Redis URL for the overhead; empty: start a redis-server"
    )
    parser.add_argument(
        "--overhead-seconds", type=float, default=10.0, help="measured seconds per row"
    )
    parser.add_argument(
        "--overhead-workers", default="1,4", help="concurrent reporter processes (W)"
    )
    parser.add_argument(
        "--overhead-policies",
        default="none,median,sh,hyperband",
        help="policies of the overhead studies",
    )
    parser.add_argument(
        "--save",
        default="",
        help="append every run to this file (JSON lines) as it ends; runs already in it (same "
        "family, K, method, seed and budget) are taken from it instead of run again",
    )
    parser.add_argument(
        "--no-run", action="store_true", help="only print the tables of the runs in --save"
    )
    parser.add_argument("--skip-overhead", action="store_true", help="regrets only")
    parser.add_argument("--skip-regret", action="store_true", help="overhead only")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.overhead_seconds = 2, 8, 2.0
    families = args.families.split(",")
    methods = args.methods.split(",")
    for name in families:
        if name not in FAMILIES:
            parser.error(f"unknown family {name!r}; one of {', '.join(FAMILIES)}")
    for name in methods:
        if name not in METHODS:
            parser.error(f"unknown method {name!r}; one of {', '.join(METHODS)}")
    ks = [int(k) for k in args.workers.split(",")]
    t0 = time.perf_counter()
    print(describe_machine(), flush=True)
    if not args.skip_regret:
        print(
            f"Budget {args.budget} full trainings ({args.budget} x 27 steps); K = {ks}; "
            f"{args.seeds} seeds; rules: min resource {MIN_RESOURCE}, eta {REDUCTION_FACTOR}, "
            f"max resource 27, median after {MEDIAN_MIN_TRIALS} trials.",
            flush=True,
        )
        jobs = [
            Job(fam, k, m, seed, args.budget * FAMILIES[fam].max_steps)
            for fam in families
            for k in ks
            for m in methods
            for seed in range(args.seeds)
        ]
        wanted = set(jobs)
        results = [
            r
            for r in load_runs(args.save)
            if Job(r.family, r.workers, r.method, r.seed, r.budget) in wanted
        ]
        have = {Job(r.family, r.workers, r.method, r.seed, r.budget) for r in results}
        todo = [j for j in jobs if j not in have]
        if results:
            print(f"{len(results)} runs taken from {args.save}; {len(todo)} to run.")
        if todo and not args.no_run:
            with server() as srv:
                results += run_all(todo, srv.target, args.jobs, args.save)
        rows, opts = aggregate(results)
        for r in rows:
            _log(f"# {r.family} K={r.workers} {r.method}: regrets {[_g(x) for x in r.finals]}")
        print_regret_tables(rows, opts)
        print_summary(rows)
        print_summary(rows, 0.4)
        print_budget_curves(rows)
        print_targets(rows)
    if not args.skip_overhead:
        measure_overhead(
            args.redis,
            [int(w) for w in args.overhead_workers.split(",")],
            args.overhead_policies.split(","),
            args.overhead_seconds,
            warmup=min(2.0, args.overhead_seconds / 2),
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nWall time: {time.perf_counter() - t0:.0f} s; load average at the end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
