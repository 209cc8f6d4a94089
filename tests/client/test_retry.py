"""Retries: the policy's arithmetic, request ids, and real faults (a replica killed and started
again on its port, a server that stops answering, an answer lost on the way back)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

import hyperdial as hd
from hyperdial._channel import channel_options
from hyperdial._retry import RETRYABLE_REASONS, Attempts
from tests.client._support import CuttingProxy, RetryLog, new_id, server_on_port
from tests.server_harness import ServerProcess

SPACE = [hd.Float("x", 0.0, 1.0), hd.Int("n", 1, 9)]
FAST = hd.RetryPolicy(deadline=120, initial_backoff=0.01, max_backoff=0.2)

# -- the policy --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_policy_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="deadline, max_attempts"):
        hd.RetryPolicy(deadline=None)
    with pytest.raises(ValueError, match="deadline"):
        hd.RetryPolicy(deadline=0)
    with pytest.raises(ValueError, match="max_attempts"):
        hd.RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        hd.RetryPolicy(initial_backoff=2, max_backoff=1)
    with pytest.raises(ValueError, match="multiplier"):
        hd.RetryPolicy(multiplier=0.5)
    policy = hd.RetryPolicy(deadline=None, max_attempts=3, codes=[grpc.StatusCode.UNAVAILABLE])  # type: ignore[arg-type]
    assert policy.codes == frozenset({grpc.StatusCode.UNAVAILABLE})
    assert policy.reasons == RETRYABLE_REASONS
    assert {"TOO_MANY_REQUESTS", "STORE_OUT_OF_MEMORY", "REQUEST_IN_PROGRESS"} <= policy.reasons


RE = grpc.StatusCode.RESOURCE_EXHAUSTED
FP = grpc.StatusCode.FAILED_PRECONDITION
UN = grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("code", "reason", "retried"),
    [
        (RE, "TOO_MANY_REQUESTS", True),
        (RE, "STORE_OUT_OF_MEMORY", True),
        (UN, "STORE_UNAVAILABLE", True),
        (UN, "STORE_READ_ONLY", True),
        (UN, "STORE_LOADING", True),
        (UN, "STORE_BUSY", True),
        (UN, "STORE_WRITES_REFUSED", True),
        (UN, "REPLICA_OVERLOADED", True),
        (UN, "ASK_CONTENDED", True),
        (UN, "SAMPLER_UNAVAILABLE", True),
        (UN, "REQUEST_IN_PROGRESS", True),
        (UN, "", True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", True),
        (FP, "CLAIM_EXPIRED", True),  # servers before ASK_CONTENDED
        (grpc.StatusCode.DATA_LOSS, "STUDY_DATA_LOSS", False),
        (grpc.StatusCode.DATA_LOSS, "STORE_DATA_LOSS", False),
        (FP, "STORE_REJECTED", False),
        (FP, "TRIAL_NOT_RUNNING", False),
        (RE, "TOO_MANY_STUDIES", False),
        (RE, "NAMESPACE_SPEC_BUDGET", False),
        (RE, "", False),  # a request over 4 MiB
        (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", False),
        (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_MISMATCH", False),
        (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND", False),
        (grpc.StatusCode.OUT_OF_RANGE, "STUDY_COMPLETE", False),
        (grpc.StatusCode.PERMISSION_DENIED, "ROLE_INSUFFICIENT", False),
        (grpc.StatusCode.INTERNAL, "", False),
    ],
)
def test_the_default_policy_retries_what_a_retry_can_fix(
    code: grpc.StatusCode, reason: str, retried: bool
) -> None:
    attempts = Attempts("ListTrials", hd.RetryPolicy(), 15.0, rng=lambda: 0.5)
    wait = attempts.retry_after(code, "x", reason)
    assert (wait is not None) is retried
    # A policy without a reason retries it only by its code.
    narrow = hd.RetryPolicy(reasons=RETRYABLE_REASONS - {"STORE_OUT_OF_MEMORY"})
    if reason == "STORE_OUT_OF_MEMORY":
        assert Attempts("CompleteTrial", narrow, None).retry_after(code, "x", reason) is None


def test_a_retry_info_delay_is_a_floor_under_the_jittered_backoff() -> None:
    clock = FakeClock()
    policy = hd.RetryPolicy(deadline=10.0, initial_backoff=0.2, max_backoff=1.0)
    draws = iter([0.0, 0.5, 1.0 - 1e-9, 0.5])
    attempts = Attempts("ListTrials", policy, 15.0, clock=clock, rng=lambda: next(draws))
    shed = hd.ResourceExhaustedError("shed", code=RE, reason="TOO_MANY_REQUESTS", retry_delay=1.5)
    # Never less than the server asked for, and still jittered above it.
    assert attempts.failed(shed) == 1.5  # draw 0: the delay itself
    assert attempts.failed(shed) == pytest.approx(1.5 + 0.5 * 0.4)
    assert attempts.failed(shed) == pytest.approx(1.5 + 0.8)
    # The overall deadline still bounds it: a delay that would end past it gives up now.
    clock.now += 9.0
    assert attempts.failed(shed) is None
    # A full store has no RetryInfo: the ordinary backoff.
    full = hd.ResourceExhaustedError("full", code=RE, reason="STORE_OUT_OF_MEMORY")
    fresh = Attempts("CompleteTrial", policy, None, rng=lambda: 1.0)
    assert fresh.failed(full) == pytest.approx(0.2)
    # A delay on an error that is not retried changes nothing.
    lost = hd.DataLossError("lost", code=grpc.StatusCode.DATA_LOSS, retry_delay=1.0)
    assert fresh.failed(lost) is None


def test_any_unavailable_and_a_request_in_progress_are_retried() -> None:
    policy = hd.RetryPolicy(initial_backoff=0.1, max_backoff=0.1)
    attempts = Attempts("SuggestTrials", policy, 20.0, rng=lambda: 1.0)
    retried = [
        hd.UnavailableError("busy", code=grpc.StatusCode.UNAVAILABLE, reason="ASK_CONTENDED"),
        hd.UnavailableError("x", code=grpc.StatusCode.UNAVAILABLE, reason="REQUEST_IN_PROGRESS"),
        # Another call with this request_id still runs: whatever code a server gives it.
        hd.FailedPreconditionError(
            "x", code=grpc.StatusCode.FAILED_PRECONDITION, reason="REQUEST_IN_PROGRESS"
        ),
        hd.DeadlineExceededError("slow", code=grpc.StatusCode.DEADLINE_EXCEEDED),
    ]
    for error in retried:
        assert attempts.failed(error) == 0.1, error
    not_running = hd.FailedPreconditionError(
        "x", code=grpc.StatusCode.FAILED_PRECONDITION, reason="TRIAL_NOT_RUNNING"
    )
    assert attempts.failed(not_running) is None
    assert (
        Attempts("GetStudy", None, None).retry_after(
            grpc.StatusCode.FAILED_PRECONDITION, "", "REQUEST_IN_PROGRESS"
        )
        is None
    )


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = hd.RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2)
    assert [policy.backoff_bound(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_waits_are_jittered_within_the_bound() -> None:
    clock = FakeClock()
    draws = iter([0.0, 0.5, 1.0 - 1e-9])
    attempts = Attempts(
        "GetStudy",
        hd.RetryPolicy(initial_backoff=1.0, max_backoff=8.0),
        None,
        clock=clock,
        rng=lambda: next(draws),
    )
    waits = [attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "down") for _ in range(3)]
    assert waits == [0.0, 1.0, pytest.approx(4.0)]
    assert attempts.count == 4


def test_attempts_stop_at_max_attempts_and_on_other_codes() -> None:
    policy = hd.RetryPolicy(deadline=None, max_attempts=3)
    attempts = Attempts("CompleteTrial", policy, 5.0, rng=lambda: 0.0)
    assert attempts.timeout() == 5.0  # no overall deadline: the per-attempt one
    assert attempts.retry_after(grpc.StatusCode.DEADLINE_EXCEEDED, "slow") == 0.0
    assert attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "down") == 0.0
    assert attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "down") is None  # 3 made
    assert attempts.count == 3

    for code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
        assert Attempts("GetStudy", policy, None).retry_after(code, "no") is None
    assert Attempts("GetStudy", None, None).retry_after(grpc.StatusCode.UNAVAILABLE, "") is None


def test_attempts_respect_the_overall_deadline() -> None:
    clock = FakeClock()
    policy = hd.RetryPolicy(deadline=10.0, initial_backoff=4.0, max_backoff=4.0)
    attempts = Attempts("GetStudy", policy, 3.0, clock=clock, rng=lambda: 1.0)
    assert attempts.timeout() == 3.0
    clock.now += 8.5
    assert attempts.timeout() == pytest.approx(1.5)  # cut to what is left
    # A 4 s wait would end past the deadline: give up now rather than sleep in vain.
    assert attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "down") is None
    clock.now += 5
    assert attempts.timeout() == 0.0
    # An explicit deadline replaces the policy's.
    short = Attempts("HeartbeatTrial", policy, None, deadline=2.0, clock=clock)
    assert short.timeout() == 2.0


def test_unavailable_beats_a_deadline_cut_short_by_the_overall_one() -> None:
    clock = FakeClock()
    policy = hd.RetryPolicy(deadline=10.0, initial_backoff=0.0, max_backoff=0.0)
    refused = hd.UnavailableError("connection refused", code=grpc.StatusCode.UNAVAILABLE)
    late = hd.DeadlineExceededError("deadline", code=grpc.StatusCode.DEADLINE_EXCEEDED)

    attempts = Attempts("GetStudy", policy, 30.0, clock=clock)
    attempts.timeout()
    assert attempts.failed(refused) == 0.0
    attempts.timeout()  # 10 s left < 30 s: this attempt ends with the overall deadline
    clock.now += 10
    assert attempts.failed(late) is None
    assert attempts.last_error(late) is refused

    # A server that answered nothing within a whole attempt's own deadline: that is the news.
    hung = Attempts("GetStudy", policy, 1.0, clock=clock)
    hung.timeout()
    hung.failed(refused)
    hung.timeout()
    assert hung.last_error(late) is late


# -- request ids -------------------------------------------------------------------------------


class Recorder(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Sees every attempt the client makes (it sits under the client's retry loop)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        with self._lock:
            self.requests.append((details.method.rsplit("/", 1)[-1], request))
        return continuation(details, request)

    def of(self, method: str) -> list[Any]:
        with self._lock:
            return [r for m, r in self.requests if m == method]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def recording_client(target: str, recorder: Recorder, **kwargs: Any) -> hd.Client:
    channel = grpc.intercept_channel(
        grpc.insecure_channel(target, options=channel_options()), recorder
    )
    return hd.Client(channel=channel, **kwargs)


MUTATIONS = ("CreateStudy", "DeleteStudy", "SuggestTrials", "CompleteTrial", "CreateTrial")


def test_every_mutating_call_carries_a_fresh_uuid4_request_id(
    store_target: str, recorder: Recorder
) -> None:
    with recording_client(store_target, recorder, renew_leases=False) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random")
        a, b = study.ask(2)
        study.tell(a, 0.5)
        study.fail(b, "diverged")
        study.enqueue({"x": 0.5, "n": 2})
        study.add_trial({"x": 0.1, "n": 1}, 0.1)
        study.trials()
        study.get_trial(1)
        client.get_study(study.study_id)
        client.delete_study(study)

    ids = []
    for method, request in recorder.requests:
        if method in MUTATIONS:
            assert uuid.UUID(request.request_id).version == 4, (method, request.request_id)
            ids.append(request.request_id)
        else:
            assert not any(f.name == "request_id" for f, _ in request.ListFields())
    assert {m for m, _ in recorder.requests} >= set(MUTATIONS)
    assert len(ids) == len(set(ids)) == 7  # create, ask, tell, fail, enqueue, add, delete


# -- real faults -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_service_gives_up_after_max_attempts(retry_log: RetryLog) -> None:
    policy = hd.RetryPolicy(deadline=None, max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    with hd.Client(f"127.0.0.1:{free_port()}", retry=policy) as client:
        with pytest.raises(hd.ServiceUnreachableError) as info:
            client.get_study("anything")
    # Never reached: the error says so, with the count (tests/client/test_first_contact.py).
    assert "no connection in 3 attempts" in info.value.message
    assert len(retry_log.records) == 2
    assert all("GetStudy" in m and "UNAVAILABLE" in m for m in retry_log.messages)


class Background:
    """Runs a call in a thread; ``result()`` returns its value or raises its error."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as e:
            self._error = e

    def result(self, timeout: float = 120) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the call did not return"
        if self._error is not None:
            raise self._error
        return self._value


