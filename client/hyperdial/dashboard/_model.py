"""What the dashboard sends the browser, built from the client's objects: a study's description
and its trials as compact rows.

A trial is one JSON array, its fields in the order of :data:`TRIAL_FIELDS` (sent once with the
study), its parameters and objective values in the order of the study's spec. A 100k-trial
study is then a list of short arrays instead of 100k objects repeating every key. Each row is
encoded once, when the trial changes (:func:`encode_row`), and responses join the encoded rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hyperdial._base import BaseStudy, BaseTrial, TrialState
from hyperdial._space import Categorical, Discrete, Float, Int, Parameter

__all__ = [
    "STATES",
    "TRIAL_FIELDS",
    "encode_row",
    "epoch_seconds",
    "finite",
    "study_description",
    "trial_row",
]

#: Trial states, in the order of their codes in a row (the code is the index).
STATES = (
    TrialState.WAITING,
    TrialState.RUNNING,
    TrialState.COMPLETED,
    TrialState.FAILED,
    TrialState.STOPPED,
    TrialState.INFEASIBLE,
)
_STATE_CODE = {state: i for i, state in enumerate(STATES)}

#: The fields of a trial row, in order. Times are seconds since the epoch (UTC) with
#: millisecond precision; ``values`` and ``params`` follow the order of the study's objectives
#: and parameters (``null`` for an absent value or an inactive parameter; ``values`` is
#: ``null`` altogether for a trial without any); ``stop`` is ``[rule, step]`` for a STOPPED
#: trial's decision, else ``null``; ``infeasible`` is 1 for an INFEASIBLE trial or one whose
#: values break an outcome constraint (else 0), ``infeasibility_reason`` says why; ``constraints``
#: holds the values of the study's outcome constraints in their order (``null`` for a trial
#: without values, or a study without constraints).
TRIAL_FIELDS = (
    "number",
    "state",
    "values",
    "params",
    "client_id",
    "create_time",
    "complete_time",
    "lease_expire_time",
    "failure_reason",
    "original",
    "reissued",
    "measurements",
    "revision",
    "stop",
    "infeasible",
    "infeasibility_reason",
    "constraints",
)


def finite(value: float | None) -> float | None:
    """``value``, or ``None`` for ``None``, NaN or an infinity (JSON has no such numbers)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def epoch_seconds(when: datetime | None) -> float | None:
    """Seconds since the epoch, to the millisecond; ``None`` for ``None``."""
    return None if when is None else round(when.timestamp(), 3)


def trial_row(
    trial: BaseTrial,
    parameters: Sequence[str],
    objectives: Sequence[str],
    revision: int,
    constraints: Sequence[str] = (),
) -> list[Any]:
    """The row of ``trial`` (fields :data:`TRIAL_FIELDS`).

    Args:
        trial: The trial as read.
        parameters: Names of the study's parameters, in the order of its spec.
        objectives: Names of its objectives, in order.
        revision: The trial's revision (``Trial.revision``).
        constraints: Names of its outcome constraints, in order.
    """
    values: list[float | None] | None = None
    if trial.values:
        values = [finite(trial.values.get(name)) for name in objectives]
    measured: list[float | None] | None = None
    if trial.constraint_values and constraints:
        measured = [finite(trial.constraint_values.get(name)) for name in constraints]
    params: list[Any] = []
    for name in parameters:
        value = trial.params.get(name)
        params.append(finite(value) if isinstance(value, float) else value)
    stop = None
    if trial.stop_decision is not None and trial.state is TrialState.STOPPED:
        stop = [trial.stop_decision.rule, trial.stop_decision.step]
    return [
        trial.number,
        _STATE_CODE.get(trial.state, -1),
        values,
        params,
        trial.client_id,
        epoch_seconds(trial.create_time),
        epoch_seconds(trial.complete_time),
        epoch_seconds(trial.lease_expire_time),
        trial.failure_reason,
        trial.original_number,
        trial.reissued_number,
        trial.measurement_count,
        revision,
        stop,
        1 if trial.infeasible else 0,
        trial.infeasibility_reason,
        measured,
    ]


def encode_row(row: list[Any]) -> str:
    """One row as compact JSON."""
    return json.dumps(row, separators=(",", ":"), allow_nan=False)


def _parameter(p: Parameter) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name}
    if isinstance(p, Float | Int):
        out.update(
            type="float" if isinstance(p, Float) else "int", low=p.low, high=p.high, log=p.log
        )
    elif isinstance(p, Categorical):
        out.update(type="categorical", values=list(p.values))
    elif isinstance(p, Discrete):
        out.update(type="discrete", values=list(p.values))
    else:  # a domain newer than this client
        out.update(type="unknown")
    out["when"] = [p.when[0], list(p.when[1])] if p.when is not None else None
    return out


def study_description(study: BaseStudy[Any], namespace: str | None) -> dict[str, Any]:
    """What the pages show of a study besides its trials: its spec, with defaults resolved."""
    known = {p.name: p for p in study.parameters}
    policy = study.early_stopping
    early_stopping = None
    if policy is not None:
        early_stopping = {
            "rule": type(policy.rule).__name__ if policy.rule is not None else "unknown",
            "objective": policy.objective,
            "rank_stopped_trials": policy.rank_stopped_trials,
        }
    return {
        "id": study.study_id,
        "name": study.name,
        "namespace": namespace,
        "algorithm": study.algorithm,
        "objectives": [{"name": o.name, "goal": o.goal} for o in study.objectives],
        "constraints": [
            {
                "name": c.name,
                "lower_bound": c.lower_bound,
                "upper_bound": c.upper_bound,
                "text": str(c),
            }
            for c in study.constraints
        ],
        "parameters": [
            _parameter(known[name]) if name in known else {"name": name, "type": "unknown"}
            for name in study._param_names
        ],
        "lease_timeout": study.lease_timeout,
        "early_stopping": early_stopping,
        "create_time": epoch_seconds(study.create_time),
        "trial_fields": list(TRIAL_FIELDS),
        "states": [s.value for s in STATES],
    }
