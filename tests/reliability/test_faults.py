"""Faults with real processes: a replica killed with SIGKILL, Redis killed and restarted, a
server started before its Redis, garbage on the gRPC port."""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Iterator

import grpc
import pytest
import redis
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import cat_param, create, disc_param, float_param, int_param, spec, when
from tests.redis_server import RedisServer
from tests.reliability.consistency import check_study
from tests.reliability.fleet import Fleet, all_trials, params_of, replicas, server_log
from tests.server_harness import ServerProcess

# Leases of 2 s and a sweep every 0.2 s keep the tests short; workers heartbeat every 20 ms.
LEASE = Duration(seconds=2)
SWEEP = ["--lease-sweep-interval", "0.2"]


def grid_spec() -> study_pb2.StudySpec:
    # opt adam/rmsprop: 4 layers x 3 lr x 2 batch = 24 each; sgd: 24 x 3 momentum = 72.
    return spec(
        cat_param("opt", ["adam", "sgd", "rmsprop"]),
        int_param("layers", 1, 4),
        float_param("lr", 1e-4, 1e-1, log=True),
        float_param("momentum", 0.0, 0.9, condition=when("opt", "sgd")),
        disc_param("batch", [32.0, 64.0]),
        algorithm=study_pb2.ALGORITHM_GRID,
        grid_resolution=3,
        lease_timeout=LEASE,
    )


GRID_POINTS = 24 + 24 + 72


def check_trials(
    trials: list[trial_pb2.Trial], told: dict[str, dict[str, float]]
) -> tuple[list[trial_pb2.Trial], list[trial_pb2.Trial]]:
    """Every trial ended COMPLETED or FAILED by its lease, a failed one's point was handed out
    again (a later trial with its parameters), and every acknowledged tell is recorded."""
    completed = [t for t in trials if t.state == trial_pb2.TRIAL_STATE_COMPLETED]
    failed = [t for t in trials if t.state == trial_pb2.TRIAL_STATE_FAILED]
    assert len(completed) + len(failed) == len(trials), "a trial is still WAITING or RUNNING"
    assert {t.failure_reason for t in failed} <= {"lease expired"}
    for t in failed:
        assert any(params_of(u) == params_of(t) and u.number > t.number for u in trials), (
            f"the point of {t.name} was not handed out again"
        )
    by_name = {t.name: t for t in trials}
    for name, values in told.items():
        assert by_name[name].state == trial_pb2.TRIAL_STATE_COMPLETED, name
        assert dict(by_name[name].final_measurement.values) == values, name
    return completed, failed


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    yield server
    server.close()


