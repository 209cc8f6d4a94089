"""Benchmark: hyperdial's parameter importance against the truth and against Optuna's, side by side.

The synthetic objectives of ``importance_problems.py`` know how their parameters rank (one
dominant, two interacting, three irrelevant; six graded weights; mixed types: log float, int,
categorical, discrete and two irrelevant ones; a conditional parameter). For each, N random
trials (uniform; log-uniform on a log scale) from seeds 0 to S-1 are given, the same trials, to:

* **hyperdial**: a real server (``python -m hyperdial_server --port 0``, memory store), the
  trials recorded with ``Study.add_trial`` (``CreateTrial``), then
  ``Study.parameter_importance()`` (``ComputeParameterImportance``: PED-ANOVA, top 10%);
* **Optuna PED-ANOVA**: ``get_param_importances`` with ``PedAnovaImportanceEvaluator()``
  (Optuna 5's default evaluator; target quantile 0.1, region quantile 1), on an in-memory study
  of the same trials (``create_trial``); a discrete parameter is a ``CategoricalDistribution``
  there (Optuna has no ordered set of uneven values);
* **Optuna fANOVA**: ``FanovaImportanceEvaluator(seed=0)`` (a random forest, then the variance
  of each parameter's main effect), on the same study. It assesses only the parameters present
  in every trial: a conditional one counts as 0.

Per (problem, N): the mean over seeds of Kendall's tau-b between each method's importances and
the truth (1: the same order; ties in the truth, e.g. irrelevant parameters, count neither way),
tau-b between hyperdial and Optuna PED-ANOVA, how often each method puts a truly most important
parameter first, and the median time of one evaluation (hyperdial: the RPC as the client sees
it; Optuna: the evaluator's call).

Run from the repository root (needs the ``bench`` extra: Optuna, scikit-learn)::

    OPENBLAS_NUM_THREADS=1 python -m bench.importance               # the table in bench/README.md
    python -m bench.importance --seeds 3 --trials 100 --problems mixed --methods hyperdial,ped-anova
"""

from __future__ import annotations

import os

# One BLAS / OpenMP thread everywhere (this process and the server): see bench/README.md.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from scipy.stats import kendalltau  # noqa: E402

import hyperdial as hd  # noqa: E402
from bench.early_stopping import server  # noqa: E402
from bench.importance_problems import PROBLEMS, Point, Problem, trials  # noqa: E402

METHODS = ("hyperdial", "ped-anova", "fanova")
LABELS = {"hyperdial": "hyperdial", "ped-anova": "Optuna PED-ANOVA", "fanova": "Optuna fANOVA"}
Importances = dict[str, float]


@dataclass
class Row:
    """The results of one problem at one number of trials, over the seeds."""

    problem: str
    trials: int
    tau: dict[str, list[float]] = field(default_factory=dict)
    tau_hd_optuna: list[float] = field(default_factory=list)
    top1: dict[str, list[bool]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)


def _tau(importances: Mapping[str, float], truth: Mapping[str, float]) -> float:
    """Kendall's tau-b of the importances against the truth (0 when either is constant)."""
    names = sorted(truth)
    estimate = [importances.get(n, 0.0) for n in names]
    if len(set(estimate)) < 2:
        return 0.0
    value = float(kendalltau(estimate, [truth[n] for n in names]).statistic)
    return 0.0 if math.isnan(value) else value


def _top1(importances: Mapping[str, float], truth: Mapping[str, float]) -> bool:
    """Whether the most important parameter found is a truly most important one."""
    best = max(truth.values())
    found = max(sorted(truth), key=lambda n: importances.get(n, 0.0))
    return importances.get(found, 0.0) > 0 and truth[found] == best


# --- the methods ------------------------------------------------------------------------------


def hyperdial_importance(
    client: hd.Client, problem: Problem, data: Sequence[tuple[Point, float]]
) -> tuple[Importances, float]:
    study = client.create_study(
        f"imp-{problem.name}-{uuid.uuid4().hex[:8]}",
        problem.params,
        objectives=[hd.Objective("y", problem.goal)],  # type: ignore[arg-type]
        algorithm="random",
    )
    for point, value in data:
        study.add_trial(point, value)
    start = time.perf_counter()
    result = study.parameter_importance()
    elapsed = time.perf_counter() - start
    client.delete_study(study.study_id)
    return result.as_dict(), elapsed


