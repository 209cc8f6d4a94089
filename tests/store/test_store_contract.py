"""The ``Store`` contract, run against every store (memory and a real Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections.abc import Awaitable, Callable

import pytest

from hyperdial_server.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from hyperdial_server.core.space import (
    CategoricalDomain,
    Condition,
    DiscreteDomain,
    FloatDomain,
    IntDomain,
    ParameterConfig,
    Params,
    SearchSpace,
)
from hyperdial_server.core.study import Algorithm, Objective, StudyRecord, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import (
    Claim,
    FastAsk,
    MemoryStore,
    RedisStore,
    RequestId,
    StaleStudy,
    Store,
)

Body = Callable[[Store], Awaitable[None]]


class StoreHarness:
    """Runs a test body on a fresh store of one kind, in its own event loop.

    Args:
        kind: ``memory``, ``redis`` or ``cluster``.
        redis_url: The Redis (or Redis Cluster) to use for ``redis`` (``cluster``).
    """

    def __init__(self, kind: str, redis_url: str) -> None:
        self.kind = kind
        self._url = redis_url
        self._memory: MemoryStore | None = None
        self._opened: list[Store] = []

    async def open(self) -> Store:
        """Another handle on the same data: a new RedisStore with its own connection pool (as
        another replica would have), or the one MemoryStore."""
        if self.kind == "memory":
            if self._memory is None:
                self._memory = MemoryStore()
            return self._memory
        store = RedisStore.from_url(self._url)
        self._opened.append(store)
        return store

    def run(self, body: Body) -> None:
        """Runs ``body(store)`` to the end and closes every store it opened."""

        async def main() -> None:
            try:
                await body(await self.open())
            finally:
                for store in self._opened:
                    await store.close()
                self._opened.clear()
                self._memory = None

        asyncio.run(main())


@pytest.fixture(params=["memory", "redis", "cluster"])
def store(request: pytest.FixtureRequest) -> StoreHarness:
    """A harness for one kind of store; ``store.run(body)`` runs an async test body."""
    urls = {"memory": "", "redis": "redis_url", "cluster": "redis_cluster_url"}
    url = str(request.getfixturevalue(urls[request.param])) if urls[request.param] else ""
    return StoreHarness(str(request.param), url)


# --- helpers ---------------------------------------------------------------------------------


def make_space() -> SearchSpace:
    """Every domain kind, and conditions on a categorical, an int and a discrete parent."""
    return SearchSpace(
        [
            ParameterConfig("lr", FloatDomain(1e-5, 1.0, log=True)),
            ParameterConfig("layers", IntDomain(1, 8)),
            ParameterConfig("opt", CategoricalDomain(("adam", "sgd", "ünï"))),
            ParameterConfig("momentum", FloatDomain(0.0, 0.99), Condition("opt", ("sgd",))),
            ParameterConfig(
                "dropout", DiscreteDomain((0.0, 0.1, 0.25)), Condition("layers", (2, 3))
            ),
            ParameterConfig("width", IntDomain(16, 1024, log=True), Condition("dropout", (0.1,))),
        ]
    )


def make_record(
    study_id: str = "s", *, max_trials: int | None = None, algorithm: Algorithm = Algorithm.RANDOM
) -> StudyRecord:
    spec = StudySpec(
        space=make_space(),
        objectives=(Objective("loss"), Objective("acc", maximize=True)),
        algorithm=algorithm,
        seed=2**70 + 1,
        max_trials=max_trials,
        grid_resolution=7 if algorithm is Algorithm.GRID else None,
    )
    return StudyRecord(study_id, spec, create_time=1_700_000_000.123456, uid=uuid.uuid4().hex)


async def claim(
    s: Store,
    ns: str,
    rec: StudyRecord,
    count: int,
    *,
    capacity: int | None = None,
    max_trials: int | None = None,
    now: float = 0.0,
    ttl: float = 10.0,
    client_id: str = "",
    lease: float = 600.0,
    request_id: RequestId | None = None,
) -> Claim:
    return await s.claim_trials(
        ns,
        rec.study_id,
        rec.uid,
        count,
        capacity=capacity,
        max_trials=max_trials,
        client_id=client_id,
        now=now,
        claim_ttl=ttl,
        lease_timeout=lease,
        request_id=request_id,
    )


def point(index: int) -> Params:
    return {"lr": 0.001 * (index + 1), "layers": index % 8 + 1, "opt": "adam"}


async def commit(
    s: Store,
    ns: str,
    rec: StudyRecord,
    c: Claim,
    *,
    now: float = 1.0,
    client_id: str = "",
    lease: float = 600.0,
    request_id: RequestId | None = None,
) -> list[Trial]:
    points = [(i, point(i)) for i in c.indices]
    return await s.commit_trials(
        ns,
        rec.study_id,
        rec.uid,
        c.token,
        points,
        client_id=client_id,
        now=now,
        lease_timeout=lease,
        reissues=c.reissues,
        request_id=None
        if request_id is None
        else dataclasses.replace(request_id, handed=tuple(t.number for t in c.trials)),
    )


def nothing(c: Claim) -> bool:
    """Whether a claim handed out nothing (its ``pending`` count aside)."""
    return not c.trials and not c.indices and not c.reissues and not c.token


async def enqueue(s: Store, ns: str, rec: StudyRecord, params: Params | None = None) -> Trial:
    trial = Trial(0, TrialState.WAITING, params or {"lr": 0.5}, create_time=5.0)
    return await s.create_trial(ns, rec.study_id, trial)


async def complete(
    s: Store, ns: str, rec: StudyRecord, number: int, loss: float, *, score: float | None = None
) -> Trial:
    return await s.complete_trial(
        ns,
        rec.study_id,
        number,
        values={"loss": loss, "acc": 0.5},
        failure_reason=None,
        metadata={},
        now=9.0,
        score=score,
    )


async def fail(s: Store, ns: str, rec: StudyRecord, number: int) -> Trial:
    return await s.complete_trial(
        ns, rec.study_id, number, values=None, failure_reason="oom", metadata={}, now=9.0
    )


async def running_trials(s: Store, ns: str, rec: StudyRecord, n: int) -> list[Trial]:
    """``n`` new RUNNING trials from sampler indices."""
    return await commit(s, ns, rec, await claim(s, ns, rec, n))


def typed(params: Params | dict[str, float] | None) -> object:
    """Params with types and exact float text, so that 1 != 1.0 and 0.0 != -0.0."""
    if params is None:
        return None
    return sorted((k, type(v).__name__, repr(v)) for k, v in params.items())


# --- studies ---------------------------------------------------------------------------------


def test_create_and_get_study(store: StoreHarness, namespace: str) -> None:
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


def test_grid_study_round_trips(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record("g", max_trials=50, algorithm=Algorithm.GRID)
        await s.create_study(namespace, rec)
        got = await s.get_study(namespace, "g")
        assert got == rec
        assert (got.spec.max_trials, got.spec.grid_resolution) == (50, 7)

    store.run(body)


def test_create_study_twice_is_already_exists(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        first = make_record("dup")
        await s.create_study(namespace, first)
        with pytest.raises(AlreadyExists) as e:
            await s.create_study(namespace, make_record("dup"))
        assert e.value.reason == "STUDY_ALREADY_EXISTS"
        assert (await s.get_study(namespace, "dup")).uid == first.uid

    store.run(body)


def test_missing_study_is_not_found_everywhere(store: StoreHarness, namespace: str) -> None:
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


def test_missing_trial_is_not_found(store: StoreHarness, namespace: str) -> None:
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


def test_list_studies_pages_in_code_point_order(store: StoreHarness, namespace: str) -> None:
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


def test_list_studies_reports_trial_counts(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        a, b = make_record("a"), make_record("b")
        await s.create_study(namespace, a)
        await s.create_study(namespace, b)
        await running_trials(s, namespace, b, 3)
        page, _ = await s.list_studies(namespace, 10)
        assert [(r.study_id, r.trial_count) for r in page] == [("a", 0), ("b", 3)]
        assert page[1] == await s.get_study(namespace, "b")

    store.run(body)


def test_list_studies_of_an_empty_namespace(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        assert await s.list_studies(namespace, 10) == ([], False)

    store.run(body)


def test_namespaces_are_isolated(store: StoreHarness, namespace: str) -> None:
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
    store: StoreHarness, namespace: str
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


# --- claiming --------------------------------------------------------------------------------


def test_enqueued_trials_are_handed_out_first_oldest_first(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        queued = [await enqueue(s, namespace, rec, {"lr": 0.1 * i}) for i in range(1, 4)]
        assert [t.number for t in queued] == [1, 2, 3]
        assert all(t.state is TrialState.WAITING for t in queued)

        c = await claim(s, namespace, rec, 2, client_id="alice")
        assert [t.number for t in c.trials] == [1, 2]
        assert c.indices == [] and c.token == ""
        assert all(t.state is TrialState.RUNNING and t.client_id == "alice" for t in c.trials)
        assert [t.params for t in c.trials] == [queued[0].params, queued[1].params]
        assert c.trials[0].create_time == 5.0

        c = await claim(s, namespace, rec, 3, client_id="bob")
        assert [t.number for t in c.trials] == [3]
        assert c.indices == [0, 1] and c.token
        stored = await s.get_trial(namespace, rec.study_id, 3)
        assert (stored.state, stored.client_id) == (TrialState.RUNNING, "bob")
        new = await commit(s, namespace, rec, c)
        assert [t.number for t in new] == [4, 5]

    store.run(body)


def test_claims_stop_at_capacity(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        c1 = await claim(s, namespace, rec, 2, capacity=3)
        c2 = await claim(s, namespace, rec, 5, capacity=3)
        assert (c1.indices, c2.indices) == ([0, 1], [2])
        await commit(s, namespace, rec, c1)
        await commit(s, namespace, rec, c2)
        c3 = await claim(s, namespace, rec, 1, capacity=3)
        assert nothing(c3) and c3.pending == 3  # RUNNING trials whose lease may expire
        # Enqueued trials are still handed out when the indices are exhausted.
        await enqueue(s, namespace, rec)
        c4 = await claim(s, namespace, rec, 2, capacity=3)
        assert [t.number for t in c4.trials] == [4] and c4.indices == []

    store.run(body)


def test_max_trials_counts_enqueued_and_sampled_but_not_imported(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record(max_trials=5)
        await s.create_study(namespace, rec)
        await enqueue(s, namespace, rec)
        await enqueue(s, namespace, rec)
        imported = Trial(0, TrialState.COMPLETED, {"lr": 0.5}, values={"loss": 1.0, "acc": 0.0})
        await s.create_trial(namespace, rec.study_id, imported, score=1.0)
        await s.create_trial(namespace, rec.study_id, Trial(0, TrialState.FAILED, {"lr": 0.2}))
        c = await claim(s, namespace, rec, 10, max_trials=5)
        assert [t.number for t in c.trials] == [1, 2]
        assert c.indices == [0, 1, 2]
        await commit(s, namespace, rec, c)
        assert nothing(await claim(s, namespace, rec, 1, max_trials=5))
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 7

    store.run(body)


def test_max_trials_reached_leaves_enqueued_trials_waiting(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record(max_trials=1)
        await s.create_study(namespace, rec)
        await enqueue(s, namespace, rec)
        await enqueue(s, namespace, rec)
        c = await claim(s, namespace, rec, 5, max_trials=1)
        assert [t.number for t in c.trials] == [1] and c.indices == []
        assert nothing(await claim(s, namespace, rec, 5, max_trials=1))
        assert (await s.get_trial(namespace, rec.study_id, 2)).state is TrialState.WAITING

    store.run(body)


def test_a_retaken_index_counts_once_against_max_trials(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record(max_trials=3)
        await s.create_study(namespace, rec)
        first = await claim(s, namespace, rec, 3, max_trials=3, now=0.0, ttl=10.0)
        assert first.indices == [0, 1, 2]
        # Expired: taken again although max_trials is reached, since they count once.
        again = await claim(s, namespace, rec, 5, max_trials=3, now=20.0, ttl=10.0)
        assert sorted(again.indices) == [0, 1, 2]
        await commit(s, namespace, rec, again, now=21.0)
        assert nothing(await claim(s, namespace, rec, 5, max_trials=3, now=100.0))

    store.run(body)


def test_expired_claims_are_taken_again_before_fresh_indices(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        old = await claim(s, namespace, rec, 2, now=0.0, ttl=10.0)  # deadline 10
        mid = await claim(s, namespace, rec, 1, now=5.0, ttl=10.0)  # deadline 15
        assert (old.indices, mid.indices) == ([0, 1], [2])
        # At the deadline itself the claim still holds.
        at_deadline = await claim(s, namespace, rec, 1, now=10.0, ttl=10.0)
        assert at_deadline.indices == [3]
        late = await claim(s, namespace, rec, 3, now=11.0, ttl=10.0)
        assert late.indices == [0, 1, 4]
        assert late.token not in ("", old.token)

        with pytest.raises(FailedPrecondition) as e:
            await commit(s, namespace, rec, old, now=11.5)
        assert e.value.reason == "CLAIM_EXPIRED"
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 0

        trials = await commit(s, namespace, rec, late, now=12.0)
        assert [t.number for t in trials] == [1, 2, 3]
        assert [t.params for t in trials] == [point(0), point(1), point(4)]
        # The mid claim expired (deadline 15) but nobody took it: still committable.
        assert [t.number for t in await commit(s, namespace, rec, mid, now=30.0)] == [4]
        assert (await claim(s, namespace, rec, 2, now=40.0)).indices == [3, 5]

    store.run(body)


def test_a_claim_commits_once(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        c = await claim(s, namespace, rec, 2)
        await commit(s, namespace, rec, c)
        with pytest.raises(FailedPrecondition) as e:
            await commit(s, namespace, rec, c)
        assert e.value.reason == "CLAIM_EXPIRED"
        with pytest.raises(FailedPrecondition):
            await s.commit_trials(
                namespace, rec.study_id, rec.uid, "not-a-token", [(7, {})], client_id="", now=0
            )
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 2

    store.run(body)


def test_wrong_uid_is_stale(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        c = await claim(s, namespace, rec, 1)
        stale = StudyRecord(rec.study_id, rec.spec, rec.create_time, uid="other")
        with pytest.raises(StaleStudy):
            await claim(s, namespace, stale, 1)
        with pytest.raises(StaleStudy):
            await commit(s, namespace, stale, c)
        assert [t.number for t in await commit(s, namespace, rec, c)] == [1]

    store.run(body)


def test_commit_numbers_trials_in_the_order_of_points(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        await enqueue(s, namespace, rec)
        c = await claim(s, namespace, rec, 4, client_id="x")
        assert c.indices == [0, 1, 2]
        points = [(2, point(2)), (0, point(0)), (1, point(1))]
        trials = await s.commit_trials(
            namespace, rec.study_id, rec.uid, c.token, points, client_id="carol", now=42.5
        )
        assert [t.number for t in trials] == [2, 3, 4]
        assert [t.params for t in trials] == [point(2), point(0), point(1)]
        for t in trials:
            assert (t.state, t.client_id, t.create_time) == (TrialState.RUNNING, "carol", 42.5)
            assert (t.values, t.complete_time, t.failure_reason, t.metadata) == (None, None, "", {})
            assert await s.get_trial(namespace, rec.study_id, t.number) == t

    store.run(body)


def test_claim_count_must_be_positive(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        with pytest.raises(ValueError):
            await claim(s, namespace, rec, 0)

    store.run(body)


# --- renewing claims -------------------------------------------------------------------------


async def renew(
    s: Store,
    ns: str,
    rec: StudyRecord,
    c: Claim,
    *,
    now: float,
    ttl: float = 10.0,
    request_id: RequestId | None = None,
) -> None:
    await s.renew_claim(
        ns,
        rec.study_id,
        rec.uid,
        c.token,
        c.indices,
        now=now,
        claim_ttl=ttl,
        reissues=c.reissues,
        request_id=request_id,
    )


def test_a_renewed_claim_outlives_its_first_deadline(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec, (t1,) = await lease_study(s, namespace, 1, lease=5.0)
        mine = await claim(s, namespace, rec, 3, now=10.0, ttl=10.0)  # deadline 20
        assert ([r.source for r in mine.reissues], mine.indices) == ([1], [1, 2])
        await renew(s, namespace, rec, mine, now=18.0, ttl=10.0)  # deadline 28
        # Past the first deadline, not the new one: the members are not taken again.
        other = await claim(s, namespace, rec, 3, now=25.0, ttl=10.0)
        assert (other.reissues, other.indices) == ([], [3, 4, 5])
        # At the new deadline itself the claim still holds; then it lapses as any other.
        assert nothing(await claim(s, namespace, rec, 3, now=28.0, capacity=6))
        trials = await commit(s, namespace, rec, mine, now=28.0)
        assert [(t.number, t.params) for t in trials] == [
            (2, t1.params),
            (3, point(1)),
            (4, point(2)),
        ]

    store.run(body)


def test_a_claim_past_its_deadline_that_nobody_took_is_renewed(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        mine = await claim(s, namespace, rec, 2, now=0.0, ttl=10.0)
        await renew(s, namespace, rec, mine, now=15.0, ttl=10.0)  # deadline 25
        assert (await claim(s, namespace, rec, 1, now=20.0)).indices == [2]
        assert [t.number for t in await commit(s, namespace, rec, mine, now=21.0)] == [1, 2]

    store.run(body)


def test_renewing_a_claim_taken_again_is_claim_expired_and_changes_nothing(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        mine = await claim(s, namespace, rec, 2, now=0.0, ttl=10.0)  # indices 0 and 1
        thief = await claim(s, namespace, rec, 1, now=11.0, ttl=10.0)
        assert thief.indices == [0]
        with pytest.raises(FailedPrecondition) as e:
            await renew(s, namespace, rec, mine, now=12.0, ttl=100.0)
        assert e.value.reason == "CLAIM_EXPIRED"
        # Index 1 kept its lapsed deadline: the next ask takes it again.
        assert (await claim(s, namespace, rec, 1, now=13.0)).indices == [1]
        # A committed claim has no members left to renew.
        await commit(s, namespace, rec, thief, now=14.0)
        with pytest.raises(FailedPrecondition) as e:
            await renew(s, namespace, rec, thief, now=15.0)
        assert e.value.reason == "CLAIM_EXPIRED"

    store.run(body)


def test_renewing_an_ask_in_progress_keeps_its_retries_out(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        one = rid("r", "one")
        first = await claim(s, namespace, rec, 2, request_id=one, now=0.0, ttl=10.0)
        await renew(s, namespace, rec, first, now=8.0, ttl=10.0, request_id=one)  # deadline 18
        # Without the renewal, a retry at 15 would take the ask over.
        with pytest.raises(Unavailable) as e:
            await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=15.0)
        assert e.value.reason == "REQUEST_IN_PROGRESS"
        over = await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=19.0)
        assert sorted(over.indices) == [0, 1]
        # The retry owns the ask now: the first execution may neither renew nor commit.
        with pytest.raises(Unavailable) as e:
            await renew(s, namespace, rec, first, now=20.0, request_id=one)
        assert e.value.reason == "REQUEST_IN_PROGRESS"
        done = await commit(s, namespace, rec, over, request_id=rid("r", "two"), now=21.0)
        with pytest.raises(Unavailable) as e:
            await renew(s, namespace, rec, over, now=22.0, request_id=rid("r", "two"))
        assert e.value.reason == "REQUEST_IN_PROGRESS"  # answered: nothing left to renew
        replay = await claim(s, namespace, rec, 2, request_id=rid("r", "three"), now=23.0)
        assert [t.number for t in replay.trials] == [t.number for t in done]

    store.run(body)


def test_renewing_a_claim_of_a_missing_or_recreated_study(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        mine = await claim(s, namespace, rec, 1, now=0.0)
        stale = StudyRecord(rec.study_id, rec.spec, rec.create_time, uid="other")
        with pytest.raises(StaleStudy):
            await renew(s, namespace, stale, mine, now=1.0)
        await s.delete_study(namespace, rec.study_id)
        with pytest.raises(NotFound) as e:
            await renew(s, namespace, rec, mine, now=2.0)
        assert e.value.reason == "STUDY_NOT_FOUND"

    store.run(body)


# --- creating and completing trials ----------------------------------------------------------


def test_create_trial_assigns_the_next_number(store: StoreHarness, namespace: str) -> None:
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
        assert done == Trial(**{**given.__dict__, "number": 1})
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
    store: StoreHarness, namespace: str
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


def test_complete_trial_with_a_failure(store: StoreHarness, namespace: str) -> None:
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


def test_complete_trial_needs_a_running_trial(store: StoreHarness, namespace: str) -> None:
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


# --- reading trials --------------------------------------------------------------------------


def test_best_trial_is_the_lowest_score_then_the_lowest_number(
    store: StoreHarness, namespace: str
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


async def _mixed_study(s: Store, ns: str) -> tuple[StudyRecord, dict[int, TrialState]]:
    """Trials 1..10 in every state; returns the state of each."""
    rec = make_record()
    await s.create_study(ns, rec)
    c = await claim(s, ns, rec, 6)  # claimed before trial 1 is enqueued
    await enqueue(s, ns, rec)  # 1 WAITING
    await commit(s, ns, rec, c)  # 2..7 RUNNING
    await enqueue(s, ns, rec)  # 8 WAITING
    await s.create_trial(ns, rec.study_id, Trial(0, TrialState.FAILED, {}))  # 9 FAILED
    await enqueue(s, ns, rec)  # 10 WAITING
    await complete(s, ns, rec, 3, 0.5)
    await complete(s, ns, rec, 6, 0.5)
    await fail(s, ns, rec, 4)
    states = {
        1: TrialState.WAITING,
        2: TrialState.RUNNING,
        3: TrialState.COMPLETED,
        4: TrialState.FAILED,
        5: TrialState.RUNNING,
        6: TrialState.COMPLETED,
        7: TrialState.RUNNING,
        8: TrialState.WAITING,
        9: TrialState.FAILED,
        10: TrialState.WAITING,
    }
    return rec, states


async def _pages(
    s: Store, ns: str, study_id: str, states: list[TrialState] | None, size: int
) -> list[tuple[list[int], bool]]:
    out = []
    after = 0
    while True:
        page, more = await s.list_trials(ns, study_id, states=states, page_size=size, after=after)
        out.append(([t.number for t in page], more))
        if not more:
            return out
        after = page[-1].number


def test_list_trials_pages_in_ascending_order(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec, states = await _mixed_study(s, namespace)
        assert await _pages(s, namespace, rec.study_id, None, 4) == [
            ([1, 2, 3, 4], True),
            ([5, 6, 7, 8], True),
            ([9, 10], False),
        ]
        assert await _pages(s, namespace, rec.study_id, None, 5) == [
            ([1, 2, 3, 4, 5], True),
            ([6, 7, 8, 9, 10], False),
        ]
        page, more = await s.list_trials(namespace, rec.study_id, page_size=100)
        assert [(t.number, t.state) for t in page] == sorted(states.items()) and not more
        page, more = await s.list_trials(namespace, rec.study_id, page_size=3, after=8)
        assert [t.number for t in page] == [9, 10] and not more
        assert await s.list_trials(namespace, rec.study_id, page_size=3, after=10) == ([], False)

    store.run(body)


def test_list_trials_filters_by_state(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec, states = await _mixed_study(s, namespace)
        sid = rec.study_id
        W, R, C, F = (
            TrialState.WAITING,
            TrialState.RUNNING,
            TrialState.COMPLETED,
            TrialState.FAILED,
        )
        assert await _pages(s, namespace, sid, [R], 2) == [([2, 5], True), ([7], False)]
        assert await _pages(s, namespace, sid, [R], 3) == [([2, 5, 7], False)]
        assert await _pages(s, namespace, sid, [W, C], 2) == [
            ([1, 3], True),
            ([6, 8], True),
            ([10], False),
        ]
        assert await _pages(s, namespace, sid, [F, W, F], 10) == [([1, 4, 8, 9, 10], False)]
        assert await _pages(s, namespace, sid, [W, R, C, F], 10) == [(list(range(1, 11)), False)]
        assert await s.list_trials(namespace, sid, states=[], page_size=5) == ([], False)
        page, more = await s.list_trials(namespace, sid, states=[C, F], page_size=2, after=3)
        assert [t.number for t in page] == [4, 6] and more
        for t in page:
            assert t.state is states[t.number]

    store.run(body)


# --- values ----------------------------------------------------------------------------------


def test_records_are_passed_by_value(store: StoreHarness, namespace: str) -> None:
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
        assert study == StudyRecord(**{**rec.__dict__, "trial_count": 2})

    store.run(body)


def test_values_round_trip_exactly(store: StoreHarness, namespace: str) -> None:
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


def test_ping(store: StoreHarness) -> None:
    async def body(s: Store) -> None:
        await s.ping()

    store.run(body)


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_claims_hand_out_every_index_once(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        replicas = [s] + [await store.open() for _ in range(4)]
        claims = await asyncio.gather(
            *(
                claim(replicas[i % 5], namespace, rec, 5, capacity=200, client_id=f"c{i}")
                for i in range(50)
            )
        )
        indices = sorted(i for c in claims for i in c.indices)
        assert indices == list(range(200))
        last = await claim(s, namespace, rec, 1, capacity=200)
        assert nothing(last) and last.pending == 200  # every claim still outstanding
        committed = await asyncio.gather(
            *(commit(replicas[i % 5], namespace, rec, c) for i, c in enumerate(claims))
        )
        numbers = sorted(t.number for ts in committed for t in ts)
        assert numbers == list(range(1, 201))

    store.run(body)


def test_concurrent_claims_never_share_an_enqueued_trial(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        for _ in range(30):
            await enqueue(s, namespace, rec)
        replicas = [s] + [await store.open() for _ in range(4)]
        claims = await asyncio.gather(
            *(
                claim(replicas[i % 5], namespace, rec, 2, capacity=0, client_id=f"c{i}")
                for i in range(20)
            )
        )
        numbers = sorted(t.number for c in claims for t in c.trials)
        assert numbers == list(range(1, 31))
        assert all(c.indices == [] for c in claims)
        for c in claims:
            for t in c.trials:
                stored = await s.get_trial(namespace, rec.study_id, t.number)
                assert (stored.state, stored.client_id) == (TrialState.RUNNING, t.client_id)

    store.run(body)


def test_concurrent_completions_of_one_trial_succeed_once(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        (t,) = await running_trials(s, namespace, rec, 1)
        replicas = [s] + [await store.open() for _ in range(4)]

        async def attempt(i: int) -> bool:
            try:
                await replicas[i % 5].complete_trial(
                    namespace,
                    rec.study_id,
                    t.number,
                    values={"loss": float(i)},
                    failure_reason=None,
                    metadata={"who": str(i)},
                    now=10.0 + i,
                    score=float(i),
                )
            except FailedPrecondition as e:
                assert e.reason == "TRIAL_NOT_RUNNING"
                return False
            return True

        results = await asyncio.gather(*(attempt(i) for i in range(20)))
        assert sum(results) == 1
        winner = results.index(True)
        got = await s.get_trial(namespace, rec.study_id, t.number)
        assert got.values == {"loss": float(winner)}
        assert got.metadata == {"who": str(winner)}

    store.run(body)


# --- leases ----------------------------------------------------------------------------------


async def lease_study(
    s: Store, ns: str, n: int, *, max_trials: int | None = None, lease: float = 10.0
) -> tuple[StudyRecord, list[Trial]]:
    """A study with ``n`` RUNNING trials from indices, handed out at 0 with a ``lease``."""
    rec = make_record(max_trials=max_trials)
    await s.create_study(ns, rec)
    c = await claim(s, ns, rec, n, max_trials=max_trials, now=0.0, lease=lease)
    return rec, await commit(s, ns, rec, c, now=0.0, lease=lease)


def test_running_trials_hold_a_lease_that_heartbeats_renew(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, (t1, t2) = await lease_study(s, namespace, 2)
        assert (t1.lease_expire_time, t2.lease_expire_time) == (10.0, 10.0)
        got = await s.heartbeat_trial(namespace, rec.study_id, 1, now=9.5, lease_timeout=10.0)
        assert (got.state, got.lease_expire_time) == (TrialState.RUNNING, 19.5)
        assert (await s.get_trial(namespace, rec.study_id, 1, now=12.0)).lease_expire_time == 19.5
        # Trial 2 was not renewed: expired by the read at 12.
        two = await s.get_trial(namespace, rec.study_id, 2)
        assert (two.state, two.lease_expire_time) == (TrialState.FAILED, None)
        page, _ = await s.list_trials(namespace, rec.study_id, page_size=10)
        assert [(t.number, t.lease_expire_time) for t in page] == [(1, 19.5), (2, None)]
        done = await complete(s, namespace, rec, 1, 0.5)
        assert done.lease_expire_time is None
        # An enqueued trial gets its lease when handed out (after the point of trial 2).
        await enqueue(s, namespace, rec)
        c = await claim(s, namespace, rec, 2, now=20.0, lease=7.0)
        assert [r.source for r in c.reissues] == [2]
        assert [(t.number, t.lease_expire_time) for t in c.trials] == [(3, 27.0)]

    store.run(body)


def test_an_expired_lease_fails_the_trial_and_its_point_is_handed_out_again(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, (t1, t2) = await lease_study(s, namespace, 2, max_trials=2)
        # At the deadline itself the lease holds.
        assert nothing(await claim(s, namespace, rec, 1, max_trials=2, now=10.0))
        assert (await s.get_trial(namespace, rec.study_id, 1)).state is TrialState.RUNNING
        await complete(s, namespace, rec, 2, 0.5)
        # Past it, the next ask expires it and hands its point out again, first, although
        # max_trials is reached: the point counts once.
        c = await claim(s, namespace, rec, 3, max_trials=2, now=10.5, client_id="x")
        assert c.indices == [] and c.trials == [] and c.token
        assert [(r.source, r.params) for r in c.reissues] == [(1, t1.params)]
        old = await s.get_trial(namespace, rec.study_id, 1)
        assert (old.state, old.failure_reason) == (TrialState.FAILED, "lease expired")
        assert (old.complete_time, old.lease_expire_time, old.values) == (10.5, None, None)
        (twin,) = await commit(s, namespace, rec, c, now=11.0, client_id="x", lease=10.0)
        assert (twin.number, twin.state, twin.params) == (3, TrialState.RUNNING, t1.params)
        assert (twin.client_id, twin.lease_expire_time) == ("x", 21.0)
        assert nothing(await claim(s, namespace, rec, 1, max_trials=2, now=12.0))
        failed, _ = await s.list_trials(
            namespace, rec.study_id, states=[TrialState.FAILED], page_size=10
        )
        assert [t.number for t in failed] == [1]

    store.run(body)


def test_an_enqueued_trial_whose_lease_expires_is_handed_out_again_alike(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        queued = Trial(0, TrialState.WAITING, {"lr": 0.25}, create_time=1.0, metadata={"k": "v"})
        await s.create_trial(namespace, rec.study_id, queued)
        (t,) = (await claim(s, namespace, rec, 1, now=2.0, lease=5.0)).trials
        assert t.lease_expire_time == 7.0
        c = await claim(s, namespace, rec, 1, now=8.0, lease=5.0)
        assert [(r.source, r.params, r.metadata) for r in c.reissues] == [
            (1, {"lr": 0.25}, {"k": "v"})
        ]
        (twin,) = await commit(s, namespace, rec, c, now=8.0)
        assert (twin.number, twin.params, twin.metadata) == (2, {"lr": 0.25}, {"k": "v"})

    store.run(body)


def test_a_claimed_reissue_that_is_not_committed_is_taken_again(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, (t1,) = await lease_study(s, namespace, 1)
        first = await claim(s, namespace, rec, 1, now=11.0, ttl=5.0)  # claim deadline 16
        assert [r.source for r in first.reissues] == [1]
        assert nothing(await claim(s, namespace, rec, 1, now=16.0, capacity=1))
        again = await claim(s, namespace, rec, 1, now=17.0, ttl=5.0, capacity=1)
        assert [(r.source, r.params) for r in again.reissues] == [(1, t1.params)]
        with pytest.raises(FailedPrecondition) as e:
            await commit(s, namespace, rec, first, now=17.0)
        assert e.value.reason == "CLAIM_EXPIRED"
        (twin,) = await commit(s, namespace, rec, again, now=18.0)
        assert (twin.number, twin.params) == (2, t1.params)

    store.run(body)


def test_expiry_is_lazy_on_reads_given_a_time_and_leases_expire_once(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, _ = await lease_study(s, namespace, 3)
        sid = rec.study_id
        # Without a time, reads change nothing.
        assert (await s.get_trial(namespace, sid, 1)).state is TrialState.RUNNING
        page, _ = await s.list_trials(namespace, sid, states=[TrialState.RUNNING], page_size=10)
        assert len(page) == 3
        page, _ = await s.list_trials(
            namespace, sid, states=[TrialState.RUNNING], page_size=10, now=11.0
        )
        assert page == []
        # Every replica may expire: the leases expired once, each point is queued once.
        other = await store.open()
        assert await other.expire_leases(now=12.0) == 0
        assert await s.expire_leases(now=13.0) == 0
        c = await claim(other, namespace, rec, 10, capacity=3, now=14.0)
        assert sorted(r.source for r in c.reissues) == [1, 2, 3] and c.indices == []

    store.run(body)


def test_the_sweep_expires_leases_in_every_namespace(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        other_ns = namespace + "-b"
        a, _ = await lease_study(s, namespace, 2, lease=10.0)
        b, _ = await lease_study(s, other_ns, 1, lease=20.0)
        gone, _ = await lease_study(s, namespace + "-c", 1, lease=5.0)
        await s.delete_study(namespace + "-c", gone.study_id)
        await s.heartbeat_trial(namespace, a.study_id, 2, now=5.0, lease_timeout=30.0)

        async def states() -> list[TrialState]:
            return [
                (await s.get_trial(ns, study_id, number)).state
                for ns, study_id, number in [
                    (namespace, a.study_id, 1),
                    (namespace, a.study_id, 2),
                    (other_ns, b.study_id, 1),
                ]
            ]

        R, F = TrialState.RUNNING, TrialState.FAILED
        # The sweep is global: a shared Redis may hold leases of other tests' studies too.
        assert await s.expire_leases(now=11.0) >= 1  # trial 1 of a
        assert await states() == [F, R, R]
        assert await s.expire_leases(now=11.0) == 0
        assert await s.expire_leases(now=21.0) >= 1  # trial 1 of b
        assert await states() == [F, R, F]
        assert await s.expire_leases(now=36.0) >= 1  # trial 2 of a, renewed until 35
        assert await states() == [F, F, F]
        assert await s.expire_leases(now=36.0) == 0

    store.run(body)


def test_heartbeat_renews_only_running_trials(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec, _ = await lease_study(s, namespace, 2)
        await enqueue(s, namespace, rec)  # 3 WAITING
        await complete(s, namespace, rec, 1, 0.5)
        for number, detail in [(1, "COMPLETED"), (3, "WAITING")]:
            with pytest.raises(FailedPrecondition) as e:
                await s.heartbeat_trial(namespace, rec.study_id, number, now=1.0, lease_timeout=5)
            assert (e.value.reason, e.value.metadata) == ("TRIAL_NOT_RUNNING", {"state": detail})
        # Past its deadline, a heartbeat finds the lease expired and expires it.
        for _ in range(2):
            with pytest.raises(FailedPrecondition) as e:
                await s.heartbeat_trial(namespace, rec.study_id, 2, now=10.5, lease_timeout=5)
            assert e.value.reason == "TRIAL_NOT_RUNNING"
            assert e.value.metadata == {"state": "FAILED", "lease_expired": "true"}
            assert "lease expired" in e.value.message
        assert (await s.get_trial(namespace, rec.study_id, 2)).state is TrialState.FAILED
        with pytest.raises(NotFound) as nf:
            await s.heartbeat_trial(namespace, rec.study_id, 9, now=1.0, lease_timeout=5)
        assert nf.value.reason == "TRIAL_NOT_FOUND"
        with pytest.raises(NotFound) as nf:
            await s.heartbeat_trial(namespace, "ghost", 1, now=1.0, lease_timeout=5)
        assert nf.value.reason == "STUDY_NOT_FOUND"

    store.run(body)


def test_a_late_result_is_recorded_and_withdraws_the_queued_point(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, _ = await lease_study(s, namespace, 2)
        await s.expire_leases(now=11.0)
        late = await s.complete_trial(
            namespace,
            rec.study_id,
            1,
            values={"loss": 0.25, "acc": 1.0},
            failure_reason=None,
            metadata={"late": "yes"},
            now=12.0,
            score=0.25,
        )
        assert (late.state, late.values, late.failure_reason) == (
            TrialState.COMPLETED,
            {"loss": 0.25, "acc": 1.0},
            "",
        )
        assert (late.complete_time, late.metadata) == (12.0, {"late": "yes"})
        assert (await s.best_trial(namespace, rec.study_id)).number == 1  # type: ignore[union-attr]
        # Taken once.
        with pytest.raises(FailedPrecondition) as e:
            await complete(s, namespace, rec, 1, 0.5)
        assert e.value.metadata == {"state": "COMPLETED"}
        # A late failure only replaces the reason: the point of trial 2 is still handed out.
        failed = await s.complete_trial(
            namespace, rec.study_id, 2, values=None, failure_reason="oom", metadata={}, now=13.0
        )
        assert (failed.state, failed.failure_reason) == (TrialState.FAILED, "oom")
        c = await claim(s, namespace, rec, 5, capacity=2, now=14.0)
        assert [r.source for r in c.reissues] == [2] and c.indices == []

    store.run(body)


def test_a_late_result_after_the_point_was_handed_out_again_leaves_both_trials(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, (t1,) = await lease_study(s, namespace, 1)
        (twin,) = await commit(s, namespace, rec, await claim(s, namespace, rec, 1, now=11.0))
        await complete(s, namespace, rec, 1, 0.5)  # the late result
        await complete(s, namespace, rec, twin.number, 0.75)
        done, _ = await s.list_trials(
            namespace, rec.study_id, states=[TrialState.COMPLETED], page_size=10
        )
        assert [(t.number, t.params) for t in done] == [(1, t1.params), (2, t1.params)]

    store.run(body)


# --- client_id resume ------------------------------------------------------------------------


def test_a_client_asking_again_gets_its_running_trials_back_first(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        a = await claim(s, namespace, rec, 2, client_id="a", now=0.0)
        mine = await commit(s, namespace, rec, a, client_id="a", now=0.0, lease=10.0)
        await enqueue(s, namespace, rec)  # 3
        b = await claim(s, namespace, rec, 1, client_id="b", now=1.0, lease=10.0)
        assert [t.number for t in b.trials] == [3]
        # "a" again: its two trials, oldest first, leases renewed, then a new one.
        again = await claim(s, namespace, rec, 3, client_id="a", now=5.0, lease=10.0)
        assert [t.number for t in again.trials] == [t.number for t in mine] == [1, 2]
        assert [t.lease_expire_time for t in again.trials] == [15.0, 15.0]
        assert again.indices == [2]
        await commit(s, namespace, rec, again, client_id="a", now=5.0, lease=10.0)  # 4
        await complete(s, namespace, rec, 1, 0.5)
        one = await claim(s, namespace, rec, 1, client_id="a", now=6.0, lease=10.0)
        assert [t.number for t in one.trials] == [2] and one.indices == []
        # A client id that is a prefix of another holds nothing of it.
        assert (await claim(s, namespace, rec, 1, client_id="", now=6.0)).indices == [3]
        # An expired trial is not resumed: its point is handed out again instead.
        late = await claim(s, namespace, rec, 5, client_id="b", now=100.0)
        assert late.trials == [] and sorted(r.source for r in late.reissues) == [2, 3, 4]

    store.run(body)


# --- request ids -----------------------------------------------------------------------------


def rid(value: str, attempt: str = "") -> RequestId:
    return RequestId(value, 100.0, attempt=attempt)


def test_a_retried_ask_gets_the_first_answer_and_changes_nothing(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        await enqueue(s, namespace, rec)  # 1
        first = await claim(s, namespace, rec, 3, request_id=rid("ask-1", "a1"), now=1.0)
        trials = await commit(s, namespace, rec, first, request_id=rid("ask-1", "a1"), now=1.0)
        handed = [1] + [t.number for t in trials]
        assert handed == [1, 2, 3]
        await complete(s, namespace, rec, 2, 0.5)
        for attempt in ("a1", "a2"):
            again = await claim(s, namespace, rec, 3, request_id=rid("ask-1", attempt), now=2.0)
            assert again.replayed and again.indices == [] and again.token == ""
            assert [t.number for t in again.trials] == handed
            assert [t.state for t in again.trials] == [
                TrialState.RUNNING,
                TrialState.COMPLETED,  # as the trials are now
                TrialState.RUNNING,
            ]
        assert (await claim(s, namespace, rec, 1, now=3.0)).indices == [2]
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 3
        # An ask answered from the queue alone is recorded by the claim.
        await enqueue(s, namespace, rec)  # 4
        only = await claim(s, namespace, rec, 1, request_id=rid("ask-2", "b1"), now=4.0)
        assert [t.number for t in only.trials] == [4] and not only.replayed
        again = await claim(s, namespace, rec, 1, request_id=rid("ask-2", "b2"), now=5.0)
        assert again.replayed and [t.number for t in again.trials] == [4]
        # Past its time (ttl 100) the id is new again.
        fresh = await claim(s, namespace, rec, 1, request_id=rid("ask-2", "b3"), now=200.0)
        assert not fresh.replayed

    store.run(body)


def test_a_request_id_serves_one_kind_of_call(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        first = await claim(s, namespace, rec, 1, request_id=rid("ask-1", "a1"), now=1.0)
        await commit(s, namespace, rec, first, request_id=rid("ask-1", "a1"), now=1.0)
        with pytest.raises(InvalidArgument) as e:
            await s.complete_trial(
                namespace,
                rec.study_id,
                3,
                values={"loss": 1.0},
                failure_reason=None,
                metadata={},
                now=6.0,
                request_id=rid("ask-1"),
            )
        assert e.value.reason == "REQUEST_ID_REUSED"
        assert "SuggestTrials" in e.value.message
        trial = Trial(0, TrialState.WAITING, {"lr": 0.5})
        with pytest.raises(InvalidArgument) as e:
            await s.create_trial(namespace, rec.study_id, trial, request_id=rid("ask-1"), now=7.0)
        assert e.value.reason == "REQUEST_ID_REUSED"

    store.run(body)


def test_a_concurrent_retry_of_an_ask_in_progress_is_refused_until_its_claim_expires(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        first = await claim(s, namespace, rec, 2, request_id=rid("r", "one"), now=0.0, ttl=10.0)
        with pytest.raises(Unavailable) as e:
            await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=5.0)
        assert e.value.reason == "REQUEST_IN_PROGRESS"
        # The first execution's own next step is not refused.
        assert (await claim(s, namespace, rec, 1, request_id=rid("r", "one"), now=6.0)).indices
        # Past the claim's deadline a retry takes the ask over; the first may not finish it.
        over = await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=30.0)
        assert over.indices
        with pytest.raises(Unavailable) as e:
            await commit(s, namespace, rec, first, request_id=rid("r", "one"), now=31.0)
        assert e.value.reason == "REQUEST_IN_PROGRESS"
        done = await commit(s, namespace, rec, over, request_id=rid("r", "two"), now=31.0)
        replay = await claim(s, namespace, rec, 2, request_id=rid("r", "three"), now=32.0)
        assert [t.number for t in replay.trials] == [t.number for t in done]

    store.run(body)


def test_a_retried_tell_returns_the_trial_and_changes_nothing(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, _ = await lease_study(s, namespace, 2)

        async def tell(number: int, loss: float, request: str, now: float) -> Trial:
            return await s.complete_trial(
                namespace,
                rec.study_id,
                number,
                values={"loss": loss, "acc": 0.0},
                failure_reason=None,
                metadata={"loss": str(loss)},
                now=now,
                score=loss,
                request_id=rid(request),
            )

        first = await tell(1, 0.5, "t1", 1.0)
        again = await tell(1, 0.9, "t1", 2.0)
        assert again == first == await s.get_trial(namespace, rec.study_id, 1)
        assert again.values == {"loss": 0.5, "acc": 0.0} and again.complete_time == 1.0
        with pytest.raises(InvalidArgument) as e:
            await tell(2, 0.5, "t1", 3.0)  # the id of a tell of trial 1
        assert (e.value.reason, e.value.field) == ("REQUEST_ID_REUSED", "request_id")
        with pytest.raises(FailedPrecondition):
            await tell(1, 0.5, "t1", 500.0)  # past its time the id is forgotten

    store.run(body)


def test_retried_creations_and_deletions_change_nothing(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record("made")
        first = await s.create_study(namespace, rec, request_id=rid("c"))
        retry = make_record("made")  # what a retry of the call builds: new uid, new time
        got = await s.create_study(namespace, retry, request_id=rid("c"))
        assert got == first and got.uid == rec.uid
        with pytest.raises(AlreadyExists):
            await s.create_study(namespace, make_record("made"), request_id=rid("other"))
        with pytest.raises(AlreadyExists):
            await s.create_study(namespace, make_record("made"))
        queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, create_time=1.0)
        t1 = await s.create_trial(namespace, "made", queued, request_id=rid("t"), now=1.0)
        t2 = await s.create_trial(namespace, "made", queued, request_id=rid("t"), now=2.0)
        assert t1 == t2 and (await s.get_study(namespace, "made")).trial_count == 1
        await s.delete_study(namespace, "made", request_id=rid("d"), now=3.0)
        await s.create_study(namespace, make_record("made"))
        await s.delete_study(namespace, "made", request_id=rid("d"), now=4.0)  # a retry
        assert (await s.get_study(namespace, "made")).trial_count == 0  # still there
        with pytest.raises(NotFound):
            await s.delete_study(namespace, "gone", request_id=rid("d"), now=4.0)
        await s.delete_study(namespace, "made", request_id=rid("d"), now=500.0)
        with pytest.raises(NotFound):
            await s.get_study(namespace, "made")

    store.run(body)


# --- limits ----------------------------------------------------------------------------------


def test_a_namespace_holds_at_most_max_studies(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        assert isinstance(s, (MemoryStore, RedisStore))
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


# --- reserved indices (one-step RANDOM asks) -------------------------------------------------


async def fast(
    s: Store,
    ns: str,
    rec: StudyRecord,
    indices: list[int],
    *,
    now: float = 1.0,
    client_id: str = "",
    max_trials: int | None = None,
    request_id: RequestId | None = None,
    lease: float = 600.0,
) -> FastAsk:
    return await s.commit_reserved(
        ns,
        rec.study_id,
        rec.uid,
        [(i, point(i)) for i in indices],
        max_trials=max_trials,
        client_id=client_id,
        now=now,
        lease_timeout=lease,
        request_id=request_id,
    )


def test_reserved_blocks_never_overlap_each_other_or_claimed_indices(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        other = await store.open()  # another replica
        assert await s.reserve_indices(namespace, rec.study_id, rec.uid, 4) == 0
        assert (await claim(other, namespace, rec, 2)).indices == [4, 5]
        assert await other.reserve_indices(namespace, rec.study_id, rec.uid, 3) == 6
        firsts = await asyncio.gather(
            *(s.reserve_indices(namespace, rec.study_id, rec.uid, 5) for _ in range(10))
        )
        assert sorted(firsts) == list(range(9, 59, 5))
        # Reserving is not handing out: max_trials still has room for 2 claimed indices.
        assert (await claim(s, namespace, rec, 5, max_trials=4)).indices == [59, 60]
        with pytest.raises(ValueError):
            await s.reserve_indices(namespace, rec.study_id, rec.uid, 0)

    store.run(body)


def test_a_one_step_ask_creates_running_trials_held_by_the_client(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        await s.reserve_indices(namespace, rec.study_id, rec.uid, 8)
        done = await fast(s, namespace, rec, [0, 1], client_id="w", now=2.0, lease=60.0)
        assert done.fallback == ""
        assert [t.number for t in done.trials] == [1, 2]
        for t in done.trials:
            stored = await s.get_trial(namespace, rec.study_id, t.number)
            assert stored == t
            assert (stored.state, stored.client_id, stored.lease_expire_time) == (
                TrialState.RUNNING,
                "w",
                62.0,
            )
            assert stored.create_time == 2.0
        assert typed(done.trials[1].params) == typed(point(1))
        assert [t.sampler_index for t in done.trials] == [0, 1]
        # The client now holds trials: its next ask resumes them, through claim_trials.
        again = await fast(s, namespace, rec, [2], client_id="w", now=3.0)
        assert (again.fallback, again.trials) == ("CLIENT_HOLDS_TRIALS", [])
        resumed = await claim(s, namespace, rec, 2, client_id="w", now=3.0)
        assert [t.number for t in resumed.trials] == [1, 2]
        # Another client is not held back, and numbers go on.
        assert [t.number for t in (await fast(s, namespace, rec, [2], client_id="v")).trials] == [3]
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 3

    store.run(body)


def test_a_one_step_ask_falls_back_whenever_claim_trials_would_hand_out_something_first(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        await s.reserve_indices(namespace, rec.study_id, rec.uid, 100)

        async def count() -> int:
            return (await s.get_study(namespace, rec.study_id)).trial_count

        # Enqueued trials go first.
        queued = await enqueue(s, namespace, rec)
        assert (await fast(s, namespace, rec, [0])).fallback == "ENQUEUED"
        assert await count() == 1
        c = await claim(s, namespace, rec, 1)
        assert [t.number for t in c.trials] == [queued.number]
        # Points of lease-expired trials go first: the lease expires in the one-step ask itself.
        (t2,) = (await fast(s, namespace, rec, [1], now=1.0, lease=5.0)).trials
        assert (await fast(s, namespace, rec, [2], now=10.0)).fallback == "REISSUE"
        assert (await s.get_trial(namespace, rec.study_id, t2.number)).state is TrialState.FAILED
        assert await count() == 2
        c = await claim(s, namespace, rec, 1, now=10.0)
        assert [r.source for r in c.reissues] == [t2.number]
        # A claim that expired uncommitted goes first.
        assert (await fast(s, namespace, rec, [3], now=30.0)).fallback == "EXPIRED_CLAIM"
        retaken = await claim(s, namespace, rec, 1, now=30.0)
        assert [r.source for r in retaken.reissues] == [t2.number]
        await commit(s, namespace, rec, retaken, now=30.0)
        assert (await fast(s, namespace, rec, [4], now=31.0)).fallback == ""
        assert await count() == 4

    store.run(body)


def test_one_step_asks_count_against_max_trials(store: StoreHarness, namespace: str) -> None:
    async def body(s: Store) -> None:
        rec = make_record(max_trials=4)
        await s.create_study(namespace, rec)
        await s.reserve_indices(namespace, rec.study_id, rec.uid, 10)
        await enqueue(s, namespace, rec)
        await claim(s, namespace, rec, 1, max_trials=4)  # the enqueued trial: 1 handed out
        assert len((await fast(s, namespace, rec, [0, 1], max_trials=4)).trials) == 2
        over = await fast(s, namespace, rec, [2, 3], max_trials=4)
        assert (over.fallback, over.trials) == ("MAX_TRIALS", [])
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 3
        assert len((await fast(s, namespace, rec, [2], max_trials=4)).trials) == 1
        assert (await fast(s, namespace, rec, [3], max_trials=4)).fallback == "MAX_TRIALS"
        assert nothing(await claim(s, namespace, rec, 1, max_trials=4))

    store.run(body)


def test_a_one_step_ask_records_its_request_id_and_a_retry_is_replayed(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record()
        await s.create_study(namespace, rec)
        await s.reserve_indices(namespace, rec.study_id, rec.uid, 10)
        first = await fast(s, namespace, rec, [0, 1], request_id=rid("ask-f", "a1"))
        # The retry of the same ask falls back, and claim_trials replays the first answer.
        retry = await fast(s, namespace, rec, [2, 3], request_id=rid("ask-f", "a2"))
        assert (retry.fallback, retry.trials) == ("REQUEST_ID", [])
        replayed = await claim(s, namespace, rec, 2, request_id=rid("ask-f", "a2"))
        assert replayed.replayed and replayed.trials == first.trials
        assert (await s.get_study(namespace, rec.study_id)).trial_count == 2
        # An id used by another kind of call also falls back; claim_trials refuses it.
        await s.create_trial(
            namespace, rec.study_id, Trial(0, TrialState.WAITING, {"lr": 0.5}), request_id=rid("x")
        )
        await claim(s, namespace, rec, 1)  # take the enqueued trial out of the way
        assert (await fast(s, namespace, rec, [4], request_id=rid("x", "a3"))).fallback == (
            "REQUEST_ID"
        )
        with pytest.raises(InvalidArgument) as e:
            await claim(s, namespace, rec, 1, request_id=rid("x", "a3"))
        assert e.value.reason == "REQUEST_ID_REUSED"

    store.run(body)


def test_reserving_and_one_step_asks_on_a_missing_or_recreated_study(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        ghost = make_record("ghost")
        with pytest.raises(NotFound):
            await s.reserve_indices(namespace, "ghost", ghost.uid, 4)
        with pytest.raises(NotFound):
            await fast(s, namespace, ghost, [0])
        old = make_record("again")
        await s.create_study(namespace, old)
        await s.reserve_indices(namespace, "again", old.uid, 4)
        await s.delete_study(namespace, "again")
        new = make_record("again")
        await s.create_study(namespace, new)
        with pytest.raises(StaleStudy):
            await s.reserve_indices(namespace, "again", old.uid, 4)
        with pytest.raises(StaleStudy):
            await fast(s, namespace, old, [0])
        assert (await s.get_study(namespace, "again")).trial_count == 0
        assert await s.reserve_indices(namespace, "again", new.uid, 4) == 0

    store.run(body)


def test_trials_record_the_sampler_index_their_point_came_from(
    store: StoreHarness, namespace: str
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


# --- request ids with payload fingerprints ---------------------------------------------------


def frid(value: str, fingerprint: str, attempt: str = "") -> RequestId:
    """A request id whose call's payload has ``fingerprint``."""
    return RequestId(value, 100.0, attempt=attempt, fingerprint=fingerprint)


