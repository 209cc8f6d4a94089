"""The Python client against a real server over loopback, on the memory store and on Redis."""

from __future__ import annotations

import itertools
import math
import pickle
import socket
import threading
from collections.abc import Iterator
from datetime import timezone

import grpc
import pytest

import hyperdial as hd
from hyperdial import _base
from hyperdial.v1 import tuning_service_pb2, tuning_service_pb2_grpc
from tests.client._support import new_id

SPACE = [
    hd.Float("lr", 1e-4, 1e-1, log=True),
    hd.Int("layers", 1, 4),
    hd.Categorical("optimizer", ["sgd", "adam"]),
    hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),
    hd.Discrete("batch", [16, 32, 64]),
]


@pytest.fixture
def client(store_target: str) -> Iterator[hd.Client]:
    with hd.Client(store_target) as c:
        yield c


def quadratic(trial: hd.Trial) -> float:
    return (math.log10(float(trial.params["lr"])) + 2) ** 2 + int(trial.params["layers"])


# -- studies ---------------------------------------------------------------------------------


def test_create_get_list_delete(client: hd.Client) -> None:
    study_id = new_id()
    study = client.create_study(study_id, SPACE, seed=7, max_trials=50)

    assert study.study_id == study_id
    assert study.name == f"studies/{study_id}"
    # The server's default, resolved and recorded at creation.
    assert study.algorithm in ("random", "quasi_random", "bayesian")
    assert study.spec.seed == 7
    assert study.spec.max_trials == 50
    assert study.parameters == SPACE
    assert study.objectives == [hd.Objective("value", "minimize")]
    assert study.create_time is not None and study.create_time.tzinfo == timezone.utc
    assert study.trial_count == 0

    study.spec.max_trials = 1  # a copy: the study is unchanged
    assert study.spec.max_trials == 50

    for key in (study_id, f"studies/{study_id}"):
        again = client.get_study(key)
        assert again.name == study.name
        assert again.spec == study.spec

    assert study.name in [s.name for s in client.list_studies()]

    client.delete_study(study_id)
    with pytest.raises(hd.NotFoundError) as info:
        client.get_study(study_id)
    assert info.value.reason == "STUDY_NOT_FOUND"
    assert study.name not in [s.name for s in client.list_studies()]


def test_delete_study_accepts_a_study_or_a_name(client: hd.Client) -> None:
    a = client.create_study(new_id(), SPACE)
    b = client.create_study(new_id(), SPACE)
    client.delete_study(a)
    client.delete_study(b.name)
    for s in (a, b):
        with pytest.raises(hd.NotFoundError):
            client.get_study(s.study_id)


def test_list_studies_follows_page_tokens(client: hd.Client) -> None:
    prefix = new_id("page")
    ids = [f"{prefix}-{i:03d}" for i in range(101)]  # one more than the default page
    for study_id in ids:
        client.create_study(study_id, [hd.Int("x", 0, 1)])
    try:
        listed = [s.study_id for s in client.list_studies()]
        assert [i for i in listed if i.startswith(prefix)] == ids
        assert listed == sorted(listed)
        assert len(listed) == len(set(listed))
    finally:
        for study_id in ids:
            client.delete_study(study_id)


def test_create_study_with_objectives_and_algorithms(client: hd.Client) -> None:
    maximize = client.create_study(new_id(), SPACE, "maximize")
    assert maximize.objectives == [hd.Objective("value", "maximize")]

    several = client.create_study(
        new_id(), SPACE, [hd.Objective("loss"), hd.Objective("accuracy", "maximize")]
    )
    assert several.objectives == [hd.Objective("loss"), hd.Objective("accuracy", "maximize")]

    for algorithm in ("grid", "random", "quasi_random"):
        study = client.create_study(new_id(), SPACE, algorithm=algorithm, grid_resolution=3)
        assert study.algorithm == algorithm
        assert study.spec.grid_resolution == 3


def test_create_study_refuses_unknown_words_before_calling(client: hd.Client) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        client.create_study(new_id(), SPACE, algorithm="bayes")
    with pytest.raises(ValueError, match="objectives"):
        client.create_study(new_id(), SPACE, "min")
    with pytest.raises(ValueError, match="goal"):
        hd.Objective("x", "down")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.create_study(new_id(), ["x"])  # type: ignore[list-item]


