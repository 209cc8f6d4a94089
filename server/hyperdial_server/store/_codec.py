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

Two pieces of a trial are written by ``lua/add_measurement.lua`` itself, as texts holding no
float: the count of intermediate reports, a last layer ``{"mc":N}`` that each report rewrites
in place (so a trial does not grow with its reports), and the decision that stopped a trial
(``"stop"``: integers and a message; see :func:`decision_to_json`). The reports themselves live
in keys of their own (:mod:`._codec_reports`).

Encoding and decoding only: the argument checks both stores share live in :mod:`._checks`, the
mapping of error codes to typed errors in :mod:`._errors`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from hyperdial_server.core.early_stopping import (
    Decision,
    EarlyStopping,
    Hyperband,
    PercentileRule,
    PolicyRule,
    Rule,
    SuccessiveHalving,
    Threshold,
)
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
from hyperdial_server.core.study import (
    Algorithm,
    Constraint,
    Objective,
    StudyRecord,
    StudySpec,
)
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


def _policy_to_json(policy: EarlyStopping) -> dict[str, Any]:
    rule = policy.rule
    fields: dict[str, Any]
    if isinstance(rule, PercentileRule):
        fields = {
            "kind": "median" if rule.median else "percentile",
            "percentile": rule.percentile,
            "warmup_steps": rule.warmup_steps,
            "min_trials": rule.min_trials,
            "interval_steps": rule.interval_steps,
        }
    elif isinstance(rule, SuccessiveHalving):
        fields = {
            "kind": "successive_halving",
            "min_resource": rule.min_resource,
            "reduction_factor": rule.reduction_factor,
            "min_early_stopping_rate": rule.min_early_stopping_rate,
            "max_resource": rule.max_resource,
        }
    elif isinstance(rule, Hyperband):
        fields = {
            "kind": "hyperband",
            "min_resource": rule.min_resource,
            "max_resource": rule.max_resource,
            "reduction_factor": rule.reduction_factor,
        }
    else:
        fields = {
            "kind": "threshold",
            "threshold": rule.threshold,
            "warmup_steps": rule.warmup_steps,
            "patience_steps": rule.patience_steps,
            "min_delta": rule.min_delta,
        }
    return {
        "rule": fields,
        "objective": policy.objective,
        "maximize": policy.maximize,
        "max_measurements": policy.max_measurements,
        "rank_stopped_trials": policy.rank_stopped_trials,
    }


def _policy_from_json(obj: Mapping[str, Any]) -> EarlyStopping:
    fields = dict(obj["rule"])
    kind = fields.pop("kind")
    rule: PolicyRule
    if kind in ("median", "percentile"):
        rule = PercentileRule(**fields, median=kind == "median")
    elif kind == "successive_halving":
        rule = SuccessiveHalving(**fields)
    elif kind == "hyperband":
        rule = Hyperband(**fields)
    elif kind == "threshold":
        rule = Threshold(**fields)
    else:
        raise ValueError(f"unknown early-stopping rule {kind!r} in a stored study")
    return EarlyStopping(
        rule=rule,
        objective=obj["objective"],
        maximize=bool(obj["maximize"]),
        max_measurements=obj["max_measurements"],
        rank_stopped_trials=bool(obj["rank_stopped_trials"]),
    )


def spec_to_json(spec: StudySpec) -> dict[str, Any]:
    """A study spec as a JSON-ready dict (``early_stopping`` only when the study has a
    policy, ``deterministic_objective`` only when true and ``constraints`` only when it has
    some, so that a spec without them is
    stored as before the fields existed)."""
    out: dict[str, Any] = {
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
    if spec.early_stopping is not None:
        out["early_stopping"] = _policy_to_json(spec.early_stopping)
    if spec.deterministic_objective:
        out["deterministic_objective"] = True
    if spec.constraints:
        out["constraints"] = [
            {"name": c.name, "lower": c.lower, "upper": c.upper} for c in spec.constraints
        ]
    return out


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
        early_stopping=_policy_from_json(policy) if (policy := obj.get("early_stopping")) else None,
        deterministic_objective=bool(obj.get("deterministic_objective", False)),
        constraints=tuple(
            Constraint(c["name"], c["lower"], c["upper"]) for c in obj.get("constraints", ())
        ),
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
    # Early stopping: the scripts keep "mc" in a layer of its own, rewritten at each report.
    if trial.measurement_count:
        fields["mc"] = trial.measurement_count
    if trial.stop is not None:
        fields["stop"] = decision_to_json(trial.stop)
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
        measurement_count=obj.get("mc", 0),
        stop=None if (stop := obj.get("stop")) is None else decision_from_json(stop),
    )


def decision_to_json(decision: Decision) -> dict[str, Any]:
    """A decision as ``lua/add_measurement.lua`` writes it: fields at their default left out."""
    out: dict[str, Any] = {"stop": decision.stop, "step": decision.step}
    if decision.rule is not None:
        out["rule"] = decision.rule.value
    if decision.rung is not None:
        out["rung"] = decision.rung
    if decision.message:
        out["message"] = decision.message
    if decision.compared:
        out["compared"] = decision.compared
    return out


def decision_from_json(obj: Mapping[str, Any]) -> Decision:
    """The decision of :func:`decision_to_json`'s dict (or of the scripts' JSON)."""
    rule = obj.get("rule")
    return Decision(
        stop=bool(obj["stop"]),
        step=int(obj["step"]),
        rule=None if rule is None else Rule(rule),
        rung=obj.get("rung"),
        message=obj.get("message", ""),
        compared=obj.get("compared", 0),
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


def decode_stored_trial(
    text: str, lease: str | float | None = None, revision: str | int | None = None
) -> Trial:
    """The trial of a stored layer array ``[trial, patch, ...]`` (see the module docstring).

    Args:
        text: The stored layers.
        lease: The trial's lease deadline (kept outside the trial, in the study's lease set, so
            that a heartbeat rewrites one score instead of growing the trial); ``None`` or
            ``False`` (a missing score as Lua returns it) for none.
        revision: The trial's revision (its score in the study's changes set, kept outside
            the trial for the same reason); ``None`` or ``False`` for none (0).
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
    if revision is not None and revision is not False:
        trial.revision = int(revision)
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
