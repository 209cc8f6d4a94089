"""Revisions: every change of a trial takes the study's next revision, and a reader reads only
the trials changed since the revision of its last read (``list_trial_page`` with
``after_revision``)."""

from __future__ import annotations

from collections import Counter

import pytest

from hyperdial_server.core.early_stopping import EarlyStopping, Threshold
from hyperdial_server.core.errors import FailedPrecondition
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Measurement, StateCounts, Trial, TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    fail,
    fast,
    make_record,
    mixed_study,
    rid,
    running_trials,
    skip_unless_one_step_asks,
)

C, F, R, S, W = (
    TrialState.COMPLETED,
    TrialState.FAILED,
    TrialState.RUNNING,
    TrialState.STOPPED,
    TrialState.WAITING,
)


async def changed(
    s: Store, ns: str, rec: StudyRecord, before: int, numbers: list[int], now: float | None
) -> int:
    """Checks that the calls since revision ``before`` changed exactly the trials ``numbers``,
    in that order (one revision each, the study's last ``now``), as the study, a read of the
    changes and each trial say it; returns the study's revision."""
    study = await s.get_study(ns, rec.study_id)
    assert study.revision == before + len(numbers)
    if numbers:
        assert study.update_time == now
    if before:
        page, more = await s.list_trials(ns, rec.study_id, page_size=100, after_revision=before)
        assert not more
    else:
        listed, _ = await s.list_trials(ns, rec.study_id, page_size=100)
        page = sorted((t for t in listed if t.revision), key=lambda t: t.revision)
    assert [t.number for t in page] == numbers
    assert [t.revision for t in page] == list(range(before + 1, study.revision + 1))
    for t in page:
        assert (await s.get_trial(ns, rec.study_id, t.number)).revision == t.revision
    return study.revision


async def revision_of(s: Store, ns: str, rec: StudyRecord) -> int:
    """The study's revision now."""
    return (await s.get_study(ns, rec.study_id)).revision


async def change_pages(
    s: Store,
    ns: str,
    study_id: str,
    after_revision: int,
    size: int,
    states: list[TrialState] | None = None,
) -> list[tuple[list[int], bool, int]]:
    """Every page of the changes after ``after_revision``, in pages of ``size``: the numbers
    of each, ``more``, and where the next page starts (``page.last``)."""
    out = []
    after = after_revision
    while True:
        page, more = await s.list_trial_page(
            ns, study_id, states=states, page_size=size, after_revision=after
        )
        trials = page.decode()
        assert len(trials) <= size
        assert all(t.revision > after for t in trials)
        assert page.last >= max([after, *(t.revision for t in trials)])
        out.append(([t.number for t in trials], more, page.last))
        if not more:
            return out
        after = page.last