# -- parameters ------------------------------------------------------------------------------


def test_typed_params_round_trip(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE, seed=1)
    asked = study.ask(20)
    assert len(asked) == 20
    for trial in asked:
        p = trial.params
        assert type(p["lr"]) is float and 1e-4 <= p["lr"] <= 1e-1
        assert type(p["layers"]) is int and 1 <= p["layers"] <= 4
        assert type(p["optimizer"]) is str
        assert type(p["batch"]) is float and p["batch"] in (16.0, 32.0, 64.0)
        assert ("momentum" in p) == (p["optimizer"] == "sgd")
        if "momentum" in p:
            assert type(p["momentum"]) is float
        study.tell(trial, quadratic(trial))
    for before, after in zip(asked, study.trials(), strict=True):
        assert after.params == before.params
        assert {k: type(v) for k, v in after.params.items()} == {
            k: type(v) for k, v in before.params.items()
        }
        assert list(after.params) == [p.name for p in SPACE if p.name in after.params]


def test_ints_are_sent_as_int_value(client: hd.Client, store_target: str) -> None:
    study = client.create_study(new_id(), SPACE)
    # A whole float for an int parameter and an int for a float one take the parameter's type.
    enqueued = study.enqueue({"lr": 0.01, "layers": 3.0, "optimizer": "adam", "batch": 32})
    assert enqueued.params == {"lr": 0.01, "layers": 3, "optimizer": "adam", "batch": 32.0}
    assert type(enqueued.params["layers"]) is int
    with grpc.insecure_channel(store_target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        raw = stub.GetTrial(tuning_service_pb2.GetTrialRequest(name=enqueued.name)).trial
    assert raw.parameters["layers"].WhichOneof("kind") == "int_value"
    assert raw.parameters["batch"].WhichOneof("kind") == "double_value"
    assert raw.parameters["optimizer"].WhichOneof("kind") == "string_value"


def test_conditional_parameter_absent_when_inactive(client: hd.Client) -> None:
    study = client.create_study(
        new_id(),
        [
            hd.Categorical("kind", ["a", "b"]),
            hd.Float("x", 0, 1, when=("kind", ["a"])),
            hd.Int("n", 1, 3),
            hd.Float("y", 0, 1, when=("n", [2])),
            hd.Discrete("d", [1, 2, 4]),
            # An int written for a discrete parent is sent as the parent's type (double).
            hd.Float("z", 0, 1, when=("d", [2])),
        ],
        seed=3,
    )
    assert study.parameters[5].when == ("d", (2.0,))
    seen = set()
    for trial in study.ask(60):
        p = trial.params
        assert ("x" in p) == (p["kind"] == "a")
        assert ("y" in p) == (p["n"] == 2)
        assert ("z" in p) == (p["d"] == 2.0)
        seen |= {k for k in ("x", "y", "z") if k in p}
    assert seen == {"x", "y", "z"}

    study.enqueue({"kind": "b", "n": 1, "d": 4.0})
    with pytest.raises(hd.InvalidArgumentError) as info:
        study.enqueue({"kind": "b", "x": 0.5, "n": 1, "d": 4.0})
    assert info.value.reason == "INVALID_PARAMETERS"
    assert info.value.metadata.get("field") == "parameters[x]"


def test_invalid_parameter_values_are_refused_by_the_service(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    for params in (
        {"lr": 0.01, "layers": 2.5, "optimizer": "adam", "batch": 32},
        {"lr": 0.01, "layers": 2, "optimizer": "rmsprop", "batch": 32},
        {"lr": 0.01, "layers": 2, "optimizer": "adam"},
    ):
        with pytest.raises(hd.InvalidArgumentError) as info:
            study.enqueue(params)
        assert info.value.reason == "INVALID_PARAMETERS"
    with pytest.raises(TypeError):
        study.enqueue({"lr": 0.01, "layers": True, "optimizer": "adam", "batch": 32})


# -- ask / tell ------------------------------------------------------------------------------


def test_ask_tell_fail(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    first, second, third = study.ask(3, client_id="worker-1")
    assert [t.state for t in (first, second, third)] == [hd.TrialState.RUNNING] * 3
    assert first.client_id == "worker-1"
    assert first.create_time is not None and first.create_time.tzinfo == timezone.utc
    assert first.complete_time is None and first.values is None and first.value is None

    done = study.tell(first, 1.5, metadata={"host": "a"})
    assert done.state == "COMPLETED"
    assert done.value == 1.5 and done.values == {"value": 1.5}
    assert done.metadata == {"host": "a"}
    assert done.complete_time is not None and done.complete_time >= done.create_time  # type: ignore[operator]

    by_number = study.tell(second.number, values={"value": 2.5})
    assert by_number.name == second.name and by_number.value == 2.5

    failed = study.fail(third, "out of memory")
    assert failed.state == hd.TrialState.FAILED
    assert failed.failure_reason == "out of memory"
    assert failed.values is None

    with pytest.raises(hd.FailedPreconditionError) as info:
        study.tell(first, 0.0)
    assert info.value.reason == "TRIAL_NOT_RUNNING"
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION

    assert study.get_trial(first.number) == done
    assert study.get_trial(third.number).state == "FAILED"


def test_tell_checks_its_arguments(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    (trial,) = study.ask()
    with pytest.raises(ValueError, match="exactly one"):
        study.tell(trial)
    with pytest.raises(ValueError, match="exactly one"):
        study.tell(trial, 1.0, values={"value": 1.0})
    with pytest.raises(TypeError):
        study.tell(trial, "1.0")  # type: ignore[arg-type]
    with pytest.raises(hd.InvalidArgumentError) as info:
        study.tell(trial, math.nan)
    assert info.value.reason == "INVALID_MEASUREMENT"
    with pytest.raises(hd.InvalidArgumentError) as info:
        study.tell(trial, values={"other": 1.0})
    assert info.value.reason == "INVALID_MEASUREMENT"
    assert study.get_trial(trial.number).state == "RUNNING"
    assert study.tell(trial, 3.0).value == 3.0


def test_long_failure_reasons_are_cut(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    (trial,) = study.ask()
    failed = trial.fail("x" * 10_000)
    assert len(failed.failure_reason) == _base.MAX_FAILURE_REASON_LENGTH


def test_multi_objective(client: hd.Client) -> None:
    study = client.create_study(
        new_id(), SPACE, [hd.Objective("loss"), hd.Objective("accuracy", "maximize")]
    )
    (trial,) = study.ask()
    with pytest.raises(ValueError, match="2 objectives"):
        study.tell(trial, 1.0)
    done = trial.report(values={"loss": 0.5, "accuracy": 0.9})
    assert done.values == {"loss": 0.5, "accuracy": 0.9}
    assert done.value is None

    point = {"lr": 0.01, "layers": 1, "optimizer": "adam", "batch": 16}
    study.add_trial(point, values={"loss": 0.4, "accuracy": 0.8})  # on the front
    study.add_trial(point, values={"loss": 0.6, "accuracy": 0.7})  # dominated
    front = study.best_trials
    assert sorted(t.values["loss"] for t in front if t.values) == [0.4, 0.5]
    with pytest.raises(ValueError, match="best_trials"):
        _ = study.best_trial


def test_enqueued_trials_are_asked_first(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE, max_trials=2)
    point = {"lr": 0.001, "layers": 2, "optimizer": "sgd", "momentum": 0.9, "batch": 64}
    waiting = study.enqueue(point, metadata={"source": "hand"})
    assert waiting.state == hd.TrialState.WAITING
    assert waiting.metadata == {"source": "hand"}
    asked = study.ask(5)
    assert len(asked) == 2  # max_trials counts enqueued trials too
    assert asked[0].number == waiting.number
    assert asked[0].state == "RUNNING" and asked[0].params == point
    with pytest.raises(hd.StudyCompleteError):
        study.ask()


def test_add_trial_imports_finished_trials(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE, max_trials=1)
    point = {"lr": 0.01, "layers": 1, "optimizer": "adam", "batch": 16}
    completed = study.add_trial(point, 2.0, metadata={"from": "old-run"})
    assert completed.state == "COMPLETED" and completed.value == 2.0
    assert completed.metadata == {"from": "old-run"}
    assert completed.complete_time is not None
    failed = study.add_trial(point, failure="diverged")
    assert failed.state == "FAILED" and failed.failure_reason == "diverged"
    assert study.add_trial(point, values={"value": 1.0}).value == 1.0

    with pytest.raises(ValueError, match="enqueue"):
        study.add_trial(point)
    with pytest.raises(ValueError, match="one outcome"):
        study.add_trial(point, 1.0, failure="x")

    # Imported trials do not count towards max_trials.
    assert len(study.ask()) == 1
    assert study.best_trial.value == 1.0


def test_trials_filters_by_state_and_reads_every_page(
    client: hd.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_base, "_PAGE_SIZE", 2)
    study = client.create_study(new_id(), SPACE)
    point = {"lr": 0.01, "layers": 1, "optimizer": "adam", "batch": 16}
    for i in range(3):
        study.add_trial(point, float(i))
        study.add_trial(point, failure=f"f{i}")
    study.enqueue(point)
    study.ask()

    everything = study.trials()
    assert [t.number for t in everything] == list(range(1, 8))
    completed = study.trials(["COMPLETED"])
    assert [t.value for t in completed] == [0.0, 1.0, 2.0]
    failed = study.trials([hd.TrialState.FAILED, "failed"])
    assert [t.failure_reason for t in failed] == ["f0", "f1", "f2"]
    assert [t.state for t in study.trials(["running", "waiting"])] == ["RUNNING"]
    assert study.trials([]) == []
    with pytest.raises(ValueError, match="unknown trial state"):
        study.trials(["DONE"])


def test_get_trial_not_found(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    with pytest.raises(hd.NotFoundError) as info:
        study.get_trial(1)
    assert info.value.reason == "TRIAL_NOT_FOUND"


def test_best_trial(client: hd.Client) -> None:
    low = client.create_study(new_id(), SPACE)
    with pytest.raises(ValueError, match="no trial"):
        _ = low.best_trial
    assert low.best_trials == []
    high = client.create_study(new_id(), SPACE, "maximize")
    for value in (3.0, 1.0, 2.0):
        for study in (low, high):
            (trial,) = study.ask()
            trial.report(value)
    assert low.best_trial.value == 1.0
    assert high.best_trial.value == 3.0
    assert [t.value for t in high.best_trials] == [3.0]


# -- with study.trial() ----------------------------------------------------------------------


def test_trial_context_reports(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    with study.trial(client_id="ctx") as t:
        done = t.report(quadratic(t))
    assert done.state == "COMPLETED"
    assert study.get_trial(t.number).client_id == "ctx"

    # Told through the study rather than the trial: the block still ends cleanly.
    with study.trial() as t2:
        study.tell(t2, 1.0)
    assert study.get_trial(t2.number).value == 1.0


def test_trial_context_fails_the_trial_on_exception(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    with pytest.raises(RuntimeError, match="boom"):
        with study.trial() as t:
            raise RuntimeError("boom")
    failed = study.get_trial(t.number)
    assert failed.state == hd.TrialState.FAILED
    assert failed.failure_reason == "RuntimeError: boom"


def test_trial_context_fails_the_trial_without_result(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    with study.trial() as t:
        pass
    failed = study.get_trial(t.number)
    assert failed.state == "FAILED"
    assert failed.failure_reason == "no result reported"


def test_trial_context_on_a_complete_study(client: hd.Client) -> None:
    study = client.create_study(new_id(), [hd.Int("x", 0, 1)], algorithm="grid")
    study.ask(2)
    with pytest.raises(hd.StudyCompleteError):
        with study.trial():
            raise AssertionError("not reached")


# -- optimize --------------------------------------------------------------------------------


def test_optimize_grid_with_four_workers_evaluates_every_point_once(client: hd.Client) -> None:
    space = [
        hd.Int("a", 1, 5),
        hd.Categorical("b", ["x", "y", "z"]),
        hd.Discrete("c", [0.5, 1.5]),
        hd.Float("f", 0.0, 1.0),
    ]
    study = client.create_study(new_id(), space, algorithm="grid", grid_resolution=2)
    lock = threading.Lock()
    evaluated: list[tuple[object, ...]] = []
    workers: set[str] = set()

    def objective(trial: hd.Trial) -> float:
        p = trial.params
        with lock:
            evaluated.append((p["a"], p["b"], p["c"], p["f"]))
            workers.add(threading.current_thread().name)
        return float(p["a"]) * float(p["c"]) + float(p["f"])

    study.optimize(objective, n_workers=4, client_id="grid-run")

    grid = set(itertools.product(range(1, 6), "xyz", (0.5, 1.5), (0.0, 1.0)))
    assert len(evaluated) == len(grid) == 60
    assert set(evaluated) == grid
    trials = study.trials()
    assert len(trials) == 60
    assert all(t.state == "COMPLETED" for t in trials)
    # Each worker asks under its own id: one asking with another's id would get its trial.
    assert {t.client_id for t in trials} <= {f"grid-run-{i}" for i in range(4)}
    assert all(name.startswith("hyperdial-worker-") for name in workers)
    with pytest.raises(hd.StudyCompleteError) as info:
        study.ask()
    assert info.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert info.value.reason == "STUDY_COMPLETE"
    # Optimising a complete study returns at once, without error.
    study.optimize(objective, n_workers=4)
    assert len(evaluated) == 60


def test_optimize_stops_at_n_trials_and_at_max_trials(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    study.optimize(quadratic, n_trials=7, n_workers=3)
    assert len(study.trials(["COMPLETED"])) == 7
    study.optimize(quadratic, n_trials=0)
    assert len(study.trials()) == 7

    bounded = client.create_study(new_id(), SPACE, max_trials=5)
    bounded.optimize(quadratic)
    assert len(bounded.trials(["COMPLETED"])) == 5

    with pytest.raises(ValueError):
        study.optimize(quadratic, n_workers=0)
    with pytest.raises(ValueError):
        study.optimize(quadratic, n_trials=-1)


def test_optimize_reraises_and_records_the_failed_trial(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    calls = 0

    def objective(trial: hd.Trial) -> float:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ZeroDivisionError("bad point")
        return quadratic(trial)

    with pytest.raises(ZeroDivisionError, match="bad point"):
        study.optimize(objective, n_trials=10)
    trials = study.trials()
    assert [t.state for t in trials] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert trials[2].failure_reason == "ZeroDivisionError: bad point"


def test_optimize_error_lets_other_workers_finish(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    started = threading.Barrier(3)

    def objective(trial: hd.Trial) -> float:
        if trial.number <= 3:
            # The first three trials run at once, one per worker; then one of them fails.
            started.wait(timeout=60)
            if trial.number == 2:
                raise KeyError("trial two")
        return quadratic(trial)

    with pytest.raises(KeyError, match="trial two"):
        study.optimize(objective, n_trials=100, n_workers=3)
    trials = study.trials()
    assert not [t for t in trials if t.state in ("RUNNING", "WAITING")]
    by_number = {t.number: t for t in trials}
    assert by_number[2].state == "FAILED"
    assert by_number[2].failure_reason == "KeyError: 'trial two'"
    assert by_number[1].state == by_number[3].state == "COMPLETED"


def test_optimize_catch_keeps_going(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)

    def objective(trial: hd.Trial) -> float:
        if trial.number % 2:
            raise ValueError(f"odd {trial.number}")
        return quadratic(trial)

    study.optimize(objective, n_trials=6, catch=(ValueError,))
    trials = study.trials()
    assert [t.state for t in trials] == ["FAILED", "COMPLETED"] * 3
    assert trials[0].failure_reason == "ValueError: odd 1"


def test_optimize_fails_trials_with_unusable_results(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE)
    results = iter([math.inf, None, 1.0])

    def objective(trial: hd.Trial) -> float | None:
        return next(results)

    study.optimize(objective, n_trials=3, catch=(hd.InvalidArgumentError, TypeError))
    trials = study.trials()
    assert [t.state for t in trials] == ["FAILED", "FAILED", "COMPLETED"]
    assert trials[0].failure_reason.startswith("InvalidArgumentError: INVALID_MEASUREMENT")
    assert trials[1].failure_reason.startswith("TypeError")


def test_optimize_with_several_objectives_and_self_reporting(client: hd.Client) -> None:
    study = client.create_study(
        new_id(), SPACE, [hd.Objective("loss"), hd.Objective("accuracy", "maximize")]
    )
    study.optimize(lambda t: {"loss": quadratic(t), "accuracy": 0.5}, n_trials=3)

    def reports_itself(trial: hd.Trial) -> None:
        trial.report(values={"loss": 1.0, "accuracy": 1.0})

    study.optimize(reports_itself, n_trials=2)
    trials = study.trials()
    assert [t.state for t in trials] == ["COMPLETED"] * 5
    assert trials[-1].values == {"loss": 1.0, "accuracy": 1.0}


# -- errors ----------------------------------------------------------------------------------


def test_errors_carry_class_code_and_reason(client: hd.Client) -> None:
    study_id = new_id()
    with pytest.raises(hd.NotFoundError) as not_found:
        client.get_study(study_id)
    assert not_found.value.code == grpc.StatusCode.NOT_FOUND
    assert not_found.value.reason == "STUDY_NOT_FOUND"
    assert study_id in not_found.value.message
    assert str(not_found.value).startswith("STUDY_NOT_FOUND: ")

    with pytest.raises(hd.NotFoundError):
        client.delete_study(study_id)

    client.create_study(study_id, SPACE)
    with pytest.raises(hd.AlreadyExistsError) as exists:
        client.create_study(study_id, SPACE)
    assert exists.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert exists.value.reason == "STUDY_ALREADY_EXISTS"

    with pytest.raises(hd.InvalidArgumentError) as invalid:
        client.create_study(new_id(), [hd.Float("x", 1.0, 0.0)])
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert invalid.value.reason == "INVALID_SEARCH_SPACE"
    assert invalid.value.metadata["field"].startswith("spec.parameters[0]")

    with pytest.raises(hd.InvalidArgumentError) as bad_id:
        client.create_study("no spaces allowed", SPACE)
    assert bad_id.value.reason == "INVALID_STUDY_ID"

    with pytest.raises(hd.InvalidArgumentError) as bad_condition:
        client.create_study(new_id(), [hd.Float("x", 0, 1, when=("missing", ["a"]))])
    assert bad_condition.value.reason == "INVALID_SEARCH_SPACE"

    with pytest.raises(hd.InvalidArgumentError) as grid:
        client.create_study(new_id(), [hd.Float("x", 0, 1)], algorithm="grid")
    assert grid.value.code == grpc.StatusCode.INVALID_ARGUMENT

    for error in (not_found, exists, invalid):
        assert isinstance(error.value, hd.HyperdialError)
        assert not isinstance(error.value, grpc.RpcError)


def test_study_complete_error(client: hd.Client) -> None:
    study = client.create_study(new_id(), SPACE, max_trials=1)
    study.ask()
    with pytest.raises(hd.StudyCompleteError) as info:
        study.ask()
    assert info.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert info.value.reason == "STUDY_COMPLETE"
    assert "max_trials" in info.value.message


def test_errors_survive_pickling(client: hd.Client) -> None:
    with pytest.raises(hd.NotFoundError) as info:
        client.get_study(new_id())
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is hd.NotFoundError
    assert (copy.code, copy.reason, copy.message, copy.metadata) == (
        info.value.code,
        info.value.reason,
        info.value.message,
        info.value.metadata,
    )


def test_unreachable_service_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port any more: without retries the call fails fast.
    with hd.Client(f"127.0.0.1:{port}", timeout=30, retry=None) as client:
        with pytest.raises(hd.UnavailableError) as info:
            client.get_study("anything")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.reason == ""
    assert "attempts" not in info.value.message


def test_client_leaves_a_passed_channel_open(store_target: str) -> None:
    with grpc.insecure_channel(store_target) as channel:
        with hd.Client(channel=channel) as client:
            study = client.create_study(new_id(), SPACE)
        # The client is closed but the caller's channel still works.
        again = hd.Client(channel=channel).get_study(study.study_id)
        assert again.name == study.name
