"""Stored forms: compact JSON of study records, specs and trials, and score texts.

Numbers are written by Python's :mod:`json` only, which prints a float with ``repr`` (the
shortest text that reads back as the same double, ``-0.0``, ``1e-300`` and ``5e-324``
included), prints an int as an int of any size and reads ``3`` back as ``int`` and ``3.0`` as
``float``. So parameter values, objective values and times round-trip bit-exact with their type.
Non-finite floats are written as ``NaN`` / ``Infinity`` and read back by Python alike.

A trial as the Redis store keeps it is a JSON array of *layers*: the full trial first, then
patches appended by the Lua scripts (handing out an enqueued trial, completing a trial). A patch
holds only the fields it changes; ``metadata`` in a patch is merged into the trial's metadata,
every other field replaces. The patches are built here, in Python; the scripts never decode or
re-encode JSON, they only splice texts, so no number ever goes through Lua's ``cjson`` (which
prints 14 significant digits and would lose precision).

Encoding and decoding only: the argument checks both stores share live in :mod:`._checks`, the
mapping of error codes to typed errors in :mod:`._errors`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    DiscreteDomain,
    Domain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    ParamValue,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudyRecord, StudySpec
from hyperdial_server.core.trial import Trial, TrialState

# One encoder for every call: ``json.dumps`` with options builds a new one each time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(obj: object) -> str:
    """Compact JSON: no spaces, non-ASCII text kept as UTF-8."""
    return _ENCODER.encode(obj)


# --- study records ---------------------------------------------------------------------------


def _domain_to_json(d: Domain) -> dict[str, Any]:
    if isinstance(d, FloatDomain):
        return {"kind": "float", "low": d.low, "high": d.high, "log": d.log}
    if isinstance(d, IntDomain):
        return {"kind": "int", "low": d.low, "high": d.high, "log": d.log}
    if isinstance(d, CategoricalDomain):
        return {"kind": "categorical", "values": list(d.values)}
    return {"kind": "discrete", "values": list(d.values)}


def _domain_from_json(obj: Mapping[str, Any]) -> Domain:
    kind = obj["kind"]
    if kind == "float":
        return FloatDomain(obj["low"], obj["high"], bool(obj["log"]))
    if kind == "int":
        return IntDomain(obj["low"], obj["high"], bool(obj["log"]))
    if kind == "categorical":
        return CategoricalDomain(tuple(obj["values"]))
    if kind == "discrete":
        return DiscreteDomain(tuple(obj["values"]))
    raise ValueError(f"unknown domain kind {kind!r} in a stored study")


def _parameter_to_json(p: ParameterConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "domain": _domain_to_json(p.domain)}
    if p.condition is not None:
        out["condition"] = {"parent": p.condition.parent, "values": list(p.condition.values)}
    return out


def _parameter_from_json(obj: Mapping[str, Any]) -> ParameterConfig:
    cond = obj.get("condition")
    condition = None
    if cond is not None:
        values: tuple[ParamValue, ...] = tuple(cond["values"])
        condition = Condition(cond["parent"], values)
    return ParameterConfig(obj["name"], _domain_from_json(obj["domain"]), condition)


def spec_to_json(spec: StudySpec) -> dict[str, Any]:
    """A study spec as a JSON-ready dict."""
    return {
        # Topological order, so building the space again keeps the same order.
        "parameters": [_parameter_to_json(p) for p in spec.space.parameters],
        "objectives": [{"name": o.name, "maximize": o.maximize} for o in spec.objectives],
        "algorithm": spec.algorithm.value,
        "seed": spec.seed,
        "max_trials": spec.max_trials,
        "grid_resolution": spec.grid_resolution,
        "initial_trials": spec.initial_trials,
        "lease_timeout": spec.lease_timeout,
    }


def spec_from_json(obj: Mapping[str, Any]) -> StudySpec:
    """The study spec of :func:`spec_to_json`'s dict."""
    return StudySpec(
        space=SearchSpace([_parameter_from_json(p) for p in obj["parameters"]]),
        objectives=tuple(Objective(o["name"], bool(o["maximize"])) for o in obj["objectives"]),
        algorithm=Algorithm(obj["algorithm"]),
        seed=obj["seed"],
        max_trials=obj["max_trials"],
        grid_resolution=obj["grid_resolution"],
        # Absent from records written before the field existed.
        initial_trials=obj.get("initial_trials"),
        lease_timeout=obj.get("lease_timeout"),
    )


def encode_study(record: StudyRecord) -> str:
    """A study record as compact JSON."""
    return dumps(
        {
            "study_id": record.study_id,
            "spec": spec_to_json(record.spec),
            "create_time": record.create_time,
            "uid": record.uid,
            "trial_count": record.trial_count,
        }
    )


