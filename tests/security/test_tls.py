"""TLS and mutual TLS on the gRPC port, over real connections with throwaway certificates."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.cli import build_parser
from hyperdial_server.security import (
    Role,
    SecurityConfigError,
    TlsConfig,
    check_tls_paths,
    server_credentials,
)
from hyperdial_server.server import ServerConfig
from tests.process_groups import run
from tests.security.calls import stub
from tests.security.pki import Identity, Pki
from tests.security.tokens import Tokens, bearer
from tests.server_harness import InProcessServer, ServerProcess

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[InProcessServer]:
    config = ServerConfig(tls_cert=str(pki.server.cert), tls_key=str(pki.server.key))
    with InProcessServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[InProcessServer]:
    config = ServerConfig(
        tls_cert=str(pki.server.cert), tls_key=str(pki.server.key), tls_client_ca=str(pki.ca.cert)
    )
    with InProcessServer(config) as server:
        yield server


def _list(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    try:
        stub(channel).ListStudies(ts.ListStudiesRequest(), metadata=metadata, timeout=30)
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def _tls(target: str, root: Identity, client: Identity | None = None) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=root.cert_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    return grpc.secure_channel(target, creds)


def test_tls_call_succeeds(tls_server: InProcessServer, pki: Pki) -> None:
    with _tls(tls_server.target, pki.ca) as channel:
        assert _list(channel) == grpc.StatusCode.OK
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_also_by_host_name(tls_server: InProcessServer, pki: Pki) -> None:
    port = tls_server.target.rsplit(":", 1)[1]
    with _tls(f"localhost:{port}", pki.ca) as channel:
        assert _list(channel) == grpc.StatusCode.OK


def test_plaintext_is_refused_on_a_tls_port(tls_server: InProcessServer) -> None:
    with grpc.insecure_channel(tls_server.target) as channel:
        assert _list(channel) == UNAVAILABLE


def test_client_refuses_a_server_it_does_not_trust(tls_server: InProcessServer, pki: Pki) -> None:
    with _tls(tls_server.target, pki.rogue_ca) as channel:
        assert _list(channel) == UNAVAILABLE


def test_mtls_requires_a_client_certificate(mtls_server: InProcessServer, pki: Pki) -> None:
    with _tls(mtls_server.target, pki.ca) as channel:
        assert _list(channel) == UNAVAILABLE
    with grpc.insecure_channel(mtls_server.target) as channel:
        assert _list(channel) == UNAVAILABLE


def test_mtls_refuses_a_certificate_of_another_ca(mtls_server: InProcessServer, pki: Pki) -> None:
    with _tls(mtls_server.target, pki.ca, pki.rogue_client) as channel:
        assert _list(channel) == UNAVAILABLE


def test_mtls_accepts_a_client_certificate(mtls_server: InProcessServer, pki: Pki) -> None:
    with _tls(mtls_server.target, pki.ca, pki.client) as channel:
        assert _list(channel) == grpc.StatusCode.OK


def test_tls_with_tokens_and_standard_call_credentials(pki: Pki, tmp_path: Path) -> None:
    """TLS plus bearer tokens; gRPC's own access-token call credentials (what Go's
    ``oauth.TokenSource`` and Java's ``CallCredentials`` send) are understood as is."""
    tokens = Tokens(tmp_path / "tokens", [("tls-tenant", Role.READ_ONLY)])
    token = tokens["tls-tenant", Role.READ_ONLY]
    config = ServerConfig(
        tls_cert=str(pki.server.cert), tls_key=str(pki.server.key), tokens_file=str(tokens.path)
    )
    with InProcessServer(config) as server:
        with _tls(server.target, pki.ca) as channel:
            assert _list(channel) == grpc.StatusCode.UNAUTHENTICATED
            assert _list(channel, bearer(token)) == grpc.StatusCode.OK
        creds = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_pem),
            grpc.access_token_call_credentials(token),
        )
        with grpc.secure_channel(server.target, creds) as channel:
            assert _list(channel) == grpc.StatusCode.OK


# --- configuration errors: caught before the server starts, without echoing key material ---


