"""Benchmark: constraints and crashes, hyperdial BAYESIAN against Optuna's samplers, side by side.

Problems (``constrained_problems.py``, minimised): ``newbranin`` (a disconnected feasible
region: three islands), ``gramacy`` (the optimum on the constraint boundary) and ``oom`` (a
training-like mixed space where 71 % of the points crash, out of memory). Methods:

* ``hyperdial``: a real server (``bayes.Server``) driven over gRPC, ask (``SuggestTrials``,
  ``count=1``), evaluate, tell (``CompleteTrial``), an ``ALGORITHM_BAYESIAN`` study with the
  run's seed. Every constraint value ``c`` (feasible at ``c <= 0``) is declared in
  ``StudySpec.constraints`` with ``upper_bound: 0`` and reported in the final measurement beside
  the objective; a crash completes the trial with ``infeasibility`` (``TRIAL_STATE_INFEASIBLE``).
* ``hyperdial-NAME``: a variant, ``--hyperdial-variant NAME=TEXT`` merges ``TEXT`` (protobuf
  text format) into the ``StudySpec``.
* Optuna 5.1, ask-and-tell in process, seeded, defaults: ``optuna-gp`` (``GPSampler``), ``tpe``
  (``TPESampler``), ``random`` (``RandomSampler``, the floor every regret is divided by). The
  constraint values are given with ``trial.set_constraint(name, c)`` before ``study.tell``: what
  the samplers' ``constraints_func`` computes, the way Optuna 5 documents (``constraints_func``
  is deprecated since 5.0; both store the same values on the trial). A crash, for which
  Optuna has no state of its own, is told as a violated constraint: ``set_constraint("crash",
  1.0)`` (``-1.0`` on every trial that runs, so that both constraint classes sit a unit from the
  threshold 0), with the worst objective value seen so far on trials that ran as the value
  (the problem's worst feasible value before any): the sampler models where crashes happen.
  ``optuna-gp-fail`` and ``tpe-fail`` (not run by default) tell a crash as ``TrialState.FAIL``
  instead, which both samplers ignore.

Score after b trials (``--trials``, default 50; several budgets read one run to the largest):
the regret of the best feasible value among the first b trials (best minus the known
optimum); a run with no feasible trial scores the problem's worst feasible value (see
``constrained_problems.py``), as if it had found the worst point that runs. And the fraction of
the b trials that were infeasible (broke a constraint or crashed). Per problem and method:
median and interquartile range over seeds, runs without a feasible trial, the median regret
divided by random's, the median time of one ask (over gRPC for hyperdial; ``study.ask()`` and
the suggestions for Optuna, where its sampling happens). Then per method the mean over
problems of that ratio.

``--ask-time`` measures the overhead of one ask on a study with one objective and one
constraint (Hartmann-6 with ``sum(x) - 3 <= 0``, 6-D) holding 50 and then 300 completed trials
(the same uniform random history for both tools): hyperdial's ``SuggestTrials`` over gRPC
against ``GPSampler``'s ``study.ask()`` with the suggestions, in process; median of ``--asks``
asks, each told before the next. Run it alone (``--seeds 0 --ask-time``) and with ``--jobs 1``.

    python bench/constrained.py                                    # 50 trials x 10 seeds
    python bench/constrained.py --seeds 2 --problems oom --methods hyperdial,random
    python bench/constrained.py --jobs 2 --save con.jsonl          # and --no-run to print again
    python bench/constrained.py --seeds 0 --ask-time --save con.jsonl

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
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import text_format

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes import Server, _param_pb, _params, _suggest, _value_pb  # noqa: E402
from constrained_problems import (  # noqa: E402
    PROBLEMS,
    TIMING_PROBLEM,
    ConstrainedProblem,
    Crash,
    check,
    uniform_point,
)
from multiobjective import (  # noqa: E402
    _ask_table,
    _distribution,
    _iqr,
    _provenance,
    _quiet_optuna,
    _verdicts,
)

from hyperdial.v1 import (  # noqa: E402
    study_pb2,
    trial_pb2,
    tuning_service_pb2,
    tuning_service_pb2_grpc,
)

METHODS = ("hyperdial", "optuna-gp", "tpe", "random")
#: Not run by default: Optuna told of a crash by a failed trial.
FAIL_METHODS = ("optuna-gp-fail", "tpe-fail")
#: Completed trials in the studies of ``--ask-time``.
ASK_HISTORIES = (50, 300)
#: The objective's name in hyperdial's studies.
OBJECTIVE = "loss"

#: One run: problem, method, seed, trials, spec text merged for a hyperdial variant.
Task = tuple[str, str, int, int, str]
#: One trial as recorded: its objective value (None: crashed) and whether it was feasible.
Step = tuple[float | None, bool]


def _is_hyperdial(method: str) -> bool:
    return method == "hyperdial" or method.startswith("hyperdial-")


def _spec(problem: ConstrainedProblem, seed: int, extra: str) -> study_pb2.StudySpec:
    spec = study_pb2.StudySpec(
        parameters=[_param_pb(p) for p in problem.params],
        objectives=[study_pb2.ObjectiveSpec(name=OBJECTIVE, goal=study_pb2.GOAL_MINIMIZE)],
        constraints=[
            study_pb2.OutcomeConstraint(name=name, upper_bound=0.0) for name in problem.constraints
        ],
        algorithm=study_pb2.ALGORITHM_BAYESIAN,
        seed=seed,
    )
    if extra:
        text_format.Merge(extra, spec)
    return spec


def _tell_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub,
    problem: ConstrainedProblem,
    trial: trial_pb2.Trial,
) -> Step:
    """Evaluates a trial and completes it: with its values, or as infeasible if it crashed."""
    try:
        value, cons = problem.fn(_params(trial))
    except Crash as crash:
        stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name,
                infeasibility=tuning_service_pb2.TrialInfeasibility(reason=str(crash)),
            )
        )
        return None, False
    stub.CompleteTrial(
        tuning_service_pb2.CompleteTrialRequest(
            name=trial.name,
            final_measurement=trial_pb2.Measurement(values={OBJECTIVE: value, **cons}),
        )
    )
    return value, all(c <= 0 for c in cons.values())


def run_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub,
    problem: ConstrainedProblem,
    seed: int,
    n_trials: int,
    extra: str,
) -> tuple[list[Step], list[float]]:
    """Every trial's value and feasibility, and every ask's seconds, of one run over gRPC.

    Args:
        stub: A stub on the benchmark's server.
        problem: The problem.
        seed: The study's seed.
        n_trials: Trials to run, one ask at a time.
        extra: Text-format ``StudySpec`` fields merged into the spec (a variant), or "".

    Returns:
        Per trial in order: its objective value (None when it crashed) and whether it was
        feasible; and the seconds of every ask.
    """
    # pid and time: studies of parallel processes and repeated runs never share an id.
    study_id = f"con-{problem.name}-{seed}-{os.getpid()}-{time.time_ns()}"
    stub.CreateStudy(
        tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=_spec(problem, seed, extra))
    )
    parent = f"studies/{study_id}"
    steps: list[Step] = []
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        resp = stub.SuggestTrials(tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1))
        times.append(time.perf_counter() - t0)
        steps.append(_tell_hyperdial(stub, problem, resp.trials[0]))
    stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=parent))
    return steps, times


def _optuna_sampler(method: str, seed: int) -> Any:
    import optuna

    base = method.removesuffix("-fail")
    if base == "optuna-gp":
        return optuna.samplers.GPSampler(seed=seed)
    if base == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if base == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown method {method!r}")


class _OptunaTeller:
    """Tells Optuna a trial's result the way its user would, crashes included."""

    def __init__(self, problem: ConstrainedProblem, fail_crashes: bool) -> None:
        self.problem = problem
        self.fail_crashes = fail_crashes
        self.worst_seen = -math.inf

    def tell(self, study: Any, trial: Any, point: dict[str, float | int | str]) -> Step:
        """Evaluates ``point`` and tells ``trial``'s result; the value and feasibility."""
        import optuna

        try:
            value, cons = self.problem.fn(point)
        except Crash:
            if self.fail_crashes:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return None, False
            trial.set_constraint("crash", 1.0)
            # No value exists: the worst seen keeps the objective's model in range.
            placeholder = self.worst_seen
            if placeholder == -math.inf:
                placeholder = self.problem.worst()
            study.tell(trial, placeholder)
            return None, False
        self.worst_seen = max(self.worst_seen, value)
        for name, c in cons.items():
            trial.set_constraint(name, c)
        if self.problem.crashes and not self.fail_crashes:
            # Every completed trial must carry the same constraints (GPSampler checks).
            trial.set_constraint("crash", -1.0)
        study.tell(trial, value)
        return value, all(c <= 0 for c in cons.values())


