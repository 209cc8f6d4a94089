"""Early stopping at the protocol's edge: the policy of a spec, reports and decisions.

Validation and conversion between the protobuf messages of early stopping
(``EarlyStoppingPolicy`` and its rules, ``Measurement`` with a step, ``EarlyStoppingDecision``,
``TrialView``) and the core types of :mod:`hyperdial_server.core.early_stopping`. Every bad
field is refused with INVALID_ARGUMENT naming it: a policy with reason
``INVALID_EARLY_STOPPING``, a report with ``INVALID_MEASUREMENT``.

A policy is stored with its defaults resolved (the objective's name and direction, ``0 means
...`` fields) and sent back so: ``GetStudy`` shows what the study uses, and sending that spec
to ``CreateStudy`` again makes the same study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial_server.core import limits
from hyperdial_server.core.early_stopping import (
    DEFAULT_MAX_MEASUREMENTS,
    DEFAULT_REDUCTION_FACTOR,
    MAX_EARLY_STOPPING_RATE,
    MAX_MEASUREMENTS_LIMIT,
    MAX_REDUCTION_FACTOR,
    Decision,
    EarlyStopping,
    Hyperband,
    PercentileRule,
    PolicyRule,
    SuccessiveHalving,
    Threshold,
)
from hyperdial_server.core.errors import InvalidArgument
from hyperdial_server.core.study import Constraint, Objective, StudySpec
from hyperdial_server.core.trial import Measurement
from hyperdial_server.service._validate import known_metrics

#: ``ErrorInfo.reason`` of every refused ``StudySpec.early_stopping``.
INVALID_EARLY_STOPPING = "INVALID_EARLY_STOPPING"
#: ``ErrorInfo.reason`` of every refused report (``AddTrialMeasurement.measurement``).
INVALID_MEASUREMENT = "INVALID_MEASUREMENT"

_POLICY = "spec.early_stopping"
#: Most bytes the kept measurements of one trial may take in a response (worst case: a value
#: for every objective and an ``elapsed_duration`` in each), so that a trial read in
#: ``TRIAL_VIEW_FULL`` always fits in a 4 MiB message with its other fields.
MAX_MEASUREMENTS_BYTES = 2 * 1024 * 1024
#: Longest ``google.protobuf.Duration`` (10,000 years), as the type defines it.
_MAX_DURATION_SECONDS = 315_576_000_000


# --- the policy ---------------------------------------------------------------------------------


def policy_from_proto(
    pb: study_pb2.EarlyStoppingPolicy,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
) -> EarlyStopping:
    """The validated core policy of ``spec.early_stopping``, defaults resolved.

    Args:
        pb: The policy, as sent.
        objectives: The study's objectives (already checked).
        constraints: The study's outcome constraints (already checked): a report may carry
            their values too, so they count in the bytes a measurement takes.

    Raises:
        InvalidArgument: Naming the offending field, reason ``INVALID_EARLY_STOPPING``.
    """
    kind = pb.WhichOneof("rule")
    rule: PolicyRule
    if kind == "median":
        m = pb.median
        rule = PercentileRule(
            percentile=50.0,
            warmup_steps=_steps(m.warmup_steps, f"{_POLICY}.median.warmup_steps"),
            min_trials=_min_trials(m.min_trials, f"{_POLICY}.median.min_trials"),
            interval_steps=_steps(m.interval_steps, f"{_POLICY}.median.interval_steps") or 1,
            median=True,
        )
    elif kind == "percentile":
        rule = _percentile(pb.percentile)
    elif kind == "successive_halving":
        rule = _successive_halving(pb.successive_halving)
    elif kind == "hyperband":
        rule = _hyperband(pb.hyperband)
    elif kind == "threshold":
        rule = _threshold(pb.threshold)
    else:
        raise _bad(
            "early_stopping has no rule; set exactly one of median, percentile, "
            "successive_halving, hyperband, threshold (or leave early_stopping unset)",
            f"{_POLICY}.rule",
        )
    objective = _objective(pb.objective, objectives)
    max_measurements = pb.max_measurements_per_trial
    field = f"{_POLICY}.max_measurements_per_trial"
    if max_measurements == 0:
        max_measurements = DEFAULT_MAX_MEASUREMENTS
    elif not 1 <= max_measurements <= MAX_MEASUREMENTS_LIMIT:
        raise _bad(
            f"max_measurements_per_trial must be between 1 and {MAX_MEASUREMENTS_LIMIT} (or 0 "
            f"for {DEFAULT_MAX_MEASUREMENTS}); got {max_measurements}",
            field,
        )
    per_measurement = measurement_bytes(objectives, constraints)
    if max_measurements * per_measurement > MAX_MEASUREMENTS_BYTES:
        fitting = MAX_MEASUREMENTS_BYTES // per_measurement
        metrics = f"{len(objectives)} objectives"
        if constraints:
            metrics += f" and {len(constraints)} constraints"
        raise _bad(
            f"max_measurements_per_trial {max_measurements} is too many for this study: a "
            f"measurement of its {metrics} takes up to {per_measurement} "
            f"bytes, and a trial's measurements must fit in {MAX_MEASUREMENTS_BYTES} bytes "
            f"to be read back; keep at most {fitting}",
            field,
        )
    return EarlyStopping(
        rule=rule,
        objective=objective.name,
        maximize=objective.maximize,
        max_measurements=max_measurements,
        rank_stopped_trials=pb.rank_stopped_trials,
    )


def _percentile(pb: study_pb2.PercentileStoppingRule) -> PercentileRule:
    field = f"{_POLICY}.percentile"
    # Written so that NaN fails too.
    if not 0.0 < pb.percentile < 100.0:
        raise _bad(
            f"percentile must be strictly between 0 and 100 (50 is the median rule); got "
            f"{pb.percentile:g}",
            f"{field}.percentile",
        )
    return PercentileRule(
        percentile=pb.percentile,
        warmup_steps=_steps(pb.warmup_steps, f"{field}.warmup_steps"),
        min_trials=_min_trials(pb.min_trials, f"{field}.min_trials"),
        interval_steps=_steps(pb.interval_steps, f"{field}.interval_steps") or 1,
    )


def _successive_halving(pb: study_pb2.SuccessiveHalvingRule) -> SuccessiveHalving:
    field = f"{_POLICY}.successive_halving"
    min_resource = _steps(pb.min_resource, f"{field}.min_resource") or 1
    eta = _reduction_factor(pb.reduction_factor, f"{field}.reduction_factor")
    rate = pb.min_early_stopping_rate
    if not 0 <= rate <= MAX_EARLY_STOPPING_RATE:
        raise _bad(
            f"min_early_stopping_rate must be between 0 and {MAX_EARLY_STOPPING_RATE}; got {rate}",
            f"{field}.min_early_stopping_rate",
        )
    first_rung = min_resource * eta**rate
    if first_rung > limits.MAX_STEP:
        raise _bad(
            f"the first rung, min_resource * reduction_factor^min_early_stopping_rate = "
            f"{min_resource} * {eta}^{rate}, is past the largest step ({limits.MAX_STEP}): "
            "no trial would ever reach it",
            f"{field}.min_early_stopping_rate",
        )
    max_resource = _steps(pb.max_resource, f"{field}.max_resource") or None
    if max_resource is not None and max_resource <= first_rung:
        raise _bad(
            f"max_resource ({max_resource}) must be greater than the first rung, "
            f"min_resource * reduction_factor^min_early_stopping_rate = {first_rung} (or 0 "
            "for no bound); no rung sits at or past it",
            f"{field}.max_resource",
        )
    return SuccessiveHalving(
        min_resource=min_resource,
        reduction_factor=eta,
        min_early_stopping_rate=rate,
        max_resource=max_resource,
    )


def _hyperband(pb: study_pb2.HyperbandRule) -> Hyperband:
    field = f"{_POLICY}.hyperband"
    min_resource = _steps(pb.min_resource, f"{field}.min_resource") or 1
    eta = _reduction_factor(pb.reduction_factor, f"{field}.reduction_factor")
    max_resource = _steps(pb.max_resource, f"{field}.max_resource")
    if max_resource == 0:
        raise _bad(
            "hyperband needs max_resource: the steps of a full training (at least "
            f"min_resource * reduction_factor = {min_resource * eta})",
            f"{field}.max_resource",
        )
    if max_resource < min_resource * eta:
        raise _bad(
            f"max_resource ({max_resource}) must be at least min_resource * reduction_factor "
            f"= {min_resource} * {eta} = {min_resource * eta}, so that a bracket has a rung",
            f"{field}.max_resource",
        )
    return Hyperband(max_resource=max_resource, min_resource=min_resource, reduction_factor=eta)


def _threshold(pb: study_pb2.ThresholdStoppingRule) -> Threshold:
    field = f"{_POLICY}.threshold"
    threshold = pb.threshold if pb.HasField("threshold") else None
    if threshold is not None and not math.isfinite(threshold):
        raise _bad(f"threshold must be a finite number; got {threshold}", f"{field}.threshold")
    patience = _steps(pb.patience_steps, f"{field}.patience_steps")
    if threshold is None and patience == 0:
        raise _bad(
            "the threshold rule needs threshold, patience_steps > 0, or both",
            f"{field}.threshold",
        )
    if not (math.isfinite(pb.min_delta) and pb.min_delta >= 0.0):
        raise _bad(
            f"min_delta must be a finite number, 0 or more; got {pb.min_delta}",
            f"{field}.min_delta",
        )
    return Threshold(
        threshold=threshold,
        warmup_steps=_steps(pb.warmup_steps, f"{field}.warmup_steps"),
        patience_steps=patience,
        min_delta=pb.min_delta,
    )


def _objective(name: str, objectives: Sequence[Objective]) -> Objective:
    if not name:
        return objectives[0]
    for o in objectives:
        if o.name == name:
            return o
    known = ", ".join(repr(o.name) for o in objectives)
    raise _bad(
        f"objective {name!r} is not an objective of the study (objectives: {known}); leave it "
        "empty to watch the first",
        f"{_POLICY}.objective",
    )


def _steps(value: int, field: str) -> int:
    """A step count of the policy: 0 to ``MAX_STEP``."""
    if not 0 <= value <= limits.MAX_STEP:
        raise _bad(f"{field.rsplit('.', 1)[1]} must be 0 to {limits.MAX_STEP}; got {value}", field)
    return value


def _min_trials(value: int, field: str) -> int:
    if value < 0:
        raise _bad(f"min_trials must be 0 or more (0 means 1); got {value}", field)
    return value or 1


def _reduction_factor(value: int, field: str) -> int:
    if value == 0:
        return DEFAULT_REDUCTION_FACTOR
    if not 2 <= value <= MAX_REDUCTION_FACTOR:
        raise _bad(
            f"reduction_factor must be between 2 and {MAX_REDUCTION_FACTOR} (or 0 for "
            f"{DEFAULT_REDUCTION_FACTOR}); got {value}",
            field,
        )
    return value


def _bad(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(message, field=field, reason=INVALID_EARLY_STOPPING)


def measurement_bytes(
    objectives: Sequence[Objective], constraints: Sequence[Constraint] = ()
) -> int:
    """Most bytes one ``Measurement`` of a trial of these objectives (and outcome constraints)
    takes, serialized in a ``Trial``: a map entry per metric, the step, an
    ``elapsed_duration`` and the framing."""
    names = [o.name for o in objectives] + [c.name for c in constraints]
    values = sum(len(name.encode()) + 15 for name in names)
    return values + 11 + 20 + 4


def policy_to_proto(policy: EarlyStopping) -> study_pb2.EarlyStoppingPolicy:
    """The stored policy as sent to clients: every default resolved."""
    pb = study_pb2.EarlyStoppingPolicy(
        objective=policy.objective,
        max_measurements_per_trial=policy.max_measurements,
        rank_stopped_trials=policy.rank_stopped_trials,
    )
    rule = policy.rule
    if isinstance(rule, PercentileRule) and rule.median:
        pb.median.CopyFrom(
            study_pb2.MedianStoppingRule(
                warmup_steps=rule.warmup_steps,
                min_trials=rule.min_trials,
                interval_steps=rule.interval_steps,
            )
        )
    elif isinstance(rule, PercentileRule):
        pb.percentile.CopyFrom(
            study_pb2.PercentileStoppingRule(
                percentile=rule.percentile,
                warmup_steps=rule.warmup_steps,
                min_trials=rule.min_trials,
                interval_steps=rule.interval_steps,
            )
        )
    elif isinstance(rule, SuccessiveHalving):
        pb.successive_halving.CopyFrom(
            study_pb2.SuccessiveHalvingRule(
                min_resource=rule.min_resource,
                reduction_factor=rule.reduction_factor,
                min_early_stopping_rate=rule.min_early_stopping_rate,
                max_resource=rule.max_resource or 0,
            )
        )
    elif isinstance(rule, Hyperband):
        pb.hyperband.CopyFrom(
            study_pb2.HyperbandRule(
                min_resource=rule.min_resource,
                max_resource=rule.max_resource,
                reduction_factor=rule.reduction_factor,
            )
        )
    else:
        pb.threshold.CopyFrom(
            study_pb2.ThresholdStoppingRule(
                threshold=rule.threshold,
                warmup_steps=rule.warmup_steps,
                patience_steps=rule.patience_steps,
                min_delta=rule.min_delta,
            )
        )
    return pb


# --- reports ------------------------------------------------------------------------------------


def measurement_from_proto(
    spec: StudySpec, pb: trial_pb2.Measurement, field: str = "measurement"
) -> Measurement:
    """The validated core measurement of a report (``AddTrialMeasurement``).

    The step is 0 to ``MAX_STEP``; every value names an objective or an outcome constraint of
    the study and is finite; the objective the policy watches has a value (without a policy:
    at least one objective does); ``elapsed_duration``, when set, is a valid duration of 0 or
    more. Constraint values are optional in a report; a study that ranks stopped trials ranks
    a trial stopped at a report only when the report carries every constraint's value and
    they hold (``service._trials``).

    Raises:
        InvalidArgument: Naming the offending field, reason ``INVALID_MEASUREMENT``.
    """
    if not 0 <= pb.step <= limits.MAX_STEP:
        raise InvalidArgument(
            f"{field}.step must be 0 to {limits.MAX_STEP}; got {pb.step}",
            field=f"{field}.step",
            reason=INVALID_MEASUREMENT,
        )
    values = _report_values(spec, pb.values, f"{field}.values")
    elapsed = None
    if pb.HasField("elapsed_duration"):
        d = pb.elapsed_duration
        if not (0 <= d.seconds <= _MAX_DURATION_SECONDS and 0 <= d.nanos <= 999_999_999):
            raise InvalidArgument(
                f"{field}.elapsed_duration must be a valid duration of 0 or more; got "
                f"{d.seconds} s and {d.nanos} ns",
                field=f"{field}.elapsed_duration",
                reason=INVALID_MEASUREMENT,
            )
        elapsed = d.seconds + d.nanos / 1e9
    return Measurement(step=pb.step, values=values, elapsed=elapsed)


def _report_values(spec: StudySpec, values: Mapping[str, float], field: str) -> dict[str, float]:
    known = ", ".join(repr(o.name) for o in spec.objectives)
    constraints = [c.name for c in spec.constraints]
    for name, value in values.items():
        objective = spec.objective(name) is not None
        if not objective and name not in constraints:
            raise InvalidArgument(
                f"{field}: {name!r} is {known_metrics(spec)}",
                field=f"{field}[{name}]",
                reason=INVALID_MEASUREMENT,
            )
        if not math.isfinite(value):
            what = "objective" if objective else "constraint"
            raise InvalidArgument(
                f"{field}: {what} {name!r} is {value}; only finite values are recorded (stop "
                "or fail the trial instead)",
                field=f"{field}[{name}]",
                reason=INVALID_MEASUREMENT,
            )
    policy = spec.early_stopping
    if policy is not None and policy.objective not in values:
        raise InvalidArgument(
            f"{field}: no value for objective {policy.objective!r}, the one the study's "
            "early-stopping policy watches; every report carries it",
            field=f"{field}[{policy.objective}]",
            reason=INVALID_MEASUREMENT,
        )
    if not any(spec.objective(name) is not None for name in values):
        raise InvalidArgument(
            f"{field}: no value; a report gives a value for at least one objective ({known})",
            field=field,
            reason=INVALID_MEASUREMENT,
        )
    # Objectives in the study's order, then constraints, whatever the order on the wire.
    names = [o.name for o in spec.objectives] + constraints
    return {name: float(values[name]) for name in names if name in values}


def check_stop_reason(reason: str) -> str:
    """``CompleteTrial.stop.reason``: at most ``MAX_FAILURE_REASON_LENGTH`` characters."""
    if len(reason) > limits.MAX_FAILURE_REASON_LENGTH:
        raise InvalidArgument(
            f"stop.reason is {len(reason)} characters long; the limit is "
            f"{limits.MAX_FAILURE_REASON_LENGTH}",
            field="stop.reason",
        )
    return reason


def measurement_to_proto(m: Measurement) -> trial_pb2.Measurement:
    """A kept intermediate measurement as sent to clients."""
    pb = trial_pb2.Measurement(values=m.values, step=m.step)
    if m.elapsed is not None:
        pb.elapsed_duration.FromNanoseconds(int(round(m.elapsed * 1e9)))
    return pb


def decision_to_proto(decision: Decision) -> trial_pb2.EarlyStoppingDecision:
    """A decision as sent to clients."""
    pb = trial_pb2.EarlyStoppingDecision(
        should_stop=decision.stop,
        rule=decision.rule.value if decision.rule is not None else "",
        step=decision.step,
        message=decision.message,
        compared_trials=decision.compared,
    )
    if decision.rung is not None:
        pb.rung = decision.rung
    return pb


# --- views --------------------------------------------------------------------------------------


def full_view(view: int, default_full: bool, field: str = "view") -> bool:
    """Whether a read's ``TrialView`` asks for the measurements; unspecified takes the call's
    default (FULL for ``GetTrial``, BASIC for ``ListTrials``).

    Raises:
        InvalidArgument: An unknown view.
    """
    if view == trial_pb2.TRIAL_VIEW_UNSPECIFIED:
        return default_full
    if view == trial_pb2.TRIAL_VIEW_FULL:
        return True
    if view == trial_pb2.TRIAL_VIEW_BASIC:
        return False
    raise InvalidArgument(
        f"{field}: {view} is not a trial view; use TRIAL_VIEW_BASIC or TRIAL_VIEW_FULL",
        field=field,
    )
