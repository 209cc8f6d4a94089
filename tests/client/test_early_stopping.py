"""Early stopping through the blocking client, against real servers on both stores: policies,
reports and their decisions, ``TrialStopped`` in ``with study.trial()`` and in ``optimize``,
the lease keeper, stopped trials and their curves."""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

import hyperdial as hd
from tests.client._support import CuttingProxy, new_id

SPACE = [hd.Float("x", 0.0, 1.0)]
TWO = [hd.Objective("loss"), hd.Objective("acc", "maximize")]


@pytest.fixture
def client(store_target: str) -> Iterator[hd.Client]:
    with hd.Client(store_target) as c:
        yield c


def _study(
    client: hd.Client,
    policy: hd.EarlyStopping | hd.StoppingRule | None,
    *,
    objectives: list[hd.Objective] | None = None,
    seed: int | None = None,
    lease_timeout: float | None = None,
) -> hd.Study:
    """A random study of one parameter under ``policy``."""
    return client.create_study(
        new_id("es"),
        SPACE,
        objectives or "minimize",
        algorithm="random",
        seed=seed,
        lease_timeout=lease_timeout,
        early_stopping=policy,
    )


def _d(decision: hd.Decision) -> tuple[bool, str, int, int | None, int]:
    """A decision without its message (for people)."""
    return (
        decision.should_stop,
        decision.rule,
        decision.step,
        decision.rung,
        decision.compared_trials,
    )


# -- policies ------------------------------------------------------------------------------------


def test_each_rule_reads_back_with_the_defaults_resolved(client: hd.Client) -> None:
    cases: list[tuple[hd.StoppingRule, hd.StoppingRule]] = [
        (hd.MedianStopping(warmup_steps=5), hd.MedianStopping(5, 1, 1)),
        (hd.PercentileStopping(25.0, min_trials=3), hd.PercentileStopping(25.0, 0, 3, 1)),
        (hd.SuccessiveHalving(min_early_stopping_rate=1), hd.SuccessiveHalving(1, 3, 1, None)),
        (hd.SuccessiveHalving(max_resource=27), hd.SuccessiveHalving(max_resource=27)),
        (hd.Hyperband(max_resource=81), hd.Hyperband(81, 1, 3)),
        (hd.ThresholdStopping(threshold=0.0), hd.ThresholdStopping(0.0)),
        (
            hd.ThresholdStopping(patience_steps=3, min_delta=0.01),
            hd.ThresholdStopping(None, 0, 3, 0.01),
        ),
    ]
    for given, resolved in cases:
        study = _study(client, given)
        expected = hd.EarlyStopping(resolved, objective="value", max_measurements_per_trial=100)
        assert study.early_stopping == expected, given
        assert client.get_study(study.study_id).early_stopping == expected
    assert _study(client, None).early_stopping is None


def test_policy_wide_options(client: hd.Client) -> None:
    policy = hd.EarlyStopping(
        hd.Hyperband(max_resource=27, min_resource=3),
        objective="acc",
        max_measurements_per_trial=7,
        rank_stopped_trials=True,
    )
    study = _study(client, policy, objectives=TWO)
    assert study.early_stopping == policy
    assert study.spec.early_stopping.WhichOneof("rule") == "hyperband"
    # Without an objective, the study's first.
    first = _study(client, hd.EarlyStopping(hd.MedianStopping()), objectives=TWO)
    assert first.early_stopping is not None and first.early_stopping.objective == "loss"


