"""The read-only views of the ``hyperdial`` command, and deleting studies: ``studies list``,
``studies get``, ``studies delete``, ``trials list``, ``trials get`` and ``best`` (by the
observed values, or ``--by model``: the recommendation, with the model's predictions).

Readable tables by default; ``--json`` prints JSON for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TextIO

from hyperdial._base import BaseTrial, TrialState, study_name
from hyperdial._cli_common import EXIT_NOT_FOUND, EXIT_OK, CommandError, print_json
from hyperdial._client import Client
from hyperdial._early_stopping import Decision, EarlyStopping, rule_name
from hyperdial._errors import NotFoundError
from hyperdial._records import study_record, trial_record
from hyperdial._space import Categorical, Constraint, Discrete, Float, Int, Parameter
from hyperdial._study import Study
from hyperdial._table import format_table, format_value
from hyperdial.v1 import study_pb2

__all__ = ["best", "delete", "studies_get", "studies_list", "trials_get", "trials_list"]

#: The ``StudySpec`` fields ``studies get`` shows in its own words.
_SHOWN_SPEC_FIELDS = frozenset(
    {
        "parameters",
        "objectives",
        "algorithm",
        "seed",
        "max_trials",
        "grid_resolution",
        "initial_trials",
        "lease_timeout",
        "early_stopping",
        "constraints",
    }
)


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


def studies_list(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    studies = list(client.list_studies())
    if args.json:
        print_json([study_record(s) for s in studies], out)
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


def studies_get(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    record = study_record(study)
    if args.json:
        print_json(record, out)
        return EXIT_OK
    facts = [
        ("study", study.name),
        ("algorithm", study.algorithm),
        ("seed", record["seed"]),
        ("objectives", _goals(study)),
        ("constraints", ", ".join(str(c) for c in study.constraints) or None),
        ("trials", study.trial_count),
        ("max trials", record["max_trials"]),
        ("grid resolution", record["grid_resolution"]),
        ("initial trials", record["initial_trials"]),
        ("lease timeout", f"{record['lease_timeout']:g} s" if record["lease_timeout"] else None),
        ("early stopping", _policy(study.early_stopping)),
    ]
    # Spec fields this view does not know yet are shown as they are, never left out.
    spec = record["spec"]
    facts += [
        (f.name.replace("_", " "), json.dumps(spec[f.name]))
        for f in study_pb2.StudySpec.DESCRIPTOR.fields
        if f.name not in _SHOWN_SPEC_FIELDS and f.name in spec
    ]
    facts.append(("created", record["create_time"]))
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


def delete(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Deletes studies; when a name is missing, deletes none unless ``--yes``."""
    names = list(dict.fromkeys(study_name(n) for n in args.study))
    missing = []
    # Every name is checked before anything is deleted: a typo must not leave half a job done.
    for name in names:
        try:
            client.get_study(name)
        except NotFoundError as e:
            if e.reason != "STUDY_NOT_FOUND":
                raise
            missing.append(name)
    if missing and not args.yes:
        found = len(names) - len(missing)
        others = f"; pass --yes to delete the {found} that exist" if found else ""
        raise CommandError(
            f"STUDY_NOT_FOUND: no study {', '.join(missing)}: nothing deleted{others}",
            EXIT_NOT_FOUND,
        )
    deleted = []
    for name in names:
        if name in missing:
            continue
        try:
            client.delete_study(name)
        except NotFoundError as e:
            if e.reason != "STUDY_NOT_FOUND":
                raise
            missing.append(name)  # deleted by someone else since the check
            continue
        deleted.append(name)
        if not args.json:
            print(f"deleted {name}", file=out)
    if missing:
        print(f"hyperdial: not found, skipped: {', '.join(missing)}", file=sys.stderr)
    if args.json:
        print_json({"deleted": deleted, "missing": missing}, out)
    return EXIT_OK


def _feasible(trial: BaseTrial) -> str | None:
    """``no`` for an infeasible trial, ``yes`` for a completed feasible one, else nothing
    (a trial without a result is neither)."""
    if trial.infeasible:
        return "no"
    return "yes" if trial.state is TrialState.COMPLETED else None


def _trials_table(study: Study, trials: Sequence[BaseTrial]) -> str:
    """One row per trial: its objectives' and constraints' values, parameters and client; a
    STEP column (the last step reported) when a trial reported, a STOPPED BY column (the
    rule) when one stopped, a FEASIBLE column when the study has constraints or a trial is
    infeasible, a FAILURE column when one failed, an INFEASIBILITY column (why) when one is
    infeasible."""
    objectives = [o.name for o in study.objectives]
    constraints = [c.name for c in study.constraints]
    params = list(study._param_names)
    value_headers = ["VALUE"] if len(objectives) == 1 else [o.upper() for o in objectives]
    headers: list[str] = []
    cells: list[Callable[[BaseTrial], object]] = []
    numeric: list[int] = []

    def column(header: str, cell: Callable[[BaseTrial], object], right: bool = False) -> None:
        if right:
            numeric.append(len(headers))
        headers.append(header)
        cells.append(cell)

    column("NUMBER", lambda t: t.number, right=True)
    column("STATE", lambda t: str(t.state))
    for header, name in zip(value_headers, objectives, strict=True):
        column(header, _value_cell(name), right=True)
    for name in constraints:
        column(name.upper(), _constraint_cell(name), right=True)
    for name in params:
        column(name, _param_cell(name), not isinstance(study._params.get(name), Categorical))
    column("CLIENT", lambda t: t.client_id)
    if any(t.last_step is not None for t in trials):
        column("STEP", lambda t: t.last_step, right=True)
    if any(t.stop_decision is not None for t in trials):
        column("STOPPED BY", lambda t: t.stop_decision.rule if t.stop_decision else None)
    if constraints or any(t.infeasible for t in trials):
        column("FEASIBLE", _feasible)
    if any(t.failure_reason for t in trials):
        column("FAILURE", lambda t: t.failure_reason)
    if any(t.infeasibility_reason for t in trials):
        column("INFEASIBILITY", lambda t: t.infeasibility_reason)
    rows = [[cell(t) for cell in cells] for t in trials]
    return format_table(headers, rows, numeric=numeric)