def run_optuna(
    method: str, problem: ConstrainedProblem, seed: int, n_trials: int
) -> tuple[list[Step], list[float]]:
    """Every trial's value and feasibility, and every ask's seconds, of one Optuna run.

    An ask is ``study.ask()`` and the suggestions: Optuna samples at the first suggestion.
    """
    import optuna

    _quiet_optuna()
    study = optuna.create_study(sampler=_optuna_sampler(method, seed), direction="minimize")
    teller = _OptunaTeller(problem, fail_crashes=method.endswith("-fail"))
    steps: list[Step] = []
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial = study.ask()
        point = {p.name: _suggest(trial, p) for p in problem.params}
        times.append(time.perf_counter() - t0)
        steps.append(teller.tell(study, trial, point))
    return steps, times


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
    if _is_hyperdial(method):
        assert _worker_stub is not None, "no server"
        steps, times = run_hyperdial(_worker_stub, problem, seed, n_trials, extra)
    else:
        steps, times = run_optuna(method, problem, seed, n_trials)
    return {
        "kind": "run",
        "problem": name,
        "method": method,
        "seed": seed,
        "spec_extra": extra,
        "values": [v for v, _ in steps],
        "feasible": [f for _, f in steps],
        "ask_seconds": times,
        "seconds": time.perf_counter() - t0,
        # This process only: hyperdial's sampling runs in the server.
        "cpu_seconds": time.process_time() - cpu0,
    }


