"""Intermediate reports in :class:`._memory.MemoryStore`: the bookkeeping of a report and the
decision of the study's policy, by the functions of :mod:`hyperdial_server.core.early_stopping`
on the typed state of :mod:`._memory_state`.

``lua/add_measurement.lua`` does the same in Redis, step for step (same order, same thinning),
so the contract suite holds both to the same decisions.
"""

from __future__ import annotations

import bisect

from hyperdial_server.core.early_stopping import (
    DEFAULT_MAX_MEASUREMENTS,
    Decision,
    EarlyStopping,
    Hyperband,
    PercentileRule,
    Rule,
    RungValue,
    SuccessiveHalving,
    Threshold,
    hyperband_bracket,
    percentile_decision,
    rung_decision,
    rungs_of,
    threshold_decision,
)
from hyperdial_server.core.trial import Measurement
from hyperdial_server.store._codec_reports import orient, values_json
from hyperdial_server.store._memory_state import Kept, MemoryStudy, TrialReports


def measured(measurement: Measurement) -> Measurement:
    """A copy of ``measurement`` as stored: values and elapsed time as floats."""
    values = {name: float(v) for name, v in measurement.values.items()}
    elapsed = None if measurement.elapsed is None else float(measurement.elapsed)
    return Measurement(measurement.step, values, elapsed)


def report(
    study: MemoryStudy,
    number: int,
    measurement: Measurement,
    policy: EarlyStopping | None,
    score: float | None,
) -> Decision:
    """Records a report of trial ``number`` whose step is above its last one, and returns the
    policy's decision (the caller stops the trial if it says so)."""
    kept = measured(measurement)
    step = kept.step
    state = study.reports.get(number) or TrialReports(step, "", Decision(False, step))
    decision = Decision(False, step)
    protect = False
    if policy is not None:
        value = orient(kept.values[policy.objective], policy.maximize)
        rule = policy.rule
        # The best value improves only by more than min_delta (the patience rule's).
        min_delta = rule.min_delta if isinstance(rule, Threshold) else 0.0
        if state.best is None or value < state.best - min_delta:
            state.best, state.best_step = value, step
        sign = -1.0 if policy.maximize else 1.0
        if isinstance(rule, PercentileRule):
            decision = _percentile(study, rule, policy.name, number, step, value, state.best, sign)
        elif isinstance(rule, (SuccessiveHalving, Hyperband)):
            decision, protect = _rungs(study, rule, policy.name, number, step, value, state, sign)
        else:
            threshold = None if rule.threshold is None else orient(rule.threshold, policy.maximize)
            decision = threshold_decision(
                rule, step, value, state.best, state.best_step, threshold, sign=sign
            )
    state.last_step, state.last_values, state.decision = step, values_json(kept.values), decision
    state.score = score
    # The previous last measurement stays if protected or on the stride of kept ordinals.
    curve = state.curve
    if curve and curve[-1].ordinal % state.stride and not curve[-1].protected:
        curve.pop()
    ordinal = study.trials[number - 1].measurement_count + 1
    curve.append(Kept(kept, protect or decision.stop, ordinal))
    cap = DEFAULT_MAX_MEASUREMENTS if policy is None else policy.max_measurements
    if len(curve) > cap:
        state.stride = thin(curve, cap, state.stride)
    study.reports[number] = state
    return decision


def _percentile(
    study: MemoryStudy,
    rule: PercentileRule,
    name: Rule,
    number: int,
    step: int,
    value: float,
    best: float,
    sign: float,
) -> Decision:
    """A percentile rule's decision; the value is recorded at a step where the rule decides."""
    if not rule.decides_at(step):
        return Decision(False, step)
    others = study.step_values.setdefault(step, [])
    # Core's function needs a value to take a percentile of, whatever min_trials says.
    decision = percentile_decision(rule, name, step, best, others, sign=sign) if others else None
    bisect.insort(others, value)
    study.step_records.setdefault(step, {})[number] = value
    return decision or Decision(False, step)


def _rungs(
    study: MemoryStudy,
    rule: SuccessiveHalving | Hyperband,
    name: Rule,
    number: int,
    step: int,
    value: float,
    state: TrialReports,
    sign: float,
) -> tuple[Decision, bool]:
    """Successive halving's decision: the value is recorded and ranked at each rung the report
    reaches for the first time, in order, until the first it is not promoted at. Returns the
    decision and whether a rung was decided."""
    bracket = hyperband_bracket(rule, number) if isinstance(rule, Hyperband) else 0
    reached = sum(1 for at in rungs_of(rule, bracket) if at <= step)
    decision = Decision(False, step)
    decided = False
    while state.next_rung < reached:
        rung = state.next_rung
        values = study.rung_values.setdefault((bracket, rung), [])
        rank = bisect.bisect_left(values, value)
        values.insert(rank, value)
        study.rung_records.setdefault(number, []).append(RungValue(number, bracket, rung, value))
        state.next_rung += 1
        decided = True
        decision = rung_decision(
            name, step, rung, value, rank, len(values), rule.reduction_factor, sign=sign
        )
        if decision.stop:
            break
    return decision, decided


def thin(curve: list[Kept], cap: int, stride: int) -> int:
    """Thins ``curve`` within ``cap``: each pass doubles ``stride`` and drops the unprotected
    measurements whose ordinal is off it (every other one, the oldest first), the last one
    kept, until within the cap or nothing is left to drop. Returns the stride."""
    while len(curve) > cap and any(not k.protected for k in curve[:-1]):
        stride *= 2
        last = curve[-1]
        curve[:] = [k for k in curve[:-1] if k.protected or k.ordinal % stride == 0] + [last]
    return stride
