"""``ListOptimalTrials`` by the model (``OPTIMALITY_BASIS_MODEL``) and
``StudySpec.deterministic_objective``, over real gRPC with the generated stubs, on the memory
store and on a real Redis.

The noisy data are drawn from seeded generators and the model's fit is seeded by the study's
seed: every answer is the same on every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.core.pareto import pareto_front
from hyperdial_server.core.study import Objective, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.server import ServerConfig
from hyperdial_server.service import SamplerWorkers, TuningServicer
from hyperdial_server.store import Store
from hyperdial_server.store._codec import spec_from_json, spec_to_json
from tests.e2e.protocol import (
    ask,
    create,
    error_field,
    error_reason,
    float_param,
    maximize,
    measurement,
    minimize,
    pvalue,
    py_params,
    spec,
    tell,
)
from tests.server_harness import InProcessServer

MODEL = ts.OPTIMALITY_BASIS_MODEL
OBSERVED = ts.OPTIMALITY_BASIS_OBSERVED
ALGORITHMS = {
    "grid": study_pb2.ALGORITHM_GRID,
    "random": study_pb2.ALGORITHM_RANDOM,
    "quasi_random": study_pb2.ALGORITHM_QUASI_RANDOM,
    "bayesian": study_pb2.ALGORITHM_BAYESIAN,
}


def _sid() -> str:
    return f"rec-{uuid.uuid4().hex[:12]}"


def _add(stub: Any, sid: str, params: dict[str, float], **values: float) -> trial_pb2.Trial:
    """A completed trial imported with ``CreateTrial`` (as ``study.add_trial`` does)."""
    request = ts.CreateTrialRequest(
        parent=f"studies/{sid}",
        parameters={k: pvalue(v) for k, v in params.items()},
        final_measurement=measurement(**values),
    )
    return stub.CreateTrial(request).trial


def _optimal(stub: Any, sid: str, basis: int = MODEL) -> ts.ListOptimalTrialsResponse:
    return stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}", basis=basis))


def _bowl(x: float, y: float) -> float:
    """The noise-free loss: lowest (0) at (0.4, 0.6)."""
    return (x - 0.4) ** 2 + (y - 0.6) ** 2


#: The lucky point: truly mediocre, measured below everything else.
LUCKY = (0.7, 0.3)


def _noisy_bowl(stub: Any, sid: str) -> int:
    """Adds 40 seeded random points measured with noise of sd 0.05 and one lucky measurement
    at ``LUCKY``, 0.01 below every other; returns the lucky trial's number."""
    rng = np.random.default_rng(2)
    points = [(float(rng.random()), float(rng.random())) for _ in range(40)]
    values = [_bowl(x, y) + float(rng.normal(0.0, 0.05)) for x, y in points]
    for (x, y), v in zip(points, values, strict=True):
        _add(stub, sid, {"x": x, "y": y}, loss=v)
    return _add(stub, sid, {"x": LUCKY[0], "y": LUCKY[1]}, loss=min(values) - 0.01).number


def _xy_spec(algorithm: int, **kw: Any) -> study_pb2.StudySpec:
    return spec(
        float_param("x", 0.0, 1.0),
        float_param("y", 0.0, 1.0),
        algorithm=algorithm,
        seed=1,
        grid_resolution=5 if algorithm == study_pb2.ALGORITHM_GRID else 0,
        **kw,
    )


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_the_model_recommends_the_truly_better_point_not_the_lucky_one(
    stub: Any, algorithm: str
) -> None:
    """Whatever the study's algorithm: the observed best is the lucky measurement, the
    recommendation a point truly better by a margin, with its prediction."""
    sid = _sid()
    create(stub, sid, _xy_spec(ALGORITHMS[algorithm]))
    lucky = _noisy_bowl(stub, sid)
    (observed,) = _optimal(stub, sid, OBSERVED).trials
    assert observed.number == lucky
    assert not _optimal(stub, sid, OBSERVED).predictions
    answer = _optimal(stub, sid)
    ((best,), (prediction,)) = answer.trials, answer.predictions
    assert best.number != lucky and best.state == trial_pb2.TRIAL_STATE_COMPLETED
    point = py_params(best)
    assert _bowl(float(point["x"]), float(point["y"])) < _bowl(*LUCKY) / 2
    assert set(prediction.mean) == set(prediction.stddev) == set(prediction.noise_stddev)
    assert set(prediction.mean) == {"loss"}
    assert prediction.stddev["loss"] > 0
    assert 0.01 < prediction.noise_stddev["loss"] < 0.2  # the noise drawn has sd 0.05
    assert prediction.measurements == 1
    # The same answer again: the recommendation is a pure function of the trials.
    assert _optimal(stub, sid) == answer


def test_unspecified_basis_is_observed(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, _xy_spec(study_pb2.ALGORITHM_RANDOM))
    lucky = _noisy_bowl(stub, sid)
    unspecified = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}"))
    assert [t.number for t in unspecified.trials] == [lucky]
    assert not unspecified.predictions
    assert unspecified == _optimal(stub, sid, OBSERVED)


