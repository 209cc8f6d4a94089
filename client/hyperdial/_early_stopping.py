"""Early stopping on the client: the policies a study is created with, the decisions reports
are answered, the measurements of a trial's curve, and :class:`TrialStopped`.

The policy classes are small frozen dataclasses, one per rule of the protocol
(``StudySpec.early_stopping``, see ``docs/protocol.md``, Early stopping); the service decides,
the client only describes. Their defaults are the service's, so a policy read back from a study
(:attr:`hyperdial.Study.early_stopping`) equals the one it was created with once the objective
and ``max_measurements_per_trial`` are given.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import SupportsFloat, SupportsIndex

from hyperdial.v1 import study_pb2, trial_pb2

__all__ = [
    "DEFAULT_MAX_MEASUREMENTS",
    "Decision",
    "EarlyStopping",
    "Hyperband",
    "Measurement",
    "MedianStopping",
    "PercentileStopping",
    "StoppingRule",
    "SuccessiveHalving",
    "ThresholdStopping",
    "TrialStopped",
    "decision_from_proto",
    "measurement_from_proto",
    "policy_from_proto",
    "policy_to_proto",
    "rule_name",
]

#: Measurements a trial keeps when the policy does not say (the service's default).
DEFAULT_MAX_MEASUREMENTS = 100


class TrialStopped(Exception):  # noqa: N818 - named like Optuna's TrialPruned, which users know
    """Raise it to end the running trial early, as STOPPED: not a failure.

    Inside ``with study.trial() as trial:`` the block ends there and the exception goes no
    further; inside an objective of ``optimize`` the run goes on with the next trial. When the
    study's policy stopped the trial already (a report answered ``should_stop``), nothing more
    is sent; otherwise the trial is stopped with the exception's message as its reason.

    Example:
        >>> for step in range(1, 11):  # doctest: +SKIP
        ...     if trial.report(train_one_epoch(), step).should_stop:
        ...         raise hd.TrialStopped()
    """


@dataclass(frozen=True)
class MedianStopping:
    """Stop a trial whose best value so far is worse than the median of the values the other
    trials reported at the same step (Optuna's ``MedianPruner``).

    Args:
        warmup_steps: Reports at steps below this never stop a trial.
        min_trials: Fewest other trials with a value at the step for the rule to decide.
        interval_steps: The rule decides only at steps ``warmup_steps + k * interval_steps``.
    """

    warmup_steps: int = 0
    min_trials: int = 1
    interval_steps: int = 1

    def _to_proto(self, policy: study_pb2.EarlyStoppingPolicy) -> None:
        policy.median.CopyFrom(
            study_pb2.MedianStoppingRule(
                warmup_steps=_count(self.warmup_steps, "warmup_steps"),
                min_trials=_count(self.min_trials, "min_trials"),
                interval_steps=_count(self.interval_steps, "interval_steps"),
            )
        )


@dataclass(frozen=True)
class PercentileStopping:
    """The median rule at another percentile (Optuna's ``PercentilePruner``).

    Args:
        percentile: Strictly between 0 and 100: a trial whose best value so far is worse than
            this percentile of the other trials' values at the step stops. 50 is the median
            rule; lower stops more.
        warmup_steps: Reports at steps below this never stop a trial.
        min_trials: Fewest other trials with a value at the step for the rule to decide.
        interval_steps: The rule decides only at steps ``warmup_steps + k * interval_steps``.
    """

    percentile: float
    warmup_steps: int = 0
    min_trials: int = 1
    interval_steps: int = 1

    def _to_proto(self, policy: study_pb2.EarlyStoppingPolicy) -> None:
        policy.percentile.CopyFrom(
            study_pb2.PercentileStoppingRule(
                percentile=_real(self.percentile, "percentile"),
                warmup_steps=_count(self.warmup_steps, "warmup_steps"),
                min_trials=_count(self.min_trials, "min_trials"),
                interval_steps=_count(self.interval_steps, "interval_steps"),
            )
        )


@dataclass(frozen=True)
class SuccessiveHalving:
    """Asynchronous successive halving, ASHA (Optuna's ``SuccessiveHalvingPruner``): at each
    rung, only the best ``1 / reduction_factor`` of the trials that reached it continue.

    Rung k sits at step ``min_resource * reduction_factor ** (min_early_stopping_rate + k)``.

    Args:
        min_resource: Steps of the first rung (with ``min_early_stopping_rate`` 0).
        reduction_factor: η, 2 to 100.
        min_early_stopping_rate: s, 0 to 30: the first rung is at ``min_resource * η ** s``.
        max_resource: Steps of a full training: no rung at or past it. ``None``: no bound.
    """

    min_resource: int = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    max_resource: int | None = None

    def _to_proto(self, policy: study_pb2.EarlyStoppingPolicy) -> None:
        max_resource = self.max_resource
        policy.successive_halving.CopyFrom(
            study_pb2.SuccessiveHalvingRule(
                min_resource=_count(self.min_resource, "min_resource"),
                reduction_factor=_count(self.reduction_factor, "reduction_factor"),
                min_early_stopping_rate=_count(
                    self.min_early_stopping_rate, "min_early_stopping_rate"
                ),
                max_resource=0 if max_resource is None else _count(max_resource, "max_resource"),
            )
        )


@dataclass(frozen=True)
class Hyperband:
    """Hyperband (Optuna's ``HyperbandPruner``): several successive-halving brackets, each
    trial in one of them (``Trial.bracket``, from its number).

    Args:
        max_resource: Steps of a full training; at least ``min_resource * reduction_factor``.
        min_resource: Steps of the first rung of bracket 0.
        reduction_factor: η, 2 to 100.
    """

    max_resource: int
    min_resource: int = 1
    reduction_factor: int = 3

    def _to_proto(self, policy: study_pb2.EarlyStoppingPolicy) -> None:
        policy.hyperband.CopyFrom(
            study_pb2.HyperbandRule(
                max_resource=_count(self.max_resource, "max_resource"),
                min_resource=_count(self.min_resource, "min_resource"),
                reduction_factor=_count(self.reduction_factor, "reduction_factor"),
            )
        )


@dataclass(frozen=True)
class ThresholdStopping:
    """Rules on a trial's own curve: a fixed threshold, and/or patience (Optuna's
    ``ThresholdPruner`` and ``PatientPruner``). Give at least one of ``threshold`` and
    ``patience_steps``.

    Args:
        threshold: Stop a trial whose value is worse than this (above it to minimise, below it
            to maximise). ``None``: no threshold.
        warmup_steps: Reports at steps below this never stop a trial.
        patience_steps: Stop a trial whose best value has not improved by more than
            ``min_delta`` over its last ``patience_steps`` steps. 0: no patience rule.
        min_delta: Smallest improvement that counts for the patience rule.
    """

    threshold: float | None = None
    warmup_steps: int = 0
    patience_steps: int = 0
    min_delta: float = 0.0

    def _to_proto(self, policy: study_pb2.EarlyStoppingPolicy) -> None:
        rule = study_pb2.ThresholdStoppingRule(
            warmup_steps=_count(self.warmup_steps, "warmup_steps"),
            patience_steps=_count(self.patience_steps, "patience_steps"),
            min_delta=_real(self.min_delta, "min_delta"),
        )
        if self.threshold is not None:
            rule.threshold = _real(self.threshold, "threshold")
        policy.threshold.CopyFrom(rule)


#: One early-stopping rule.
StoppingRule = (
    MedianStopping | PercentileStopping | SuccessiveHalving | Hyperband | ThresholdStopping
)
_RULES = (MedianStopping, PercentileStopping, SuccessiveHalving, Hyperband, ThresholdStopping)
# The protocol's name of each rule (the field of ``EarlyStoppingPolicy.rule``).
_RULE_NAMES: dict[type, str] = {
    MedianStopping: "median",
    PercentileStopping: "percentile",
    SuccessiveHalving: "successive_halving",
    Hyperband: "hyperband",
    ThresholdStopping: "threshold",
}


def rule_name(rule: StoppingRule | None) -> str | None:
    """The protocol's name of a rule (``"median"``, ``"successive_halving"``...); ``None``
    for a rule this client does not know."""
    return None if rule is None else _RULE_NAMES[type(rule)]


@dataclass(frozen=True)
class EarlyStopping:
    """A study's early-stopping policy: a rule and the options that hold for any rule.

    ``create_study(early_stopping=...)`` takes this or a bare rule (the options then have
    their defaults).

    Args:
        rule: The rule deciding at each report. ``None`` only in a policy read from a service
            whose rule this client does not know.
        objective: Name of the objective the rule watches; ``None``: the study's first. Every
            report must carry a value for it.
        max_measurements_per_trial: Most intermediate measurements kept per trial, 1 to 10000;
            older ones are thinned past it. ``None``: the service's default, 100.
        rank_stopped_trials: Whether stopped trials compete for ``best_trial(s)``, by their
            last report. By default only completed trials do.
    """

    rule: StoppingRule | None
    objective: str | None = field(default=None, kw_only=True)
    max_measurements_per_trial: int | None = field(default=None, kw_only=True)
    rank_stopped_trials: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class Decision:
    """What the study's early-stopping policy decided at a report.

    Attributes:
        should_stop: Stop training. The trial is STOPPED on the service already: it takes no
            more reports and no result.
        rule: The rule that stopped the trial (``"median"``, ``"percentile"``,
            ``"successive_halving"``, ``"hyperband"``, ``"threshold"``, ``"patience"``, or
            ``"worker"`` for a trial its worker stopped); ``""`` while it continues.
        step: Step of the report the decision was taken at.
        rung: For successive halving and Hyperband, the rung the report reached; else ``None``.
        message: What the rule compared, for people.
        compared_trials: How many values the rule compared (0 for rules on the trial's own
            curve, and while nothing was compared).
    """

    should_stop: bool
    rule: str = ""
    step: int = 0
    rung: int | None = None
    message: str = ""
    compared_trials: int = 0


@dataclass(frozen=True)
class Measurement:
    """One intermediate measurement of a trial: a point of its learning curve.

    Attributes:
        step: Epochs, batches, or any resource unit the study counts in.
        values: Objective values by name; the watched objective's at least.
        elapsed: Training time until this measurement in seconds, as the worker measured it;
            ``None`` when it was not reported.
    """

    step: int
    values: dict[str, float]
    elapsed: float | None = None

    @property
    def value(self) -> float | None:
        """The value when the measurement has exactly one, else ``None``."""
        if len(self.values) != 1:
            return None
        return next(iter(self.values.values()))


# -- conversions ---------------------------------------------------------------------------


def policy_to_proto(policy: EarlyStopping | StoppingRule) -> study_pb2.EarlyStoppingPolicy:
    """The ``StudySpec.early_stopping`` message of a policy or a bare rule.

    Raises:
        TypeError: ``policy`` is neither, or a field has the wrong type.
        ValueError: A policy without a rule.
    """
    if isinstance(policy, _RULES):
        policy = EarlyStopping(policy)
    if not isinstance(policy, EarlyStopping):
        names = ", ".join(r.__name__ for r in _RULES)
        raise TypeError(f"early_stopping must be EarlyStopping or one of {names}; got {policy!r}")
    if policy.rule is None:
        raise ValueError("an early-stopping policy needs a rule")
    pb = study_pb2.EarlyStoppingPolicy(rank_stopped_trials=bool(policy.rank_stopped_trials))
    policy.rule._to_proto(pb)
    if policy.objective is not None:
        pb.objective = policy.objective
    if policy.max_measurements_per_trial is not None:
        pb.max_measurements_per_trial = _count(
            policy.max_measurements_per_trial, "max_measurements_per_trial"
        )
    return pb


def policy_from_proto(spec: study_pb2.StudySpec) -> EarlyStopping | None:
    """The policy of a stored spec, with the defaults the service resolved; ``None`` without
    one."""
    if not spec.HasField("early_stopping"):
        return None
    pb = spec.early_stopping
    kind = pb.WhichOneof("rule")
    rule: StoppingRule | None = None
    if kind == "median":
        m = pb.median
        rule = MedianStopping(m.warmup_steps, m.min_trials or 1, m.interval_steps or 1)
    elif kind == "percentile":
        p = pb.percentile
        rule = PercentileStopping(
            p.percentile, p.warmup_steps, p.min_trials or 1, p.interval_steps or 1
        )
    elif kind == "successive_halving":
        s = pb.successive_halving
        rule = SuccessiveHalving(
            s.min_resource or 1,
            s.reduction_factor or 3,
            s.min_early_stopping_rate,
            s.max_resource or None,
        )
    elif kind == "hyperband":
        h = pb.hyperband
        rule = Hyperband(h.max_resource, h.min_resource or 1, h.reduction_factor or 3)
    elif kind == "threshold":
        t = pb.threshold
        threshold = t.threshold if t.HasField("threshold") else None
        rule = ThresholdStopping(threshold, t.warmup_steps, t.patience_steps, t.min_delta)
    # Else a rule newer than this client: the options still say what they say.
    return EarlyStopping(
        rule,
        objective=pb.objective or (spec.objectives[0].name if spec.objectives else None),
        max_measurements_per_trial=pb.max_measurements_per_trial or DEFAULT_MAX_MEASUREMENTS,
        rank_stopped_trials=pb.rank_stopped_trials,
    )


def decision_from_proto(pb: trial_pb2.EarlyStoppingDecision) -> Decision:
    """A decision as the service sent it."""
    return Decision(
        should_stop=pb.should_stop,
        rule=pb.rule,
        step=pb.step,
        rung=pb.rung if pb.HasField("rung") else None,
        message=pb.message,
        compared_trials=pb.compared_trials,
    )


def measurement_from_proto(pb: trial_pb2.Measurement) -> Measurement:
    """An intermediate measurement as the service sent it."""
    elapsed = None
    if pb.HasField("elapsed_duration"):
        elapsed = pb.elapsed_duration.ToTimedelta().total_seconds()
    return Measurement(step=pb.step, values=dict(pb.values), elapsed=elapsed)


def step_value(step: object) -> int:
    """A report's step as an ``int`` (numpy integers too; not ``bool`` or ``float``)."""
    return _count(step, "step")


def elapsed_to_proto(elapsed: float | timedelta, measurement: trial_pb2.Measurement) -> None:
    """Sets ``elapsed_duration`` from seconds or a ``timedelta``."""
    if isinstance(elapsed, timedelta):
        seconds = elapsed.total_seconds()
    else:
        seconds = _real(elapsed, "elapsed")
    if not math.isfinite(seconds):
        raise ValueError(f"elapsed must be a finite number of seconds; got {elapsed!r}")
    measurement.elapsed_duration.FromTimedelta(timedelta(seconds=seconds))


def _count(value: object, name: str) -> int:
    # operator.index admits numpy integers; bool would pass silently, so refuse it.
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        raise TypeError(f"{name} must be an int; got {value!r}")
    return operator.index(value)


def _real(value: object, name: str) -> float:
    # SupportsFloat admits numpy scalars; bool and str would convert silently, so refuse them.
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, SupportsFloat):
        raise TypeError(f"{name} must be a number; got {value!r}")
    return float(value)
