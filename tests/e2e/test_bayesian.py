"""BAYESIAN end to end over gRPC: mixed and conditional spaces, parallel workers on two
replicas sharing Redis (with and without a Hyperband policy stopping trials), a replica that
keeps answering during a heavy ask, and quality."""

from __future__ import annotations

import math
import statistics
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.samplers._bayes import MIN_GAP_IN_FLIGHT
from tests.e2e.protocol import (
    ask,
    cat_param,
    create,
    disc_param,
    error_reason,
    float_param,
    int_param,
    measurement,
    pvalue,
    py_params,
    report,
    spec,
    tell,
    when,
)
from tests.server_harness import ServerProcess


def _sid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _mixed_spec(**kw: Any) -> study_pb2.StudySpec:
    return spec(
        float_param("lr", 1e-5, 1.0, log=True),
        int_param("layers", 1, 8),
        cat_param("opt", ["adam", "sgd", "rmsprop"]),
        float_param("momentum", 0.0, 0.99, condition=when("opt", "sgd")),
        disc_param("beta", [0.9, 0.99, 0.999], condition=when("opt", "adam", "rmsprop")),
        int_param("warmup", 1, 1000, log=True, condition=when("layers", 6, 7, 8)),
        **kw,
    )


def _mixed_loss(p: dict[str, float | int | str]) -> float:
    best_lr = {"adam": 3e-3, "sgd": 5e-2, "rmsprop": 1e-3}[str(p["opt"])]
    loss = 0.08 * (math.log10(float(p["lr"])) - math.log10(best_lr)) ** 2
    loss += 0.01 * (int(p["layers"]) - 4) ** 2
    if "momentum" in p:
        loss += (float(p["momentum"]) - 0.9) ** 2
    if "beta" in p:
        loss += 0.1 * abs(float(p["beta"]) - 0.99)
    if "warmup" in p:
        loss += 0.01 * math.log10(int(p["warmup"]))
    return loss


def _check_member(p: dict[str, float | int | str]) -> None:
    """Types, bounds and activity of a point of ``_mixed_spec``."""
    assert isinstance(p["lr"], float) and 1e-5 <= p["lr"] <= 1.0
    assert isinstance(p["layers"], int) and 1 <= p["layers"] <= 8
    assert p["opt"] in ("adam", "sgd", "rmsprop")
    assert ("momentum" in p) == (p["opt"] == "sgd")
    assert ("beta" in p) == (p["opt"] in ("adam", "rmsprop"))
    assert ("warmup" in p) == (p["layers"] >= 6)
    if "beta" in p:
        assert p["beta"] in (0.9, 0.99, 0.999)
    if "warmup" in p:
        assert isinstance(p["warmup"], int) and 1 <= p["warmup"] <= 1000


def test_bayesian_is_the_default_and_initial_trials_round_trip(stub: Any) -> None:
    sid = _sid("bo-default")
    study = create(stub, sid, _mixed_spec(initial_trials=7))
    assert study.spec.algorithm == study_pb2.ALGORITHM_BAYESIAN
    assert study.spec.initial_trials == 7
    got = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study
    assert got.spec.initial_trials == 7
    # Unset: the default the sampler uses, 2 per parameter within [5, 10] (6 parameters).
    assert create(stub, _sid("bo-zero"), _mixed_spec()).spec.initial_trials == 10
    for bad in (-1, 10_001):
        with pytest.raises(grpc.RpcError) as e:
            create(stub, _sid("bo-bad"), _mixed_spec(initial_trials=bad))
        code, reason, message = error_reason(e.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert reason == "INVALID_ARGUMENT"
        assert "initial_trials" in message


def test_a_wide_study_starts_at_the_centre_of_its_space(stub: Any) -> None:
    # Ten parameters or more: the first suggestion is the centre, the next ones quasi-random.
    params = [float_param(f"x{i}", -5.0, 10.0) for i in range(8)]
    wide = _mixed_spec(initial_trials=4)
    wide.parameters.extend(params)
    sid = _sid("bo-wide")
    create(stub, sid, wide)
    first, second = ask(stub, sid, count=2)
    p = py_params(first)
    assert all(p[f"x{i}"] == 2.5 for i in range(8))
    assert p["lr"] == pytest.approx(10**-2.5)
    assert p["layers"] in (4, 5)
    assert p["opt"] == "adam"  # a categorical parameter's first value
    assert p["beta"] == 0.99  # the middle of a discrete one (active under "adam")
    assert "momentum" not in p and "warmup" not in p
    assert any(py_params(second)[f"x{i}"] != 2.5 for i in range(8))
    # Six parameters: the design is the quasi-random sequence from its first point.
    narrow = _sid("bo-narrow")
    create(stub, narrow, _mixed_spec(initial_trials=4, seed=11))
    quasi = _sid("bo-quasi")
    quasi_spec = _mixed_spec(initial_trials=4, seed=11, algorithm=study_pb2.ALGORITHM_QUASI_RANDOM)
    create(stub, quasi, quasi_spec)
    assert py_params(ask(stub, narrow)[0]) == py_params(ask(stub, quasi)[0])


def test_mixed_conditional_space_with_failures_end_to_end(stub: Any) -> None:
    sid = _sid("bo-mixed")
    create(stub, sid, _mixed_spec(algorithm=study_pb2.ALGORITHM_BAYESIAN, initial_trials=5))
    # A finished trial imported from elsewhere feeds the model like any other.
    stub.CreateTrial(
        ts.CreateTrialRequest(
            parent=f"studies/{sid}",
            parameters={
                "lr": pvalue(0.01),
                "layers": pvalue(3),
                "opt": pvalue("adam"),
                "beta": pvalue(0.99),
            },
            final_measurement=measurement(loss=0.03),
        )
    )
    best = math.inf
    for i in range(18):
        (trial,) = ask(stub, sid)
        p = py_params(trial)
        _check_member(p)
        if i % 6 == 5:
            # Failed trials must not break the model.
            stub.CompleteTrial(
                ts.CompleteTrialRequest(name=trial.name, failure=ts.TrialFailure(reason="diverged"))
            )
            continue
        value = _mixed_loss(p)
        best = min(best, value)
        tell(stub, trial.name, loss=value)
    # A batch of the model: distinct members of the space.
    batch = ask(stub, sid, count=4)
    points = [py_params(t) for t in batch]
    for p in points:
        _check_member(p)
    assert len({tuple(sorted(p.items())) for p in points}) == 4
    assert best < 0.2  # random points average about 0.6


def _unit(p: dict[str, float | int | str]) -> tuple[float, float]:
    return (float(p["x1"]) + 5.0) / 15.0, float(p["x2"]) / 15.0


def _branin(p: dict[str, float | int | str]) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5.0 / math.pi, 1.0 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1 - t) * math.cos(x1) + 10.0


