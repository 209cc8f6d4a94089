"""In-process profiler and regression harness of the BAYESIAN sampler (no gRPC, no server).

For each problem of ``bayes_problems.py`` and each seed, a sequential study is replayed: ask
``BayesianSampler().suggest(spec, [i], completed, pending=[])`` for i = 0, 1, ..., evaluate the
point, append the completed trial, repeat. Every suggestion (its encoded unit coordinates) and
the CPU time (``time.process_time``) of every ``suggest`` call are recorded.

It answers two questions when the sampler is changed for speed:

* **Same results?** ``--save FILE`` writes the suggestions of a run as JSON (keep the baseline
  out of the repository, e.g. under /tmp); ``--compare FILE`` reports, per problem, how many
  suggestions equal the baseline's exactly and within 1e-6 (max abs difference of the unit
  coordinates), the largest difference, and the final best values of both runs. With
  ``--replay`` the history fed to each ask is the baseline's (its points, evaluated again), so
  every ask is compared on identical inputs and one early divergence does not drag the rest of
  its run along.
* **Faster?** The median and p90 milliseconds per ``suggest`` call, over all calls and over the
  calls that fit a model (after the initial quasi-random design).

``--history N`` imports N finished trials at seeded random points before the first ask (as
``bayes.py`` does for its 300-trial timing). ``--src DIR`` imports ``hyperdial_server`` from
``DIR`` (e.g. a copy of an older ``server/``) so that old and new code can be timed back to
back in the same machine state. BLAS and OpenMP run single-threaded, as in the server. The
machine may be noisy: use ``--repeat`` (the repeat with the lowest model median is reported)
and compare medians, not single calls. cProfile of any run::

    python -m cProfile -s cumtime bench/bayes_profile.py --problems hartmann6 --seeds 1

Examples (from the repository root)::

    python bench/bayes_profile.py --src /tmp/old/server --save /tmp/bayes_base.json
    python bench/bayes_profile.py --compare /tmp/bayes_base.json
    python bench/bayes_profile.py --compare /tmp/bayes_base.json --replay
"""

from __future__ import annotations

import os

# Before numpy is imported (as the server does): one BLAS thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes_problems import PROBLEMS, SETS, Param, Problem  # noqa: E402

#: Suggestions closer than this (max abs difference of unit coordinates) count as matching.
TOLERANCE = 1e-6


def _import_server(src: str | None) -> Any:
    """The ``hyperdial_server`` modules used by a run (from ``src`` when given)."""
    if src is not None:
        sys.path.insert(0, str(Path(src).resolve()))
    import hyperdial_server.core.space as space
    import hyperdial_server.core.study as study
    import hyperdial_server.core.trial as trial
    import hyperdial_server.samplers._bayes as bayes

    return space, study, trial, bayes


def _spec(mods: Any, problem: Problem, seed: int) -> Any:
    """The StudySpec the service builds from ``bayes.py``'s CreateStudy request."""
    space_mod, study_mod, _, _ = mods

    def param(p: Param) -> Any:
        if p.kind == "float":
            domain = space_mod.FloatDomain(p.low, p.high, log=p.log)
        elif p.kind == "int":
            domain = space_mod.IntDomain(int(p.low), int(p.high), log=p.log)
        else:
            domain = space_mod.CategoricalDomain(tuple(p.values))
        return space_mod.ParameterConfig(p.name, domain)

    space = space_mod.SearchSpace([param(p) for p in problem.params])
    return study_mod.StudySpec(
        space, (study_mod.Objective("loss"),), study_mod.Algorithm.BAYESIAN, seed
    )


def _imported(mods: Any, spec: Any, problem: Problem, count: int) -> list[Any]:
    """``count`` trials at seeded random points, imported as finished (as ``CreateTrial``)."""
    _, study_mod, trial_mod, _ = mods
    from hyperdial_server.samplers import RandomSampler

    random_spec = study_mod.StudySpec(
        spec.space, spec.objectives, study_mod.Algorithm.RANDOM, spec.seed + 7919
    )
    points = RandomSampler().suggest(random_spec, range(count))
    return [
        trial_mod.Trial(
            i + 1,
            trial_mod.TrialState.COMPLETED,
            dict(p),
            {"loss": problem.fn(p)},
            create_time=float(i),
            complete_time=float(i),
        )
        for i, p in enumerate(points)
    ]


