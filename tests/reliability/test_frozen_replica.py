"""A frozen replica must not freeze the fleet: one of two replica processes is stopped with
SIGSTOP (a paused VM, a silent partition: its connections stay open, nothing answers), and
workers on a Python client with default settings keep completing trials on the other one."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest

import hyperdial as hd
from tests.client._support import RetryLog
from tests.reliability.fleet import replicas
from tests.server_harness import ServerProcess

#: Seconds the replica stays stopped.
FREEZE = 20.0
#: Seconds into the freeze by which the client must have routed around the stopped replica:
#: keepalive (10 s + 5 s) at the latest, usually the 5 s ping timeout of a busy connection.
SETTLE = 15.0
WORKERS = 8


@dataclass
class Progress:
    """Completions seen by the workers (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: list[tuple[int, float]] = field(default_factory=list)  # (worker, monotonic time)
    told: dict[str, float] = field(default_factory=dict)  # acknowledged tells: name -> value
    errors: list[str] = field(default_factory=list)

    def count(self, since: float, until: float = float("inf"), worker: int | None = None) -> int:
        with self.lock:
            return sum(1 for w, t in self.done if since <= t < until and worker in (None, w))


def _work(study: hd.Study, i: int, progress: Progress, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            (trial,) = study.ask(1, client_id=f"w{i}")
            value = float(trial.params["x"])
            study.tell(trial, value)
            with progress.lock:
                progress.told[trial.name] = value
                progress.done.append((i, time.monotonic()))
    except Exception as e:  # surfaced by the test
        with progress.lock:
            progress.errors.append(f"worker {i}: {type(e).__name__}: {e}")


def _wait_for(what: str, condition: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def two_replicas(redis_url: str) -> Iterator[list[ServerProcess]]:
    """Two replica processes on one Redis; on every path each is resumed, then killed."""
    with replicas(2, redis_url) as servers:
        try:
            yield servers
        finally:
            for server in servers:
                if server.proc.poll() is None:
                    os.kill(server.proc.pid, signal.SIGCONT)  # a stopped process stays stopped
                    server.kill()


@pytest.mark.slow
def test_a_stopped_replica_does_not_stop_the_fleet(
    two_replicas: list[ServerProcess], retry_log: RetryLog
) -> None:
    frozen, live = two_replicas
    progress = Progress()
    stop = threading.Event()
    # Default settings; the plain comma-separated list is turned into an ipv4: target.
    with hd.Client(f"{frozen.target},{live.target}") as client:
        study = client.create_study(
            f"frozen-{uuid.uuid4().hex[:12]}", [hd.Float("x", 0.0, 1.0)], algorithm="random"
        )
        threads = [
            threading.Thread(target=_work, args=(study, i, progress, stop), daemon=True)
            for i in range(WORKERS)
        ]
        for t in threads:
            t.start()
        try:
            start = time.monotonic()
            _wait_for("the fleet to warm up", lambda: progress.count(start) >= 50, 60)
            before = progress.count(start) / (time.monotonic() - start)

            os.kill(frozen.proc.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            try:
                time.sleep(FREEZE)
            finally:
                os.kill(frozen.proc.pid, signal.SIGCONT)
            thawed_at = time.monotonic()
            assert not progress.errors, progress.errors[:3]

            codes = Counter(m.split(" after ")[1].split()[0] for m in retry_log.messages)
            during = progress.count(frozen_at, thawed_at) / FREEZE
            settled = progress.count(frozen_at + SETTLE, thawed_at)
            idle = [i for i in range(WORKERS) if not progress.count(frozen_at, thawed_at, i)]
            late = [
                i for i in range(WORKERS) if not progress.count(frozen_at + SETTLE, thawed_at, i)
            ]
            print(
                f"\ncompleted trials/s: {before:.1f} before, {during:.1f} during the freeze "
                f"({settled / (FREEZE - SETTLE):.1f}/s in its last {FREEZE - SETTLE:g} s); "
                f"client retries: {dict(codes)}"
            )
            # The fleet keeps working once the client has routed around the stopped replica...
            assert settled >= 10, f"only {settled} trials completed late in the freeze"
            # ...no worker waited on it for the whole freeze, and none still waits once it
            # left the rotation.
            assert not idle, f"workers {idle} completed nothing while the replica was stopped"
            assert not late, f"workers {late} completed nothing late in the freeze"

            # Work goes on after SIGCONT.
            resumed = progress.count(thawed_at)
            _wait_for("work after the thaw", lambda: progress.count(thawed_at) >= resumed + 50, 60)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=150)  # at most one call's overall deadline
        assert not any(t.is_alive() for t in threads), "a worker is stuck"
        assert not progress.errors, progress.errors[:3]

        # No acknowledged tell was lost, whichever replica (and attempt) took it.
        stored = {t.name: t for t in study.trials()}
        for name, value in progress.told.items():
            trial = stored[name]
            assert trial.state == hd.TrialState.COMPLETED, (name, trial.state)
            assert trial.value == value, (name, trial.value, value)


def _states_over(target: str, seconds: float, keepalive_ms: int) -> list[str]:
    """Connectivity states of an idle client channel pinging every ``keepalive_ms``."""
    states: list[str] = []
    with hd.Client(target, options=[("grpc.keepalive_time_ms", keepalive_ms)]) as client:

        def record(state: grpc.ChannelConnectivity) -> None:
            states.append(state.name)

        client._channel.subscribe(record, try_to_connect=True)
        list(client.list_studies())  # connected, health watch open
        time.sleep(seconds)
        client._channel.unsubscribe(record)
    return states


@pytest.mark.slow
def test_the_server_accepts_the_clients_keepalive_pings(server_target: str) -> None:
    # Three pings 6 s apart while only the health watch is open: a server that allows one
    # per 5 minutes (gRPC's default) answers the third with GOAWAY "too_many_pings", and the
    # channel drops out of READY.
    states = _states_over(server_target, 20.0, 6_000)
    assert "READY" in states, states
    assert states[states.index("READY") :] == ["READY"], states
