"""Studies: objectives, algorithms and the stored study record."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hyperdial_server.core import limits
from hyperdial_server.core.early_stopping import EarlyStopping
from hyperdial_server.core.errors import InvalidArgument
from hyperdial_server.core.space import FloatDomain, SearchSpace
from hyperdial_server.core.trial import StateCounts


class Algorithm(enum.Enum):
    """Sampling algorithms. Values are the names stored and sent over the wire."""

    GRID = "GRID"
    RANDOM = "RANDOM"
    QUASI_RANDOM = "QUASI_RANDOM"
    BAYESIAN = "BAYESIAN"


#: What a study that names no algorithm gets; resolved and stored at creation.
DEFAULT_ALGORITHM = Algorithm.BAYESIAN
#: Largest ``initial_trials`` of a study.
MAX_INITIAL_TRIALS = 10_000


@dataclass(frozen=True)
class Objective:
    """One objective: a name and whether higher is better."""

    name: str
    maximize: bool = False


@dataclass(frozen=True)
class Constraint:
    """An outcome constraint: a metric the final measurement reports, and its bounds.

    Attributes:
        name: The metric's name in the measurement's values.
        lower: The metric must be at least this (inclusive); ``None``: no lower limit.
        upper: The metric must be at most this (inclusive); ``None``: no upper limit.
    """

    name: str
    lower: float | None = None
    upper: float | None = None

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside the bounds: 0 when it satisfies them, positive
        otherwise (in the metric's units)."""
        if self.upper is not None and value > self.upper:
            return value - self.upper
        if self.lower is not None and value < self.lower:
            return self.lower - value
        return 0.0

    def describe(self, value: float) -> str:
        """Why ``value`` breaks the constraint, as a reason a user reads (``violation > 0``)."""
        if self.upper is not None and value > self.upper:
            return f"{self.name} = {value:.6g} > {self.upper:.6g} (upper bound)"
        return f"{self.name} = {value:.6g} < {self.lower:.6g} (lower bound)"


@dataclass(frozen=True)
class StudySpec:
    """What to tune and how; immutable once the study exists.

    Attributes:
        space: The search space.
        objectives: At least one, names unique.
        algorithm: The sampling algorithm, already resolved (never "unspecified").
        seed: Seed of every random choice.
        max_trials: Most trials handed out by asks over the study's life; ``None`` for no limit.
        grid_resolution: Values per float parameter on a grid; ``None`` when not given.
        initial_trials: For BAYESIAN: trials sampled quasi-randomly before the model is used;
            ``None`` for the sampler's default.
        lease_timeout: Seconds a RUNNING trial may go without a heartbeat or a result before
            its lease expires; ``None`` for the server default (a new study stores the default
            it got, see ``TuningServicer``).
        early_stopping: When running trials stop early; ``None``: never.
        constraints: Outcome constraints every final measurement reports values for.
        deterministic_objective: The objectives give the same values for the same parameters:
            the model fits no noise and never measures a point again.
    """

    space: SearchSpace
    objectives: tuple[Objective, ...]
    algorithm: Algorithm
    seed: int
    max_trials: int | None = None
    grid_resolution: int | None = None
    initial_trials: int | None = None
    lease_timeout: float | None = None
    early_stopping: EarlyStopping | None = None
    deterministic_objective: bool = False
    constraints: tuple[Constraint, ...] = ()

    def __post_init__(self) -> None:
        _check_objectives(self.objectives)
        _check_constraints(self.constraints, self.objectives)
        if self.lease_timeout is not None and not (
            limits.MIN_LEASE_TIMEOUT <= self.lease_timeout <= limits.MAX_LEASE_TIMEOUT
        ):
            raise InvalidArgument(
                f"lease_timeout must be between {limits.MIN_LEASE_TIMEOUT:g} s and "
                f"{limits.MAX_LEASE_TIMEOUT:g} s (or 0 for the server default); "
                f"got {self.lease_timeout:g} s",
                field="spec.lease_timeout",
            )
        if self.max_trials is not None and not 1 <= self.max_trials <= limits.MAX_MAX_TRIALS:
            raise InvalidArgument(
                f"max_trials must be between 1 and {limits.MAX_MAX_TRIALS} (or 0 for no limit); "
                f"got {self.max_trials}",
                field="spec.max_trials",
            )
        if self.grid_resolution is not None and not (
            2 <= self.grid_resolution <= limits.MAX_GRID_RESOLUTION
        ):
            raise InvalidArgument(
                f"grid_resolution must be between 2 and {limits.MAX_GRID_RESOLUTION} "
                f"(or 0 when not needed); got {self.grid_resolution}",
                field="spec.grid_resolution",
            )
        if self.initial_trials is not None and not (1 <= self.initial_trials <= MAX_INITIAL_TRIALS):
            raise InvalidArgument(
                f"initial_trials must be between 1 and {MAX_INITIAL_TRIALS} (or 0 for the "
                f"default); got {self.initial_trials}",
                field="spec.initial_trials",
            )
        if self.algorithm is Algorithm.GRID and self.grid_resolution is None:
            floats = [p.name for p in self.space.parameters if isinstance(p.domain, FloatDomain)]
            if floats:
                raise InvalidArgument(
                    f"a GRID study with float parameters ({', '.join(floats)}) needs "
                    "grid_resolution: how many values each float parameter takes",
                    field="spec.grid_resolution",
                    reason="INVALID_SEARCH_SPACE",
                )

    def infeasibility(self, values: Mapping[str, float] | None) -> str | None:
        """Why final ``values`` break the study's constraints, or ``None`` when they hold them
        all (always with no constraints). A constraint without a value breaks."""
        broken: list[str] = []
        for c in self.constraints:
            value = (values or {}).get(c.name)
            if value is None or not math.isfinite(value):
                broken.append(f"{c.name} has no value")
            elif c.violation(value) > 0:
                broken.append(c.describe(value))
        return "; ".join(broken) if broken else None

    def objective(self, name: str) -> Objective | None:
        """The objective called ``name``, if any."""
        for o in self.objectives:
            if o.name == name:
                return o
        return None


