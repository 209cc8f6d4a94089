"""Benchmark: hyperdial BAYESIAN over gRPC against Optuna's samplers, side by side.

Starts a real server (``python -m hyperdial_server --port 0``, memory store) and drives it with
the generated gRPC stub: ask (``SuggestTrials``), evaluate, tell (``CompleteTrial``). In the same
run, Optuna's samplers solve the same problems with ``study.ask`` / ``study.tell``, suggesting
the parameters define-by-run in order and skipping inactive conditional ones: ``random``
(``RandomSampler``), ``tpe`` (``TPESampler``, defaults), ``tpe-mv`` (``TPESampler`` with
``multivariate=True``), ``cmaes`` (``CmaEsSampler``, defaults; needs the ``cmaes`` package; run
only on problems whose parameters are all float or int and unconditional, "-" elsewhere) and
``optuna-gp`` (``GPSampler``, defaults). Needs the ``bench`` extra (Optuna, PyTorch).

Problems (``bayes_problems.py``): ``--set low`` (default) is Branin, Hartmann-6, Rosenbrock 4-D
and fake_training; ``--set high`` is Hartmann-6 among 30 coordinates, Levy 15-D, Ackley 20-D,
Rosenbrock 10-D and training20 (21 mixed parameters, 7 of them conditional). ``--problems``
overrides the set.

Prints, per problem and method: the median over seeds of the regret (best value found minus the
known optimum), that median divided by random search's, and the median time of one ask in
milliseconds (over every ask of every seed; over gRPC for hyperdial, ``study.ask`` plus the
suggestions for Optuna). ``--trials`` takes one budget or several (``60,150``): each seed runs
once to the largest, and the regret at budget b is that of its first b trials (asks are
sequential, so that prefix is exactly a run of b trials). With ``--set high``, a summary follows:
per budget, each method's normalised regret (median regret / random's, averaged over problems),
and per problem whether hyperdial's median regret is below the best Optuna sampler's. Then the
p50 of a BAYESIAN ask on a 6-D study holding 300 completed trials.

``--jobs N`` runs seeds in N processes (spawn; each opens its own channel to the one server).
Regrets do not depend on N; ask times do (the processes share the CPU), so time with N = 1.

    python bench/bayes.py                 # 50 trials x 10 seeds, low set, default methods
    python bench/bayes.py --seeds 3 --problems branin --methods hyperdial,optuna-gp
    python bench/bayes.py --set high --methods high --trials 60,150 --jobs 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import math
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes_problems import PROBLEMS, SETS, Param, Params, Problem  # noqa: E402

from hyperdial.v1 import (  # noqa: E402
    study_pb2,
    trial_pb2,
    tuning_service_pb2,
    tuning_service_pb2_grpc,
)

#: The default methods (as before the high set, so the old table is reproducible).
METHODS = ("random", "tpe", "optuna-gp", "hyperdial")
#: ``--methods high``: every method, for the high-dimensional set.
HIGH_METHODS = ("random", "tpe", "tpe-mv", "cmaes", "optuna-gp", "hyperdial")

#: One run: problem name, method, seed, trials.
Task = tuple[str, str, int, int]
#: What one run gives: the value of every trial and the seconds of every ask, in order.
Trace = tuple[list[float], list[float]]


class Server:
    """A hyperdial server process on a free loopback port (memory store)."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hyperdial_server", "--port", "0"],
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
            raise RuntimeError(f"server did not start: {line!r}")
        self.target = f"{match.group(1)}:{match.group(2)}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = tuning_service_pb2_grpc.TuningServiceStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def _param_pb(p: Param) -> study_pb2.ParameterSpec:
    scale = study_pb2.SCALE_LOG if p.log else study_pb2.SCALE_LINEAR
    spec = study_pb2.ParameterSpec(name=p.name)
    if p.kind == "float":
        spec.float_domain.CopyFrom(study_pb2.FloatDomain(min=p.low, max=p.high, scale=scale))
    elif p.kind == "int":
        spec.int_domain.CopyFrom(study_pb2.IntDomain(min=int(p.low), max=int(p.high), scale=scale))
    else:
        spec.categorical_domain.CopyFrom(study_pb2.CategoricalDomain(values=list(p.values)))
    if p.parent:
        # The server leaves an inactive parameter out of the trial, as Optuna does.
        spec.condition.CopyFrom(
            study_pb2.ParentCondition(
                parent=p.parent, values=[_value_pb(v) for v in p.parent_values]
            )
        )
    return spec


