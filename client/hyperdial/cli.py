"""The ``hyperdial`` command.

* ``hyperdial serve`` runs the service (server extra needed; imported only there, so the
  client-only install runs every other command).
* ``hyperdial studies create|list|get|importance|delete``, ``trials list|get``, ``best``,
  ``export`` and ``import`` talk to a running service: readable tables by default, ``--json``
  for scripts (modules ``_cli_show``, ``_cli_importance``, ``_cli_restore``).
* ``hyperdial ask``, ``tell`` and ``heartbeat`` drive trials from shell scripts and batch
  jobs, printing JSON only (module ``_cli_worker``).
* ``hyperdial dashboard`` serves the web dashboard (dashboard extra needed; imported only
  there; module ``_cli_dashboard``).

Exit status: 0 success, 1 other error, 2 usage error, 3 not found, 4 service unreachable or
too slow, 5 invalid input (refused by the service, or a malformed file), 6 not authenticated
or not allowed. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import grpc

from hyperdial import __version__
from hyperdial._channel import tls_credentials
from hyperdial._cli_common import (
    EXIT_DENIED,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandError,
)
from hyperdial._cli_dashboard import add_dashboard_parser, run_dashboard
from hyperdial._cli_importance import studies_importance
from hyperdial._cli_restore import export, import_file
from hyperdial._cli_show import (
    best,
    delete,
    studies_get,
    studies_list,
    trials_get,
    trials_list,
)
from hyperdial._cli_spec import ALGORITHMS, CONSTRAINT_FORMS, PARAM_FORMS
from hyperdial._cli_worker import ask, heartbeat, studies_create, tell
from hyperdial._client import Client
from hyperdial._errors import HyperdialError, ServiceUnreachableError
from hyperdial._records import FORMATS, RecordError
from hyperdial._retry import RetryPolicy

#: Printed when ``hyperdial serve`` cannot import the server.
SERVER_EXTRA_HINT = (
    "hyperdial serve needs the server extra: from a checkout, python3 -m pip install "
    "'.[server]' (once hyperdial is published: pip install 'hyperdial[server]')"
)

__all__ = [
    "EXIT_DENIED",
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

_EXIT_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_INVALID,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_INVALID,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_INVALID,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_INVALID,
    grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_INVALID,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_DENIED,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_DENIED,
}
#: Overall deadline of a command's calls, retries included, in seconds.
DEFAULT_TIMEOUT = 15.0


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _add_connection_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of every command that talks to the service.

    They are accepted before and after the command's name; given after, they win. Only the
    top-level copies carry defaults (a subcommand's defaults would override the top level's).
    """

    def default(value: object) -> Any:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=default(_env("HYPERDIAL_TARGET", "localhost:50051")),
        help="the service: host:port, dns:///host:port (every replica), or "
        "ipv4:A:P,B:Q (env HYPERDIAL_TARGET; default localhost:50051)",
    )
    group.add_argument(
        "--token",
        default=default(_env("HYPERDIAL_TOKEN") or None),
        help="bearer token sent with every call (env HYPERDIAL_TOKEN; prefer the variable or "
        "--token-file: a flag shows in the process list)",
    )
    group.add_argument(
        "--token-file",
        default=default(_env("HYPERDIAL_TOKEN_FILE") or None),
        metavar="FILE",
        help="read the bearer token from FILE (env HYPERDIAL_TOKEN_FILE)",
    )
    group.add_argument(
        "--tls",
        action="store_true",
        default=default(_env("HYPERDIAL_TLS") not in ("", "0", "false")),
        help="use TLS, trusting the system's roots unless --ca-cert (env HYPERDIAL_TLS=1)",
    )
    group.add_argument(
        "--ca-cert",
        default=default(_env("HYPERDIAL_CA_CERT") or None),
        metavar="PEM",
        help="CA certificate(s) to trust; implies --tls (env HYPERDIAL_CA_CERT)",
    )
    group.add_argument(
        "--client-cert",
        default=default(_env("HYPERDIAL_CLIENT_CERT") or None),
        metavar="PEM",
        help="client certificate for mutual TLS; implies --tls (env HYPERDIAL_CLIENT_CERT)",
    )
    group.add_argument(
        "--client-key",
        default=default(_env("HYPERDIAL_CLIENT_KEY") or None),
        metavar="PEM",
        help="private key of --client-cert (env HYPERDIAL_CLIENT_KEY)",
    )
    group.add_argument(
        "--tls-server-name",
        default=default(_env("HYPERDIAL_TLS_SERVER_NAME") or None),
        metavar="NAME",
        help="name to check the server certificate against, when it differs from the "
        "target's host (env HYPERDIAL_TLS_SERVER_NAME)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        # A string default goes through ``type``: a bad variable is a usage error, not a crash.
        default=default(_env("HYPERDIAL_TIMEOUT", f"{DEFAULT_TIMEOUT:g}")),
        metavar="SECONDS",
        help="give up on a call after this long, retries included "
        f"(env HYPERDIAL_TIMEOUT; default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON instead of tables (for scripts)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``hyperdial`` argument parser, one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="hyperdial",
        description="Hyperparameter tuning as a service: run it (serve), or look into a "
        "running one.",
        epilog="exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 unavailable, 5 invalid, "
        "6 not authenticated or not allowed",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    _add_connection_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Everything after "serve" (even --help) belongs to the server's own parser.
    commands.add_parser(
        "serve",
        help="run the tuning service (see: hyperdial serve --help)",
        add_help=False,
        prefix_chars="\0",
    )

    dashboard = commands.add_parser(
        "dashboard",
        help="serve the web dashboard over the service (needs the dashboard extra)",
        description="Serve read-only web pages over a running service: studies, charts of "
        "each study, its trials and running work, updated live (docs/dashboard.md).",
    )
    _add_connection_options(dashboard, defaults=False)
    add_dashboard_parser(dashboard)

    def leaf(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help: str,
        handler: Callable[[Client, argparse.Namespace, TextIO], int],
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help, description=help)
        _add_connection_options(sub, defaults=False)
        sub.set_defaults(handler=handler)
        return sub

    studies = commands.add_parser(
        "studies", help="create, list, show, rank the parameters of, or delete studies"
    )
    studies_commands = studies.add_subparsers(dest="studies_command", metavar="COMMAND")
    studies_commands.required = True
    create = leaf(
        studies_commands,
        "create",
        "create a study from flags (--param, --objective, --constraint) or a spec file (--spec)",
        studies_create,
    )
    create.add_argument("name", help="id of the new study (or studies/ID)")
    create.add_argument(
        "--param",
        action="append",
        metavar="NAME=TYPE:...",
        help=f"a parameter (repeatable, in order): {PARAM_FORMS}",
    )
    create.add_argument(
        "--objective",
        action="append",
        metavar="NAME[:min|max]",
        help="an objective (repeatable); default: one objective 'value', minimised",
    )
    create.add_argument(
        "--constraint",
        action="append",
        metavar="EXPR",
        help=f"an outcome constraint (repeatable): {CONSTRAINT_FORMS}, e.g. 'latency_ms<=20'; "
        "every result then reports its value (tell --constraint-values), and only trials "
        "that hold every constraint are best",
    )
    create.add_argument(
        "--spec",
        metavar="FILE",
        help="the StudySpec as JSON or YAML (YAML needs PyYAML), the shape of the 'spec' of "
        "a JSON export; - for standard input",
    )
    create.add_argument("--algorithm", choices=sorted(ALGORITHMS), help="default: the service's")
    create.add_argument("--seed", type=int, help="default: drawn by the service and recorded")
    create.add_argument("--max-trials", type=int, metavar="N", help="default: no limit")
    create.add_argument("--grid-resolution", type=int, metavar="N", help="grid: values per float")
    create.add_argument(
        "--initial-trials", type=int, metavar="N", help="bayesian: quasi-random trials first"
    )
    create.add_argument(
        "--lease-timeout", type=float, metavar="SECONDS", help="default: the service's"
    )
    create.add_argument(
        "--deterministic-objective",
        action="store_true",
        default=None,
        help="the objectives give the same values for the same parameters: the model fits no "
        "noise (default: it fits the noise from the results)",
    )
    _request_id_option(create, "default: a fresh one")
    leaf(studies_commands, "list", "list every study", studies_list)
    get = leaf(studies_commands, "get", "show a study: spec, objectives, trials", studies_get)
    get.add_argument("study", help="study id or name (studies/ID)")
    importance = leaf(
        studies_commands,
        "importance",
        "rank the parameters of a study by how much they matter to an objective, from its "
        "completed trials (PED-ANOVA; at least 11)",
        studies_importance,
    )
    importance.add_argument("study", help="study id or name (studies/ID)")
    importance.add_argument(
        "--objective", metavar="NAME", help="the objective to explain; default: the first"
    )
    remove = leaf(studies_commands, "delete", "delete studies and all their trials", delete)
    remove.add_argument("study", nargs="+", help="study ids or names")
    remove.add_argument(
        "--yes",
        action="store_true",
        help="when some of the studies do not exist, delete the others (without it, "
        "nothing is deleted)",
    )

    trials = commands.add_parser("trials", help="list the trials of a study, or show one")
    trials_commands = trials.add_subparsers(dest="trials_command", metavar="COMMAND")
    trials_commands.required = True
    tlist = leaf(trials_commands, "list", "list the trials of a study", trials_list)
    tlist.add_argument("study", help="study id or name")
    tlist.add_argument(
        "--state",
        action="append",
        type=str.upper,
        choices=["WAITING", "RUNNING", "COMPLETED", "FAILED", "STOPPED", "INFEASIBLE"],
        help="only trials in this state (repeatable)",
    )
    tget = leaf(
        trials_commands,
        "get",
        "show a trial: parameters, result, learning curve and stop decision",
        trials_get,
    )
    tget.add_argument("study", help="study id or name")
    tget.add_argument("number", type=int, help="the trial's number")

    _worker_commands(commands, leaf)

    top = leaf(commands, "best", "the best trial (the Pareto front with several objectives)", best)
    top.add_argument("study", help="study id or name")
    top.add_argument(
        "--by",
        choices=["observed", "model"],
        default="observed",
        help="judge trials by the values they reported (observed, the default: for "
        "deterministic objectives) or by the model's prediction of their noise-free values "
        "(model: the recommendation, for noisy objectives; shows the predicted mean ± sd and "
        "the measurements at each point)",
    )

    out = leaf(
        commands, "export", "write a study as JSON (spec and trials) or its trials as CSV", export
    )
    out.add_argument("study", help="study id or name")
    out.add_argument("--format", choices=FORMATS, default="csv", help="default: csv")
    out.add_argument(
        "--output", "-o", metavar="FILE", help="write to FILE instead of standard output"
    )

    imp = leaf(
        commands,
        "import",
        "add the finished trials of an export to a study; a JSON export creates the study "
        "from its spec when it does not exist",
        import_file,
    )
    imp.add_argument("study", help="study id or name")
    imp.add_argument("file", help="the file; - for standard input")
    imp.add_argument(
        "--format", choices=FORMATS, help="default: from the file's extension or content"
    )
    imp.add_argument(
        "--ignore-spec",
        action="store_true",
        help="add the trials to an existing study whose spec differs from the file's",
    )
    return parser


#: Adds a subcommand: (group, name, help, handler) -> its parser.
_Leaf = Callable[
    [
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        str,
        str,
        Callable[[Client, argparse.Namespace, TextIO], int],
    ],
    argparse.ArgumentParser,
]


def _request_id_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--request-id",
        metavar="ID",
        help="the call's request id: running the command again with the same id answers "
        f"what the first run did instead of doing it twice ({default})",
    )


