"""Redis with a password (and an ACL user) in the URL, and Redis over TLS, end to end."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.security import Role
from hyperdial_server.server import ServerConfig
from hyperdial_server.store._redis_connect import _public_url
from tests.e2e.protocol import measurement
from tests.redis_server import RedisServer, free_port
from tests.security.calls import SPEC, error_info, new_id, stub
from tests.security.pki import Pki
from tests.security.tokens import Tokens, bearer
from tests.server_harness import InProcessServer

# Characters that must be percent-encoded in a URL, so decoding is exercised too.
PASSWORD = f"pw:{secrets.token_hex(12)}@/%"


def _url(port: int, *, password: str = PASSWORD, user: str = "", scheme: str = "redis") -> str:
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return Tokens(tmp_path_factory.mktemp("redis-tokens") / "tokens", [("rtenant", Role.ADMIN)])


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    with RedisServer("--requirepass", PASSWORD, password=PASSWORD) as server:
        yield server


def _roundtrip(server: InProcessServer, token: str) -> str:
    """Create, ask, tell and read back a study through ``server``; returns its id."""
    md = bearer(token)
    with grpc.insecure_channel(server.target) as channel:
        s = stub(channel)
        study_id = new_id("redis")
        s.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=SPEC), metadata=md)
        req = ts.SuggestTrialsRequest(parent=f"studies/{study_id}", count=2)
        trials = s.SuggestTrials(req, metadata=md).trials
        for t in trials:
            done = ts.CompleteTrialRequest(name=t.name, final_measurement=measurement(loss=0.5))
            s.CompleteTrial(done, metadata=md)
        got = s.GetStudy(ts.GetStudyRequest(name=f"studies/{study_id}"), metadata=md).study
        assert got.trial_count == 2
    return study_id


def _study_keys(client: redis.Redis, namespace: str, study_id: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=f"hd:{{{namespace}/{study_id}}}:*"))


def test_password_in_the_url(redis_with_password: RedisServer, tokens: Tokens) -> None:
    config = ServerConfig(redis_url=_url(redis_with_password.port), tokens_file=str(tokens.path))
    with InProcessServer(config) as server:
        study_id = _roundtrip(server, tokens["rtenant", Role.ADMIN])
    admin = redis.Redis(port=redis_with_password.port, password=PASSWORD)
    assert _study_keys(admin, "rtenant", study_id)
    admin.close()


@pytest.mark.parametrize("password", ["wrong-password", ""], ids=["wrong", "none"])
def test_a_wrong_or_missing_password_is_unavailable_and_not_shown(
    redis_with_password: RedisServer, tokens: Tokens, password: str
) -> None:
    config = ServerConfig(
        redis_url=_url(redis_with_password.port, password=password), tokens_file=str(tokens.path)
    )
    with InProcessServer(config) as server, grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as info:
            stub(channel).ListStudies(
                ts.ListStudiesRequest(), metadata=bearer(tokens["rtenant", Role.ADMIN])
            )
        code, reason, _, message = error_info(info.value)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
        assert f"127.0.0.1:{redis_with_password.port}" in message
        for secret in (PASSWORD, quote(PASSWORD, safe=""), "wrong-password"):
            assert secret not in message


def test_acl_user_limited_to_hyperdial_keys(tokens: Tokens) -> None:
    """An ACL user that may touch only ``hd:*`` keys is enough for the store; the default user
    is switched off, so nothing works without the user's password."""
    acl = [
        "--user",
        "hyperdial",
        "on",
        f">{PASSWORD}",
        "~hd:*",
        "+@all",
        "--user",
        "default",
        "off",
    ]
    with RedisServer(*acl) as backing:
        url = _url(backing.port, user="hyperdial")
        with InProcessServer(ServerConfig(redis_url=url, tokens_file=str(tokens.path))) as server:
            study_id = _roundtrip(server, tokens["rtenant", Role.ADMIN])
        client = redis.Redis(port=backing.port, username="hyperdial", password=PASSWORD)
        assert _study_keys(client, "rtenant", study_id)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("outside-the-prefix", "1")
        client.close()


# --- TLS -------------------------------------------------------------------------------------


