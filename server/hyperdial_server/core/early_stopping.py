"""Early stopping: the policies a study may declare, and what each decides at a report.

A RUNNING trial reports intermediate measurements: a step (epochs, batches, any resource unit
the study counts in) and values. At each report the study's policy decides whether the trial
should stop. The decision reads only what the store keeps for it, never a scan of every
trial's curve:

* **Percentile rules** (median, percentile): the values every trial reported at each step
  where the rule decides (one sorted set per such step), and the trial's best value so far.
* **Successive halving, Hyperband**: the values recorded at each rung (one sorted set per rung,
  per bracket), and which rungs the trial has passed.
* **Threshold, patience**: the trial's own best value and the step it was reached at.

So that every replica takes the same decision for the same history, the store makes a report,
its bookkeeping and its decision one atomic step: the Redis store in one script (mirroring this
module), the memory store by calling the functions below. Values are compared *oriented*:
lower is better (a maximised objective's values are negated first, :func:`oriented`).

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Intermediate measurements kept per trial when the policy does not say.
DEFAULT_MAX_MEASUREMENTS = 100
#: Most intermediate measurements a policy may keep per trial.
MAX_MEASUREMENTS_LIMIT = 10_000
#: η when the policy does not say (Optuna's and Hyperband's default).
DEFAULT_REDUCTION_FACTOR = 3
#: Largest η.
MAX_REDUCTION_FACTOR = 100
#: Largest ``min_early_stopping_rate``: η^s stays far below 2^63 steps for η = 2.
MAX_EARLY_STOPPING_RATE = 30
#: Most rungs of a ladder without ``max_resource`` (a rung past 2^62 steps is never reached).
MAX_RUNGS = 62


class Rule(enum.Enum):
    """The rules a policy may use; the value is the name decisions report (``rule``)."""

    MEDIAN = "median"
    PERCENTILE = "percentile"
    SUCCESSIVE_HALVING = "successive_halving"
    HYPERBAND = "hyperband"
    THRESHOLD = "threshold"
    #: The patience part of a threshold rule, when it is what stopped the trial.
    PATIENCE = "patience"
    #: The worker stopped the trial itself (``CompleteTrial`` with ``stop``).
    WORKER = "worker"


@dataclass(frozen=True)
class PercentileRule:
    """Stop a trial whose best value so far is worse than ``percentile`` of the values the
    other trials reported at the same step (50: the median rule).

    Attributes:
        percentile: Strictly between 0 and 100.
        warmup_steps: Reports at steps below this never stop a trial.
        min_trials: Fewest other trials with a value at the step for the rule to decide.
        interval_steps: The rule decides only at steps ``warmup_steps + k * interval_steps``.
        median: Whether the study declared the median rule (the name decisions report).
    """

    percentile: float = 50.0
    warmup_steps: int = 0
    min_trials: int = 1
    interval_steps: int = 1
    median: bool = False

    def decides_at(self, step: int) -> bool:
        """Whether the rule decides at a report of ``step``."""
        return step >= self.warmup_steps and (step - self.warmup_steps) % self.interval_steps == 0


@dataclass(frozen=True)
class SuccessiveHalving:
    """Asynchronous successive halving: rung k at ``min_resource * η^(s + k)`` steps; a trial
    continues past a rung if its value there is among the best ``max(1, n // η)`` of the n
    values the rung holds.

    Attributes:
        min_resource: Steps of the first rung with ``min_early_stopping_rate`` 0 (>= 1).
        reduction_factor: η, 2 to ``MAX_REDUCTION_FACTOR``.
        min_early_stopping_rate: s, 0 to ``MAX_EARLY_STOPPING_RATE``.
        max_resource: Steps of a full training (no rung at or past it); ``None``: no bound.
    """

    min_resource: int = 1
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR
    min_early_stopping_rate: int = 0
    max_resource: int | None = None


@dataclass(frozen=True)
class Hyperband:
    """Brackets 0 to B-1 of successive halving, bracket b with ``min_early_stopping_rate`` b.

    Attributes:
        min_resource: Steps of the first rung of bracket 0 (>= 1).
        max_resource: Steps of a full training (>= ``min_resource * reduction_factor``).
        reduction_factor: η, 2 to ``MAX_REDUCTION_FACTOR``.
    """

    max_resource: int
    min_resource: int = 1
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR


@dataclass(frozen=True)
class Threshold:
    """Rules on a trial's own curve: a fixed threshold, a patience rule, or both.

    Attributes:
        threshold: Stop at a value worse than this (in the objective's own direction), at a
            step of at least ``warmup_steps``; ``None``: no threshold.
        warmup_steps: Reports at steps below this never stop a trial.
        patience_steps: Stop when the best value has not improved by more than ``min_delta``
            over the last ``patience_steps`` steps; 0: no patience rule.
        min_delta: Smallest improvement that counts (>= 0).
    """

    threshold: float | None = None
    warmup_steps: int = 0
    patience_steps: int = 0
    min_delta: float = 0.0


PolicyRule = PercentileRule | SuccessiveHalving | Hyperband | Threshold


@dataclass(frozen=True)
class EarlyStopping:
    """A study's early-stopping policy.

    Attributes:
        rule: The rule deciding at each report.
        objective: Name of the objective the rule watches (resolved at creation).
        maximize: Whether that objective is maximised (so values are negated to compare).
        max_measurements: Intermediate measurements kept per trial.
        rank_stopped_trials: Whether a stopped trial can be optimal, by its last value.
    """

    rule: PolicyRule
    objective: str
    maximize: bool = False
    max_measurements: int = DEFAULT_MAX_MEASUREMENTS
    rank_stopped_trials: bool = False

    @property
    def name(self) -> Rule:
        """The rule's name as decisions report it."""
        rule = self.rule
        if isinstance(rule, PercentileRule):
            return Rule.MEDIAN if rule.median else Rule.PERCENTILE
        if isinstance(rule, SuccessiveHalving):
            return Rule.SUCCESSIVE_HALVING
        if isinstance(rule, Hyperband):
            return Rule.HYPERBAND
        return Rule.THRESHOLD


@dataclass(frozen=True)
class Decision:
    """What the policy decided at a report.

    Attributes:
        stop: Whether the trial should stop.
        rule: Which rule decided (``None`` while the trial continues).
        step: Step of the report.
        rung: For successive halving and Hyperband, the rung the decision was taken at.
        message: What the rule compared, for people.
        compared: How many values the rule compared: the other trials' at the step (percentile
            rules), the rung's with the trial's own (successive halving, Hyperband); 0 when
            nothing was compared.
    """

    stop: bool
    step: int
    rule: Rule | None = None
    rung: int | None = None
    message: str = ""
    compared: int = 0


def oriented(value: float, maximize: bool) -> float:
    """``value`` such that lower is better."""
    return -value if maximize else value


def shown(value: float, sign: float) -> float:
    """An oriented value as people read it: in the objective's own direction (``sign`` -1 for
    a maximised objective, else 1), and never ``-0``."""
    return sign * value + 0.0


# --- percentile rules --------------------------------------------------------------------------


def percentile_of(sorted_values: Sequence[float], percentile: float) -> float:
    """The ``percentile`` (0 to 100) of ascending values, interpolated linearly between the two
    nearest ranks (numpy's default, so Optuna's); the store reads the two ranks it needs."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * percentile / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    a, b = sorted_values[low], sorted_values[high]
    return a if fraction == 0.0 else a + (b - a) * fraction


def percentile_decision(
    rule: PercentileRule,
    name: Rule,
    step: int,
    best: float,
    others: Sequence[float],
    *,
    sign: float = 1.0,
) -> Decision:
    """The decision of a percentile rule at a report of ``step``.

    Args:
        rule: The rule.
        name: ``Rule.MEDIAN`` or ``Rule.PERCENTILE``, as reported.
        step: Step of the report.
        best: The trial's best oriented value so far, this report's included.
        others: Oriented values of the *other* trials at ``step``, ascending.
        sign: -1 for a maximised objective: how the message shows values (:func:`shown`).
    """
    if not rule.decides_at(step) or len(others) < rule.min_trials:
        return Decision(False, step)
    cut = percentile_of(others, rule.percentile)
    compared = len(others)
    if best > cut:
        what = "median" if name is Rule.MEDIAN else f"{rule.percentile:g}th percentile"
        return Decision(
            True,
            step,
            name,
            message=(
                f"best value {shown(best, sign):.6g} is worse than the {what} "
                f"{shown(cut, sign):.6g} of {len(others)} "
                f"other trials at step {step}"
            ),
            compared=compared,
        )
    return Decision(False, step, compared=compared)


# --- successive halving and Hyperband ----------------------------------------------------------


def rung_steps(
    min_resource: int, reduction_factor: int, rate: int, max_resource: int | None
) -> list[int]:
    """Steps of each rung, in order: ``min_resource * η^(rate + k)`` below ``max_resource``."""
    steps: list[int] = []
    step = min_resource * reduction_factor**rate
    while (max_resource is None or step < max_resource) and len(steps) < MAX_RUNGS:
        steps.append(step)
        step *= reduction_factor
    return steps


def hyperband_brackets(rule: Hyperband) -> int:
    """Number of brackets: ``floor(log_η(max_resource / min_resource)) + 1``, exactly."""
    brackets = 1
    span = rule.min_resource * rule.reduction_factor
    while span <= rule.max_resource:
        brackets += 1
        span *= rule.reduction_factor
    return brackets


def hyperband_budgets(rule: Hyperband) -> list[int]:
    """Each bracket's share of the trials: Hyperband's initial number of configurations of
    bracket b, ``ceil(B * η^(B-1-b) / (B - b))`` (more, shorter trials in early-stopping-heavy
    brackets; Optuna allocates by the same budgets)."""
    count = hyperband_brackets(rule)
    eta = rule.reduction_factor
    return [math.ceil(count * eta ** (count - 1 - b) / (count - b)) for b in range(count)]


def hyperband_bracket(rule: Hyperband, trial_number: int) -> int:
    """The bracket of a trial, from its number: each cycle of ``sum(budgets)`` trials fills the
    brackets exactly in proportion to their budgets, and consecutive trials are spread over
    them (a stride coprime with the cycle walks it), the same on every replica."""
    budgets = hyperband_budgets(rule)
    cycle = sum(budgets)
    place = ((trial_number - 1) % cycle) * _stride(cycle) % cycle
    for bracket, budget in enumerate(budgets):
        if place < budget:
            return bracket
        place -= budget
    raise AssertionError("unreachable")


def _stride(cycle: int) -> int:
    """The first integer from ``0.618 * cycle`` up that is coprime with ``cycle``."""
    stride = max(1, round(cycle * 0.618))
    while math.gcd(stride, cycle) != 1:
        stride += 1
    return stride


def rungs_of(rule: SuccessiveHalving | Hyperband, bracket: int = 0) -> list[int]:
    """The rung steps of a trial under ``rule`` (in ``bracket`` for Hyperband)."""
    if isinstance(rule, Hyperband):
        return rung_steps(rule.min_resource, rule.reduction_factor, bracket, rule.max_resource)
    return rung_steps(
        rule.min_resource, rule.reduction_factor, rule.min_early_stopping_rate, rule.max_resource
    )


@dataclass(frozen=True)
class RungValue:
    """A value recorded at a rung of successive halving or Hyperband: the watched objective's
    value in the report that first reached the rung's step.

    Attributes:
        number: The trial's number.
        bracket: Its Hyperband bracket (0 under successive halving).
        rung: The rung, 0 for the first.
        value: The value, oriented: lower is better (see :func:`oriented`).
    """

    number: int
    bracket: int
    rung: int
    value: float


@dataclass(frozen=True)
class StepValue:
    """A value a percentile rule recorded: the watched objective's value in a trial's report
    at a step where the rule decides.

    Attributes:
        number: The trial's number.
        step: The step.
        value: The value, oriented: lower is better (see :func:`oriented`).
    """

    number: int
    step: int
    value: float


def promoted(rank: int, size: int, reduction_factor: int) -> bool:
    """Whether a value is among the best ``max(1, size // η)`` of the ``size`` values of a rung
    (its own included), ``rank`` being the number of values strictly better than it: a value
    tied with the last one kept is kept too (Optuna's ``value <= competing[k - 1]``)."""
    return rank < max(1, size // reduction_factor)


def rung_decision(
    name: Rule,
    step: int,
    rung: int,
    value: float,
    rank: int,
    size: int,
    reduction_factor: int,
    *,
    sign: float = 1.0,
) -> Decision:
    """The decision at a report that records ``value`` at ``rung``; ``rank`` and ``size`` as
    :func:`promoted` takes them, ``sign`` as :func:`percentile_decision`."""
    if promoted(rank, size, reduction_factor):
        return Decision(False, step, rung=rung, compared=size)
    keep = max(1, size // reduction_factor)
    return Decision(
        True,
        step,
        name,
        rung=rung,
        message=(
            f"value {shown(value, sign):.6g} at rung {rung} has {rank} better of {size}; only "
            f"the best {keep} continue"
        ),
        compared=size,
    )


# --- threshold and patience --------------------------------------------------------------------


def threshold_decision(
    rule: Threshold,
    step: int,
    value: float,
    best: float,
    best_step: int,
    threshold: float | None,
    *,
    sign: float = 1.0,
) -> Decision:
    """The decision of a threshold rule at a report of ``step``.

    Args:
        rule: The rule.
        step: Step of the report.
        value: This report's oriented value.
        best: The trial's best oriented value, this report's included.
        best_step: The first step at which ``best`` (improved by more than ``min_delta`` on
            the best before it) was reached.
        threshold: The rule's threshold, oriented.
        sign: As :func:`percentile_decision` takes it.
    """
    if step < rule.warmup_steps:
        return Decision(False, step)
    if threshold is not None and value > threshold:
        return Decision(
            True,
            step,
            Rule.THRESHOLD,
            message=(
                f"value {shown(value, sign):.6g} is worse than the threshold "
                f"{shown(threshold, sign):.6g}"
            ),
        )
    if rule.patience_steps and step - best_step >= rule.patience_steps:
        return Decision(
            True,
            step,
            Rule.PATIENCE,
            message=(
                f"no improvement of more than {rule.min_delta:g} on {shown(best, sign):.6g} "
                f"since step {best_step} ({step - best_step} steps; patience "
                f"{rule.patience_steps})"
            ),
        )
    return Decision(False, step)


__all__ = [
    "DEFAULT_MAX_MEASUREMENTS",
    "Decision",
    "EarlyStopping",
    "Hyperband",
    "PercentileRule",
    "PolicyRule",
    "Rule",
    "RungValue",
    "StepValue",
    "SuccessiveHalving",
    "Threshold",
    "hyperband_bracket",
    "hyperband_brackets",
    "hyperband_budgets",
    "oriented",
    "percentile_decision",
    "percentile_of",
    "promoted",
    "rung_decision",
    "rung_steps",
    "shown",
    "rungs_of",
    "threshold_decision",
]