@pytest.fixture
def replica(redis_url: str) -> Iterator[list[ServerProcess]]:
    """Server processes on the session's Redis; the test appends the ones it starts."""
    servers: list[ServerProcess] = []
    yield servers
    for s in servers:
        if s.proc.poll() is None:
            s.terminate()
        else:  # killed: terminate() would have closed these
            if s.proc.stdout is not None:
                s.proc.stdout.close()
            s.log.close()


def test_a_tell_survives_a_replica_killed_and_restarted_on_its_port(
    redis_url: str, replica: list[ServerProcess], recorder: Recorder, retry_log: RetryLog
) -> None:
    replica.append(ServerProcess(redis_url))
    port = int(replica[0].target.rsplit(":", 1)[1])
    with recording_client(replica[0].target, recorder, retry=FAST, renew_leases=False) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random")
        (trial,) = study.ask()
        replica[0].kill()

        tell = Background(lambda: study.tell(trial, 0.25))
        retry_log.wait_for(2)  # the tell is being retried while nothing listens
        replica.append(server_on_port(redis_url, port))
        done = tell.result()

    assert done.state == "COMPLETED" and done.value == 0.25
    attempts = recorder.of("CompleteTrial")
    assert len(attempts) >= 3
    assert len({a.request_id for a in attempts}) == 1  # one id across every retry
    with hd.Client(replica[1].target) as fresh:
        assert fresh.get_study(study.study_id).get_trial(trial.number).value == 0.25


