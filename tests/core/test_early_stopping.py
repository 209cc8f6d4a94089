"""The early-stopping policies' decisions (``core/early_stopping.py``), which the stores apply
at each report: percentiles as numpy computes them, rung ladders and Hyperband brackets as
Optuna's pruners define them, and the threshold and patience rules."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hyperdial_server.core.early_stopping import (
    Hyperband,
    PercentileRule,
    Rule,
    SuccessiveHalving,
    Threshold,
    hyperband_bracket,
    hyperband_brackets,
    hyperband_budgets,
    oriented,
    percentile_decision,
    percentile_of,
    promoted,
    rung_decision,
    rung_steps,
    rungs_of,
    threshold_decision,
)


def test_percentiles_are_numpys_linear_interpolation() -> None:
    rng = random.Random(3)
    for _ in range(200):
        values = sorted(rng.uniform(-5, 5) for _ in range(rng.randint(1, 30)))
        p = rng.choice([0.0, 10.0, 25.0, 50.0, 62.5, 90.0, 100.0, rng.uniform(0, 100)])
        assert percentile_of(values, p) == pytest.approx(float(np.percentile(values, p)))
    with pytest.raises(ValueError):
        percentile_of([], 50)


def test_the_median_rule_stops_a_trial_worse_than_the_others_at_its_step() -> None:
    rule = PercentileRule(warmup_steps=2, min_trials=3, interval_steps=2, median=True)
    others = [0.1, 0.2, 0.3, 0.4]
    stop = percentile_decision(rule, Rule.MEDIAN, 4, 0.5, others)
    assert (stop.stop, stop.rule, stop.step) == (True, Rule.MEDIAN, 4)
    assert "median 0.25 of 4 other trials at step 4" in stop.message
    # Not worse than the median; before the warm-up; off the interval; too few others.
    assert not percentile_decision(rule, Rule.MEDIAN, 4, 0.25, others).stop
    assert not percentile_decision(rule, Rule.MEDIAN, 0, 9.0, others).stop
    assert not percentile_decision(rule, Rule.MEDIAN, 5, 9.0, others).stop
    assert not percentile_decision(rule, Rule.MEDIAN, 4, 9.0, others[:2]).stop


def test_a_lower_percentile_stops_more() -> None:
    others = [float(v) for v in range(10)]
    strict = PercentileRule(percentile=25.0)
    assert percentile_decision(strict, Rule.PERCENTILE, 0, 3.0, others).stop
    assert not percentile_decision(PercentileRule(), Rule.PERCENTILE, 0, 3.0, others).stop


def test_rungs_follow_min_resource_eta_and_the_early_stopping_rate() -> None:
    assert rung_steps(1, 3, 0, None)[:5] == [1, 3, 9, 27, 81]
    assert rung_steps(2, 2, 1, 64) == [4, 8, 16, 32]  # none at or past max_resource
    assert rung_steps(5, 4, 0, 5) == []
    assert len(rung_steps(1, 2, 0, None)) == 62  # a ladder without an end stays finite
    assert rungs_of(SuccessiveHalving(min_resource=10, reduction_factor=2), 0)[:3] == [10, 20, 40]


def test_hyperband_brackets_and_budgets_are_optunas() -> None:
    # Optuna: n_brackets = floor(log_eta(max / min)) + 1; bracket i's budget
    # ceil(n * eta^s / (s + 1)) with s = n - 1 - i; bracket i's min_early_stopping_rate i.
    for lo, hi, eta in [(1, 81, 3), (1, 100, 2), (3, 300, 4), (1, 3, 3), (7, 20, 3)]:
        rule = Hyperband(max_resource=hi, min_resource=lo, reduction_factor=eta)
        n = int(np.floor(np.log(hi / lo) / np.log(eta) + 1e-12)) + 1
        assert hyperband_brackets(rule) == n
        want = [int(np.ceil(n * eta ** (n - 1 - i) / (n - i))) for i in range(n)]
        assert hyperband_budgets(rule) == want
        assert rungs_of(rule, n - 1) == rung_steps(lo, eta, n - 1, hi)


def test_each_cycle_of_trials_fills_the_brackets_in_proportion_and_spreads_them() -> None:
    rule = Hyperband(max_resource=81)
    budgets = hyperband_budgets(rule)
    cycle = sum(budgets)
    for start in (1, 1 + cycle, 1 + 5 * cycle):
        got = [hyperband_bracket(rule, n) for n in range(start, start + cycle)]
        assert [got.count(b) for b in range(len(budgets))] == budgets
    first = [hyperband_bracket(rule, n) for n in range(1, 30)]
    assert len(set(first)) == len(budgets)  # a small study already meets every bracket


def test_promotion_keeps_the_best_share_and_ties_with_the_last_kept() -> None:
    assert promoted(0, 1, 3)  # alone at the rung: the best
    assert not promoted(1, 2, 3)  # max(1, 2 // 3) = 1 continue
    assert promoted(1, 6, 3) and not promoted(2, 6, 3)
    # Optuna's rule: value <= sorted(values)[k - 1], k = max(1, n // eta).
    rng = random.Random(7)
    for _ in range(500):
        values = [rng.choice([0.1, 0.2, 0.3, 0.4, rng.random()]) for _ in range(rng.randint(1, 12))]
        value = values[-1]
        k = max(1, len(values) // 3)
        rank = sum(1 for v in values if v < value)
        assert promoted(rank, len(values), 3) == (value <= sorted(values)[k - 1])
    stop = rung_decision(Rule.SUCCESSIVE_HALVING, 9, 2, 0.5, 4, 6, 3)
    assert (stop.stop, stop.rung, stop.rule) == (True, 2, Rule.SUCCESSIVE_HALVING)
    assert "only the best 2 continue" in stop.message


def test_threshold_and_patience() -> None:
    rule = Threshold(threshold=1.0, warmup_steps=3, patience_steps=4, min_delta=0.01)
    threshold = oriented(1.0, False)
    assert not threshold_decision(rule, 2, 5.0, 0.5, 0, threshold).stop  # warm-up
    over = threshold_decision(rule, 3, 5.0, 0.5, 3, threshold)
    assert (over.stop, over.rule) == (True, Rule.THRESHOLD)
    assert not threshold_decision(rule, 6, 0.5, 0.5, 3, threshold).stop
    tired = threshold_decision(rule, 7, 0.5, 0.5, 3, threshold)
    assert (tired.stop, tired.rule) == (True, Rule.PATIENCE)
    assert "since step 3" in tired.message
    # Maximised objectives compare negated values: a threshold of 0.8 stops 0.7.
    up = Threshold(threshold=0.8)
    assert threshold_decision(up, 0, oriented(0.7, True), -0.9, 0, oriented(0.8, True)).stop


def test_messages_show_values_in_the_objectives_own_direction() -> None:
    # An accuracy (maximised) compares negated, but people read accuracies.
    rule = PercentileRule(median=True)
    others = sorted(oriented(v, True) for v in (0.8, 0.9))
    stop = percentile_decision(rule, Rule.MEDIAN, 3, oriented(0.5, True), others, sign=-1.0)
    assert "best value 0.5 is worse than the median 0.85" in stop.message
    rung = rung_decision(Rule.HYPERBAND, 9, 0, oriented(0.5, True), 3, 4, 3, sign=-1.0)
    assert rung.message.startswith("value 0.5 at rung 0")
    zero = threshold_decision(Threshold(threshold=0.0), 0, 0.0 + 1e-9, 0.0, 0, -0.0, sign=-1.0)
    assert "threshold 0" in zero.message and "-0 " not in zero.message + " "
