"""Early stopping, the decisions: every rule on small deterministic scenarios, each decision
compared with what :mod:`hyperdial_server.core.early_stopping` decides (:class:`Model`), and
concurrent first reports at one rung from two replicas."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import defaultdict

import pytest

from hyperdial_server.core.early_stopping import (
    Decision,
    EarlyStopping,
    Hyperband,
    PercentileRule,
    PolicyRule,
    Rule,
    RungValue,
    StepValue,
    SuccessiveHalving,
    Threshold,
    hyperband_bracket,
    oriented,
    percentile_decision,
    percentile_of,
    promoted,
    rung_decision,
    rungs_of,
    threshold_decision,
)
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store import RequestId, Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    make_record,
)

#: Values of every order of magnitude a message prints (``%.6g``: fixed and exponent forms).
_SCALES = (1.0, 1.0, 1.0, 1e-7, 123.456, 1e9, 3e-300)


def policy(
    rule: PolicyRule,
    *,
    maximize: bool = False,
    max_measurements: int = 100,
    rank_stopped_trials: bool = False,
) -> EarlyStopping:
    """A policy of ``rule`` on the objective ``acc`` when ``maximize``, else ``loss`` (the two
    objectives of :func:`make_record`)."""
    return EarlyStopping(
        rule,
        objective="acc" if maximize else "loss",
        maximize=maximize,
        max_measurements=max_measurements,
        rank_stopped_trials=rank_stopped_trials,
    )


async def es_study(s: Store, ns: str, n: int) -> StudyRecord:
    """A new study (an id of its own) with ``n`` RUNNING trials (1 to n), handed out at 0 with
    a lease of 600."""
    rec = make_record(f"es-{uuid.uuid4().hex[:12]}")
    await s.create_study(ns, rec)
    if n:
        c = await claim(s, ns, rec, n, now=0.0, lease=600.0)
        await commit(s, ns, rec, c, now=0.0, lease=600.0)
    return rec


async def report(
    s: Store,
    ns: str,
    rec: StudyRecord,
    number: int,
    step: int,
    value: float,
    *,
    es: EarlyStopping | None,
    now: float = 1.0,
    lease: float = 600.0,
    request_id: RequestId | None = None,
    score: float | None = None,
    elapsed: float | None = None,
) -> tuple[Trial, Decision]:
    """A report of ``value`` for the objective ``es`` watches (``loss`` without a policy), and
    0.5 for the other one."""
    watched = "acc" if es is not None and es.maximize else "loss"
    other = "loss" if watched == "acc" else "acc"
    return await s.add_measurement(
        ns,
        rec.study_id,
        number,
        Measurement(step, {watched: value, other: 0.5}, elapsed),
        policy=es,
        now=now,
        lease_timeout=lease,
        uid=rec.uid,
        request_id=request_id,
        score=score,
    )


class Model:
    """What a study under ``es`` decides at each report, from core's functions alone: the
    oracle the stores are compared with."""

    def __init__(self, es: EarlyStopping) -> None:
        self.es = es
        self.steps: dict[int, list[float]] = defaultdict(list)
        self.rungs: dict[tuple[int, int], list[float]] = defaultdict(list)
        self.best: dict[int, tuple[float, int]] = {}
        self.next_rung: dict[int, int] = defaultdict(int)

    def report(self, number: int, step: int, value: float) -> Decision:
        """The decision at a report of ``value`` (as measured) by trial ``number``."""
        es, rule = self.es, self.es.rule
        # A value of 0 compares and prints as 0, maximised or not (the stores' choice).
        v = oriented(value, es.maximize) + 0.0
        sign = -1.0 if es.maximize else 1.0
        min_delta = rule.min_delta if isinstance(rule, Threshold) else 0.0
        best = self.best.get(number)
        if best is None or v < best[0] - min_delta:
            best = self.best[number] = (v, step)
        if isinstance(rule, PercentileRule):
            if not rule.decides_at(step):
                return Decision(False, step)
            others = sorted(self.steps[step])
            self.steps[step].append(v)
            if not others:
                return Decision(False, step)
            return percentile_decision(rule, es.name, step, best[0], others, sign=sign)
        if isinstance(rule, (SuccessiveHalving, Hyperband)):
            bracket = hyperband_bracket(rule, number) if isinstance(rule, Hyperband) else 0
            ladder = rungs_of(rule, bracket)
            decision = Decision(False, step)
            while self.next_rung[number] < len(ladder) and ladder[self.next_rung[number]] <= step:
                rung = self.next_rung[number]
                values = self.rungs[(bracket, rung)]
                rank = sum(1 for x in values if x < v)
                values.append(v)
                self.next_rung[number] += 1
                eta = rule.reduction_factor
                decision = rung_decision(es.name, step, rung, v, rank, len(values), eta, sign=sign)
                if decision.stop:
                    break
            return decision
        threshold = None if rule.threshold is None else oriented(rule.threshold, es.maximize) + 0.0
        return threshold_decision(rule, step, v, best[0], best[1], threshold, sign=sign)


#: One policy of each rule, with the objective maximised or not.
POLICIES = {
    "median": policy(PercentileRule(median=True, warmup_steps=1, min_trials=2)),
    "percentile": policy(PercentileRule(25.0, interval_steps=2), maximize=True),
    "successive_halving": policy(SuccessiveHalving(min_resource=2, reduction_factor=2)),
    "successive_halving_rate": policy(
        SuccessiveHalving(reduction_factor=3, min_early_stopping_rate=1, max_resource=60),
        maximize=True,
    ),
    "hyperband": policy(Hyperband(max_resource=27, reduction_factor=3)),
    "threshold": policy(Threshold(threshold=1.5, warmup_steps=2, patience_steps=3, min_delta=0.05)),
    "patience": policy(Threshold(patience_steps=2, min_delta=0.0), maximize=True),
}


class EarlyStoppingContract(ContractBase):
    """Early stopping, the decisions (``add_measurement``): each rule as core decides it,
    percentiles to the last bit, sparse reports crossing several rungs, Hyperband brackets,
    and concurrent reports at one rung from two replicas."""

    def test_every_rule_decides_as_core_does(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            for name, es in POLICIES.items():
                rng = random.Random(name)
                trials = 9
                rec = await es_study(s, namespace, trials)
                model = Model(es)
                steps = {n: 0 for n in range(1, trials + 1)}
                running = set(steps)
                for _ in range(60):
                    if not running:
                        break
                    number = rng.choice(sorted(running))
                    # Dense and sparse reports (a jump may cross several rungs).
                    steps[number] += rng.choice([1, 1, 2, 3, 7])
                    value = round(rng.uniform(0.0, 3.0), rng.choice([1, 2, 6]))
                    value *= rng.choice(_SCALES)
                    step = steps[number]
                    trial, got = await report(s, namespace, rec, number, step, value, es=es)
                    assert got == model.report(number, step, value), (name, number, step, value)
                    if got.stop:
                        running.discard(number)
                        assert trial.state is TrialState.STOPPED
                    else:
                        assert trial.state is TrialState.RUNNING
                    assert await s.check_early_stopping(namespace, rec.study_id, number) == got
                stopped, _ = await s.list_trials(
                    namespace, rec.study_id, states=[TrialState.STOPPED], page_size=50
                )
                assert {t.number for t in stopped} == set(steps) - running
                assert len(stopped) > 0, name  # each scenario stops some trial

        store.run(body)

    def test_a_percentile_is_core_s_to_the_last_bit(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rng = random.Random(11)
            for case in range(8):
                k = rng.randint(1, 9)
                others = [rng.uniform(-3.0, 3.0) * rng.choice(_SCALES) for _ in range(k)]
                pct = rng.choice([10.0, 25.0, 50.0, 62.5, 90.0, rng.uniform(1.0, 99.0)])
                rule = PercentileRule(pct)
                es = policy(rule)
                cut = percentile_of(sorted(others), pct)
                # Not worse than the cut: continues; the next double above it: stops.
                for probe, stops in [(cut, False), (math.nextafter(cut, math.inf), True)]:
                    rec = await es_study(s, namespace, k + 1)
                    for number, value in enumerate(others, 1):
                        await report(s, namespace, rec, number, 4, value, es=es)
                    _, got = await report(s, namespace, rec, k + 1, 4, probe, es=es)
                    assert (got.stop, got.compared) == (stops, k), (case, others, pct, probe)
                    assert got == percentile_decision(
                        rule, Rule.PERCENTILE, 4, probe, sorted(others)
                    )

        store.run(body)

    def test_a_sparse_report_decides_each_rung_it_crosses_in_order(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            es = policy(SuccessiveHalving(min_resource=1, reduction_factor=2))  # rungs 1, 2, 4..
            rec = await es_study(s, namespace, 7)
            for number, value in [(1, 2.0), (2, 1.0)]:
                for step in (1, 2, 4):
                    _, got = await report(s, namespace, rec, number, step, value, es=es)
                    assert not got.stop
            for number, value in [(3, 5.0), (4, 6.0), (5, 7.0)]:
                _, got = await report(s, namespace, rec, number, 1, value, es=es)
                assert (got.stop, got.rung) == (True, 0)
            # Trial 6 jumps to step 5, past rungs 0, 1 and 2: promoted at rung 0 (1 better of
            # 6, the best 3 continue), stopped at rung 1, never recorded at rung 2.
            _, got = await report(s, namespace, rec, 6, 5, 1.5, es=es)
            assert (got.stop, got.rung, got.compared, got.rule) == (
                True,
                1,
                3,
                Rule.SUCCESSIVE_HALVING,
            )
            assert got.message == "value 1.5 at rung 1 has 1 better of 3; only the best 1 continue"
            # Trial 7, best everywhere, crosses the three and continues, with the last decision.
            trial, got = await report(s, namespace, rec, 7, 5, 0.5, es=es)
            assert (got.stop, got.rung, got.compared) == (False, 2, 3)
            assert trial.measurement_count == 1
            done = await s.get_trial(namespace, rec.study_id, 6)
            assert (done.state, done.values) == (TrialState.STOPPED, {"loss": 1.5, "acc": 0.5})

        store.run(body)

    def test_hyperband_ranks_each_trial_within_its_bracket(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            # Brackets 0 (rungs at steps 1 and 3), 1 (at 3) and 2 (none below 9).
            rule = Hyperband(max_resource=9, reduction_factor=3)
            es = policy(rule)
            trials = 16
            rec = await es_study(s, namespace, trials)
            brackets = {n: hyperband_bracket(rule, n) for n in range(1, trials + 1)}
            assert set(brackets.values()) == {0, 1, 2}
            model = Model(es)
            rng = random.Random(3)
            for number in range(1, trials + 1):
                value = rng.choice([0.25, 0.5, 0.75, 1.0])
                _, got = await report(s, namespace, rec, number, 3, value, es=es)
                assert got == model.report(number, 3, value)
                # A report at step 3 decides rung 1 in bracket 0, rung 0 in bracket 1, none in 2.
                expect = {0: (0, 1), 1: (0,), 2: (None,)}[brackets[number]]
                assert got.rung in expect

        store.run(body)

    def test_rung_values_list_each_given_trial_s_value_at_each_rung_it_reached(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            if type(s).rung_values is Store.rung_values:
                pytest.skip("the store keeps no rung values (Store.rung_values' default)")
            for maximize in (False, True):
                es = policy(
                    SuccessiveHalving(min_resource=1, reduction_factor=2), maximize=maximize
                )
                # Values as measured: a maximised objective's are negated, so that both studies
                # see the same order, and the oriented values (lower is better) are the same.
                sign = -1.0 if maximize else 1.0
                rec = await es_study(s, namespace, 4)
                # Trial 1 reports at each rung's step (1, 2, 4), trial 2 jumps to step 5 (the
                # value crosses rungs 0 to 2 at once), trial 3 stops at rung 0, trial 4 never
                # reports.
                for number, step, value in [(1, 1, 2.0), (1, 2, 1.0), (1, 4, 0.5), (2, 5, 0.1)]:
                    _, got = await report(s, namespace, rec, number, step, sign * value, es=es)
                    assert not got.stop
                _, got = await report(s, namespace, rec, 3, 1, sign * 9.0, es=es)
                assert (got.stop, got.rung) == (True, 0)
                expect = [(1, 0, 2.0), (1, 1, 1.0), (1, 2, 0.5), (2, 0, 0.1), (2, 1, 0.1)]
                expect += [(2, 2, 0.1), (3, 0, 9.0)]
                # Trial 4 has none, 99 is no trial: both add nothing.
                for numbers in ([1, 2, 3, 4], [4, 3, 2, 1, 99], [2], [3, 1], [4], []):
                    got_values = await s.rung_values(namespace, rec.study_id, numbers)
                    assert sorted(got_values, key=lambda v: (v.number, v.rung)) == [
                        RungValue(n, 0, r, v) for n, r, v in expect if n in numbers
                    ], numbers
            assert await s.rung_values(namespace, "no-such-study", [1]) == []

        store.run(body)

    def test_percentile_values_list_given_trials_values_at_the_steps_where_they_stopped(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            if type(s).percentile_values is Store.percentile_values:
                pytest.skip("the store keeps no percentile values (the default)")
            for maximize in (False, True):
                es = policy(PercentileRule(median=True, warmup_steps=2), maximize=maximize)
                sign = -1.0 if maximize else 1.0  # as measured; the oriented values are alike
                rec = await es_study(s, namespace, 6)
                # Trials 1 and 2 report at steps 1 to 4 and never stop; 3 stops at step 2, 4
                # and 5 at step 3; 6 never reports. The rule records from step 2 (warm-up):
                # steps 3 (two stops) and 2 (one) come back, step 4 (none) does not.
                script = [(1, 1, 1.0), (2, 1, 0.9), (1, 2, 0.5), (2, 2, 0.4), (1, 3, 0.25)]
                script += [(2, 3, 0.2), (1, 4, 0.1), (2, 4, 0.05), (3, 1, 1.5), (3, 2, 9.0)]
                script += [(4, 3, 8.0), (5, 3, 7.0)]
                for number, step, value in script:
                    _, got = await report(s, namespace, rec, number, step, sign * value, es=es)
                    assert got.stop is (value > 5), (number, step, got)
                expect = [(1, 2, 0.5), (2, 2, 0.4), (3, 2, 9.0), (1, 3, 0.25), (2, 3, 0.2)]
                expect += [(4, 3, 8.0), (5, 3, 7.0)]
                # The steps are those where the given STOPPED trials stopped: of 3 (step 2)
                # alone for trials 1 to 3, of 4 (step 3) for 4 and 1, none for 1 and 2; 99 is
                # no trial, 6 never reported.
                cases = {(1, 2, 3, 4, 5, 6, 99): expect, (3, 2, 1): expect[:3]}
                cases |= {(4, 1): [(1, 3, 0.25), (4, 3, 8.0)], (1, 2): [], (): []}
                for numbers, want in cases.items():
                    got_values = await s.percentile_values(namespace, rec.study_id, numbers)
                    assert sorted(got_values, key=lambda v: (v.step, v.number)) == [
                        StepValue(n, step, v) for n, step, v in want
                    ], numbers
            assert await s.percentile_values(namespace, "no-such-study", [1]) == []

        store.run(body)

    def test_threshold_and_patience_watch_the_trial_s_own_best(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            es = policy(Threshold(threshold=0.2, warmup_steps=2, patience_steps=3, min_delta=0.1))
            rec = await es_study(s, namespace, 2)
            # Maximised: below 0.2 is worse. Warm-up first, then improvements of at most 0.1
            # do not count: the best stays at step 2.
            script = [(1, 0.1, False), (2, 0.5, False), (3, 0.55, False), (4, 0.6, False)]
            for step, value, stops in script:
                _, got = await report(s, namespace, rec, 1, step, value, es=es_max(es))
                assert got.stop is stops, step
            _, got = await report(s, namespace, rec, 1, 5, 0.59, es=es_max(es))
            assert (got.stop, got.rule) == (True, Rule.PATIENCE)
            assert got.message == (
                "no improvement of more than 0.1 on 0.5 since step 2 (3 steps; patience 3)"
            )
            _, got = await report(s, namespace, rec, 2, 2, 0.1, es=es_max(es))
            assert (got.stop, got.rule) == (True, Rule.THRESHOLD)
            assert got.message == "value 0.1 is worse than the threshold 0.2"

        store.run(body)

    def test_concurrent_first_reports_at_one_rung_take_some_sequential_order(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            eta = 3
            es = policy(SuccessiveHalving(min_resource=1, reduction_factor=eta))
            k = 30
            rec = await es_study(s, namespace, k)
            other = await store.open()
            rng = random.Random(5)
            values = {n: rng.choice([0.1, 0.2, 0.3, rng.random()]) for n in range(1, k + 1)}
            results = await asyncio.gather(
                *(report((s, other)[n % 2], namespace, rec, n, 1, values[n], es=es) for n in values)
            )
            decisions = {n: d for n, (_, d) in zip(values, results, strict=True)}
            # Every decision saw the values of the reports before it, and only those.
            order = sorted(values, key=lambda n: decisions[n].compared)
            assert [decisions[n].compared for n in order] == list(range(1, k + 1))
            for i, number in enumerate(order):
                before = [values[n] for n in order[:i]]
                rank = sum(1 for v in before if v < values[number])
                assert decisions[number].stop is not promoted(rank, i + 1, eta), number
                assert decisions[number].rung == 0
            for number, decision in decisions.items():
                trial = await s.get_trial(namespace, rec.study_id, number)
                want = TrialState.STOPPED if decision.stop else TrialState.RUNNING
                assert trial.state is want

        store.run(body)


def es_max(es: EarlyStopping) -> EarlyStopping:
    """``es`` on the maximised objective ``acc``."""
    return policy(es.rule, maximize=True, max_measurements=es.max_measurements)
