"""Studies: creating, reading, listing and deleting them, namespaces, limits."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from hyperdial_server.core.errors import AlreadyExists, NotFound, ResourceExhausted
from hyperdial_server.core.study import Algorithm
from hyperdial_server.core.trial import TrialState
from hyperdial_server.store import StaleStudy, Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    StudyLimited,
    claim,
    commit,
    complete,
    enqueue,
    make_record,
    running_trials,
)


class StudyContract(ContractBase):
    """Studies and namespaces: ``create_study``, ``get_study``, ``list_studies``,
    ``delete_study``, the per-namespace limit of studies, and ``ping``.
    """

    def test_create_and_get_study(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record("study-1")
            created = await s.create_study(namespace, rec)
            assert created == rec
            got = await s.get_study(namespace, "study-1")
            assert got == rec
            assert got.trial_count == 0
            assert got.spec.seed == 2**70 + 1
            conditions = {p.name: p.condition for p in got.spec.space.parameters if p.condition}
            assert [type(v) for v in conditions["dropout"].values] == [int, int]
            assert [type(v) for v in conditions["width"].values] == [float]
            await running_trials(s, namespace, rec, 2)
            await enqueue(s, namespace, rec)
            assert (await s.get_study(namespace, "study-1")).trial_count == 3

        store.run(body)

    def test_grid_study_round_trips(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record("g", max_trials=50, algorithm=Algorithm.GRID)
            await s.create_study(namespace, rec)
            got = await s.get_study(namespace, "g")
            assert got == rec
            assert (got.spec.max_trials, got.spec.grid_resolution) == (50, 7)

        store.run(body)

    def test_create_study_twice_is_already_exists(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            first = make_record("dup")
            await s.create_study(namespace, first)
            with pytest.raises(AlreadyExists) as e:
                await s.create_study(namespace, make_record("dup"))
            assert e.value.reason == "STUDY_ALREADY_EXISTS"
            assert (await s.get_study(namespace, "dup")).uid == first.uid

        store.run(body)

    def test_missing_study_is_not_found_everywhere(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ghost = make_record("ghost")
            calls: list[Awaitable[object]] = [
                s.get_study(namespace, "ghost"),
                s.delete_study(namespace, "ghost"),
                claim(s, namespace, ghost, 1),
                s.commit_trials(namespace, "ghost", ghost.uid, "t", [], client_id="w", now=0.0),
                enqueue(s, namespace, ghost),
                complete(s, namespace, ghost, 1, 0.5),
                s.get_trial(namespace, "ghost", 1),
                s.list_trials(namespace, "ghost", page_size=10),
                s.list_trials(namespace, "ghost", states=[TrialState.RUNNING], page_size=10),
                s.best_trial(namespace, "ghost"),
            ]
            for call in calls:
                with pytest.raises(NotFound) as e:
                    await call
                assert e.value.reason == "STUDY_NOT_FOUND"
                assert "studies/ghost" in e.value.message

        store.run(body)

    def test_missing_trial_is_not_found(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            await running_trials(s, namespace, rec, 1)
            for number in (0, 2, 99):
                with pytest.raises(NotFound) as e:
                    await s.get_trial(namespace, rec.study_id, number)
                assert e.value.reason == "TRIAL_NOT_FOUND"
                assert f"studies/s/trials/{number}" in e.value.message
            with pytest.raises(NotFound) as e:
                await complete(s, namespace, rec, 2, 0.5)
            assert e.value.reason == "TRIAL_NOT_FOUND"

        store.run(body)

    def test_list_studies_pages_in_code_point_order(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ids = ["b", "a", "a.1", "B", "c-2", "0", "a_", "Z9"]
            for study_id in ids:
                await s.create_study(namespace, make_record(study_id))
            expected = sorted(ids)
            seen: list[str] = []
            after: str | None = None
            mores = []
            while True:
                page, more = await s.list_studies(namespace, 3, after)
                seen += [r.study_id for r in page]
                mores.append(more)
                if not more:
                    break
                after = page[-1].study_id
            assert seen == expected
            assert mores == [True, True, False]
            # A page that ends exactly at the last study says no more follow.
            page, more = await s.list_studies(namespace, 4, expected[3])
            assert [r.study_id for r in page] == expected[4:] and not more
            page, more = await s.list_studies(namespace, 100)
            assert len(page) == 8 and not more
            # ``after`` need not name a study.
            page, more = await s.list_studies(namespace, 2, "a0")
            assert [r.study_id for r in page] == ["a_", "b"]  # "a.1" < "a0" < "a_"
            assert more
            page, more = await s.list_studies(namespace, 5, "zzz")
            assert page == [] and not more

        store.run(body)

    def test_list_studies_reports_trial_counts(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            a, b = make_record("a"), make_record("b")
            await s.create_study(namespace, a)
            await s.create_study(namespace, b)
            await running_trials(s, namespace, b, 3)
            page, _ = await s.list_studies(namespace, 10)
            assert [(r.study_id, r.trial_count) for r in page] == [("a", 0), ("b", 3)]
            assert page[1] == await s.get_study(namespace, "b")

        store.run(body)

    def test_list_studies_of_an_empty_namespace(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            assert await s.list_studies(namespace, 10) == ([], False)

        store.run(body)

    def test_namespaces_are_isolated(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            other = namespace + "-other"
            mine, theirs = make_record("same"), make_record("same")
            await s.create_study(namespace, mine)
            await s.create_study(other, theirs)
            await s.create_study(other, make_record("only-other"))
            await running_trials(s, namespace, mine, 2)
            assert (await s.get_study(namespace, "same")).uid == mine.uid
            assert (await s.get_study(other, "same")).trial_count == 0
            assert [r.study_id for r in (await s.list_studies(namespace, 10))[0]] == ["same"]
            c = await claim(s, other, theirs, 1)
            assert c.indices == [0]
            with pytest.raises(NotFound):
                await s.get_study(namespace, "only-other")
            await s.delete_study(namespace, "same")
            assert (await s.get_study(other, "same")).uid == theirs.uid

        store.run(body)

    def test_delete_removes_everything_and_the_id_can_be_reused(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            old = make_record("reuse")
            await s.create_study(namespace, old)
            trials = await running_trials(s, namespace, old, 3)
            await complete(s, namespace, old, trials[0].number, 0.1, score=0.1)
            await enqueue(s, namespace, old)
            await claim(s, namespace, old, 2)  # outstanding claim of indices 3, 4
            await s.delete_study(namespace, "reuse")
            with pytest.raises(NotFound):
                await s.get_study(namespace, "reuse")
            with pytest.raises(NotFound):
                await s.delete_study(namespace, "reuse")
            assert await s.list_studies(namespace, 10) == ([], False)

            new = make_record("reuse")
            assert new.uid != old.uid
            await s.create_study(namespace, new)
            got = await s.get_study(namespace, "reuse")
            assert (got.uid, got.trial_count) == (new.uid, 0)
            with pytest.raises(StaleStudy):
                await claim(s, namespace, old, 1)
            with pytest.raises(NotFound) as e:
                await s.get_trial(namespace, "reuse", 1)
            assert e.value.reason == "TRIAL_NOT_FOUND"
            assert await s.best_trial(namespace, "reuse") is None
            assert await s.list_trials(namespace, "reuse", page_size=10) == ([], False)
            c = await claim(s, namespace, new, 2)
            assert c.trials == [] and c.indices == [0, 1]
            assert [t.number for t in await commit(s, namespace, new, c)] == [1, 2]

        store.run(body)

    def test_a_namespace_holds_at_most_max_studies(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            if not isinstance(s, StudyLimited):
                pytest.skip(f"{type(s).__name__} has no attribute max_studies to set its limit")
            s.max_studies = 3
            for i in range(3):
                await s.create_study(namespace, make_record(f"s{i}"))
            with pytest.raises(ResourceExhausted) as e:
                await s.create_study(namespace, make_record("s3"))
            assert (e.value.reason, e.value.metadata) == ("TOO_MANY_STUDIES", {"limit": "3"})
            with pytest.raises(AlreadyExists):
                await s.create_study(namespace, make_record("s1"))
            await s.create_study(namespace + "-other", make_record("s3"))
            assert [r.study_id for r in (await s.list_studies(namespace, 10))[0]] == [
                "s0",
                "s1",
                "s2",
            ]
            await s.delete_study(namespace, "s0")
            await s.create_study(namespace, make_record("s3"))

        store.run(body)

    def test_ping(self, store: StoreHarness) -> None:
        async def body(s: Store) -> None:
            await s.ping()

        store.run(body)
