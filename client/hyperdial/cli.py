"""The ``hyperdial`` command: ``hyperdial serve`` runs the service (server extra needed).

The client-only install must be able to run this module, so the server is imported only
inside the ``serve`` command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from hyperdial import __version__

#: Printed when ``hyperdial serve`` cannot import the server.
SERVER_EXTRA_HINT = "hyperdial serve needs the server extra: pip install 'hyperdial[server]'"


def build_parser() -> argparse.ArgumentParser:
    """The ``hyperdial`` argument parser, one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="hyperdial", description="Hyperparameter tuning as a service."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Everything after "serve" (even --help) belongs to the server's own parser.
    commands.add_parser(
        "serve",
        help="run the tuning service (see: hyperdial serve --help)",
        add_help=False,
        prefix_chars="\0",
    )
    return parser


#: Top-level modules of the server extra: their absence means the extra is not installed.
_SERVER_MODULES = frozenset(
    {"hyperdial_server", "numpy", "scipy", "redis", "grpc_status", "grpc_health", "grpc_reflection"}
)


def _missing_server_module(error: ImportError) -> str | None:
    """The module of the server extra whose absence caused ``error``, if that is the cause."""
    name = error.name or ""
    if not isinstance(error, ModuleNotFoundError):
        return None
    if name.split(".")[0] in _SERVER_MODULES - {"hyperdial_server"} or name == "hyperdial_server":
        return name
    if name == "google.rpc" or name.startswith("google.rpc."):  # googleapis-common-protos
        return name
    return None


def _serve(args: Sequence[str]) -> int:
    try:
        from hyperdial_server.cli import main as serve_main
    except ImportError as e:
        missing = _missing_server_module(e)
        if missing is None:
            raise  # the server is installed but broken: the traceback is what helps
        print(f"{SERVER_EXTRA_HINT}\n(missing module: {missing})", file=sys.stderr)
        return 2
    return serve_main(list(args))


_COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"serve": _serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hyperdial`` console script.

    Args:
        argv: The arguments, without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status.
    """
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as e:  # --help and usage errors: return, do not exit, the status
        return e.code if isinstance(e.code, int) else 2
    if args.version:
        print(f"hyperdial {__version__}")
        return 0
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("hyperdial: error: a command is required", file=sys.stderr)
        return 2
    if rest and args.command not in ("serve",):
        parser.print_usage(sys.stderr)
        print(f"hyperdial: error: unrecognized arguments: {' '.join(rest)}", file=sys.stderr)
        return 2
    return _COMMANDS[args.command](rest)


if __name__ == "__main__":
    sys.exit(main())
