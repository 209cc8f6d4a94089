"""Every bad input gets a precise status, a stable ErrorInfo reason and an actionable message,
and stores nothing. Runs over real gRPC against both stores."""

from __future__ import annotations

import math
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
    measurement,
    minimize,
    pvalue,
    spec,
    tell,
    when,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _sid() -> str:
    return f"bad-{uuid.uuid4().hex[:12]}"


def _fails(call: Any, request: Any) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return error_reason(info.value)


# (case id, spec, expected reason, words the message must contain)
BAD_SPECS: list[tuple[str, study_pb2.StudySpec, str, str]] = [
    ("empty-param-name", spec(float_param("", 0, 1)), "INVALID_SEARCH_SPACE", "name is empty"),
    (
        "duplicate-param-name",
        spec(float_param("x", 0, 1), int_param("x", 0, 3)),
        "INVALID_SEARCH_SPACE",
        "used twice",
    ),
    ("float-min-ge-max", spec(float_param("x", 1, 1)), "INVALID_SEARCH_SPACE", "less than max"),
    ("int-min-ge-max", spec(int_param("n", 5, 2)), "INVALID_SEARCH_SPACE", "less than max"),
    (
        "float-log-min-le-0",
        spec(float_param("lr", 0, 1, log=True)),
        "INVALID_SEARCH_SPACE",
        "min > 0",
    ),
    ("int-log-min-lt-1", spec(int_param("n", 0, 8, log=True)), "INVALID_SEARCH_SPACE", "min >= 1"),
    ("float-nan-bound", spec(float_param("x", math.nan, 1)), "INVALID_SEARCH_SPACE", "finite"),
    ("float-inf-bound", spec(float_param("x", 0, math.inf)), "INVALID_SEARCH_SPACE", "finite"),
    ("categorical-no-values", spec(cat_param("c", [])), "INVALID_SEARCH_SPACE", "at least one"),
    (
        "categorical-duplicate-values",
        spec(cat_param("c", ["a", "b", "a"])),
        "INVALID_SEARCH_SPACE",
        "listed twice",
    ),
    ("discrete-no-values", spec(disc_param("d", [])), "INVALID_SEARCH_SPACE", "at least one"),
    (
        "discrete-not-increasing",
        spec(disc_param("d", [1.0, 0.5])),
        "INVALID_SEARCH_SPACE",
        "strictly increasing",
    ),
    (
        "no-domain",
        spec(study_pb2.ParameterSpec(name="x")),
        "INVALID_SEARCH_SPACE",
        "has no domain",
    ),
    (
        "missing-parent",
        spec(float_param("m", 0, 1, condition=when("opt", "sgd"))),
        "INVALID_SEARCH_SPACE",
        "not a parameter",
    ),
    (
        "impossible-parent-value",
        spec(
            cat_param("opt", ["adam", "sgd"]), float_param("m", 0, 1, condition=when("opt", "lion"))
        ),
        "INVALID_SEARCH_SPACE",
        "cannot take 'lion'",
    ),
    (
        "parent-value-wrong-type",
        spec(int_param("n", 1, 4), float_param("m", 0, 1, condition=when("n", "2"))),
        "INVALID_SEARCH_SPACE",
        "cannot take",
    ),
    (
        "float-parent",
        spec(float_param("x", 0, 1), float_param("m", 0, 1, condition=when("x", 0.5))),
        "INVALID_SEARCH_SPACE",
        "float parameter",
    ),
    (
        "cycle",
        spec(
            cat_param("a", ["1", "2"], condition=when("b", "1")),
            cat_param("b", ["1", "2"], condition=when("a", "1")),
        ),
        "INVALID_SEARCH_SPACE",
        "cycle",
    ),
    (
        "self-parent",
        spec(cat_param("a", ["1", "2"], condition=when("a", "1"))),
        "INVALID_SEARCH_SPACE",
        "its own parent",
    ),
    (
        "no-objectives",
        study_pb2.StudySpec(parameters=[float_param("x", 0, 1)]),
        "INVALID_OBJECTIVES",
        "no objectives",
    ),
    (
        "objective-without-goal",
        spec(float_param("x", 0, 1), objectives=[study_pb2.ObjectiveSpec(name="loss")]),
        "INVALID_OBJECTIVES",
        "GOAL_MINIMIZE",
    ),
    (
        "duplicate-objective",
        spec(float_param("x", 0, 1), objectives=[minimize("l"), minimize("l")]),
        "INVALID_OBJECTIVES",
        "used twice",
    ),
    (
        "grid-float-without-resolution",
        spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_GRID),
        "INVALID_SEARCH_SPACE",
        "grid_resolution",
    ),
    ("no-parameters", spec(), "INVALID_SEARCH_SPACE", "no parameters"),
    (
        "too-many-parameters",
        spec(*[float_param(f"p{i}", 0, 1) for i in range(101)]),
        "INVALID_SEARCH_SPACE",
        "limit is 100",
    ),
    (
        "too-many-categorical-values",
        spec(cat_param("c", [f"v{i}" for i in range(1001)])),
        "INVALID_SEARCH_SPACE",
        "limit is 1000",
    ),
    (
        "param-name-too-long",
        spec(float_param("x" * 129, 0, 1)),
        "INVALID_SEARCH_SPACE",
        "limit is 128",
    ),
    (
        "negative-max-trials",
        spec(float_param("x", 0, 1), max_trials=-1),
        "INVALID_ARGUMENT",
        "max_trials",
    ),
    (
        "resolution-one",
        spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_GRID, grid_resolution=1),
        "INVALID_ARGUMENT",
        "grid_resolution",
    ),
]


