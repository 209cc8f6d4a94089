"""Ask/tell and every RPC end to end over real gRPC, on the memory store and on Redis."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import (
    ask,
    cat_param,
    create,
    disc_param,
    error_reason,
    float_param,
    int_param,
    maximize,
    measurement,
    minimize,
    pvalue,
    py_params,
    spec,
    tell,
    when,
)

MIXED = [
    float_param("lr", 1e-5, 1.0, log=True),
    int_param("layers", 1, 8),
    cat_param("opt", ["adam", "sgd"]),
    float_param("momentum", 0.0, 0.99, condition=when("opt", "sgd")),
    disc_param("batch", [16.0, 32.0, 64.0]),
    int_param("width", 8, 512, log=True),
]


def _sid() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def _check_mixed(p: dict[str, float | int | str]) -> None:
    assert isinstance(p["lr"], float) and 1e-5 <= p["lr"] <= 1.0
    assert isinstance(p["layers"], int) and 1 <= p["layers"] <= 8
    assert p["opt"] in ("adam", "sgd")
    assert ("momentum" in p) == (p["opt"] == "sgd")
    assert p["batch"] in (16.0, 32.0, 64.0)
    assert isinstance(p["width"], int) and 8 <= p["width"] <= 512


@pytest.mark.parametrize(
    "algorithm",
    [study_pb2.ALGORITHM_RANDOM, study_pb2.ALGORITHM_QUASI_RANDOM, study_pb2.ALGORITHM_UNSPECIFIED],
)
def test_ask_tell_roundtrip(stub: Any, algorithm: int) -> None:
    sid = _sid()
    study = create(stub, sid, spec(*MIXED, algorithm=algorithm, seed=7))
    assert study.name == f"studies/{sid}"
    assert study.spec.algorithm != study_pb2.ALGORITHM_UNSPECIFIED  # resolved and stored
    trials = ask(stub, sid, count=5, client_id="worker-1")
    assert [t.number for t in trials] == [1, 2, 3, 4, 5]
    for t in trials:
        assert t.name == f"studies/{sid}/trials/{t.number}"
        assert t.state == trial_pb2.TRIAL_STATE_RUNNING
        assert t.client_id == "worker-1"
        assert t.create_time.seconds > 0
        _check_mixed(py_params(t))
    assert len({tuple(sorted(py_params(t).items())) for t in trials}) == 5
    done = tell(stub, trials[0].name, loss=0.25)
    assert done.state == trial_pb2.TRIAL_STATE_COMPLETED
    assert done.final_measurement.values["loss"] == 0.25
    assert done.complete_time.seconds > 0
    failed = stub.CompleteTrial(
        ts.CompleteTrialRequest(name=trials[1].name, failure=ts.TrialFailure(reason="OOM"))
    ).trial
    assert failed.state == trial_pb2.TRIAL_STATE_FAILED and failed.failure_reason == "OOM"
    got = stub.GetTrial(ts.GetTrialRequest(name=trials[0].name)).trial
    assert got == done
    assert stub.GetStudy(ts.GetStudyRequest(name=study.name)).study.trial_count == 5


def test_seed_is_drawn_and_stored(stub: Any) -> None:
    a = create(stub, _sid(), spec(float_param("x", 0, 1)))
    b = create(stub, _sid(), spec(float_param("x", 0, 1)))
    assert a.spec.HasField("seed") and b.spec.HasField("seed")
    assert a.spec.seed != b.spec.seed


@pytest.mark.parametrize(
    "algorithm", [study_pb2.ALGORITHM_RANDOM, study_pb2.ALGORITHM_QUASI_RANDOM]
)
def test_same_seed_same_points(stub: Any, algorithm: int) -> None:
    s = spec(*MIXED, algorithm=algorithm, seed=123)
    a, b = _sid(), _sid()
    create(stub, a, s)
    create(stub, b, s)
    pa = [py_params(t) for t in ask(stub, a, count=4)]
    pb = [py_params(t) for t in ask(stub, b, count=2) + ask(stub, b, count=2)]
    assert pa == pb


def test_grid_hands_out_every_point_once_then_complete(stub: Any) -> None:
    sid = _sid()
    grid = spec(
        cat_param("opt", ["adam", "sgd"]),
        float_param("lr", 0.001, 0.1, log=True),
        int_param("depth", 1, 2, condition=when("opt", "sgd")),
        algorithm=study_pb2.ALGORITHM_GRID,
        grid_resolution=3,
    )
    create(stub, sid, grid)
    seen = []
    trials = ask(stub, sid, count=4)
    assert len(trials) == 4
    seen += trials
    trials = ask(stub, sid, count=10)  # 9 points in all: fewer than asked
    assert len(trials) == 5
    seen += trials
    points = {tuple(sorted(py_params(t).items())) for t in seen}
    assert len(points) == 9  # adam x 3 lr + sgd x 3 lr x 2 depth
    assert sorted({p["lr"] for p in map(py_params, seen)}) == pytest.approx([0.001, 0.01, 0.1])
    with pytest.raises(grpc.RpcError) as info:
        ask(stub, sid)
    code, reason, message = error_reason(info.value)
    assert (code, reason) == (grpc.StatusCode.OUT_OF_RANGE, "STUDY_COMPLETE")
    assert "grid point" in message


def test_max_trials(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1), max_trials=3))
    assert len(ask(stub, sid, count=2)) == 2
    assert len(ask(stub, sid, count=2)) == 1
    with pytest.raises(grpc.RpcError) as info:
        ask(stub, sid)
    code, reason, message = error_reason(info.value)
    assert (code, reason) == (grpc.StatusCode.OUT_OF_RANGE, "STUDY_COMPLETE")
    assert "max_trials (3)" in message


def test_enqueued_trials_come_first(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(*MIXED))
    chosen = {
        "lr": pvalue(0.01),
        "layers": pvalue(3),
        "opt": pvalue("sgd"),
        "momentum": pvalue(0.9),
        "batch": pvalue(32.0),
        "width": pvalue(64),
    }
    queued = stub.CreateTrial(
        ts.CreateTrialRequest(parent=f"studies/{sid}", parameters=chosen)
    ).trial
    assert queued.state == trial_pb2.TRIAL_STATE_WAITING and queued.number == 1
    first, second = ask(stub, sid, count=2, client_id="w")
    assert first.number == 1 and first.state == trial_pb2.TRIAL_STATE_RUNNING
    assert py_params(first) == {
        "lr": 0.01,
        "layers": 3,
        "opt": "sgd",
        "momentum": 0.9,
        "batch": 32.0,
        "width": 64,
    }
    assert first.client_id == "w"
    assert second.number == 2
    _check_mixed(py_params(second))


def test_import_finished_trials_and_best(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1), objectives=[maximize("acc")]))
    parent = f"studies/{sid}"
    for x, acc in [(0.1, 0.5), (0.2, 0.9), (0.3, 0.7)]:
        t = stub.CreateTrial(
            ts.CreateTrialRequest(
                parent=parent,
                parameters={"x": pvalue(x)},
                final_measurement=measurement(acc=acc),
                metadata={"source": "import"},
            )
        ).trial
        assert t.state == trial_pb2.TRIAL_STATE_COMPLETED and t.metadata["source"] == "import"
    stub.CreateTrial(
        ts.CreateTrialRequest(
            parent=parent, parameters={"x": pvalue(0.4)}, failure=ts.TrialFailure(reason="nan loss")
        )
    )
    best = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=parent)).trials
    assert [t.number for t in best] == [2]
    # Imported trials do not use up an ask.
    (asked,) = ask(stub, sid)
    assert asked.number == 5
    tell(stub, asked.name, acc=0.95)
    best = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=parent)).trials
    assert [t.number for t in best] == [5]


def test_best_of_minimised_with_ties(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    trials = ask(stub, sid, count=4)
    for t, loss in zip(trials, [3.0, 1.0, 1.0, 2.0], strict=True):
        tell(stub, t.name, loss=loss)
    best = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}")).trials
    assert [t.number for t in best] == [2]
    empty = create(stub, _sid(), spec(float_param("x", 0, 1)))
    assert not stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=empty.name)).trials


def test_pareto_front(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1), objectives=[minimize("loss"), maximize("acc")]))
    trials = ask(stub, sid, count=5)
    results = [(1.0, 0.5), (0.5, 0.4), (0.5, 0.6), (2.0, 0.9), (0.6, 0.55)]
    for t, (loss, acc) in zip(trials, results, strict=True):
        tell(stub, t.name, loss=loss, acc=acc)
    front = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}")).trials
    # (0.5, 0.6) dominates (1.0, 0.5), (0.5, 0.4) and (0.6, 0.55); (2.0, 0.9) has the best acc.
    assert [t.number for t in front] == [3, 4]


def test_list_trials_pages_and_filters(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    trials = ask(stub, sid, count=7)
    for t in trials[::2]:
        tell(stub, t.name, loss=1.0)
    numbers: list[int] = []
    token = ""
    while True:
        page = stub.ListTrials(
            ts.ListTrialsRequest(parent=f"studies/{sid}", page_size=3, page_token=token)
        )
        numbers += [t.number for t in page.trials]
        token = page.next_page_token
        if not token:
            break
    assert numbers == [1, 2, 3, 4, 5, 6, 7]
    running = stub.ListTrials(
        ts.ListTrialsRequest(parent=f"studies/{sid}", states=[trial_pb2.TRIAL_STATE_RUNNING])
    )
    assert [t.number for t in running.trials] == [2, 4, 6] and not running.next_page_token
    both = stub.ListTrials(
        ts.ListTrialsRequest(
            parent=f"studies/{sid}",
            states=[trial_pb2.TRIAL_STATE_RUNNING, trial_pb2.TRIAL_STATE_COMPLETED],
            page_size=4,
        )
    )
    assert [t.number for t in both.trials] == [1, 2, 3, 4] and both.next_page_token


def test_list_and_delete_studies(stub: Any) -> None:
    prefix = f"ls-{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{i}" for i in range(5)]
    for sid in reversed(ids):
        create(stub, sid, spec(float_param("x", 0, 1)))
    listed: list[str] = []
    token = ""
    while True:
        page = stub.ListStudies(ts.ListStudiesRequest(page_size=2, page_token=token))
        listed += [s.name for s in page.studies]
        token = page.next_page_token
        if not token:
            break
    mine = [n for n in listed if n.startswith(f"studies/{prefix}")]
    assert mine == [f"studies/{sid}" for sid in ids]
    assert listed == sorted(listed)
    stub.DeleteStudy(ts.DeleteStudyRequest(name=f"studies/{ids[0]}"))
    with pytest.raises(grpc.RpcError) as info:
        stub.GetStudy(ts.GetStudyRequest(name=f"studies/{ids[0]}"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # The id can be used again, for a different study; nothing of the old one leaks through.
    create(stub, ids[0], spec(int_param("n", 0, 3)))
    (t,) = ask(stub, ids[0])
    assert t.number == 1 and set(py_params(t)) == {"n"}


def test_recreated_study_is_not_served_from_a_stale_cache(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    ask(stub, sid)
    stub.DeleteStudy(ts.DeleteStudyRequest(name=f"studies/{sid}"))
    create(stub, sid, spec(cat_param("c", ["a", "b"])))
    (t,) = ask(stub, sid)
    assert set(py_params(t)) == {"c"} and t.number == 1


def test_metadata_merges_on_tell(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    (t,) = ask(stub, sid)
    done = stub.CompleteTrial(
        ts.CompleteTrialRequest(
            name=t.name,
            final_measurement=measurement(loss=1.5),
            metadata={"ckpt": "s3://b/k", "é": "ü"},
        )
    ).trial
    assert dict(done.metadata) == {"ckpt": "s3://b/k", "é": "ü"}
