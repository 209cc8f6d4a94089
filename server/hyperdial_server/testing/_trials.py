"""Trials and results: ``create_trial``, ``complete_trial``, reading trials, values."""

from __future__ import annotations

import math

import pytest

from hyperdial_server.core.errors import FailedPrecondition
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import StateCounts, Trial, TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    enqueue,
    fail,
    make_record,
    mixed_study,
    running_trials,
    trial_pages,
    typed,
)


class TrialContract(ContractBase):
    """Trials and results: ``create_trial``, ``complete_trial``, ``best_trial``,
    ``list_trials``, pass by value, and values that round-trip exactly.
    """

    def test_create_trial_assigns_the_next_number(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            given = Trial(
                77,
                TrialState.COMPLETED,
                {"lr": 0.25},
                values={"loss": 0.5, "acc": 0.9},
                client_id="import",
                create_time=3.0,
                complete_time=4.0,
                metadata={"source": "csv"},
            )
            done = await s.create_trial(namespace, rec.study_id, given, score=0.5)
            assert done.number == 1
            assert done == Trial(**{**given.__dict__, "number": 1, "revision": 1})
            failed = Trial(0, TrialState.FAILED, {"lr": 0.3}, failure_reason="nan loss")
            assert (await s.create_trial(namespace, rec.study_id, failed)).number == 2
            assert (await enqueue(s, namespace, rec)).number == 3
            c = await claim(s, namespace, rec, 2)
            assert [t.number for t in c.trials] == [3]
            assert [t.number for t in await commit(s, namespace, rec, c)] == [4]
            with pytest.raises(ValueError):
                await s.create_trial(namespace, rec.study_id, Trial(0, TrialState.RUNNING, {}))
            assert await s.get_trial(namespace, rec.study_id, 1) == done

        store.run(body)

    def test_complete_trial_sets_values_and_merges_metadata(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, metadata={"a": "1", "b": "2"})
            await s.create_trial(namespace, rec.study_id, queued)
            await claim(s, namespace, rec, 1, client_id="w1")
            done = await s.complete_trial(
                namespace,
                rec.study_id,
                1,
                values={"loss": 0.25, "acc": 0.75},
                failure_reason=None,
                metadata={"b": "two", "c": "3"},
                now=123.5,
                score=0.25,
            )
            assert done.state is TrialState.COMPLETED
            assert done.values == {"loss": 0.25, "acc": 0.75}
            assert done.metadata == {"a": "1", "b": "two", "c": "3"}
            assert (done.complete_time, done.failure_reason, done.client_id) == (123.5, "", "w1")
            assert await s.get_trial(namespace, rec.study_id, 1) == done

        store.run(body)

    def test_complete_trial_with_a_failure(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            (t,) = await running_trials(s, namespace, rec, 1)
            failed = await s.complete_trial(
                namespace,
                rec.study_id,
                t.number,
                values=None,
                failure_reason="CUDA out of memory",
                metadata={"gpu": "0"},
                now=8.0,
            )
            assert failed.state is TrialState.FAILED
            assert (failed.values, failed.failure_reason, failed.complete_time) == (
                None,
                "CUDA out of memory",
                8.0,
            )
            assert failed.metadata == {"gpu": "0"}
            assert await s.best_trial(namespace, rec.study_id) is None
            with pytest.raises(ValueError):
                await s.complete_trial(
                    namespace, rec.study_id, 1, values=None, failure_reason=None, metadata={}, now=0
                )

        store.run(body)

    def test_complete_trial_needs_a_running_trial(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            c = await claim(s, namespace, rec, 2)
            waiting = await enqueue(s, namespace, rec)
            (done, failed) = await commit(s, namespace, rec, c)
            await complete(s, namespace, rec, done.number, 0.5)
            await fail(s, namespace, rec, failed.number)
            for number, state in [(1, "WAITING"), (2, "COMPLETED"), (3, "FAILED")]:
                before = await s.get_trial(namespace, rec.study_id, number)
                with pytest.raises(FailedPrecondition) as e:
                    await s.complete_trial(
                        namespace,
                        rec.study_id,
                        number,
                        values={"loss": 0.0},
                        failure_reason=None,
                        metadata={"x": "y"},
                        now=99.0,
                        score=0.0,
                    )
                assert e.value.reason == "TRIAL_NOT_RUNNING"
                assert state in e.value.message
                assert await s.get_trial(namespace, rec.study_id, number) == before
            assert waiting.number == 1
            assert (await s.best_trial(namespace, rec.study_id)) is None

        store.run(body)

    def test_best_trial_is_the_lowest_score_then_the_lowest_number(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            assert await s.best_trial(namespace, rec.study_id) is None
            trials = await running_trials(s, namespace, rec, 12)
            await complete(s, namespace, rec, 1, 5.0)  # no score: multi-objective, say
            assert await s.best_trial(namespace, rec.study_id) is None
            await complete(s, namespace, rec, 2, 3.0, score=3.0)
            assert (await s.best_trial(namespace, rec.study_id)).number == 2  # type: ignore[union-attr]
            await fail(s, namespace, rec, 3)
            # Ties: 11 and 10 (and 9 with -0.0, equal to 0.0) tie; the lowest number wins, with
            # numbers that sort differently as text ("10" < "9").
            await complete(s, namespace, rec, 11, 0.0, score=0.0)
            await complete(s, namespace, rec, 10, 0.0, score=0.0)
            best = await s.best_trial(namespace, rec.study_id)
            assert best is not None and best.number == 10
            await complete(s, namespace, rec, 9, -0.0, score=-0.0)
            best = await s.best_trial(namespace, rec.study_id)
            assert best is not None and best.number == 9
            assert best.state is TrialState.COMPLETED
            await complete(s, namespace, rec, 12, -1e300, score=-1e300)
            best = await s.best_trial(namespace, rec.study_id)
            assert best is not None and best.number == 12
            await complete(s, namespace, rec, 4, -math.inf, score=-math.inf)
            best = await s.best_trial(namespace, rec.study_id)
            assert best is not None and best.number == 4
            imported = Trial(0, TrialState.COMPLETED, {}, values={"loss": -9.0})
            await s.create_trial(namespace, rec.study_id, imported, score=-math.inf)
            best = await s.best_trial(namespace, rec.study_id)
            assert best is not None and best.number == 4
            assert len(trials) == 12

        store.run(body)

    def test_list_trials_pages_in_ascending_order(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, states = await mixed_study(s, namespace)
            assert await trial_pages(s, namespace, rec.study_id, None, 4) == [
                ([1, 2, 3, 4], True),
                ([5, 6, 7, 8], True),
                ([9, 10], False),
            ]
            assert await trial_pages(s, namespace, rec.study_id, None, 5) == [
                ([1, 2, 3, 4, 5], True),
                ([6, 7, 8, 9, 10], False),
            ]
            page, more = await s.list_trials(namespace, rec.study_id, page_size=100)
            assert [(t.number, t.state) for t in page] == sorted(states.items()) and not more
            page, more = await s.list_trials(namespace, rec.study_id, page_size=3, after=8)
            assert [t.number for t in page] == [9, 10] and not more
            assert await s.list_trials(namespace, rec.study_id, page_size=3, after=10) == (
                [],
                False,
            )

        store.run(body)

    def test_list_trials_filters_by_state(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec, states = await mixed_study(s, namespace)
            sid = rec.study_id
            W, R, C, F = (
                TrialState.WAITING,
                TrialState.RUNNING,
                TrialState.COMPLETED,
                TrialState.FAILED,
            )
            assert await trial_pages(s, namespace, sid, [R], 2) == [([2, 5], True), ([7], False)]
            assert await trial_pages(s, namespace, sid, [R], 3) == [([2, 5, 7], False)]
            assert await trial_pages(s, namespace, sid, [W, C], 2) == [
                ([1, 3], True),
                ([6, 8], True),
                ([10], False),
            ]
            assert await trial_pages(s, namespace, sid, [F, W, F], 10) == [
                ([1, 4, 8, 9, 10], False)
            ]
            assert await trial_pages(s, namespace, sid, [W, R, C, F], 10) == [
                (list(range(1, 11)), False)
            ]
            assert await s.list_trials(namespace, sid, states=[], page_size=5) == ([], False)
            page, more = await s.list_trials(namespace, sid, states=[C, F], page_size=2, after=3)
            assert [t.number for t in page] == [4, 6] and more
            for t in page:
                assert t.state is states[t.number]

        store.run(body)

    def test_records_are_passed_by_value(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            given = Trial(0, TrialState.WAITING, {"lr": 0.5}, metadata={"k": "v"})
            created = await s.create_trial(namespace, rec.study_id, given)
            given.params["lr"] = 0.9
            given.metadata["k"] = "changed"
            created.params["lr"] = 0.7
            created.metadata["new"] = "x"
            got = await s.get_trial(namespace, rec.study_id, 1)
            assert (got.params, got.metadata) == ({"lr": 0.5}, {"k": "v"})
            got.params.clear()
            got.state = TrialState.COMPLETED
            listed, _ = await s.list_trials(namespace, rec.study_id, page_size=10)
            listed[0].metadata.clear()
            c = await claim(s, namespace, rec, 2)
            c.trials[0].params["lr"] = -1.0
            points: list[tuple[int, Params]] = [(c.indices[0], {"x": 1.0})]
            trials = await s.commit_trials(
                namespace, rec.study_id, rec.uid, c.token, points, client_id="w", now=1.0
            )
            points[0][1]["x"] = 2.0
            trials[0].params["x"] = 3.0
            values = {"loss": 1.0}
            metadata = {"m": "1"}
            done = await s.complete_trial(
                namespace,
                rec.study_id,
                2,
                values=values,
                failure_reason=None,
                metadata=metadata,
                now=2.0,
                score=1.0,
            )
            values["loss"] = 5.0
            metadata["m"] = "5"
            assert done.values is not None
            done.values["loss"] = 6.0
            best = await s.best_trial(namespace, rec.study_id)
            assert best is not None
            best.metadata["m"] = "7"
            first = await s.get_trial(namespace, rec.study_id, 1)
            assert (first.state, first.params, first.metadata) == (
                TrialState.RUNNING,
                {"lr": 0.5},
                {"k": "v"},
            )
            second = await s.get_trial(namespace, rec.study_id, 2)
            assert (second.params, second.values, second.metadata) == (
                {"x": 1.0},
                {"loss": 1.0},
                {"m": "1"},
            )
            study = await s.get_study(namespace, rec.study_id)
            # Changes: trial 1 enqueued, then handed out; trial 2 created, then completed.
            counts = StateCounts(running=1, completed=1)
            assert study == StudyRecord(
                **{
                    **rec.__dict__,
                    "trial_count": 2,
                    "revision": 4,
                    "update_time": 2.0,
                    "state_counts": counts,
                }
            )

        store.run(body)

    def test_values_round_trip_exactly(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            params: Params = {
                "a": 0.1,
                "b": 1e-300,
                "c": -0.0,
                "d": 2**80,
                "e": -(2**70) - 1,
                "f": 5e-324,
                "g": 1.7976931348623157e308,
                "h": 3,
                "i": 3.0,
                "j": 1 / 3,
                "k": 'ünï ✓ 😀 "q" \\ / \n\t\u0000',
                "l": 2**53 + 1,
                "m": 1e16,
                "ключ": 0.30000000000000004,
            }
            values = {"loss": 0.1, "acc": -0.0, "tiny": 1e-300, "third": 1 / 3, "inf": math.inf}
            metadata = {"ключ": "значение 😀", 'q"uote': "back\\slash/", "ctl": "\x01\n", "": ""}
            c = await claim(s, namespace, rec, 1, client_id="wörker-1 😀")
            (t,) = await s.commit_trials(
                namespace,
                rec.study_id,
                rec.uid,
                c.token,
                [(0, params)],
                client_id="wörker-1 😀",
                now=1_700_000_000.1234567,
            )
            done = await s.complete_trial(
                namespace,
                rec.study_id,
                t.number,
                values=values,
                failure_reason=None,
                metadata=metadata,
                now=1_700_000_001.0000002,
                score=0.1,
            )
            failed_in = Trial(0, TrialState.FAILED, {"z": -0.0}, failure_reason='ошибка 😀 "x"')
            failed = await s.create_trial(namespace, rec.study_id, failed_in)
            for got in (done, await s.get_trial(namespace, rec.study_id, t.number)):
                assert typed(got.params) == typed(params)
                assert typed(got.values) == typed(values)
                assert got.metadata == metadata
                assert got.client_id == "wörker-1 😀"
                assert repr(got.create_time) == repr(1_700_000_000.1234567)
                assert repr(got.complete_time) == repr(1_700_000_001.0000002)
                assert math.copysign(1.0, float(got.params["c"])) == -1.0
            got_failed = await s.get_trial(namespace, rec.study_id, failed.number)
            assert got_failed.failure_reason == 'ошибка 😀 "x"'
            assert typed(got_failed.params) == typed({"z": -0.0})

        store.run(body)

    def test_trials_record_the_sampler_index_their_point_came_from(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            queued = await enqueue(s, namespace, rec)  # 1: no index
            c = await claim(s, namespace, rec, 3, now=0.0, lease=5.0)
            sampled = await commit(s, namespace, rec, c, now=0.0, lease=5.0)  # 2, 3 from 0, 1
            assert [t.sampler_index for t in sampled] == [0, 1]
            await s.get_trial(namespace, rec.study_id, 2, now=10.0)  # trials 1-3 expire
            again = await claim(s, namespace, rec, 3, now=10.0)
            reissued = await commit(s, namespace, rec, again, now=10.0)  # re-issues: no index
            assert [t.sampler_index for t in reissued] == [None, None, None]
            assert [r.source for r in again.reissues] == [1, 2, 3]
            for t in [queued, *sampled, *reissued]:
                stored = await s.get_trial(namespace, rec.study_id, t.number)
                assert stored.sampler_index == (t.sampler_index if t is not queued else None)
            listed, _ = await s.list_trials(namespace, rec.study_id, page_size=10)
            assert [t.sampler_index for t in listed] == [None, 0, 1, None, None, None]

        store.run(body)