def _value_cell(name: str) -> Callable[[BaseTrial], object]:
    return lambda t: (t.values or {}).get(name)


def _constraint_cell(name: str) -> Callable[[BaseTrial], object]:
    return lambda t: (t.constraint_values or {}).get(name)


def _param_cell(name: str) -> Callable[[BaseTrial], object]:
    return lambda t: t.params.get(name)


def trials_list(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    # With the curves: the last one is always kept, so the table can show the last step.
    trials = study.trials(args.state, with_measurements=True)
    if args.json:
        print_json([trial_record(t, curve=False) for t in trials], out)
    elif not trials:
        states = f" in state {' or '.join(args.state)}" if args.state else ""
        print(f"no trials{states} in {study.name}", file=out)
    else:
        print(_trials_table(study, trials), file=out)
    return EXIT_OK


def trials_get(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    trial = study.get_trial(args.number)
    if args.json:
        print_json(trial_record(trial), out)
        return EXIT_OK
    objectives = [o.name for o in study.objectives]
    values = trial.values or {}
    measured = trial.constraint_values or {}
    kept = len(trial.measurements)
    reports = str(trial.measurement_count)
    if kept != trial.measurement_count:
        reports += f" ({kept} kept)"
    facts: list[tuple[str, object]] = [
        ("trial", trial.name),
        ("state", str(trial.state)),
        *((f"value {o}" if len(objectives) > 1 else "value", values.get(o)) for o in objectives),
        *(
            (f"constraint {c.name}", _constraint_value(measured.get(c.name), c))
            for c in study.constraints
        ),
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
    feasible = _feasible(trial)
    if feasible is not None and (study.constraints or trial.infeasible):
        facts.append(("feasible", feasible))
    if trial.infeasibility_reason:
        facts.append(("infeasibility", trial.infeasibility_reason))
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


def _constraint_value(value: float | None, constraint: Constraint) -> str | None:
    """``25.3 (latency_ms <= 20)``: the value and the bounds it must hold."""
    if value is None:
        return None
    return f"{format_value(value)} ({constraint})"


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


def best(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    if getattr(args, "by", "observed") == "model":
        return _recommended(study, args, out)
    best = study.best_trials
    if args.json:
        print_json([trial_record(t, curve=False) for t in best], out)
    elif not best:
        print(_none_yet(study), file=out)
    else:
        if len(study.objectives) > 1:
            print(f"Pareto front of {study.name}: {len(best)} trials", file=out)
        print(_trials_table(study, best), file=out)
    return EXIT_OK


def _none_yet(study: Study) -> str:
    """What ``best`` says when no trial ranks."""
    if study.constraints:
        return f"no trial of {study.name} has completed within its constraints yet"
    return f"no trial of {study.name} has completed yet"


def _recommended(study: Study, args: argparse.Namespace, out: TextIO) -> int:
    """``best --by model``: the recommendation, with the model's prediction of each trial."""
    trials = study.recommended_trials
    if args.json:
        print_json(
            [
                {
                    **trial_record(t, curve=False),
                    "prediction": asdict(t.prediction) if t.prediction is not None else None,
                }
                for t in trials
            ],
            out,
        )
        return EXIT_OK
    if not trials:
        print(_none_yet(study), file=out)
        return EXIT_OK
    if any(t.prediction is None for t in trials):
        print(
            f"too few completed trials in {study.name} for a model (2 are needed): "
            "judged by the observed values",
            file=out,
        )
        if len(study.objectives) > 1:
            print(f"Pareto front of {study.name}: {len(trials)} trials", file=out)
        print(_trials_table(study, trials), file=out)
        return EXIT_OK
    if len(study.objectives) > 1:
        print(f"Pareto front of the recommendation of {study.name}: {len(trials)} trials", file=out)
    else:
        print(f"recommended trial of {study.name}, by the model's prediction", file=out)
    print(_predicted_table(study, trials), file=out)
    return EXIT_OK


def _predicted_table(study: Study, trials: Sequence[BaseTrial]) -> str:
    """One row per recommended trial: each objective's observed value, predicted mean ± sd
    and fitted noise sd, the completed trials measured at the point, and the parameters."""
    objectives = [o.name for o in study.objectives]
    params = list(study._param_names)
    headers = ["NUMBER"]
    for o in objectives:
        prefix = "" if len(objectives) == 1 else f"{o.upper()} "
        headers += [f"{prefix}OBSERVED", f"{prefix}PREDICTED", f"{prefix}NOISE SD"]
    headers += ["MEASUREMENTS", *params]
    rows = []
    for t in trials:
        p = t.prediction
        assert p is not None
        values = t.values or {}
        row: list[object] = [t.number]
        for o in objectives:
            mean, sd = p.mean.get(o), p.stddev.get(o)
            predicted = None if mean is None else f"{format_value(mean)} ± {format_value(sd)}"
            row += [values.get(o), predicted, p.noise_stddev.get(o)]
        row.append(p.measurements)
        row += [t.params.get(name) for name in params]
        rows.append(row)
    numeric = list(range(2 + 3 * len(objectives)))
    numeric += [
        2 + 3 * len(objectives) + i
        for i, name in enumerate(params)
        if not isinstance(study._params.get(name), Categorical)
    ]
    return format_table(headers, rows, numeric=numeric)
