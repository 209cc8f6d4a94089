"""Conversion between protobuf messages and core types: the only module that knows both."""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Mapping

from google.protobuf.timestamp_pb2 import Timestamp

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2
from hyperdial_server.core import limits, names
from hyperdial_server.core.early_stopping import Hyperband, hyperband_bracket
from hyperdial_server.core.errors import InvalidArgument
from hyperdial_server.core.feasibility import feasible, trial_infeasibility
from hyperdial_server.core.importance import Importances
from hyperdial_server.core.pareto import OptimalityBasis
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
    domain_kind,
)
from hyperdial_server.core.study import (
    DEFAULT_ALGORITHM,
    Algorithm,
    Constraint,
    Objective,
    StudyRecord,
    StudySpec,
)
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers._bayes import default_initial_trials
from hyperdial_server.samplers._recommend import Recommended
from hyperdial_server.service import _validate
from hyperdial_server.service._early_stopping import (
    INVALID_MEASUREMENT,
    decision_to_proto,
    measurement_to_proto,
    policy_from_proto,
    policy_to_proto,
)

_ALGORITHMS: dict[study_pb2.Algorithm.ValueType, Algorithm] = {
    study_pb2.ALGORITHM_GRID: Algorithm.GRID,
    study_pb2.ALGORITHM_RANDOM: Algorithm.RANDOM,
    study_pb2.ALGORITHM_QUASI_RANDOM: Algorithm.QUASI_RANDOM,
    study_pb2.ALGORITHM_BAYESIAN: Algorithm.BAYESIAN,
}
_ALGORITHMS_PB = {v: k for k, v in _ALGORITHMS.items()}
_STATES: dict[trial_pb2.TrialState.ValueType, TrialState] = {
    trial_pb2.TRIAL_STATE_WAITING: TrialState.WAITING,
    trial_pb2.TRIAL_STATE_RUNNING: TrialState.RUNNING,
    trial_pb2.TRIAL_STATE_COMPLETED: TrialState.COMPLETED,
    trial_pb2.TRIAL_STATE_FAILED: TrialState.FAILED,
    trial_pb2.TRIAL_STATE_STOPPED: TrialState.STOPPED,
    trial_pb2.TRIAL_STATE_INFEASIBLE: TrialState.INFEASIBLE,
}
_STATES_PB = {v: k for k, v in _STATES.items()}

#: ``ErrorInfo.reason`` of a final measurement without a value for an outcome constraint.
MISSING_CONSTRAINT_VALUE = "MISSING_CONSTRAINT_VALUE"


def spec_from_proto(pb: study_pb2.StudySpec) -> StudySpec:
    """Builds a validated core spec; resolves the default algorithm and draws a seed if absent,
    and resolves the defaults of the early-stopping policy.

    Raises:
        InvalidArgument: Naming the offending field.
    """
    params = [
        _parameter_from_proto(p, f"spec.parameters[{i}]") for i, p in enumerate(pb.parameters)
    ]
    try:
        space = SearchSpace(params)
    except InvalidArgument as e:
        raise InvalidArgument(
            e.message, field=f"spec.{e.field}" if e.field else "spec", reason=e.reason
        ) from None
    objectives = []
    for i, o in enumerate(pb.objectives):
        if o.goal not in (study_pb2.GOAL_MINIMIZE, study_pb2.GOAL_MAXIMIZE):
            raise InvalidArgument(
                f"objective {o.name!r} has no goal; set GOAL_MINIMIZE or GOAL_MAXIMIZE",
                field=f"spec.objectives[{i}].goal",
                reason="INVALID_OBJECTIVES",
            )
        objectives.append(Objective(o.name, maximize=o.goal == study_pb2.GOAL_MAXIMIZE))
    if pb.algorithm == study_pb2.ALGORITHM_UNSPECIFIED:
        algorithm = DEFAULT_ALGORITHM
    elif pb.algorithm in _ALGORITHMS:
        algorithm = _ALGORITHMS[pb.algorithm]
    else:
        raise InvalidArgument(
            f"unknown algorithm {pb.algorithm}; use ALGORITHM_GRID, ALGORITHM_RANDOM, "
            "ALGORITHM_QUASI_RANDOM or ALGORITHM_BAYESIAN",
            field="spec.algorithm",
        )
    if pb.max_trials < 0:
        raise InvalidArgument(
            f"max_trials must be positive (or 0 for no limit); got {pb.max_trials}",
            field="spec.max_trials",
        )
    if pb.grid_resolution < 0:
        raise InvalidArgument(
            f"grid_resolution must be positive (or 0 when not needed); got {pb.grid_resolution}",
            field="spec.grid_resolution",
        )
    if pb.initial_trials < 0:
        raise InvalidArgument(
            f"initial_trials must be positive (or 0 for the default); got {pb.initial_trials}",
            field="spec.initial_trials",
        )
    seed = pb.seed if pb.HasField("seed") else secrets.randbits(63)
    lease_timeout = _lease_timeout_from_proto(pb)
    spec = StudySpec(
        space=space,
        objectives=tuple(objectives),
        algorithm=algorithm,
        seed=seed,
        max_trials=pb.max_trials or None,
        grid_resolution=pb.grid_resolution or None,
        initial_trials=pb.initial_trials or None,
        lease_timeout=lease_timeout,
        deterministic_objective=pb.deterministic_objective,
        constraints=tuple(
            Constraint(
                c.name,
                lower=c.lower_bound if c.HasField("lower_bound") else None,
                upper=c.upper_bound if c.HasField("upper_bound") else None,
            )
            for c in pb.constraints
        ),
    )
    if pb.HasField("early_stopping"):
        # Checked once the objectives are: the policy names one of them.
        policy = policy_from_proto(pb.early_stopping, spec.objectives, spec.constraints)
        spec = dataclasses.replace(spec, early_stopping=policy)
    return spec