async def mismatch(call: Awaitable[object], kind: str) -> None:
    """``call`` is refused as a request id replayed with another payload."""
    with pytest.raises(InvalidArgument) as e:
        await call
    assert (e.value.reason, e.value.field) == ("REQUEST_ID_MISMATCH", "request_id")
    assert kind in e.value.message


def test_a_request_id_replayed_with_another_payload_is_refused_and_changes_nothing(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec = make_record("fp")
        made = await s.create_study(namespace, rec, request_id=frid("c", "A"))
        await mismatch(
            s.create_study(namespace, make_record("fp"), request_id=frid("c", "B")), "CreateStudy"
        )
        assert await s.create_study(namespace, make_record("fp"), request_id=frid("c", "A")) == made
        # An ask, answered in two steps: a retry with another payload is neither replayed...
        first = await claim(s, namespace, rec, 2, request_id=frid("a", "A", "a1"), now=1.0)
        handed = await commit(s, namespace, rec, first, request_id=frid("a", "A", "a1"), now=1.0)
        await mismatch(claim(s, namespace, rec, 2, request_id=frid("a", "B", "a2")), "Suggest")
        again = await claim(s, namespace, rec, 2, request_id=frid("a", "A", "a3"), now=2.0)
        assert again.replayed and [t.number for t in again.trials] == [t.number for t in handed]
        # A one-step ask records its payload too; a changed retry falls back and is refused.
        first_fast = await fast(s, namespace, rec, [50], request_id=frid("f", "A"), now=2.0)
        (fast_trial,) = first_fast.trials
        assert (await fast(s, namespace, rec, [51], request_id=frid("f", "B"))).fallback
        await mismatch(claim(s, namespace, rec, 1, request_id=frid("f", "B", "f2")), "Suggest")
        # ... nor taken over while in progress, nor after its claim lapsed.
        busy = await claim(s, namespace, rec, 1, request_id=frid("b", "A", "b1"), now=3.0, ttl=5)
        assert busy.indices == [2]
        await mismatch(
            claim(s, namespace, rec, 1, request_id=frid("b", "B", "b2"), now=4.0), "Suggest"
        )
        await mismatch(
            claim(s, namespace, rec, 1, request_id=frid("b", "B", "b2"), now=20.0), "Suggest"
        )
        # A tell with another outcome, an import with other parameters, a deletion.
        number = handed[0].number

        async def tell(loss: float, fingerprint: str) -> Trial:
            return await s.complete_trial(
                namespace,
                rec.study_id,
                number,
                values={"loss": loss, "acc": 0.0},
                failure_reason=None,
                metadata={},
                now=22.0,
                score=loss,
                request_id=frid("t", fingerprint),
            )

        told = await tell(0.5, "A")
        await mismatch(tell(0.9, "B"), "CompleteTrial")
        assert await tell(0.5, "A") == told == await s.get_trial(namespace, rec.study_id, number)
        queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, create_time=1.0)
        made_trial = await s.create_trial(
            namespace, rec.study_id, queued, request_id=frid("ct", "A"), now=23.0
        )
        other = Trial(0, TrialState.WAITING, {"lr": 0.25}, create_time=1.0)
        await mismatch(
            s.create_trial(namespace, rec.study_id, other, request_id=frid("ct", "B"), now=24.0),
            "CreateTrial",
        )
        count = (await s.get_study(namespace, rec.study_id)).trial_count
        assert count == made_trial.number == fast_trial.number + 1
        assert (await s.best_trial(namespace, rec.study_id)) == told
        await s.delete_study(namespace, "fp", request_id=frid("d", "A"), now=25.0)
        again_rec = make_record("fp")
        await s.create_study(namespace, again_rec)
        await mismatch(
            s.delete_study(namespace, "fp", request_id=frid("d", "B"), now=26.0), "DeleteStudy"
        )
        await s.delete_study(namespace, "fp", request_id=frid("d", "A"), now=26.0)  # a retry
        assert (await s.get_study(namespace, "fp")).uid == again_rec.uid  # still there

    store.run(body)