def random_spec() -> study_pb2.StudySpec:
    # One Redis script per ask, from blocks of indices each replica reserved ahead.
    return spec(
        float_param("lr", 1e-4, 1e-1, log=True),
        int_param("layers", 1, 4),
        algorithm=study_pb2.ALGORITHM_RANDOM,
        max_trials=GRID_POINTS,
        lease_timeout=LEASE,
    )


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grid", "random"])
def test_killing_a_replica_loses_no_tell_and_no_point(
    private_redis: RedisServer, algorithm: str
) -> None:
    sid = f"kill-{uuid.uuid4().hex[:8]}"
    study_spec = grid_spec() if algorithm == "grid" else random_spec()
    with replicas(2, private_redis.url, SWEEP) as servers:
        with grpc.insecure_channel(servers[1].target) as channel:
            create(tuning_service_pb2_grpc.TuningServiceStub(channel), sid, study_spec)
        # Workers 0, 2, 4, 6 crash along with the replica's host: their trials can only come
        # back through their leases.
        targets = [s.target for s in servers]
        with Fleet(targets, sid, workers=16, crash=[0, 2, 4, 6]) as fleet:
            fleet.wait_for(lambda log: len(log.told) >= GRID_POINTS // 4)
            fleet.crash_now.set()
            fleet.wait_for(lambda log: len(log.abandoned) == 4)
            servers[0].kill()  # SIGKILL, mid-run
            fleet.join()
        log = fleet.log
        assert not log.unexpected, log.unexpected[:3]
        assert log.finished == 16
        assert servers[0].proc.returncode == -9
        assert servers[1].proc.poll() is None
        with grpc.insecure_channel(servers[1].target) as channel:
            trials = all_trials(tuning_service_pb2_grpc.TuningServiceStub(channel), sid)
        completed, failed = check_trials(trials, log.told)
        points = [params_of(t) for t in completed]
        # Every grid point once, none twice; as many random points as max_trials, all distinct
        # (the killed replica's reserved indices are skipped, never handed out twice).
        assert len(points) == len(set(points)) == GRID_POINTS
        assert {t.name for t in failed} >= set(log.abandoned)
        assert len(log.told) == len(completed)  # every completion was acknowledged
        client = redis.Redis.from_url(private_redis.url, decode_responses=True)
        capacity = GRID_POINTS if algorithm == "grid" else None
        assert check_study(client, "default", sid, capacity=capacity) == []
        client.close()
        assert "unexpected error" not in server_log(servers[1])
        assert servers[1].terminate() == 0
    print(
        f"\nkill -9 of 1 of 2 replicas ({algorithm}), 16 workers, 4 of them crashed: "
        f"{len(trials)} trials, {len(completed)} completed, {len(failed)} failed by lease and "
        f"handed out again, {len(log.lost_leases)} leases lost by live workers, retried errors "
        f"{dict(log.retried)}"
    )


@pytest.mark.slow
def test_redis_killed_and_restarted_loses_no_acknowledged_tell(private_redis: RedisServer) -> None:
    sid = f"aof-{uuid.uuid4().hex[:8]}"
    with replicas(2, private_redis.url, SWEEP) as servers:
        with grpc.insecure_channel(servers[0].target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            create(stub, sid, spec(float_param("x", 0, 1), max_trials=120, lease_timeout=LEASE))
        with Fleet([s.target for s in servers], sid, workers=8, heartbeats=1) as fleet:
            fleet.wait_for(lambda log: len(log.told) >= 30)
            private_redis.kill()  # a crash: only what was fsynced survives
            fleet.wait_for(lambda log: sum(log.retried.values()) >= 16)
            private_redis.start()  # same port, same directory: replays the append-only file
            fleet.join()
        log = fleet.log
        assert not log.unexpected, log.unexpected[:3]
        # Every failed call during the outage was UNAVAILABLE: nothing else was retried.
        assert set(log.retried) <= {
            "UNAVAILABLE/STORE_UNAVAILABLE",
            # Redis answers while it replays its append-only file.
            "UNAVAILABLE/STORE_LOADING",
            "UNAVAILABLE/REQUEST_IN_PROGRESS",
        }, log.retried
        assert log.retried["UNAVAILABLE/STORE_UNAVAILABLE"] >= 16
        assert all(s.proc.poll() is None for s in servers)  # no crashed process
        with grpc.insecure_channel(servers[1].target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            trials = all_trials(stub, sid)
            health = health_pb2_grpc.HealthStub(channel)
            answer = health.Check(health_pb2.HealthCheckRequest(service=""))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        completed, failed = check_trials(trials, log.told)
        assert len(completed) == 120  # max_trials: re-issued points count once
        client = redis.Redis.from_url(private_redis.url, decode_responses=True)
        assert check_study(client, "default", sid) == []
        client.close()
        for s in servers:
            assert "unexpected error" not in server_log(s)
            assert s.terminate() == 0
    print(
        f"\nRedis SIGKILL + restart (AOF, appendfsync always), 8 workers on 2 replicas: "
        f"{len(trials)} trials, {len(log.told)} acknowledged tells all recorded, "
        f"{len(failed)} failed by lease and handed out again, retried errors {dict(log.retried)}"
    )


def test_a_server_started_before_redis_serves_once_redis_is_up() -> None:
    store = RedisServer()  # a port, no process yet
    server = ServerProcess(store.url, extra=SWEEP)
    try:
        with grpc.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            check = health_pb2.HealthCheckRequest(service="hyperdial.v1.TuningService")
            assert health.Check(check).status == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            with pytest.raises(grpc.RpcError) as e:
                stub.GetStudy(ts.GetStudyRequest(name="studies/x"))
            assert e.value.code() is grpc.StatusCode.UNAVAILABLE
            watch = health.Watch(check, timeout=120)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            store.start()
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            create(stub, "after", spec(float_param("x", 0, 1)))
            assert stub.GetStudy(ts.GetStudyRequest(name="studies/after")).study.name
        assert server.terminate() == 0
    finally:
        if server.proc.poll() is None:
            server.kill()
        store.close()


def test_garbage_on_the_grpc_port_does_not_take_the_server_down(redis_url: str) -> None:
    server = ServerProcess(redis_url)
    host, port = server.target.rsplit(":", 1)
    rng = random.Random(20240601)
    payloads = [
        b"",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(4096),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00" + b"\xff" * 64,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 512,  # a TLS hello
    ]
    payloads += [rng.randbytes(rng.randrange(1, 65536)) for _ in range(40)]
    try:
        for payload in payloads:
            with socket.create_connection((host, int(port)), timeout=10) as s:
                try:
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):  # until the server closes
                        pass
                except OSError:  # the server closed first: a refusal, as it should be
                    pass
        # Half-open connections that never finish their preface.
        idle = [socket.create_connection((host, int(port))) for _ in range(50)]
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            sid = f"garbage-{uuid.uuid4().hex[:8]}"
            create(stub, sid, spec(float_param("x", 0, 1)))
            assert stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.name
        for s in idle:
            s.close()
        assert server.proc.poll() is None
        assert server.terminate() == 0
    finally:
        if server.proc.poll() is None:
            server.kill()
    print(f"\n{len(payloads)} garbage payloads and 50 idle connections: server up")
