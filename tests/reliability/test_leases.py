"""Trial leases through the gRPC service: renewal, expiry (lazy and by the sweep), re-issue of
the point, late results, the STUDY_COMPLETE hint; on the memory store and on Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
import redis
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.server import ServerConfig
from hyperdial_server.store._keys import study_keys
from tests.e2e.protocol import cat_param, create, error_reason, float_param, py_params, spec
from tests.redis_server import RedisServer
from tests.reliability.fleet import replicas, server_log
from tests.server_harness import CLOCK_START as START
from tests.server_harness import InProcessServer

R, C, F = (
    trial_pb2.TRIAL_STATE_RUNNING,
    trial_pb2.TRIAL_STATE_COMPLETED,
    trial_pb2.TRIAL_STATE_FAILED,
)


@pytest.fixture(params=["memory", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[InProcessServer]:
    """The tuning service on each store, its clock at ``START``, moved by the test; no periodic
    sweep (a test sweeps with ``server.sweep()``)."""
    url = str(request.getfixturevalue("redis_url")) if request.param == "redis" else ""
    config = ServerConfig(redis_url=url, lease_sweep_interval=0)
    with InProcessServer(config, clock_at=START) as s:
        yield s


def info(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            got = error_details_pb2.ErrorInfo()
            detail.Unpack(got)
            return dict(got.metadata)
    raise AssertionError("no ErrorInfo")


def grid(sid: str, s: InProcessServer, lease: float = 10.0) -> None:
    nanos = int(lease * 1e9)
    create(
        s.stub,
        sid,
        spec(
            cat_param("c", ["a", "b", "c"]),
            algorithm=study_pb2.ALGORITHM_GRID,
            lease_timeout=Duration(seconds=nanos // 10**9, nanos=nanos % 10**9),
        ),
    )


def ask(s: InProcessServer, sid: str, count: int = 1, **kw: str) -> list[trial_pb2.Trial]:
    req = ts.SuggestTrialsRequest(parent=f"studies/{sid}", count=count, **kw)  # type: ignore[arg-type]
    return list(s.stub.SuggestTrials(req).trials)


def get(s: InProcessServer, name: str) -> trial_pb2.Trial:
    return s.stub.GetTrial(ts.GetTrialRequest(name=name)).trial


def beat(s: InProcessServer, name: str) -> trial_pb2.Trial:
    return s.stub.HeartbeatTrial(ts.HeartbeatTrialRequest(name=name)).trial


def tell(s: InProcessServer, name: str, loss: float) -> trial_pb2.Trial:
    m = trial_pb2.Measurement(values={"loss": loss})
    return s.stub.CompleteTrial(ts.CompleteTrialRequest(name=name, final_measurement=m)).trial


def test_a_lease_is_served_renewed_and_expires_into_a_reissue(server: InProcessServer) -> None:
    sid = f"lease-{uuid.uuid4().hex[:8]}"
    grid(sid, server, lease=10.5)
    study = server.stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study
    assert study.spec.lease_timeout == Duration(seconds=10, nanos=500_000_000)
    t1, t2 = ask(server, sid, 2)
    assert t1.lease_expire_time.ToNanoseconds() == int((START + 10.5) * 1e9)
    server.now += 6
    renewed = beat(server, t1.name)
    assert renewed.state == R
    assert renewed.lease_expire_time.ToNanoseconds() == int((START + 16.5) * 1e9)
    server.now += 4.5  # at t2's deadline: the lease still holds
    assert get(server, t2.name).state == R
    server.now += 0.5
    expired = get(server, t2.name)  # a read expires it
    assert (expired.state, expired.failure_reason) == (F, "lease expired")
    assert not expired.HasField("lease_expire_time")
    with pytest.raises(grpc.RpcError) as e:
        beat(server, t2.name)
    code, reason, message = error_reason(e.value)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRIAL_NOT_RUNNING")
    assert info(e.value) == {"state": "FAILED", "lease_expired": "true"}
    assert "lease expired" in message
    # The point comes back first, as a new trial; then the grid's last point.
    again, last = ask(server, sid, 2, client_id="other")
    assert (again.number, py_params(again)) == (3, py_params(t2))
    assert again.client_id == "other" and again.state == R
    assert sorted(py_params(t)["c"] for t in (t1, t2, last)) == ["a", "b", "c"]
    # Nothing left, yet: three trials are RUNNING and may come back.
    with pytest.raises(grpc.RpcError) as e:
        ask(server, sid)
    assert error_reason(e.value)[1] == "STUDY_COMPLETE"
    assert info(e.value) == {"pending": "3"}
    # The late result of trial 2 is recorded; its twin stays and measures the point again.
    late = tell(server, t2.name, 0.25)
    assert (late.state, late.failure_reason) == (C, "")
    assert dict(late.final_measurement.values) == {"loss": 0.25}
    for t in (t1, again, last):
        tell(server, t.name, 0.5)
    with pytest.raises(grpc.RpcError) as e:
        ask(server, sid)
    assert info(e.value) == {"pending": "0"}


def test_a_late_result_before_the_reissue_keeps_the_point_from_coming_back(
    server: InProcessServer,
) -> None:
    sid = f"late-{uuid.uuid4().hex[:8]}"
    grid(sid, server, lease=5)
    (t1,) = ask(server, sid)
    server.now += 6
    assert server.sweep() >= 1  # no read, no ask: the sweep expired it
    late = tell(server, t1.name, 1.0)
    assert late.state == C
    # Its point is measured: the next asks get the two other points only.
    rest = ask(server, sid, 3)
    assert sorted(py_params(t)["c"] for t in rest) == sorted({"a", "b", "c"} - {py_params(t1)["c"]})


def test_the_lease_timeout_is_validated_and_defaults_to_the_server_setting(
    server: InProcessServer,
) -> None:
    for bad in (
        Duration(seconds=-1),
        Duration(seconds=0, nanos=500_000_000),
        Duration(seconds=8 * 24 * 3600),
        Duration(seconds=1, nanos=-5),
        Duration(seconds=2**62),
    ):
        s = spec(float_param("x", 0, 1), lease_timeout=bad)
        with pytest.raises(grpc.RpcError) as e:
            server.stub.CreateStudy(ts.CreateStudyRequest(study_id="bad-lease", spec=s))
        code, reason, message = error_reason(e.value)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        assert "lease_timeout" in message
    sid = f"default-{uuid.uuid4().hex[:8]}"
    created = create(server.stub, sid, spec(float_param("x", 0, 1)))
    assert created.spec.lease_timeout == Duration(seconds=600)  # stored with the study
    (t,) = ask(server, sid)
    assert t.lease_expire_time.seconds == int(START) + 600


def test_the_periodic_sweep_expires_leases_nobody_asks_about() -> None:
    """A server process on a real clock: the sweep alone moves the trial to FAILED (watched in
    Redis, so that no read of the service expires it lazily)."""
    with (
        RedisServer() as store,
        replicas(1, store.url, ["--lease-sweep-interval", "0.05"]) as (server,),
    ):
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            create(stub, "swept", spec(float_param("x", 0, 1), lease_timeout=Duration(seconds=1)))
            ask_one = ts.SuggestTrialsRequest(parent="studies/swept", count=1)
            (t,) = stub.SuggestTrials(ask_one).trials
        client = redis.Redis.from_url(store.url, decode_responses=True)
        failed = study_keys("default", "swept").failed
        end = time.monotonic() + 60
        while client.zscore(failed, str(t.number)) is None:
            assert time.monotonic() < end, "the sweep never expired the lease"
            time.sleep(0.05)
        client.close()
        # The sweep logs after its script answered: wait for the line, don't race it.
        while "trial leases expired" not in server_log(server):
            assert time.monotonic() < end, "the sweep expired the lease but never said so"
            time.sleep(0.05)
        assert server.terminate() == 0
