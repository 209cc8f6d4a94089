"""Benchmark: two objectives, hyperdial BAYESIAN against Optuna's samplers, side by side.

Problems (``mo_problems.py``, both objectives minimised, true fronts known): ZDT1 and ZDT2 in
5 dimensions, DTLZ2 (2 objectives, 5 dimensions) and ``training_mo`` (error against latency in
a mixed space: log float, ints, a categorical). Methods:

* ``hyperdial``: a real server (``bayes.Server``) driven over gRPC, ask (``SuggestTrials``,
  ``count=1``), evaluate, tell (``CompleteTrial``), an ``ALGORITHM_BAYESIAN`` study with both
  objectives and the run's seed;
* ``sobol``: the same server, ``ALGORITHM_QUASI_RANDOM`` (a floor);
* ``hyperdial-NAME``: a variant, ``--hyperdial-variant NAME=TEXT`` merges ``TEXT`` (protobuf
  text format) into the ``StudySpec``, e.g. an algorithm option of a newer server;
* Optuna 5.1, ask-and-tell in process, seeded, defaults: ``optuna-gp`` (``GPSampler``), ``nsga2``
  (``NSGAIISampler``, population 50), ``tpe`` (``TPESampler``), ``random`` (``RandomSampler``,
  the floor every regret is divided by).

Score after b trials (``--trials``, default 60; several budgets read one run to the largest):
the hypervolume of the non-dominated set of the values observed so far, with respect to the
problem's fixed reference point, and its regret: the true front's hypervolume minus it. Per
problem and method: median and interquartile range over seeds, the median regret divided by
random's, and the median time of one ask (over gRPC for hyperdial; ``study.ask()`` and the
suggestions for Optuna, where its sampling happens). Then per method: the mean over problems
of that ratio.

``--ask-time`` measures the overhead of one ask on a 2-objective study (ZDT1, 5-D) holding 50
and then 300 completed trials (the same uniform random history for both tools): hyperdial's
``SuggestTrials`` over gRPC against ``GPSampler``'s ``study.ask()`` with the suggestions, in
process; median of ``--asks`` asks, each told before the next. Run it alone (``--seeds 0
--ask-time``) and with ``--jobs 1``: parallel runs share the CPU.

    python bench/multiobjective.py                                 # 60 trials x 10 seeds
    python bench/multiobjective.py --seeds 2 --problems zdt1 --methods hyperdial,random
    python bench/multiobjective.py --jobs 2 --save mo.jsonl        # and --no-run to print again
    python bench/multiobjective.py --seeds 0 --ask-time --save mo.jsonl

Runs of an invocation replace saved runs of the same problem, method and seed, so seeds can be
split over invocations (``--first-seed``) and merged in one file. Needs the ``bench`` extra
(Optuna, PyTorch for GPSampler).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import text_format

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes import Server, _param_pb, _params, _suggest, _value_pb  # noqa: E402
from bayes_problems import Param  # noqa: E402
from mo_problems import PROBLEMS, MOProblem, check_true_fronts, hypervolume  # noqa: E402

from hyperdial.v1 import (  # noqa: E402
    study_pb2,
    trial_pb2,
    tuning_service_pb2,
    tuning_service_pb2_grpc,
)

METHODS = ("hyperdial", "optuna-gp", "nsga2", "tpe", "random", "sobol")
#: Methods run by hyperdial's server (variants ``hyperdial-NAME`` too).
SERVER_METHODS = ("hyperdial", "sobol")
#: Completed trials in the studies of ``--ask-time``.
ASK_HISTORIES = (50, 300)

#: One run: problem, method, seed, trials, spec text merged for a hyperdial variant.
Task = tuple[str, str, int, int, str]


def _is_server_method(method: str) -> bool:
    return method in SERVER_METHODS or method.startswith("hyperdial-")


def _spec(problem: MOProblem, algorithm: int, seed: int, extra: str) -> study_pb2.StudySpec:
    spec = study_pb2.StudySpec(
        parameters=[_param_pb(p) for p in problem.params],
        objectives=[
            study_pb2.ObjectiveSpec(name=name, goal=study_pb2.GOAL_MINIMIZE)
            for name in problem.objectives
        ],
        algorithm=algorithm,
        seed=seed,
    )
    if extra:
        text_format.Merge(extra, spec)
    return spec


def run_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub,
    problem: MOProblem,
    method: str,
    seed: int,
    n_trials: int,
    extra: str,
) -> tuple[list[list[float]], list[float]]:
    """Objective values of every trial and seconds of every ask of one run over gRPC.

    Args:
        stub: A stub on the benchmark's server.
        problem: The problem.
        method: ``sobol`` for a quasi-random study; any other is Bayesian.
        seed: The study's seed.
        n_trials: Trials to run, one ask at a time.
        extra: Text-format ``StudySpec`` fields merged into the spec (a variant), or "".

    Returns:
        The values of every trial in order, and the seconds of every ask.
    """
    algorithm = (
        study_pb2.ALGORITHM_QUASI_RANDOM if method == "sobol" else study_pb2.ALGORITHM_BAYESIAN
    )
    # pid and time: studies of parallel processes and repeated runs never share an id.
    study_id = f"mo-{problem.name}-{seed}-{os.getpid()}-{time.time_ns()}"
    stub.CreateStudy(
        tuning_service_pb2.CreateStudyRequest(
            study_id=study_id, spec=_spec(problem, algorithm, seed, extra)
        )
    )
    parent = f"studies/{study_id}"
    values: list[list[float]] = []
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        resp = stub.SuggestTrials(tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1))
        times.append(time.perf_counter() - t0)
        trial = resp.trials[0]
        f = problem.fn(_params(trial))
        values.append(list(f))
        stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name,
                final_measurement=trial_pb2.Measurement(
                    values=dict(zip(problem.objectives, f, strict=True))
                ),
            )
        )
    stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=parent))
    return values, times


def _optuna_sampler(method: str, seed: int) -> Any:
    import optuna

    if method == "optuna-gp":
        return optuna.samplers.GPSampler(seed=seed)
    if method == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown method {method!r}")


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def run_optuna(
    method: str, problem: MOProblem, seed: int, n_trials: int
) -> tuple[list[list[float]], list[float]]:
    """Objective values of every trial and seconds of every ask of one Optuna run.

    An ask is ``study.ask()`` and the suggestions: Optuna samples at the first suggestion.
    """
    import optuna

    _quiet_optuna()
    study = optuna.create_study(
        sampler=_optuna_sampler(method, seed), directions=["minimize", "minimize"]
    )
    values: list[list[float]] = []
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial = study.ask()
        point = {p.name: _suggest(trial, p) for p in problem.params}
        times.append(time.perf_counter() - t0)
        f = problem.fn(point)
        values.append(list(f))
        study.tell(trial, list(f))
    return values, times


# The stub of a worker process: its own channel to the shared server.
_worker_stub: tuning_service_pb2_grpc.TuningServiceStub | None = None


def _init_worker(target: str | None) -> None:
    global _worker_stub
    if target is not None:
        _worker_stub = tuning_service_pb2_grpc.TuningServiceStub(grpc.insecure_channel(target))


def run_task(task: Task) -> dict[str, Any]:
    """One seeded run; the record saved and tabulated."""
    name, method, seed, n_trials, extra = task
    problem = PROBLEMS[name]
    t0, cpu0 = time.perf_counter(), time.process_time()
    if _is_server_method(method):
        assert _worker_stub is not None, "no server"
        values, times = run_hyperdial(_worker_stub, problem, method, seed, n_trials, extra)
    else:
        values, times = run_optuna(method, problem, seed, n_trials)
    return {
        "kind": "run",
        "problem": name,
        "method": method,
        "seed": seed,
        "spec_extra": extra,
        "values": values,
        "ask_seconds": times,
        "seconds": time.perf_counter() - t0,
        # This process only: hyperdial's sampling runs in the server.
        "cpu_seconds": time.process_time() - cpu0,
    }


def _history(problem: MOProblem, n: int) -> list[dict[str, float | int | str]]:
    """``n`` uniform random points (seeded): the completed trials of an ask-time study.

    Float parameters only (the ask-time study is ZDT1).
    """
    rng = np.random.default_rng(12345)
    return [{p.name: float(rng.uniform(p.low, p.high)) for p in problem.params} for _ in range(n)]


def _distribution(p: Param) -> Any:
    import optuna

    if p.kind == "float":
        return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
    if p.kind == "int":
        return optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
    return optuna.distributions.CategoricalDistribution(list(p.values))


def ask_time_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub, history: int, asks: int, extra: str
) -> list[float]:
    """Seconds of ``asks`` Bayesian asks on a ZDT1 study holding ``history`` completed trials."""
    problem = PROBLEMS["zdt1"]
    study_id = f"mo-ask-{history}-{time.time_ns()}"
    spec = _spec(problem, study_pb2.ALGORITHM_BAYESIAN, 0, extra)
    stub.CreateStudy(tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=spec))
    parent = f"studies/{study_id}"
    for point in _history(problem, history):
        stub.CreateTrial(
            tuning_service_pb2.CreateTrialRequest(
                parent=parent,
                parameters={k: _value_pb(v) for k, v in point.items()},
                final_measurement=trial_pb2.Measurement(
                    values=dict(zip(problem.objectives, problem.fn(point), strict=True))
                ),
            )
        )
    times = []
    for _ in range(asks):
        t0 = time.perf_counter()
        resp = stub.SuggestTrials(tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1))
        times.append(time.perf_counter() - t0)
        trial = resp.trials[0]
        stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name,
                final_measurement=trial_pb2.Measurement(
                    values=dict(zip(problem.objectives, problem.fn(_params(trial)), strict=True))
                ),
            )
        )
    stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=parent))
    return times


def ask_time_optuna(history: int, asks: int) -> list[float]:
    """Seconds of ``asks`` GPSampler asks (and suggestions) after the same history."""
    import optuna

    _quiet_optuna()
    problem = PROBLEMS["zdt1"]
    dists = {p.name: _distribution(p) for p in problem.params}
    study = optuna.create_study(
        sampler=optuna.samplers.GPSampler(seed=0), directions=["minimize", "minimize"]
    )
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=point, distributions=dists, values=list(problem.fn(point))
            )
            for point in _history(problem, history)
        ]
    )
    times = []
    for _ in range(asks):
        t0 = time.perf_counter()
        trial = study.ask()
        point = {p.name: _suggest(trial, p) for p in problem.params}
        times.append(time.perf_counter() - t0)
        study.tell(trial, list(problem.fn(point)))
    return times


def measure_ask_time(
    server: Server, methods: list[str], variants: dict[str, str], asks: int
) -> list[dict[str, Any]]:
    """The ask-time records: every Bayesian hyperdial method and GPSampler, per history."""
    records = []
    timed = [m for m in methods if m == "hyperdial" or m.startswith("hyperdial-")] or ["hyperdial"]
    for history in ASK_HISTORIES:
        for method in [*timed, "optuna-gp"]:
            if method == "optuna-gp":
                times = ask_time_optuna(history, asks)
            else:
                times = ask_time_hyperdial(server.stub, history, asks, variants.get(method, ""))
            records.append(
                {
                    "kind": "ask",
                    "study": "zdt1, 2 objectives, 5-D",
                    "history": history,
                    "method": method,
                    "ask_seconds": times,
                }
            )
            print(
                f"# ask time, {history} trials, {method}: "
                f"{1000 * statistics.median(times):.1f} ms median of {len(times)}",
                file=sys.stderr,
                flush=True,
            )
    return records


def _hv_scores(record: dict[str, Any], b: int) -> tuple[float, float]:
    """Hypervolume and hypervolume regret of a run's first ``b`` trials."""
    problem = PROBLEMS[record["problem"]]
    hv = hypervolume((tuple(v) for v in record["values"][:b]), problem.reference)
    return hv, problem.true_hv() - hv