def decode_study(text: str) -> StudyRecord:
    """The study record of :func:`encode_study`'s text."""
    obj = json.loads(text)
    return StudyRecord(
        study_id=obj["study_id"],
        spec=spec_from_json(obj["spec"]),
        create_time=obj["create_time"],
        uid=obj["uid"],
        trial_count=obj["trial_count"],
    )


# --- trials ----------------------------------------------------------------------------------


def _trial_fields(trial: Trial) -> dict[str, Any]:
    # "state" first: the Redis store splices the number in after the opening brace. Fields at
    # their default are left out (about 70 bytes of every stored trial); decoding restores them.
    fields: dict[str, Any] = {
        "state": trial.state.value,
        "params": dict(trial.params),
        "create_time": trial.create_time,
    }
    if trial.values is not None:
        fields["values"] = dict(trial.values)
    if trial.client_id:
        fields["client_id"] = trial.client_id
    if trial.complete_time is not None:
        fields["complete_time"] = trial.complete_time
    if trial.failure_reason:
        fields["failure_reason"] = trial.failure_reason
    if trial.metadata:
        fields["metadata"] = dict(trial.metadata)
    if trial.sampler_index is not None:
        fields["index"] = trial.sampler_index
    # Twins of a re-issue (rare): the Redis store patches "reissued" onto the expired trial.
    if trial.original_number is not None:
        fields["original"] = trial.original_number
    if trial.reissued_number is not None:
        fields["reissued"] = trial.reissued_number
    return fields


def encode_trial_body(trial: Trial) -> str:
    """A trial as compact JSON without its number: ``{"state":...}``.

    The Redis scripts assign the number and splice ``"number":N,`` after the opening brace.
    """
    return dumps(_trial_fields(trial))


def _trial_from_dict(obj: Mapping[str, Any]) -> Trial:
    values = obj.get("values")
    return Trial(
        number=obj["number"],
        state=TrialState(obj["state"]),
        params=dict(obj["params"]),
        values=None if values is None else dict(values),
        client_id=obj.get("client_id", ""),
        create_time=obj["create_time"],
        complete_time=obj.get("complete_time"),
        failure_reason=obj.get("failure_reason", ""),
        metadata=dict(obj.get("metadata", {})),
        lease_expire_time=obj.get("lease_expire_time"),
        sampler_index=obj.get("index"),
        original_number=obj.get("original"),
        reissued_number=obj.get("reissued"),
    )


def encode_trial_patch(
    *,
    state: TrialState,
    client_id: str | None = None,
    values: Mapping[str, float] | None = None,
    complete_time: float | None = None,
    failure_reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """A patch layer: ``state`` and the other fields given (``metadata`` merges on decode)."""
    patch: dict[str, Any] = {"state": state.value}
    if client_id is not None:
        patch["client_id"] = client_id
    if values is not None:
        patch["values"] = dict(values)
        # A late result turns a lease-expired (FAILED) trial into a COMPLETED one.
        patch["failure_reason"] = ""
    if complete_time is not None:
        patch["complete_time"] = complete_time
    if failure_reason is not None:
        patch["failure_reason"] = failure_reason
    if metadata:
        patch["metadata"] = dict(metadata)
    return dumps(patch)


def stored_trial_number(text: str) -> int:
    """The number of a stored trial, read without decoding it: the scripts write the number
    first (``[{"number":N,...``)."""
    start = text.index(":") + 1
    return int(text[start : text.index(",", start)])


def decode_stored_trial(text: str, lease: str | float | None = None) -> Trial:
    """The trial of a stored layer array ``[trial, patch, ...]`` (see the module docstring).

    Args:
        text: The stored layers.
        lease: The trial's lease deadline (kept outside the trial, in the study's lease set, so
            that a heartbeat rewrites one score instead of growing the trial); ``None`` or
            ``False`` (a missing score as Lua returns it) for none.
    """
    layers = json.loads(text)
    obj: dict[str, Any] = dict(layers[0])
    metadata: dict[str, str] = dict(obj.get("metadata", {}))
    for patch in layers[1:]:
        for key, value in patch.items():
            if key == "metadata":
                metadata.update(value)
            else:
                obj[key] = value
    obj["metadata"] = metadata
    trial = _trial_from_dict(obj)
    if lease is not None and lease is not False and trial.state is TrialState.RUNNING:
        trial.lease_expire_time = float(lease)
    return trial


# --- scores ----------------------------------------------------------------------------------


def score_text(score: float) -> str:
    """``score`` as Redis reads it back exactly (``repr``; ``inf`` and ``-inf`` included).

    Raises:
        ValueError: ``score`` is NaN, which has no rank.
    """
    f = float(score)
    if math.isnan(f):
        raise ValueError("a trial's score cannot be NaN")
    return repr(f)


def score_member(number: int) -> str:
    """A trial number in the scores set, zero-padded so that ties sort by number."""
    return f"{number:020d}"
