"""``hyperdial studies create``, ``ask``, ``tell`` and ``heartbeat``: a study and its trials
driven from shell scripts and batch-scheduler jobs.

``ask``, ``tell`` and ``heartbeat`` print JSON only on standard output (errors are one line on
standard error), and their mutations carry a ``request_id``, so a job that runs a command
again after losing its answer gets the first answer back:

* ``ask``: a fresh id unless ``--request-id`` gives one; the id is printed. Asking again with
  the same ``--client-id`` while its trial runs also hands that trial back.
* ``tell``: by default an id derived from the trial, so running the same tell again answers
  the told trial instead of ``TRIAL_NOT_RUNNING`` (a different outcome for it answers
  ``REQUEST_ID_MISMATCH``, and changes nothing).
* ``heartbeat`` changes nothing but the lease: the protocol takes no id, none is needed.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any, TextIO

from hyperdial._base import BaseTrial, study_name
from hyperdial._cli_common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    load_document,
    print_json,
    read_text,
)
from hyperdial._cli_spec import (
    apply_options,
    parse_constraint,
    parse_objective,
    parse_params,
    spec_from_document,
)
from hyperdial._client import Client
from hyperdial._records import study_record, trial_record
from hyperdial._study import Study, Trial
from hyperdial.v1 import study_pb2, tuning_service_pb2

__all__ = [
    "ask",
    "create_from_spec",
    "heartbeat",
    "studies_create",
    "tell",
    "tell_request_id",
    "trial_name",
]


def create_from_spec(
    client: Client, study: str, spec: study_pb2.StudySpec, request_id: str | None = None
) -> Study:
    """Creates a study from a ``StudySpec`` as it is (``CreateStudy``).

    Args:
        client: The connection.
        study: Id or name (``studies/ID``) of the study.
        spec: The spec.
        request_id: The creation's request id; ``None`` for a fresh one.
    """
    request = tuning_service_pb2.CreateStudyRequest(
        study_id=study_name(study).removeprefix("studies/"),
        spec=spec,
        request_id=request_id or str(uuid.uuid4()),
    )
    response = client._invoke("CreateStudy", request, tuning_service_pb2.CreateStudyResponse)
    return Study(client, response.study)


def trial_name(study: str, trial: str) -> str:
    """The resource name of a trial, ``studies/{study}/trials/{number}``, from a number or
    that name.

    Raises:
        CommandError: ``trial`` is neither, or names a trial of another study.
    """
    parent = study_name(study)
    if trial.isdigit():
        return f"{parent}/trials/{int(trial)}"
    number = trial.removeprefix(f"{parent}/trials/")
    if number != trial and number.isdigit():
        return trial
    raise CommandError(
        f"TRIAL must be a trial number or {parent}/trials/NUMBER; got {trial!r}", EXIT_USAGE
    )


def tell_request_id(name: str) -> str:
    """The default request id of a tell: the same for every tell of one trial, so a repeated
    tell is answered, not refused (a trial is told once in its life)."""
    return f"tell-{uuid.uuid5(uuid.NAMESPACE_URL, f'hyperdial:{name}')}"


def _worker_record(trial: BaseTrial) -> dict[str, Any]:
    """A trial for a worker: ``trial_record`` and when its lease expires."""
    lease = trial.lease_expire_time
    return {
        **trial_record(trial, curve=False),
        "lease_expire_time": lease.isoformat().replace("+00:00", "Z") if lease else None,
    }


def _key_values(texts: list[str] | None, flag: str, number: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in texts or ():
        key, eq, value = text.partition("=")
        if not eq or not key:
            raise CommandError(f"{flag} {text!r}: expected NAME=VALUE", EXIT_USAGE)
        if number:
            try:
                out[key] = float(value)
            except ValueError:
                message = f"{flag} {text!r}: {value!r} is not a number"
                raise CommandError(message, EXIT_USAGE) from None
        else:
            out[key] = value
    return out


def studies_create(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``hyperdial studies create NAME (--param ... [--constraint ...] | --spec FILE)``."""
    if args.spec is not None and (args.param or args.objective or args.constraint):
        raise CommandError(
            "give the spec in a file (--spec) or as flags (--param, --objective, "
            "--constraint), not both",
            EXIT_USAGE,
        )
    if args.spec is not None:
        spec = spec_from_document(load_document(args.spec, read_text(args.spec)), args.spec)
    elif args.param:
        spec = study_pb2.StudySpec(
            parameters=parse_params(args.param),
            objectives=[parse_objective(o) for o in args.objective or ["value"]],
            constraints=[parse_constraint(c) for c in args.constraint or ()],
        )
    else:
        raise CommandError(
            "a study needs parameters: --param NAME=TYPE:... (repeatable) or --spec FILE",
            EXIT_USAGE,
        )
    apply_options(
        spec,
        algorithm=args.algorithm,
        seed=args.seed,
        max_trials=args.max_trials,
        grid_resolution=args.grid_resolution,
        initial_trials=args.initial_trials,
        lease_timeout=args.lease_timeout,
        deterministic_objective=args.deterministic_objective,
    )
    study = create_from_spec(client, args.name, spec, args.request_id)
    if args.json:
        print_json(study_record(study), out)
    else:
        seed = study.spec.seed if study.spec.HasField("seed") else None
        print(f"created {study.name} ({study.algorithm}, seed {seed})", file=out)
    return EXIT_OK