def _worker_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], leaf: _Leaf
) -> None:
    """``ask``, ``tell`` and ``heartbeat``: JSON on stdout, for scripts and batch jobs."""
    trial_help = "the trial's number, or its name studies/STUDY/trials/NUMBER"
    asking = leaf(commands, "ask", "hand out running trials; prints JSON", ask)
    asking.add_argument("study", help="study id or name")
    asking.add_argument("--count", type=int, default=1, help="how many trials, 1 to 100")
    asking.add_argument(
        "--client-id",
        default="",
        metavar="ID",
        help="who asks; asking again with the same id while its trials run hands them back",
    )
    _request_id_option(asking, "default: a fresh one, printed")
    telling = leaf(commands, "tell", "record the result of a running trial; prints JSON", tell)
    telling.add_argument("study", help="study id or name")
    telling.add_argument("trial", help=trial_help)
    outcome = telling.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--value", type=float, help="the value of the study's one objective")
    outcome.add_argument(
        "--values",
        nargs="+",
        metavar="NAME=VALUE",
        help="one value per objective",
    )
    outcome.add_argument(
        "--failed",
        metavar="REASON",
        help="the trial failed, and why: the infrastructure failed (a node lost, a "
        "preemption), the point is worth another try",
    )
    outcome.add_argument(
        "--stopped",
        nargs="?",
        const="",
        metavar="REASON",
        help="the trial stopped early (ranked by its last report)",
    )
    outcome.add_argument(
        "--infeasible",
        nargs="?",
        const="",
        metavar="REASON",
        help="the trial's parameters cannot give a result (out of memory, diverged): its "
        "point is never tried again",
    )
    telling.add_argument(
        "--constraint-values",
        nargs="+",
        metavar="NAME=VALUE",
        help="with --value or --values: the value of each outcome constraint of the study",
    )
    telling.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="an annotation (repeatable)"
    )
    _request_id_option(telling, "default: one derived from the trial, the same for every run")
    beat = leaf(commands, "heartbeat", "renew the lease of a running trial; prints JSON", heartbeat)
    beat.add_argument("study", help="study id or name")
    beat.add_argument("trial", help=trial_help)