def _lease_timeout_from_proto(pb: study_pb2.StudySpec) -> float | None:
    """``spec.lease_timeout`` in seconds; ``None`` when absent or zero (the server default)."""
    if not pb.HasField("lease_timeout"):
        return None
    d = pb.lease_timeout
    if d.seconds < 0 or not 0 <= d.nanos <= 999_999_999:
        raise InvalidArgument(
            f"lease_timeout must be a positive duration (or 0 for the server default); got "
            f"{d.seconds} s and {d.nanos} ns",
            field="spec.lease_timeout",
        )
    seconds = d.seconds + d.nanos / 1e9
    return seconds or None


def _parameter_from_proto(pb: study_pb2.ParameterSpec, field: str) -> ParameterConfig:
    kind = pb.WhichOneof("domain")
    domain: Domain
    if kind == "float_domain":
        d = pb.float_domain
        domain = FloatDomain(d.min, d.max, log=_is_log(d.scale, f"{field}.float_domain.scale"))
    elif kind == "int_domain":
        di = pb.int_domain
        domain = IntDomain(di.min, di.max, log=_is_log(di.scale, f"{field}.int_domain.scale"))
    elif kind == "categorical_domain":
        domain = CategoricalDomain(tuple(pb.categorical_domain.values))
    elif kind == "discrete_domain":
        domain = DiscreteDomain(tuple(pb.discrete_domain.values))
    else:
        raise InvalidArgument(
            f"parameter {pb.name!r} has no domain; set one of float_domain, int_domain, "
            "categorical_domain, discrete_domain",
            field=f"{field}.domain",
            reason="INVALID_SEARCH_SPACE",
        )
    condition = None
    if pb.HasField("condition"):
        if len(pb.condition.values) > limits.MAX_DOMAIN_VALUES:
            raise InvalidArgument(
                f"{field}.condition lists {len(pb.condition.values)} values; the limit is "
                f"{limits.MAX_DOMAIN_VALUES}",
                field=f"{field}.condition.values",
                reason="INVALID_SEARCH_SPACE",
            )
        values = tuple(
            value_from_proto(v, f"{field}.condition.values[{j}]")
            for j, v in enumerate(pb.condition.values)
        )
        condition = Condition(pb.condition.parent, values)
    return ParameterConfig(pb.name, domain, condition)


def _is_log(scale: int, field: str) -> bool:
    if scale in (study_pb2.SCALE_UNSPECIFIED, study_pb2.SCALE_LINEAR):
        return False
    if scale == study_pb2.SCALE_LOG:
        return True
    raise InvalidArgument(f"unknown scale {scale}", field=field, reason="INVALID_SEARCH_SPACE")


def _effective_initial_trials(spec: StudySpec) -> int:
    """``initial_trials`` as the study's sampler uses it: for a Bayesian study that left it
    at 0, the default for its search space; else as given (0: unset)."""
    if spec.initial_trials is None and spec.algorithm is Algorithm.BAYESIAN:
        return default_initial_trials(spec.space)
    return spec.initial_trials or 0