def scores(record: dict[str, Any], b: int) -> tuple[float, float, bool]:
    """Regret, infeasible fraction, and whether some trial was feasible, of the first b trials."""
    problem = PROBLEMS[record["problem"]]
    feasible = [v for v, ok in zip(record["values"][:b], record["feasible"][:b], strict=True) if ok]
    best = min(feasible) if feasible else problem.worst()
    infeasible = 1.0 - len(feasible) / b
    return best - problem.optimum(), infeasible, bool(feasible)


def _history(n: int) -> list[dict[str, float | int | str]]:
    """``n`` uniform random points (seeded): the completed trials of an ask-time study."""
    rng = np.random.default_rng(12345)
    return [uniform_point(TIMING_PROBLEM.params, rng) for _ in range(n)]


def ask_time_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub, history: int, asks: int, extra: str
) -> list[float]:
    """Seconds of ``asks`` Bayesian asks on a constrained study of ``history`` completed trials."""
    problem = TIMING_PROBLEM
    study_id = f"con-ask-{history}-{time.time_ns()}"
    stub.CreateStudy(
        tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=_spec(problem, 0, extra))
    )
    parent = f"studies/{study_id}"
    for point in _history(history):
        value, cons = problem.fn(point)
        stub.CreateTrial(
            tuning_service_pb2.CreateTrialRequest(
                parent=parent,
                parameters={k: _value_pb(v) for k, v in point.items()},
                final_measurement=trial_pb2.Measurement(values={OBJECTIVE: value, **cons}),
            )
        )
    times = []
    for _ in range(asks):
        t0 = time.perf_counter()
        resp = stub.SuggestTrials(tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1))
        times.append(time.perf_counter() - t0)
        _tell_hyperdial(stub, problem, resp.trials[0])
    stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=parent))
    return times


def ask_time_optuna(history: int, asks: int) -> list[float]:
    """Seconds of ``asks`` GPSampler asks (and suggestions) after the same history."""
    import optuna

    _quiet_optuna()
    problem = TIMING_PROBLEM
    dists = {p.name: _distribution(p) for p in problem.params}
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0), direction="minimize")
    trials = []
    for point in _history(history):
        value, cons = problem.fn(point)
        trials.append(
            optuna.trial.create_trial(
                params=point, distributions=dists, value=value, constraints=cons
            )
        )
    study.add_trials(trials)
    teller = _OptunaTeller(problem, fail_crashes=False)
    times = []
    for _ in range(asks):
        t0 = time.perf_counter()
        trial = study.ask()
        point = {p.name: _suggest(trial, p) for p in problem.params}
        times.append(time.perf_counter() - t0)
        teller.tell(study, trial, point)
    return times


