"""``Study.trials_dataframe()``: the trials as a pandas DataFrame, when pandas is installed.

pandas is not a dependency of the client: it is imported only here, only when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperdial._base import BaseTrial

__all__ = ["PANDAS_MISSING", "trials_dataframe"]

#: The message of the ImportError raised without pandas.
PANDAS_MISSING = (
    "trials_dataframe() needs pandas, which hyperdial does not install: pip install pandas"
)


def trials_dataframe(
    trials: Sequence[BaseTrial],
    parameters: Sequence[str],
    objectives: Sequence[str],
    constraints: Sequence[str] = (),
) -> Any:
    """One row per trial, in order of number.

    Columns: ``number``, ``state``, then ``value`` (one objective) or ``values_<name>`` (one
    per objective), ``constraints_<name>`` (the value of each outcome constraint),
    ``params_<name>`` (one per parameter, missing values where a conditional parameter was
    inactive), ``client_id``, ``failure_reason``, ``infeasible`` (bool: an INFEASIBLE trial,
    or a completed one that breaks a constraint) and ``infeasibility_reason`` (why; empty
    for the others), ``create_time``,
    ``complete_time`` (UTC), ``duration``, ``original_number`` and ``reissued_number``
    (pandas' nullable ``Int64``: the twin of a trial whose lease expired, missing for most
    trials), ``measurement_count`` (intermediate reports), ``stop_rule`` and ``stop_step``
    (why and at which step a STOPPED trial stopped; missing for other trials) and
    ``metadata_<key>`` for every metadata key seen. A STOPPED trial's values are those of its
    last report.

    Raises:
        ImportError: pandas is not installed.
    """
    try:
        pd = importlib.import_module("pandas")
    except ImportError as e:
        raise ImportError(PANDAS_MISSING, name="pandas") from e
    single = len(objectives) == 1
    value_columns = ["value"] if single else [f"values_{o}" for o in objectives]
    constraint_columns = [f"constraints_{c}" for c in constraints]
    param_columns = [f"params_{p}" for p in parameters]
    metadata_keys = sorted({k for t in trials for k in t.metadata})
    columns = [
        "number",
        "state",
        *value_columns,
        *constraint_columns,
        *param_columns,
        "client_id",
        "failure_reason",
        "infeasible",
        "infeasibility_reason",
        "create_time",
        "complete_time",
        "duration",
        "original_number",
        "reissued_number",
        "measurement_count",
        "stop_rule",
        "stop_step",
        *[f"metadata_{k}" for k in metadata_keys],
    ]
    rows: list[dict[str, object]] = []
    for t in trials:
        row: dict[str, object] = {"number": t.number, "state": str(t.state)}
        for column, objective in zip(value_columns, objectives, strict=True):
            row[column] = t.values.get(objective) if t.values is not None else None
        for column, name in zip(constraint_columns, constraints, strict=True):
            measured = t.constraint_values
            row[column] = measured.get(name) if measured is not None else None
        for column, name in zip(param_columns, parameters, strict=True):
            row[column] = t.params.get(name)
        row["client_id"] = t.client_id
        row["failure_reason"] = t.failure_reason
        row["infeasible"] = t.infeasible
        row["infeasibility_reason"] = t.infeasibility_reason
        row["create_time"] = t.create_time
        row["complete_time"] = t.complete_time
        row["duration"] = (
            t.complete_time - t.create_time
            if t.complete_time is not None and t.create_time is not None
            else None
        )
        row["original_number"] = t.original_number
        row["reissued_number"] = t.reissued_number
        row["measurement_count"] = t.measurement_count
        decision = t.stop_decision
        row["stop_rule"] = decision.rule if decision is not None else None
        row["stop_step"] = decision.step if decision is not None else None
        for key in metadata_keys:
            row[f"metadata_{key}"] = t.metadata.get(key)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("create_time", "complete_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["duration"] = pd.to_timedelta(frame["duration"])
    for column in ("original_number", "reissued_number", "stop_step"):
        # Integers with gaps: not float64, whose NaN would turn trial numbers into 3.0.
        frame[column] = frame[column].astype("Int64")
    return frame