@dataclass(frozen=True)
class StudyRecord:
    """A study as stored.

    Attributes:
        study_id: The ``{study}`` of ``studies/{study}``.
        spec: The immutable spec.
        create_time: Seconds since the epoch.
        uid: Random id of this incarnation of the study; a study deleted and created again
            under the same id gets a new one, so caches of the old spec are detected as stale.
        trial_count: Trials the study holds (in every state) when it was read.
        revision: The study's change counter when it was read: 0 for a study without trials,
            one more at every change of one of its trials (the trial takes the new value as
            its :attr:`~hyperdial_server.core.trial.Trial.revision`). A study deleted and
            created again starts again at 0.
        update_time: When a trial of the study last changed (seconds since the epoch, the
            ``now`` of the store call that changed it); ``None`` while no trial has.
        state_counts: How many of its trials were in each state when it was read.
    """

    study_id: str
    spec: StudySpec
    create_time: float
    uid: str
    trial_count: int = 0
    revision: int = 0
    update_time: float | None = None
    state_counts: StateCounts = StateCounts()


def _check_constraints(constraints: Sequence[Constraint], objectives: Sequence[Objective]) -> None:
    if len(constraints) > limits.MAX_CONSTRAINTS:
        raise InvalidArgument(
            f"the study has {len(constraints)} constraints; the limit is {limits.MAX_CONSTRAINTS}",
            field="spec.constraints",
            reason="INVALID_CONSTRAINTS",
        )
    taken = {o.name for o in objectives}
    for i, c in enumerate(constraints):
        field = f"spec.constraints[{i}]"
        if not c.name or len(c.name) > limits.MAX_NAME_LENGTH or not c.name.isprintable():
            raise InvalidArgument(
                f"constraint name {c.name!r} must be 1 to {limits.MAX_NAME_LENGTH} printable "
                "characters",
                field=f"{field}.name",
                reason="INVALID_CONSTRAINTS",
            )
        if c.name in taken:
            raise InvalidArgument(
                f"constraint name {c.name!r} is already the name of an objective or of another "
                "constraint; a constraint names a metric of its own",
                field=f"{field}.name",
                reason="INVALID_CONSTRAINTS",
            )
        taken.add(c.name)
        if c.lower is None and c.upper is None:
            raise InvalidArgument(
                f"constraint {c.name!r} has no bound; set upper_bound, lower_bound or both",
                field=field,
                reason="INVALID_CONSTRAINTS",
            )
        for bound, value in (("lower_bound", c.lower), ("upper_bound", c.upper)):
            if value is not None and not math.isfinite(value):
                raise InvalidArgument(
                    f"constraint {c.name!r}: {bound} must be a finite number; got {value}",
                    field=f"{field}.{bound}",
                    reason="INVALID_CONSTRAINTS",
                )
        if c.lower is not None and c.upper is not None and c.lower > c.upper:
            raise InvalidArgument(
                f"constraint {c.name!r} cannot hold: lower_bound {c.lower:g} is above "
                f"upper_bound {c.upper:g}",
                field=field,
                reason="INVALID_CONSTRAINTS",
            )


def _check_objectives(objectives: Sequence[Objective]) -> None:
    if not objectives:
        raise InvalidArgument(
            "the study has no objectives; give at least one (a name and a goal)",
            field="spec.objectives",
            reason="INVALID_OBJECTIVES",
        )
    if len(objectives) > limits.MAX_OBJECTIVES:
        raise InvalidArgument(
            f"the study has {len(objectives)} objectives; the limit is {limits.MAX_OBJECTIVES}",
            field="spec.objectives",
            reason="INVALID_OBJECTIVES",
        )
    seen: set[str] = set()
    for i, o in enumerate(objectives):
        field = f"spec.objectives[{i}].name"
        if not o.name or len(o.name) > limits.MAX_NAME_LENGTH or not o.name.isprintable():
            raise InvalidArgument(
                f"objective name {o.name!r} must be 1 to {limits.MAX_NAME_LENGTH} printable "
                "characters",
                field=field,
                reason="INVALID_OBJECTIVES",
            )
        if o.name in seen:
            raise InvalidArgument(
                f"objective name {o.name!r} is used twice", field=field, reason="INVALID_OBJECTIVES"
            )
        seen.add(o.name)
