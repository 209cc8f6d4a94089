"""Ask/tell load benchmark: hyperdial next to a do-nothing gRPC floor and Optuna's gRPC proxy.

One invocation runs, side by side, for W = 1, 4, 16 client *processes* each looping
ask -> tell with a blocking gRPC stub (what a training job does):

1. ``floor``: a do-nothing unary ``grpc.aio`` echo server (generic handler, the request bytes
   returned as the response); one pair is two calls, as an ask and a tell are.
2. ``hd-1``: hyperdial on Redis, one replica, RANDOM study.
3. ``hd-2``: two replicas, client-side round robin (``ipv4:127.0.0.1:P1,127.0.0.1:P2``).
4. ``optuna``: Optuna's gRPC storage proxy over a ``JournalRedisBackend``, RandomSampler,
   clients with ``GrpcStorageProxy`` doing ``study.ask`` -> ``study.tell`` on the same space.
5. ``hd-1 count=10``: one ask hands out 10 trials, then 10 tells (latency is per batch).
6. ``hd-1 100k``: the same as ``hd-1`` on a study that already holds 100,000 trials.
7. ``hd-cluster``: one replica as in ``hd-1``, on a 3-master Redis Cluster (no replicas)
   started from the same ``redis-server`` binary; Redis CPU is summed over its nodes.
8. ``hd-cluster-2``: two replicas on that cluster, round robin as in ``hd-2``.

Every server is a real process (``python -m hyperdial_server --port 0 --redis URL``), on a real
``redis-server``. Run it from the repository root, in an environment with hyperdial[server]
and optuna (see ``bench/README.md``)::

    python -m bench.load                      # everything, about 5 minutes
    python -m bench.load --workers 16 --duration 5 --scenarios floor,hd-1
    python -m bench.load --workers 16 --rounds 3 --scenarios hd-1,hd-2,hd-cluster,hd-cluster-2

The figures are ratios in one run on one machine: clients, servers and Redis share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

SCENARIOS = (
    "floor",
    "hd-1",
    "hd-2",
    "optuna",
    "hd-1-count10",
    "hd-1-100k",
    "hd-cluster",
    "hd-cluster-2",
)
#: The scenarios on the Redis Cluster, and the replicas (``procs`` keys) each one uses.
CLUSTER_SCENARIOS = {"hd-cluster": ("hd-c-a",), "hd-cluster-2": ("hd-c-a", "hd-c-b")}
ECHO_METHOD = "/bench.Echo/Call"
# Sizes like an ask request and a tell request, so the floor moves similar bytes.
ECHO_PAYLOADS = (b"a" * 60, b"t" * 90)
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
_LISTEN_RE = re.compile(r"listening on ([0-9.]+):([0-9]+)")


# --- the search space, for hyperdial and for Optuna ---------------------------------------------


def hyperdial_spec(algorithm: str = "RANDOM") -> Any:
    """Four parameters of every kind, one objective."""
    from hyperdial.v1 import study_pb2 as s

    return s.StudySpec(
        parameters=[
            s.ParameterSpec(
                name="lr", float_domain=s.FloatDomain(min=1e-5, max=1.0, scale=s.SCALE_LOG)
            ),
            s.ParameterSpec(name="layers", int_domain=s.IntDomain(min=1, max=8)),
            s.ParameterSpec(
                name="optimizer",
                categorical_domain=s.CategoricalDomain(values=["adam", "sgd", "rmsprop"]),
            ),
            s.ParameterSpec(name="dropout", float_domain=s.FloatDomain(min=0.0, max=0.5)),
        ],
        objectives=[s.ObjectiveSpec(name="loss", goal=s.GOAL_MINIMIZE)],
        algorithm=getattr(s, f"ALGORITHM_{algorithm}"),
    )


def optuna_distributions() -> dict[str, Any]:
    """The same space as :func:`hyperdial_spec`, as Optuna distributions."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        "lr": FloatDistribution(1e-5, 1.0, log=True),
        "layers": IntDistribution(1, 8),
        "optimizer": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
        "dropout": FloatDistribution(0.0, 0.5),
    }


# --- client loops (run in the worker processes) -----------------------------------------------


