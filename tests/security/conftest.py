"""Fixtures of the security tests: a throwaway PKI and a token-protected server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hyperdial_server.security import Role
from hyperdial_server.server import ServerConfig
from tests.security.pki import Pki, make_pki
from tests.security.tokens import Tokens
from tests.server_harness import InProcessServer

#: Tenants of the token fixtures and the roles each has a token for.
GRANTS = [
    ("alpha", Role.READ_ONLY),
    ("alpha", Role.READ_WRITE),
    ("alpha", Role.ADMIN),
    ("beta", Role.READ_ONLY),
    ("beta", Role.READ_WRITE),
    ("beta", Role.ADMIN),
]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """CA, server, client and rogue identities, generated for this session only."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """One token per (tenant, role) of ``GRANTS`` and a tokens file with their hashes."""
    return Tokens(tmp_path_factory.mktemp("tokens") / "tokens", GRANTS)


@pytest.fixture(scope="session")
def auth_server(tokens: Tokens) -> Iterator[InProcessServer]:
    """A plaintext server on the memory store that requires the session's tokens."""
    with InProcessServer(ServerConfig(tokens_file=str(tokens.path))) as server:
        yield server
