"""Workers for the fault tests: threads that ask, heartbeat and tell through several replicas,
with request ids, and that move to another replica when theirs fails."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import error_reason
from tests.server_harness import ServerProcess

T = TypeVar("T")

#: Seconds a worker gives one call (across replicas and retries) before the test fails.
CALL_PATIENCE = 120.0
#: Deadline of one attempt of a call.
CALL_TIMEOUT = 20.0


class Stop(Exception):
    """The fleet was told to stop."""


@dataclass
class Log:
    """What the workers saw, shared by all of them (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    handed: list[trial_pb2.Trial] = field(default_factory=list)
    told: dict[str, dict[str, float]] = field(default_factory=dict)  # acknowledged tells
    abandoned: list[str] = field(default_factory=list)  # trials left by crashed workers
    lost_leases: list[str] = field(default_factory=list)  # heartbeats that found it expired
    retried: Counter[str] = field(default_factory=Counter)  # "CODE/REASON" of retried errors
    unexpected: list[str] = field(default_factory=list)
    finished: int = 0


class Fleet:
    """``workers`` threads on the replicas at ``targets``, round-robin.

    Args:
        targets: Addresses of the replicas.
        study: Id of the study to work on.
        workers: Number of worker threads.
        heartbeats: Heartbeats a worker sends while it "trains" one trial.
        pause: Seconds between two heartbeats (the training time).
        crash: Indices of workers that crash once ``crash_now`` is set: they drop the trial
            they hold without a result and carry on under a new client id, like a worker
            restarted on another host.
    """

    def __init__(
        self,
        targets: Sequence[str],
        study: str,
        *,
        workers: int = 16,
        heartbeats: int = 3,
        pause: float = 0.02,
        crash: Sequence[int] = (),
    ) -> None:
        self.study = study
        self.channels = [grpc.insecure_channel(t) for t in targets]
        self.stubs = [tuning_service_pb2_grpc.TuningServiceStub(c) for c in self.channels]
        self.log = Log()
        self.crash_now = threading.Event()
        self.stop = threading.Event()
        self._heartbeats = heartbeats
        self._pause = pause
        self._crash = set(crash)
        self._threads = [threading.Thread(target=self._work, args=(i,)) for i in range(workers)]

    def start(self) -> Fleet:
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout: float = 240.0) -> None:
        """Waits for every worker to finish; told to stop (and failing) past ``timeout``."""
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        alive = any(t.is_alive() for t in self._threads)
        self.stop.set()
        for t in self._threads:
            t.join()
        for c in self.channels:
            c.close()
        assert not alive, "workers did not finish"

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if any(t.is_alive() for t in self._threads):
            self.stop.set()
            for t in self._threads:
                t.join()
        for c in self.channels:
            c.close()

    def wait_for(self, what: Callable[[Log], bool], timeout: float = 120.0) -> None:
        """Waits until ``what(log)`` holds (an event count, never a duration)."""
        end = time.monotonic() + timeout
        while not what(self.log):
            assert time.monotonic() < end, "the awaited event did not happen"
            assert not self.log.unexpected, self.log.unexpected[:3]
            time.sleep(0.01)

    # --- one worker ---------------------------------------------------------------------

    def _call(self, i: int, replica: list[int], fn: Callable[[Any], T]) -> T:
        """``fn(stub)`` on the worker's replica; on UNAVAILABLE, again on the next replica."""
        end = time.monotonic() + CALL_PATIENCE
        for attempt in itertools.count():
            if self.stop.is_set():
                raise Stop
            try:
                return fn(self.stubs[replica[0]])
            except grpc.RpcError as e:
                code, reason, _ = error_reason(e)
                if code is not grpc.StatusCode.UNAVAILABLE or time.monotonic() > end:
                    raise
                with self.log.lock:
                    self.log.retried[f"{code.name}/{reason or 'transport'}"] += 1
                replica[0] = (replica[0] + 1) % len(self.stubs)
                time.sleep(min(0.02 * 2 ** min(attempt, 4), 0.3))
        raise AssertionError("unreachable")

    def _work(self, i: int) -> None:
        replica = [i % len(self.stubs)]
        client_id = f"w{i}"
        parent = f"studies/{self.study}"
        try:
            while True:
                request_id = uuid.uuid4().hex
                ask = ts.SuggestTrialsRequest(
                    parent=parent, count=1, client_id=client_id, request_id=request_id
                )
                try:
                    (trial,) = self._call(
                        i, replica, lambda s, r=ask: s.SuggestTrials(r, timeout=CALL_TIMEOUT).trials
                    )
                except grpc.RpcError as e:
                    code, reason, _ = error_reason(e)
                    if (code, reason) != (grpc.StatusCode.OUT_OF_RANGE, "STUDY_COMPLETE"):
                        raise
                    if _pending(e) == 0:
                        return
                    time.sleep(0.05)  # other workers' trials may still come back
                    continue
                with self.log.lock:
                    self.log.handed.append(trial)
                outcome = self._train(i, replica, trial)
                if outcome == "crashed":
                    client_id = f"w{i}-restarted"  # a new process: it holds nothing
                if outcome != "trained":
                    continue
                loss = float(trial.number % 97) / 7.0
                tell = ts.CompleteTrialRequest(
                    name=trial.name,
                    final_measurement=trial_pb2.Measurement(values={"loss": loss}),
                    request_id=uuid.uuid4().hex,
                )
                done = self._call(
                    i, replica, lambda s, r=tell: s.CompleteTrial(r, timeout=CALL_TIMEOUT).trial
                )
                assert done.state == trial_pb2.TRIAL_STATE_COMPLETED, done
                with self.log.lock:
                    self.log.told[trial.name] = {"loss": loss}
        except Stop:
            return
        except BaseException as e:  # surfaced by the test
            with self.log.lock:
                self.log.unexpected.append(f"worker {i}: {type(e).__name__}: {e}")
        finally:
            with self.log.lock:
                self.log.finished += 1

    def _train(self, i: int, replica: list[int], trial: trial_pb2.Trial) -> str:
        """Heartbeats while "training": ``trained``, or ``crashed`` (the worker drops the trial
        and restarts) or ``lost`` (a heartbeat found the lease expired)."""
        beat = ts.HeartbeatTrialRequest(name=trial.name)
        for _ in range(self._heartbeats):
            time.sleep(self._pause)
            if i in self._crash and self.crash_now.is_set():
                self._crash.discard(i)
                with self.log.lock:
                    self.log.abandoned.append(trial.name)
                return "crashed"
            try:
                self._call(i, replica, lambda s: s.HeartbeatTrial(beat, timeout=CALL_TIMEOUT))
            except grpc.RpcError as e:
                code, reason, _ = error_reason(e)
                if (code, reason) != (grpc.StatusCode.FAILED_PRECONDITION, "TRIAL_NOT_RUNNING"):
                    raise
                with self.log.lock:
                    self.log.lost_leases.append(trial.name)
                return "lost"  # someone else gets the point; a result now would be a twin's
        return "trained"