@dataclass
class Task:
    """What one worker process runs.

    Attributes:
        kind: ``echo``, ``hyperdial``, ``optuna`` or ``fill`` (tell ``total`` trials, unmeasured).
        target: gRPC target (``host:port`` or a multi-address ``ipv4:`` target).
        study: Study id / name.
        count: Trials per ask.
        start: ``time.monotonic()`` at which measuring starts (the clock is system-wide).
        end: ... and stops; the loop stops then too.
        total: For ``fill``: trials to ask and tell.
        worker: Index of the worker (client id).
    """

    kind: str
    target: str
    study: str
    count: int = 1
    start: float = 0.0
    end: float = 0.0
    total: int = 0
    worker: int = 0


@dataclass
class Result:
    """What one worker measured: pairs finished in the window, and one latency per iteration
    (one ask and its tells) that ended in the window, in seconds."""

    pairs: int = 0
    calls: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str = ""


def _channel(target: str) -> Any:
    import grpc

    options: list[tuple[str, Any]] = []
    if target.startswith("ipv4:"):
        options.append(("grpc.service_config", ROUND_ROBIN))
    return grpc.insecure_channel(target, options=options)


def _measure(task: Task, iteration: Callable[[], tuple[int, int]], result: Result) -> None:
    """Runs ``iteration`` (returning pairs and calls done) until ``task.end``."""
    while True:
        t0 = time.monotonic()
        if t0 >= task.end:
            return
        pairs, calls = iteration()
        t1 = time.monotonic()
        if task.start <= t1 <= task.end:
            result.pairs += pairs
            result.calls += calls
            result.latencies.append(t1 - t0)


def run_echo(task: Task) -> Result:
    """The floor: two do-nothing unary calls per pair."""
    result = Result()
    with _channel(task.target) as channel:
        call = channel.unary_unary(ECHO_METHOD)
        ask_bytes, tell_bytes = ECHO_PAYLOADS

        def iteration() -> tuple[int, int]:
            call(ask_bytes)
            call(tell_bytes)
            return 1, 2

        _measure(task, iteration, result)
    return result