def test_repeated_measurements_are_one_point_and_counted(stub: Any) -> None:
    """A client measures x = 0.3 five times (``CreateTrial`` with the same parameters; two
    of them asked and told as enqueued trials) and x = 0.7 once, slightly better than the
    average of the five: the five win, listed once, by their first trial."""
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0.0, 1.0), seed=1))
    walls = {0.0: 0.6, 0.1: 0.35, 0.2: 0.2, 0.4: 0.2, 0.5: 0.3, 0.6: 0.2, 0.8: 0.2, 0.9: 0.35}
    walls[1.0] = 0.6
    for x, v in walls.items():
        _add(stub, sid, {"x": x}, loss=v)
    first = _add(stub, sid, {"x": 0.3}, loss=0.05).number
    _add(stub, sid, {"x": 0.7}, loss=0.09)
    for v in (0.15, 0.10):
        _add(stub, sid, {"x": 0.3}, loss=v)
    for v in (0.08, 0.12):  # enqueued, then handed out and told
        stub.CreateTrial(
            ts.CreateTrialRequest(parent=f"studies/{sid}", parameters={"x": pvalue(0.3)})
        )
        (running,) = ask(stub, sid)
        assert py_params(running) == {"x": 0.3}
        tell(stub, running.name, loss=v)
    answer = _optimal(stub, sid)
    ((best,), (prediction,)) = answer.trials, answer.predictions
    assert (best.number, py_params(best)) == (first, {"x": 0.3})
    assert prediction.measurements == 5
    assert prediction.mean["loss"] == pytest.approx(0.10, abs=0.03)


def test_deterministic_objective_round_trips_and_fits_no_noise(stub: Any) -> None:
    sid = _sid()
    created = create(stub, sid, _xy_spec(study_pb2.ALGORITHM_RANDOM, deterministic_objective=True))
    assert created.spec.deterministic_objective
    got = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study
    assert got.spec.deterministic_objective and got.spec == created.spec
    lucky = _noisy_bowl(stub, sid)
    # Declared deterministic, each result is the truth: the best result is the best point,
    # predicted at its value, without noise.
    answer = _optimal(stub, sid)
    ((best,), (prediction,)) = answer.trials, answer.predictions
    assert best.number == lucky
    assert prediction.noise_stddev == {"loss": 0.0}
    assert prediction.mean["loss"] == pytest.approx(best.final_measurement.values["loss"], abs=1e-3)
    # By default a study fits the noise.
    plain = _sid()
    assert not create(
        stub, plain, _xy_spec(study_pb2.ALGORITHM_RANDOM)
    ).spec.deterministic_objective
    got = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{plain}")).study
    assert not got.spec.deterministic_objective
    _noisy_bowl(stub, plain)
    assert _optimal(stub, plain).predictions[0].noise_stddev["loss"] > 0.01


def test_a_spec_stored_before_deterministic_objective_reads_back_as_false() -> None:
    """The stored form (``store/_codec.py``, the JSON the Redis store keeps): a record written
    before the field existed reads as false, and a false spec is stored as before."""
    old = {
        "parameters": [
            {"name": "x", "domain": {"kind": "float", "low": 0.0, "high": 1.0, "log": False}}
        ],
        "objectives": [{"name": "loss", "maximize": False}],
        "algorithm": "BAYESIAN",
        "seed": 1,
        "max_trials": None,
        "grid_resolution": None,
        "initial_trials": None,
        "lease_timeout": 600.0,
    }
    plain = spec_from_json(old)
    assert plain.deterministic_objective is False
    assert spec_to_json(plain) == old
    declared = StudySpec(
        space=plain.space,
        objectives=(Objective("loss"),),
        algorithm=plain.algorithm,
        seed=1,
        lease_timeout=600.0,
        deterministic_objective=True,
    )
    assert spec_to_json(declared) == {**old, "deterministic_objective": True}
    assert spec_from_json(spec_to_json(declared)) == declared


def test_several_objectives_give_the_front_of_the_predictions(stub: Any) -> None:
    sid = _sid()
    create(
        stub,
        sid,
        spec(
            float_param("x", 0.0, 1.0),
            float_param("y", 0.0, 1.0),
            objectives=[minimize("a"), maximize("b")],
            seed=1,
            deterministic_objective=True,
        ),
    )
    rng = np.random.default_rng(5)
    trials = []
    for _ in range(24):
        x, y = float(rng.random()), float(rng.random())
        a, b = x + 0.3 * (y - 0.5) ** 2, -((1 - x) ** 2) - 0.3 * (y - 0.5) ** 2
        pb = _add(stub, sid, {"x": x, "y": y}, a=a, b=b)
        trials.append(Trial(pb.number, TrialState.COMPLETED, {"x": x}, values={"a": a, "b": b}))
    answer = _optimal(stub, sid)
    assert len(answer.trials) == len(answer.predictions) >= 2
    # Deterministic: the model interpolates, and its front is the observed one.
    front = pareto_front(trials, [Objective("a"), Objective("b", maximize=True)])
    assert [t.number for t in answer.trials] == [t.number for t in front]
    assert [t.number for t in answer.trials] == [
        t.number for t in _optimal(stub, sid, OBSERVED).trials
    ]
    for t, p in zip(answer.trials, answer.predictions, strict=True):
        assert set(p.mean) == {"a", "b"} and p.noise_stddev == {"a": 0.0, "b": 0.0}
        assert p.mean["a"] == pytest.approx(t.final_measurement.values["a"], abs=1e-3)
        assert p.measurements == 1


