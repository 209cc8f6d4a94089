"""``hyperdial export`` and ``hyperdial import``: a study to a file and back.

A JSON export holds the whole study: its spec (every ``StudySpec`` field the service returns)
and its trials. Importing it creates the study from that spec when it does not exist, then
adds the finished trials; into an existing study only when the specs are equal, unless
``--ignore-spec``. A CSV export, or a JSON one without a spec (older versions), holds trials
only: it is imported into an existing study.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from hyperdial._cli_common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    CommandError,
    print_json,
    read_text,
)
from hyperdial._cli_spec import spec_differences, spec_from_document
from hyperdial._cli_worker import create_from_spec
from hyperdial._client import Client
from hyperdial._errors import HyperdialError, NotFoundError
from hyperdial._records import (
    ImportedTrial,
    detect_format,
    parse_records,
    write_csv,
    write_json,
)
from hyperdial._study import Study
from hyperdial.v1 import study_pb2

__all__ = ["export", "import_file"]


def export(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``hyperdial export STUDY [--format csv|json] [-o FILE]``."""
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


def _file_spec(text: str, path: str) -> study_pb2.StudySpec | None:
    """The spec of a JSON export; ``None`` for a file without one (trials only)."""
    document = json.loads(text)  # parse_records has read it already: it is valid JSON
    if not isinstance(document, dict) or document.get("spec") is None:
        return None
    return spec_from_document(document["spec"], f"{path}: spec")


def _target(
    client: Client, args: argparse.Namespace, spec: study_pb2.StudySpec | None
) -> tuple[Study, bool]:
    """The study to import into, and whether it was created from the file's spec."""
    try:
        study = client.get_study(args.study)
    except NotFoundError as e:
        if e.reason != "STUDY_NOT_FOUND":
            raise
        if spec is None:
            raise CommandError(
                f"{e.reason}: {e.message}, and {args.file} holds no spec to create it from (a CSV "
                "export, or a JSON one from an older version): create the study first "
                "(hyperdial studies create), or import a JSON export",
                EXIT_NOT_FOUND,
            ) from None
        return create_from_spec(client, args.study, spec), True
    if spec is not None and not args.ignore_spec:
        differences = spec_differences(study.spec, spec, here_name=study.name, there_name=args.file)
        if differences:
            raise CommandError(
                f"{study.name} exists with another spec than the one in {args.file}: "
                f"{'; '.join(differences)}. Import into a study that does not exist yet "
                "(it is created from the file), or pass --ignore-spec to add the trials anyway"
            )
    return study, False


def _add(study: Study, records: list[ImportedTrial], path: str) -> tuple[int, int, int]:
    """Adds the trials in order; returns how many completed, failed and infeasible ones were
    added."""
    completed = failed = infeasible = 0
    for record in records:
        try:
            study.add_trial(
                record.params,
                values=record.values,
                failure=record.failure,
                infeasibility=record.infeasibility,
                metadata=record.metadata,
            )
        except HyperdialError as e:
            done = completed + failed + infeasible
            raise type(e)(
                f"{record.source} of {path}: {e.message} ({done} trials imported before)",
                code=e.code,
                reason=e.reason,
                metadata=e.metadata,
            ) from None
        if record.values is not None:
            completed += 1
        elif record.infeasibility is not None:
            infeasible += 1
        else:
            failed += 1
    return completed, failed, infeasible


def import_file(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``hyperdial import STUDY FILE [--format csv|json] [--ignore-spec]``."""
    text = read_text(args.file)
    fmt = args.format or detect_format(args.file, text)
    spec = None
    if fmt == "json":
        # The whole file is checked before anything is created or added.
        records, skipped_states = parse_records(text, fmt, {})
        spec = _file_spec(text, args.file)
    study, created = _target(client, args, spec)
    if fmt != "json":
        records, skipped_states = parse_records(text, fmt, study._params)
    stopped = skipped_states.pop("STOPPED", 0)
    unfinished = sum(skipped_states.values())
    completed, failed, infeasible = _add(study, records, args.file)
    summary = {
        "study": study.name,
        "created": created,
        "imported": completed + failed + infeasible,
        "completed": completed,
        "failed": failed,
        "infeasible": infeasible,
        "skipped": unfinished + stopped,
        "skipped_stopped": stopped,
    }
    if args.json:
        print_json(summary, out)
        return EXIT_OK
    if created:
        print(f"created {study.name} from the spec in {args.file}", file=out)
    skips = [f"{unfinished} unfinished"] if unfinished else []
    if stopped:
        skips.append(f"{stopped} stopped (stopped trials cannot be imported)")
    note = f"; skipped {' and '.join(skips)}" if skips else ""
    kinds = f"{completed} completed, {failed} failed"
    if infeasible:
        kinds += f", {infeasible} infeasible"
    print(
        f"imported {completed + failed + infeasible} trials into {study.name} ({kinds}){note}",
        file=out,
    )
    return EXIT_OK