@pytest.mark.parametrize("case", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_study_spec_is_refused_and_nothing_stored(
    stub: Any, case: tuple[str, study_pb2.StudySpec, str, str]
) -> None:
    _, bad, reason, words = case
    sid = _sid()
    code, got_reason, message = _fails(
        stub.CreateStudy, ts.CreateStudyRequest(study_id=sid, spec=bad)
    )
    assert (code, got_reason) == (INVALID, reason), message
    assert words in message
    code, got_reason, _ = _fails(stub.GetStudy, ts.GetStudyRequest(name=f"studies/{sid}"))
    assert (code, got_reason) == (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND")


@pytest.mark.parametrize(
    "study_id", ["", "a/b", "{tag}", "héllo", "-lead", "x" * 129, "a b", "a:b"]
)
def test_invalid_study_ids(stub: Any, study_id: str) -> None:
    request = ts.CreateStudyRequest(study_id=study_id, spec=spec(float_param("x", 0, 1)))
    code, reason, _ = _fails(stub.CreateStudy, request)
    assert (code, reason) == (INVALID, "INVALID_STUDY_ID")


def test_missing_spec(stub: Any) -> None:
    code, _, message = _fails(stub.CreateStudy, ts.CreateStudyRequest(study_id=_sid()))
    assert code == INVALID and "spec is missing" in message


def test_duplicate_study(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    request = ts.CreateStudyRequest(study_id=sid, spec=spec(int_param("n", 0, 3)))
    code, reason, _ = _fails(stub.CreateStudy, request)
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "STUDY_ALREADY_EXISTS")
    got = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study
    assert got.spec.parameters[0].name == "x"  # the first study is untouched


@pytest.mark.parametrize("name", ["", "studies/", "study/x", "studies/x/y", "projects/p/studies/x"])
def test_malformed_study_names(stub: Any, name: str) -> None:
    code, reason, _ = _fails(stub.GetStudy, ts.GetStudyRequest(name=name))
    assert code == INVALID and reason in ("INVALID_NAME", "INVALID_STUDY_ID")


@pytest.mark.parametrize(
    "name",
    ["studies/x/trials/0", "studies/x/trials/-1", "studies/x/trials/abc", "studies/x/trial/1"],
)
def test_malformed_trial_names(stub: Any, name: str) -> None:
    code, reason, _ = _fails(stub.GetTrial, ts.GetTrialRequest(name=name))
    assert (code, reason) == (INVALID, "INVALID_NAME")


def test_unknown_study_everywhere(stub: Any) -> None:
    name = f"studies/{_sid()}"
    calls = [
        (stub.GetStudy, ts.GetStudyRequest(name=name)),
        (stub.DeleteStudy, ts.DeleteStudyRequest(name=name)),
        (stub.SuggestTrials, ts.SuggestTrialsRequest(parent=name, count=1)),
        (stub.CreateTrial, ts.CreateTrialRequest(parent=name)),
        (stub.ListTrials, ts.ListTrialsRequest(parent=name)),
        (stub.ListOptimalTrials, ts.ListOptimalTrialsRequest(parent=name)),
        (stub.GetTrial, ts.GetTrialRequest(name=f"{name}/trials/1")),
        (
            stub.CompleteTrial,
            ts.CompleteTrialRequest(name=f"{name}/trials/1", final_measurement=measurement(loss=1)),
        ),
    ]
    for call, request in calls:
        code, reason, message = _fails(call, request)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND"), call
        assert name in message


def test_unknown_trial(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    for call, request in [
        (stub.GetTrial, ts.GetTrialRequest(name=f"studies/{sid}/trials/7")),
        (
            stub.CompleteTrial,
            ts.CompleteTrialRequest(
                name=f"studies/{sid}/trials/7", final_measurement=measurement(loss=1)
            ),
        ),
    ]:
        code, reason, _ = _fails(call, request)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TRIAL_NOT_FOUND")


@pytest.mark.parametrize("count", [0, -1, 101, 2**31 - 1])
def test_count_out_of_bounds(stub: Any, count: int) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    request = ts.SuggestTrialsRequest(parent=f"studies/{sid}", count=count)
    code, _, message = _fails(stub.SuggestTrials, request)
    assert code == INVALID and "between 1 and 100" in message
    assert stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.trial_count == 0


def test_client_id_too_long(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    request = ts.SuggestTrialsRequest(parent=f"studies/{sid}", count=1, client_id="w" * 129)
    code, _, _ = _fails(stub.SuggestTrials, request)
    assert code == INVALID


def test_tell_on_trial_not_running(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    (trial,) = ask(stub, sid)
    tell(stub, trial.name, loss=1.0)
    request = ts.CompleteTrialRequest(name=trial.name, final_measurement=measurement(loss=0.5))
    code, reason, message = _fails(stub.CompleteTrial, request)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRIAL_NOT_RUNNING")
    assert "COMPLETED" in message
    got = stub.GetTrial(ts.GetTrialRequest(name=trial.name)).trial
    assert got.final_measurement.values["loss"] == 1.0  # the first result stays


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({}, "no value for objective 'loss'"),
        ({"loss": 1.0, "acc": 0.5}, "'acc' is not an objective"),
        ({"lost": 1.0}, "not an objective"),
        ({"loss": math.nan}, "finite"),
        ({"loss": math.inf}, "finite"),
        ({"loss": -math.inf}, "finite"),
    ],
)
def test_bad_measurements(stub: Any, values: dict[str, float], words: str) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    (trial,) = ask(stub, sid)
    request = ts.CompleteTrialRequest(
        name=trial.name, final_measurement=trial_pb2.Measurement(values=values)
    )
    code, reason, message = _fails(stub.CompleteTrial, request)
    assert (code, reason) == (INVALID, "INVALID_MEASUREMENT"), message
    assert words in message
    got = stub.GetTrial(ts.GetTrialRequest(name=trial.name)).trial
    assert got.state == trial_pb2.TRIAL_STATE_RUNNING


def test_tell_without_outcome(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    (trial,) = ask(stub, sid)
    code, _, message = _fails(stub.CompleteTrial, ts.CompleteTrialRequest(name=trial.name))
    assert code == INVALID and "final_measurement" in message


def test_oversize_metadata_and_reason(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    (trial,) = ask(stub, sid)
    too_many = {f"k{i}": "v" for i in range(65)}
    for request in [
        ts.CompleteTrialRequest(
            name=trial.name, final_measurement=measurement(loss=1), metadata=too_many
        ),
        ts.CompleteTrialRequest(
            name=trial.name, final_measurement=measurement(loss=1), metadata={"k": "v" * 4097}
        ),
        ts.CompleteTrialRequest(name=trial.name, failure=ts.TrialFailure(reason="r" * 4097)),
    ]:
        code, _, message = _fails(stub.CompleteTrial, request)
        assert code == INVALID and "limit" in message
    got = stub.GetTrial(ts.GetTrialRequest(name=trial.name)).trial
    assert got.state == trial_pb2.TRIAL_STATE_RUNNING and not got.metadata


COND_SPEC = spec(
    cat_param("opt", ["adam", "sgd"]),
    float_param("momentum", 0, 1, condition=when("opt", "sgd")),
    int_param("layers", 1, 4),
)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"opt": pvalue("adam"), "layers": pvalue(9)}, "not a valid value"),
        ({"opt": pvalue("adam"), "layers": pvalue(2.0)}, "as int_value, not double_value"),
        ({"opt": pvalue("adam"), "layers": pvalue("2")}, "as int_value, not string_value"),
        # A float parameter's value is a double_value, even when it is a whole number.
        ({"opt": pvalue("sgd"), "layers": pvalue(2), "momentum": pvalue(0)}, "as double_value"),
        ({"opt": pvalue(1), "layers": pvalue(2)}, "as string_value, not int_value"),
        ({"opt": pvalue("lion"), "layers": pvalue(2)}, "not a valid value"),
        ({"opt": pvalue("sgd"), "layers": pvalue(2)}, "'momentum' is missing"),
        ({"opt": pvalue("adam"), "layers": pvalue(2), "momentum": pvalue(0.5)}, "inactive"),
        ({"opt": pvalue("adam"), "layers": pvalue(2), "depth": pvalue(3)}, "not a parameter"),
        ({"opt": pvalue("sgd"), "layers": pvalue(2), "momentum": pvalue(1.5)}, "not a valid value"),
        ({"opt": pvalue("adam"), "layers": study_pb2.ParameterValue()}, "holds no value"),
    ],
)
def test_create_trial_parameters_outside_space(
    stub: Any, params: dict[str, study_pb2.ParameterValue], words: str
) -> None:
    sid = _sid()
    create(stub, sid, COND_SPEC)
    request = ts.CreateTrialRequest(parent=f"studies/{sid}", parameters=params)
    code, reason, message = _fails(stub.CreateTrial, request)
    assert (code, reason) == (INVALID, "INVALID_PARAMETERS"), message
    assert words in message
    assert stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.trial_count == 0


@pytest.mark.parametrize("page_size", [-1, 1001])
def test_bad_page_size(stub: Any, page_size: int) -> None:
    code, _, message = _fails(stub.ListStudies, ts.ListStudiesRequest(page_size=page_size))
    assert code == INVALID and "page_size" in message


@pytest.mark.parametrize("token", ["garbage!", "eyJ4IjoxfQ", "bm90IGpzb24"])
def test_bad_page_token(stub: Any, token: str) -> None:
    code, reason, _ = _fails(stub.ListStudies, ts.ListStudiesRequest(page_token=token))
    assert (code, reason) == (INVALID, "INVALID_PAGE_TOKEN")


def test_page_token_bound_to_its_filter(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    ask(stub, sid, count=3)
    first = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}", page_size=1))
    assert first.next_page_token
    request = ts.ListTrialsRequest(
        parent=f"studies/{sid}",
        page_size=1,
        page_token=first.next_page_token,
        states=[trial_pb2.TRIAL_STATE_COMPLETED],
    )
    code, reason, _ = _fails(stub.ListTrials, request)
    assert (code, reason) == (INVALID, "INVALID_PAGE_TOKEN")


def test_page_token_bound_to_its_study(stub: Any) -> None:
    first_sid, other_sid = _sid(), _sid()
    for sid in (first_sid, other_sid):
        create(stub, sid, spec(float_param("x", 0, 1)))
        ask(stub, sid, count=3)
    first = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{first_sid}", page_size=1))
    assert first.next_page_token
    # The token works on its own study ...
    stub.ListTrials(
        ts.ListTrialsRequest(
            parent=f"studies/{first_sid}", page_size=1, page_token=first.next_page_token
        )
    )
    # ... and not on another one, nor on ListStudies.
    request = ts.ListTrialsRequest(
        parent=f"studies/{other_sid}", page_size=1, page_token=first.next_page_token
    )
    code, reason, _ = _fails(stub.ListTrials, request)
    assert (code, reason) == (INVALID, "INVALID_PAGE_TOKEN")
    code, reason, _ = _fails(
        stub.ListStudies, ts.ListStudiesRequest(page_token=first.next_page_token)
    )
    assert (code, reason) == (INVALID, "INVALID_PAGE_TOKEN")


def test_unspecified_state_filter(stub: Any) -> None:
    sid = _sid()
    create(stub, sid, spec(float_param("x", 0, 1)))
    request = ts.ListTrialsRequest(
        parent=f"studies/{sid}", states=[trial_pb2.TRIAL_STATE_UNSPECIFIED]
    )
    code, _, _ = _fails(stub.ListTrials, request)
    assert code == INVALID
