"""The harness and helpers of the ``Store`` contract suite.

:class:`StoreHarness` runs a test's coroutine on the store under test; the functions build
studies and drive the store's calls with the arguments most tests share.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import pytest

from hyperdial_server.core.errors import InvalidArgument
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
from hyperdial_server.store import Claim, FastAsk, RequestId, Store

#: A test's body: a coroutine run on the store under test.
Body = Callable[[Store], Awaitable[None]]
#: Makes a handle on the store under test: a store, or an awaitable of one.
StoreFactory = Callable[[], "Store | Awaitable[Store]"]


class StoreHarness:
    """Runs contract tests' coroutines on the store under test, each test in its own event loop.

    What the ``store`` fixture of a contract test class returns (see
    :class:`ContractBase`).

    Args:
        factory: Makes a handle on the store under test. It is called inside the test's event
            loop: once for the store the test's body gets, and again for each :meth:`open`.
            Each call returns a new handle on the same data, with its own connections, as
            another server replica would have (for example ``RedisStore.from_url(url)``). It
            may be a coroutine function.
        shared: The factory is called once per test and every :meth:`open` returns that same
            store: for a store living in the test's process (``MemoryStore``), whose
            replicas are one object.
    """

    def __init__(self, factory: StoreFactory, *, shared: bool = False) -> None:
        self._factory = factory
        self._shared = shared
        self._opened: list[Store] = []

    async def open(self) -> Store:
        """Another handle on the test's data, as another replica would have.

        The harness closes it when the test ends.
        """
        if self._shared and self._opened:
            return self._opened[0]
        made = self._factory()
        store = made if isinstance(made, Store) else await made
        self._opened.append(store)
        return store

    def run(self, body: Body) -> None:
        """Runs ``body(store)`` to the end in a new event loop, then closes every store it
        opened, whether the body passed, failed or skipped."""

        async def main() -> None:
            try:
                await body(await self.open())
            finally:
                opened, self._opened = self._opened, []
                for store in opened:
                    await store.close()

        asyncio.run(main())


class ContractBase:
    """Fixtures of every contract test class.

    A subclass provides the fixture ``store``, a :class:`StoreHarness` of the store under
    test; ``namespace`` has a default (below) that a subclass may override.
    """

    @pytest.fixture
    def namespace(self) -> str:
        """A namespace no other test uses: ``t-`` and a random UUID.

        Some tests also use namespaces made of it and a suffix (``-other``, ``-b``, ``-c``).
        """
        return f"t-{uuid.uuid4().hex}"


@runtime_checkable
class StudyLimited(Protocol):
    """A store whose most studies per namespace is its attribute ``max_studies``, as in
    ``MemoryStore`` and ``RedisStore``: the test of that limit sets it (and skips for a store
    without it)."""

    max_studies: int


def skip_unless_one_step_asks(s: Store) -> None:
    """Skips the test unless the store makes asks in one step (``Store.one_step_asks``)."""
    if not s.one_step_asks:
        pytest.skip(
            f"{type(s).__name__}.one_step_asks is false: this store asks in two steps only "
            "(reserve_indices and commit_reserved are left to their defaults)"
        )


# --- studies and trials ----------------------------------------------------------------------


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
    """A study of :func:`make_space` with two objectives and a new ``uid``."""
    spec = StudySpec(
        space=make_space(),
        objectives=(Objective("loss"), Objective("acc", maximize=True)),
        algorithm=algorithm,
        seed=2**70 + 1,
        max_trials=max_trials,
        grid_resolution=7 if algorithm is Algorithm.GRID else None,
    )
    return StudyRecord(study_id, spec, create_time=1_700_000_000.123456, uid=uuid.uuid4().hex)


def point(index: int) -> Params:
    """The point a test computes for sampler index ``index``."""
    return {"lr": 0.001 * (index + 1), "layers": index % 8 + 1, "opt": "adam"}


def typed(params: Params | dict[str, float] | None) -> object:
    """Params with types and exact float text, so that 1 != 1.0 and 0.0 != -0.0."""
    if params is None:
        return None
    return sorted((k, type(v).__name__, repr(v)) for k, v in params.items())


# --- asks ------------------------------------------------------------------------------------


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
    """``claim_trials`` of ``rec``, with a claim TTL ``ttl`` and a lease ``lease``."""
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
    """``commit_trials`` of the claim ``c``, with :func:`point` of each of its indices.

    ``request_id`` gets ``handed``: the trials the claim handed out.
    """
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
    """``renew_claim`` of the claim ``c`` until ``now + ttl``."""
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
    """A one-step ask (``commit_reserved``) of :func:`point` of each of ``indices``."""
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


# --- trials ----------------------------------------------------------------------------------


async def enqueue(s: Store, ns: str, rec: StudyRecord, params: Params | None = None) -> Trial:
    """Enqueues a WAITING trial of ``params`` (``{"lr": 0.5}`` by default)."""
    trial = Trial(0, TrialState.WAITING, params or {"lr": 0.5}, create_time=5.0)
    return await s.create_trial(ns, rec.study_id, trial)


async def complete(
    s: Store, ns: str, rec: StudyRecord, number: int, loss: float, *, score: float | None = None
) -> Trial:
    """Completes trial ``number`` with ``loss`` (and ``acc`` 0.5) at time 9."""
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
    """Fails trial ``number`` (reason ``oom``) at time 9."""
    return await s.complete_trial(
        ns, rec.study_id, number, values=None, failure_reason="oom", metadata={}, now=9.0
    )


async def running_trials(s: Store, ns: str, rec: StudyRecord, n: int) -> list[Trial]:
    """``n`` new RUNNING trials from sampler indices."""
    return await commit(s, ns, rec, await claim(s, ns, rec, n))


async def lease_study(
    s: Store, ns: str, n: int, *, max_trials: int | None = None, lease: float = 10.0
) -> tuple[StudyRecord, list[Trial]]:
    """A study with ``n`` RUNNING trials from indices, handed out at 0 with a ``lease``."""
    rec = make_record(max_trials=max_trials)
    await s.create_study(ns, rec)
    c = await claim(s, ns, rec, n, max_trials=max_trials, now=0.0, lease=lease)
    return rec, await commit(s, ns, rec, c, now=0.0, lease=lease)


async def mixed_study(s: Store, ns: str) -> tuple[StudyRecord, dict[int, TrialState]]:
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


async def trial_pages(
    s: Store, ns: str, study_id: str, states: list[TrialState] | None, size: int
) -> list[tuple[list[int], bool]]:
    """Every page of ``list_trials`` of pages of ``size``: the numbers of each, and ``more``."""
    out = []
    after = 0
    while True:
        page, more = await s.list_trials(ns, study_id, states=states, page_size=size, after=after)
        out.append(([t.number for t in page], more))
        if not more:
            return out
        after = page[-1].number


# --- request ids -----------------------------------------------------------------------------


def rid(value: str, attempt: str = "") -> RequestId:
    """A request id kept 100 seconds, of the execution ``attempt``."""
    return RequestId(value, 100.0, attempt=attempt)


def frid(value: str, fingerprint: str, attempt: str = "") -> RequestId:
    """A request id whose call's payload has ``fingerprint``."""
    return RequestId(value, 100.0, attempt=attempt, fingerprint=fingerprint)


async def mismatch(call: Awaitable[object], kind: str) -> None:
    """``call`` is refused as a request id replayed with another payload."""
    with pytest.raises(InvalidArgument) as e:
        await call
    assert (e.value.reason, e.value.field) == ("REQUEST_ID_MISMATCH", "request_id")
    assert kind in e.value.message