def test_request_ids_without_a_fingerprint_are_checked_by_id_alone(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        # Records written without one (as before fingerprints existed) answer any payload, and
        # a call without one is answered by any record.
        rec = make_record("old")
        made = await s.create_study(namespace, rec, request_id=rid("c"))
        retry = await s.create_study(namespace, make_record("old"), request_id=frid("c", "B"))
        assert retry == made
        first = await claim(s, namespace, rec, 1, request_id=rid("a", "a1"), now=1.0)
        (trial,) = await commit(s, namespace, rec, first, request_id=rid("a", "a1"), now=1.0)
        again = await claim(s, namespace, rec, 1, request_id=frid("a", "B", "a2"), now=2.0)
        assert again.replayed and [t.number for t in again.trials] == [trial.number]
        queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, create_time=1.0)
        made_trial = await s.create_trial(
            namespace, rec.study_id, queued, request_id=frid("ct", "A"), now=3.0
        )
        replayed = await s.create_trial(namespace, rec.study_id, queued, request_id=rid("ct"))
        assert replayed == made_trial

    store.run(body)


# --- twins of a re-issued point --------------------------------------------------------------


def test_a_late_result_after_a_reissue_leaves_twins_that_name_each_other(
    store: StoreHarness, namespace: str
) -> None:
    async def body(s: Store) -> None:
        rec, (t1, t2, t3) = await lease_study(s, namespace, 3)
        sid = rec.study_id
        # Trial 1's point is handed out again as trial 4 (both name each other at once)...
        c = await claim(s, namespace, rec, 1, now=11.0, capacity=3)
        (twin,) = await commit(s, namespace, rec, c, now=11.0)
        assert (twin.number, twin.original_number, twin.reissued_number) == (4, 1, None)
        expired = await s.get_trial(namespace, sid, 1)
        assert (expired.state, expired.reissued_number, expired.original_number) == (
            TrialState.FAILED,
            4,
            None,
        )
        # ... and the late result of trial 1 keeps the mark: two COMPLETED twins of one point.
        late = await complete(s, namespace, rec, 1, 0.5)
        assert (late.state, late.reissued_number) == (TrialState.COMPLETED, 4)
        # Trial 2's point is claimed, its late result comes, then the claim is committed.
        c = await claim(s, namespace, rec, 1, now=12.0, capacity=3)
        assert [r.source for r in c.reissues] == [2]
        await complete(s, namespace, rec, 2, 0.25)
        (twin2,) = await commit(s, namespace, rec, c, now=12.0)
        assert (twin2.number, twin2.original_number) == (5, 2)
        # Trial 3's late result comes first: its point is withdrawn, so it has no twin.
        await complete(s, namespace, rec, 3, 0.75)
        assert nothing(await claim(s, namespace, rec, 1, now=13.0, capacity=3))
        listed, _ = await s.list_trials(namespace, sid, page_size=10)
        got = [(t.number, t.state, t.original_number, t.reissued_number) for t in listed]
        C, R = TrialState.COMPLETED, TrialState.RUNNING
        assert got == [
            (1, C, None, 4),
            (2, C, None, 5),
            (3, C, None, None),
            (4, R, 1, None),
            (5, R, 2, None),
        ]
        for t in listed:
            assert await s.get_trial(namespace, sid, t.number) == t
        # Untouched trials carry no mark.
        assert (t1.reissued_number, t2.original_number, t3.reissued_number) == (None,) * 3

    store.run(body)