def _pending(error: grpc.RpcError) -> int:
    """``pending`` of a STUDY_COMPLETE error's ErrorInfo."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return int(info.metadata["pending"])
    raise AssertionError("STUDY_COMPLETE without ErrorInfo")


@contextlib.contextmanager
def replicas(
    count: int, redis_url: str, extra: Sequence[str] = ()
) -> Iterator[list[ServerProcess]]:
    """``count`` server processes on ``redis_url``; whatever is still running at the end is
    killed (each replica's whole process group: its sampler workers too), and every process's
    pipes and log are closed (:meth:`ServerProcess.close`)."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(ServerProcess(redis_url, extra=extra))
        yield servers
    finally:
        for server in servers:
            server.close()


def server_log(server: ServerProcess) -> str:
    """What a server process logged so far."""
    return server.read_log()


def all_trials(stub: Any, study: str) -> list[trial_pb2.Trial]:
    """Every trial of a study, paging through ``ListTrials``."""
    out: list[trial_pb2.Trial] = []
    token = ""
    while True:
        page = stub.ListTrials(
            ts.ListTrialsRequest(parent=f"studies/{study}", page_size=1000, page_token=token)
        )
        out += page.trials
        token = page.next_page_token
        if not token:
            return out


def params_of(trial: trial_pb2.Trial) -> tuple[tuple[str, object], ...]:
    """A trial's parameters as a hashable, sorted tuple."""
    out = []
    for name, v in trial.parameters.items():
        kind = v.WhichOneof("kind")
        assert kind is not None
        out.append((name, getattr(v, kind)))
    return tuple(sorted(out))