# -- serve ---------------------------------------------------------------------------------

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
    # One BLAS thread for the server process (see hyperdial_server/__main__.py); set before
    # the server's imports load numpy.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        from hyperdial_server.cli import main as serve_main
    except ImportError as e:
        missing = _missing_server_module(e)
        if missing is None:
            raise  # the server is installed but broken: the traceback is what helps
        print(f"{SERVER_EXTRA_HINT}\n(missing module: {missing})", file=sys.stderr)
        return 2
    return serve_main(list(args))


# -- client commands -------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise RecordError(f"cannot read {args.token_file}: {e.strerror or e}") from None
    return str(args.token) if args.token else None


def _client_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The client's keyword arguments from the connection options (for ``Client`` and
    ``AsyncClient`` alike)."""
    tls: bool | grpc.ChannelCredentials = bool(args.tls)
    if args.ca_cert or args.client_cert or args.client_key:
        tls = tls_credentials(
            args.ca_cert, client_cert=args.client_cert, client_key=args.client_key
        )
    options = []
    if args.tls_server_name:
        options.append(("grpc.ssl_target_name_override", args.tls_server_name))
    if not args.timeout > 0:
        raise RecordError(f"--timeout must be positive; got {args.timeout:g}")
    return {
        "tls": tls,
        "token": _token(args),
        "retry": RetryPolicy(deadline=args.timeout, max_backoff=2.0),
        "options": options,
        "renew_leases": False,
        # A replica is NOT_SERVING only while its store is unusable: its own answer says so
        # (STORE_UNAVAILABLE), where skipping it would read as "cannot reach the service".
        "health_check": False,
    }


def _connect(args: argparse.Namespace) -> Client:
    return Client(args.target, **_client_settings(args))


#: Reasons of an answer from a service that runs but cannot use its store, and what to say.
_STORE_REASONS = {
    "STORE_UNAVAILABLE": "its store is unavailable",
    "STORE_READ_ONLY": "its store takes no writes (read-only: a failover under way?)",
}


def _error_line(error: BaseException, target: str) -> tuple[str, int]:
    if isinstance(error, HyperdialError):
        code = _EXIT_BY_CODE.get(error.code, EXIT_ERROR)
        text = str(error)
        if error.reason in _STORE_REASONS:
            # The service answered: saying it cannot be reached would send people to the
            # wrong machine.
            text = f"the service at {target} is up, but {_STORE_REASONS[error.reason]}: {text}"
        elif isinstance(error, ServiceUnreachableError):
            text = error.message  # names the target and what to check already
        elif error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            text = f"cannot reach the service at {target}: {text}"
        return text, code
    if isinstance(error, CommandError):
        return str(error), error.status
    if isinstance(error, RecordError):
        return str(error), EXIT_INVALID
    return f"{type(error).__name__}: {error}", EXIT_ERROR


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
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.version:
        print(f"hyperdial {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("hyperdial: error: a command is required", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "serve":
        return _serve(rest)
    if rest:
        parser.print_usage(sys.stderr)
        print(f"hyperdial: error: unrecognized arguments: {' '.join(rest)}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "dashboard":
        try:
            settings = _client_settings(args)
        except (RecordError, ValueError) as e:
            print(f"hyperdial: error: {e}", file=sys.stderr)
            return EXIT_INVALID
        return run_dashboard(args, settings)
    try:
        client = _connect(args)
    except (RecordError, ValueError) as e:
        print(f"hyperdial: error: {e}", file=sys.stderr)
        return EXIT_INVALID
    try:
        with client:
            return int(args.handler(client, args, sys.stdout))
    except BrokenPipeError:
        # Piped into ``head``: not an error. Python would complain again at exit when it
        # flushes stdout, so point stdout at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (HyperdialError, CommandError, RecordError, OSError) as e:
        text, code = _error_line(e, args.target)
        print(f"hyperdial: error: {' '.join(text.split())}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
