"""Prometheus metrics: every call counted by method and code, latency, compute time, trials."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import grpc
import pytest

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.server import ServerConfig
from tests.e2e.protocol import cat_param, float_param, measurement, spec
from tests.server_harness import InProcessServer, ServerProcess, sample, scrape

TUNING = "hyperdial.v1.TuningService"


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    """A server of its own (its own registry), with a metrics endpoint on a free port."""
    server = InProcessServer(ServerConfig(metrics_port=0)).start()
    yield server
    server.stop()


def _handled(samples: dict, method: str, code: str) -> float:  # type: ignore[type-arg]
    return sample(
        samples,
        "hyperdial_grpc_server_handled_total",
        grpc_service=TUNING,
        grpc_method=method,
        grpc_code=code,
    )


def test_calls_latency_compute_time_and_trials_are_counted(server: InProcessServer) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        grid = spec(cat_param("x", ["a", "b", "c"]), algorithm=study_pb2.ALGORITHM_GRID)
        rand = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM, max_trials=3)
        sobol = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_QUASI_RANDOM)
        bayes = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_BAYESIAN)
        studies = (("grid", grid), ("rand", rand), ("sobol", sobol), ("bayes", bayes))
        for study_id, s in studies:
            stub.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=s))

        def ask(study: str, count: int) -> list[trial_pb2.Trial]:
            req = ts.SuggestTrialsRequest(parent=f"studies/{study}", count=count)
            return list(stub.SuggestTrials(req).trials)

        first = ask("grid", 2)  # sampled: 2 grid points
        assert len(first) == 2 and len(ask("grid", 2)) == 1  # sampled: the last point
        with pytest.raises(grpc.RpcError) as done:
            ask("grid", 1)  # none left: OUT_OF_RANGE, no sampling
        assert done.value.code() is grpc.StatusCode.OUT_OF_RANGE
        stub.CompleteTrial(
            ts.CompleteTrialRequest(name=first[0].name, final_measurement=measurement(loss=1.0))
        )
        stub.CompleteTrial(
            ts.CompleteTrialRequest(name=first[1].name, failure=ts.TrialFailure(reason="x"))
        )
        # An enqueued trial is handed out without sampling.
        stub.CreateTrial(
            ts.CreateTrialRequest(
                parent="studies/rand", parameters={"x": study_pb2.ParameterValue(double_value=0.5)}
            )
        )
        assert len(ask("rand", 1)) == 1
        assert len(ask("rand", 2)) == 2  # sampled
        assert len(ask("sobol", 1)) == 1  # sampled
        assert len(ask("bayes", 1)) == 1  # sampled on the executor's thread
        with pytest.raises(grpc.RpcError) as bad:
            stub.GetStudy(ts.GetStudyRequest(name="not a name"))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    # The status of an aborted call reaches the client before the server has counted the call
    # (gRPC sends it from abort()): wait for the last call's count, however long that takes.
    while _handled(m := scrape(server.metrics_url), "GetStudy", "INVALID_ARGUMENT") < 1:
        time.sleep(0.01)
    assert _handled(m, "CreateStudy", "OK") == 4
    assert _handled(m, "SuggestTrials", "OK") == 6
    assert _handled(m, "SuggestTrials", "OUT_OF_RANGE") == 1
    assert _handled(m, "CompleteTrial", "OK") == 2
    assert _handled(m, "CreateTrial", "OK") == 1
    assert _handled(m, "GetStudy", "INVALID_ARGUMENT") == 1
    assert _handled(m, "GetStudy", "OK") == 0
    latency = "hyperdial_grpc_server_handling_seconds_count"
    assert sample(m, latency, grpc_service=TUNING, grpc_method="SuggestTrials") == 7
    assert sample(m, latency, grpc_service=TUNING, grpc_method="CompleteTrial") == 2
    in_flight = "hyperdial_grpc_server_in_flight"
    assert sample(m, in_flight, grpc_service=TUNING, grpc_method="SuggestTrials") == 0
    compute = "hyperdial_suggestion_compute_seconds_count"
    assert sample(m, compute, algorithm="grid") == 2
    assert sample(m, compute, algorithm="random") == 1
    assert sample(m, compute, algorithm="quasi_random") == 1
    assert sample(m, compute, algorithm="bayesian") == 1
    assert sample(m, "hyperdial_suggestion_compute_seconds_sum", algorithm="grid") > 0
    assert sample(m, "hyperdial_trials_asked_total") == 2 + 1 + 1 + 2 + 1 + 1
    assert sample(m, "hyperdial_trials_told_total", outcome="completed") == 1
    assert sample(m, "hyperdial_trials_told_total", outcome="failed") == 1
    assert not any(name == "hyperdial_store_errors_total" for name, _ in m)
    assert sample(m, "hyperdial_store_up") == 1
    # Nothing computes or waits for a sampler worker once every ask is answered.
    assert sample(m, "hyperdial_sampler_computations", state="running") == 0
    assert sample(m, "hyperdial_sampler_computations", state="waiting") == 0
    assert ("process_cpu_seconds_total", ()) in m


def test_trials_stopped_by_their_policy_or_worker_or_infeasible_are_counted(
    server: InProcessServer,
) -> None:
    threshold = study_pb2.ThresholdStoppingRule(threshold=1.0)
    s = spec(
        float_param("x", 0, 1),
        algorithm=study_pb2.ALGORITHM_RANDOM,
        early_stopping=study_pb2.EarlyStoppingPolicy(threshold=threshold),
    )
    with grpc.insecure_channel(server.target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        stub.CreateStudy(ts.CreateStudyRequest(study_id="stops", spec=s))
        ask = ts.SuggestTrialsRequest(parent="studies/stops", count=4)
        by_rule, by_worker, going, oom = stub.SuggestTrials(ask).trials
        for name, loss in ((by_rule.name, 2.0), (going.name, 0.5)):
            report = trial_pb2.Measurement(step=1, values={"loss": loss})
            stub.AddTrialMeasurement(ts.AddTrialMeasurementRequest(name=name, measurement=report))
        stop = ts.CompleteTrialRequest(name=by_worker.name, stop=ts.TrialStop(reason="budget"))
        stub.CompleteTrial(stop)
        infeasible = ts.TrialInfeasibility(reason="out of memory")
        stub.CompleteTrial(ts.CompleteTrialRequest(name=oom.name, infeasibility=infeasible))
    # Counted once each call is done, which may be after the client got its answer.
    while (
        _handled(m := scrape(server.metrics_url), "CompleteTrial", "OK") < 2
        or _handled(m, "AddTrialMeasurement", "OK") < 2
    ):
        time.sleep(0.01)
    assert sample(m, "hyperdial_trials_told_total", outcome="stopped") == 2
    assert sample(m, "hyperdial_trials_told_total", outcome="infeasible") == 1


def test_health_checks_are_counted_under_their_own_service(server: InProcessServer) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3):
            health.Check(health_pb2.HealthCheckRequest(service=TUNING))
    m = scrape(server.metrics_url)
    handled = "hyperdial_grpc_server_handled_total"
    labels = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check", "grpc_code": "OK"}
    assert sample(m, handled, **labels) == 3
    assert _handled(m, "Check", "OK") == 0


_METRICS_LINE = re.compile(r"^metrics on (http://127\.0\.0\.1:[0-9]+/metrics)$")


def test_serve_exposes_metrics_over_http() -> None:
    # HYPERDIAL_METRICS_PORT sets the same flag (tests/ops/test_config.py).
    server = ServerProcess(extra=["--metrics-port", "0"])
    try:
        match = _METRICS_LINE.match(server.next_line().strip())
        assert match, "the server did not print its metrics address"
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            stub.ListStudies(ts.ListStudiesRequest())
        m = scrape(match.group(1))
        assert _handled(m, "ListStudies", "OK") == 1
    finally:
        assert server.terminate() == 0


def test_serve_has_no_metrics_endpoint_unless_asked() -> None:
    server = ServerProcess()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            stub.ListStudies(ts.ListStudiesRequest())
        code, log = server.stop_and_read_log()
        assert server.proc.stdout is not None
        printed = server.proc.stdout.read()
    finally:
        server.terminate()
    assert code == 0
    assert "metrics" not in printed and "metrics on" not in log