def _value_pb(v: float | int | str) -> study_pb2.ParameterValue:
    if isinstance(v, str):
        return study_pb2.ParameterValue(string_value=v)
    if isinstance(v, int):
        return study_pb2.ParameterValue(int_value=v)
    return study_pb2.ParameterValue(double_value=v)


def _params(trial: trial_pb2.Trial) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {}
    for name, v in trial.parameters.items():
        kind = v.WhichOneof("kind")
        out[name] = getattr(v, str(kind))
    return out


def _create(
    stub: tuning_service_pb2_grpc.TuningServiceStub, study_id: str, problem: Problem, seed: int
) -> str:
    spec = study_pb2.StudySpec(
        parameters=[_param_pb(p) for p in problem.params],
        objectives=[study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)],
        algorithm=study_pb2.ALGORITHM_BAYESIAN,
        seed=seed,
    )
    stub.CreateStudy(tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=spec))
    return f"studies/{study_id}"


def run_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub, problem: Problem, seed: int, n_trials: int
) -> Trace:
    """Trial values and per-ask seconds of one seeded run over gRPC.

    Args:
        stub: A stub on the benchmark's server.
        problem: The problem to minimise.
        seed: The study's seed.
        n_trials: Trials to run, one ask at a time.

    Returns:
        The value of every trial and the seconds of every ask, in order.
    """
    # pid: studies of parallel processes never share an id.
    study_id = f"{problem.name}-{seed}-{os.getpid()}-{time.time_ns()}"
    parent = _create(stub, study_id, problem, seed)
    values: list[float] = []
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        resp = stub.SuggestTrials(tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1))
        times.append(time.perf_counter() - t0)
        trial = resp.trials[0]
        value = problem.fn(_params(trial))
        values.append(value)
        stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name, final_measurement=trial_pb2.Measurement(values={"loss": value})
            )
        )
    return values, times


def cmaes_applies(problem: Problem) -> bool:
    """Whether CMA-ES runs on ``problem``: every parameter float or int, none conditional."""
    return not problem.conditional and all(p.kind != "categorical" for p in problem.params)


def _sampler(method: str, seed: int) -> Any:
    import optuna

    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if method == "tpe-mv":
        return optuna.samplers.TPESampler(multivariate=True, seed=seed)
    if method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if method == "optuna-gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"unknown method {method!r}")


def _suggest(trial: Any, p: Param) -> float | int | str:
    if p.kind == "float":
        return float(trial.suggest_float(p.name, p.low, p.high, log=p.log))
    if p.kind == "int":
        return int(trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log))
    return str(trial.suggest_categorical(p.name, list(p.values)))


def run_optuna(method: str, problem: Problem, seed: int, n_trials: int) -> Trace:
    """Trial values and per-ask seconds of one seeded Optuna run (ask-and-tell).

    Args:
        method: One of the Optuna methods ("random", "tpe", "tpe-mv", "cmaes", "optuna-gp").
        problem: The problem to minimise.
        seed: The sampler's seed.
        n_trials: Trials to run.

    Returns:
        The value of every trial and the seconds of every ask, in order. An ask is
        ``study.ask()`` and the suggestions of the active parameters: independent sampling
        (TPE's, for one) happens in the suggestions.
    """
    import warnings

    import optuna

    # ERROR, not WARNING: define-by-run conditional spaces log a warning per independent sample.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(sampler=_sampler(method, seed), direction="minimize")
    values: list[float] = []
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial = study.ask()
        # In order, parents first (``Problem`` checks this): same draws as ``study.ask(dists)``
        # with every parameter fixed, for a problem without conditions.
        point: dict[str, float | int | str] = {}
        for p in problem.params:
            if p.active(point):
                point[p.name] = _suggest(trial, p)
        times.append(time.perf_counter() - t0)
        value = problem.fn(point)
        values.append(value)
        study.tell(trial, value)
    return values, times


