"""No token, Redis password or key material in logs or error messages.

A real ``hyperdial serve`` process with TLS, a tokens file and a password-protected Redis, at
DEBUG log level, gets good calls, every kind of bad credential and a Redis outage; then its
whole log and every error message it sent are searched for the secrets.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import grpc

from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.security import Role, hash_token, new_token
from tests.e2e.protocol import measurement
from tests.process_groups import run
from tests.redis_server import RedisServer
from tests.security.calls import SPEC, new_id, stub
from tests.security.pki import Pki
from tests.security.tokens import Tokens, bearer
from tests.server_harness import ServerProcess

PASSWORD = f"redis-pw-{secrets.token_hex(16)}"


def _pem_body(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and "-----" not in line]


def _assert_clean(text: str, secret_values: list[str], where: str) -> None:
    for value in secret_values:
        assert value not in text, f"a secret ({value[:4]}...) appears in {where}"


def test_no_secret_in_logs_or_errors(pki: Pki, tmp_path: Path) -> None:
    tokens = Tokens(tmp_path / "tokens", [("acme", Role.ADMIN), ("acme", Role.READ_ONLY)])
    admin, reader = tokens["acme", Role.ADMIN], tokens["acme", Role.READ_ONLY]
    near_miss = admin[:-1] + ("A" if admin[-1] != "A" else "B")
    unknown = new_token()
    secret_values = [admin, reader, near_miss, unknown, PASSWORD, quote(PASSWORD, safe="")]
    secret_values += _pem_body(pki.server.key_pem)
    errors: list[str] = []

    with RedisServer("--requirepass", PASSWORD, password=PASSWORD) as backing:
        server = ServerProcess(
            backing.url,
            extra=[
                "--log-level", "DEBUG",
                "--tls-cert", str(pki.server.cert),
                "--tls-key", str(pki.server.key),
                "--tokens-file", str(tokens.path),
            ],
        )  # fmt: skip
        try:
            creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_pem)
            with grpc.secure_channel(server.target, creds) as channel:
                s = stub(channel)
                study_id = new_id("secret")
                create = ts.CreateStudyRequest(study_id=study_id, spec=SPEC)
                s.CreateStudy(create, metadata=bearer(admin))
                parent = f"studies/{study_id}"
                ask = ts.SuggestTrialsRequest(parent=parent, count=1)
                trial = s.SuggestTrials(ask, metadata=bearer(admin)).trials[0]
                tell = ts.CompleteTrialRequest(
                    name=trial.name, final_measurement=measurement(loss=0.1)
                )
                s.CompleteTrial(tell, metadata=bearer(admin))
                bad_metadata = [
                    bearer(near_miss),
                    bearer(unknown),
                    bearer(hash_token(admin)),
                    (("authorization", f"Basic {admin}"),),
                    (("authorization", admin),),
                    bearer(admin) + bearer(near_miss),
                    bearer(reader),  # valid, but may not delete
                ]
                for md in bad_metadata:
                    try:
                        s.DeleteStudy(ts.DeleteStudyRequest(name=parent), metadata=md)
                    except grpc.RpcError as e:
                        errors.append(f"{e.code()} {e.details()} {e.trailing_metadata()}")
                    else:
                        raise AssertionError(f"a bad credential was accepted: {md[0][0]}")
                backing.stop()  # Redis outage: errors name the store, never its password
                for _ in range(3):
                    try:
                        s.GetStudy(ts.GetStudyRequest(name=parent), metadata=bearer(admin))
                    except grpc.RpcError as e:
                        errors.append(f"{e.code()} {e.details()} {e.trailing_metadata()}")
                assert any("UNAVAILABLE" in e for e in errors)
        finally:
            try:
                code = server.proc.wait(timeout=0) if server.proc.poll() is not None else None
                assert code is None, "the server died"
                server.proc.terminate()
                server.proc.wait(timeout=60)
                server.log.seek(0)
                log = server.log.read()
            finally:  # on every path: the server's whole process group, and its files
                server.terminate()
    assert "refused /hyperdial.v1.TuningService/DeleteStudy" in log  # the log did record them
    assert "TOKEN_INVALID" in log
    assert "(token 'acme-read-only'): ROLE_INSUFFICIENT" in log
    assert len(errors) == len(bad_metadata) + 3
    _assert_clean(log, secret_values, "the server log")
    for message in errors:
        _assert_clean(message, secret_values, "an error message")


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    """``hyperdial serve`` expected to refuse to start. In a process group of its own: one that
    starts after all is killed, with whatever it started, on every path (timeout included)."""
    return run([sys.executable, "-m", "hyperdial_server", "--port", "0", *args], timeout=60)


def test_startup_errors_show_no_secret(pki: Pki, tmp_path: Path) -> None:
    """Mistakes an operator makes with secrets: the refusal names the file, not its contents."""
    token = new_token()
    plaintext = tmp_path / "tokens"
    plaintext.write_text(f"{token} acme admin\n")  # the token itself instead of its hash
    done = _serve("--tokens-file", str(plaintext))
    assert done.returncode == 2
    assert "never the token itself" in done.stderr and "line 1" in done.stderr
    _assert_clean(done.stdout + done.stderr, [token], "the startup error")

    # The key where the certificate belongs, and the other way round.
    done = _serve("--tls-cert", str(pki.server.key), "--tls-key", str(pki.server.cert))
    assert done.returncode == 2
    _assert_clean(done.stdout + done.stderr, _pem_body(pki.server.key_pem), "the startup error")

    done = _serve("--redis", f"http://:{PASSWORD}@127.0.0.1:1/0")
    assert done.returncode == 2 and "unsupported store URL" in done.stderr
    _assert_clean(done.stdout + done.stderr, [PASSWORD], "the startup error")
