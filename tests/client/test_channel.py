"""Channel settings: the service config, keepalive, targets with several replicas, TLS helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import hyperdial as hd
from hyperdial import _channel
from tests.client._support import new_id
from tests.server_harness import ServerProcess

SPACE = [hd.Float("x", 0.0, 1.0)]


def test_service_config_sets_round_robin_health_deadlines_and_grpc_retries() -> None:
    config = json.loads(_channel.service_config())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}
    by_name = {entry["name"][0].get("method", "*"): entry for entry in config["methodConfig"]}
    assert all(e["name"][0]["service"] == "hyperdial.v1.TuningService" for e in by_name.values())
    # Per-attempt deadlines: short for quick calls, so a frozen replica costs seconds.
    assert by_name["*"]["timeout"] == "5s"
    assert by_name["SuggestTrials"]["timeout"] == "20s"
    assert by_name["HeartbeatTrial"]["timeout"] == "5s"
    assert by_name["ListTrials"]["timeout"] == "15s"
    assert _channel.method_timeout("CompleteTrial") == 5.0
    assert _channel.method_timeout("SuggestTrials") == 20.0
    for entry in by_name.values():
        retry = entry["retryPolicy"]
        # DEADLINE_EXCEEDED is never in a gRPC retry policy: the client retries it itself.
        assert retry["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert 2 <= retry["maxAttempts"] <= 5

    bare = json.loads(_channel.service_config(retry=False, load_balancing=None, health_check=False))
    assert "loadBalancingConfig" not in bare
    assert "healthCheckConfig" not in bare
    assert all("retryPolicy" not in e for e in bare["methodConfig"])


def test_channel_options_keepalive_and_overrides() -> None:
    options = dict(_channel.channel_options())
    assert options["grpc.keepalive_time_ms"] == _channel.KEEPALIVE_TIME_MS
    assert options["grpc.keepalive_timeout_ms"] == _channel.KEEPALIVE_TIMEOUT_MS
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_pings_without_data"] == 0
    # What gRPC core actually waits for a ping's ack.
    assert options["grpc.http2.ping_timeout_ms"] == _channel.KEEPALIVE_TIMEOUT_MS
    # The server accepts pings this often (server.py): the client must not ping faster.
    assert _channel.KEEPALIVE_TIME_MS >= 10_000
    assert options["grpc.enable_retries"] == 1
    assert options["grpc.service_config_disable_resolution"] == 1
    assert json.loads(options["grpc.service_config"]) == json.loads(_channel.service_config())

    custom = dict(
        _channel.channel_options(
            retry=False, extra=[("grpc.keepalive_time_ms", 5000), ("grpc.primary_user_agent", "x")]
        )
    )
    assert custom["grpc.keepalive_time_ms"] == 5000
    assert custom["grpc.primary_user_agent"] == "x"
    assert custom["grpc.enable_retries"] == 0
    assert len(_channel.channel_options(extra=[("grpc.keepalive_time_ms", 1)])) == len(options)


def test_a_list_of_addresses_becomes_an_ipv4_or_ipv6_target() -> None:
    norm = _channel.normalize_target
    assert norm("10.0.0.1:50051, 10.0.0.2:50052") == "ipv4:10.0.0.1:50051,10.0.0.2:50052"
    assert norm("[::1]:1,[fe80::1]:2") == "ipv6:[::1]:1,[fe80::1]:2"
    for unchanged in ("localhost:50051", "dns:///h:1", "ipv4:1.2.3.4:1,1.2.3.5:1", "unix:/s"):
        assert norm(unchanged) == unchanged
    bad_lists = (
        "a.example:1,b.example:1",
        "10.0.0.1,10.0.0.2",
        "10.0.0.1:1,[::1]:1",
        "::1:1,::2:1",
    )
    for bad in bad_lists:
        with pytest.raises(ValueError, match="list of replicas"):
            hd.Client(bad)


def test_token_metadata_and_tls_arguments(tmp_path: Path) -> None:
    assert _channel.call_metadata(None) == ()
    assert _channel.call_metadata("abc.DEF-123") == (("authorization", "Bearer abc.DEF-123"),)
    for bad in ("", "two words", "line\nbreak"):
        with pytest.raises(ValueError, match="token"):
            hd.Client("localhost:1", token=bad)

    assert _channel.resolve_credentials(False) is None
    assert isinstance(_channel.resolve_credentials(True), grpc.ChannelCredentials)
    with pytest.raises(TypeError, match="tls"):
        hd.Client("localhost:1", tls="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both client_cert and client_key"):
        hd.tls_credentials(client_cert=tmp_path / "cert.pem")
    with pytest.raises(ValueError, match="cannot read"):
        hd.tls_credentials(tmp_path / "missing.pem")
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until the handshake")
    assert isinstance(hd.tls_credentials(ca), grpc.ChannelCredentials)


def test_dns_target(server_target: str) -> None:
    port = server_target.rsplit(":", 1)[1]
    # "localhost" resolves to ::1 and 127.0.0.1; round-robin uses the address that answers.
    with hd.Client(f"dns:///localhost:{port}") as client:
        study = client.create_study(new_id(), SPACE, algorithm="random")
        assert client.get_study(study.study_id).name == study.name


@pytest.fixture
def two_replicas(redis_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        started.append(ServerProcess(redis_url))
        started.append(ServerProcess(redis_url))
        yield started[0], started[1]
    finally:
        for server in started:
            server.terminate()


def served(server: ServerProcess, study_ids: list[str]) -> bool:
    """Whether the replica's log names one of the studies (each replica logs its creations)."""
    fd = server.log.fileno()
    # pread: the server appends to the same open file, so the offset must not move.
    text = os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
    return any(i in text for i in study_ids)


def test_round_robin_spreads_calls_over_two_replicas(
    two_replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_replicas
    # A dns:/// name cannot carry two ports on one host; the ipv4: list is the same resolver
    # result (several addresses) without DNS.
    target = f"ipv4:{a.target},{b.target}"
    created: list[str] = []
    with hd.Client(target) as client:
        for _ in range(200):  # both are connected after a few calls; the bound only stops a bug
            study_id = new_id("rr")
            client.create_study(study_id, SPACE, algorithm="random")
            created.append(study_id)
            if len(created) >= 10 and served(a, created) and served(b, created):
                break
        assert served(a, created) and served(b, created), created
        # Both replicas serve one store: every study is visible whichever replica answers.
        listed = {s.study_id for s in client.list_studies()}
        assert set(created) <= listed
