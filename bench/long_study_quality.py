"""What a long study's window of history costs the BAYESIAN sampler in quality.

An ask in a study of more than 300 trials reads a window of the history (the best 150 by
score, the 150 changed last and the RUNNING trials: ``Store.model_history``) instead of
every trial. This runs the sampler in-process, one trial at a time, on the same problems and
seeds twice from trial 301 on: with the whole history, and with the window; the first 300
trials are the same for both (one run, shared). The score is the regret of the best trial
found (value - optimum) after 450 and 600 trials, the median over the seeds.

Run it from the repository root::

    OPENBLAS_NUM_THREADS=1 python -m bench.long_study_quality               # ~15 min
    python -m bench.long_study_quality --problems branin --seeds 2 --trials 400
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
from collections.abc import Sequence

from bench.bayes_problems import PROBLEMS, Problem
from hyperdial_server.core.space import (
    CategoricalDomain,
    Domain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import BayesianSampler
from hyperdial_server.service._asker import MODEL_HISTORY_BEST, MODEL_HISTORY_RECENT

DEFAULT_PROBLEMS = ("branin", "hartmann6", "fake_training")
SHARED = MODEL_HISTORY_BEST + MODEL_HISTORY_RECENT


def _space(problem: Problem) -> SearchSpace:
    params = []
    for p in problem.params:
        if p.parent:
            raise ValueError(f"{problem.name}: conditional parameters are not supported here")
        domain: Domain
        if p.kind == "float":
            domain = FloatDomain(p.low, p.high, log=p.log)
        elif p.kind == "int":
            domain = IntDomain(int(p.low), int(p.high), log=p.log)
        else:
            domain = CategoricalDomain(p.values)
        params.append(ParameterConfig(p.name, domain))
    return SearchSpace(params)


def window(history: list[Trial]) -> list[Trial]:
    """The trials an ask reads of a study run one trial at a time: every one up to
    ``SHARED``; beyond, the best ``MODEL_HISTORY_BEST`` by value (the lowest number first
    among ties) and the ``MODEL_HISTORY_RECENT`` told last, in order of number."""
    if len(history) <= SHARED:
        return history
    best = sorted(history, key=lambda t: ((t.values or {})["y"], t.number))
    chosen = {t.number for t in best[:MODEL_HISTORY_BEST]}
    chosen.update(t.number for t in history[-MODEL_HISTORY_RECENT:])
    return [t for t in history if t.number in chosen]


def _step(spec: StudySpec, problem: Problem, history: list[Trial], windowed: bool) -> None:
    i = len(history)
    seen = window(history) if windowed else history
    (params,) = BayesianSampler().suggest(spec, [i], seen)
    y = problem.fn(params)
    history.append(
        Trial(i + 1, TrialState.COMPLETED, params, {"y": y}, sampler_index=i, create_time=i)
    )


def _regret(history: list[Trial], upto: int, optimum: float) -> float:
    return min((t.values or {})["y"] for t in history[:upto]) - optimum


def run(args: tuple[str, int, int]) -> tuple[str, int, dict[str, list[float]]]:
    """One problem and seed: regrets at each checkpoint, whole history and window."""
    name, seed, trials = args
    problem = PROBLEMS[name]
    spec = StudySpec(_space(problem), (Objective("y"),), Algorithm.BAYESIAN, seed)
    shared: list[Trial] = []
    while len(shared) < min(SHARED, trials):
        _step(spec, problem, shared, windowed=False)
    out: dict[str, list[float]] = {}
    checkpoints = [c for c in (SHARED, (SHARED + trials) // 2, trials) if c <= trials]
    for label, windowed in (("whole", False), ("window", True)):
        history = list(shared)
        while len(history) < trials:
            _step(spec, problem, history, windowed)
        out[label] = [_regret(history, c, problem.optimum) for c in checkpoints]
    return name, seed, out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default=",".join(DEFAULT_PROBLEMS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    names = [p for p in args.problems.split(",") if p]
    jobs = [(name, seed, args.trials) for name in names for seed in range(args.seeds)]
    results: dict[str, dict[str, list[list[float]]]] = {}
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for name, seed, out in pool.imap_unordered(run, jobs):
            print(f"# {name} seed {seed}: {out}", flush=True)
            for label, regrets in out.items():
                results.setdefault(name, {}).setdefault(label, []).append(regrets)
    checkpoints = [
        c for c in (SHARED, (SHARED + args.trials) // 2, args.trials) if c <= args.trials
    ]
    print()
    head = " | ".join(f"whole @{c} | window @{c}" for c in checkpoints)
    print(f"| problem | {head} |")
    print("| --- |" + " ---: |" * (2 * len(checkpoints)))
    for name in names:
        cells = []
        for j in range(len(checkpoints)):
            for label in ("whole", "window"):
                cells.append(f"{statistics.median(r[j] for r in results[name][label]):.3g}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nmedian regret over {args.seeds} seeds; the first {SHARED} trials are shared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