def measure_ask_time(
    server: Server, methods: list[str], variants: dict[str, str], asks: int
) -> list[dict[str, Any]]:
    """The ask-time records: every hyperdial method and GPSampler, per history."""
    records = []
    timed = [m for m in methods if _is_hyperdial(m)] or ["hyperdial"]
    for history in ASK_HISTORIES:
        for method in [*timed, "optuna-gp"]:
            if method == "optuna-gp":
                times = ask_time_optuna(history, asks)
            else:
                times = ask_time_hyperdial(server.stub, history, asks, variants.get(method, ""))
            records.append(
                {
                    "kind": "ask",
                    "study": "hartmann6_sum, 1 objective + 1 constraint, 6-D",
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


def _order(methods: list[str]) -> list[str]:
    known = (*METHODS, *FAIL_METHODS)
    return sorted(methods, key=lambda m: (known.index(m) if m in known else 0.5, m))


def _iqr_percent(xs: list[float]) -> str:
    q1, q3 = np.percentile(xs, [25, 75])
    return f"{q1:.0%}-{q3:.0%}"


def _table(records: list[dict[str, Any]], budgets: list[int]) -> None:
    runs = [r for r in records if r.get("kind", "run") == "run"]
    if not runs:
        return
    names = [n for n in PROBLEMS if any(r["problem"] == n for r in runs)]
    methods = _order(list({r["method"] for r in runs}))
    # (problem, method, budget) -> per seed: regret, infeasible fraction, any feasible; asks.
    cells: dict[tuple[str, str, int], tuple[list[tuple[float, float, bool]], list[float]]] = {}
    for name in names:
        for method in methods:
            mine = [r for r in runs if r["problem"] == name and r["method"] == method]
            for b in budgets:
                done = [r for r in mine if len(r["values"]) >= b]
                if done:
                    cells[(name, method, b)] = (
                        [scores(r, b) for r in done],
                        [t for r in done for t in r["ask_seconds"][:b]],
                    )
    regret = {key: statistics.median(s[0] for s in cell[0]) for key, cell in cells.items()}
    for b in budgets:
        print(f"\n#### After {b} trials\n")
        print(
            "| problem | method | median regret | regret IQR | regret / random's "
            "| median infeasible | infeasible IQR | runs with none feasible "
            "| median ask ms | seeds |"
        )
        print("| --- | --- |" + " ---: |" * 8)
        for name in names:
            for method in methods:
                if (name, method, b) not in cells:
                    continue
                per_seed, asks = cells[(name, method, b)]
                regs = [s[0] for s in per_seed]
                infs = [s[1] for s in per_seed]
                floor = regret.get((name, "random", b), 0.0)
                ratio = f"{regret[(name, method, b)] / floor:.3g}" if floor > 0 else "-"
                print(
                    f"| {name} | {method} | {statistics.median(regs):.4g} | {_iqr(regs)} "
                    f"| {ratio} | {statistics.median(infs):.0%} | {_iqr_percent(infs)} "
                    f"| {sum(not s[2] for s in per_seed)} "
                    f"| {1000 * statistics.median(asks):.1f} | {len(per_seed)} |"
                )
    print("\nMean over problems of median regret / random's (problems where both ran)\n")
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
    _verdicts(
        regret,
        names,
        methods,
        budgets,
        optuna_methods=("optuna-gp", "tpe", *FAIL_METHODS),
        what="median regret",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", default="50", help="budgets, one run to the largest")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run: first, first + 1...")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated; also {', '.join(FAIL_METHODS)} and hyperdial variants",
    )
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
    parser.add_argument("--check", action="store_true", help="check the problems' constants")
    args = parser.parse_args()
    if args.check:
        for name, row in check().items():
            print(name, ", ".join(f"{k} {v:.6g}" for k, v in row.items()))
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
        if method not in (*METHODS, *FAIL_METHODS) and method not in variants:
            parser.error(f"unknown method {method!r}; known: {', '.join(METHODS)}, variants")
    records: list[dict[str, Any]] = []
    if args.save and Path(args.save).exists():
        records = [json.loads(line) for line in Path(args.save).read_text().splitlines() if line]
    if not args.no_run:
        # The -fail methods differ from the others only where points crash.
        tasks: list[Task] = [
            (name, method, seed, budgets[-1], variants.get(method, ""))
            for name in names
            for method in methods
            if method not in FAIL_METHODS or PROBLEMS[name].crashes
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
        needs_server = args.ask_time or any(_is_hyperdial(m) for m in methods)
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
                reg, inf, _ = scores(record, b)
                print(
                    f"# {record['problem']} {record['method']} seed {record['seed']}: "
                    f"regret@{b} {reg:.4g}, infeasible {inf:.0%} "
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
    _ask_table(records, study="1 objective + 1 constraint, Hartmann-6", order=_order)


if __name__ == "__main__":
    main()