def _tls_redis(pki: Pki, *extra: str) -> tuple[RedisServer, int]:
    """A redis-server with a TLS port (its plaintext port stays on, for the test's own checks).

    A redis-server built without TLS fails the test with what to install, unless
    ``HYPERDIAL_TESTS_ALLOW_REDIS_WITHOUT_TLS=1`` says that this machine cannot have one (then the
    test skips, with that reason in the summary)."""
    tls_port = free_port()
    args = [
        "--tls-port", str(tls_port),
        "--tls-cert-file", str(pki.server.cert),
        "--tls-key-file", str(pki.server.key),
        "--tls-ca-cert-file", str(pki.ca.cert),
        *extra,
    ]  # fmt: skip
    server = RedisServer(*args)
    try:
        server.start()
    except RuntimeError as e:
        server.close()
        text = str(e).lower()
        if "tls" in text and ("bad directive" in text or "not supported" in text):
            why = f"{server.binary} was built without TLS support"
            if os.environ.get("HYPERDIAL_TESTS_ALLOW_REDIS_WITHOUT_TLS") == "1":
                pytest.skip(why)
            pytest.fail(
                f"{why}: put a TLS-capable redis-server on PATH (e.g. Debian's redis-server "
                "package); HYPERDIAL_TESTS_ALLOW_REDIS_WITHOUT_TLS=1 skips these "
                "tests instead"
            )
        raise
    return server, tls_port


@pytest.fixture(scope="module")
def tls_redis(pki: Pki) -> Iterator[tuple[RedisServer, int]]:
    server, port = _tls_redis(pki, "--tls-auth-clients", "no", "--requirepass", PASSWORD)
    yield server, port
    server.close()


@pytest.fixture(scope="module")
def mtls_redis(pki: Pki) -> Iterator[tuple[RedisServer, int]]:
    server, port = _tls_redis(pki, "--tls-auth-clients", "yes")
    yield server, port
    server.close()


def test_redis_over_tls_with_a_password(
    tls_redis: tuple[RedisServer, int], pki: Pki, tokens: Tokens
) -> None:
    backing, port = tls_redis
    url = _url(port, scheme="rediss") + f"?ssl_ca_certs={quote(str(pki.ca.cert))}"
    with InProcessServer(ServerConfig(redis_url=url, tokens_file=str(tokens.path))) as server:
        study_id = _roundtrip(server, tokens["rtenant", Role.ADMIN])
    plain = redis.Redis(port=backing.port, password=PASSWORD)
    assert _study_keys(plain, "rtenant", study_id)
    plain.close()


@pytest.mark.parametrize("ca", ["rogue", "system"])
def test_redis_tls_refuses_an_untrusted_server(
    tls_redis: tuple[RedisServer, int], pki: Pki, tokens: Tokens, ca: str
) -> None:
    _, port = tls_redis
    url = _url(port, scheme="rediss")
    if ca == "rogue":
        url += f"?ssl_ca_certs={quote(str(pki.rogue_ca.cert))}"
    with InProcessServer(ServerConfig(redis_url=url, tokens_file=str(tokens.path))) as server:
        with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as info:
            stub(channel).ListStudies(
                ts.ListStudiesRequest(), metadata=bearer(tokens["rtenant", Role.ADMIN])
            )
    code, reason, _, message = error_info(info.value)
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert PASSWORD not in message and quote(PASSWORD, safe="") not in message


def test_redis_mutual_tls(mtls_redis: tuple[RedisServer, int], pki: Pki, tokens: Tokens) -> None:
    _, port = mtls_redis
    base = _url(port, scheme="rediss", password="") + f"?ssl_ca_certs={quote(str(pki.ca.cert))}"
    with_cert = base + f"&ssl_certfile={quote(str(pki.client.cert))}"
    with_cert += f"&ssl_keyfile={quote(str(pki.client.key))}"
    with InProcessServer(ServerConfig(redis_url=with_cert, tokens_file=str(tokens.path))) as server:
        _roundtrip(server, tokens["rtenant", Role.ADMIN])
    with InProcessServer(ServerConfig(redis_url=base, tokens_file=str(tokens.path))) as server:
        with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as info:
            stub(channel).ListStudies(
                ts.ListStudiesRequest(), metadata=bearer(tokens["rtenant", Role.ADMIN])
            )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert isinstance(Path(pki.client.key), Path)


def test_every_secret_of_a_redis_url_is_scrubbed_from_messages() -> None:
    """The URL's password, a password query option and a TLS key passphrase (``ssl_password``)
    are hidden in every spelling; the public form keeps scheme, host, port and database."""
    url = (
        "rediss://user:p%40ss@redis.example:6380/2?password=qp%2Fw&ssl_password=k%20ey"
        "&ssl_certfile=/c.pem"
    )
    where, hide = _public_url(url)
    assert where == "rediss://redis.example:6380/2"
    for secret in ("p@ss", "p%40ss", "qp/w", "qp%2Fw", "k ey", "k%20ey"):
        assert secret in hide, secret
    assert all(h for h in hide)