def test_invalid_policies(client: hd.Client) -> None:
    with pytest.raises(hd.InvalidArgumentError) as info:
        _study(client, hd.PercentileStopping(percentile=150.0))
    assert info.value.reason == "INVALID_EARLY_STOPPING"
    assert info.value.metadata["field"] == "spec.early_stopping.percentile.percentile"
    with pytest.raises(hd.InvalidArgumentError) as info:
        _study(client, hd.EarlyStopping(hd.MedianStopping(), objective="nope"))
    assert info.value.reason == "INVALID_EARLY_STOPPING"
    # Refused before calling: the wrong types.
    with pytest.raises(TypeError, match="early_stopping"):
        _study(client, "median")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="warmup_steps"):
        _study(client, hd.MedianStopping(warmup_steps=1.5))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="threshold"):
        _study(client, hd.ThresholdStopping(threshold="high"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rule"):
        _study(client, hd.EarlyStopping(None))


# -- reports and decisions -----------------------------------------------------------------------


def test_reports_answer_decisions_and_a_stop_ends_the_trial(client: hd.Client) -> None:
    study = _study(client, hd.MedianStopping())
    a, b = study.ask(2)
    keeper = client._leases
    assert keeper is not None
    decision = a.report(1.0, 1)
    assert _d(decision) == (False, "", 1, None, 0)
    assert not a.should_stop and a.last_decision == decision
    stop = b.report(2.0, 1, elapsed=timedelta(seconds=1.5))
    assert _d(stop) == (True, "median", 1, None, 1)
    assert "median" in stop.message
    assert b.should_stop and b.last_decision == stop
    assert b.state == "RUNNING"  # a snapshot: the service has it STOPPED
    assert keeper.open_trials() == [a.name]  # a stopped trial is renewed no more

    stored = study.get_trial(b.number)
    assert stored.state == hd.TrialState.STOPPED and stored.stop_decision == stop
    assert stored.values == {"value": 2.0} and stored.value == 2.0
    assert stored.measurements == (hd.Measurement(1, {"value": 2.0}, 1.5),)
    assert stored.measurement_count == 1 and stored.last_step == 1
    assert stored.complete_time is not None and stored.lease_expire_time is None
    assert stored.should_stop and stored.last_decision == stop

    # A stopped trial takes no more reports; a worker stop of it answers it as it is.
    with pytest.raises(hd.FailedPreconditionError) as info:
        b.report(1.5, 2)
    assert info.value.reason == "TRIAL_NOT_RUNNING" and info.value.metadata["state"] == "STOPPED"
    again = b.stop("too late")
    assert again.state == "STOPPED" and again.stop_decision == stop
    assert b.check_stopping() == stop

    # By number, and as a mapping; check_stopping answers the last report's decision.
    assert _d(study.report(a.number, {"value": 0.9}, 2)) == (False, "", 2, None, 0)
    assert _d(study.check_stopping(a.number)) == (False, "", 2, None, 0)
    fresh = a.check_stopping()
    assert fresh.step == 2 and not a.should_stop and a.last_decision == fresh
    # Steps never go back; the trial stays open.
    with pytest.raises(hd.FailedPreconditionError) as info:
        a.report(0.1, 1)
    assert info.value.reason == "STEP_NOT_INCREASING"
    assert keeper.open_trials() == [a.name]
    done = a.report(0.5)  # without a step: the final result
    assert done.state == "COMPLETED" and done.value == 0.5 and done.measurement_count == 2
    assert keeper.open_trials() == []


def test_trials_with_and_without_their_curves(client: hd.Client) -> None:
    study = _study(client, None, objectives=TWO)
    (trial,) = study.ask()
    for step in range(3):
        values = {"loss": 1.0 / (step + 1), "acc": 0.1 * step}
        trial.report(values, step, elapsed=0.5 * (step + 1))
    trial.report(values={"loss": 0.2, "acc": 0.3})
    (basic,) = study.trials()
    assert basic.measurements == () and basic.measurement_count == 3
    assert basic.last_step is None  # not read
    (full,) = study.trials(["COMPLETED"], with_measurements=True)
    assert [(m.step, m.values, m.elapsed) for m in full.measurements] == [
        (s, {"loss": 1.0 / (s + 1), "acc": 0.1 * s}, 0.5 * (s + 1)) for s in range(3)
    ]
    assert full.last_step == 2 and full.measurements[0].value is None
    assert full == basic  # the curve is not compared: it depends on the view
    assert study.get_trial(trial.number, with_measurements=False).measurements == ()
    assert len(study.get_trial(trial.number).measurements) == 3
    assert study.trials(["STOPPED"]) == []


def test_report_arguments(client: hd.Client) -> None:
    plain = _study(client, None, objectives=TWO)
    (trial,) = plain.ask()
    with pytest.raises(ValueError, match="pass a mapping"):
        trial.report(0.5, 1)  # which objective?
    for bad_step in ("1", True, 1.0):
        with pytest.raises(TypeError, match="step"):
            trial.report({"loss": 0.5}, bad_step)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number"):
        trial.report({"loss": "0.5"}, 1)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="report\\(value, step\\)"):
        trial.report(values={"loss": 0.5}, step=1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="elapsed goes with a step"):
        trial.report(0.5, elapsed=1.0)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="values="):
        trial.report({"loss": 0.5})  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="elapsed"):
        trial.report({"loss": 0.5}, 1, elapsed=math.inf)
    with pytest.raises(hd.InvalidArgumentError) as info:
        trial.report({"loss": math.nan}, 1)
    assert info.value.reason == "INVALID_MEASUREMENT"
    assert _d(trial.report({"acc": 0.5}, 1)) == (False, "", 1, None, 0)

    # With several objectives and a policy, a bare number is the watched objective's.
    watched = _study(client, hd.EarlyStopping(hd.MedianStopping(), objective="acc"), objectives=TWO)
    (trial,) = watched.ask()
    trial.report(0.75, 3)
    assert watched.get_trial(trial.number).measurements[0].values == {"acc": 0.75}