def _optuna_study(problem: Problem, data: Sequence[tuple[Point, float]]) -> Any:
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    distributions: dict[str, BaseDistribution] = {}
    for p in problem.params:
        if isinstance(p, hd.Float):
            distributions[p.name] = FloatDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, hd.Int):
            distributions[p.name] = IntDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, (hd.Categorical, hd.Discrete)):
            distributions[p.name] = CategoricalDistribution(list(p.values))
    study = optuna.create_study(direction=problem.goal)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=dict(point),
                distributions={k: distributions[k] for k in point},
                value=value,
            )
            for point, value in data
        ]
    )
    return study


def optuna_importance(
    evaluator: Callable[[], Any], problem: Problem, data: Sequence[tuple[Point, float]]
) -> tuple[Importances, float]:
    import optuna

    study = _optuna_study(problem, data)
    start = time.perf_counter()
    result = optuna.importance.get_param_importances(study, evaluator=evaluator())
    return {k: float(v) for k, v in result.items()}, time.perf_counter() - start


def _ped_anova() -> Any:
    from optuna.importance import PedAnovaImportanceEvaluator

    return PedAnovaImportanceEvaluator()


def _fanova() -> Any:
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=0)


# --- the run ----------------------------------------------------------------------------------


def run(
    problems: Sequence[str], sizes: Sequence[int], seeds: int, methods: Sequence[str]
) -> list[Row]:
    warnings.simplefilter("ignore")  # Optuna's experimental and "too few trials" warnings
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    with server() as s, hd.Client(s.target) as client:
        for name in problems:
            problem = PROBLEMS[name]
            for n in sizes:
                row = Row(name, n)
                for seed in range(seeds):
                    data = trials(problem, n, seed)
                    found: dict[str, Importances] = {}
                    for method in methods:
                        if method == "hyperdial":
                            found[method], seconds = hyperdial_importance(client, problem, data)
                        else:
                            make = _ped_anova if method == "ped-anova" else _fanova
                            found[method], seconds = optuna_importance(make, problem, data)
                        row.tau.setdefault(method, []).append(_tau(found[method], problem.truth))
                        row.top1.setdefault(method, []).append(_top1(found[method], problem.truth))
                        row.seconds.setdefault(method, []).append(seconds)
                    if "hyperdial" in found and "ped-anova" in found:
                        row.tau_hd_optuna.append(_tau(found["hyperdial"], found["ped-anova"]))
                rows.append(row)
                print(_line(row, methods), file=sys.stderr, flush=True)
    return rows


def _line(row: Row, methods: Sequence[str]) -> str:
    taus = ", ".join(f"{m} {statistics.mean(row.tau[m]):.2f}" for m in methods)
    return f"{row.problem} N={row.trials}: tau {taus}"


def table(rows: Sequence[Row], methods: Sequence[str]) -> str:
    """The markdown table of bench/README.md."""

    def mean_sd(values: Sequence[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {sd:.2f}"

    head = ["problem", "N"]
    head += [f"τ {LABELS[m]}" for m in methods]
    both = "hyperdial" in methods and "ped-anova" in methods
    if both:
        head.append("τ hyperdial vs Optuna PED-ANOVA")
    head += [f"first right: {LABELS[m]}" for m in methods]
    head += [f"ms {LABELS[m]}" for m in methods]
    lines = [
        "| " + " | ".join(head) + " |",
        "| --- | " + " | ".join(["---:"] * (len(head) - 1)) + " |",
    ]
    for row in rows:
        cells = [row.problem, str(row.trials)]
        cells += [mean_sd(row.tau[m]) for m in methods]
        if both:
            cells.append(mean_sd(row.tau_hd_optuna))
        cells += [f"{sum(row.top1[m])}/{len(row.top1[m])}" for m in methods]
        cells += [f"{1000 * statistics.median(row.seconds[m]):.0f}" for m in methods]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated")
    parser.add_argument("--trials", default="100,300", help="comma-separated Ns")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--save", metavar="FILE", help="write the raw results as JSON")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS) | set(args.problems.split(",")) - set(PROBLEMS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    start = time.perf_counter()
    rows = run(
        args.problems.split(","), [int(n) for n in args.trials.split(",")], args.seeds, methods
    )
    print(table(rows, methods))
    print(f"\n({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.save:
        Path(args.save).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
