"""The orchestration of asks and of the writes checked against a study's spec.

:class:`Asker` is what the handlers of ``TuningService`` call once a request is validated and
converted: it hands out trials (claim, compute, commit; or one store call from indices reserved
ahead), keeps the claim of a slow computation alive, and retries when the study was re-created
under its cached spec or when another ask took its claim. Its :class:`~._trials.Trials`
validates writes of single trials (tells, reports) in step with the store.
:class:`~._spec_cache.SpecCache` is the bounded per-replica cache of the study records they read.

It takes and returns core types (``StudyRecord``, ``Trial``, ``RequestId``...) and raises typed
errors (``core.errors``), never protobuf or gRPC (``tests/test_layers.py`` checks it): the
servicer converts, and maps the errors to statuses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from hyperdial_server.core import names
from hyperdial_server.core.early_stopping import Hyperband, PercentileRule, SuccessiveHalving
from hyperdial_server.core.errors import (
    FailedPrecondition,
    NotFound,
    StudyComplete,
    Unavailable,
)
from hyperdial_server.core.history import rung_measurements, step_measurements
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord, StudySpec
from hyperdial_server.core.trial import Trial
from hyperdial_server.samplers import Sampler, get_sampler
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._reservations import IndexReservations
from hyperdial_server.service._spec_cache import SPEC_CACHE_BYTES, SpecCache
from hyperdial_server.service._trials import Trials
from hyperdial_server.store import (
    DEFAULT_CLAIM_TTL,
    Claim,
    Fallback,
    RequestId,
    StaleStudy,
    Store,
)

# The servicer's logger: these lines are the handlers' own, for operators.
logger = logging.getLogger("hyperdial.service")

# An ask (or a checked write) retries this often when the study was re-created under it or its
# claim expired.
_ASK_ATTEMPTS = 3
#: ``ErrorInfo.reason`` of the UNAVAILABLE an ask answers when every attempt lost its claim to
#: other asks (or the study was re-created under it); the worker retries with the same
#: ``request_id``.
ASK_CONTENDED = "ASK_CONTENDED"
#: Renewals of an ask's claim per claim TTL while its points are computed: two may be lost or
#: late before the claim lapses.
_CLAIM_RENEWALS_PER_TTL = 3

T = TypeVar("T")


class Asker:
    """Hands out trials and writes checked results, for one replica.

    Args:
        store: Where study state lives.
        clock: Seconds since the epoch.
        samplers: Where model-based samplers run; :meth:`close` stops them.
        lease_timeout: Lease of the RUNNING trials of a study created without one, in seconds.
        claim_ttl: Seconds an ask's claim lasts unless renewed (not tied to the lease).
        spec_cache_bytes: Most bytes of study specs cached (estimated; at least one is kept).
        observe: Records a sampler's compute seconds, by algorithm name (a metric; called only
            for points handed out).

    Attributes:
        specs: The replica's cache of study records.
        trials: Checked writes and reads of single trials, on the same cache.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        samplers: SamplerWorkers,
        lease_timeout: float,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        spec_cache_bytes: int = SPEC_CACHE_BYTES,
        observe: Callable[[str, float], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._samplers = samplers
        self._lease_timeout = lease_timeout
        self._claim_ttl = claim_ttl
        self._observe = observe
        # Only for a store with one-step asks (its reserve_indices is the default otherwise).
        self._reserved = IndexReservations(store.reserve_indices) if store.one_step_asks else None
        self.specs = SpecCache(spec_cache_bytes)
        self.trials = Trials(
            store, clock=clock, specs=self.specs, load=self._load, lease=self.lease
        )

    def close(self) -> None:
        """Stops the sampler workers."""
        self._samplers.close()

    def wait_closed(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for the sampler workers to be gone; whether they are."""
        return self._samplers.wait_closed(timeout)

    # -- studies ---------------------------------------------------------------------------

    async def study(self, namespace: str, study_id: str) -> StudyRecord:
        """The study's immutable record, from the cache if possible (``NotFound`` if none)."""
        record = self.specs.get(namespace, study_id)
        if record is None:
            record = await self._load(namespace, study_id)
        return record

    async def _load(self, namespace: str, study_id: str) -> StudyRecord:
        record = await self._store.get_study(namespace, study_id)
        self.specs.put(namespace, record)
        return record

    async def create_study(
        self, namespace: str, study_id: str, spec: StudySpec, request_id: RequestId | None
    ) -> StudyRecord:
        """Creates a study (or answers the recorded creation of ``request_id``) and caches it."""
        if spec.lease_timeout is None:
            # Stored with the study, so every replica applies the same lease to it.
            spec = dataclasses.replace(spec, lease_timeout=self._lease_timeout)
        record = StudyRecord(study_id, spec, create_time=self._clock(), uid=new_uid())
        stored = await self._store.create_study(namespace, record, request_id=request_id)
        self.specs.put(namespace, stored)
        return stored

    async def delete_study(
        self, namespace: str, study_id: str, request_id: RequestId | None
    ) -> None:
        """Deletes a study, and its cached record first."""
        self.specs.forget(namespace, study_id)
        await self._store.delete_study(
            namespace, study_id, request_id=request_id, now=self._clock()
        )

    def lease(self, spec: StudySpec) -> float:
        """Seconds of the lease of the study's RUNNING trials."""
        return spec.lease_timeout or self._lease_timeout

    # -- ask -------------------------------------------------------------------------------

    async def ask(
        self,
        namespace: str,
        study_id: str,
        count: int,
        client_id: str,
        request_id: RequestId | None,
    ) -> list[Trial]:
        """Hands out 1 to ``count`` RUNNING trials of a study to ``client_id`` (resuming those
        it holds first); the recorded ones when ``request_id`` was answered before.

        Raises:
            StudyComplete: No trial is left to hand out (``STUDY_COMPLETE``).
            Unavailable: Every attempt lost its claim (``ASK_CONTENDED``), or the store's.
            NotFound: No such study.
        """
        handed: list[Trial] = []
        pending = 0
        # Looked up inline: one coroutine less per ask when the spec is cached (the hot path).
        record = self.specs.get(namespace, study_id)
        if record is None:
            record = await self._load(namespace, study_id)
        for _ in range(_ASK_ATTEMPTS):
            try:
                replayed, pending = await self._ask(
                    namespace, record, count - len(handed), client_id, request_id, handed
                )
                if replayed is not None:
                    handed = replayed
                break
            except StaleStudy:
                # Deleted and created again since we cached it: read it afresh and retry.
                self.specs.forget(namespace, study_id)
                record = await self._load(namespace, study_id)
            except FailedPrecondition as e:
                # Our claim was taken by another ask (this replica stalled past its deadline):
                # claim again.
                if e.reason != "CLAIM_EXPIRED":
                    raise
            except NotFound:
                self.specs.forget(namespace, study_id)
                raise
        else:
            # Not the caller's fault, and a retry of the same call may well succeed: a code
            # workers retry, not the store's CLAIM_EXPIRED (see docs/protocol.md).
            raise Unavailable(
                f"this ask of study {names.study_name(study_id)!r} lost its claim to other asks "
                f"(or the study was re-created under it) {_ASK_ATTEMPTS} times in a row; retry "
                "it with the same request_id",
                reason=ASK_CONTENDED,
            )
        if not handed:
            raise StudyComplete(
                _complete_message(record, pending),
                reason="STUDY_COMPLETE",
                metadata={"pending": str(pending)},
            )
        return handed

    async def _ask(
        self,
        namespace: str,
        record: StudyRecord,
        count: int,
        client_id: str,
        request_id: RequestId | None,
        handed: list[Trial],
    ) -> tuple[list[Trial] | None, int]:
        """One claim (and commit) of up to ``count`` trials, appended to ``handed`` as soon as
        they are RUNNING, so that a failed commit does not lose the claim's trials.

        Returns:
            The recorded answer when ``request_id`` was answered before (else ``None``), and
            the study's pending count when nothing was handed out.
        """
        spec = record.spec
        sampler = get_sampler(spec.algorithm)
        lease = self.lease(spec)
        # Not tied to the trials' lease: with a lease of a few seconds, a claim as short would
        # lapse whenever this replica's event loop stalls for a second on a busy node. A
        # computing ask renews it; it only bounds how long a dead replica holds the points.
        claim_ttl = self._claim_ttl
        reserved = self._reserved
        if reserved is not None and not handed and sampler.independent_draws:
            key = (namespace, record.study_id, record.uid)
            if reserved.should_try(key):
                fast = await self._ask_reserved(
                    reserved, key, record, sampler, count, client_id, request_id, lease
                )
                if fast is not None:
                    handed += fast
                    return None, 0
        claim = await self._store.claim_trials(
            namespace,
            record.study_id,
            record.uid,
            count,
            capacity=sampler.capacity(spec),
            max_trials=spec.max_trials,
            client_id=client_id,
            now=self._clock(),
            claim_ttl=claim_ttl,
            lease_timeout=lease,
            request_id=_with_handed(request_id, handed),
        )
        if claim.replayed:
            return claim.trials, 0
        handed += claim.trials
        points: list[Params] = []
        if claim.indices:
            if sampler.needs_history:
                # Reading the history and computing take as long as they take (a busy node
                # runs the workers at a low priority): the claim is renewed meanwhile.
                points, seconds = await self._while_claimed(
                    namespace,
                    record,
                    claim,
                    claim_ttl,
                    request_id,
                    self._model_points(namespace, record, claim),
                )
                self._observe(spec.algorithm.value, seconds)
            else:
                points, seconds = _suggest_here(sampler, spec, claim.indices)
                self._observe(spec.algorithm.value, seconds)
        if claim.indices or claim.reissues:
            handed += await self._store.commit_trials(
                namespace,
                record.study_id,
                record.uid,
                claim.token,
                list(zip(claim.indices, points, strict=True)),
                client_id=client_id,
                now=self._clock(),
                lease_timeout=lease,
                reissues=claim.reissues,
                request_id=_with_handed(request_id, handed),
            )
        return None, claim.pending

    async def _ask_reserved(
        self,
        reserved: IndexReservations,
        key: tuple[str, str, str],
        record: StudyRecord,
        sampler: Sampler,
        count: int,
        client_id: str,
        request_id: RequestId | None,
        lease: float,
    ) -> list[Trial] | None:
        """An ask in one store call, from indices this replica reserved ahead (samplers of
        independent draws: see ``_reservations``); ``None`` when the ask needs the two steps
        of ``_ask``."""
        spec = record.spec
        indices = await reserved.take(key, count)
        points, seconds = _suggest_here(sampler, spec, indices)
        fast = await self._store.commit_reserved(
            key[0],
            record.study_id,
            record.uid,
            list(zip(indices, points, strict=True)),
            max_trials=spec.max_trials,
            client_id=client_id,
            now=self._clock(),
            lease_timeout=lease,
            request_id=request_id,
        )
        if fast.fallback:
            # A retry or a client with trials to resume says nothing of the next asks.
            if fast.fallback not in (Fallback.REQUEST_ID, Fallback.CLIENT_HOLDS_TRIALS):
                reserved.fell_back(key)
            return None
        # Counted once the points are handed out: a fallback computes them again.
        self._observe(spec.algorithm.value, seconds)
        return fast.trials

    async def _model_points(
        self, namespace: str, record: StudyRecord, claim: Claim
    ) -> tuple[list[Params], float]:
        """A model-based sampler's points for the claim's indices, and its compute seconds."""
        # The history: every trial of a study of up to MODEL_HISTORY_BEST + _RECENT trials;
        # of a longer one, the best trials, the ones changed last and the RUNNING ones: an ask
        # costs the same at 100,000 trials as at 300, and the model takes at most 200 of them
        # anyway (``samplers._bayes.MAX_MODEL_TRIALS``). Still encoded when the store keeps
        # them so (the sampler's worker decodes them). Stopped and infeasible trials too:
        # they tell the model where results were poor or impossible, and the sampler indices
        # they record keep concurrent asks apart (an index no trial records counts as an ask
        # in flight).
        page = await self._store.model_history(
            namespace,
            record.study_id,
            best=MODEL_HISTORY_BEST,
            recent=MODEL_HISTORY_RECENT,
            running=MODEL_HISTORY_RUNNING,
            # Several objectives: no trial has a score; the best are the Pareto front's.
            front=len(record.spec.objectives) > 1,
            now=self._clock(),
        )
        pages = [page]
        # The values the policy compared trials by (successive halving and Hyperband: at the
        # rungs; percentile rules: at the steps where trials stopped): the model compares a
        # stopped trial with the completed ones there. One read of what the policy keeps
        # anyway, the values of the page's trials only; no curve is read.
        measurements = None
        policy = record.spec.early_stopping
        if policy is not None and isinstance(policy.rule, (SuccessiveHalving, Hyperband)):
            rungs = await self._store.rung_values(namespace, record.study_id, page.numbers())
            measurements = rung_measurements(policy, rungs)
        elif policy is not None and isinstance(policy.rule, PercentileRule):
            steps = await self._store.percentile_values(namespace, record.study_id, page.numbers())
            measurements = step_measurements(policy, steps)
        # Model-based samplers are CPU-heavy: in worker processes, so this replica keeps
        # answering other calls meanwhile.
        return await self._samplers.suggest(
            record.spec.algorithm,
            record.spec,
            claim.indices,
            pages,
            measurements,
            study=f"{namespace}/{record.study_id}",
        )

    async def _while_claimed(
        self,
        namespace: str,
        record: StudyRecord,
        claim: Claim,
        claim_ttl: float,
        request_id: RequestId | None,
        work: Coroutine[Any, Any, T],
    ) -> T:
        """Runs ``work`` while a background task renews ``claim`` every
        ``claim_ttl / _CLAIM_RENEWALS_PER_TTL`` seconds, so that the claim lasts as long as the
        work, however slow, yet lapses soon after this replica dies.

        Raises:
            FailedPrecondition: The claim was lost (``CLAIM_EXPIRED``, retried by
                :meth:`ask`); ``work`` was cancelled, as its points could not be used.
            Unavailable: A retry of the ask took it over (``REQUEST_IN_PROGRESS``).
            Whatever ``work`` raises.
        """
        task = asyncio.ensure_future(work)
        renewal = asyncio.create_task(
            self._renew_claim(namespace, record, claim, claim_ttl, request_id)
        )
        try:
            await asyncio.wait((task, renewal), return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            renewal.result()  # the renewal only ends by raising: the claim is lost
            raise AssertionError("unreachable")
        finally:
            # On every path (the caller's cancellation too), neither task outlives the ask. A
            # cancelled computation stops being awaited; its worker finishes it and drops it.
            task.cancel()
            renewal.cancel()
            await asyncio.gather(task, renewal, return_exceptions=True)

    async def _renew_claim(
        self,
        namespace: str,
        record: StudyRecord,
        claim: Claim,
        claim_ttl: float,
        request_id: RequestId | None,
    ) -> None:
        """Renews ``claim`` periodically until cancelled; returns only by raising once the
        claim is lost (see :meth:`Store.renew_claim`)."""
        while True:
            await asyncio.sleep(claim_ttl / _CLAIM_RENEWALS_PER_TTL)
            try:
                await self._store.renew_claim(
                    namespace,
                    record.study_id,
                    record.uid,
                    claim.token,
                    claim.indices,
                    now=self._clock(),
                    claim_ttl=claim_ttl,
                    reissues=claim.reissues,
                    request_id=request_id,
                )
            except Unavailable as e:
                if e.reason == "REQUEST_IN_PROGRESS":
                    raise
                # The store did not answer this once; the claim may well hold still, and the
                # next renewal or the commit tells.
                logger.warning("could not renew an ask's claim on %s: %s", record.study_id, e)


#: A long study's best trials that a model-based sampler reads (``Store.model_history``): of
#: lowest score, or with several objectives on the Pareto front.
MODEL_HISTORY_BEST = 150
#: A long study's trials changed last that a model-based sampler reads.
MODEL_HISTORY_RECENT = 150
#: A long study's RUNNING trials (of highest number) that a model-based sampler reads.
MODEL_HISTORY_RUNNING = 1000


def new_uid() -> str:
    """A random 64-bit id in hex: of a study's incarnation, or of one execution of an ask."""
    # Tells attempts apart; not a secret, so no system call for entropy.
    return f"{random.getrandbits(64):016x}"


def _suggest_here(
    sampler: Sampler, spec: StudySpec, indices: Sequence[int]
) -> tuple[list[Params], float]:
    """An index-based sampler's points, computed on the event loop (microseconds), and the
    seconds they took (for ``hyperdial_suggestion_compute_seconds``)."""
    started = time.perf_counter()
    points = sampler.suggest(spec, indices)
    return points, time.perf_counter() - started


def _with_handed(request_id: RequestId | None, handed: list[Trial]) -> RequestId | None:
    """``request_id`` with the trials handed out so far by this execution of the ask."""
    if request_id is None:
        return None
    return dataclasses.replace(request_id, handed=tuple(t.number for t in handed))


def _complete_message(record: StudyRecord, pending: int = 0) -> str:
    spec = record.spec
    name = names.study_name(record.study_id)
    if spec.algorithm.value == "GRID":
        why = "every grid point has been handed out"
        if spec.max_trials:
            why += f" or max_trials ({spec.max_trials}) was reached"
    else:
        why = f"max_trials ({spec.max_trials}) was reached"
    message = f"study {name!r} is complete: {why}; no trial is left to hand out"
    if pending:
        message += (
            f" now, but {pending} trials are still running or being handed out; the point of"
            " any whose lease expires is handed out again to a later ask"
        )
    return message