def _iqr(xs: list[float]) -> str:
    q1, q3 = np.percentile(xs, [25, 75])
    return f"{q1:.4g}-{q3:.4g}"


def _order(methods: list[str]) -> list[str]:
    return sorted(methods, key=lambda m: (METHODS.index(m) if m in METHODS else 0.5, m))


def _table(records: list[dict[str, Any]], budgets: list[int]) -> None:
    runs = [r for r in records if r.get("kind", "run") == "run"]
    if not runs:
        return
    names = [n for n in PROBLEMS if any(r["problem"] == n for r in runs)]
    methods = _order(list({r["method"] for r in runs}))
    # (problem, method, budget) -> hypervolumes, regrets and ask seconds of every seed.
    cells: dict[tuple[str, str, int], tuple[list[float], list[float], list[float]]] = {}
    for name in names:
        for method in methods:
            mine = [r for r in runs if r["problem"] == name and r["method"] == method]
            for b in budgets:
                done = [r for r in mine if len(r["values"]) >= b]
                if done:
                    scores = [_hv_scores(r, b) for r in done]
                    cells[(name, method, b)] = (
                        [s[0] for s in scores],
                        [s[1] for s in scores],
                        [t for r in done for t in r["ask_seconds"][:b]],
                    )
    regret = {key: statistics.median(cell[1]) for key, cell in cells.items()}
    for b in budgets:
        print(f"\n#### After {b} trials\n")
        print(
            "| problem | method | median HV | HV IQR | median HV regret | regret IQR "
            "| regret / random's | median ask ms | seeds |"
        )
        print("| --- | --- |" + " ---: |" * 7)
        for name in names:
            for method in methods:
                if (name, method, b) not in cells:
                    continue
                hvs, regs, asks = cells[(name, method, b)]
                floor = regret.get((name, "random", b), 0.0)
                ratio = f"{regret[(name, method, b)] / floor:.3g}" if floor > 0 else "-"
                print(
                    f"| {name} | {method} | {statistics.median(hvs):.4g} | {_iqr(hvs)} "
                    f"| {statistics.median(regs):.4g} | {_iqr(regs)} | {ratio} "
                    f"| {1000 * statistics.median(asks):.1f} | {len(hvs)} |"
                )
    print("\nMean over problems of median HV regret / random's (problems where both ran)\n")
    print("| method | problems | " + " | ".join(f"@{b}" for b in budgets) + " |")
    print("| --- | ---: |" + " ---: |" * len(budgets))
    for method in methods:
        row, counts = [], []
        for b in budgets:
            # A problem where random's median regret is 0 has no ratio: left out.
            ratios = [
                regret[(n, method, b)] / regret[(n, "random", b)]
                for n in names
                if (n, method, b) in regret and regret.get((n, "random", b), 0.0) > 0
            ]
            counts.append(len(ratios))
            row.append(f"{statistics.fmean(ratios):.3g}" if ratios else "-")
        print(f"| {method} | {max(counts)} | " + " | ".join(row) + " |")
    _verdicts(regret, names, methods, budgets)


