"""Trials as plain records: what ``hyperdial export`` writes and ``hyperdial import`` reads.

Two formats hold the same records:

* **JSON**: ``{"study": ..., "spec": {...}, "objectives": [...], "constraints": [...],
  "parameters": [...], "trials": [...]}``. ``spec`` is the study's ``StudySpec`` in the
  protocol's JSON mapping (field names as in the ``.proto`` file), every field the service
  returned: enough to create the study again. Each trial is ``{"name", "number", "state",
  "params", "values", "constraint_values", "client_id", "failure_reason", "infeasible",
  "infeasibility_reason", "metadata", "create_time", "complete_time",
  "measurement_count", "last_step", "stop_decision", "bracket", "measurements"}``:
  ``stop_decision`` (why a STOPPED trial stopped: ``rule``, ``step``, ``rung``,
  ``message``, ``compared_trials``) is ``null`` for other trials, and ``measurements`` is the
  learning curve (``[{"step", "values", "elapsed"}, ...]``, the measurements the service
  kept). Parameter values keep their JSON type (``int`` or ``float`` or ``str``).
* **CSV**: one row per trial, columns ``number``, ``state``, ``values.<objective>``...,
  ``constraints.<constraint>``... (the outcome constraints' values), ``params.<parameter>``...,
  ``client_id``, ``failure_reason``, ``infeasible``, ``infeasibility_reason``, ``create_time``,
  ``complete_time``, ``measurement_count``, ``stop_rule``, ``stop_step``,
  ``metadata.<key>``.... An empty cell is an absent value (an inactive conditional parameter,
  a failed trial's values). Floats are written exactly (``repr``); on import a parameter's
  cells take the type of the target study's parameter. Learning curves do not fit one row
  per trial: only JSON carries them.

Import reads either format into :class:`ImportedTrial` records, typed by the study's search
space; only finished trials (COMPLETED, FAILED, INFEASIBLE) are imported, a COMPLETED one with
its constraints' values (the service judges its feasibility again; ``infeasible`` is not read).
STOPPED trials are skipped and counted: the protocol records a trial that finished elsewhere as
COMPLETED, FAILED or INFEASIBLE only (``CreateTrial``), and a curve only through the reports of
a running trial.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from google.protobuf import json_format

from hyperdial._base import BaseStudy, BaseTrial
from hyperdial._early_stopping import rule_name
from hyperdial._space import Categorical, Constraint, Discrete, Float, Int, Parameter, ParamValue

__all__ = [
    "FORMATS",
    "ImportedTrial",
    "RecordError",
    "detect_format",
    "parse_records",
    "spec_record",
    "study_record",
    "trial_record",
    "write_csv",
    "write_json",
]

#: The formats of export and import.
FORMATS = ("csv", "json")
_FINISHED = ("COMPLETED", "FAILED", "INFEASIBLE")
_FIXED_HEAD = ("number", "state")
_FIXED_TAIL = (
    "client_id",
    "failure_reason",
    "infeasible",
    "infeasibility_reason",
    "create_time",
    "complete_time",
    "measurement_count",
    "stop_rule",
    "stop_step",
)
#: States that are read from a file but not imported.
_UNFINISHED = ("WAITING", "RUNNING")
_STOPPED = "STOPPED"


class RecordError(ValueError):
    """A file to import is malformed; the message names the row or trial."""


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def trial_record(trial: BaseTrial, *, curve: bool = True) -> dict[str, Any]:
    """A trial as a JSON-ready dict.

    Args:
        trial: The trial.
        curve: Include ``measurements`` (read the trial with its measurements first); leave
            the key out for a trial read without them.
    """
    decision = trial.stop_decision
    record: dict[str, Any] = {
        "name": trial.name,
        "number": trial.number,
        "state": str(trial.state),
        "params": dict(trial.params),
        "values": dict(trial.values) if trial.values is not None else None,
        "constraint_values": (
            dict(trial.constraint_values) if trial.constraint_values is not None else None
        ),
        "client_id": trial.client_id,
        "failure_reason": trial.failure_reason,
        "infeasible": trial.infeasible,
        "infeasibility_reason": trial.infeasibility_reason,
        "metadata": dict(trial.metadata),
        "create_time": _time(trial.create_time),
        "complete_time": _time(trial.complete_time),
        "measurement_count": trial.measurement_count,
        "last_step": trial.last_step,
        "stop_decision": asdict(decision) if decision is not None else None,
        "bracket": trial.bracket,
    }
    if curve:
        record["measurements"] = [
            {"step": m.step, "values": dict(m.values), "elapsed": m.elapsed}
            for m in trial.measurements
        ]
    return record


def _policy_record(study: BaseStudy[Any]) -> dict[str, Any] | None:
    policy = study.early_stopping
    if policy is None:
        return None
    rule = policy.rule
    return {
        "rule": rule_name(rule),
        **(asdict(rule) if rule is not None else {}),
        "objective": policy.objective,
        "max_measurements_per_trial": policy.max_measurements_per_trial,
        "rank_stopped_trials": policy.rank_stopped_trials,
    }


def _param_record(p: Parameter) -> dict[str, Any]:
    record: dict[str, Any] = {"name": p.name}
    if isinstance(p, (Float, Int)):
        record.update(
            type="float" if isinstance(p, Float) else "int", low=p.low, high=p.high, log=p.log
        )
    elif isinstance(p, (Categorical, Discrete)):
        record.update(
            type="categorical" if isinstance(p, Categorical) else "discrete",
            values=list(p.values),
        )
    if p.when is not None:
        record["when"] = {"parent": p.when[0], "values": list(p.when[1])}
    return record


def _constraint_record(c: Constraint) -> dict[str, Any]:
    return {"name": c.name, "lower_bound": c.lower_bound, "upper_bound": c.upper_bound}


def study_record(study: BaseStudy[Any]) -> dict[str, Any]:
    """A study as a JSON-ready dict (spec, objectives, trial count)."""
    spec = study.spec
    return {
        "name": study.name,
        "study_id": study.study_id,
        "algorithm": study.algorithm,
        "seed": spec.seed if spec.HasField("seed") else None,
        "max_trials": spec.max_trials or None,
        "grid_resolution": spec.grid_resolution or None,
        "initial_trials": spec.initial_trials or None,
        "lease_timeout": (
            spec.lease_timeout.ToTimedelta().total_seconds()
            if spec.HasField("lease_timeout")
            else None
        ),
        "objectives": [{"name": o.name, "goal": o.goal} for o in study.objectives],
        "constraints": [_constraint_record(c) for c in study.constraints],
        "parameters": [_param_record(p) for p in study.parameters],
        "early_stopping": _policy_record(study),
        "trial_count": study.trial_count,
        "create_time": _time(study.create_time),
        "spec": spec_record(study),
    }


def spec_record(study: BaseStudy[Any]) -> dict[str, Any]:
    """The study's ``StudySpec`` in the protocol's JSON mapping, with the ``.proto`` field
    names: driven by the message, so a field added to the protocol is never left out."""
    return json_format.MessageToDict(study.spec, preserving_proto_field_name=True)


def write_json(study: BaseStudy[Any], trials: Iterable[BaseTrial], out: io.TextIOBase | Any) -> int:
    """Writes the JSON export; returns the number of trials written."""
    records = [trial_record(t) for t in trials]
    document = {
        "study": study.name,
        "spec": spec_record(study),
        "objectives": [{"name": o.name, "goal": o.goal} for o in study.objectives],
        "constraints": [_constraint_record(c) for c in study.constraints],
        "parameters": [p.name for p in study.parameters],
        "trials": records,
    }
    json.dump(document, out, indent=2, allow_nan=False)
    out.write("\n")
    return len(records)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact form: read back, it is the same float
    return str(value)


def write_csv(study: BaseStudy[Any], trials: Sequence[BaseTrial], out: io.TextIOBase | Any) -> int:
    """Writes the CSV export; returns the number of trials written."""
    objectives = [o.name for o in study.objectives]
    constraints = [c.name for c in study.constraints]
    params = list(study._param_names)
    extra_params = sorted({k for t in trials for k in t.params} - set(params))
    params += extra_params
    metadata_keys = sorted({k for t in trials for k in t.metadata})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            *_FIXED_HEAD,
            *(f"values.{o}" for o in objectives),
            *(f"constraints.{c}" for c in constraints),
            *(f"params.{p}" for p in params),
            *_FIXED_TAIL,
            *(f"metadata.{k}" for k in metadata_keys),
        ]
    )
    for t in trials:
        values = t.values or {}
        measured = t.constraint_values or {}
        writer.writerow(
            [
                t.number,
                str(t.state),
                *(_cell(values.get(o)) for o in objectives),
                *(_cell(measured.get(c)) for c in constraints),
                *(_cell(t.params.get(p)) for p in params),
                t.client_id,
                t.failure_reason,
                "true" if t.infeasible else "false",
                t.infeasibility_reason,
                _cell(_time(t.create_time)),
                _cell(_time(t.complete_time)),
                t.measurement_count,
                _cell(t.stop_decision.rule if t.stop_decision is not None else None),
                _cell(t.stop_decision.step if t.stop_decision is not None else None),
                *(_cell(t.metadata.get(k)) for k in metadata_keys),
            ]
        )
    return len(trials)


@dataclass(frozen=True)
class ImportedTrial:
    """A finished trial read from a file, ready for ``Study.add_trial``.

    Attributes:
        source: Where it came from, for messages (``"row 3"``, ``"trial 7"``).
        params: Typed parameter values.
        values: Objective values of a COMPLETED trial, and its constraints' values; else
            ``None``.
        failure: Failure reason of a FAILED trial, else ``None``.
        metadata: Annotations.
        infeasibility: Why an INFEASIBLE trial's parameters cannot give a result (maybe
            empty), else ``None``.
    """

    source: str
    params: dict[str, ParamValue]
    values: dict[str, float] | None
    failure: str | None
    metadata: dict[str, str]
    infeasibility: str | None = None


def detect_format(path: str, text: str) -> str:
    """``"csv"`` or ``"json"``: from the file's extension, else from its first character."""
    lower = path.lower()
    for fmt in FORMATS:
        if lower.endswith(f".{fmt}"):
            return fmt
    return "json" if text.lstrip()[:1] in ("{", "[") else "csv"


