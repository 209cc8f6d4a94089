"""Benchmark: hyperdial BAYESIAN over gRPC against Optuna's samplers, side by side.

Starts a real server (``python -m hyperdial_server --port 0``, memory store) and drives it with
the generated gRPC stub: ask (``SuggestTrials``), evaluate, tell (``CompleteTrial``). In the same
run, Optuna's ``RandomSampler``, ``TPESampler`` (defaults) and ``GPSampler`` (defaults) solve the
same problems with ``study.ask`` / ``study.tell``. Needs the ``bench`` extra (Optuna, PyTorch).

Prints, per problem and method: the median over seeds of the final regret (best value found
minus the known optimum), that median divided by random search's, and the median time of one
ask in milliseconds (over every ask of every seed; over gRPC for hyperdial, ``study.ask`` for
Optuna). Then the p50 of a BAYESIAN ask on a 6-D study holding 300 completed trials.

    python bench/bayes.py                 # 50 trials x 10 seeds, every problem and method
    python bench/bayes.py --seeds 3 --problems branin --methods hyperdial,optuna-gp
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes_problems import PROBLEMS, Param, Params, Problem  # noqa: E402

from hyperdial.v1 import (  # noqa: E402
    study_pb2,
    trial_pb2,
    tuning_service_pb2,
    tuning_service_pb2_grpc,
)

METHODS = ("random", "tpe", "optuna-gp", "hyperdial")


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
    if p.kind == "float":
        return study_pb2.ParameterSpec(
            name=p.name, float_domain=study_pb2.FloatDomain(min=p.low, max=p.high, scale=scale)
        )
    if p.kind == "int":
        return study_pb2.ParameterSpec(
            name=p.name,
            int_domain=study_pb2.IntDomain(min=int(p.low), max=int(p.high), scale=scale),
        )
    return study_pb2.ParameterSpec(
        name=p.name, categorical_domain=study_pb2.CategoricalDomain(values=list(p.values))
    )


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


def _create(server: Server, study_id: str, problem: Problem, seed: int) -> str:
    spec = study_pb2.StudySpec(
        parameters=[_param_pb(p) for p in problem.params],
        objectives=[study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)],
        algorithm=study_pb2.ALGORITHM_BAYESIAN,
        seed=seed,
    )
    server.stub.CreateStudy(tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=spec))
    return f"studies/{study_id}"


def run_hyperdial(
    server: Server, problem: Problem, seed: int, n_trials: int
) -> tuple[float, list[float]]:
    """Best value and per-ask seconds of one seeded run over gRPC."""
    parent = _create(server, f"{problem.name}-{seed}-{time.time_ns()}", problem, seed)
    best = math.inf
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        resp = server.stub.SuggestTrials(
            tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1)
        )
        times.append(time.perf_counter() - t0)
        trial = resp.trials[0]
        value = problem.fn(_params(trial))
        best = min(best, value)
        server.stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name, final_measurement=trial_pb2.Measurement(values={"loss": value})
            )
        )
    return best, times


def run_optuna(
    method: str, problem: Problem, seed: int, n_trials: int
) -> tuple[float, list[float]]:
    """Best value and per-ask seconds of one seeded Optuna run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler
    if method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif method == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    else:
        sampler = optuna.samplers.GPSampler(seed=seed)
    dists: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in problem.params:
        if p.kind == "float":
            dists[p.name] = optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
        elif p.kind == "int":
            dists[p.name] = optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            dists[p.name] = optuna.distributions.CategoricalDistribution(list(p.values))
    study = optuna.create_study(sampler=sampler, direction="minimize")
    best = math.inf
    times: list[float] = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial = study.ask(dists)
        times.append(time.perf_counter() - t0)
        value = problem.fn(trial.params)
        best = min(best, value)
        study.tell(trial, value)
    return best, times


def ask_at_300(server: Server, asks: int = 20) -> list[float]:
    """Seconds of BAYESIAN asks on a 6-D study (Hartmann-6) holding 300 completed trials."""
    import random

    problem = PROBLEMS["hartmann6"]
    parent = _create(server, f"ask300-{time.time_ns()}", problem, 0)
    rnd = random.Random(0)
    for _ in range(300):
        point: Params = {p.name: rnd.random() for p in problem.params}
        server.stub.CreateTrial(
            tuning_service_pb2.CreateTrialRequest(
                parent=parent,
                parameters={k: _value_pb(v) for k, v in point.items()},
                final_measurement=trial_pb2.Measurement(values={"loss": problem.fn(point)}),
            )
        )
    times = []
    for _ in range(asks):
        t0 = time.perf_counter()
        resp = server.stub.SuggestTrials(
            tuning_service_pb2.SuggestTrialsRequest(parent=parent, count=1)
        )
        times.append(time.perf_counter() - t0)
        trial = resp.trials[0]
        server.stub.CompleteTrial(
            tuning_service_pb2.CompleteTrialRequest(
                name=trial.name,
                final_measurement=trial_pb2.Measurement(
                    values={"loss": problem.fn(_params(trial))}
                ),
            )
        )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--skip-300", action="store_true", help="skip the 300-trial ask timing")
    args = parser.parse_args()
    methods = args.methods.split(",")
    needs_server = "hyperdial" in methods or not args.skip_300
    server = Server() if needs_server else None
    try:
        print("| problem | method | median regret | regret / random's | median ask ms |")
        print("| --- | --- | ---: | ---: | ---: |")
        rows: list[tuple[str, str, float, float]] = []
        for name in args.problems.split(","):
            problem = PROBLEMS[name]
            regrets: dict[str, float] = {}
            for method in methods:
                finals: list[float] = []
                times: list[float] = []
                for seed in range(args.seeds):
                    if method == "hyperdial":
                        assert server is not None
                        best, t = run_hyperdial(server, problem, seed, args.trials)
                    else:
                        best, t = run_optuna(method, problem, seed, args.trials)
                    finals.append(best - problem.optimum)
                    times += t
                regrets[method] = statistics.median(finals)
                ms = 1000 * statistics.median(times)
                rows.append((name, method, regrets[method], ms))
                print(
                    f"# {name} {method}: regrets {[f'{r:.3g}' for r in finals]}",
                    file=sys.stderr,
                    flush=True,
                )
            for row in rows[-len(methods) :]:
                norm = row[2] / regrets["random"] if regrets.get("random") else math.nan
                print(
                    f"| {row[0]} | {row[1]} | {row[2]:.3g} | {norm:.3g} | {row[3]:.1f} |",
                    flush=True,
                )
        if server is not None and not args.skip_300:
            t300 = ask_at_300(server)
            print(
                f"p50 ask, 6-D, 300 completed trials: {1000 * statistics.median(t300):.1f} ms "
                f"(max {1000 * max(t300):.1f} ms over {len(t300)} asks)",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