def _verdicts(
    regret: dict[tuple[str, str, int], float],
    names: list[str],
    methods: list[str],
    budgets: list[int],
    *,
    optuna_methods: tuple[str, ...] = ("optuna-gp", "nsga2", "tpe"),
    what: str = "median HV regret",
) -> None:
    """Per problem and budget: is each hyperdial method's ``what`` below the best of
    ``optuna_methods``? (``constrained.py`` uses it too.)"""
    mine = [m for m in methods if m == "hyperdial" or m.startswith("hyperdial-")]
    optuna = [m for m in methods if m in optuna_methods]
    if not mine or not optuna:
        return
    print(f"\nIs hyperdial's {what} below the best Optuna sampler's?\n")
    print("| problem | budget | method | its regret | best Optuna | below? |")
    print("| --- | ---: | --- | ---: | ---: | --- |")
    for name in names:
        for b in budgets:
            ran = [m for m in optuna if (name, m, b) in regret]
            if not ran:
                continue
            best = min(ran, key=lambda m: regret[(name, m, b)])
            for m in mine:
                if (name, m, b) not in regret:
                    continue
                ok = regret[(name, m, b)] < regret[(name, best, b)]
                print(
                    f"| {name} | {b} | {m} | {regret[(name, m, b)]:.4g} | "
                    f"{regret[(name, best, b)]:.4g} ({best}) | {'yes' if ok else 'no'} |"
                )


