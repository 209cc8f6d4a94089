"""BAYESIAN asks on a busy node: each ``--sampler-priority`` against CPU-bound neighbours.

One replica per policy (``python -m hyperdial_server --port 0 --redis URL --sampler-priority
P``, the default number of sampler workers), all on one real ``redis-server``. For each number
of neighbours (CPU-bound processes at niceness 0, like a training job: plain Python busy loops
in this process's session, so they share the replica's scheduling group) and each policy,
``--bayes-clients`` client processes loop ask -> tell on a fresh 6-D BAYESIAN study holding 300
completed trials (Hartmann-6's space, imported with ``CreateTrial``) while a probe client loops
RANDOM ask -> tell on the same replica; ``--seconds`` each. The probe also runs alone on each
replica (idle: no neighbours, no Bayesian asks) for ``--idle-seconds``, and, as a control that
no policy can change, beside the neighbours alone (no Bayesian asks) for ``--seconds``. The rounds
(``--rounds``) interleave the policies (their order rotates each round), so a drift of the
machine reaches all of them alike; samples are pooled over the rounds.

Printed: policy x neighbours -> BAYESIAN asks, p50, p99; RANDOM asks, p99, and its ratios to
the same replica's idle p99 and to the control's p99 (what the Bayesian asks add to what the
neighbours cost by themselves). Run it from the repository root with the ``bench`` extra::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m bench.bayes_busy
    python -m bench.bayes_busy --policies 10,0 --neighbours 0,2 --rounds 1 --seconds 4

A study grows by the asks told during its phase (300 + the asks column); beyond 200 trials
the model is fitted on a subset, so that costs a faster policy a little, never a slower one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bench.bayes_latency import _run_clients, _stub, ask_tell, create_study, pct
from bench.load import Proc, redis_server
from hyperdial_server.service import DEFAULT_SAMPLER_PRIORITY, SamplerPriority

#: Completed trials of each BAYESIAN study when its phase starts.
TRIALS = 300

# A CPU-bound neighbour at the normal priority (niceness 0), as a training job runs.
_NEIGHBOUR = "while True:\n    pass\n"


def start_replica(redis_url: str, policy: SamplerPriority) -> Proc:
    """A replica on ``redis_url`` whose sampler workers run at ``policy``."""
    args = [sys.executable, "-m", "hyperdial_server", "--port", "0", "--redis", redis_url]
    return Proc([*args, "--sampler-priority", str(policy)], f"hyperdial-{policy}")


@contextmanager
def neighbours(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes at niceness 0 while the block runs, killed after it."""
    procs = [subprocess.Popen([sys.executable, "-c", _NEIGHBOUR]) for _ in range(count)]
    try:
        time.sleep(0.2 if count else 0.0)  # running before the clients start
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _study_id(policy: int, count: int, round_: int) -> str:
    return f"busy-p{policy}-n{count}-r{round_}"


