"""The web dashboard beside a replica (``hyperdial serve --dashboard-port``).

The dashboard is the client's (``hyperdial.dashboard``): it reads this replica over loopback
with the asyncio client, as ``hyperdial dashboard`` reads any service, in a thread with its own
event loop, so that building the JSON of a big study never holds up the replica's gRPC loop.
It is meant for one command on a laptop; beside a TLS replica, run ``hyperdial dashboard``
with the client's TLS options instead (``docs/dashboard.md``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hyperdial_server.security import Role, SecurityConfigError, TokenRegistry, check_token

if TYPE_CHECKING:
    from hyperdial.dashboard import DashboardServer

logger = logging.getLogger("hyperdial.server")

#: Printed when ``--dashboard-port`` is given without the dashboard extra installed.
DASHBOARD_EXTRA_HINT = (
    "--dashboard-port needs the dashboard extra: from a checkout, python3 -m pip install "
    "'.[server,dashboard]' (once hyperdial is published: pip install "
    "'hyperdial[server,dashboard]')"
)


class DashboardConfigError(ValueError):
    """``--dashboard-port`` cannot run with the other settings; the message says what to do."""


def dashboard_token(
    tokens: TokenRegistry | None, token_file: str, *, tls: bool
) -> tuple[str | None, str]:
    """Checks the dashboard's settings before anything opens.

    Args:
        tokens: The server's tokens (``None``: the server trusts every caller).
        token_file: ``--dashboard-token-file``; empty for none.
        tls: Whether the replica speaks TLS.

    Returns:
        The token the dashboard reads with (``None`` for none) and the namespace it sees.

    Raises:
        DashboardConfigError: TLS is on, or tokens are on without a dashboard token.
        SecurityConfigError: The token file cannot be read, or holds no token of the server.
    """
    if tls:
        raise DashboardConfigError(
            "--dashboard-port serves the dashboard beside a plaintext replica (a laptop); beside "
            "a TLS replica run 'hyperdial dashboard --target HOST:PORT --ca-cert PEM "
            "--token-file FILE' as its own process (docs/dashboard.md)"
        )
    if tokens is None:
        if token_file:
            raise DashboardConfigError(
                "--dashboard-token-file is for a server with --tokens-file; this one has none"
            )
        return None, "default"
    if not token_file:
        raise DashboardConfigError(
            "--dashboard-port beside --tokens-file needs --dashboard-token-file: a file holding "
            "the token the dashboard reads with (a read-only one is enough; its namespace is "
            "the one the dashboard shows)"
        )
    try:
        token = check_token(Path(token_file).read_text(encoding="utf-8").strip())
    except OSError as e:
        raise SecurityConfigError(
            f"cannot read --dashboard-token-file {token_file}: {e.strerror or e}"
        ) from None
    except ValueError as e:
        raise SecurityConfigError(f"--dashboard-token-file {token_file}: {e}") from None
    principal = tokens.resolve(token)
    if principal is None:
        raise SecurityConfigError(
            f"the token in --dashboard-token-file {token_file} is not in the tokens file"
        )
    if principal.role is not Role.READ_ONLY:
        logger.warning(
            "the dashboard's token (%s) is %s: a read-only token is enough",
            principal.label,
            principal.role.value,
        )
    return token, principal.namespace


def loopback(host: str, port: int) -> str:
    """The address the dashboard reaches a replica listening on ``host:port`` at."""
    if host in ("", "0.0.0.0", "localhost"):
        return f"127.0.0.1:{port}"
    if host in ("::", "[::]"):
        return f"[::1]:{port}"
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def open_dashboard(
    host: str, port: int, target: str, token: str | None, namespace: str
) -> DashboardServer:
    """Binds the dashboard's port (not serving yet: :meth:`DashboardServer.start`).

    Raises:
        DashboardConfigError: The dashboard extra is not installed.
        OSError: The port cannot be bound.
    """
    try:
        from hyperdial.aio import AsyncClient
        from hyperdial.dashboard import DashboardServer, DashboardSettings, create_app
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("starlette", "uvicorn"):
            raise DashboardConfigError(
                f"{DASHBOARD_EXTRA_HINT} (missing module: {e.name})"
            ) from None
        raise

    def connect() -> AsyncClient:
        # Plaintext over loopback; no health check (a replica whose store is out answers
        # STORE_UNAVAILABLE, which the pages show); no lease renewal (it asks for nothing).
        return AsyncClient(target, token=token, health_check=False, renew_leases=False)

    settings = DashboardSettings(connect, target=target, namespace=namespace)
    try:
        return DashboardServer(create_app(settings), host, port)
    except OSError as e:
        raise OSError(f"cannot listen on {host}:{port} for the dashboard: {e.strerror or e}") from e
