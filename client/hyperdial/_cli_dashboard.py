"""``hyperdial dashboard``: the web dashboard over a running service, in the foreground.

It reads the service with the asyncio client and the connection options of every other command
(``--target``, ``--tls``, ``--ca-cert``, ``--token``...). It needs the ``dashboard`` extra
(Starlette and uvicorn), imported only here, so the client-only install runs every other
command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from hyperdial._cli_common import EXIT_OK, EXIT_USAGE

__all__ = ["DASHBOARD_EXTRA_HINT", "add_dashboard_parser", "run_dashboard"]

#: Printed when ``hyperdial dashboard`` cannot import the extra.
DASHBOARD_EXTRA_HINT = (
    "hyperdial dashboard needs the dashboard extra: from a checkout, python3 -m pip install "
    "'.[dashboard]' (once hyperdial is published: pip install 'hyperdial[dashboard]')"
)
#: Modules of the extra: their absence means the extra is not installed.
_EXTRA_MODULES = frozenset({"starlette", "uvicorn"})


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port number (0 to 65535), not {value!r}")
    return port


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0.5 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"seconds from 0.5 to 3600, not {value!r}")
    return seconds


def add_dashboard_parser(sub: argparse.ArgumentParser) -> None:
    """The options of ``hyperdial dashboard`` besides the connection's."""
    env = os.environ.get
    sub.add_argument(
        "--host",
        default=env("HYPERDIAL_DASHBOARD_HOST", "127.0.0.1"),
        help="address the web server listens on; 0.0.0.0 for every interface "
        "(env HYPERDIAL_DASHBOARD_HOST; default 127.0.0.1)",
    )
    sub.add_argument(
        "--port",
        type=_port,
        default=env("HYPERDIAL_DASHBOARD_PORT", "8080"),
        help="port of the web server; 0 picks a free one (env HYPERDIAL_DASHBOARD_PORT; "
        "default 8080)",
    )
    sub.add_argument(
        "--namespace",
        default=env("HYPERDIAL_DASHBOARD_NAMESPACE") or None,
        help="the namespace to show on the pages: the token's (the service never tells a "
        "client its namespace); without a token the service's is 'default', shown as such "
        "(env HYPERDIAL_DASHBOARD_NAMESPACE)",
    )
    sub.add_argument(
        "--poll",
        type=_seconds,
        default=env("HYPERDIAL_DASHBOARD_POLL", "2"),
        metavar="SECONDS",
        help="how often an open page asks for changes (env HYPERDIAL_DASHBOARD_POLL; default 2)",
    )


def _missing_extra(error: ImportError) -> bool:
    name = (error.name or "").split(".")[0]
    return isinstance(error, ModuleNotFoundError) and name in _EXTRA_MODULES


def run_dashboard(args: argparse.Namespace, client_settings: Mapping[str, Any]) -> int:
    """Serves the dashboard until SIGINT or SIGTERM.

    Args:
        args: The parsed command line.
        client_settings: Keyword arguments of the client (TLS, token, retries, channel
            options), as every command builds them.

    Returns:
        The exit status.
    """
    try:
        from hyperdial.aio import AsyncClient
        from hyperdial.dashboard import DashboardServer, DashboardSettings, create_app
    except ImportError as e:
        if not _missing_extra(e):
            raise
        print(f"{DASHBOARD_EXTRA_HINT}\n(missing module: {e.name})", file=sys.stderr)
        return EXIT_USAGE
    target = args.target
    namespace = args.namespace
    if namespace is None and not client_settings.get("token"):
        namespace = "default"  # a service without tokens keeps every study there

    def connect() -> AsyncClient:
        return AsyncClient(target, **client_settings)

    settings = DashboardSettings(
        connect, target=target, namespace=namespace, poll_seconds=args.poll
    )
    try:
        server = DashboardServer(create_app(settings), args.host, args.port)
    except OSError as e:
        print(
            f"hyperdial: error: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # One machine-readable line, as hyperdial serve prints: scripts and tests read the URL.
    print(f"hyperdial dashboard on {server.url} reading {target}", flush=True)
    server.serve_forever()
    return EXIT_OK