def run_hyperdial(task: Task) -> Result:
    """``SuggestTrials`` (``count`` trials) then one ``CompleteTrial`` per trial."""
    from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
    from hyperdial.v1 import tuning_service_pb2 as ts

    result = Result()
    with _channel(task.target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        ask = ts.SuggestTrialsRequest(
            parent=f"studies/{task.study}", count=task.count, client_id=f"w{task.worker}"
        )

        def iteration() -> tuple[int, int]:
            trials = stub.SuggestTrials(ask).trials
            for t in trials:
                loss = (
                    float(t.parameters["lr"].double_value) + 0.01 * t.parameters["layers"].int_value
                )
                stub.CompleteTrial(
                    ts.CompleteTrialRequest(
                        name=t.name, final_measurement=trial_pb2.Measurement(values={"loss": loss})
                    )
                )
            return len(trials), 1 + len(trials)

        if task.kind == "fill":
            done = 0
            while done < task.total:
                ask.count = min(task.count, task.total - done)
                done += iteration()[0]
        else:
            _measure(task, iteration, result)
    return result


def run_optuna(task: Task) -> Result:
    """``study.ask`` (every parameter sampled) then ``study.tell``, through the gRPC proxy."""
    import optuna
    from optuna.storages import GrpcStorageProxy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    host, port = task.target.rsplit(":", 1)
    storage = GrpcStorageProxy(host=host, port=int(port))
    study = optuna.load_study(
        study_name=task.study, storage=storage, sampler=optuna.samplers.RandomSampler()
    )
    space = optuna_distributions()
    result = Result()

    def iteration() -> tuple[int, int]:
        trial = study.ask(space)
        study.tell(trial, trial.params["lr"] + 0.01 * trial.params["layers"])
        return 1, 0  # calls: the proxy makes several per ask; not counted

    try:
        _measure(task, iteration, result)
    finally:
        storage.close()
    return result


def worker_main(conn: Connection) -> None:
    """A client process: runs the tasks it receives until told to stop."""
    runners = {
        "echo": run_echo,
        "hyperdial": run_hyperdial,
        "fill": run_hyperdial,
        "optuna": run_optuna,
    }
    while True:
        task = conn.recv()
        if task is None:
            return
        try:
            result = runners[task.kind](task)
        except Exception as e:  # reported by the parent, which stops the run
            result = Result(error=f"{type(e).__name__}: {e}")
        conn.send(result)


class Workers:
    """``n`` client processes (spawned once, reused by every scenario)."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    def run(self, tasks: Sequence[Task], during: Callable[[], None] | None = None) -> list[Result]:
        """Runs one task per worker (the first ``len(tasks)`` workers) and waits for all;
        ``during`` runs meanwhile, in this process."""
        for conn, task in zip(self._conns, tasks, strict=False):
            conn.send(task)
        if during is not None:
            during()
        results = [conn.recv() for conn in self._conns[: len(tasks)]]
        errors = [r.error for r in results if r.error]
        if errors:
            raise RuntimeError(f"{len(errors)} client(s) failed, e.g. {errors[0]}")
        return results

    def close(self) -> None:
        for conn in self._conns:
            conn.send(None)
        for proc in self._procs:
            proc.join(timeout=10)


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A server process whose first stdout line says ``listening on HOST:PORT``."""

    def __init__(self, args: Sequence[str], name: str) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(
            mode="w+", prefix=f"bench-{name}-", suffix=".log", delete=False
        )
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            list(args), stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = _LISTEN_RE.search(line)
        if not match:
            self.proc.kill()
            self.log.seek(0)
            raise RuntimeError(f"{name} did not start: {line!r}\n{self.log.read()[-3000:]}")
        self.target = f"{match.group(1)}:{match.group(2)}"
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
        os.unlink(self.log.name)


def start_hyperdial(redis_url: str) -> Proc:
    return Proc(
        [sys.executable, "-m", "hyperdial_server", "--port", "0", "--redis", redis_url],
        "hyperdial",
    )


def start_echo() -> Proc:
    return Proc([sys.executable, "-m", "bench.load", "--serve-echo"], "echo")


def start_optuna(redis_url: str) -> Proc:
    return Proc([sys.executable, "-m", "bench.load", "--serve-optuna", redis_url], "optuna")


async def _serve_echo() -> None:
    import grpc

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"echo listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


def _serve_optuna(redis_url: str) -> None:
    import threading

    from optuna.storages import JournalStorage, run_grpc_proxy_server
    from optuna.storages.journal import JournalRedisBackend

    storage = JournalStorage(JournalRedisBackend(redis_url))
    port = free_port()

    def ready() -> None:
        # run_grpc_proxy_server blocks: announce the port once it accepts connections.
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                print(f"optuna listening on 127.0.0.1:{port}", flush=True)
                return
            time.sleep(0.05)

    threading.Thread(target=ready, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    run_grpc_proxy_server(storage, host="127.0.0.1", port=port)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    workers: int
    pairs_per_s: float
    p50_ms: float
    p99_ms: float
    calls_per_s: float
    server_us: float = float("nan")
    redis_us: float = float("nan")


def summarize(scenario: str, workers: int, duration: float, results: list[Result]) -> Row:
    lat = sorted(x for r in results for x in r.latencies)
    pairs = sum(r.pairs for r in results)
    calls = sum(r.calls for r in results)

    def pct(q: float) -> float:
        if not lat:
            return float("nan")
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]

    return Row(scenario, workers, pairs / duration, pct(0.50), pct(0.99), calls / duration)


def create_hyperdial_study(target: str, study: str, spec: Any = None) -> None:
    """Creates ``study`` (by default on :func:`hyperdial_spec`, RANDOM)."""
    import grpc

    from hyperdial.v1 import tuning_service_pb2 as ts
    from hyperdial.v1 import tuning_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=spec or hyperdial_spec()))


def create_optuna_study(redis_url: str, study: str) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalRedisBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(
        study_name=study,
        storage=JournalStorage(JournalRedisBackend(redis_url)),
        direction="minimize",
    )