def _branin_spec(algorithm: int, seed: int, **kw: Any) -> study_pb2.StudySpec:
    return spec(
        float_param("x1", -5.0, 10.0),
        float_param("x2", 0.0, 15.0),
        algorithm=algorithm,
        seed=seed,
        **kw,
    )


@pytest.fixture(scope="module")
def replicas(redis_url: str) -> Iterator[list[str]]:
    servers = [ServerProcess(redis_url) for _ in range(2)]
    yield [s.target for s in servers]
    for s in servers:
        s.terminate()


def _eight_concurrent_asks(stubs: list[Any], sid: str) -> list[dict[str, float | int | str]]:
    """The points of eight asks released at once, four through each replica."""
    barrier = threading.Barrier(8)
    results: list[dict[str, float | int | str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        try:
            barrier.wait(timeout=30)
            (trial,) = ask(stubs[k % 2], sid, client_id=f"w{k}")
            with lock:
                results.append(py_params(trial))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # no margin of its own: pytest-timeout bounds a hang
    assert not errors, errors
    assert len(results) == 8
    return results


def _assert_diverse(points: list[dict[str, float | int | str]]) -> None:
    units = [_unit(p) for p in points]
    dists = [math.dist(a, b) for i, a in enumerate(units) for b in units[:i]]
    # Repeated identical suggestions are at distance 0 from each other. What the sampler
    # promises points in flight is MIN_GAP_IN_FLIGHT apart; which asks see which others' trials
    # depends on how the eight interleave, and two may land 0.009 apart near one optimum.
    assert min(dists) > MIN_GAP_IN_FLIGHT, sorted(dists)[:4]
    # And spread as a whole.
    assert statistics.median(dists) > 0.05


@pytest.mark.slow
def test_eight_concurrent_asks_on_two_replicas_get_diverse_points(replicas: list[str]) -> None:
    channels = [grpc.insecure_channel(t) for t in replicas]
    stubs = [tuning_service_pb2_grpc.TuningServiceStub(c) for c in channels]
    try:
        sid = _sid("bo-parallel")
        create(stubs[0], sid, _branin_spec(study_pb2.ALGORITHM_BAYESIAN, 5, initial_trials=6))
        for i in range(12):  # a history: 6 Sobol points, then 6 from the model
            (trial,) = ask(stubs[i % 2], sid)
            tell(stubs[i % 2], trial.name, loss=_branin(py_params(trial)))
        _assert_diverse(_eight_concurrent_asks(stubs, sid))
    finally:
        for c in channels:
            c.close()


@pytest.mark.slow
def test_concurrent_asks_under_hyperband_with_stopped_trials_get_diverse_points(
    replicas: list[str],
) -> None:
    channels = [grpc.insecure_channel(t) for t in replicas]
    stubs = [tuning_service_pb2_grpc.TuningServiceStub(c) for c in channels]
    try:
        sid = _sid("bo-hyperband")
        # Rungs at steps 1 and 4 (bracket 0), 4 (bracket 1); each keeps the best quarter.
        rule = study_pb2.HyperbandRule(min_resource=1, max_resource=16, reduction_factor=4)
        policy = study_pb2.EarlyStoppingPolicy(hyperband=rule)
        branin = _branin_spec(study_pb2.ALGORITHM_BAYESIAN, 5, initial_trials=6)
        branin.early_stopping.CopyFrom(policy)
        create(stubs[0], sid, branin)
        stopped: list[dict[str, float | int | str]] = []
        states: list[int] = []
        for i in range(30):
            stub = stubs[i % 2]
            (trial,) = ask(stub, sid)
            p = py_params(trial)
            if i == 20:
                # Stopped by its worker before any report: no values, like a failed trial.
                stop = ts.CompleteTrialRequest(name=trial.name, stop=ts.TrialStop(reason="oom"))
                states.append(stub.CompleteTrial(stop).trial.state)
                stopped.append(p)
                continue
            for step in (1, 4):  # a learning curve that falls towards the final loss
                answer = report(stub, trial.name, step, loss=_branin(p) + 30.0 / step)
                if answer.decision.should_stop:
                    break
            if answer.trial.state == trial_pb2.TRIAL_STATE_STOPPED:
                stopped.append(p)
            else:
                tell(stub, trial.name, loss=_branin(p))
            states.append(answer.trial.state)
        # Without the stopped trials in its history, an ask would count the sampler indices
        # they hold as asks in flight: with 10 of the last 16 stopped, 8 racing asks would
        # overflow the lookahead (16) and some get the same point.
        last = states[-16:]
        assert last.count(trial_pb2.TRIAL_STATE_STOPPED) >= 10, states
        points = _eight_concurrent_asks(stubs, sid)
        # This history holds a trial within 0.02 of Branin's minimum loss, and the batch exploits
        # it: some points fall within 0.01 of each other (so they do with the stopped trials
        # left out of the model). Distinct means the sampler's own gap to a point in flight.
        _assert_diverse(points)
        # None sent back to a point that was stopped.
        units = [_unit(p) for p in points]
        assert min(math.dist(a, _unit(s)) for a in units for s in stopped) > 1e-6
    finally:
        for c in channels:
            c.close()


@pytest.mark.slow
def test_a_heavy_bayesian_ask_does_not_stall_the_replica(redis_server_target: str) -> None:
    with grpc.insecure_channel(redis_server_target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        heavy = _sid("bo-heavy")
        create(stub, heavy, _mixed_spec(algorithm=study_pb2.ALGORITHM_BAYESIAN, seed=1))
        light = _sid("bo-light")
        create(stub, light, _mixed_spec(algorithm=study_pb2.ALGORITHM_RANDOM, seed=1))
        # Several hundred finished trials, imported through the light study's points.
        for trial in ask(stub, light, count=100) + ask(stub, light, count=100):
            stub.CreateTrial(
                ts.CreateTrialRequest(
                    parent=f"studies/{heavy}",
                    parameters=dict(trial.parameters),
                    final_measurement=measurement(loss=_mixed_loss(py_params(trial))),
                )
            )
        events: list[str] = []
        lock = threading.Lock()
        done = threading.Event()

        def heavy_ask() -> None:
            # 40 points: one fit and 40 acquisition searches on a model of 200 trials.
            trials = ask(stub, heavy, count=40)
            with lock:
                events.append(f"heavy:{len(trials)}")
            done.set()

        worker = threading.Thread(target=heavy_ask)
        with lock:
            events.append("heavy-start")
        worker.start()
        # Light calls on the same replica while the heavy one runs: each must be answered
        # before the heavy ask returns.
        light_calls = 0
        while not done.is_set() and light_calls < 200:
            (trial,) = ask(stub, light)
            tell(stub, trial.name, loss=_mixed_loss(py_params(trial)))
            with lock:
                events.append("light")
            light_calls += 1
        worker.join()
        assert "heavy:40" in events
        answered_during = events.index("heavy:40") - 1
        assert answered_during >= 10, events[:20]


def _best_of(stub: Any, sid: str, algorithm: int, seed: int, n: int) -> float:
    create(stub, sid, _branin_spec(algorithm, seed))
    best = math.inf
    for _ in range(n):
        (trial,) = ask(stub, sid)
        value = _branin(py_params(trial))
        best = min(best, value)
        tell(stub, trial.name, loss=value)
    return best - 0.397887


def test_bayesian_beats_random_on_branin(server_target: str) -> None:
    with grpc.insecure_channel(server_target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        bayes = [
            _best_of(stub, _sid("bo-branin"), study_pb2.ALGORITHM_BAYESIAN, s, 25) for s in range(3)
        ]
        rand = [
            _best_of(stub, _sid("rs-branin"), study_pb2.ALGORITHM_RANDOM, s, 25) for s in range(3)
        ]
    # Random search's median regret after 25 trials is around 1; the model's is far below.
    assert statistics.median(bayes) * 10 < statistics.median(rand), (bayes, rand)
    assert max(bayes) < statistics.median(rand)