def spec_to_proto(spec: StudySpec) -> study_pb2.StudySpec:
    """The stored spec as sent to clients (algorithm and seed resolved)."""
    pb = study_pb2.StudySpec(
        algorithm=_ALGORITHMS_PB[spec.algorithm],
        seed=spec.seed,
        max_trials=spec.max_trials or 0,
        grid_resolution=spec.grid_resolution or 0,
        initial_trials=_effective_initial_trials(spec),
    )
    if spec.lease_timeout is not None:
        pb.lease_timeout.FromNanoseconds(int(round(spec.lease_timeout * 1e9)))
    for p in spec.space.parameters:
        ppb = pb.parameters.add(name=p.name)
        d = p.domain
        scale = study_pb2.SCALE_LINEAR
        if isinstance(d, FloatDomain):
            if d.log:
                scale = study_pb2.SCALE_LOG
            ppb.float_domain.CopyFrom(study_pb2.FloatDomain(min=d.low, max=d.high, scale=scale))
        elif isinstance(d, IntDomain):
            if d.log:
                scale = study_pb2.SCALE_LOG
            ppb.int_domain.CopyFrom(study_pb2.IntDomain(min=d.low, max=d.high, scale=scale))
        elif isinstance(d, CategoricalDomain):
            ppb.categorical_domain.values.extend(d.values)
        else:
            ppb.discrete_domain.values.extend(d.values)
        if p.condition is not None:
            ppb.condition.parent = p.condition.parent
            for v in p.condition.values:
                ppb.condition.values.append(value_to_proto(v))
    for o in spec.objectives:
        pb.objectives.add(
            name=o.name, goal=study_pb2.GOAL_MAXIMIZE if o.maximize else study_pb2.GOAL_MINIMIZE
        )
    if spec.early_stopping is not None:
        pb.early_stopping.CopyFrom(policy_to_proto(spec.early_stopping))
    if spec.deterministic_objective:
        pb.deterministic_objective = True
    for c in spec.constraints:
        cpb = pb.constraints.add(name=c.name)
        if c.lower is not None:
            cpb.lower_bound = c.lower
        if c.upper is not None:
            cpb.upper_bound = c.upper
    return pb


def study_to_proto(record: StudyRecord) -> study_pb2.Study:
    """A stored study as sent to clients."""
    counts = record.state_counts
    return study_pb2.Study(
        name=names.study_name(record.study_id),
        spec=spec_to_proto(record.spec),
        create_time=timestamp(record.create_time),
        trial_count=record.trial_count,
        revision=record.revision,
        # The protocol's update_time is the creation time while no trial has changed.
        update_time=timestamp(
            record.create_time if record.update_time is None else record.update_time
        ),
        state_counts=study_pb2.TrialStateCounts(
            waiting=counts.waiting,
            running=counts.running,
            completed=counts.completed,
            failed=counts.failed,
            stopped=counts.stopped,
            infeasible=counts.infeasible,
        ),
    )


def value_from_proto(pb: study_pb2.ParameterValue, field: str) -> ParamValue:
    """The typed value of a ``ParameterValue``.

    Raises:
        InvalidArgument: No value is set.
    """
    kind = pb.WhichOneof("kind")
    if kind == "double_value":
        return pb.double_value
    if kind == "int_value":
        return pb.int_value
    if kind == "string_value":
        return pb.string_value
    raise InvalidArgument(
        f"{field} holds no value; set double_value, int_value or string_value",
        field=field,
        reason="INVALID_PARAMETERS",
    )


def value_to_proto(value: ParamValue) -> study_pb2.ParameterValue:
    """A typed value as a ``ParameterValue``."""
    if isinstance(value, str):
        return study_pb2.ParameterValue(string_value=value)
    if isinstance(value, int):
        return study_pb2.ParameterValue(int_value=value)
    return study_pb2.ParameterValue(double_value=value)


def params_from_proto(
    params: Mapping[str, study_pb2.ParameterValue], field: str = "parameters"
) -> dict[str, ParamValue]:
    """Typed values of a parameter map (not yet checked against a search space)."""
    return {name: value_from_proto(v, f"{field}[{name}]") for name, v in params.items()}


#: The one ``ParameterValue`` field that carries a value of each kind of domain.
_VALUE_FIELDS: dict[type[Domain], str] = {
    FloatDomain: "double_value",
    DiscreteDomain: "double_value",
    IntDomain: "int_value",
    CategoricalDomain: "string_value",
}