def fill(workers: Workers, n_workers: int, target: str, study: str, total: int) -> float:
    """Asks (100 at a time) and tells ``total`` trials; returns the seconds it took."""
    t0 = time.monotonic()
    share = [total // n_workers + (1 if i < total % n_workers else 0) for i in range(n_workers)]
    workers.run(
        [Task("fill", target, study, count=100, total=share[i], worker=i) for i in range(n_workers)]
    )
    return time.monotonic() - t0


def measure(
    workers: Workers,
    kind: str,
    target: str,
    study: str,
    w: int,
    *,
    count: int = 1,
    warmup: float,
    duration: float,
    cpu: Callable[[], tuple[float, float]] | None = None,
) -> tuple[list[Result], tuple[float, float]]:
    """Runs ``w`` clients; returns their results and the CPU seconds (servers, Redis) that
    ``cpu`` counted over the measured window."""
    # One second for the clients to connect, then the warm-up, then the window.
    start = time.monotonic() + 1.0 + warmup
    end = start + duration
    tasks = [
        Task(kind, target, study, count=count, start=start, end=end, worker=i) for i in range(w)
    ]
    used = [float("nan"), float("nan")]

    def sample() -> None:
        if cpu is None:
            return
        time.sleep(max(0.0, start - time.monotonic()))
        a = cpu()
        time.sleep(max(0.0, end - time.monotonic()))
        b = cpu()
        used[:] = [b[0] - a[0], b[1] - a[1]]

    results = workers.run(tasks, during=sample)
    return results, (used[0], used[1])


def process_cpu(pids: Sequence[int]) -> float:
    """User + system CPU seconds of processes so far (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def redis_cpu(url: str) -> float:
    """CPU seconds Redis has used (``INFO cpu``), main thread and others."""
    import redis

    with redis.Redis.from_url(url) as r:
        info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cluster_cpu(url: str) -> float:
    """CPU seconds every node of the Redis Cluster at ``url`` (``redis+cluster://HOST:PORT``)
    has used, as :func:`redis_cpu` counts one server's."""
    import redis

    host, _, port = url.split("://", 1)[1].split("/", 1)[0].rpartition(":")
    with redis.Redis(host=host, port=int(port), decode_responses=True) as seed:
        rows = str(seed.execute_command("CLUSTER", "NODES")).splitlines()
    total = 0.0
    for row in rows:
        address = row.split()[1].split("@", 1)[0]
        node_host, _, node_port = address.rpartition(":")
        with redis.Redis(host=node_host or host, port=int(node_port)) as r:
            info = r.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


@contextlib.contextmanager
def redis_cluster(url: str | None, wanted: bool) -> Iterator[str]:
    """A ``redis+cluster://`` URL: ``url``, else a 3-master cluster started for the run (when
    ``wanted``; else an empty string)."""
    if url or not wanted:
        yield url or ""
        return
    from tests.cluster.redis_cluster import RedisClusterServer

    with RedisClusterServer(masters=3) as cluster:
        yield cluster.url


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.redis_server import RedisServer

    with RedisServer() as server:
        yield server.url


def print_table(rows: list[Row], out: Callable[[str], None]) -> None:
    out(
        "| scenario | W | pairs/s | p50 ms | p99 ms | calls/s "
        "| server CPU µs/pair | Redis CPU µs/pair |"
    )
    out("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        calls = f"{r.calls_per_s:,.0f}" if r.calls_per_s else "-"
        redis_us = "-" if r.redis_us != r.redis_us else f"{r.redis_us:,.0f}"  # NaN: none
        out(
            f"| {r.scenario} | {r.workers} | {r.pairs_per_s:,.0f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {calls} | {r.server_us:,.0f} | {redis_us} |"
        )


def start_profiler(pid: int, seconds: float, path: str) -> subprocess.Popen[str]:
    """``py-spy record`` of a server process, as collapsed stacks in ``path``."""
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    args = [spy, "record", "-p", str(pid), "-d", str(int(seconds) + 1), "-r", "200"]
    args += ["--format", "raw", "-o", path]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def summarize_profile(path: str, out: Callable[[str], None], top: int = 25) -> None:
    """Prints the frames holding the most samples: inclusive (anywhere on the stack) and self."""
    total = 0
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not n.isdigit():
                continue
            total += int(n)
            names = []
            for frame in stack.split(";"):
                m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame)
                names.append(f"{m.group(1)} ({m.group(2).rsplit('/', 1)[-1]})" if m else frame)
            for name in set(names):
                inclusive[name] = inclusive.get(name, 0) + int(n)
            leaf[names[-1]] = leaf.get(names[-1], 0) + int(n)
    if not total:
        out("# profile: no samples")
        return
    for title, table in (("inclusive", inclusive), ("self", leaf)):
        out(f"# profile, {title} share of {total} samples:")
        for name, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            out(f"#   {100 * n / total:5.1f}%  {name}")


def print_ratios(rows: list[Row], out: Callable[[str], None]) -> None:
    by = {(r.scenario, r.workers): r for r in rows}
    for w in sorted({r.workers for r in rows}):
        parts = []
        floor, hd1 = by.get(("floor", w)), by.get(("hd-1", w))
        if floor and hd1:
            parts.append(f"hd-1 / floor pairs = {hd1.pairs_per_s / floor.pairs_per_s:.0%}")
        opt = by.get(("optuna", w))
        if opt and hd1 and opt.pairs_per_s:
            parts.append(f"hd-1 / optuna = {hd1.pairs_per_s / opt.pairs_per_s:.1f}x")
        hd2 = by.get(("hd-2", w))
        if hd2 and hd1:
            parts.append(f"hd-2 / hd-1 = {hd2.pairs_per_s / hd1.pairs_per_s:.2f}")
        cl1, cl2 = by.get(("hd-cluster", w)), by.get(("hd-cluster-2", w))
        if cl1 and hd1:
            parts.append(f"cluster / single pairs = {cl1.pairs_per_s / hd1.pairs_per_s:.0%}")
        if cl2 and cl1:
            parts.append(f"hd-cluster-2 / hd-cluster = {cl2.pairs_per_s / cl1.pairs_per_s:.2f}")
        c10 = by.get(("hd-1-count10", w))
        if c10 and hd1:
            parts.append(f"count=10 / count=1 = {c10.pairs_per_s / hd1.pairs_per_s:.2f}")
        big = by.get(("hd-1-100k", w))
        if big and hd1:
            parts.append(f"100k / fresh = {big.pairs_per_s / hd1.pairs_per_s:.2f}")
        if parts:
            out(f"W={w}: " + ", ".join(parts))


def run_scenario(
    scenario: str,
    w: int,
    procs: dict[str, Proc],
    redis_url: str,
    run_id: str,
    workers: Workers,
    args: argparse.Namespace,
    out: Callable[[str], None],
    round_no: int = 0,
    cluster_url: str = "",
) -> Row:
    """Measures one scenario with ``w`` clients (in round ``round_no`` of ``--rounds``)."""
    study = f"{scenario}-{w}-{run_id}-{round_no}"
    kind, count = "hyperdial", 1
    servers = [procs["hd-a"]] if "hd-a" in procs else []
    if scenario == "floor":
        kind, servers = "echo", [procs["echo"]]
    elif scenario == "optuna":
        kind, servers = "optuna", [procs["optuna"]]
        create_optuna_study(redis_url, study)
    elif scenario == "hd-2":
        servers = [procs["hd-a"], procs["hd-b"]]
    elif scenario == "hd-1-count10":
        count = 10
    elif scenario == "hd-1-100k":
        study = f"big-{run_id}"
    elif scenario in CLUSTER_SCENARIOS:
        servers = [procs[name] for name in CLUSTER_SCENARIOS[scenario]]
    if kind == "hyperdial" and scenario != "hd-1-100k":
        create_hyperdial_study(servers[0].target, study)
    address = servers[0].target
    if len(servers) > 1:
        address = "ipv4:" + ",".join(p.target for p in servers)
    pids = [p.pid for p in servers]
    uses_redis = scenario != "floor"

    def cpu() -> tuple[float, float]:
        if scenario in CLUSTER_SCENARIOS:
            return process_cpu(pids), cluster_cpu(cluster_url)
        return process_cpu(pids), redis_cpu(redis_url) if uses_redis else float("nan")

    spy = None
    if (
        args.profile
        and round_no == 0
        and scenario == "hd-1"
        and w == max(int(x) for x in args.workers.split(","))
    ):
        spy = start_profiler(pids[0], 1.0 + args.warmup + args.duration, args.profile)
    results, (server_s, redis_s) = measure(
        workers,
        kind,
        address,
        study,
        w,
        count=count,
        warmup=args.warmup,
        duration=args.duration,
        cpu=cpu,
    )
    if spy is not None:
        _, err = spy.communicate(timeout=120)
        if spy.returncode:
            out(f"# py-spy failed: {err.strip()[-300:]}")
        else:
            summarize_profile(args.profile, out)
    row = summarize(scenario, w, args.duration, results)
    pairs = row.pairs_per_s * args.duration
    if pairs:
        row.server_us = 1e6 * server_s / pairs
        row.redis_us = 1e6 * redis_s / pairs
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", default="1,4,16", help="client process counts")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--big", type=int, default=100_000, help="trials of the big study")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the scenarios of each W this many times, interleaved; report each row's "
        "median round (by pairs/s) and every round's ratios",
    )
    parser.add_argument("--redis", default="", help="a running Redis (default: start one)")
    parser.add_argument(
        "--redis-cluster",
        default="",
        metavar="URL",
        help="a running Redis Cluster, redis+cluster://HOST:PORT, for the hd-cluster scenarios "
        "(default: start one of 3 masters)",
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="FILE",
        help="py-spy the replica during hd-1 at the largest W; raw stacks to FILE",
    )
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-optuna", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        asyncio.run(_serve_echo())
        return 0
    if args.serve_optuna:
        _serve_optuna(args.serve_optuna)
        return 0

    ws = [int(w) for w in args.workers.split(",")]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    out = print
    rows: list[Row] = []
    stopped: list[Proc] = []
    workers = Workers(max(ws))
    try:
        on_cluster = [s for s in scenarios if s in CLUSTER_SCENARIOS]
        with (
            redis_server(args.redis or None) as redis_url,
            redis_cluster(args.redis_cluster or None, bool(on_cluster)) as cluster_url,
        ):
            procs: dict[str, Proc] = {}
            if "floor" in scenarios:
                procs["echo"] = start_echo()
            if any(s.startswith("hd-") and s not in CLUSTER_SCENARIOS for s in scenarios):
                procs["hd-a"] = start_hyperdial(redis_url)
            for name in sorted({n for s in on_cluster for n in CLUSTER_SCENARIOS[s]}):
                procs[name] = start_hyperdial(cluster_url)
            if "hd-2" in scenarios:
                procs["hd-b"] = start_hyperdial(redis_url)
            if "optuna" in scenarios:
                procs["optuna"] = start_optuna(redis_url)
            stopped += procs.values()
            out(
                f"# machine: {os.cpu_count()} cores; servers: "
                + ", ".join(f"{k} pid {p.pid}" for k, p in procs.items())
            )
            run_id = f"{os.getpid()}-{int(time.time())}"
            if "hd-1-100k" in scenarios:
                big_study = f"big-{run_id}"
                create_hyperdial_study(procs["hd-a"].target, big_study)
                took = fill(workers, max(ws), procs["hd-a"].target, big_study, args.big)
                out(f"# filled {big_study}: {args.big:,} trials asked and told in {took:.0f} s")
            for w in ws:
                # Rounds interleave the scenarios, so that a drift of the machine's speed
                # during the run reaches every scenario alike.
                by_round: list[list[Row]] = []
                for r in range(args.rounds):
                    round_rows = []
                    for scenario in scenarios:
                        row = run_scenario(
                            scenario,
                            w,
                            procs,
                            redis_url,
                            run_id,
                            workers,
                            args,
                            out,
                            r,
                            cluster_url,
                        )
                        round_rows.append(row)
                        out(
                            f"# {scenario:>13} W={w:<2} {row.pairs_per_s:8,.0f} pairs/s  "
                            f"p50 {row.p50_ms:6.1f} ms  p99 {row.p99_ms:6.1f} ms"
                        )
                    by_round.append(round_rows)
                    if args.rounds > 1:
                        print_ratios(round_rows, lambda line, r=r: out(f"# round {r + 1}: {line}"))
                for i in range(len(scenarios)):
                    ranked = sorted((rr[i] for rr in by_round), key=lambda row: row.pairs_per_s)
                    rows.append(ranked[len(ranked) // 2])
            for p in stopped:
                p.stop()
            stopped.clear()
    finally:
        for p in stopped:
            p.stop()
        workers.close()
    out("")
    print_table(rows, out)
    out("")
    print_ratios(rows, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
