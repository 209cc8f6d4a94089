"""Study specs for the ``hyperdial`` command: from flags, from a JSON or YAML document, and
the differences between two of them.

A spec document has the shape of ``StudySpec`` in the protocol's JSON mapping, field names as
in the ``.proto`` file: what ``hyperdial export --format json`` writes under ``"spec"`` and
``hyperdial studies get --json`` under ``"spec"``. Reading it is driven by the message's
descriptor, so every field of the protocol is accepted and none is dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from google.protobuf import json_format

from hyperdial._cli_common import EXIT_USAGE, CommandError, message_record
from hyperdial._space import (
    Categorical,
    Constraint,
    Discrete,
    Float,
    Int,
    Parameter,
    ParamValue,
    parameters_to_proto,
)
from hyperdial._space import Objective as ObjectiveHelper
from hyperdial.v1 import study_pb2

__all__ = [
    "ALGORITHMS",
    "CONSTRAINT_FORMS",
    "PARAM_FORMS",
    "apply_options",
    "parse_constraint",
    "parse_objective",
    "parse_params",
    "spec_differences",
    "spec_from_document",
]

#: Algorithm names of ``--algorithm``, from the protocol's enum: ``grid``, ``random``...
ALGORITHMS = {
    name.removeprefix("ALGORITHM_").lower(): number
    for name, number in study_pb2.Algorithm.items()
    if number != study_pb2.ALGORITHM_UNSPECIFIED
}
#: The forms of ``--param``, for help and messages.
PARAM_FORMS = (
    "NAME=float:LOW:HIGH[:log], NAME=int:LOW:HIGH[:log], NAME=cat:A,B,... or "
    "NAME=discrete:X,Y,...; add @PARENT=V1,V2 to make it conditional"
)
#: The forms of ``--constraint``, for help and messages.
CONSTRAINT_FORMS = "NAME<=UPPER, NAME>=LOWER or LOWER<=NAME<=UPPER (bounds inclusive)"
_GOALS = {"min": "minimize", "minimize": "minimize", "max": "maximize", "maximize": "maximize"}


def spec_from_document(document: object, source: str) -> study_pb2.StudySpec:
    """The ``StudySpec`` a document describes.

    Args:
        document: The parsed JSON or YAML.
        source: Where it came from, for messages.

    Raises:
        CommandError: It is not a spec (an unknown field, a value of the wrong type).
    """
    if not isinstance(document, dict):
        raise CommandError(f"{source}: a spec is an object with 'parameters', 'objectives', ...")
    spec = study_pb2.StudySpec()
    try:
        json_format.ParseDict(document, spec)
    except json_format.ParseError as e:
        raise CommandError(f"{source}: not a study spec: {' '.join(str(e).split())}") from None
    return spec


def _number(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{flag}: {text!r} is not a number", EXIT_USAGE) from None
    if not math.isfinite(value):
        raise CommandError(f"{flag}: {text!r} is not a finite number", EXIT_USAGE)
    return value


def _integer(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"{flag}: {text!r} is not an integer", EXIT_USAGE) from None


def _condition_value(text: str, parent: Parameter | None, flag: str) -> ParamValue:
    """A value of a condition, typed by its parent (the service refuses a parent it cannot
    condition on, or an unknown one, by name)."""
    if isinstance(parent, Int):
        return _integer(text, flag)
    if isinstance(parent, (Float, Discrete)):
        return _number(text, flag)
    return text


def _one_param(text: str, defined: dict[str, Parameter]) -> Parameter:
    flag = f"--param {text!r}"
    name, eq, rest = text.partition("=")
    if not eq or not name:
        raise CommandError(f"{flag}: expected {PARAM_FORMS}", EXIT_USAGE)
    domain, at, condition = rest.partition("@")
    when: tuple[str, list[ParamValue]] | None = None
    if at:
        parent, eq, listed = condition.partition("=")
        if not eq or not parent or not listed:
            raise CommandError(f"{flag}: a condition is @PARENT=V1,V2,...", EXIT_USAGE)
        when = (parent, [_condition_value(v, defined.get(parent), flag) for v in listed.split(",")])
    kind, _, args = domain.partition(":")
    kind = kind.lower()
    parts = args.split(":")
    if kind in ("float", "int"):
        log = len(parts) == 3 and parts[2].lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise CommandError(f"{flag}: expected NAME={kind}:LOW:HIGH[:log]", EXIT_USAGE)
        if kind == "float":
            low, high = (_number(p, flag) for p in parts[:2])
            return Float(name, low, high, log=log, when=when)
        ilow, ihigh = (_integer(p, flag) for p in parts[:2])
        return Int(name, ilow, ihigh, log=log, when=when)
    if kind in ("cat", "categorical"):
        if not args:
            raise CommandError(f"{flag}: expected NAME=cat:A,B,...", EXIT_USAGE)
        return Categorical(name, args.split(","), when=when)
    if kind == "discrete":
        if not args:
            raise CommandError(f"{flag}: expected NAME=discrete:X,Y,...", EXIT_USAGE)
        return Discrete(name, [_number(v, flag) for v in args.split(",")], when=when)
    raise CommandError(f"{flag}: unknown type {kind!r}; expected {PARAM_FORMS}", EXIT_USAGE)


def parse_params(texts: Sequence[str]) -> list[study_pb2.ParameterSpec]:
    """The parameters of ``--param`` flags, in order; a condition's values take the type of
    a parent given before it.

    Raises:
        CommandError: A flag is malformed (usage error).
    """
    defined: dict[str, Parameter] = {}
    for text in texts:
        param = _one_param(text, defined)
        defined[param.name] = param
    return parameters_to_proto(list(defined.values()))


def parse_objective(text: str) -> study_pb2.ObjectiveSpec:
    """An objective of ``--objective NAME[:min|max]`` (minimised when the goal is left out).

    Raises:
        CommandError: The goal is not one of min, max, minimize, maximize.
    """
    name, _, goal = text.rpartition(":") if ":" in text else (text, "", "min")
    if not name or goal.lower() not in _GOALS:
        raise CommandError(f"--objective {text!r}: expected NAME, NAME:min or NAME:max", EXIT_USAGE)
    helper = ObjectiveHelper(name, "maximize" if _GOALS[goal.lower()] == "maximize" else "minimize")
    return helper._to_proto()


def parse_constraint(text: str) -> study_pb2.OutcomeConstraint:
    """An outcome constraint of ``--constraint 'latency_ms<=20'`` (see
    :meth:`hyperdial.Constraint.parse`).

    Raises:
        CommandError: The text is malformed (usage error).
    """
    try:
        return Constraint.parse(text)._to_proto()
    except ValueError as e:
        raise CommandError(f"--constraint: {e}", EXIT_USAGE) from None


def apply_options(
    spec: study_pb2.StudySpec,
    *,
    algorithm: str | None,
    seed: int | None,
    max_trials: int | None,
    grid_resolution: int | None,
    initial_trials: int | None,
    lease_timeout: float | None,
    deterministic_objective: bool | None = None,
) -> None:
    """Sets the options given on the command line (``None``: leave the spec's)."""
    if algorithm is not None:
        spec.algorithm = ALGORITHMS[algorithm]
    if seed is not None:
        spec.seed = seed
    if max_trials is not None:
        spec.max_trials = max_trials
    if grid_resolution is not None:
        spec.grid_resolution = grid_resolution
    if initial_trials is not None:
        spec.initial_trials = initial_trials
    if lease_timeout is not None:
        if not lease_timeout > 0:
            raise CommandError(
                f"--lease-timeout must be positive; got {lease_timeout:g}", EXIT_USAGE
            )
        spec.lease_timeout.FromTimedelta(timedelta(seconds=lease_timeout))
    if deterministic_objective is not None:
        spec.deterministic_objective = deterministic_objective


def _short(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def spec_differences(
    here: study_pb2.StudySpec, there: study_pb2.StudySpec, *, here_name: str, there_name: str
) -> list[str]:
    """What differs between two specs, one phrase per field (per parameter or objective for
    the lists): ``"seed: 5 in studies/a, 7 in f.json"``. Empty when they are equal."""
    a, b = message_record(here), message_record(there)
    out: list[str] = []
    for field in study_pb2.StudySpec.DESCRIPTOR.fields:
        key = field.name
        if a.get(key) == b.get(key):
            continue
        if key in ("parameters", "objectives", "constraints"):
            out += _list_differences(key, a.get(key, []), b.get(key, []), here_name, there_name)
        else:
            left = _short(a[key]) if key in a else "unset"
            right = _short(b[key]) if key in b else "unset"
            out.append(f"{key}: {left} in {here_name}, {right} in {there_name}")
    return out


def _list_differences(
    key: str, left: list[Any], right: list[Any], here_name: str, there_name: str
) -> list[str]:
    names_left = [item.get("name") for item in left]
    names_right = [item.get("name") for item in right]
    if names_left != names_right:
        return [f"{key}: {names_left} in {here_name}, {names_right} in {there_name}"]
    return [
        f"{key} {x.get('name')!r}: {_short(x)} in {here_name}, {_short(y)} in {there_name}"
        for x, y in zip(left, right, strict=True)
        if x != y
    ]