def test_noisy_several_objectives_give_a_front_no_prediction_dominates(stub: Any) -> None:
    sid = _sid()
    create(
        stub,
        sid,
        spec(
            float_param("x", 0.0, 1.0),
            float_param("y", 0.0, 1.0),
            objectives=[minimize("a"), maximize("b")],
            seed=1,
        ),
    )
    rng = np.random.default_rng(6)
    for _ in range(30):
        x, y = float(rng.random()), float(rng.random())
        a = x + 0.3 * (y - 0.5) ** 2 + float(rng.normal(0, 0.05))
        b = -((1 - x) ** 2) - 0.3 * (y - 0.5) ** 2 + float(rng.normal(0, 0.05))
        _add(stub, sid, {"x": x, "y": y}, a=a, b=b)
    answer = _optimal(stub, sid)
    means = [(p.mean["a"], -p.mean["b"]) for p in answer.predictions]  # both lower-is-better
    assert len(answer.trials) == len(means) >= 2
    for m in means:
        assert not any(o[0] <= m[0] and o[1] <= m[1] and o != m for o in means)
    numbers = [t.number for t in answer.trials]
    assert numbers == sorted(numbers)


def test_fewer_than_two_completed_trials_answer_the_observed_trials(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, _xy_spec(study_pb2.ALGORITHM_RANDOM))
    empty = _optimal(stub, sid)
    assert not empty.trials and not empty.predictions
    only = _add(stub, sid, {"x": 0.5, "y": 0.5}, loss=1.0)
    ask(stub, sid, count=2)  # running trials are no results
    stub.CreateTrial(
        ts.CreateTrialRequest(
            parent=f"studies/{sid}",
            parameters={"x": pvalue(0.1), "y": pvalue(0.1)},
            failure=ts.TrialFailure(reason="oom"),
        )
    )
    answer = _optimal(stub, sid)
    assert [t.number for t in answer.trials] == [only.number]
    assert not answer.predictions
    assert answer == _optimal(stub, sid, OBSERVED)


def test_an_unknown_basis_is_invalid_argument(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, _xy_spec(study_pb2.ALGORITHM_RANDOM))
    with pytest.raises(grpc.RpcError) as e:
        _optimal(stub, sid, basis=7)
    code, reason, message = error_reason(e.value)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert error_field(e.value) == "basis"
    assert "7 is not an optimality basis" in message
    assert "OPTIMALITY_BASIS_MODEL" in message


def test_an_unknown_study_is_not_found(stub: Any) -> None:
    for basis in (MODEL, OBSERVED):
        with pytest.raises(grpc.RpcError) as e:
            _optimal(stub, _sid(), basis)
        code, reason, _ = error_reason(e.value)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND")


# --- the worker pool -------------------------------------------------------------------------


@pytest.fixture
def stopped_pool_stub() -> Iterator[Any]:
    """A stub on a server whose sampler workers are stopped (as while the replica stops)."""

    def servicer(store: Store, clock: Callable[[], float]) -> TuningServicer:
        workers = SamplerWorkers(1)
        workers.close()
        return TuningServicer(store, clock=clock, samplers=workers)

    with InProcessServer(ServerConfig(lease_sweep_interval=0), servicer=servicer) as server:
        with grpc.insecure_channel(server.target) as channel:
            yield tuning_service_pb2_grpc.TuningServiceStub(channel)


def test_a_stopped_worker_pool_answers_unavailable_as_for_suggestions(
    stopped_pool_stub: Any,
) -> None:
    stub = stopped_pool_stub
    sid = _sid()
    create(stub, sid, _xy_spec(study_pb2.ALGORITHM_RANDOM))
    _add(stub, sid, {"x": 0.2, "y": 0.2}, loss=1.0)
    # One completed trial: no model, so no worker, and the observed answer.
    assert len(_optimal(stub, sid).trials) == 1
    _add(stub, sid, {"x": 0.8, "y": 0.8}, loss=2.0)
    with pytest.raises(grpc.RpcError) as e:
        _optimal(stub, sid)
    code, reason, _ = error_reason(e.value)
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "SAMPLER_UNAVAILABLE")
    # The Bayesian sampler's asks answer the same.
    bo = _sid()
    create(stub, bo, _xy_spec(study_pb2.ALGORITHM_BAYESIAN, initial_trials=1))
    _add(stub, bo, {"x": 0.2, "y": 0.2}, loss=1.0)
    with pytest.raises(grpc.RpcError) as asked:
        ask(stub, bo)
    assert error_reason(asked.value)[:2] == (code, reason)
    # By observed values, nothing is computed: the answer stands.
    assert len(_optimal(stub, sid, OBSERVED).trials) == 1
