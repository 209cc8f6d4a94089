"""gRPC health (SERVING only while the store answers), the probe, and server reflection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial.v1 import tuning_service_pb2_grpc
from hyperdial_server import healthcheck
from hyperdial_server import server as server_module
from hyperdial_server.server import ServerConfig
from tests.e2e.protocol import float_param, spec
from tests.redis_server import RedisServer, free_port
from tests.server_harness import InProcessServer, ServerProcess, sample, scrape

TUNING = "hyperdial.v1.TuningService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _check(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30).status)


@pytest.mark.parametrize("service", ["", TUNING])
def test_memory_store_serves(server_target: str, service: str) -> None:
    assert _check(server_target, service) == SERVING


def test_unknown_service_is_not_found(server_target: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _check(server_target, "no.such.Service")
    assert e.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which the test stops and restarts (AOF on: data survive)."""
    with RedisServer("--appendonly", "yes") as server:
        yield server


def test_health_follows_the_store(redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Check the store often so that the test waits for events, not for the default period.
    monkeypatch.setattr(server_module, "HEALTH_INTERVAL", 0.05)
    server = InProcessServer(ServerConfig(redis_url=redis.url, metrics_port=0)).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=TUNING), timeout=60
            )
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            stub.CreateStudy(ts.CreateStudyRequest(study_id="s", spec=spec(float_param("x", 0, 1))))
            statuses = iter(r.status for r in watch)
            assert next(statuses) == SERVING
            assert healthcheck.main(["--target", server.target]) == 0

            redis.stop()
            assert next(statuses) == NOT_SERVING
            assert _check(server.target) == NOT_SERVING
            assert _check(server.target, TUNING) == NOT_SERVING
            assert healthcheck.main(["--target", server.target]) == 1
            with pytest.raises(grpc.RpcError) as down:
                stub.GetStudy(ts.GetStudyRequest(name="studies/s"))
            assert down.value.code() is grpc.StatusCode.UNAVAILABLE
            # An aborted call's status reaches the client before the server has counted it
            # (gRPC sends it from abort()): wait for the count, however long that takes.
            while True:
                m = scrape(server.metrics_url)
                if (
                    sample(
                        m,
                        "hyperdial_store_errors_total",
                        operation="GetStudy",
                        reason="STORE_UNAVAILABLE",
                    )
                    >= 1
                ):
                    break
                time.sleep(0.01)
            assert sample(m, "hyperdial_store_up") == 0
            assert (
                sample(
                    m,
                    "hyperdial_store_errors_total",
                    operation="GetStudy",
                    reason="STORE_UNAVAILABLE",
                )
                == 1
            )
            assert (
                sample(
                    m,
                    "hyperdial_store_errors_total",
                    operation="health_check",
                    reason="STORE_UNAVAILABLE",
                )
                >= 1
            )

            redis.start()
            assert next(statuses) == SERVING
            assert _check(server.target, TUNING) == SERVING
            assert stub.GetStudy(ts.GetStudyRequest(name="studies/s")).study.name == "studies/s"
            assert sample(scrape(server.metrics_url), "hyperdial_store_up") == 1
            watch.cancel()
    finally:
        server.stop()


def test_probe_fails_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    target = f"127.0.0.1:{free_port()}"
    assert healthcheck.main(["--target", target, "--timeout", "5"]) == 1
    assert "no answer (UNAVAILABLE" in capsys.readouterr().out


def test_probe_reads_the_port_from_the_environment(
    server_target: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HYPERDIAL_PORT", server_target.rsplit(":", 1)[1])
    assert healthcheck.main([]) == 0
    assert (
        capsys.readouterr().out.strip() == f"127.0.0.1:{server_target.rsplit(':', 1)[1]}: SERVING"
    )


def _services(target: str) -> list[str]:
    with grpc.insecure_channel(target) as channel:
        return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


def test_reflection_describes_the_tuning_service(server_target: str) -> None:
    assert _services(server_target) == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        TUNING,
    ]
    with grpc.insecure_channel(server_target) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(TUNING)
        assert "SuggestTrials" in [m.name for m in service.methods]
        request = pool.FindMessageTypeByName("hyperdial.v1.SuggestTrialsRequest")
        assert "count" in request.fields_by_name


def test_reflection_can_be_turned_off() -> None:
    # HYPERDIAL_NO_REFLECTION=1 sets the same flag (tests/ops/test_config.py).
    server = ServerProcess(extra=["--no-reflection"])
    try:
        with pytest.raises(grpc.RpcError) as e:
            _services(server.target)
        assert e.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert _check(server.target) == SERVING  # the rest still works
    finally:
        assert server.terminate() == 0