def parse_records(
    text: str, fmt: str, params: Mapping[str, Parameter]
) -> tuple[list[ImportedTrial], Counter[str]]:
    """Reads an export.

    Args:
        text: The file's content.
        fmt: ``"csv"`` or ``"json"``.
        params: The target study's parameters by name: they type the values of CSV cells.

    Returns:
        The finished trials (COMPLETED, FAILED, INFEASIBLE), and how many trials were
        skipped, by state (WAITING and RUNNING ones are unfinished; STOPPED ones cannot be
        imported).

    Raises:
        RecordError: The file is malformed.
    """
    if fmt == "json":
        return _parse_json(text)
    if fmt == "csv":
        return _parse_csv(text, params)
    raise RecordError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _finished(
    source: str,
    state: object,
    params: dict[str, ParamValue],
    values: dict[str, float],
    failure: str,
    metadata: dict[str, str],
    infeasibility: str = "",
) -> ImportedTrial | None:
    state = str(state).upper()
    if state not in _FINISHED:
        if state in (*_UNFINISHED, _STOPPED):
            return None
        raise RecordError(
            f"{source}: unknown state {state!r}; expected COMPLETED, FAILED or INFEASIBLE"
        )
    if state == "COMPLETED":
        if not values:
            raise RecordError(f"{source}: a COMPLETED trial needs its objective values")
        return ImportedTrial(source, params, values, None, metadata)
    if state == "INFEASIBLE":
        return ImportedTrial(source, params, None, None, metadata, infeasibility)
    return ImportedTrial(source, params, None, failure, metadata)


