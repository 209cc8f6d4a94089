"""Early stopping's bad inputs over real gRPC, on the memory store and on Redis: every field of
``StudySpec.early_stopping``, of a report and of a worker stop is refused with its precise code,
stable reason and the field named in ``BadRequest``, and nothing is stored."""

from __future__ import annotations

import math
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import (
    ask,
    create,
    error_field,
    error_reason,
    float_param,
    maximize,
    minimize,
    report,
    spec,
    tell,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
#: ``limits.MAX_STEP``: the largest step of a report and of a policy's step counts.
MAX_STEP = 2**53
ES = "spec.early_stopping"


def _sid() -> str:
    return f"esbad-{uuid.uuid4().hex[:12]}"


def _fails(call: Any, request: Any) -> tuple[grpc.StatusCode, str, str, str]:
    """(code, reason, field, message) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    code, reason, message = error_reason(info.value)
    return code, reason, error_field(info.value), message


P = study_pb2.EarlyStoppingPolicy
MEDIAN = study_pb2.MedianStoppingRule
PERCENTILE = study_pb2.PercentileStoppingRule
HALVING = study_pb2.SuccessiveHalvingRule
HYPERBAND = study_pb2.HyperbandRule
THRESHOLD = study_pb2.ThresholdStoppingRule

#: Sixteen objectives of 128-character names: a measurement of them takes over 2 KiB.
LONG_OBJECTIVES = [minimize(f"{i:02d}" + "o" * 126) for i in range(16)]

# (case id, policy, objectives or None, field, words the message must contain)
BAD_POLICIES: list[tuple[str, study_pb2.EarlyStoppingPolicy, Any, str, str]] = [
    ("no-rule", P(), None, f"{ES}.rule", "exactly one of median"),
    ("no-rule-objective-only", P(objective="loss"), None, f"{ES}.rule", "has no rule"),
    (
        "unknown-objective",
        P(median=MEDIAN(), objective="acc"),
        None,
        f"{ES}.objective",
        "'acc' is not an objective",
    ),
    (
        "max-measurements-negative",
        P(median=MEDIAN(), max_measurements_per_trial=-1),
        None,
        f"{ES}.max_measurements_per_trial",
        "between 1 and 10000",
    ),
    (
        "max-measurements-over-limit",
        P(median=MEDIAN(), max_measurements_per_trial=10_001),
        None,
        f"{ES}.max_measurements_per_trial",
        "between 1 and 10000",
    ),
    (
        "max-measurements-too-big-to-read-back",
        P(median=MEDIAN(), max_measurements_per_trial=10_000),
        LONG_OBJECTIVES,
        f"{ES}.max_measurements_per_trial",
        "keep at most",
    ),
    # median
    (
        "median-warmup-negative",
        P(median=MEDIAN(warmup_steps=-1)),
        None,
        f"{ES}.median.warmup_steps",
        "warmup_steps must be 0 to",
    ),
    (
        "median-warmup-past-max-step",
        P(median=MEDIAN(warmup_steps=MAX_STEP + 1)),
        None,
        f"{ES}.median.warmup_steps",
        str(MAX_STEP),
    ),
    (
        "median-min-trials-negative",
        P(median=MEDIAN(min_trials=-1)),
        None,
        f"{ES}.median.min_trials",
        "0 or more",
    ),
    (
        "median-interval-negative",
        P(median=MEDIAN(interval_steps=-2)),
        None,
        f"{ES}.median.interval_steps",
        "interval_steps must be 0 to",
    ),
    # percentile
    *[
        (
            f"percentile-{label}",
            P(percentile=PERCENTILE(percentile=value)),
            None,
            f"{ES}.percentile.percentile",
            "strictly between 0 and 100",
        )
        for label, value in [
            ("zero", 0.0),
            ("hundred", 100.0),
            ("negative", -5.0),
            ("over", 150.0),
            ("nan", math.nan),
        ]
    ],
    (
        "percentile-warmup-negative",
        P(percentile=PERCENTILE(percentile=25, warmup_steps=-1)),
        None,
        f"{ES}.percentile.warmup_steps",
        "warmup_steps",
    ),
    (
        "percentile-min-trials-negative",
        P(percentile=PERCENTILE(percentile=25, min_trials=-3)),
        None,
        f"{ES}.percentile.min_trials",
        "0 or more",
    ),
    (
        "percentile-interval-negative",
        P(percentile=PERCENTILE(percentile=25, interval_steps=-1)),
        None,
        f"{ES}.percentile.interval_steps",
        "interval_steps",
    ),
    # successive halving
    (
        "halving-min-resource-negative",
        P(successive_halving=HALVING(min_resource=-1)),
        None,
        f"{ES}.successive_halving.min_resource",
        "min_resource must be 0 to",
    ),
    (
        "halving-reduction-factor-one",
        P(successive_halving=HALVING(reduction_factor=1)),
        None,
        f"{ES}.successive_halving.reduction_factor",
        "between 2 and 100",
    ),
    (
        "halving-reduction-factor-over",
        P(successive_halving=HALVING(reduction_factor=101)),
        None,
        f"{ES}.successive_halving.reduction_factor",
        "between 2 and 100",
    ),
    (
        "halving-reduction-factor-negative",
        P(successive_halving=HALVING(reduction_factor=-3)),
        None,
        f"{ES}.successive_halving.reduction_factor",
        "between 2 and 100",
    ),
    (
        "halving-rate-negative",
        P(successive_halving=HALVING(min_early_stopping_rate=-1)),
        None,
        f"{ES}.successive_halving.min_early_stopping_rate",
        "between 0 and 30",
    ),
    (
        "halving-rate-over",
        P(successive_halving=HALVING(min_early_stopping_rate=31)),
        None,
        f"{ES}.successive_halving.min_early_stopping_rate",
        "between 0 and 30",
    ),
    (
        "halving-first-rung-unreachable",
        P(
            successive_halving=HALVING(
                min_resource=10**6, reduction_factor=100, min_early_stopping_rate=30
            )
        ),
        None,
        f"{ES}.successive_halving.min_early_stopping_rate",
        "no trial would ever reach it",
    ),
    (
        "halving-max-resource-negative",
        P(successive_halving=HALVING(max_resource=-1)),
        None,
        f"{ES}.successive_halving.max_resource",
        "max_resource must be 0 to",
    ),
    (
        "halving-max-resource-at-min-resource",
        P(successive_halving=HALVING(min_resource=4, max_resource=4)),
        None,
        f"{ES}.successive_halving.max_resource",
        "greater than the first rung",
    ),
    (
        "halving-max-resource-below-first-rung",
        P(successive_halving=HALVING(min_early_stopping_rate=2, max_resource=9)),
        None,
        f"{ES}.successive_halving.max_resource",
        "= 9",
    ),
    # Hyperband
    (
        "hyperband-no-max-resource",
        P(hyperband=HYPERBAND()),
        None,
        f"{ES}.hyperband.max_resource",
        "needs max_resource",
    ),
    (
        "hyperband-max-resource-negative",
        P(hyperband=HYPERBAND(max_resource=-9)),
        None,
        f"{ES}.hyperband.max_resource",
        "max_resource must be 0 to",
    ),
    (
        "hyperband-max-resource-below-one-rung",
        P(hyperband=HYPERBAND(min_resource=2, max_resource=5)),
        None,
        f"{ES}.hyperband.max_resource",
        "at least min_resource * reduction_factor",
    ),
    (
        "hyperband-min-resource-negative",
        P(hyperband=HYPERBAND(min_resource=-1, max_resource=27)),
        None,
        f"{ES}.hyperband.min_resource",
        "min_resource must be 0 to",
    ),
    (
        "hyperband-reduction-factor-one",
        P(hyperband=HYPERBAND(max_resource=27, reduction_factor=1)),
        None,
        f"{ES}.hyperband.reduction_factor",
        "between 2 and 100",
    ),
    (
        "hyperband-reduction-factor-over",
        P(hyperband=HYPERBAND(max_resource=10**6, reduction_factor=101)),
        None,
        f"{ES}.hyperband.reduction_factor",
        "between 2 and 100",
    ),
    # threshold and patience
    (
        "threshold-neither",
        P(threshold=THRESHOLD(min_delta=0.1)),
        None,
        f"{ES}.threshold.threshold",
        "needs threshold, patience_steps > 0, or both",
    ),
    (
        "threshold-nan",
        P(threshold=THRESHOLD(threshold=math.nan)),
        None,
        f"{ES}.threshold.threshold",
        "finite",
    ),
    (
        "threshold-inf",
        P(threshold=THRESHOLD(threshold=-math.inf)),
        None,
        f"{ES}.threshold.threshold",
        "finite",
    ),
    (
        "threshold-patience-negative",
        P(threshold=THRESHOLD(patience_steps=-1)),
        None,
        f"{ES}.threshold.patience_steps",
        "patience_steps must be 0 to",
    ),
    (
        "threshold-warmup-negative",
        P(threshold=THRESHOLD(threshold=1.0, warmup_steps=-1)),
        None,
        f"{ES}.threshold.warmup_steps",
        "warmup_steps",
    ),
    (
        "threshold-min-delta-negative",
        P(threshold=THRESHOLD(patience_steps=3, min_delta=-0.1)),
        None,
        f"{ES}.threshold.min_delta",
        "0 or more",
    ),
    (
        "threshold-min-delta-nan",
        P(threshold=THRESHOLD(patience_steps=3, min_delta=math.nan)),
        None,
        f"{ES}.threshold.min_delta",
        "finite",
    ),
    (
        "threshold-min-delta-inf",
        P(threshold=THRESHOLD(patience_steps=3, min_delta=math.inf)),
        None,
        f"{ES}.threshold.min_delta",
        "finite",
    ),
]


@pytest.mark.parametrize("case", BAD_POLICIES, ids=[c[0] for c in BAD_POLICIES])
def test_a_bad_policy_is_refused_naming_its_field_and_nothing_is_stored(
    stub: Any, case: tuple[str, study_pb2.EarlyStoppingPolicy, Any, str, str]
) -> None:
    _, policy, objectives, field, words = case
    sid = _sid()
    bad = spec(float_param("x", 0, 1), objectives=objectives, early_stopping=policy)
    code, reason, got_field, message = _fails(
        stub.CreateStudy, ts.CreateStudyRequest(study_id=sid, spec=bad)
    )
    assert (code, reason, got_field) == (INVALID, "INVALID_EARLY_STOPPING", field), message
    assert words in message
    with pytest.raises(grpc.RpcError) as absent:
        stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}"))
    assert error_reason(absent.value)[:2] == (grpc.StatusCode.NOT_FOUND, "STUDY_NOT_FOUND")


def test_the_bounds_themselves_are_accepted(stub: Any) -> None:
    """The edges of every range are valid policies (the checks are not off by one)."""
    edges = [
        P(
            median=MEDIAN(warmup_steps=MAX_STEP, interval_steps=MAX_STEP),
            max_measurements_per_trial=1,
        ),
        P(percentile=PERCENTILE(percentile=1e-9), max_measurements_per_trial=10_000),
        P(percentile=PERCENTILE(percentile=99.999)),
        P(
            successive_halving=HALVING(
                reduction_factor=2, min_early_stopping_rate=30, min_resource=1
            )
        ),
        P(successive_halving=HALVING(min_resource=3, reduction_factor=100, max_resource=4)),
        P(hyperband=HYPERBAND(min_resource=2, max_resource=6, reduction_factor=3)),
        P(hyperband=HYPERBAND(max_resource=MAX_STEP, reduction_factor=2)),
        P(threshold=THRESHOLD(threshold=-1e300)),
        P(threshold=THRESHOLD(patience_steps=1)),
    ]
    for policy in edges:
        create(stub, _sid(), spec(float_param("x", 0, 1), early_stopping=policy))


# --- reports ------------------------------------------------------------------------------------

WATCHED = P(median=MEDIAN(), objective="loss")


def _running(stub: Any, policy: study_pb2.EarlyStoppingPolicy | None = WATCHED) -> str:
    """A study of objectives loss (watched when ``policy``) and acc, with trial 1 RUNNING."""
    sid = _sid()
    kw = {"early_stopping": policy} if policy is not None else {}
    create(stub, sid, spec(float_param("x", 0, 1), objectives=[minimize(), maximize("acc")], **kw))
    (trial,) = ask(stub, sid)
    return str(trial.name)


def _measurement(step: int = 1, **kw: Any) -> trial_pb2.Measurement:
    return trial_pb2.Measurement(step=step, **kw)


# (case id, measurement or None (absent), field, words)
BAD_REPORTS: list[tuple[str, trial_pb2.Measurement | None, str, str]] = [
    ("no-measurement", None, "measurement", "measurement is missing"),
    ("negative-step", _measurement(-1, values={"loss": 1.0}), "measurement.step", "0 to"),
    (
        "step-past-max",
        _measurement(MAX_STEP + 1, values={"loss": 1.0}),
        "measurement.step",
        str(MAX_STEP),
    ),
    ("no-values", _measurement(values={}), "measurement.values[loss]", "the one the study's"),
    (
        "watched-value-missing",
        _measurement(values={"acc": 0.5}),
        "measurement.values[loss]",
        "no value for objective 'loss'",
    ),
    (
        "unknown-objective",
        _measurement(values={"loss": 1.0, "f1": 0.5}),
        "measurement.values[f1]",
        "'f1' is not an objective",
    ),
    ("nan", _measurement(values={"loss": math.nan}), "measurement.values[loss]", "finite"),
    ("inf", _measurement(values={"loss": math.inf}), "measurement.values[loss]", "finite"),
    (
        "other-objective-inf",
        _measurement(values={"loss": 1.0, "acc": -math.inf}),
        "measurement.values[acc]",
        "finite",
    ),
    (
        "negative-elapsed",
        _measurement(values={"loss": 1.0}, elapsed_duration=Duration(seconds=-1)),
        "measurement.elapsed_duration",
        "0 or more",
    ),
    (
        "negative-nanos",
        _measurement(values={"loss": 1.0}, elapsed_duration=Duration(seconds=1, nanos=-5)),
        "measurement.elapsed_duration",
        "valid duration",
    ),
    (
        "nanos-over-a-second",
        _measurement(values={"loss": 1.0}, elapsed_duration=Duration(nanos=1_000_000_000)),
        "measurement.elapsed_duration",
        "valid duration",
    ),
]


@pytest.mark.parametrize("case", BAD_REPORTS, ids=[c[0] for c in BAD_REPORTS])
def test_a_bad_report_is_refused_and_records_nothing(
    stub: Any, case: tuple[str, trial_pb2.Measurement | None, str, str]
) -> None:
    _, measurement, field, words = case
    name = _running(stub)
    request = ts.AddTrialMeasurementRequest(name=name)
    if measurement is not None:
        request.measurement.CopyFrom(measurement)
    code, reason, got_field, message = _fails(stub.AddTrialMeasurement, request)
    assert (code, reason, got_field) == (INVALID, "INVALID_MEASUREMENT", field), message
    assert words in message
    trial = stub.GetTrial(ts.GetTrialRequest(name=name)).trial
    assert trial.state == trial_pb2.TRIAL_STATE_RUNNING
    assert trial.measurement_count == 0 and not trial.measurements


def test_a_report_without_a_policy_needs_one_value_of_any_objective(stub: Any) -> None:
    name = _running(stub, policy=None)
    request = ts.AddTrialMeasurementRequest(name=name, measurement=_measurement(values={}))
    code, reason, field, message = _fails(stub.AddTrialMeasurement, request)
    assert (code, reason, field) == (INVALID, "INVALID_MEASUREMENT", "measurement.values")
    assert "at least one objective" in message
    # Any one objective will do: here the second.
    answer = report(stub, name, 1, acc=0.5)
    assert not answer.decision.should_stop and answer.trial.measurement_count == 1


def test_report_names_request_ids_and_unknown_trials(stub: Any) -> None:
    name = _running(stub)
    study = name.rsplit("/trials/", 1)[0]
    good = _measurement(values={"loss": 1.0})
    cases = [
        (
            ts.AddTrialMeasurementRequest(name="studies/x/trials/0", measurement=good),
            INVALID,
            "INVALID_NAME",
        ),
        (ts.AddTrialMeasurementRequest(name=study, measurement=good), INVALID, "INVALID_NAME"),
        (
            ts.AddTrialMeasurementRequest(name=name, measurement=good, request_id="r" * 129),
            INVALID,
            "INVALID_ARGUMENT",
        ),
        (
            ts.AddTrialMeasurementRequest(name=f"{study}/trials/9", measurement=good),
            grpc.StatusCode.NOT_FOUND,
            "TRIAL_NOT_FOUND",
        ),
        (
            ts.AddTrialMeasurementRequest(name=f"studies/{_sid()}/trials/1", measurement=good),
            grpc.StatusCode.NOT_FOUND,
            "STUDY_NOT_FOUND",
        ),
    ]
    for request, code, reason in cases:
        got = _fails(stub.AddTrialMeasurement, request)
        assert got[:2] == (code, reason), got
    for request, code, reason in [
        (ts.CheckTrialEarlyStoppingRequest(name="studies/x/trials/-1"), INVALID, "INVALID_NAME"),
        (
            ts.CheckTrialEarlyStoppingRequest(name=f"{study}/trials/9"),
            grpc.StatusCode.NOT_FOUND,
            "TRIAL_NOT_FOUND",
        ),
        (
            ts.CheckTrialEarlyStoppingRequest(name=f"studies/{_sid()}/trials/1"),
            grpc.StatusCode.NOT_FOUND,
            "STUDY_NOT_FOUND",
        ),
    ]:
        got = _fails(stub.CheckTrialEarlyStopping, request)
        assert got[:2] == (code, reason), got
    assert stub.GetTrial(ts.GetTrialRequest(name=name)).trial.measurement_count == 0


def test_a_step_below_the_last_or_at_it_with_other_values_is_refused(stub: Any) -> None:
    name = _running(stub)
    first = report(stub, name, 3, loss=1.0)
    for step, values in [(2, {"loss": 1.0}), (0, {"loss": 0.5}), (3, {"loss": 0.9})]:
        request = ts.AddTrialMeasurementRequest(
            name=name, measurement=_measurement(step, values=values)
        )
        code, reason, _, message = _fails(stub.AddTrialMeasurement, request)
        assert (code, reason) == (PRECONDITION, "STEP_NOT_INCREASING"), message
    # The very same report again is answered the same, and recorded once.
    again = report(stub, name, 3, loss=1.0)
    assert again.decision == first.decision
    trial = stub.GetTrial(ts.GetTrialRequest(name=name)).trial
    assert trial.measurement_count == 1
    assert [(m.step, dict(m.values)) for m in trial.measurements] == [(3, {"loss": 1.0})]
    # A later step is taken.
    assert report(stub, name, 4, loss=0.8).trial.measurement_count == 2


def test_reports_on_a_trial_that_is_not_running(stub: Any) -> None:
    name = _running(stub)
    study = name.rsplit("/trials/", 1)[0].split("/", 1)[1]
    tell(stub, name, loss=1.0, acc=0.5)
    request = ts.AddTrialMeasurementRequest(
        name=name, measurement=_measurement(values={"loss": 1.0})
    )
    code, reason, _, message = _fails(stub.AddTrialMeasurement, request)
    assert (code, reason) == (PRECONDITION, "TRIAL_NOT_RUNNING"), message
    assert "COMPLETED" in message
    # Nor a WAITING (enqueued) one.
    waiting = stub.CreateTrial(
        ts.CreateTrialRequest(
            parent=f"studies/{study}",
            parameters={"x": study_pb2.ParameterValue(double_value=0.5)},
        )
    ).trial
    request = ts.AddTrialMeasurementRequest(
        name=waiting.name, measurement=_measurement(values={"loss": 1.0})
    )
    code, reason, _, _ = _fails(stub.AddTrialMeasurement, request)
    assert (code, reason) == (PRECONDITION, "TRIAL_NOT_RUNNING")


def test_worker_stop_bad_inputs(stub: Any) -> None:
    name = _running(stub)
    request = ts.CompleteTrialRequest(name=name, stop=ts.TrialStop(reason="r" * 4097))
    code, reason, field, message = _fails(stub.CompleteTrial, request)
    assert (code, reason, field) == (INVALID, "INVALID_ARGUMENT", "stop.reason")
    assert "4096" in message
    assert stub.GetTrial(ts.GetTrialRequest(name=name)).trial.state == trial_pb2.TRIAL_STATE_RUNNING
    # No outcome at all names the three.
    code, _, field, message = _fails(stub.CompleteTrial, ts.CompleteTrialRequest(name=name))
    assert (code, field) == (INVALID, "outcome") and "stop" in message


@pytest.mark.parametrize("view", [3, -1, 99])
def test_an_unknown_view_is_refused(stub: Any, view: int) -> None:
    name = _running(stub)
    parent = name.rsplit("/trials/", 1)[0]
    for call, request in [
        (stub.GetTrial, ts.GetTrialRequest(name=name, view=view)),
        (stub.ListTrials, ts.ListTrialsRequest(parent=parent, view=view)),
    ]:
        code, reason, field, message = _fails(call, request)
        assert (code, reason, field) == (INVALID, "INVALID_ARGUMENT", "view"), message
        assert "TRIAL_VIEW_BASIC" in message
