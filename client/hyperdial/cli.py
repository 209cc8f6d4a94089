"""The ``hyperdial`` command.

* ``hyperdial serve`` runs the service (server extra needed; imported only there, so the
  client-only install runs every other command).
* ``hyperdial studies list|get|delete``, ``trials list|get``, ``best``, ``export`` and
  ``import`` talk to a running service: readable tables by default, ``--json`` for scripts.

Exit status: 0 success, 1 other error, 2 usage error, 3 not found, 4 service unreachable or
too slow, 5 invalid input (refused by the service, or a malformed file), 6 not authenticated
or not allowed. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import grpc

from hyperdial import __version__
from hyperdial._base import BaseTrial
from hyperdial._channel import tls_credentials
from hyperdial._client import Client
from hyperdial._early_stopping import Decision, EarlyStopping, rule_name
from hyperdial._errors import HyperdialError
from hyperdial._records import (
    FORMATS,
    RecordError,
    detect_format,
    parse_records,
    study_record,
    trial_record,
    write_csv,
    write_json,
)
from hyperdial._retry import RetryPolicy
from hyperdial._space import Categorical, Discrete, Float, Int, Parameter
from hyperdial._study import Study
from hyperdial._table import format_table, format_value

#: Printed when ``hyperdial serve`` cannot import the server.
SERVER_EXTRA_HINT = "hyperdial serve needs the server extra: pip install 'hyperdial[server]'"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4
EXIT_INVALID = 5
EXIT_DENIED = 6

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

    studies = commands.add_parser("studies", help="list, show or delete studies")
    studies_commands = studies.add_subparsers(dest="studies_command", metavar="COMMAND")
    studies_commands.required = True
    leaf(studies_commands, "list", "list every study", _studies_list)
    get = leaf(studies_commands, "get", "show a study: spec, objectives, trials", _studies_get)
    get.add_argument("study", help="study id or name (studies/ID)")
    delete = leaf(studies_commands, "delete", "delete studies and all their trials", _delete)
    delete.add_argument("study", nargs="+", help="study ids or names")

    trials = commands.add_parser("trials", help="list the trials of a study, or show one")
    trials_commands = trials.add_subparsers(dest="trials_command", metavar="COMMAND")
    trials_commands.required = True
    tlist = leaf(trials_commands, "list", "list the trials of a study", _trials_list)
    tlist.add_argument("study", help="study id or name")
    tlist.add_argument(
        "--state",
        action="append",
        type=str.upper,
        choices=["WAITING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"],
        help="only trials in this state (repeatable)",
    )
    tget = leaf(
        trials_commands,
        "get",
        "show a trial: parameters, result, learning curve and stop decision",
        _trials_get,
    )
    tget.add_argument("study", help="study id or name")
    tget.add_argument("number", type=int, help="the trial's number")

    best = leaf(
        commands, "best", "the best trial (the Pareto front with several objectives)", _best
    )
    best.add_argument("study", help="study id or name")

    export = leaf(commands, "export", "write every trial of a study as CSV or JSON", _export)
    export.add_argument("study", help="study id or name")
    export.add_argument("--format", choices=FORMATS, default="csv", help="default: csv")
    export.add_argument(
        "--output", "-o", metavar="FILE", help="write to FILE instead of standard output"
    )

    imp = leaf(
        commands,
        "import",
        "add the finished trials of an export (CSV or JSON) to a study",
        _import,
    )
    imp.add_argument("study", help="study id or name (it must exist)")
    imp.add_argument("file", help="the file; - for standard input")
    imp.add_argument(
        "--format", choices=FORMATS, help="default: from the file's extension or content"
    )
    return parser


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


def _print_json(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2, allow_nan=False)
    out.write("\n")


def _param_kind(p: Parameter) -> tuple[str, str]:
    if isinstance(p, (Float, Int)):
        kind = "float" if isinstance(p, Float) else "int"
        return kind, f"[{format_value(p.low)}, {format_value(p.high)}]" + (" log" if p.log else "")
    if isinstance(p, (Categorical, Discrete)):
        kind = "categorical" if isinstance(p, Categorical) else "discrete"
        return kind, ", ".join(format_value(v) for v in p.values)
    return "unknown", "-"


def _goals(study: Study) -> str:
    return ", ".join(f"{o.name} ({o.goal})" for o in study.objectives)


def _policy(policy: EarlyStopping | None) -> str | None:
    """``median (warmup_steps 5, min_trials 1, interval_steps 1) on loss, ...``."""
    if policy is None:
        return None
    rule = policy.rule
    if rule is None:
        text = "a rule this client does not know"
    else:
        fields = ", ".join(f"{k} {format_value(v)}" for k, v in vars(rule).items() if v is not None)
        text = f"{rule_name(rule)} ({fields})"
    text += f" on {policy.objective}; keeps {policy.max_measurements_per_trial} measurements"
    if policy.rank_stopped_trials:
        text += "; ranks stopped trials"
    return text


def _decision(decision: Decision) -> str:
    """``median at step 5 (rung 1, 12 compared)``."""
    notes = []
    if decision.rung is not None:
        notes.append(f"rung {decision.rung}")
    if decision.compared_trials:
        notes.append(f"{decision.compared_trials} compared")
    extra = f" ({', '.join(notes)})" if notes else ""
    return f"{decision.rule or 'continue'} at step {decision.step}{extra}"


def _studies_list(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    studies = list(client.list_studies())
    if args.json:
        _print_json([study_record(s) for s in studies], out)
        return EXIT_OK
    if not studies:
        print("no studies", file=out)
        return EXIT_OK
    rows = [
        [
            s.study_id,
            s.algorithm,
            _goals(s),
            s.trial_count,
            s.create_time.strftime("%Y-%m-%d %H:%M:%SZ") if s.create_time else None,
        ]
        for s in studies
    ]
    print(
        format_table(["STUDY", "ALGORITHM", "OBJECTIVES", "TRIALS", "CREATED"], rows, numeric=[3]),
        file=out,
    )
    return EXIT_OK


def _studies_get(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    record = study_record(study)
    if args.json:
        _print_json(record, out)
        return EXIT_OK
    facts = [
        ("study", study.name),
        ("algorithm", study.algorithm),
        ("seed", record["seed"]),
        ("objectives", _goals(study)),
        ("trials", study.trial_count),
        ("max trials", record["max_trials"]),
        ("grid resolution", record["grid_resolution"]),
        ("initial trials", record["initial_trials"]),
        ("lease timeout", f"{record['lease_timeout']:g} s" if record["lease_timeout"] else None),
        ("early stopping", _policy(study.early_stopping)),
        ("created", record["create_time"]),
    ]
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key.ljust(width)}  {format_value(value)}", file=out)
    rows = []
    for p in study.parameters:
        kind, domain = _param_kind(p)
        when = None
        if p.when is not None:
            when = f"{p.when[0]} in {{{', '.join(format_value(v) for v in p.when[1])}}}"
        rows.append([p.name, kind, domain, when])
    print(file=out)
    print(format_table(["PARAMETER", "TYPE", "DOMAIN", "ACTIVE WHEN"], rows), file=out)
    return EXIT_OK


def _delete(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    deleted = []
    for name in args.study:
        client.delete_study(name)
        deleted.append(name if name.startswith("studies/") else f"studies/{name}")
        if not args.json:
            print(f"deleted {deleted[-1]}", file=out)
    if args.json:
        _print_json({"deleted": deleted}, out)
    return EXIT_OK


def _trials_table(study: Study, trials: Sequence[BaseTrial]) -> str:
    """One row per trial; a STEP column (the last step reported) when a trial reported, a
    STOPPED BY column (the rule) when one stopped, a FAILURE column when one failed."""
    objectives = [o.name for o in study.objectives]
    params = list(study._param_names)
    value_headers = ["VALUE"] if len(objectives) == 1 else [o.upper() for o in objectives]
    stepped = any(t.last_step is not None for t in trials)
    stopped = any(t.stop_decision is not None for t in trials)
    failed = any(t.failure_reason for t in trials)
    headers = ["NUMBER", "STATE", *value_headers, *params, "CLIENT"]
    if stepped:
        headers.append("STEP")
    if stopped:
        headers.append("STOPPED BY")
    if failed:
        headers.append("FAILURE")
    rows = []
    for t in trials:
        values = t.values or {}
        row: list[object] = [t.number, str(t.state)]
        row += [values.get(o) for o in objectives]
        row += [t.params.get(p) for p in params]
        row.append(t.client_id)
        if stepped:
            row.append(t.last_step)
        if stopped:
            row.append(t.stop_decision.rule if t.stop_decision is not None else None)
        if failed:
            row.append(t.failure_reason)
        rows.append(row)
    numeric = [0, *range(2, 2 + len(objectives))]
    numeric += [
        2 + len(objectives) + i
        for i, p in enumerate(params)
        if not isinstance(study._params.get(p), Categorical)
    ]
    if stepped:
        numeric.append(3 + len(objectives) + len(params))
    return format_table(headers, rows, numeric=numeric)


def _trials_list(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    # With the curves: the last one is always kept, so the table can show the last step.
    trials = study.trials(args.state, with_measurements=True)
    if args.json:
        _print_json([trial_record(t, curve=False) for t in trials], out)
    elif not trials:
        states = f" in state {' or '.join(args.state)}" if args.state else ""
        print(f"no trials{states} in {study.name}", file=out)
    else:
        print(_trials_table(study, trials), file=out)
    return EXIT_OK


def _trials_get(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    trial = study.get_trial(args.number)
    if args.json:
        _print_json(trial_record(trial), out)
        return EXIT_OK
    objectives = [o.name for o in study.objectives]
    values = trial.values or {}
    kept = len(trial.measurements)
    reports = str(trial.measurement_count)
    if kept != trial.measurement_count:
        reports += f" ({kept} kept)"
    facts: list[tuple[str, object]] = [
        ("trial", trial.name),
        ("state", str(trial.state)),
        *((f"value {o}" if len(objectives) > 1 else "value", values.get(o)) for o in objectives),
        ("client", trial.client_id),
        ("created", _clock(trial.create_time)),
        ("completed", _clock(trial.complete_time)),
        ("reports", reports),
    ]
    if trial.state == "RUNNING":
        facts.append(("lease expires", _clock(trial.lease_expire_time)))
    policy = study.early_stopping
    if policy is not None and rule_name(policy.rule) == "hyperband":
        facts.append(("bracket", trial.bracket))
    decision = trial.stop_decision
    if decision is not None:
        facts.append(("stopped by", _decision(decision)))
        if decision.message:
            facts.append(("", decision.message))  # the rule's own words, under its name
    if trial.failure_reason:
        facts.append(("failure", trial.failure_reason))
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key.ljust(width)}  {format_value(value)}".rstrip(), file=out)
    print(file=out)
    rows = [[name, trial.params.get(name)] for name in study._param_names if name in trial.params]
    print(format_table(["PARAMETER", "VALUE"], rows), file=out)
    if trial.measurements:
        print(file=out)
        print(_curve_table(objectives, trial), file=out)
    return EXIT_OK


def _clock(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%d %H:%M:%SZ") if when is not None else None


def _curve_table(objectives: Sequence[str], trial: BaseTrial) -> str:
    """The learning curve: one row per kept measurement, a column per objective reported."""
    measurements = trial.measurements
    names = [o for o in objectives if any(o in m.values for m in measurements)]
    names += sorted({k for m in measurements for k in m.values} - set(names))
    elapsed = any(m.elapsed is not None for m in measurements)
    headers = ["STEP", *(n.upper() for n in names)]
    if elapsed:
        headers.append("ELAPSED")
    rows = []
    for m in measurements:
        row: list[object] = [m.step, *(m.values.get(n) for n in names)]
        if elapsed:
            row.append(f"{m.elapsed:.6g} s" if m.elapsed is not None else None)
        rows.append(row)
    numeric = list(range(len(names) + 1 + int(elapsed)))
    return format_table(headers, rows, numeric=numeric)


def _best(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    best = study.best_trials
    if args.json:
        _print_json([trial_record(t, curve=False) for t in best], out)
    elif not best:
        print(f"no trial of {study.name} has completed yet", file=out)
    else:
        if len(study.objectives) > 1:
            print(f"Pareto front of {study.name}: {len(best)} trials", file=out)
        print(_trials_table(study, best), file=out)
    return EXIT_OK


def _export(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    # The JSON export carries the learning curves; CSV has no room for them.
    trials = study.trials(with_measurements=args.format == "json")
    write = write_csv if args.format == "csv" else write_json
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            count = write(study, trials, f)
        print(f"exported {count} trials of {study.name} to {args.output}", file=sys.stderr)
    else:
        write(study, trials, out)
    return EXIT_OK


def _import(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    if args.file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except OSError as e:
            raise RecordError(f"cannot read {args.file}: {e.strerror or e}") from None
    fmt = args.format or detect_format(args.file, text)
    records, skipped_states = parse_records(text, fmt, study._params)
    stopped = skipped_states.pop("STOPPED", 0)
    unfinished = sum(skipped_states.values())
    completed = failed = 0
    for record in records:
        try:
            study.add_trial(
                record.params,
                values=record.values,
                failure=record.failure,
                metadata=record.metadata,
            )
        except HyperdialError as e:
            done = completed + failed
            raise type(e)(
                f"{record.source} of {args.file}: {e.message} ({done} trials imported before)",
                code=e.code,
                reason=e.reason,
                metadata=e.metadata,
            ) from None
        if record.values is not None:
            completed += 1
        else:
            failed += 1
    summary = {
        "study": study.name,
        "imported": completed + failed,
        "completed": completed,
        "failed": failed,
        "skipped": unfinished + stopped,
        "skipped_stopped": stopped,
    }
    if args.json:
        _print_json(summary, out)
    else:
        skips = [f"{unfinished} unfinished"] if unfinished else []
        if stopped:
            skips.append(f"{stopped} stopped (stopped trials cannot be imported)")
        note = f"; skipped {' and '.join(skips)}" if skips else ""
        print(
            f"imported {completed + failed} trials into {study.name} "
            f"({completed} completed, {failed} failed){note}",
            file=out,
        )
    return EXIT_OK


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise RecordError(f"cannot read {args.token_file}: {e.strerror or e}") from None
    return str(args.token) if args.token else None


def _connect(args: argparse.Namespace) -> Client:
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
    return Client(
        args.target,
        tls=tls,
        token=_token(args),
        retry=RetryPolicy(deadline=args.timeout, max_backoff=2.0),
        options=options,
        renew_leases=False,
    )


def _error_line(error: BaseException, target: str) -> tuple[str, int]:
    if isinstance(error, HyperdialError):
        code = _EXIT_BY_CODE.get(error.code, EXIT_ERROR)
        text = str(error)
        if error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            text = f"cannot reach the service at {target}: {text}"
        return text, code
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
    except (HyperdialError, RecordError, OSError) as e:
        text, code = _error_line(e, args.target)
        print(f"hyperdial: error: {' '.join(text.split())}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
