"""Benchmark: noisy objectives, hyperdial BAYESIAN against Optuna's GP and TPE, side by side.

Each problem of ``bayes_problems.py`` (Branin 2-D, Hartmann-6 6-D, fake_training: 5 mixed
parameters with log floats, ints and a categorical) is measured with Gaussian noise added to
every result: a standard deviation of 5 % or 20 % of the objective's range over the space (the
spread between the 1st and the 99th percentile of 20,000 uniform random points, so that one
extreme corner does not set it). Every method sees the same noise stream for a given seed: the
k-th result of a run gets the k-th draw.

The score is the **noise-free** regret of the trial a tool reports as its best: for hyperdial,
``ListOptimalTrials`` with ``OPTIMALITY_BASIS_MODEL`` (the recommendation) and, separately,
with ``OPTIMALITY_BASIS_OBSERVED`` (the best observed value); for Optuna 5.1's ``GPSampler``
and ``TPESampler`` (defaults, seeded), ``study.best_trial`` (their best observed value). Each
seed runs once to the largest budget; the score at budget b is read when b trials have
completed (hyperdial's asks are sequential, so that prefix is a run of b trials). Median over
seeds.

    python bench/noisy.py                                  # 60,150 trials x 10 seeds
    python bench/noisy.py --seeds 3 --problems branin --noise 0.2 --methods hyperdial
    python bench/noisy.py --jobs 2 --save runs.jsonl        # and --no-run to print again

Needs the ``bench`` extra (Optuna, PyTorch for GPSampler).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes import Server, _param_pb, _params, _sampler, _suggest  # noqa: E402
from bayes_problems import PROBLEMS, Param, Problem  # noqa: E402

from hyperdial.v1 import (  # noqa: E402
    study_pb2,
    trial_pb2,
    tuning_service_pb2,
    tuning_service_pb2_grpc,
)

#: The problems: one 2-D, one 6-D, one mixed-type training-like space.
NOISY_PROBLEMS = ("branin", "hartmann6", "fake_training")
#: Noise standard deviations, as fractions of the objective's range over the space.
NOISE_LEVELS = (0.05, 0.2)
METHODS = ("hyperdial", "optuna-gp", "tpe")
#: Uniform random points that measure an objective's range.
RANGE_POINTS = 20_000

#: One run: problem, noise fraction, method, seed, budgets.
Task = tuple[str, float, str, int, tuple[int, ...]]


def _uniform(p: Param, rng: np.random.Generator) -> float | int | str:
    if p.kind == "categorical":
        return p.values[int(rng.integers(len(p.values)))]
    if p.log:
        x = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
    else:
        x = float(rng.uniform(p.low, p.high))
    if p.kind == "int":
        return min(int(p.high), max(int(p.low), round(x)))
    return x


def objective_range(problem: Problem) -> float:
    """The spread between the 1st and 99th percentile of the objective on uniform points."""
    rng = np.random.default_rng(12345)
    values = []
    for _ in range(RANGE_POINTS):
        point: dict[str, float | int | str] = {}
        for p in problem.params:
            if p.active(point):
                point[p.name] = _uniform(p, rng)
        values.append(problem.fn(point))
    low, high = np.percentile(values, [1, 99])
    return float(high - low)


def noise_stream(problem: str, fraction: float, seed: int, n: int) -> list[float]:
    """The noise added to the first ``n`` results of a run (the same for every method)."""
    sd = fraction * objective_range(PROBLEMS[problem])
    key = [
        NOISY_PROBLEMS.index(problem) if problem in NOISY_PROBLEMS else 99,
        round(fraction * 1000),
        seed,
    ]
    return list(sd * np.random.default_rng(key).standard_normal(n))


def run_hyperdial(
    stub: tuning_service_pb2_grpc.TuningServiceStub,
    problem: Problem,
    noise: list[float],
    seed: int,
    budgets: tuple[int, ...],
) -> dict[str, list[float]]:
    """True values of the recommended and of the best observed trial at each budget."""
    study_id = f"noisy-{problem.name}-{seed}-{os.getpid()}-{time.time_ns()}"
    spec = study_pb2.StudySpec(
        parameters=[_param_pb(p) for p in problem.params],
        objectives=[study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)],
        algorithm=study_pb2.ALGORITHM_BAYESIAN,
        seed=seed,
    )
    stub.CreateStudy(tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=spec))
    parent = f"studies/{study_id}"
    truth: dict[str, float] = {}
    out: dict[str, list[float]] = {"model": [], "observed": []}
    for k in range(budgets[-1]):
        resp = stub.SuggestTrials(tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1))
        trial = resp.trials[0]
        value = problem.fn(_params(trial))
        truth[trial.name] = value
        stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name,
                final_measurement=trial_pb2.Measurement(values={"loss": value + noise[k]}),
            )
        )
        if k + 1 in budgets:
            for key, basis in (
                ("model", tuning_service_pb2.OPTIMALITY_BASIS_MODEL),
                ("observed", tuning_service_pb2.OPTIMALITY_BASIS_OBSERVED),
            ):
                best = stub.ListOptimalTrials(
                    tuning_service_pb2.ListOptimalTrialsRequest(parent=parent, basis=basis)
                )
                out[key].append(truth[best.trials[0].name])
    stub.DeleteStudy(tuning_service_pb2.DeleteStudyRequest(name=parent))
    return out


def run_optuna(
    method: str, problem: Problem, noise: list[float], seed: int, budgets: tuple[int, ...]
) -> dict[str, list[float]]:
    """True value of ``study.best_trial`` at each budget."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(sampler=_sampler(method, seed), direction="minimize")
    truth: dict[int, float] = {}
    out: list[float] = []
    for k in range(budgets[-1]):
        trial = study.ask()
        point: dict[str, float | int | str] = {}
        for p in problem.params:
            if p.active(point):
                point[p.name] = _suggest(trial, p)
        value = problem.fn(point)
        truth[trial.number] = value
        study.tell(trial, value + noise[k])
        if k + 1 in budgets:
            out.append(truth[study.best_trial.number])
    return {"observed": out}


