"""Early stopping on two replicas (server processes) sharing one real Redis: concurrent reports
at one rung are decided as if they had come one at a time, in some order."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import ask, create, float_param, report, spec
from tests.server_harness import ServerProcess

#: Trials reporting at once at one rung.
K = 12


@pytest.fixture(scope="module")
def replicas(redis_url: str) -> Iterator[list[Any]]:
    """Stubs of two replicas on the session's Redis."""
    servers: list[ServerProcess] = []
    channels: list[grpc.Channel] = []
    try:
        for _ in range(2):
            servers.append(ServerProcess(redis_url))
        channels = [grpc.insecure_channel(s.target) for s in servers]
        yield [tuning_service_pb2_grpc.TuningServiceStub(c) for c in channels]
        for c in channels:
            c.close()
        assert [s.terminate() for s in servers] == [0, 0]  # a clean, graceful stop
    finally:
        for c in channels:
            c.close()
        for s in servers:
            s.close()


def _report_at_once(
    stubs: list[Any], names: list[str], step: int, values: list[float]
) -> list[trial_pb2.EarlyStoppingDecision]:
    """Each trial of ``names`` reports its value at ``step`` in a thread of its own, all
    released together, alternately on each replica; the decisions, in the order of ``names``.

    No timeout of its own: on a busy machine the calls take as long as they take, and the
    test's timeout bounds a hang."""
    barrier = threading.Barrier(len(names))
    decisions: dict[int, trial_pb2.EarlyStoppingDecision] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            decisions[i] = report(stubs[i % 2], names[i], step, loss=values[i]).decision
        except BaseException as e:  # noqa: BLE001 - raised in the test's thread below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [decisions[i] for i in range(len(names))]


def _assert_sequential(
    values: list[float],
    decisions: list[trial_pb2.EarlyStoppingDecision],
    *,
    step: int,
    rung: int,
    eta: int,
    rule: str,
) -> None:
    """The decisions are those of the reports taken one at a time, in the order their
    ``compared_trials`` (1, 2, ... K) says."""
    order = sorted(range(len(values)), key=lambda i: decisions[i].compared_trials)
    assert [decisions[i].compared_trials for i in order] == list(range(1, len(values) + 1))
    seen: list[float] = []
    for i in order:
        rank = sum(1 for v in seen if v < values[i])  # values strictly better, lower is
        seen.append(values[i])
        stop = rank >= max(1, len(seen) // eta)
        d = decisions[i]
        assert (d.should_stop, d.rule, d.step, d.rung) == (stop, rule if stop else "", step, rung)


def _states(stub: Any, names: list[str]) -> list[bool]:
    """Whether each trial is STOPPED, as the store has it."""
    out = []
    for name in names:
        trial = stub.GetTrial(ts.GetTrialRequest(name=name)).trial
        assert trial.state in (trial_pb2.TRIAL_STATE_STOPPED, trial_pb2.TRIAL_STATE_RUNNING)
        out.append(trial.state == trial_pb2.TRIAL_STATE_STOPPED)
    return out


def _study(stub: Any, policy: study_pb2.EarlyStoppingPolicy) -> str:
    sid = f"esrep-{uuid.uuid4().hex[:10]}"
    s = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM, early_stopping=policy)
    create(stub, sid, s)
    return sid


def test_concurrent_reports_at_a_successive_halving_rung(replicas: list[Any]) -> None:
    rule = study_pb2.SuccessiveHalvingRule(min_resource=2, reduction_factor=3)  # rungs 2, 6...
    sid = _study(replicas[0], study_pb2.EarlyStoppingPolicy(successive_halving=rule))
    names = [t.name for t in ask(replicas[1], sid, count=K)]
    values = [float(v) for v in random.Random(7).sample(range(100), K)]
    decisions = _report_at_once(replicas, names, 2, values)
    _assert_sequential(values, decisions, step=2, rung=0, eta=3, rule="successive_halving")
    assert _states(replicas[0], names) == [d.should_stop for d in decisions]
    # The trials that continue reach rung 1 together, a step past it.
    going = [i for i, d in enumerate(decisions) if not d.should_stop]
    assert going  # the first value of a rung always continues
    later = [values[i] / 2 for i in going][::-1]
    decisions = _report_at_once(replicas, [names[i] for i in going], 7, later)
    _assert_sequential(later, decisions, step=7, rung=1, eta=3, rule="successive_halving")


def test_concurrent_reports_at_a_hyperband_rung(replicas: list[Any]) -> None:
    rule = study_pb2.HyperbandRule(min_resource=1, max_resource=27, reduction_factor=2)
    sid = _study(replicas[1], study_pb2.EarlyStoppingPolicy(hyperband=rule))
    trials = ask(replicas[0], sid, count=100)
    names = [t.name for t in trials if t.bracket == 0][:K]
    assert len(names) == K
    values = [float(v) for v in random.Random(11).sample(range(100), K)]
    decisions = _report_at_once(replicas, names, 1, values)
    _assert_sequential(values, decisions, step=1, rung=0, eta=2, rule="hyperband")
    assert _states(replicas[1], names) == [d.should_stop for d in decisions]