def test_a_report_whose_answer_was_lost_is_answered_the_same_stop(store_target: str) -> None:
    proxy = CuttingProxy(store_target)
    fast = hd.RetryPolicy(deadline=60, initial_backoff=0.01, max_backoff=0.2)
    try:
        with (
            hd.Client(proxy.target, retry=fast, renew_leases=False) as client,
            hd.Client(store_target) as direct,
        ):
            study = _study(client, hd.ThresholdStopping(threshold=0.5))
            (trial,) = study.ask()
            seen = direct.get_study(study.study_id)
            proxy.hold()
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                report = pool.submit(trial.report, 0.9, 1)
                deadline = time.monotonic() + 60  # only guards a hang
                while seen.get_trial(trial.number).state != "STOPPED":
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                proxy.cut()  # the answer is lost: the client retries with the same id
                decision = report.result(timeout=60)
    finally:
        proxy.close()
    assert decision.should_stop and decision.rule == "threshold"
    assert trial.should_stop


# -- with study.trial() --------------------------------------------------------------------------


def test_trial_stopped_ends_a_with_block_as_stopped(client: hd.Client) -> None:
    study = _study(client, hd.ThresholdStopping(threshold=0.5))
    # Stopped by the policy: raising TrialStopped sends nothing more, and goes no further.
    with study.trial() as by_policy:
        for step in range(5):
            if by_policy.report(0.9, step).should_stop:
                raise hd.TrialStopped()
        raise AssertionError("not reached")
    # On the worker's own criterion: stopped with the message as the reason.
    with study.trial() as by_worker:
        by_worker.report(0.1, 1)
        by_worker.report(0.2, 2)
        raise hd.TrialStopped("plateau")
    # trial.stop() in the block, without any report.
    with study.trial() as early:
        stopped = early.stop("budget")
    assert stopped.state == "STOPPED" and stopped.values is None
    # Stopped by the policy, then the block just ends: not a failure.
    with study.trial() as ignored:
        assert ignored.report(0.8, 0).should_stop

    trials = {t.number: t for t in study.trials()}
    policy = trials[by_policy.number]
    assert policy.state == "STOPPED" and policy.stop_decision is not None
    assert policy.stop_decision.rule == "threshold" and policy.measurement_count == 1
    worker = trials[by_worker.number]
    assert worker.state == "STOPPED" and worker.stop_decision is not None
    assert (worker.stop_decision.rule, worker.stop_decision.step) == ("worker", 2)
    assert worker.stop_decision.message == "plateau" and worker.value == 0.2
    assert trials[early.number].stop_decision.rule == "worker"  # type: ignore[union-attr]
    assert trials[ignored.number].state == "STOPPED"
    assert trials[ignored.number].failure_reason == ""
    assert client._leases is not None and client._leases.open_trials() == []


# -- optimize ------------------------------------------------------------------------------------


def curve(trial: hd.Trial, steps: int = 4) -> float:
    """A fake training: the loss at step s is x + 1/s; stops when told."""
    x = float(trial.params["x"])
    for step in range(1, steps + 1):
        if trial.report(x + 1 / step, step).should_stop:
            raise hd.TrialStopped()
    return x