def _parse_json(text: str) -> tuple[list[ImportedTrial], Counter[str]]:
    try:
        document = json.loads(text)
    except ValueError as e:
        raise RecordError(f"not valid JSON: {e}") from None
    trials = document.get("trials") if isinstance(document, dict) else document
    if not isinstance(trials, list):
        raise RecordError('expected {"trials": [...]} or a list of trials')
    out: list[ImportedTrial] = []
    skipped: Counter[str] = Counter()
    for i, record in enumerate(trials, 1):
        source = f"trial {record.get('number', i) if isinstance(record, dict) else i}"
        if not isinstance(record, dict):
            raise RecordError(f"{source}: expected an object")
        params = record.get("params") or {}
        values = record.get("values") or {}
        constraint_values = record.get("constraint_values") or {}
        metadata = record.get("metadata") or {}
        if not isinstance(params, dict) or not all(
            isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in params.values()
        ):
            raise RecordError(f"{source}: params must map names to numbers or strings")
        for key, given in (("values", values), ("constraint_values", constraint_values)):
            if not isinstance(given, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in given.values()
            ):
                raise RecordError(f"{source}: {key} must map names to numbers")
        if not isinstance(metadata, dict):
            raise RecordError(f"{source}: metadata must be an object")
        state = str(record.get("state", "")).upper()
        # One measurement: the constraints' values go with the objectives'.
        measured = {**values, **constraint_values}
        trial = _finished(
            source,
            state,
            dict(params),
            {str(k): float(v) for k, v in measured.items()},
            str(record.get("failure_reason") or ""),
            {str(k): str(v) for k, v in metadata.items()},
            str(record.get("infeasibility_reason") or ""),
        )
        if trial is None:
            skipped[state] += 1
        else:
            out.append(trial)
    return out, skipped