def _ask_table(
    records: list[dict[str, Any]],
    *,
    study: str = "2 objectives, ZDT1 5-D",
    order: Callable[[list[str]], list[str]] | None = None,
) -> None:
    """The ask-overhead table of ``records`` (``constrained.py`` uses it too)."""
    asks = [r for r in records if r.get("kind") == "ask"]
    if not asks:
        return
    print(f"\nAsk overhead ({study}): median ms of one ask\n")
    print("| completed trials | method | median ms | max ms | asks | / optuna-gp | <= 0.5? |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for history in sorted({r["history"] for r in asks}):
        rows = {r["method"]: r["ask_seconds"] for r in asks if r["history"] == history}
        gp = statistics.median(rows["optuna-gp"]) if "optuna-gp" in rows else math.nan
        for method in (order or _order)(list(rows)):
            med = statistics.median(rows[method])
            ratio = med / gp
            verdict = "" if method == "optuna-gp" else ("yes" if ratio <= 0.5 else "no")
            print(
                f"| {history} | {method} | {1000 * med:.1f} | {1000 * max(rows[method]):.1f} "
                f"| {len(rows[method])} | {ratio:.3g} | {verdict} |"
            )


def _provenance() -> dict[str, str]:
    """The code and tools a record was made with."""
    import subprocess

    import optuna

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": "yes" if git("status", "--porcelain", "--untracked-files=no") else "no",
        "optuna": optuna.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", default="60", help="budgets, one run to the largest")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run: first, first + 1...")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--hyperdial-variant",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="method hyperdial-NAME: StudySpec fields in text format merged into the spec",
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes running seeds")
    parser.add_argument("--save", help="JSON-lines file: runs are appended, then tabulated")
    parser.add_argument("--no-run", action="store_true", help="only tabulate --save")
    parser.add_argument("--ask-time", action="store_true", help="measure the ask overhead")
    parser.add_argument("--asks", type=int, default=7, help="asks timed per study (--ask-time)")
    parser.add_argument("--check", action="store_true", help="check the true hypervolumes")
    args = parser.parse_args()
    if args.check:
        # The check points lie on the front, except for training_mo: uniform random ones.
        for name, (truth, sampled) in check_true_fronts().items():
            print(f"{name}: true HV {truth:.6g}, HV of 2001 check points {sampled:.6g}")
        return
    budgets = tuple(sorted({int(b) for b in args.trials.split(",")}))
    names = args.problems.split(",")
    methods = args.methods.split(",")
    variants: dict[str, str] = {}
    for v in args.hyperdial_variant:
        name, sep, text = v.partition("=")
        if not sep or not name:
            parser.error(f"--hyperdial-variant: NAME=TEXT expected, got {v!r}")
        try:
            # Fail here, not in a worker.
            text_format.Merge(text, study_pb2.StudySpec())
        except text_format.ParseError as e:
            parser.error(f"--hyperdial-variant {name}: {e}")
        variants[f"hyperdial-{name}"] = text
    for name in names:
        if name not in PROBLEMS:
            parser.error(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
    for method in methods:
        if method not in METHODS and method not in variants:
            parser.error(f"unknown method {method!r}; known: {', '.join(METHODS)}, variants")
    records: list[dict[str, Any]] = []
    if args.save and Path(args.save).exists():
        records = [json.loads(line) for line in Path(args.save).read_text().splitlines() if line]
    if not args.no_run:
        tasks: list[Task] = [
            (name, method, seed, budgets[-1], variants.get(method, ""))
            for name in names
            for method in methods
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
        needs_server = args.ask_time or any(_is_server_method(m) for m in methods)
        server = Server() if needs_server else None
        provenance = _provenance()
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, args.jobs),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(server.target if server else None,),
        )
        # Runs of this invocation replace saved ones of the same task.
        keys = {(t[0], t[1], t[2]) for t in tasks}
        records = [
            r
            for r in records
            if r.get("kind", "run") != "run" or (r["problem"], r["method"], r["seed"]) not in keys
        ]
        try:
            for record in pool.map(run_task, tasks):
                record.update(provenance)
                records.append(record)
                b = budgets[-1]
                hv, reg = _hv_scores(record, b)
                print(
                    f"# {record['problem']} {record['method']} seed {record['seed']}: "
                    f"HV@{b} {hv:.5g}, regret {reg:.4g} "
                    f"(median ask {1000 * statistics.median(record['ask_seconds']):.0f} ms, "
                    f"{record['seconds']:.0f} s, {record['cpu_seconds']:.0f} s CPU)",
                    file=sys.stderr,
                    flush=True,
                )
                if args.save:
                    with open(args.save, "a") as out:
                        out.write(json.dumps(record) + "\n")
            pool.shutdown()
            if args.ask_time:
                assert server is not None
                timed = measure_ask_time(server, methods, variants, args.asks)
                # A new measurement replaces the saved one.
                records = [r for r in records if r.get("kind") != "ask"]
                records += [dict(r, **provenance) for r in timed]
        finally:
            pool.shutdown(cancel_futures=True)
            if server is not None:
                server.stop()
        if args.save:
            # Rewrite without the replaced runs.
            Path(args.save).write_text("".join(json.dumps(r) + "\n" for r in records))
    _table(records, list(budgets))
    _ask_table(records)


if __name__ == "__main__":
    main()