def test_optimize_with_a_pruning_policy(client: hd.Client) -> None:
    # A threshold stops exactly the trials whose x is above 0.7 at step 2 (x + 1/2 > 1.2).
    study = _study(client, hd.ThresholdStopping(threshold=1.2, warmup_steps=2), seed=11)
    study.optimize(curve, n_trials=20, n_workers=3)
    trials = study.trials(with_measurements=True)
    assert len(trials) == 20  # stopped trials count towards n_trials
    stopped = [t for t in trials if t.state == "STOPPED"]
    completed = [t for t in trials if t.state == "COMPLETED"]
    assert len(stopped) + len(completed) == 20 and stopped and completed
    assert all(float(t.params["x"]) > 0.7 for t in stopped)
    assert all(float(t.params["x"]) <= 0.7 for t in completed)
    for t in stopped:
        assert t.stop_decision is not None and t.stop_decision.rule == "threshold"
        assert t.last_step == 2 and [m.step for m in t.measurements] == [1, 2]
    assert all(t.measurement_count == 4 for t in completed)
    assert client._leases is not None and client._leases.open_trials() == []
    # Ranked: only completed trials by default.
    assert study.best_trial.state == "COMPLETED"


def test_optimize_with_the_median_rule_stops_some_trials(client: hd.Client) -> None:
    study = _study(client, hd.MedianStopping(warmup_steps=1), seed=3)
    study.optimize(curve, n_trials=12)
    states = [str(t.state) for t in study.trials()]
    assert states[0] == "COMPLETED"  # nothing to compare with
    assert "STOPPED" in states and "FAILED" not in states and len(states) == 12