def run(
    mods: Any,
    problem: Problem,
    seed: int,
    trials: int,
    replay: list[dict[str, Any]] | None,
    history: int = 0,
) -> dict[str, Any]:
    """One sequential study; with ``replay``, the history holds the baseline's points."""
    _, _, trial_mod, bayes = mods
    spec = _spec(mods, problem, seed)
    enc = bayes.Encoder(spec.space)
    sampler = bayes.BayesianSampler()
    completed: list[Any] = _imported(mods, spec, problem, history)
    units: list[list[float]] = []
    seconds: list[float] = []
    values: list[float] = []
    for i in range(trials):
        t0 = time.process_time()
        (point,) = sampler.suggest(spec, [i], completed, pending=[])
        seconds.append(time.process_time() - t0)
        units.append([float(v) for v in enc.encode(point)])
        if replay is not None:
            point = replay[i]
        value = problem.fn(point)
        values.append(value)
        completed.append(
            trial_mod.Trial(
                history + i + 1,
                trial_mod.TrialState.COMPLETED,
                dict(point),
                {"loss": value},
                create_time=float(i),
                complete_time=float(i) + 0.5,
            )
        )
    return {
        "problem": problem.name,
        "seed": seed,
        "units": units,
        "params": [dict(t.params) for t in completed[history:]],
        "seconds": seconds,
        "best": min(values),
        # Asks before this one answer from the initial quasi-random design (no model).
        "model_from": max(0, min(bayes.default_initial_trials(spec.space) - history, trials)),
    }


def _ms(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    return 1000.0 * s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default=",".join(SETS["low"]))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="runs per seed (timing only)")
    parser.add_argument(
        "--history", type=int, default=0, help="random trials imported before the first ask"
    )
    parser.add_argument("--src", help="directory to import hyperdial_server from")
    parser.add_argument("--save", help="write the suggestions of this run to this JSON file")
    parser.add_argument("--compare", help="baseline JSON to compare the suggestions against")
    parser.add_argument(
        "--replay", action="store_true", help="feed each ask the baseline's history"
    )
    args = parser.parse_args()
    if args.replay and not args.compare:
        parser.error("--replay needs --compare")
    mods = _import_server(args.src)
    print(f"# hyperdial_server from {Path(mods[3].__file__).resolve().parents[2]}")
    base: dict[tuple[str, int], dict[str, Any]] = {}
    if args.compare:
        for r in json.loads(Path(args.compare).read_text()):
            base[(r["problem"], r["seed"])] = r
    results: list[dict[str, Any]] = []
    header = "| problem | median ms | p90 ms | model median ms | model p90 ms |"
    if base:
        header += " exact | within 1e-6 | max diff | best (new / base) |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    totals = [0, 0, 0]
    for name in args.problems.split(","):
        problem = PROBLEMS[name]
        all_s: list[float] = []
        model_s: list[float] = []
        exact = close = count = 0
        max_diff = 0.0
        bests: list[tuple[float, float]] = []
        best_median = math.inf
        runs: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            rep_all: list[float] = []
            rep_model: list[float] = []
            runs = []
            for seed in range(args.seeds):
                ref = base.get((name, seed))
                replay = ref["params"] if args.replay and ref else None
                r = run(mods, problem, seed, args.trials, replay, args.history)
                runs.append(r)
                rep_all += r["seconds"]
                rep_model += r["seconds"][r["model_from"] :]
            med = statistics.median(rep_model) if rep_model else math.inf
            if med < best_median:
                best_median, all_s, model_s = med, rep_all, rep_model
        for r in runs:
            ref = base.get((name, r["seed"]))
            if ref is None:
                continue
            for a, b in zip(r["units"], ref["units"], strict=False):
                d = max(abs(x - y) for x, y in zip(a, b, strict=True))
                max_diff = max(max_diff, d)
                exact += d == 0.0
                close += d <= TOLERANCE
                count += 1
            bests.append((r["best"], ref["best"]))
        results += runs
        row = (
            f"| {name} | {_ms(all_s, 0.5):.2f} | {_ms(all_s, 0.9):.2f} "
            f"| {_ms(model_s, 0.5):.2f} | {_ms(model_s, 0.9):.2f} |"
        )
        if base:
            totals = [totals[0] + exact, totals[1] + close, totals[2] + count]
            new_best = statistics.mean(b[0] for b in bests) if bests else math.nan
            old_best = statistics.mean(b[1] for b in bests) if bests else math.nan
            row += (
                f" {exact}/{count} | {close}/{count} | {max_diff:.2g} "
                f"| {new_best:.6g} / {old_best:.6g} |"
            )
        print(row, flush=True)
        for r in runs:
            if base and (name, r["seed"]) in base:
                print(
                    f"#   seed {r['seed']}: best {r['best']:.6g} "
                    f"(base {base[(name, r['seed'])]['best']:.6g})",
                    flush=True,
                )
    if base and totals[2]:
        print(
            f"# all: exact {totals[0]}/{totals[2]} ({100 * totals[0] / totals[2]:.1f} %), "
            f"within {TOLERANCE:g}: {totals[1]}/{totals[2]} ({100 * totals[1] / totals[2]:.1f} %)"
        )
    if args.save:
        Path(args.save).write_text(json.dumps(results))
        print(f"# suggestions written to {args.save}")


if __name__ == "__main__":
    main()
