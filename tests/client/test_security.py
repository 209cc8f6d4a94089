"""The client's TLS and token options against a real server with mutual TLS and bearer tokens.

Certificates are made at run time (``tests/security/pki.py``); tokens are fresh random ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hyperdial as hd
from hyperdial import cli
from hyperdial.aio import AsyncClient
from hyperdial_server.security import Role
from hyperdial_server.server import ServerConfig
from tests.client._support import RetryLog, new_id
from tests.security.pki import Pki, make_pki
from tests.security.tokens import Tokens
from tests.server_harness import InProcessServer

SPACE = [hd.Float("x", 0.0, 1.0)]
WRITER = ("team-a", Role.READ_WRITE)
ADMIN = ("team-a", Role.ADMIN)
OTHER = ("team-b", Role.ADMIN)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return Tokens(tmp_path_factory.mktemp("tokens") / "tokens.txt", [WRITER, ADMIN, OTHER])


@pytest.fixture(scope="module")
def secure_server(pki: Pki, tokens: Tokens) -> Iterator[InProcessServer]:
    """Mutual TLS and tokens: the strictest server."""
    config = ServerConfig(
        tls_cert=str(pki.server.cert),
        tls_key=str(pki.server.key),
        tls_client_ca=str(pki.ca.cert),
        tokens_file=str(tokens.path),
    )
    with InProcessServer(config) as server:
        yield server


def credentials(pki: Pki) -> object:
    return hd.tls_credentials(pki.ca.cert, client_cert=pki.client.cert, client_key=pki.client.key)


def secure_client(server: InProcessServer, pki: Pki, token: str | None, **kw: object) -> hd.Client:
    return hd.Client(server.target, tls=credentials(pki), token=token, **kw)  # type: ignore[arg-type]


def test_tls_and_token_on_every_call(
    secure_server: InProcessServer, pki: Pki, tokens: Tokens
) -> None:
    with secure_client(secure_server, pki, tokens[WRITER]) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random", lease_timeout=1.0)
        study.optimize(lambda t: float(t.params["x"]), n_trials=3, n_workers=2)
        assert len(study.trials(["COMPLETED"])) == 3
        # The background heartbeats carry the token too: the lease moves on.
        (trial,) = study.ask()
        assert trial.lease_expire_time is not None
        while study.get_trial(trial.number).lease_expire_time <= trial.lease_expire_time:  # type: ignore[operator]
            time.sleep(0.05)
        assert study.tell(trial, 0.5).state == "COMPLETED"
        # Deleting needs the admin role.
        with pytest.raises(hd.PermissionDeniedError) as denied:
            client.delete_study(study)
        assert denied.value.reason == "ROLE_INSUFFICIENT"
    with secure_client(secure_server, pki, tokens[ADMIN]) as admin:
        admin.delete_study(study.study_id)


def test_missing_wrong_and_foreign_tokens(
    secure_server: InProcessServer, pki: Pki, tokens: Tokens, retry_log: RetryLog
) -> None:
    with secure_client(secure_server, pki, tokens[WRITER]) as client:
        study = client.create_study(new_id(), SPACE)
    with secure_client(secure_server, pki, None) as anonymous:
        with pytest.raises(hd.UnauthenticatedError) as missing:
            anonymous.get_study(study.study_id)
    assert missing.value.reason == "TOKEN_MISSING"
    with secure_client(secure_server, pki, "x" * 43) as wrong:
        with pytest.raises(hd.UnauthenticatedError) as invalid:
            wrong.get_study(study.study_id)
    assert invalid.value.reason == "TOKEN_INVALID"
    # Another tenant cannot tell the study exists.
    with secure_client(secure_server, pki, tokens[OTHER]) as foreign:
        with pytest.raises(hd.NotFoundError) as hidden:
            foreign.get_study(study.study_id)
    assert hidden.value.reason == "STUDY_NOT_FOUND"
    assert retry_log.records == []  # refusals are answers, not outages: never retried


def test_plaintext_or_no_client_certificate_cannot_connect(
    secure_server: InProcessServer, pki: Pki, tokens: Tokens
) -> None:
    once = hd.RetryPolicy(deadline=None, max_attempts=1)
    with hd.Client(secure_server.target, token=tokens[WRITER], retry=once) as plain:
        with pytest.raises(hd.UnavailableError):
            plain.get_study("anything")
    no_cert = hd.tls_credentials(pki.ca.cert)
    with hd.Client(secure_server.target, tls=no_cert, token=tokens[WRITER], retry=once) as c:
        with pytest.raises(hd.UnavailableError):
            c.get_study("anything")


def test_async_client_with_tls_and_token(
    secure_server: InProcessServer, pki: Pki, tokens: Tokens
) -> None:
    async def main() -> list[str]:
        async with AsyncClient(
            secure_server.target,
            tls=credentials(pki),
            token=tokens[WRITER],  # type: ignore[arg-type]
        ) as client:
            study = await client.create_study(new_id(), SPACE, algorithm="random")
            await study.optimize(lambda t: float(t.params["x"]), n_trials=2)
            return [str(t.state) for t in await study.trials()]

    assert asyncio.run(main()) == ["COMPLETED", "COMPLETED"]

    async def anonymous() -> None:
        async with AsyncClient(secure_server.target, tls=credentials(pki)) as client:  # type: ignore[arg-type]
            await client.get_study("anything")

    with pytest.raises(hd.UnauthenticatedError):
        asyncio.run(anonymous())


def test_cli_flags(
    secure_server: InProcessServer,
    pki: Pki,
    tokens: Tokens,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with secure_client(secure_server, pki, tokens[WRITER]) as client:
        study = client.create_study(new_id(), SPACE)
    token_file = tmp_path / "token"
    token_file.write_text(tokens[WRITER] + "\n")
    tls = [
        "--target", secure_server.target,
        "--ca-cert", str(pki.ca.cert),
        "--client-cert", str(pki.client.cert),
        "--client-key", str(pki.client.key),
    ]  # fmt: skip
    capsys.readouterr()
    assert (
        cli.main(
            ["studies", "get", study.study_id, "--json", *tls, "--token-file", str(token_file)]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["name"] == study.name
    assert cli.main(["studies", "list", *tls]) == cli.EXIT_DENIED
    err = capsys.readouterr().err
    assert err.startswith("hyperdial: error: TOKEN_MISSING: ") and err.count("\n") == 1
    assert cli.main(["studies", "delete", study.study_id, *tls, "--token", tokens[WRITER]]) == 6
    assert "ROLE_INSUFFICIENT" in capsys.readouterr().err
    assert cli.main(["studies", "list", *tls, "--token-file", str(tmp_path / "none")]) == 5
    assert "cannot read" in capsys.readouterr().err


def test_cli_tls_with_the_system_roots_and_token_from_the_environment(
    pki: Pki, tokens: Tokens
) -> None:
    config = ServerConfig(
        tls_cert=str(pki.server.cert), tls_key=str(pki.server.key), tokens_file=str(tokens.path)
    )
    with InProcessServer(config) as server:
        env = {
            **os.environ,
            "HYPERDIAL_TARGET": server.target,
            "HYPERDIAL_TLS": "1",
            "HYPERDIAL_TOKEN": tokens[WRITER],
            # gRPC's trusted roots, read by --tls without --ca-cert: here, the test CA.
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(pki.ca.cert),
        }
        result = subprocess.run(
            [sys.executable, "-m", "hyperdial", "studies", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