_worker_stub: tuning_service_pb2_grpc.TuningServiceStub | None = None


def _init_worker(target: str | None) -> None:
    global _worker_stub
    if target is not None:
        _worker_stub = tuning_service_pb2_grpc.TuningServiceStub(grpc.insecure_channel(target))


def run_task(task: Task) -> dict[str, Any]:
    """One seeded run; the record saved and tabulated."""
    name, fraction, method, seed, budgets = task
    problem = PROBLEMS[name]
    noise = noise_stream(name, fraction, seed, budgets[-1])
    t0 = time.perf_counter()
    if method == "hyperdial":
        assert _worker_stub is not None, "no server"
        scores = run_hyperdial(_worker_stub, problem, noise, seed, budgets)
    else:
        scores = run_optuna(method, problem, noise, seed, budgets)
    return {
        "problem": name,
        "noise": fraction,
        "method": method,
        "seed": seed,
        "budgets": list(budgets),
        "optimum": problem.optimum,
        "true_values": scores,
        "seconds": time.perf_counter() - t0,
    }


def _table(records: list[dict[str, Any]], budgets: list[int]) -> None:
    rows: dict[tuple[str, float, str, str], dict[int, list[float]]] = {}
    for r in records:
        for basis, values in r["true_values"].items():
            label = r["method"] if r["method"] != "hyperdial" else f"hyperdial ({basis})"
            if r["method"] != "hyperdial" and basis != "observed":
                continue
            cell = rows.setdefault((r["problem"], r["noise"], label, basis), {})
            for b, v in zip(r["budgets"], values, strict=True):
                cell.setdefault(b, []).append(v - r["optimum"])
    print(
        "| problem | noise | method | "
        + " | ".join(f"true regret @{b}" for b in budgets)
        + " | seeds |"
    )
    print("| --- | ---: | --- |" + " ---: |" * len(budgets) + " ---: |")
    verdicts = []
    for key in sorted(
        rows,
        key=lambda k: (NOISY_PROBLEMS.index(k[0]) if k[0] in NOISY_PROBLEMS else 99, k[1], k[2]),
    ):
        problem, noise, label, _ = key
        cells = [
            f"{statistics.median(rows[key][b]):.4g}" if b in rows[key] else "-" for b in budgets
        ]
        seeds = len(next(iter(rows[key].values())))
        print(f"| {problem} | {noise:g} | {label} | " + " | ".join(cells) + f" | {seeds} |")
    print()
    print("Is hyperdial's recommended trial's median true regret below both Optuna samplers'?")
    print("| problem | noise | budget | recommended | observed | optuna-gp | tpe | below both? |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    problems = sorted(
        {(k[0], k[1]) for k in rows},
        key=lambda k: (NOISY_PROBLEMS.index(k[0]) if k[0] in NOISY_PROBLEMS else 99, k[1]),
    )
    for problem, noise in problems:
        for b in budgets:

            def med(label: str, problem: str = problem, noise: float = noise, b: int = b) -> float:
                for key, cell in rows.items():
                    if key[0] == problem and key[1] == noise and key[2] == label and b in cell:
                        return statistics.median(cell[b])
                return math.nan

            mine, obs = med("hyperdial (model)"), med("hyperdial (observed)")
            gp, tpe = med("optuna-gp"), med("tpe")
            ok = mine < gp and mine < tpe
            verdicts.append(ok)
            print(
                f"| {problem} | {noise:g} | {b} | {mine:.4g} | {obs:.4g} | {gp:.4g} | {tpe:.4g} | "
                f"{'yes' if ok else 'no'} |"
            )
    print(f"\nbelow both in {sum(verdicts)} of {len(verdicts)} cells")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", default="60,150", help="budgets, one run to the largest")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run: first, first + 1...")
    parser.add_argument("--problems", default=",".join(NOISY_PROBLEMS))
    parser.add_argument("--noise", default=",".join(str(n) for n in NOISE_LEVELS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--jobs", type=int, default=1, help="processes running seeds")
    parser.add_argument("--save", help="JSON-lines file: runs are appended, then tabulated")
    parser.add_argument("--no-run", action="store_true", help="only tabulate --save")
    args = parser.parse_args()
    budgets = tuple(sorted({int(b) for b in args.trials.split(",")}))
    names = args.problems.split(",")
    fractions = [float(f) for f in args.noise.split(",")]
    methods = args.methods.split(",")
    for name in names:
        if name not in PROBLEMS:
            parser.error(f"unknown problem {name!r}")
    for method in methods:
        if method not in METHODS:
            parser.error(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    records: list[dict[str, Any]] = []
    if args.save and Path(args.save).exists():
        records = [json.loads(line) for line in Path(args.save).read_text().splitlines() if line]
    if not args.no_run:
        for name in names:
            for f in fractions:
                sd = f * objective_range(PROBLEMS[name])
                print(f"# {name}: noise sd {sd:.4g} ({f:g} of the range)", file=sys.stderr)
        tasks = [
            (name, f, method, seed, budgets)
            for name in names
            for f in fractions
            for method in methods
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
        server = Server() if "hyperdial" in methods else None
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, args.jobs),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(server.target if server else None,),
        )
        # Runs of this invocation replace saved ones of the same task.
        keys = {(t[0], t[1], t[2], t[3]) for t in tasks}
        records = [
            r for r in records if (r["problem"], r["noise"], r["method"], r["seed"]) not in keys
        ]
        try:
            for record in pool.map(run_task, tasks):
                records.append(record)
                print(
                    f"# {record['problem']} {record['noise']:g} {record['method']} "
                    f"seed {record['seed']}: {record['true_values']} "
                    f"({record['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if args.save:
                    with open(args.save, "a") as out:
                        out.write(json.dumps(record) + "\n")
        finally:
            pool.shutdown(cancel_futures=True)
            if server is not None:
                server.stop()
    if args.save and not args.no_run:
        # Rewrite without the replaced runs.
        Path(args.save).write_text("".join(json.dumps(r) + "\n" for r in records))
    _table(records, list(budgets))


if __name__ == "__main__":
    main()