def test_tls_paths_must_come_in_pairs(pki: Pki) -> None:
    assert check_tls_paths("", "", "") is None
    with pytest.raises(SecurityConfigError, match="private key is missing"):
        check_tls_paths(str(pki.server.cert), "", "")
    with pytest.raises(SecurityConfigError, match="certificate is missing"):
        check_tls_paths("", str(pki.server.key), "")
    with pytest.raises(SecurityConfigError, match="mutual TLS"):
        check_tls_paths("", "", str(pki.ca.cert))


def _config_error(config: TlsConfig) -> str:
    with pytest.raises(SecurityConfigError) as info:
        server_credentials(config)
    return str(info.value)


def _assert_no_key_material(message: str, pki: Pki) -> None:
    for ident in (pki.server, pki.client, pki.ca):
        for pem in (ident.key_pem, ident.cert_pem):
            body = [line for line in pem.decode().splitlines() if "-----" not in line]
            assert not any(line in message for line in body)


def test_key_must_match_the_certificate(pki: Pki) -> None:
    message = _config_error(TlsConfig(cert=str(pki.server.cert), key=str(pki.client.key)))
    assert "not a PEM certificate chain and its matching PEM private key" in message
    assert str(pki.server.cert) in message and str(pki.client.key) in message
    _assert_no_key_material(message, pki)


def test_encrypted_key_is_refused(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.server.key_pem, password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    message = _config_error(TlsConfig(cert=str(pki.server.cert), key=str(encrypted)))
    assert "is encrypted" in message


def test_unreadable_files_are_named(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    assert "cannot read the TLS certificate" in _config_error(
        TlsConfig(cert=missing, key=str(pki.server.key))
    )
    assert "cannot read the TLS private key" in _config_error(
        TlsConfig(cert=str(pki.server.cert), key=missing)
    )
    assert "cannot read the TLS client CA" in _config_error(
        TlsConfig(cert=str(pki.server.cert), key=str(pki.server.key), client_ca=missing)
    )


def test_client_ca_must_hold_a_certificate(pki: Pki) -> None:
    message = _config_error(
        TlsConfig(cert=str(pki.server.cert), key=str(pki.server.key), client_ca=str(pki.ca.key))
    )
    assert "holds no PEM certificate" in message
    _assert_no_key_material(message, pki)


def test_flags_read_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "HYPERDIAL_TLS_CERT": "c.pem",
        "HYPERDIAL_TLS_KEY": "k.pem",
        "HYPERDIAL_TLS_CLIENT_CA": "ca.pem",
        "HYPERDIAL_TOKENS_FILE": "tokens",
    }.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args([])
    assert (args.tls_cert, args.tls_key, args.tls_client_ca, args.tokens_file) == (
        "c.pem",
        "k.pem",
        "ca.pem",
        "tokens",
    )
    args = build_parser().parse_args(["--tls-cert", "other.pem"])
    assert args.tls_cert == "other.pem"


def test_serve_exits_2_on_a_bad_tls_setting(pki: Pki) -> None:
    # In a process group of its own: a server that starts after all is killed, with whatever
    # it started, on every path (timeout and interrupt included).
    done = run(
        [
            sys.executable,
            "-m",
            "hyperdial_server",
            "--port",
            "0",
            "--tls-cert",
            str(pki.server.cert),
        ],
        timeout=60,
    )
    assert done.returncode == 2
    assert "TLS needs both a certificate and a private key" in done.stderr


def test_serve_process_with_mtls_from_the_environment(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hyperdial serve`` configured by environment variables only, as in a container."""
    monkeypatch.setenv("HYPERDIAL_TLS_CERT", str(pki.server.cert))
    monkeypatch.setenv("HYPERDIAL_TLS_KEY", str(pki.server.key))
    monkeypatch.setenv("HYPERDIAL_TLS_CLIENT_CA", str(pki.ca.cert))
    server = ServerProcess()
    try:
        with _tls(server.target, pki.ca, pki.client) as channel:
            assert _list(channel) == grpc.StatusCode.OK
        with _tls(server.target, pki.ca) as channel:
            assert _list(channel) == UNAVAILABLE
    finally:
        assert server.terminate() == 0