# The stub of a worker process of ``--jobs``: its own channel to the shared server.
_worker_stub: tuning_service_pb2_grpc.TuningServiceStub | None = None


def _init_worker(target: str | None) -> None:
    global _worker_stub
    if target is not None:
        _worker_stub = tuning_service_pb2_grpc.TuningServiceStub(grpc.insecure_channel(target))


def run_task(task: Task, stub: tuning_service_pb2_grpc.TuningServiceStub | None = None) -> Trace:
    """One seeded run; in a worker process, hyperdial is asked through the worker's stub.

    Args:
        task: Problem name, method, seed and trials.
        stub: The stub for hyperdial; the worker's own when None.

    Returns:
        The trace of the run (see ``run_hyperdial``).
    """
    name, method, seed, n_trials = task
    problem = PROBLEMS[name]
    if method == "hyperdial":
        stub = stub or _worker_stub
        assert stub is not None, "no server"
        return run_hyperdial(stub, problem, seed, n_trials)
    return run_optuna(method, problem, seed, n_trials)


def _traces(
    tasks: list[Task], jobs: int, server: Server | None
) -> Generator[tuple[Task, Trace], None, None]:
    """The trace of every task, in the order of ``tasks``, from ``jobs`` processes."""
    if jobs <= 1:
        for task in tasks:
            yield task, run_task(task, server.stub if server else None)
        return
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(server.target if server else None,),
    )
    try:
        futures = [pool.submit(run_task, task) for task in tasks]
        for task, future in zip(tasks, futures, strict=True):
            yield task, future.result()
    finally:
        pool.shutdown(cancel_futures=True)


def ask_at_300(stub: tuning_service_pb2_grpc.TuningServiceStub, asks: int = 20) -> list[float]:
    """Seconds of BAYESIAN asks on a 6-D study (Hartmann-6) holding 300 completed trials."""
    import random

    problem = PROBLEMS["hartmann6"]
    parent = _create(stub, f"ask300-{time.time_ns()}", problem, 0)
    rnd = random.Random(0)
    for _ in range(300):
        point: Params = {p.name: rnd.random() for p in problem.params}
        stub.CreateTrial(
            tuning_service_pb2.CreateTrialRequest(
                parent=parent,
                parameters={k: _value_pb(v) for k, v in point.items()},
                final_measurement=trial_pb2.Measurement(values={"loss": problem.fn(point)}),
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
                    values={"loss": problem.fn(_params(trial))}
                ),
            )
        )
    return times