def ask(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``hyperdial ask STUDY``: prints ``{"study", "request_id", "trials": [...]}``."""
    request = tuning_service_pb2.SuggestTrialsRequest(
        parent=study_name(args.study),
        count=args.count,
        client_id=args.client_id,
        request_id=args.request_id or str(uuid.uuid4()),
    )
    response = client._invoke("SuggestTrials", request, tuning_service_pb2.SuggestTrialsResponse)
    trials = [Trial._from_proto(pb) for pb in response.trials]
    print_json(
        {
            "study": request.parent,
            "request_id": request.request_id,
            "trials": [_worker_record(t) for t in trials],
        },
        out,
    )
    return EXIT_OK


def tell(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``hyperdial tell STUDY TRIAL (--value V | --values N=V ... | --failed R | --stopped |
    --infeasible [R]) [--constraint-values N=V ...]``: prints ``{"request_id", "trial"}``, the
    trial as stored."""
    study = client.get_study(args.study)
    name = trial_name(study.name, args.trial)
    number = int(name.rsplit("/", 1)[1])
    metadata = _key_values(args.metadata, "--metadata", number=False)
    measured = None
    if args.constraint_values:
        if args.value is None and args.values is None:
            raise CommandError(
                "--constraint-values go with a result (--value or --values), not with "
                "--failed, --stopped or --infeasible",
                EXIT_USAGE,
            )
        measured = _key_values(args.constraint_values, "--constraint-values", number=True)
    if args.failed is not None:
        request = study._fail_request(number, args.failed, metadata)
    elif args.stopped is not None:
        request = study._stop_request(number, args.stopped, metadata)
    elif args.infeasible is not None:
        request = study._infeasible_request(number, args.infeasible, metadata)
    else:
        objectives = [o.name for o in study.objectives]
        if args.value is not None and len(objectives) != 1:
            raise CommandError(
                f"{study.name} has {len(objectives)} objectives: give each its value with "
                f"--values {' '.join(f'{o}=VALUE' for o in objectives)}",
                EXIT_USAGE,
            )
        values = _key_values(args.values, "--values", number=True) if args.values else None
        try:
            request = study._tell_request(number, args.value, values, metadata, measured)
        except ValueError as e:  # a name given twice
            raise CommandError(str(e), EXIT_USAGE) from None
    request.request_id = args.request_id or tell_request_id(name)
    trial = study._end(request)
    print_json({"request_id": request.request_id, "trial": _worker_record(trial)}, out)
    return EXIT_OK


def heartbeat(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``hyperdial heartbeat STUDY TRIAL``: renews the lease; prints ``{"trial"}``."""
    request = tuning_service_pb2.HeartbeatTrialRequest(name=trial_name(args.study, args.trial))
    response = client._invoke("HeartbeatTrial", request, tuning_service_pb2.HeartbeatTrialResponse)
    print_json({"trial": _worker_record(Trial._from_proto(response.trial))}, out)
    return EXIT_OK