def run(
    redis_url: str,
    policies: Sequence[SamplerPriority],
    counts: Sequence[int],
    rounds: int,
    seconds: float,
    idle_seconds: float,
    bayes_clients: int,
    out: Callable[[str], None],
) -> dict[str, Any]:
    """Every phase; pooled samples by (policy index, neighbours), idle ones by policy index,
    the control's by neighbours, and each round's RANDOM p99 ratios to idle by (policy
    index, neighbours)."""
    bayes: dict[tuple[int, int], list[float]] = defaultdict(list)
    control: dict[int, list[float]] = defaultdict(list)
    rand: dict[tuple[int, int], list[float]] = defaultdict(list)
    idle: dict[int, list[float]] = defaultdict(list)
    ratios: dict[tuple[int, int], list[float]] = defaultdict(list)
    replicas: list[Proc] = []
    try:
        for policy in policies:
            replicas.append(start_replica(redis_url, policy))
        for i, replica in enumerate(replicas):
            stub = _stub(replica.target)
            create_study(stub, f"random-probe-{i}", "RANDOM", 0)
            # Every study the rounds use, before any phase: imports are no part of a phase.
            # Distinct ids per replica, since they share the one Redis.
            for r in range(rounds):
                for n in counts:
                    create_study(stub, _study_id(i, n, r), "BAYESIAN", TRIALS)
            create_study(stub, f"warm-{i}", "BAYESIAN", 20)
            ask_tell(stub, f"warm-{i}")  # starts the replica's workers: not measured
        out(f"# {len(replicas)} replicas ready, {rounds * len(counts)} studies each")
        for r in range(rounds):
            order = [(r + k) % len(policies) for k in range(len(policies))]
            for i in order:
                (samples,) = _run_clients(
                    replicas[i].target, [(f"random-probe-{i}", "probe")], idle_seconds
                )
                idle[i] += samples
            for n in counts:
                with neighbours(n):  # the control, on any replica: its workers are idle
                    (samples,) = _run_clients(
                        replicas[order[0]].target, [(f"random-probe-{order[0]}", "probe")], seconds
                    )
                control[n] += samples
                p99 = pct(samples, 0.99)
                out(f"# round {r + 1} control neighbours {n}: RANDOM p99 {p99:.2f} ms")
                for i in order:
                    loops = [(f"random-probe-{i}", "probe")]
                    loops += [(_study_id(i, n, r), f"b{k}") for k in range(bayes_clients)]
                    with neighbours(n):
                        results = _run_clients(replicas[i].target, loops, seconds)
                    probe = results[0]
                    asks = [s for res in results[1:] for s in res]
                    rand[i, n] += probe
                    bayes[i, n] += asks
                    base = pct(idle[i], 0.99)
                    ratios[i, n].append(pct(probe, 0.99) / base)
                    out(
                        f"# round {r + 1} policy {policies[i]} neighbours {n}: BAYESIAN "
                        f"{len(asks)} asks p50 {pct(asks, 0.5):.0f} ms p99 "
                        f"{pct(asks, 0.99):.0f} ms; RANDOM p99 {pct(probe, 0.99):.2f} ms "
                        f"({ratios[i, n][-1]:.2f}x idle)"
                    )
    finally:
        for replica in replicas:
            replica.stop()
    return {"bayes": bayes, "rand": rand, "idle": idle, "ratios": ratios, "control": control}


def table(
    policies: Sequence[SamplerPriority], counts: Sequence[int], result: dict[str, Any]
) -> list[str]:
    """The Markdown table of the pooled figures."""
    bayes, rand, idle, ratios, control = (
        result[k] for k in ("bayes", "rand", "idle", "ratios", "control")
    )
    lines = [
        "| `--sampler-priority` | CPU-bound neighbours | BAYESIAN asks | p50 ms | p99 ms "
        "| RANDOM asks | RANDOM p99 ms | / idle (each round) | / control |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    everyone = [s for samples in idle.values() for s in samples]
    for n in counts:
        c = control[n]
        lines.append(
            f"| control: no BAYESIAN asks | {n} | - | - | - | {len(c):,} | "
            f"{pct(c, 0.99):.2f} | {pct(c, 0.99) / pct(everyone, 0.99):.2f} | 1.00 |"
        )
    for i, policy in enumerate(policies):
        base = pct(idle[i], 0.99)
        lines.append(f"| {policy} | idle | - | - | - | {len(idle[i]):,} | {base:.2f} | 1.00 | - |")
        for n in counts:
            b, p = bayes[i, n], rand[i, n]
            each = ", ".join(f"{x:.1f}" for x in ratios[i, n])
            lines.append(
                f"| {policy} | {n} | {len(b):,} | {pct(b, 0.5):.0f} | {pct(b, 0.99):.0f} | "
                f"{len(p):,} | {pct(p, 0.99):.2f} | {pct(p, 0.99) / base:.2f} ({each}) | "
                f"{pct(p, 0.99) / pct(control[n], 0.99):.2f} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--policies",
        default=f"10,0,batch,5,{DEFAULT_SAMPLER_PRIORITY}",
        help="--sampler-priority values, comma-separated (duplicates are measured once)",
    )
    parser.add_argument("--neighbours", default="0,1,2", help="numbers of CPU-bound neighbours")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per phase")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle probe per round")
    parser.add_argument("--bayes-clients", type=int, default=1)
    parser.add_argument("--redis", default=None, help="a running Redis (default: start one)")
    args = parser.parse_args(argv)
    try:
        parsed = [SamplerPriority.parse(p) for p in args.policies.split(",") if p]
    except ValueError as e:
        parser.error(f"--policies: {e}")
    policies = list(dict.fromkeys(parsed))
    counts = [int(n) for n in args.neighbours.split(",") if n]
    out: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    started = time.monotonic()
    with redis_server(args.redis) as url:
        result = run(
            url,
            policies,
            counts,
            args.rounds,
            args.seconds,
            args.idle_seconds,
            args.bayes_clients,
            out,
        )
    out("")
    for line in table(policies, counts, result):
        out(line)
    out(f"\n{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
