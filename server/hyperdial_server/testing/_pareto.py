"""Pareto fronts: ``Store.pareto_front`` answers the front of every candidate's front vector,
whatever way the trials became candidates (completed, imported, stopped by the policy or by
the worker, late results), with ties, duplicates, trials on no front and retries."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence

import pytest

from hyperdial_server.core.errors import NotFound
from hyperdial_server.core.pareto import front_of
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    make_record,
    rid,
)
from hyperdial_server.testing._reports import STRICT

Vector = tuple[float, ...]
#: Values drawn for front vectors: few, so that ties and equal vectors are common; -0.0 and
#: 0.0 are equal values.
VALUES = (0.0, -0.0, 0.5, 1.0, 2.0)


class Front:
    """A study of the test, the front vector each candidate was given, and reads of its
    front checked against :func:`~hyperdial_server.core.pareto.front_of` of them all."""

    def __init__(self, s: Store, ns: str, rec: StudyRecord) -> None:
        self.s, self.ns, self.rec = s, ns, rec
        self.vectors: dict[int, Vector | None] = {}
        # The trials ``vector`` was asked about: none, for a store that keeps its front.
        self.computed: list[int] = []

    def vector(self, trial: Trial) -> Vector | None:
        """What the callers gave as the trial's front vector (for a store that computes the
        front afresh)."""
        self.computed.append(trial.number)
        return self.vectors.get(trial.number)

    async def check(self) -> list[Trial]:
        """Reads the front; it must be the trials of ``front_of`` every vector given, as
        stored; returns them."""
        got = await self.s.pareto_front(self.ns, self.rec.study_id, vector=self.vector)
        given = [(n, v) for n, v in sorted(self.vectors.items()) if v is not None]
        expected = [given[i][0] for i in front_of([v for _, v in given])]
        assert [t.number for t in got] == expected, (got, given)
        for t in got:
            assert t == await self.s.get_trial(self.ns, self.rec.study_id, t.number)
        if type(self.s).pareto_front is not Store.pareto_front:
            assert self.computed == [], "a store that keeps its front computed it afresh"
        return got


async def _study(s: Store, ns: str, tag: str) -> StudyRecord:
    rec = make_record(f"pf-{tag}-{uuid.uuid4().hex[:10]}")
    await s.create_study(ns, rec)
    return rec


async def _complete(
    s: Store, ns: str, rec: StudyRecord, number: int, vector: Sequence[float] | None, **kw: object
) -> Trial:
    return await s.complete_trial(
        ns,
        rec.study_id,
        number,
        values={"loss": 1.0, "acc": 0.5},
        failure_reason=None,
        metadata={},
        now=9.0,
        front_vector=vector,
        **kw,  # type: ignore[arg-type]
    )


async def _end(s: Store, ns: str, rec: StudyRecord, number: int, how: str) -> Trial:
    """Ends trial ``number`` with no front vector: ``how`` is ``fail``, ``infeasible`` or
    ``stop``."""
    return await s.complete_trial(
        ns,
        rec.study_id,
        number,
        values=None,
        failure_reason="oom" if how == "fail" else None,
        infeasible_reason="diverged" if how == "infeasible" else None,
        stop_reason="enough" if how == "stop" else None,
        metadata={},
        now=9.0,
    )


async def _report(
    s: Store,
    ns: str,
    rec: StudyRecord,
    number: int,
    step: int,
    vector: Sequence[float] | None,
    *,
    loss: float = 0.5,
    stops: bool = False,
    now: float = 1.0,
    lease: float = 600.0,
) -> Trial:
    trial, decision = await s.add_measurement(
        ns,
        rec.study_id,
        number,
        Measurement(step, {"loss": loss, "acc": 0.5}),
        policy=STRICT if stops else None,
        now=now,
        lease_timeout=lease,
        front_vector=vector,
    )
    assert decision.stop == stops
    return trial


class ParetoContract(ContractBase):
    """``Store.pareto_front`` and the front vectors of ``complete_trial``, ``create_trial``
    and ``add_measurement``."""

    @pytest.mark.parametrize("seed", range(5))
    def test_the_front_is_that_of_every_candidate(
        self, store: StoreHarness, namespace: str, seed: int
    ) -> None:
        """A random study: whatever way its trials end, its front (read after every few
        changes) is that of every candidate's vector, equal vectors all kept."""

        async def body(s: Store) -> None:
            rng = random.Random(seed)
            ns = namespace
            rec = await _study(s, ns, str(seed))
            front = Front(s, ns, rec)
            dims = rng.choice((2, 3))

            def draw() -> Vector | None:
                if rng.random() < 0.15:
                    return None  # a candidate on no front (infeasible, a value missing)
                return tuple(rng.choice(VALUES) for _ in range(dims))

            # Six trials whose leases expire (results come late), then thirty.
            c = await claim(s, ns, rec, 6, lease=5.0)
            short = await commit(s, ns, rec, c, now=0.0, lease=5.0)
            # A report before the expiry: a late stop takes its vector.
            reported: dict[int, Vector | None] = {}
            for t in short[:3]:
                reported[t.number] = draw()
                await _report(s, ns, rec, t.number, 1, reported[t.number], now=1.0, lease=5.0)
            await s.get_trial(ns, rec.study_id, 1, now=100.0)  # expires all six
            await front.check()
            running = await commit(s, ns, rec, await claim(s, ns, rec, 30, now=100.0))
            steps: list[tuple[str, int]] = [("late", t.number) for t in short]
            steps += [("running", t.number) for t in running]
            steps += [("import", 0)] * 8
            rng.shuffle(steps)
            for i, (kind, number) in enumerate(steps):
                if kind == "late":
                    how = rng.choice(("values", "stop", "fail", "infeasible"))
                    if how == "values":
                        front.vectors[number] = draw()
                        await _complete(s, ns, rec, number, front.vectors[number])
                    else:
                        await _end(s, ns, rec, number, how)
                        if how == "stop":
                            front.vectors[number] = reported.get(number)
                elif kind == "running":
                    await self._end_running(s, ns, rec, number, front, rng, draw)
                else:
                    state = rng.choice((TrialState.COMPLETED, TrialState.STOPPED))
                    v = draw()
                    if rng.random() < 0.2:
                        state, v = rng.choice((TrialState.FAILED, TrialState.WAITING)), None
                    trial = Trial(0, state, {"lr": 0.5}, values=_values(state), create_time=5.0)
                    request_id = rid(f"import-{i}") if rng.random() < 0.3 else None
                    made = await s.create_trial(
                        ns, rec.study_id, trial, front_vector=v, request_id=request_id, now=5.0
                    )
                    if request_id is not None:  # retried: answered, nothing created
                        again = await s.create_trial(
                            ns, rec.study_id, trial, front_vector=v, request_id=request_id, now=5.0
                        )
                        assert again.number == made.number
                    if state in (TrialState.COMPLETED, TrialState.STOPPED):
                        front.vectors[made.number] = v
                if i % 5 == 4:
                    await front.check()
            await front.check()

        store.run(body)

    @staticmethod
    async def _end_running(
        s: Store,
        ns: str,
        rec: StudyRecord,
        number: int,
        front: Front,
        rng: random.Random,
        draw: object,
    ) -> None:
        """Ends a RUNNING trial one of the ways a trial may end (or leaves it running)."""
        assert callable(draw)
        how = rng.choice(("values", "retry", "policy", "reports", "stop", "fail", "left"))
        if how in ("values", "retry"):
            v = draw()
            request_id = rid(f"tell-{number}")
            await _complete(s, ns, rec, number, v, request_id=request_id)
            front.vectors[number] = v
            if how == "retry":  # the same call again: answered, nothing changes
                await _complete(s, ns, rec, number, v, request_id=request_id)
        elif how == "policy":  # a report the policy stops at: a candidate with its vector
            v = draw()
            await _report(s, ns, rec, number, 3, v, loss=5.0, stops=True)
            front.vectors[number] = v
        elif how == "reports":  # reports, then the worker stops it: the last one's vector
            last = None
            for step in range(1, rng.randint(1, 3) + 1):
                last = draw()
                await _report(s, ns, rec, number, step, last)
            await _end(s, ns, rec, number, "stop")
            await _end(s, ns, rec, number, "stop")  # stopped already: nothing changes
            front.vectors[number] = last
        elif how == "stop":  # no report: stopped without values, on no front
            await _end(s, ns, rec, number, "stop")
            front.vectors[number] = None
        elif how == "fail":
            await _end(s, ns, rec, number, rng.choice(("fail", "infeasible")))

    def test_a_front_vector_comes_only_with_a_candidate(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = await _study(s, ns, "refused")
            (t,) = await commit(s, ns, rec, await claim(s, ns, rec, 1))
            for kw in ({"failure_reason": "oom"}, {"infeasible_reason": "diverged"}):
                with pytest.raises(ValueError):
                    await s.complete_trial(
                        ns,
                        rec.study_id,
                        t.number,
                        values=None,
                        metadata={},
                        now=9.0,
                        front_vector=(1.0, 2.0),
                        **{"failure_reason": None, **kw},  # type: ignore[arg-type]
                    )
            for bad in ((math.nan, 1.0), (math.inf, 1.0), ()):
                with pytest.raises(ValueError):
                    await _complete(s, ns, rec, t.number, bad)
                with pytest.raises(ValueError):
                    await _report(s, ns, rec, t.number, 1, bad)
            with pytest.raises(ValueError):
                await s.create_trial(
                    ns,
                    rec.study_id,
                    Trial(0, TrialState.WAITING, {"lr": 0.5}),
                    front_vector=(1.0, 2.0),
                )
            # Nothing changed: the trial still takes its result.
            assert (await s.get_trial(ns, rec.study_id, t.number)).state is TrialState.RUNNING
            front = Front(s, ns, rec)
            assert await front.check() == []
            await _complete(s, ns, rec, t.number, (1.0, 2.0))
            front.vectors[t.number] = (1.0, 2.0)
            await front.check()

        store.run(body)

    def test_a_study_created_again_starts_with_an_empty_front(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = await _study(s, ns, "again")
            (t,) = await commit(s, ns, rec, await claim(s, ns, rec, 1))
            await _complete(s, ns, rec, t.number, (0.0, 0.0))
            old = Front(s, ns, rec)
            old.vectors[t.number] = (0.0, 0.0)
            assert [x.number for x in await old.check()] == [t.number]
            await s.delete_study(ns, rec.study_id)
            with pytest.raises(NotFound):
                await s.pareto_front(ns, rec.study_id, vector=lambda t: None)
            again = make_record(rec.study_id)
            await s.create_study(ns, again)
            front = Front(s, ns, again)
            assert await front.check() == []
            (u,) = await commit(s, ns, again, await claim(s, ns, again, 1))
            await _complete(s, ns, again, u.number, (5.0, 5.0))
            front.vectors[u.number] = (5.0, 5.0)
            await front.check()

        store.run(body)

    def test_the_front_keeps_equal_vectors_and_drops_dominated_ones(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            ns = namespace
            rec = await _study(s, ns, "ties")
            trials = await commit(s, ns, rec, await claim(s, ns, rec, 5))
            front = Front(s, ns, rec)
            for t, v in zip(
                trials,
                [(1.0, 1.0), (1.0, 1.0), (0.0, 2.0), (-0.0, 2.0), (1.0, 0.0)],
                strict=True,
            ):
                await _complete(s, ns, rec, t.number, v)
                front.vectors[t.number] = v
            # (1, 0) dominates both (1, 1); the two equal (0, 2) stay with it.
            assert [t.number for t in await front.check()] == [3, 4, 5]

        store.run(body)


def _values(state: TrialState) -> dict[str, float] | None:
    """The values of an imported trial of ``state``."""
    if state in (TrialState.COMPLETED, TrialState.STOPPED):
        return {"loss": 1.0, "acc": 0.5}
    return None