def _summary(
    names: list[str],
    methods: list[str],
    budgets: list[int],
    regret: dict[tuple[str, str, int], float],
) -> None:
    """Normalised regret per budget and method; hyperdial against the best Optuna sampler."""
    print()
    if "random" in methods:
        print("Mean over problems of median regret / random's (problems: where the method ran)")
        print("| method | problems | " + " | ".join(f"@{b}" for b in budgets) + " |")
        print("| --- | ---: |" + " ---: |" * len(budgets))
        for method in methods:
            ran = [n for n in names if (n, method, budgets[0]) in regret]
            cells = []
            for b in budgets:
                # A problem where random found the optimum has no ratio: left out.
                ratios = [
                    regret[(n, method, b)] / regret[(n, "random", b)]
                    for n in ran
                    if regret[(n, "random", b)] > 0
                ]
                cells.append(f"{statistics.fmean(ratios):.3g}" if ratios else "-")
            print(f"| {method} | {len(ran)} | " + " | ".join(cells) + " |")
    else:
        print("(no normalised regret: random is not among the methods)")
    others = [m for m in methods if m != "hyperdial"]
    if "hyperdial" not in methods or not others:
        print("(no comparison: needs hyperdial and at least one Optuna sampler)")
        return
    print()
    print("Is hyperdial's median regret below the best Optuna sampler's?")
    print("| problem | budget | hyperdial | best Optuna | below? |")
    print("| --- | ---: | ---: | ---: | --- |")
    for n in names:
        for b in budgets:
            ran = [m for m in others if (n, m, b) in regret]
            best = min(ran, key=lambda m: regret[(n, m, b)])
            mine, theirs = regret[(n, "hyperdial", b)], regret[(n, best, b)]
            print(
                f"| {n} | {b} | {mine:.3g} | {theirs:.3g} ({best}) | "
                f"{'yes' if mine < theirs else 'no'} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--trials", default="50", help="trials per run, or budgets: 60,150 (one run to the largest)"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--set", choices=sorted(SETS), default="low", help="problem set")
    parser.add_argument("--problems", help="comma-separated problems (overrides --set)")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, or 'high' for {','.join(HIGH_METHODS)}",
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes running seeds")
    parser.add_argument("--skip-300", action="store_true", help="skip the 300-trial ask timing")
    args = parser.parse_args()
    try:
        budgets = sorted({int(b) for b in args.trials.split(",")})
    except ValueError:
        parser.error(f"--trials: integers expected, got {args.trials!r}")
    if budgets[0] < 1:
        parser.error("--trials: budgets are at least 1")
    methods = list(HIGH_METHODS) if args.methods == "high" else args.methods.split(",")
    for method in methods:
        if method not in HIGH_METHODS:
            parser.error(f"unknown method {method!r}; known: {', '.join(HIGH_METHODS)}")
    if "cmaes" in methods and importlib.util.find_spec("cmaes") is None:
        parser.error("method cmaes needs the cmaes package (pip install cmaes)")
    names = args.problems.split(",") if args.problems else list(SETS[args.set])
    for name in names:
        if name not in PROBLEMS:
            parser.error(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
    n_trials = budgets[-1]
    tasks = [
        (name, method, seed, n_trials)
        for name in names
        for method in methods
        if method != "cmaes" or cmaes_applies(PROBLEMS[name])
        for seed in range(args.seeds)
    ]
    needs_server = "hyperdial" in methods or not args.skip_300
    server = Server() if needs_server else None
    results = _traces(tasks, args.jobs, server)
    try:
        if len(budgets) == 1:
            print("| problem | method | median regret | regret / random's | median ask ms |")
        else:
            cols = " | ".join(f"regret @{b} | / random @{b}" for b in budgets)
            print(f"| problem | method | {cols} | median ask ms |")
        print("| --- | --- |" + " ---: |" * (2 * len(budgets) + 1))
        regret: dict[tuple[str, str, int], float] = {}
        ask_ms: dict[tuple[str, str], float] = {}
        for name in names:
            problem = PROBLEMS[name]
            for method in methods:
                if method == "cmaes" and not cmaes_applies(problem):
                    continue
                traces = [next(results)[1] for _ in range(args.seeds)]
                for b in budgets:
                    finals = [min(values[:b]) - problem.optimum for values, _ in traces]
                    regret[(name, method, b)] = statistics.median(finals)
                    at = f" @{b}" if len(budgets) > 1 else ""
                    print(
                        f"# {name} {method}{at}: regrets {[f'{r:.3g}' for r in finals]}",
                        file=sys.stderr,
                        flush=True,
                    )
                times = [t for _, seconds in traces for t in seconds]
                ask_ms[(name, method)] = 1000 * statistics.median(times)
            for method in methods:
                if (name, method) not in ask_ms:
                    print(f"| {name} | {method} |" + " - |" * (2 * len(budgets) + 1))
                    continue
                cells = []
                for b in budgets:
                    r, rnd = regret[(name, method, b)], regret.get((name, "random", b))
                    norm = r / rnd if rnd else math.nan
                    cells.append(f"{r:.3g} | {norm:.3g}")
                print(
                    f"| {name} | {method} | {' | '.join(cells)} | {ask_ms[(name, method)]:.1f} |",
                    flush=True,
                )
        if args.set == "high":
            _summary(names, methods, budgets, regret)
        if server is not None and not args.skip_300:
            t300 = ask_at_300(server.stub)
            print(
                f"p50 ask, 6-D, 300 completed trials: {1000 * statistics.median(t300):.1f} ms "
                f"(max {1000 * max(t300):.1f} ms over {len(t300)} asks)",
                flush=True,
            )
    finally:
        # Workers first: they hold channels to the server.
        results.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