def _typed(text: str, param: Parameter | None, source: str, name: str) -> ParamValue:
    try:
        if isinstance(param, Categorical):
            return text
        if isinstance(param, (Float, Discrete)):
            return float(text)
        if isinstance(param, Int):
            try:
                return int(text)
            except ValueError:
                return float(text)  # "3.0": sent as the whole number it is
    except ValueError:
        kind = type(param).__name__.lower()
        raise RecordError(f"{source}: params.{name} = {text!r} is not a {kind} value") from None
    # A parameter the study does not have: the service names it in its refusal.
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _number_cell(text: str, source: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RecordError(f"{source}: {column} = {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError(f"{source}: {column} = {text!r} is not a finite number")
    return value


def _parse_csv(
    text: str, params: Mapping[str, Parameter]
) -> tuple[list[ImportedTrial], Counter[str]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise RecordError("the CSV file is empty") from None
    if "state" not in header:
        raise RecordError("the CSV header has no 'state' column")
    out: list[ImportedTrial] = []
    skipped: Counter[str] = Counter()
    for row_number, row in enumerate(reader, 2):
        if not row:
            continue
        source = f"row {row_number}"
        if len(row) != len(header):
            raise RecordError(f"{source}: {len(row)} cells for {len(header)} columns")
        trial_params: dict[str, ParamValue] = {}
        values: dict[str, float] = {}
        metadata: dict[str, str] = {}
        state = failure = infeasibility = ""
        for column, cell in zip(header, row, strict=True):
            if column == "state":
                state = cell
            elif column == "failure_reason":
                failure = cell
            elif column == "infeasibility_reason":
                infeasibility = cell
            elif cell == "":
                continue
            elif column.startswith("params."):
                name = column[len("params.") :]
                trial_params[name] = _typed(cell, params.get(name), source, name)
            elif column.startswith(("values.", "constraints.")):
                # One measurement: the constraints' values go with the objectives'.
                name = column.split(".", 1)[1]
                values[name] = _number_cell(cell, source, column)
            elif column.startswith("metadata."):
                metadata[column[len("metadata.") :]] = cell
        trial = _finished(source, state, trial_params, values, failure, metadata, infeasibility)
        if trial is None:
            skipped[state.upper()] += 1
        else:
            out.append(trial)
    return out, skipped
