"""Early stopping end to end over real gRPC, on the memory store and on Redis: every rule's
decisions at reports, the life of a stopped trial, views, worker stops, optimal trials and
retries (see docs/protocol.md, Early stopping)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.core.early_stopping import (
    EarlyStopping,
    Hyperband,
    PercentileRule,
    PolicyRule,
    SuccessiveHalving,
    Threshold,
    hyperband_bracket,
)
from hyperdial_server.store._codec import dumps, spec_from_json, spec_to_json
from tests.e2e.protocol import (
    ask,
    create,
    error_reason,
    float_param,
    maximize,
    minimize,
    report,
    spec,
    tell,
)

P = study_pb2.EarlyStoppingPolicy
STOPPED = trial_pb2.TRIAL_STATE_STOPPED
RUNNING = trial_pb2.TRIAL_STATE_RUNNING
FULL, BASIC = trial_pb2.TRIAL_VIEW_FULL, trial_pb2.TRIAL_VIEW_BASIC


def _sid() -> str:
    return f"es-{uuid.uuid4().hex[:12]}"


def _study(stub: Any, policy: study_pb2.EarlyStoppingPolicy | None, **kw: Any) -> str:
    """A RANDOM study of one parameter under ``policy``; its id."""
    sid = _sid()
    if policy is not None:
        kw["early_stopping"] = policy
    create(stub, sid, spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM, **kw))
    return sid


def _names(stub: Any, sid: str, count: int) -> list[str]:
    return [t.name for t in ask(stub, sid, count=count)]


def _d(decision: trial_pb2.EarlyStoppingDecision) -> tuple[bool, str, int, int | None, int]:
    """(should_stop, rule, step, rung or None, compared_trials) of a decision."""
    rung = decision.rung if decision.HasField("rung") else None
    return decision.should_stop, decision.rule, decision.step, rung, decision.compared_trials


def _get(stub: Any, name: str, view: int = 0) -> trial_pb2.Trial:
    return stub.GetTrial(ts.GetTrialRequest(name=name, view=view)).trial


def _fails(call: Any, request: Any) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return error_reason(info.value)


# --- the rules ----------------------------------------------------------------------------------


def test_the_median_rule_stops_a_trial_worse_than_the_median_of_the_others(stub: Any) -> None:
    sid = _study(stub, P(median=study_pb2.MedianStoppingRule(min_trials=2)))
    t1, t2, t3, t4 = _names(stub, sid, 4)
    # Too few other trials at step 1 to decide (min_trials 2).
    assert _d(report(stub, t1, 1, loss=1.0).decision) == (False, "", 1, None, 0)
    assert _d(report(stub, t2, 1, loss=2.0).decision) == (False, "", 1, None, 0)
    # Median of the others at step 1: 1.5; 3.0 is worse.
    answer = report(stub, t3, 1, loss=3.0)
    assert _d(answer.decision) == (True, "median", 1, None, 2)
    assert "median 1.5 of 2 other trials at step 1" in answer.decision.message
    assert answer.trial.state == STOPPED and answer.trial.stop_decision == answer.decision
    # Every value reported at the step counts, the stopped trial's too: median of 1, 2, 3.
    answer = report(stub, t4, 1, loss=1.9)
    assert _d(answer.decision) == (False, "", 1, None, 3)
    assert answer.trial.state == RUNNING
    # The trial's best value so far is what is compared: 1.9 (at step 1) is not worse than
    # step 2's median, 2.75, though its value at step 2 is.
    report(stub, t1, 2, loss=2.5)
    report(stub, t2, 2, loss=3.0)
    assert _d(report(stub, t4, 2, loss=5.0).decision) == (False, "", 2, None, 2)


def test_the_median_rule_waits_for_its_warmup_and_decides_on_its_interval(stub: Any) -> None:
    rule = study_pb2.MedianStoppingRule(warmup_steps=2, interval_steps=2)  # steps 2, 4, 6...
    sid = _study(stub, P(median=rule))
    good, bad = _names(stub, sid, 2)
    for step in range(5):
        report(stub, good, step, loss=0.0)
    for step in (0, 1, 3):  # before the warm-up, then off the interval
        assert not report(stub, bad, step, loss=10.0).decision.should_stop
    answer = report(stub, bad, 4, loss=10.0)
    assert _d(answer.decision) == (True, "median", 4, None, 1)


def test_the_percentile_rule_stops_more_below_the_median(stub: Any) -> None:
    percentile = study_pb2.PercentileStoppingRule(percentile=25.0)
    sid = _study(stub, P(percentile=percentile))
    t1, t2, t3, t4 = _names(stub, sid, 4)
    assert _d(report(stub, t1, 0, loss=4.0).decision) == (False, "", 0, None, 0)  # no other
    assert _d(report(stub, t2, 0, loss=3.0).decision) == (False, "", 0, None, 1)
    assert _d(report(stub, t3, 0, loss=2.0).decision) == (False, "", 0, None, 2)
    # The 25th percentile of 2, 3, 4 is 2.5: 2.8 stops (the median, 3, would not stop it).
    answer = report(stub, t4, 0, loss=2.8)
    assert _d(answer.decision) == (True, "percentile", 0, None, 3)
    assert "25th percentile 2.5 of 3 other trials at step 0" in answer.decision.message


def test_successive_halving_keeps_the_best_of_each_rung(stub: Any) -> None:
    rule = study_pb2.SuccessiveHalvingRule(min_resource=2, reduction_factor=2, max_resource=16)
    sid = _study(stub, P(successive_halving=rule))  # rungs at steps 2, 4, 8
    t1, t2, t3, t4 = _names(stub, sid, 4)
    assert _d(report(stub, t1, 1, loss=1.0).decision) == (False, "", 1, None, 0)
    assert _d(report(stub, t1, 2, loss=1.0).decision) == (False, "", 2, 0, 1)
    # Rung 0 holds 2 values: the best max(1, 2 // 2) = 1 continue.
    answer = report(stub, t2, 2, loss=2.0)
    assert _d(answer.decision) == (True, "successive_halving", 2, 0, 2)
    assert "rung 0 has 1 better of 2" in answer.decision.message
    assert _d(report(stub, t3, 2, loss=0.5).decision) == (False, "", 2, 0, 3)
    # 4 values: the best 2 continue; 1.5 has 2 better.
    assert _d(report(stub, t4, 2, loss=1.5).decision) == (True, "successive_halving", 2, 0, 4)
    # Rung 1 (step 4): t1 first; t3's first report past it (step 5) records its value there.
    assert _d(report(stub, t1, 4, loss=0.9).decision) == (False, "", 4, 1, 1)
    assert _d(report(stub, t3, 5, loss=0.4).decision) == (False, "", 5, 1, 2)
    # No rung at max_resource or past it: reports there only continue.
    assert _d(report(stub, t3, 16, loss=9.0).decision)[:2] == (False, "")


def test_hyperband_spreads_trials_over_brackets_each_with_its_own_rungs(stub: Any) -> None:
    rule = study_pb2.HyperbandRule(min_resource=1, max_resource=9, reduction_factor=3)
    sid = _study(stub, P(hyperband=rule))
    core = Hyperband(max_resource=9, min_resource=1, reduction_factor=3)
    trials = ask(stub, sid, count=17)  # one cycle of the brackets' budgets (9 + 5 + 3)
    by_bracket: dict[int, list[str]] = {0: [], 1: [], 2: []}
    for t in trials:
        assert t.bracket == hyperband_bracket(core, t.number)
        assert _get(stub, t.name).bracket == t.bracket
        by_bracket[t.bracket].append(t.name)
    assert [len(by_bracket[b]) for b in range(3)] == [9, 5, 3]
    (a, b, c), (d,), (e,) = by_bracket[0][:3], by_bracket[1][:1], by_bracket[2][:1]
    # Bracket 0: rungs at steps 1 and 3.
    assert _d(report(stub, a, 1, loss=1.0).decision) == (False, "", 1, 0, 1)
    answer = report(stub, b, 1, loss=2.0)
    assert _d(answer.decision) == (True, "hyperband", 1, 0, 2)
    assert answer.trial.bracket == 0 and answer.trial.stop_decision.rule == "hyperband"
    assert _d(report(stub, c, 1, loss=0.5).decision) == (False, "", 1, 0, 3)
    # Bracket 1: its first rung is at step 3, and holds only bracket 1's values.
    assert _d(report(stub, d, 1, loss=9.0).decision) == (False, "", 1, None, 0)
    assert _d(report(stub, d, 3, loss=9.0).decision) == (False, "", 3, 0, 1)
    assert _d(report(stub, a, 3, loss=1.0).decision) == (False, "", 3, 1, 1)
    # Bracket 2 has no rung below max_resource: it never stops a trial.
    for step in (1, 3, 8):
        assert _d(report(stub, e, step, loss=100.0).decision) == (False, "", step, None, 0)


def test_the_threshold_rule_in_both_directions(stub: Any) -> None:
    rule = study_pb2.ThresholdStoppingRule(threshold=1.0, warmup_steps=2)
    sid = _study(stub, P(threshold=rule))
    (name,) = _names(stub, sid, 1)
    assert not report(stub, name, 0, loss=5.0).decision.should_stop  # warm-up
    assert not report(stub, name, 2, loss=0.5).decision.should_stop
    answer = report(stub, name, 3, loss=1.5)
    assert _d(answer.decision) == (True, "threshold", 3, None, 0)
    assert "threshold" in answer.decision.message
    # Maximised: a value below the threshold is worse.
    high = P(threshold=study_pb2.ThresholdStoppingRule(threshold=0.8), objective="acc")
    sid = _study(stub, high, objectives=[minimize(), maximize("acc")])
    keep, drop = _names(stub, sid, 2)
    assert not report(stub, keep, 0, acc=0.9).decision.should_stop
    assert _d(report(stub, drop, 0, acc=0.5, loss=3.0).decision) == (True, "threshold", 0, None, 0)


def test_the_patience_rule_stops_a_trial_that_no_longer_improves(stub: Any) -> None:
    rule = study_pb2.ThresholdStoppingRule(patience_steps=2, min_delta=0.05)
    sid = _study(stub, P(threshold=rule))
    (name,) = _names(stub, sid, 1)
    assert not report(stub, name, 0, loss=1.0).decision.should_stop
    assert not report(stub, name, 1, loss=0.9).decision.should_stop  # improves by 0.1
    assert not report(stub, name, 2, loss=0.87).decision.should_stop  # by 0.03: not enough
    answer = report(stub, name, 3, loss=0.86)
    assert _d(answer.decision) == (True, "patience", 3, None, 0)
    assert "patience 2" in answer.decision.message


def test_without_a_policy_reports_are_recorded_and_always_continue(stub: Any) -> None:
    sid = _study(stub, None, objectives=[minimize(), maximize("acc")])
    (name,) = _names(stub, sid, 1)
    for step in range(3):
        answer = report(stub, name, step, acc=0.1 * step)
        assert _d(answer.decision) == (False, "", step, None, 0)
    trial = _get(stub, name)
    assert trial.state == RUNNING and trial.measurement_count == 3 and trial.bracket == 0
    assert [dict(m.values) for m in trial.measurements] == [{"acc": 0.1 * s} for s in range(3)]
    assert not trial.HasField("stop_decision")


# --- a stopped trial ----------------------------------------------------------------------------


def test_a_stopped_trial_is_stopped_keeps_its_curve_and_is_done(stub: Any) -> None:
    threshold = P(threshold=study_pb2.ThresholdStoppingRule(threshold=1.0))
    sid = _study(stub, threshold, objectives=[minimize(), maximize("acc")])
    (name,) = [t.name for t in ask(stub, sid, client_id="w1")]
    curve = [(0, 0.8, 1.5), (2, 0.9, 2.25), (5, 1.2, 4.0)]  # (step, loss, seconds)
    answer: Any = None
    for step, loss, seconds in curve:
        request = ts.AddTrialMeasurementRequest(
            name=name,
            measurement=trial_pb2.Measurement(
                step=step,
                values={"loss": loss, "acc": 1 - loss},
                elapsed_duration=Duration(seconds=int(seconds), nanos=int(seconds % 1 * 1e9)),
            ),
        )
        answer = stub.AddTrialMeasurement(request)
    decision = answer.decision
    assert _d(decision) == (True, "threshold", 5, None, 0)
    # The answer's trial is the basic view: STOPPED, without its measurements.
    assert answer.trial.state == STOPPED and answer.trial.measurement_count == 3
    assert not answer.trial.measurements
    trial = _get(stub, name)  # FULL by default
    assert trial.state == STOPPED and trial.stop_decision == decision
    assert not trial.HasField("lease_expire_time") and trial.HasField("complete_time")
    # Its result is its last report.
    assert dict(trial.final_measurement.values) == {"loss": 1.2, "acc": 1 - 1.2}
    assert trial.final_measurement.step == 5
    assert [
        (m.step, m.values["loss"], m.elapsed_duration.ToNanoseconds()) for m in trial.measurements
    ] == [(s, loss, int(sec * 1e9)) for s, loss, sec in curve]
    assert len(_get(stub, name, BASIC).measurements) == 0
    assert _get(stub, name, BASIC).measurement_count == 3
    # It reports, heartbeats and completes no more.
    for call, request in [
        (
            stub.AddTrialMeasurement,
            ts.AddTrialMeasurementRequest(
                name=name, measurement=trial_pb2.Measurement(step=6, values={"loss": 0.1})
            ),
        ),
        (stub.HeartbeatTrial, ts.HeartbeatTrialRequest(name=name)),
        (
            stub.CompleteTrial,
            ts.CompleteTrialRequest(
                name=name, final_measurement=trial_pb2.Measurement(values={"loss": 0.1, "acc": 0.9})
            ),
        ),
    ]:
        code, reason, message = _fails(call, request)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRIAL_NOT_RUNNING"), message
    # The worker's own stop of it is answered as is: stopped by the rule.
    told = stub.CompleteTrial(ts.CompleteTrialRequest(name=name, stop=ts.TrialStop(reason="x")))
    assert told.trial.stop_decision == decision
    check = stub.CheckTrialEarlyStopping(ts.CheckTrialEarlyStoppingRequest(name=name))
    assert check.decision == decision
    # It is never handed out again, not even to the client that held it.
    (other,) = ask(stub, sid, client_id="w1")
    assert other.name != name and other.state == RUNNING
    # Listed with the STOPPED filter; its measurements in the full view only.
    parent = f"studies/{sid}"
    listed = stub.ListTrials(ts.ListTrialsRequest(parent=parent, states=[STOPPED])).trials
    assert [t.name for t in listed] == [name]
    assert listed[0].measurement_count == 3 and not listed[0].measurements
    full = stub.ListTrials(ts.ListTrialsRequest(parent=parent, states=[STOPPED], view=FULL))
    assert full.trials[0] == trial
    running = stub.ListTrials(ts.ListTrialsRequest(parent=parent, states=[RUNNING])).trials
    assert [t.name for t in running] == [other.name]


def test_check_early_stopping_answers_the_last_decision(stub: Any) -> None:
    sid = _study(stub, P(median=study_pb2.MedianStoppingRule()))
    a, b = _names(stub, sid, 2)

    def check(name: str) -> tuple[bool, str, int, int | None, int]:
        request = ts.CheckTrialEarlyStoppingRequest(name=name)
        return _d(stub.CheckTrialEarlyStopping(request).decision)

    assert check(a) == (False, "", 0, None, 0)  # nothing reported yet
    report(stub, a, 3, loss=1.0)
    assert check(a) == (False, "", 3, None, 0)
    stopped = report(stub, b, 3, loss=2.0).decision
    assert check(b) == _d(stopped) == (True, "median", 3, None, 1)
    # Read-only: checking changes nothing.
    assert _get(stub, b).measurement_count == 1 and _get(stub, a).state == RUNNING


def test_a_report_renews_the_lease(stub: Any) -> None:
    sid = _study(stub, None, lease_timeout=Duration(seconds=600))
    (trial,) = ask(stub, sid)
    renewed = report(stub, trial.name, 1, loss=1.0).trial
    assert renewed.lease_expire_time.ToNanoseconds() > trial.lease_expire_time.ToNanoseconds()


# --- worker stops -------------------------------------------------------------------------------


def test_a_worker_stops_its_trial(stub: Any) -> None:
    sid = _study(stub, None)
    curve, empty = _names(stub, sid, 2)
    report(stub, curve, 1, loss=0.5)
    report(stub, curve, 2, loss=0.4)
    stop = ts.CompleteTrialRequest(name=curve, stop=ts.TrialStop(reason="plateau"))
    trial = stub.CompleteTrial(stop).trial
    assert trial.state == STOPPED and dict(trial.final_measurement.values) == {"loss": 0.4}
    decision = trial.stop_decision
    assert (decision.should_stop, decision.rule, decision.step) == (True, "worker", 2)
    assert "plateau" in decision.message
    assert _get(stub, curve).stop_decision == decision
    # A trial that reported nothing stops without a result.
    nothing = stub.CompleteTrial(ts.CompleteTrialRequest(name=empty, stop=ts.TrialStop())).trial
    assert nothing.state == STOPPED and not nothing.HasField("final_measurement")
    assert nothing.stop_decision.rule == "worker"


def test_list_optimal_trials_ranks_stopped_trials_only_when_the_policy_says(stub: Any) -> None:
    for rank in (False, True):
        patience = study_pb2.ThresholdStoppingRule(patience_steps=1)
        sid = _study(stub, P(threshold=patience, rank_stopped_trials=rank))
        done, by_rule, by_worker = _names(stub, sid, 3)
        tell(stub, done, loss=0.5)
        report(stub, by_rule, 0, loss=0.2)
        assert report(stub, by_rule, 1, loss=0.3).decision.rule == "patience"
        report(stub, by_worker, 0, loss=0.1)
        stub.CompleteTrial(ts.CompleteTrialRequest(name=by_worker, stop=ts.TrialStop()))
        optimal = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}"))
        assert [t.name for t in optimal.trials] == ([by_worker] if rank else [done]), rank


def test_pareto_fronts_rank_stopped_trials_only_when_the_policy_says(stub: Any) -> None:
    objectives = [minimize(), maximize("acc")]
    for rank in (False, True):
        policy = P(
            threshold=study_pb2.ThresholdStoppingRule(threshold=10.0), rank_stopped_trials=rank
        )
        sid = _study(stub, policy, objectives=objectives)
        done, better, partial = _names(stub, sid, 3)
        tell(stub, done, loss=0.5, acc=0.5)
        report(stub, better, 0, loss=0.4, acc=0.6)  # dominates done
        report(stub, partial, 0, loss=0.1)  # no acc: on no front
        for name in (better, partial):
            stub.CompleteTrial(ts.CompleteTrialRequest(name=name, stop=ts.TrialStop()))
        optimal = stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent=f"studies/{sid}"))
        assert [t.name for t in optimal.trials] == ([better] if rank else [done]), rank


# --- retries ------------------------------------------------------------------------------------


def test_reports_and_stops_are_retried_with_their_request_id(stub: Any) -> None:
    sid = _study(stub, P(median=study_pb2.MedianStoppingRule()))
    a, b, c = _names(stub, sid, 3)
    first = report(stub, a, 1, request_id="r-a1", loss=1.0)
    assert report(stub, a, 1, request_id="r-a1", loss=1.0).decision == first.decision
    # The report that stops b, retried after it stopped: the same answer, not TRIAL_NOT_RUNNING.
    stopped = report(stub, b, 1, request_id="r-b1", loss=2.0)
    assert stopped.decision.should_stop
    again = report(stub, b, 1, request_id="r-b1", loss=2.0)
    assert again.decision == stopped.decision and again.trial.state == STOPPED
    # The same id with another payload is another call.
    with pytest.raises(grpc.RpcError) as info:
        report(stub, b, 2, request_id="r-b1", loss=2.0)
    code, reason, _ = error_reason(info.value)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_MISMATCH")
    assert _get(stub, b).measurement_count == 1 and _get(stub, a).measurement_count == 1
    # A worker stop with an id answers its first answer again.
    stop = ts.CompleteTrialRequest(name=c, stop=ts.TrialStop(reason="done"), request_id="s-c")
    told = stub.CompleteTrial(stop).trial
    assert stub.CompleteTrial(stop).trial == told and told.state == STOPPED


# --- the policy as stored -----------------------------------------------------------------------


def test_get_study_shows_the_policy_with_its_defaults_resolved(stub: Any) -> None:
    sid = _study(
        stub,
        P(successive_halving=study_pb2.SuccessiveHalvingRule(min_early_stopping_rate=1)),
        objectives=[maximize("acc"), minimize()],
        seed=3,
    )
    got = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.spec
    assert got.early_stopping == P(
        successive_halving=study_pb2.SuccessiveHalvingRule(
            min_resource=1, reduction_factor=3, min_early_stopping_rate=1, max_resource=0
        ),
        objective="acc",  # the first objective
        max_measurements_per_trial=100,
    )
    # The spec read back creates the same study again.
    again = _sid()
    assert create(stub, again, got).spec == got
    # Each rule reads back as it was resolved.
    for policy in [
        P(median=study_pb2.MedianStoppingRule(warmup_steps=4), rank_stopped_trials=True),
        P(percentile=study_pb2.PercentileStoppingRule(percentile=10, min_trials=5)),
        P(hyperband=study_pb2.HyperbandRule(max_resource=81), objective="loss"),
        P(threshold=study_pb2.ThresholdStoppingRule(threshold=0.0, patience_steps=3)),
    ]:
        sid = _study(stub, policy)
        stored = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.spec.early_stopping
        assert stored.WhichOneof("rule") == policy.WhichOneof("rule")
        assert stored.objective == "loss" and stored.max_measurements_per_trial == 100
        assert stored.rank_stopped_trials == policy.rank_stopped_trials
    assert stored.threshold.HasField("threshold") and stored.threshold.threshold == 0.0
    plain = _study(stub, None)
    assert not stub.GetStudy(ts.GetStudyRequest(name=f"studies/{plain}")).study.spec.HasField(
        "early_stopping"
    )


def test_a_spec_stored_before_early_stopping_reads_back_without_a_policy() -> None:
    """The stored form (``store/_codec.py``): a record written before policies existed reads as
    a study without one, a study without one is stored as before, and every rule round-trips
    exactly (the Redis store keeps specs as this JSON)."""
    old = {
        "parameters": [
            {"name": "x", "domain": {"kind": "float", "low": 0.0, "high": 1.0, "log": False}}
        ],
        "objectives": [{"name": "loss", "maximize": False}],
        "algorithm": "RANDOM",
        "seed": 1,
        "max_trials": None,
        "grid_resolution": None,
        "initial_trials": None,
        "lease_timeout": 600.0,
    }
    plain = spec_from_json(old)
    assert plain.early_stopping is None and spec_to_json(plain) == old
    rules: list[PolicyRule] = [
        PercentileRule(warmup_steps=2, min_trials=3, interval_steps=4, median=True),
        PercentileRule(percentile=12.5),
        SuccessiveHalving(min_resource=2, reduction_factor=4, min_early_stopping_rate=1),
        SuccessiveHalving(max_resource=100),
        Hyperband(max_resource=81, min_resource=3, reduction_factor=3),
        Threshold(threshold=-0.0, warmup_steps=1, patience_steps=5, min_delta=1e-300),
        Threshold(patience_steps=1),
    ]
    for rule in rules:
        policy = EarlyStopping(rule, "loss", maximize=True, max_measurements=7)
        with_policy = dataclasses.replace(plain, early_stopping=policy)
        back = spec_from_json(json.loads(dumps(spec_to_json(with_policy))))
        assert back == with_policy and back.early_stopping == policy
