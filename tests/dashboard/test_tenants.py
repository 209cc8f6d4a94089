"""A dashboard reads with one token and sees that tenant's namespace only: another tenant's
study is exactly as absent as a study that does not exist. Both ways of running it: on its own
over TLS (``hyperdial dashboard --ca-cert ... --token-file ...``), and beside a replica with
tokens (``hyperdial serve --dashboard-port --dashboard-token-file``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import hyperdial as hd
from hyperdial_server.security import Role
from hyperdial_server.server import ServerConfig
from tests.dashboard.helpers import DashboardProcess, http, wait_for
from tests.security.pki import Pki, make_pki
from tests.security.tokens import Tokens
from tests.server_harness import InProcessServer, ServerProcess

pytestmark = pytest.mark.timeout(300)

GRANTS = [("alpha", Role.READ_ONLY), ("alpha", Role.READ_WRITE), ("beta", Role.READ_WRITE)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return Tokens(tmp_path_factory.mktemp("tokens") / "tokens", GRANTS)


@pytest.fixture(scope="module")
def alpha_token_file(tokens: Tokens, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard-token") / "alpha-read-only"
    path.write_text(tokens["alpha", Role.READ_ONLY] + "\n")
    return path


@pytest.fixture(scope="module")
def tls_server(dashboard_redis_url: str, pki: Pki, tokens: Tokens) -> Iterator[InProcessServer]:
    """A TLS server with tokens on Redis, holding a study of each tenant."""
    config = ServerConfig(
        redis_url=dashboard_redis_url,
        tls_cert=str(pki.server.cert),
        tls_key=str(pki.server.key),
        tokens_file=str(tokens.path),
    )
    with InProcessServer(config) as server:
        tls = hd.tls_credentials(str(pki.ca.cert))
        for tenant, study in (("alpha", "alpha-study"), ("beta", "beta-secret")):
            token = tokens[tenant, Role.READ_WRITE]
            with hd.Client(server.target, tls=tls, token=token, renew_leases=False) as client:
                s = client.create_study(study, [hd.Float("x", 0.0, 1.0)], load_if_exists=True)
                if not s.trial_count:
                    s.add_trial({"x": 0.5}, 1.0)
        yield server


def test_a_read_only_token_sees_its_tenant_only(
    tls_server: InProcessServer, pki: Pki, alpha_token_file: Path
) -> None:
    args = ["--target", tls_server.target, "--ca-cert", str(pki.ca.cert)]
    args += ["--token-file", str(alpha_token_file), "--namespace", "alpha"]
    with DashboardProcess(args) as dashboard:
        studies = wait_for(
            lambda: (a := http(dashboard.url + "/api/studies").json())["studies"] and a,
            "the studies over TLS",
        )
        assert [(s["id"], s["namespace"]) for s in studies["studies"]] == [("alpha-study", "alpha")]
        assert studies["error"] is None

        own = http(dashboard.url + "/studies/alpha-study")
        assert own.status == 200
        hidden = http(dashboard.url + "/studies/beta-secret")
        unknown = http(dashboard.url + "/studies/gamma-nothing")
        assert hidden.status == unknown.status == 404
        # The same page, but for the id: nothing tells that beta's study exists.
        assert hidden.body.replace(b"beta-secret", b"X") == unknown.body.replace(
            b"gamma-nothing", b"X"
        )
        for path in ("trials", "curves", "importance"):
            answer = http(f"{dashboard.url}/api/studies/beta-secret/{path}")
            assert answer.status == 404 and answer.json()["error"]["reason"] == "STUDY_NOT_FOUND"


def test_beside_a_replica_with_tokens_it_needs_its_own_token(
    dashboard_redis_url: str, tokens: Tokens, alpha_token_file: Path, tls_server: InProcessServer
) -> None:
    # tls_server seeded both tenants' studies on this Redis.
    flags = ["--tokens-file", str(tokens.path), "--dashboard-port", "0"]
    with pytest.raises(RuntimeError, match="--dashboard-token-file"):
        ServerProcess(dashboard_redis_url, flags)
    replica = ServerProcess(
        dashboard_redis_url, [*flags, "--dashboard-token-file", str(alpha_token_file)]
    )
    try:
        line = replica.next_line()
        assert line.startswith("dashboard on "), line
        url = line.split(" on ", 1)[1].strip().rstrip("/")
        studies = wait_for(
            lambda: (a := http(url + "/api/studies").json())["studies"] and a, "the studies"
        )
        assert [(s["id"], s["namespace"]) for s in studies["studies"]] == [("alpha-study", "alpha")]
        assert http(url + "/studies/beta-secret").status == 404
    finally:
        replica.close()


def test_beside_a_tls_replica_it_refuses_to_start(dashboard_redis_url: str, pki: Pki) -> None:
    flags = ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)]
    with pytest.raises(RuntimeError, match="hyperdial dashboard --target"):
        ServerProcess(dashboard_redis_url, [*flags, "--dashboard-port", "0"])