def test_deadline_exceeded_is_retried_until_the_server_answers(
    redis_url: str, replica: list[ServerProcess], retry_log: RetryLog
) -> None:
    replica.append(ServerProcess(redis_url))
    server = replica[0]
    # gRPC never retries DEADLINE_EXCEEDED itself; the client's policy does.
    with hd.Client(server.target, timeout=0.5, retry=FAST) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random")
        os.kill(server.proc.pid, signal.SIGSTOP)  # the process stops answering, sockets stay
        try:
            got = Background(lambda: client.get_study(study.study_id))
            retry_log.wait_for(1)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert got.result().name == study.name
    assert "after DEADLINE_EXCEEDED" in retry_log.messages[0]


def test_a_retried_tell_whose_answer_was_lost_does_not_fail(store_target: str) -> None:
    proxy = CuttingProxy(store_target)
    try:
        with (
            hd.Client(proxy.target, retry=FAST, renew_leases=False) as client,
            hd.Client(store_target) as direct,
        ):
            study = client.create_study(new_id(), SPACE, algorithm="random")
            (trial,) = study.ask()
            proxy.hold()  # the tell reaches the service; its answer does not come back
            tell = Background(lambda: study.tell(trial, 0.75, metadata={"try": "1"}))
            seen = direct.get_study(study.study_id)
            while seen.get_trial(trial.number).state != "COMPLETED":
                time.sleep(0.01)  # waiting for the service to apply the first attempt
            while proxy.swallowed == 0:
                time.sleep(0.01)  # and for its answer to reach the proxy (which keeps it)
            proxy.cut()  # the answer is lost: the client retries with the same request id
            done = tell.result()
            assert done.state == "COMPLETED" and done.value == 0.75
            assert proxy.swallowed > 0
            stored = seen.get_trial(trial.number)
            assert stored.value == 0.75 and stored.metadata == {"try": "1"}
    finally:
        proxy.close()
