"""The history a model-based sampler reads (``Store.model_history``): the whole of a short
study, a bounded window of a long one."""

from __future__ import annotations

import pytest

from hyperdial_server.core.errors import NotFound
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    enqueue,
    fail,
    lease_study,
    make_record,
)

C, F, W = TrialState.COMPLETED, TrialState.FAILED, TrialState.WAITING


class ModelHistoryContract(ContractBase):
    """``model_history``: every trial of a study of at most ``best + recent`` trials; of a
    longer one, the best by score, the ones changed last and the RUNNING ones, once each, in
    order of number."""

    def test_a_short_study_is_read_whole(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            await s.create_study(ns, rec)
            running = await commit(s, ns, rec, await claim(s, ns, rec, 4))  # 1..4
            await enqueue(s, ns, rec)  # 5 WAITING
            await complete(s, ns, rec, 1, 0.5, score=0.5)
            await fail(s, ns, rec, 2)
            page = await s.model_history(ns, rec.study_id, best=3, recent=3, running=0)
            trials = page.decode()
            assert [t.number for t in trials] == [1, 2, 3, 4, 5]
            assert [t.state for t in trials] == [C, F, *[TrialState.RUNNING] * 2, W]
            listed, _ = await s.list_trials(ns, rec.study_id, page_size=100)
            assert trials == listed
            assert page.revision == (await s.get_study(ns, rec.study_id)).revision
            assert len(running) == 4

        store.run(body)

    def test_a_long_study_is_read_as_its_best_its_latest_and_its_running_trials(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            await s.create_study(ns, rec)
            trials = await commit(s, ns, rec, await claim(s, ns, rec, 12))  # 1..12 RUNNING
            # Scores: trial n scores (n * 7) % 12, so the best are not the first or the last.
            for t in trials[:10]:
                score = float((t.number * 7) % 12)
                await complete(s, ns, rec, t.number, score, score=score)
            await fail(s, ns, rec, 11)  # the latest change; 12 stays RUNNING
            best = sorted(range(1, 11), key=lambda n: ((n * 7) % 12, n))[:2]
            page = await s.model_history(ns, rec.study_id, best=2, recent=3, running=1)
            numbers = [t.number for t in page.decode()]
            # The 3 changed last: 9, 10 (completed last) and 11 (failed); the RUNNING one of
            # highest number: 12.
            assert numbers == sorted({*best, 9, 10, 11, 12})
            # No running trial asked for: 12 is not read (it changed before 9, 10 and 11).
            page = await s.model_history(ns, rec.study_id, best=2, recent=3, running=0)
            assert [t.number for t in page.decode()] == sorted({*best, 9, 10, 11})
            # A trial read is the trial as stored.
            for t in page.decode():
                assert t == await s.get_trial(ns, rec.study_id, t.number)

        store.run(body)

    def test_a_new_score_replaces_the_old_one(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            await s.create_study(ns, rec)
            for i in range(6):
                done = Trial(0, C, {"lr": 0.1 + i / 10}, values={"loss": 1.0, "acc": 0.5})
                await s.create_trial(ns, rec.study_id, done, score=float(i), now=1.0)
            # Nothing changed since 1..6 were imported but the scores: the best two are 1, 2;
            # the one changed last is 6.
            page = await s.model_history(ns, rec.study_id, best=2, recent=1, running=0)
            assert [t.number for t in page.decode()] == [1, 2, 6]

        store.run(body)

    def test_the_best_of_several_objectives_are_on_the_pareto_front(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()  # loss (minimised) and acc (maximised)
            await s.create_study(ns, rec)
            # (loss, -acc), oriented: 3 and 6 are the front, each other trial is dominated.
            vectors = [(5.0, -0.1), (4.0, -0.2), (1.0, -0.9), (3.0, -0.3), (2.0, -0.4)]
            vectors += [(0.5, -0.6), (6.0, -0.05), (7.0, 0.0)]
            for loss, acc in vectors:
                done = Trial(0, C, {"lr": 0.1}, values={"loss": loss, "acc": -acc})
                await s.create_trial(ns, rec.study_id, done, front_vector=(loss, acc), now=1.0)
            page = await s.model_history(ns, rec.study_id, best=1, recent=2, running=0, front=True)
            assert [t.number for t in page.decode()] == [3, 7, 8]  # 3: the front's lowest
            page = await s.model_history(ns, rec.study_id, best=2, recent=1, running=0)
            assert [t.number for t in page.decode()] == [8]  # no trial has a score

        store.run(body)

    def test_expires_due_leases_first(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec, _ = await lease_study(s, ns, 2, lease=10.0)
            page = await s.model_history(ns, rec.study_id, best=5, recent=5, running=5, now=50.0)
            assert [t.state for t in page.decode()] == [F, F]

        store.run(body)

    def test_refuses_negative_counts_and_unknown_studies(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            await s.create_study(ns, rec)
            for best, recent, running in ((-1, 1, 1), (1, -1, 1), (1, 1, -1)):
                with pytest.raises(ValueError):
                    await s.model_history(
                        ns, rec.study_id, best=best, recent=recent, running=running
                    )
            with pytest.raises(NotFound):
                await s.model_history(ns, "missing", best=1, recent=1, running=1)

        store.run(body)