def test_optimize_counts_stopped_trials_in_its_progress(
    client: hd.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    study = _study(client, None, seed=5)

    def objective(trial: hd.Trial) -> float:
        trial.report(0.5, 1)
        if trial.number % 2:
            raise hd.TrialStopped(f"odd {trial.number}")  # a study without a policy too
        return 0.5

    study.optimize(objective, n_trials=4, show_progress=True)
    last = capfd.readouterr().err.rsplit("\r", 1)[-1]
    assert last.startswith(f"{study.study_id} | 4/4 [") and " | 2 stopped | " in last
    assert "failed" not in last
    trials = study.trials()
    assert [str(t.state) for t in trials] == ["STOPPED", "COMPLETED"] * 2
    assert trials[0].stop_decision is not None and trials[0].stop_decision.message == "odd 1"


def test_optimize_ignores_the_result_of_a_trial_the_policy_stopped(client: hd.Client) -> None:
    study = _study(client, hd.ThresholdStopping(threshold=0.5))

    def heedless(trial: hd.Trial) -> float:
        trial.report(0.9, 1)  # told to stop; goes on anyway
        return 0.1

    study.optimize(heedless, n_trials=2, n_workers=2)
    assert [str(t.state) for t in study.trials()] == ["STOPPED", "STOPPED"]
    # TrialStopped is not an error to catch: catch=(Exception,) changes nothing.
    study.optimize(curve, n_trials=1, catch=(Exception,))
    assert all(t.state != "FAILED" for t in study.trials())


def test_optimize_moves_on_from_a_trial_ended_elsewhere(
    client: hd.Client, store_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    study = _study(client, None)

    def objective(trial: hd.Trial) -> float:
        trial.report(0.5, 1)
        if trial.number == 1:  # an operator stops it from another process
            with hd.Client(store_target) as other:
                other.get_study(study.study_id).stop_trial(trial.number, "by an operator")
        trial.report(0.4, 2)  # for trial 1: FAILED_PRECONDITION TRIAL_NOT_RUNNING
        return 0.25

    with caplog.at_level(logging.WARNING, logger="hyperdial"):
        study.optimize(objective, n_trials=3)  # not raised: the run goes on
    assert [str(t.state) for t in study.trials()] == ["STOPPED", "COMPLETED", "COMPLETED"]
    assert "ended without this worker (it is stopped)" in caplog.text
    assert client._leases is not None and client._leases.open_trials() == []

    def other_error(trial: hd.Trial) -> float:
        trial.report(0.5, 0)
        trial.report({"nope": 1.0}, 1)  # a bad report is still the run's error
        return 0.0

    with pytest.raises(hd.HyperdialError) as e:
        study.optimize(other_error, n_trials=2)
    assert e.value.code.name == "INVALID_ARGUMENT"


# -- leases --------------------------------------------------------------------------------------


def test_reports_renew_the_lease_so_the_keeper_sends_no_heartbeat(client: hd.Client) -> None:
    lease = 3.0
    study = _study(client, hd.MedianStopping(), lease_timeout=lease)
    keeper = client._leases
    assert keeper is not None
    with study.trial() as trial:
        assert trial.lease_expire_time is not None
        first_end = trial.lease_expire_time
        step = 0
        # Report every 50 ms for more than two renewal intervals (a third of the lease each).
        start = time.monotonic()
        while time.monotonic() - start < lease * 0.8:
            step += 1
            assert not trial.report(1.0, step).should_stop
            time.sleep(0.05)
        assert keeper.sent == 0  # every report pushed the heartbeat back
        seen = study.get_trial(trial.number, with_measurements=False)
        assert seen.lease_expire_time is not None and seen.lease_expire_time > first_end
        trial.report(1.0)
    assert keeper.open_trials() == []


def test_a_trial_stopped_from_another_process_leaves_the_keeper(
    client: hd.Client, store_target: str
) -> None:
    study = _study(client, None, lease_timeout=1.0)
    a, b = study.ask(2)
    keeper = client._leases
    assert keeper is not None
    with hd.Client(store_target) as other:
        other.get_study(study.study_id).stop_trial(a.number, "elsewhere")
    # The next heartbeat learns it (a report would too).
    deadline = time.monotonic() + 60
    while a.name in keeper.open_trials():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    study.stop_trial(b, "done")
    assert keeper.open_trials() == []
    stopped = study.trials(["STOPPED"])
    assert [t.stop_decision.message for t in stopped if t.stop_decision] == ["elsewhere", "done"]


def test_concurrent_reports_and_heartbeats_do_not_conflict(client: hd.Client) -> None:
    # A short lease: heartbeats and reports interleave on the same trials from two threads.
    study = _study(client, hd.MedianStopping(warmup_steps=100), lease_timeout=1.0)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with study.trial() as trial:
                for step in range(5):
                    trial.report(float(step), step)
                    time.sleep(0.4)  # longer than a renewal interval: heartbeats in between
                trial.report(0.0)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert [str(t.state) for t in study.trials()] == ["COMPLETED", "COMPLETED"]
    assert client._leases is not None and client._leases.sent > 0


# -- without a server ----------------------------------------------------------------------------


def test_policies_as_protocol_messages() -> None:
    from hyperdial._early_stopping import policy_to_proto, rule_name

    pb = policy_to_proto(hd.SuccessiveHalving(min_resource=2))
    assert pb.WhichOneof("rule") == "successive_halving"
    assert (pb.successive_halving.min_resource, pb.successive_halving.max_resource) == (2, 0)
    assert pb.objective == "" and pb.max_measurements_per_trial == 0  # the service's defaults
    pb = policy_to_proto(hd.ThresholdStopping(patience_steps=2))
    assert not pb.threshold.HasField("threshold") and pb.threshold.patience_steps == 2
    pb = policy_to_proto(
        hd.EarlyStopping(hd.Hyperband(9), objective="acc", rank_stopped_trials=True)
    )
    assert (pb.hyperband.max_resource, pb.objective, pb.rank_stopped_trials) == (9, "acc", True)
    assert [rule_name(r) for r in (hd.MedianStopping(), hd.PercentileStopping(10.0), None)] == [
        "median",
        "percentile",
        None,
    ]
    with pytest.raises(TypeError, match="min_trials"):
        policy_to_proto(hd.MedianStopping(min_trials=True))


def test_progress_counts_stopped_trials() -> None:
    import io

    from hyperdial._progress import Progress

    bar = Progress(io.StringIO(), "demo", 3, goal="minimize", clock=lambda: 0.0)
    bar.trial_finished(1, 0.5)
    bar.trial_stopped()
    bar.trial_failed()
    assert bar.line() == (
        "demo | 3/3 [########################] 100% | 1 stopped | 1 failed | best 0.5 (#1) | 0:00"
    )
