"""``hyperdial serve``: flags, each with an environment variable and a documented default."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from hyperdial_server import __version__
from hyperdial_server.server import RunningServer, ServerConfig, serve


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    """The ``hyperdial serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hyperdial serve",
        description="Run the hyperdial tuning service (gRPC). Without --redis the studies live "
        "in memory and are lost when the server stops.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default=_env("HYPERDIAL_HOST", "127.0.0.1"),
        help="address to listen on; 0.0.0.0 for every interface (env HYPERDIAL_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(_env("HYPERDIAL_PORT", "50051")),
        help="port to listen on; 0 picks a free one (env HYPERDIAL_PORT)",
    )
    parser.add_argument(
        "--redis",
        default=_env("HYPERDIAL_REDIS_URL", ""),
        metavar="URL",
        help="Redis URL (redis://[:password@]host:port/db, rediss:// for TLS); empty: the "
        "embedded in-memory store (env HYPERDIAL_REDIS_URL)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=float(_env("HYPERDIAL_GRACE", "10")),
        help="seconds in-flight calls get to finish on SIGTERM (env HYPERDIAL_GRACE)",
    )
    parser.add_argument(
        "--no-reflection",
        action="store_true",
        default=_env("HYPERDIAL_NO_REFLECTION", "") not in ("", "0", "false"),
        help="do not serve gRPC server reflection (env HYPERDIAL_NO_REFLECTION=1)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("HYPERDIAL_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="(env HYPERDIAL_LOG_LEVEL)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hyperdial serve``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = ServerConfig(
        host=args.host,
        port=args.port,
        redis_url=args.redis,
        grace=args.grace,
        reflection=not args.no_reflection,
    )

    def ready(running: RunningServer) -> None:
        # One machine-readable line on stdout so scripts and tests can find a --port 0 server.
        print(f"hyperdial {__version__} listening on {config.host}:{running.port}", flush=True)

    try:
        asyncio.run(serve(config, ready))
    except (OSError, ValueError) as e:
        print(f"hyperdial serve: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