def typed_params_from_proto(
    space: SearchSpace, params: Mapping[str, study_pb2.ParameterValue], field: str = "parameters"
) -> dict[str, ParamValue]:
    """Like :func:`params_from_proto`, and each value of a known parameter must come in the
    field of its domain (the protocol's typing): an ``int_value`` for a float parameter is
    refused, not converted, so what a trial stores is what every client reads back.

    Raises:
        InvalidArgument: A value is in another field than its parameter's.
    """
    for name, value in params.items():
        if name not in space:
            continue  # named as unknown by the space's own check
        expected = _VALUE_FIELDS[type(space[name].domain)]
        kind = value.WhichOneof("kind")
        if kind is not None and kind != expected:
            raise InvalidArgument(
                f"{field}[{name}]: parameter {name!r} is "
                f"{domain_kind(space[name].domain)}; send its value as {expected}, not {kind}",
                field=f"{field}[{name}]",
                reason="INVALID_PARAMETERS",
            )
    return params_from_proto(params, field)


def trial_to_proto(
    study_id: str, trial: Trial, spec: StudySpec, *, full: bool = False
) -> trial_pb2.Trial:
    """A stored trial as sent to clients.

    Args:
        study_id: The trial's study.
        trial: The trial.
        spec: The study's spec: its early-stopping policy gives the trial's ``bracket``, its
            outcome constraints whether the trial is ``infeasible``.
        full: ``TRIAL_VIEW_FULL``: with the intermediate measurements the trial was read with
            (``TRIAL_VIEW_BASIC`` leaves them out).
    """
    policy = spec.early_stopping
    # Scalars in one constructor call; map entries set in place, which costs about half of
    # building a ParameterValue message per entry and copying them in.
    pb = trial_pb2.Trial(
        name=names.trial_name(study_id, trial.number),
        number=trial.number,
        state=_STATES_PB[trial.state],
        client_id=trial.client_id,
        create_time=timestamp(trial.create_time),
        # An INFEASIBLE trial's reason is stored as a failure's is, and sent as
        # infeasibility_reason (below): failure_reason is a FAILED trial's.
        failure_reason="" if trial.state is TrialState.INFEASIBLE else trial.failure_reason,
        complete_time=None if trial.complete_time is None else timestamp(trial.complete_time),
        lease_expire_time=(
            None if trial.lease_expire_time is None else timestamp(trial.lease_expire_time)
        ),
        revision=trial.revision,
    )
    parameters = pb.parameters
    for name, value in trial.params.items():
        if isinstance(value, str):
            parameters[name].string_value = value
        elif isinstance(value, int):
            parameters[name].int_value = value
        else:
            parameters[name].double_value = value
    if trial.values is not None:
        measurement = pb.final_measurement
        measurement.SetInParent()  # present even with no values
        measurement.values.update(trial.values)
        if trial.state is TrialState.STOPPED and trial.stop is not None:
            # A stopped trial's result is its last report: at the step it stopped at.
            measurement.step = trial.stop.step
    if trial.metadata:
        pb.metadata.update(trial.metadata)
    pb.measurement_count = trial.measurement_count
    if full and trial.measurements:
        pb.measurements.extend(measurement_to_proto(m) for m in trial.measurements)
    if trial.stop is not None:
        pb.stop_decision.CopyFrom(decision_to_proto(trial.stop))
    if policy is not None and isinstance(policy.rule, Hyperband):
        pb.bracket = hyperband_bracket(policy.rule, trial.number)
    # Judged when read, not stored: a study's constraints never change, so neither does this.
    if trial.state is TrialState.INFEASIBLE or spec.constraints:
        why = trial_infeasibility(spec, trial)
        if why is not None:
            pb.infeasible = True
            pb.infeasibility_reason = why
    # The two trials of a re-issued point name each other (see docs/protocol.md, Leases).
    if trial.original_number is not None:
        pb.original_trial = names.trial_name(study_id, trial.original_number)
    if trial.reissued_number is not None:
        pb.reissued_trial = names.trial_name(study_id, trial.reissued_number)
    return pb


def state_from_proto(state: int, field: str) -> TrialState:
    """The core state of a ``TrialState`` enum value.

    Raises:
        InvalidArgument: Unspecified or unknown.
    """
    if state in _STATES:
        return _STATES[trial_pb2.TrialState.ValueType(state)]
    raise InvalidArgument(
        f"{field}: {state} is not a trial state; use TRIAL_STATE_WAITING, _RUNNING, "
        "_COMPLETED, _FAILED, _STOPPED or _INFEASIBLE",
        field=field,
    )