class ChangesContract(ContractBase):
    """Revisions: what changes a trial (and what does not), the study's revision,
    ``update_time`` and ``state_counts``, and reads of the trials changed after a revision.
    """

    def test_every_change_of_a_trial_takes_the_next_revision(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            sid = rec.study_id
            await s.create_study(ns, rec)
            study = await s.get_study(ns, sid)
            assert (study.revision, study.update_time, study.state_counts) == (
                0,
                None,
                StateCounts(),
            )
            # Enqueued (CreateTrial without an outcome): trial 1. The store gives the revision.
            queued = Trial(0, W, {"lr": 0.5}, create_time=1.0, revision=99)
            t1 = await s.create_trial(ns, sid, queued, now=1.0)
            rev = await changed(s, ns, rec, 0, [1], 1.0)
            assert t1.revision == rev
            # Imported finished trials: 2 COMPLETED, 3 FAILED.
            done = Trial(0, C, {"lr": 0.1}, values={"loss": 1.0, "acc": 0.5}, create_time=2.0)
            t2 = await s.create_trial(ns, sid, done, score=1.0, now=2.0)
            rev = await changed(s, ns, rec, rev, [2], 2.0)
            assert t2.revision == rev
            broken = Trial(0, F, {"lr": 0.2}, failure_reason="oom", create_time=2.5)
            await s.create_trial(ns, sid, broken, now=2.5)
            rev = await changed(s, ns, rec, rev, [3], 2.5)
            # An ask: the enqueued trial handed out by the claim, two new trials by the commit.
            c = await claim(s, ns, rec, 3, now=3.0, client_id="w", lease=10.0)
            assert [t.number for t in c.trials] == [1] and len(c.indices) == 2
            rev = await changed(s, ns, rec, rev, [1], 3.0)
            assert c.trials[0].revision == rev
            new = await commit(s, ns, rec, c, now=3.5, client_id="w", lease=10.0)
            rev = await changed(s, ns, rec, rev, [4, 5], 3.5)
            assert [t.revision for t in new] == [rev - 1, rev]
            # A resume (the same client asks again): its lease renewed.
            again = await claim(s, ns, rec, 1, now=4.0, client_id="w", lease=10.0)
            assert [t.number for t in again.trials] == [1]
            rev = await changed(s, ns, rec, rev, [1], 4.0)
            assert again.trials[0].revision == rev
            # A heartbeat.
            beat = await s.heartbeat_trial(ns, sid, 4, now=5.0, lease_timeout=10.0)
            rev = await changed(s, ns, rec, rev, [4], 5.0)
            assert beat.revision == rev
            # A report, and the same report again (it renews the lease).
            point = Measurement(1, {"loss": 0.5, "acc": 0.5})
            got, _ = await s.add_measurement(
                ns, sid, 5, point, policy=None, now=6.0, lease_timeout=10.0
            )
            rev = await changed(s, ns, rec, rev, [5], 6.0)
            assert got.revision == rev
            await s.add_measurement(ns, sid, 5, point, policy=None, now=6.5, lease_timeout=10.0)
            rev = await changed(s, ns, rec, rev, [5], 6.5)
            # A replayed report changes nothing.
            later = Measurement(2, {"loss": 0.4, "acc": 0.5})
            report_id = rid("report")
            for _ in range(2):
                got, _ = await s.add_measurement(
                    ns,
                    sid,
                    5,
                    later,
                    policy=None,
                    now=7.0,
                    lease_timeout=10.0,
                    request_id=report_id,
                )
                assert got.revision == rev + 1
            rev = await changed(s, ns, rec, rev, [5], 7.0)
            # A result, a failure, a stop; a stop of a stopped trial changes nothing.
            await s.complete_trial(
                ns,
                sid,
                1,
                values={"loss": 0.5, "acc": 0.5},
                failure_reason=None,
                metadata={},
                now=8.0,
            )
            rev = await changed(s, ns, rec, rev, [1], 8.0)
            await s.complete_trial(
                ns, sid, 4, values=None, failure_reason="oom", metadata={}, now=8.5
            )
            rev = await changed(s, ns, rec, rev, [4], 8.5)
            for _ in range(2):
                stopped = await s.complete_trial(
                    ns,
                    sid,
                    5,
                    values=None,
                    failure_reason=None,
                    metadata={},
                    now=9.0,
                    stop_reason="enough",
                )
                assert (stopped.state, stopped.revision) == (S, rev + 1)
            rev = await changed(s, ns, rec, rev, [5], 9.0)
            # The expiry of a lease (found by a read at 22): trial 6, handed out at 11.
            c = await claim(s, ns, rec, 1, now=11.0, lease=10.0)
            await commit(s, ns, rec, c, now=11.0, lease=10.0)
            rev = await changed(s, ns, rec, rev, [6], 11.0)
            page, _ = await s.list_trials(ns, sid, page_size=10, after_revision=rev, now=22.0)
            assert [(t.number, t.state, t.revision) for t in page] == [(6, F, rev + 1)]
            rev = await changed(s, ns, rec, rev, [6], 22.0)
            # The re-issue of its point: the claim changes no trial; the commit creates the
            # twin, then the expired trial names it.
            c = await claim(s, ns, rec, 1, now=23.0, lease=10.0)
            assert [r.source for r in c.reissues] == [6]
            assert await revision_of(s, ns, rec) == rev
            (twin,) = await commit(s, ns, rec, c, now=23.5, lease=10.0)
            rev = await changed(s, ns, rec, rev, [7, 6], 23.5)
            assert twin.revision == rev - 1
            assert (await s.get_trial(ns, sid, 6)).reissued_number == 7
            # A late result of the expired trial.
            late = await s.complete_trial(
                ns,
                sid,
                6,
                values={"loss": 0.3, "acc": 0.5},
                failure_reason=None,
                metadata={},
                now=24.0,
            )
            rev = await changed(s, ns, rec, rev, [6], 24.0)
            assert (late.state, late.revision) == (C, rev)
            # The sweep expires the twin.
            assert await s.expire_leases(now=40.0) >= 1
            rev = await changed(s, ns, rec, rev, [7], 40.0)
            study = await s.get_study(ns, sid)
            assert study.state_counts == StateCounts(completed=3, failed=3, stopped=1)
            assert study.state_counts.total == study.trial_count == 7

        store.run(body)

    def test_a_report_the_policy_stops_is_a_change(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            await s.create_study(ns, rec)
            await running_trials(s, ns, rec, 2)  # revisions 1 and 2
            policy = EarlyStopping(Threshold(threshold=1.0), objective="loss")
            trial, decision = await s.add_measurement(
                ns,
                rec.study_id,
                1,
                Measurement(3, {"loss": 5.0}),
                policy=policy,
                now=4.0,
                lease_timeout=600.0,
            )
            assert decision.stop and (trial.state, trial.revision) == (S, 3)
            await changed(s, ns, rec, 2, [1], 4.0)
            study = await s.get_study(ns, rec.study_id)
            assert study.state_counts == StateCounts(running=1, stopped=1)

        store.run(body)

    def test_replays_and_refusals_change_nothing(self, store: StoreHarness, namespace: str) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            sid = rec.study_id
            await s.create_study(ns, rec)
            create_id = rid("create")
            queued = Trial(0, W, {"lr": 0.5}, create_time=1.0)
            first = await s.create_trial(ns, sid, queued, request_id=create_id, now=1.0)
            again = await s.create_trial(ns, sid, queued, request_id=create_id, now=2.0)
            assert first.revision == again.revision == 1
            ask_id = rid("ask", attempt="a1")
            c = await claim(s, ns, rec, 2, now=3.0, request_id=ask_id)
            (handed,) = c.trials
            new = await commit(s, ns, rec, c, now=3.0, request_id=ask_id)
            rev = await revision_of(s, ns, rec)
            assert [handed.revision, *(t.revision for t in new)] == [2, 3] == [2, rev]
            replay = await claim(s, ns, rec, 2, now=4.0, request_id=rid("ask", attempt="a2"))
            assert replay.replayed
            assert [(t.number, t.revision) for t in replay.trials] == [(1, 2), (2, 3)]
            tell_id = rid("tell")
            for _ in range(2):
                done = await s.complete_trial(
                    ns,
                    sid,
                    2,
                    values={"loss": 0.5, "acc": 0.5},
                    failure_reason=None,
                    metadata={},
                    now=5.0,
                    request_id=tell_id,
                )
                assert done.revision == 4
            # A refused result (the trial has ended) changes nothing either.
            with pytest.raises(FailedPrecondition):
                await complete(s, ns, rec, 2, 0.1)
            study = await s.get_study(ns, sid)
            assert (study.revision, study.update_time) == (4, 5.0)

        store.run(body)

    def test_one_step_asks_change_the_trials_they_create(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            skip_unless_one_step_asks(s)
            ns, rec = namespace, make_record()
            await s.create_study(ns, rec)
            start = await s.reserve_indices(ns, rec.study_id, rec.uid, 2)
            got = await fast(s, ns, rec, [start, start + 1], now=2.0)
            assert [t.revision for t in got.trials] == [1, 2]
            await changed(s, ns, rec, 0, [1, 2], 2.0)

        store.run(body)

    def test_changed_after_a_revision_is_exactly_what_changed_in_order_of_revision(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            sid = rec.study_id
            await s.create_study(ns, rec)
            await running_trials(s, ns, rec, 6)  # revisions 1 to 6
            await complete(s, ns, rec, 5, 0.5)  # 7
            await s.heartbeat_trial(ns, sid, 2, now=1.0, lease_timeout=600.0)  # 8
            await fail(s, ns, rec, 4)  # 9
            await s.heartbeat_trial(ns, sid, 2, now=2.0, lease_timeout=600.0)  # 10: after 4
            page, more = await s.list_trials(ns, sid, page_size=10, after_revision=6)
            assert [(t.number, t.state, t.revision) for t in page] == [
                (5, C, 7),
                (4, F, 9),
                (2, R, 10),
            ]
            assert not more
            assert page == [await s.get_trial(ns, sid, n) for n in (5, 4, 2)]
            encoded, more = await s.list_trial_page(ns, sid, page_size=10, after_revision=6)
            assert (encoded.revision, encoded.last, more) == (10, 10, False)
            assert encoded.decode() == page
            # From the study's revision, or past it: nothing, and the next read starts there.
            for after in (10, 99):
                empty, more = await s.list_trial_page(ns, sid, page_size=10, after_revision=after)
                assert (empty.decode(), more, empty.last, empty.revision) == ([], False, after, 10)
            # By number, a page carries the study's revision too.
            by_number, more = await s.list_trial_page(ns, sid, page_size=2)
            assert (by_number.revision, by_number.last, more) == (10, 2, True)
            # With their curves, when asked.
            await s.add_measurement(
                ns,
                sid,
                3,
                Measurement(1, {"loss": 0.5}),
                policy=None,
                now=3.0,
                lease_timeout=600.0,
            )
            (curve,), _ = await s.list_trials(
                ns, sid, page_size=10, after_revision=10, with_measurements=True
            )
            assert (curve.number, curve.revision, len(curve.measurements)) == (3, 11, 1)
            # Arguments a caller cannot mean.
            with pytest.raises(ValueError):
                await s.list_trials(ns, sid, page_size=10, after_revision=-1)
            with pytest.raises(ValueError):
                await s.list_trials(ns, sid, page_size=10, after=2, after_revision=6)

        store.run(body)

    def test_changes_page_by_revision_and_a_change_during_the_read_is_not_lost(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns, rec = namespace, make_record()
            sid = rec.study_id
            await s.create_study(ns, rec)
            await running_trials(s, ns, rec, 7)  # revisions 1 to 7
            for number, now in ((3, 1.0), (1, 2.0), (6, 3.0)):  # revisions 8, 9, 10
                await s.heartbeat_trial(ns, sid, number, now=now, lease_timeout=600.0)
            pages = await change_pages(s, ns, sid, 2, 2)
            assert pages == [([4, 5], True, 5), ([7, 3], True, 8), ([1, 6], False, 10)]
            # Trial 4 changes after its page was read, trial 7 before its page is: both come
            # (again) at their new revision.
            first, _ = await s.list_trial_page(ns, sid, page_size=2, after_revision=2)
            assert [t.number for t in first.decode()] == [4, 5] and first.revision == 10
            await s.heartbeat_trial(ns, sid, 4, now=4.0, lease_timeout=600.0)  # 11
            await s.heartbeat_trial(ns, sid, 7, now=5.0, lease_timeout=600.0)  # 12
            rest = await change_pages(s, ns, sid, first.last, 2)
            assert rest == [([3, 1], True, 9), ([6, 4], True, 11), ([7], False, 12)]
            # A reader that keeps the first page's revision reads both again next time.
            pages = await change_pages(s, ns, sid, first.revision, 10)
            assert pages == [([4, 7], False, 12)]

        store.run(body)

    def test_changes_filtered_by_state_page_by_what_was_looked_at(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec, states = await mixed_study(s, ns)
            sid = rec.study_id
            listed, _ = await s.list_trials(ns, sid, page_size=100)
            by_revision = sorted(listed, key=lambda t: t.revision)
            assert [t.revision for t in by_revision] == [1, 2, 5, 7, 8, 9, 10, 11, 12, 13]
            assert [t.number for t in by_revision] == [1, 2, 5, 7, 8, 9, 10, 3, 6, 4]
            finished = [C, F]
            pages = await change_pages(s, ns, sid, 1, 2, states=finished)
            # Pages of two changes looked at, of which only the finished trials come: a page
            # may be empty while more follow.
            assert pages == [
                ([], True, 5),
                ([], True, 8),
                ([9], True, 10),
                ([3, 6], True, 12),
                ([4], False, 13),
            ]
            for after in (1, 4, 9):
                pages = await change_pages(s, ns, sid, after, 3, [W, R])
                numbers = [n for found, _, _ in pages for n in found]
                expected = [
                    t.number
                    for t in by_revision
                    if t.revision > after and states[t.number] in (W, R)
                ]
                assert numbers == expected
            # No state wanted: nothing, and the next read starts where it was asked to.
            empty, more = await s.list_trial_page(ns, sid, states=[], page_size=5, after_revision=3)
            assert (empty.decode(), more, empty.last, empty.revision) == ([], False, 3, 13)

        store.run(body)

    def test_state_counts_and_update_time_match_the_trials(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec, states = await mixed_study(s, ns)
            study = await s.get_study(ns, rec.study_id)
            assert study.state_counts == StateCounts.of(Counter(states.values()))
            assert study.state_counts == StateCounts(waiting=3, running=3, completed=2, failed=2)
            assert study.state_counts.total == study.trial_count == 10
            assert (study.revision, study.update_time) == (13, 9.0)
            await s.complete_trial(
                ns,
                rec.study_id,
                2,
                values=None,
                failure_reason=None,
                metadata={},
                now=12.5,
                stop_reason="",
            )
            page, _ = await s.list_studies(ns, 10)
            (listed,) = page
            assert listed == await s.get_study(ns, rec.study_id)
            assert listed.state_counts == StateCounts(
                waiting=3, running=2, completed=2, failed=2, stopped=1
            )
            assert (listed.revision, listed.update_time) == (14, 12.5)

        store.run(body)

    def test_a_study_deleted_and_created_again_starts_again_from_revision_0(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = make_record("again")
            await s.create_study(ns, rec)
            await running_trials(s, ns, rec, 2)
            await complete(s, ns, rec, 1, 0.5)
            assert await revision_of(s, ns, rec) == 3
            await s.delete_study(ns, "again")
            rec = make_record("again")
            assert await s.create_study(ns, rec) == rec
            study = await s.get_study(ns, "again")
            assert (study.revision, study.update_time, study.state_counts) == (
                0,
                None,
                StateCounts(),
            )
            assert await s.list_trials(ns, "again", page_size=10, after_revision=1) == ([], False)
            page, _ = await s.list_trial_page(ns, "again", page_size=10, after_revision=1)
            assert page.revision == 0
            (fresh,) = await running_trials(s, ns, rec, 1)
            assert fresh.revision == 1
            await changed(s, ns, rec, 0, [1], 1.0)

        store.run(body)
