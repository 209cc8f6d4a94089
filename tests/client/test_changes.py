"""Keeping a copy of a study up to date with ``study.changes()``, blocking and asyncio, against a
real server on the memory store and on Redis: the study's ``revision``, ``update_time`` and
``state_counts``, and each trial's ``revision``."""

from __future__ import annotations

import asyncio
from datetime import timezone

import pytest

import hyperdial as hd
from hyperdial.aio import AsyncClient
from hyperdial.aio import TrialChanges as AsyncTrialChanges
from tests.client._support import new_id

SPACE = [hd.Float("x", 0.0, 1.0)]
NONE = {"WAITING": 0, "RUNNING": 0, "COMPLETED": 0, "FAILED": 0, "STOPPED": 0, "INFEASIBLE": 0}


def test_changes_keep_a_copy_of_a_study_up_to_date(store_target: str) -> None:
    # No background heartbeats: each change below is the test's own.
    with hd.Client(store_target, renew_leases=False) as client:
        study = client.create_study(new_id("chg"), SPACE, algorithm="random")
        assert (study.revision, study.update_time, study.state_counts) == (
            0,
            study.create_time,
            NONE,
        )
        trials = study.ask(4)  # revisions 1 to 4
        assert [t.revision for t in trials] == [1, 2, 3, 4]
        study.tell(trials[0], 0.5)  # 5
        seen = study.changes()
        assert [(t.number, t.revision) for t in seen.trials] == [(1, 5), (2, 2), (3, 3), (4, 4)]
        assert seen.revision == 5
        copy = {t.number: t for t in seen.trials}
        study.tell(trials[2], 0.25)  # 6
        study.fail(trials[1], "oom")  # 7
        study.enqueue({"x": 0.5})  # 8: trial 5
        later = study.changes(seen.revision)
        assert [(t.number, t.state, t.revision) for t in later.trials] == [
            (3, hd.TrialState.COMPLETED, 6),
            (2, hd.TrialState.FAILED, 7),
            (5, hd.TrialState.WAITING, 8),
        ]
        assert later == hd.TrialChanges(later.trials, 8)
        copy.update((t.number, t) for t in later.trials)
        assert copy == {t.number: t for t in study.trials()}
        assert study.changes(later.revision) == hd.TrialChanges([], 8)
        # The study as fetched now.
        fresh = client.get_study(study.name)
        assert fresh.revision == 8
        assert fresh.update_time is not None and fresh.update_time.tzinfo is timezone.utc
        assert study.create_time is not None and fresh.update_time >= study.create_time
        counts = {**NONE, "WAITING": 1, "RUNNING": 1, "COMPLETED": 2, "FAILED": 1}
        assert fresh.state_counts == counts
        assert fresh.state_counts[hd.TrialState.RUNNING] == 1
        assert sum(fresh.state_counts.values()) == fresh.trial_count == 5
        # A report is a change too; the curve comes when asked.
        study.report(trials[3], 0.5, step=1)  # 9
        (reported,) = study.changes(8, with_measurements=True).trials
        assert (reported.number, reported.revision, len(reported.measurements)) == (4, 9, 1)
        with pytest.raises(ValueError, match="after_revision"):
            study.changes(-1)
        with pytest.raises(TypeError):
            study.changes(True)


def test_async_changes(store_target: str) -> None:
    async def main() -> None:
        async with AsyncClient(store_target, renew_leases=False) as client:
            study = await client.create_study(new_id("achg"), SPACE, algorithm="random")
            assert (study.revision, study.state_counts) == (0, NONE)
            trials = await study.ask(3)  # revisions 1 to 3
            seen = await study.changes()
            assert ([t.number for t in seen.trials], seen.revision) == ([1, 2, 3], 3)
            await study.tell(trials[1], 0.5)  # 4
            later = await study.changes(seen.revision)
            assert isinstance(later, AsyncTrialChanges)
            assert [(t.number, t.revision) for t in later.trials] == [(2, 4)]
            assert later.revision == 4
            fresh = await client.get_study(study.name)
            assert (fresh.revision, fresh.state_counts["COMPLETED"]) == (4, 1)

    asyncio.run(main())