_BASES: dict[int, OptimalityBasis] = {
    tuning_service_pb2.OPTIMALITY_BASIS_UNSPECIFIED: OptimalityBasis.OBSERVED,
    tuning_service_pb2.OPTIMALITY_BASIS_OBSERVED: OptimalityBasis.OBSERVED,
    tuning_service_pb2.OPTIMALITY_BASIS_MODEL: OptimalityBasis.MODEL,
}


def basis_from_proto(basis: int, field: str = "basis") -> OptimalityBasis:
    """The core basis of an ``OptimalityBasis`` enum value; unspecified is observed.

    Raises:
        InvalidArgument: An unknown value.
    """
    if basis in _BASES:
        return _BASES[basis]
    raise InvalidArgument(
        f"{field}: {basis} is not an optimality basis; use OPTIMALITY_BASIS_OBSERVED or "
        "OPTIMALITY_BASIS_MODEL",
        field=field,
    )


def prediction_to_proto(recommended: Recommended) -> tuning_service_pb2.TrialPrediction:
    """The model's prediction for a recommended trial, by objective name."""
    return tuning_service_pb2.TrialPrediction(
        mean=recommended.mean,
        stddev=recommended.stddev,
        measurements=recommended.measurements,
        noise_stddev=recommended.noise_stddev,
    )


def timestamp(seconds: float) -> Timestamp:
    """Seconds since the epoch as a ``Timestamp``."""
    whole, nanos = divmod(int(round(seconds * 1e9)), 1_000_000_000)
    return Timestamp(seconds=whole, nanos=nanos)


def check_values(
    spec: StudySpec, values: Mapping[str, float], field: str = "final_measurement.values"
) -> dict[str, float]:
    """Checks final values: one finite number for each objective and for each outcome
    constraint of the study, and no other name (a misspelt name is refused, not ignored).

    Returns:
        The values: the objectives' in the study's order, then the constraints'.

    Raises:
        InvalidArgument: A name that is neither an objective nor a constraint, a value
            missing for an objective, NaN or infinite (``INVALID_MEASUREMENT``); a value
            missing for a constraint (``MISSING_CONSTRAINT_VALUE``, metadata ``constraint``).
    """
    constraints = [c.name for c in spec.constraints]
    for name in values:
        if spec.objective(name) is None and name not in constraints:
            raise InvalidArgument(
                f"{field}: {name!r} is {_validate.known_metrics(spec)}",
                field=f"{field}[{name}]",
                reason=INVALID_MEASUREMENT,
            )
    out = {}
    for o in spec.objectives:
        if o.name not in values:
            raise InvalidArgument(
                f"{field}: no value for objective {o.name!r}; give one value per objective",
                field=f"{field}[{o.name}]",
                reason=INVALID_MEASUREMENT,
            )
        out[o.name] = _finite(values[o.name], f"objective {o.name!r}", field, o.name)
    for name in constraints:
        if name not in values:
            error = InvalidArgument(
                f"{field}: no value for constraint {name!r}; a final measurement gives a "
                "value for every outcome constraint of the study beside its objectives (a "
                "trial whose metric could not be measured is reported with infeasibility)",
                field=f"{field}[{name}]",
                reason=MISSING_CONSTRAINT_VALUE,
            )
            error.metadata["constraint"] = name
            raise error
        out[name] = _finite(values[name], f"constraint {name!r}", field, name)
    return out


def _finite(value: float, what: str, field: str, name: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InvalidArgument(
            f"{field}: {what} is {v}; only finite values are recorded (report a trial that "
            "gave no usable result with failure, or with infeasibility when its parameters "
            "cannot give one)",
            field=f"{field}[{name}]",
            reason=INVALID_MEASUREMENT,
        )
    return v


def score(spec: StudySpec, values: Mapping[str, float]) -> float | None:
    """Rank of a trial with these values among the ones ``best_trial`` compares (lower is
    better) for a single-objective study; ``None`` with several objectives, and for values
    that break an outcome constraint (an infeasible trial is never the best)."""
    if len(spec.objectives) != 1 or not feasible(spec, values):
        return None
    o = spec.objectives[0]
    v = values[o.name]
    return -v if o.maximize else v


def importances_to_proto(
    importances: Importances,
) -> tuning_service_pb2.ComputeParameterImportanceResponse:
    """The answer of ``ComputeParameterImportance``."""
    return tuning_service_pb2.ComputeParameterImportanceResponse(
        importances=[
            tuning_service_pb2.ParameterImportance(
                parameter=p.parameter, importance=p.importance, active_trials=p.active_trials
            )
            for p in importances.parameters
        ],
        trial_count=importances.trial_count,
        method=importances.method,
    )
