"""The ``hyperdial.v1.TuningService`` handlers.

Each handler validates its request, converts it to core types, calls the store and samplers,
and converts the answer back. Typed errors become gRPC statuses in one place (``_status``);
anything else is a bug, logged with its traceback and answered INTERNAL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2, tuning_service_pb2_grpc
from hyperdial_server.core import limits, names
from hyperdial_server.core.errors import (
    FailedPrecondition,
    HyperdialError,
    InvalidArgument,
    NotFound,
    StudyComplete,
    Unavailable,
)
from hyperdial_server.core.pareto import pareto_front
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.samplers import Sampler, get_sampler
from hyperdial_server.service import _convert, _pagination, _validate
from hyperdial_server.service._admission import Admission, AdmissionLimits
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._context import current_namespace
from hyperdial_server.service._metrics import observe_suggestion
from hyperdial_server.service._registration import MalformedRequest
from hyperdial_server.service._reservations import IndexReservations
from hyperdial_server.service._status import to_status
from hyperdial_server.store import (
    DEFAULT_CLAIM_TTL,
    Claim,
    RequestId,
    StaleStudy,
    Store,
    TrialPage,
)

logger = logging.getLogger("hyperdial.service")

#: The namespace of every study until tenants exist.
DEFAULT_NAMESPACE = "default"
#: Most study specs cached per replica (specs are immutable; the uid check catches re-creation).
SPEC_CACHE_SIZE = 10_000
#: Most bytes (estimated, see ``_spec_weight``) of the specs cached per replica: near the
#: 2 MiB limit a spec takes about 3 MB of replica memory, so the count alone could reach 30 GB.
SPEC_CACHE_BYTES = 256 * 1024 * 1024
#: Specs heavier than this (estimated bytes) are converted to protobuf in a thread, so that one
#: big study does not hold up every other call of the replica for tens of milliseconds.
OFF_LOOP_SPEC_BYTES = 256 * 1024
#: Pages of more trials than this are decoded and converted off the event loop (1000 trials
#: take ~50 ms of CPU, mostly JSON decoding).
OFF_LOOP_TRIALS = 100
# An ask retries this often when the study was re-created under it or its claim expired.
_ASK_ATTEMPTS = 3
#: ``ErrorInfo.reason`` of the UNAVAILABLE an ask answers when every attempt lost its claim to
#: other asks (or the study was re-created under it); the worker retries with the same
#: ``request_id``.
ASK_CONTENDED = "ASK_CONTENDED"
#: Renewals of an ask's claim per claim TTL while its points are computed: two may be lost or
#: late before the claim lapses.
_CLAIM_RENEWALS_PER_TTL = 3

T = TypeVar("T")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def _rpc(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Turns typed errors into rich gRPC statuses and unexpected exceptions into INTERNAL."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            if isinstance(request, MalformedRequest):
                raise InvalidArgument(
                    f"the request is not a valid {request.message_type} message "
                    f"({request.error}); send it as your generated stubs serialize it",
                    reason="MALFORMED_REQUEST",
                )
            return await handler(self, request, context)
        except HyperdialError as e:
            status = to_status(e)
            await context.abort(status.code, status.details, status.trailing_metadata)
        except Exception:
            logger.exception("unexpected error in %s", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
        raise AssertionError("unreachable")  # context.abort always raises

    return wrapper


class TuningServicer(tuning_service_pb2_grpc.TuningServiceServicer):
    """Serves ``TuningService`` from a store.

    Args:
        store: Where study state lives. The servicer holds no other state than a bounded
            cache of immutable study specs, so any number of servicers (replicas) may share
            one store.
        namespace: Namespace of every study served.
        clock: Seconds since the epoch (injectable for tests).
        samplers: Where model-based samplers run; worker processes by default
            (:class:`~hyperdial_server.service._compute.SamplerWorkers`). :meth:`close` stops them.
        lease_timeout: Lease of the RUNNING trials of a study created without one, in seconds;
            a new study stores the value it got.
        request_id_ttl: Seconds the answer of a call with a ``request_id`` is kept for retries.
        claim_ttl: Seconds an ask's claim of sampler indices lasts unless renewed (an ask
            renews it while it computes; it bounds how long a dead replica holds points).
        admission: Bounds of the heavy reads (``ListTrials``, ``ListStudies``,
            ``ListOptimalTrials``) in flight; see :mod:`._admission`.
        spec_cache_bytes: Most bytes of study specs cached (estimated; at least one is kept).
    """

    def __init__(
        self,
        store: Store,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] = time.time,
        samplers: SamplerWorkers | None = None,
        lease_timeout: float = limits.DEFAULT_LEASE_TIMEOUT,
        request_id_ttl: float = limits.DEFAULT_REQUEST_ID_TTL,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        admission: AdmissionLimits | None = None,
        spec_cache_bytes: int = SPEC_CACHE_BYTES,
    ) -> None:
        self._store = store
        self._lease_timeout = lease_timeout
        self._request_id_ttl = request_id_ttl
        self._claim_ttl = claim_ttl
        self._ns = namespace
        self._clock = clock
        self._specs: OrderedDict[tuple[str, str], StudyRecord] = OrderedDict()
        # Estimated bytes of each cached spec, and their sum (bounded by spec_cache_bytes).
        self._spec_weights: dict[tuple[str, str], int] = {}
        self._spec_cache_bytes = spec_cache_bytes
        self._cached_bytes = 0
        self._admission = Admission(admission)
        # One thread decodes and converts big pages: off the event loop, so that asks and tells
        # interleave with them, and one at a time, so that they do not convoy on the GIL.
        self._converter = ThreadPoolExecutor(1, thread_name_prefix="hyperdial-convert")
        self._samplers = samplers if samplers is not None else SamplerWorkers()
        self._reserved = IndexReservations(store.reserve_indices)

    def close(self) -> None:
        """Stops the sampler workers (call after the server stopped)."""
        self._samplers.close()
        self._converter.shutdown(wait=False)

    # -- studies ---------------------------------------------------------------------------

    @_rpc
    async def CreateStudy(
        self, request: tuning_service_pb2.CreateStudyRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.CreateStudyResponse:
        study_id = names.validate_study_id(request.study_id)
        if not request.HasField("spec"):
            raise InvalidArgument("spec is missing", field="spec")
        if request.spec.ByteSize() > limits.MAX_SPEC_BYTES:
            raise InvalidArgument(
                f"spec is {request.spec.ByteSize()} bytes; the limit is {limits.MAX_SPEC_BYTES}",
                field="spec",
                reason="INVALID_SEARCH_SPACE",
            )
        spec = _convert.spec_from_proto(request.spec)
        if spec.lease_timeout is None:
            # Stored with the study, so every replica applies the same lease to it.
            spec = dataclasses.replace(spec, lease_timeout=self._lease_timeout)
        request_id = self._request_id(request.request_id, request)
        record = StudyRecord(study_id, spec, create_time=self._clock(), uid=_new_uid())
        stored = await self._store.create_study(self._namespace(), record, request_id=request_id)
        self._remember(stored)
        logger.info("created study %s (%s)", study_id, spec.algorithm.value)
        return tuning_service_pb2.CreateStudyResponse(study=_convert.study_to_proto(stored))

    @_rpc
    async def GetStudy(
        self, request: tuning_service_pb2.GetStudyRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.GetStudyResponse:
        study_id = names.parse_study_name(request.name)
        record = await self._store.get_study(self._namespace(), study_id)
        return tuning_service_pb2.GetStudyResponse(study=await _study_proto(record))

    @_rpc
    async def ListStudies(
        self, request: tuning_service_pb2.ListStudiesRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.ListStudiesResponse:
        size = _pagination.page_size(request.page_size)
        after = _pagination.decode(request.page_token)
        if after is not None and not isinstance(after, str):
            raise InvalidArgument("page_token is malformed", field="page_token")
        async with self._admission.heavy(self._namespace()):
            studies, last, more = await self._study_page(size, after)
        response = tuning_service_pb2.ListStudiesResponse(studies=studies)
        if more and studies:
            response.next_page_token = _pagination.encode(last)
        return response

    async def _study_page(
        self, size: int, after: str | None
    ) -> tuple[list[study_pb2.Study], str, bool]:
        """Up to ``size`` studies after ``after`` that fit in a response, the id of the last,
        and whether more follow.

        Read from the store in growing chunks (8, 16, 32...) and converted one by one, so that
        a page of studies with specs near the 2 MiB limit (two fit in a response) reads and
        decodes a few of them, not ``size``."""
        studies: list[study_pb2.Study] = []
        total, last, chunk = 0, "", 8
        while len(studies) < size:
            records, more = await self._store.list_studies(
                self._namespace(), min(chunk, size - len(studies)), after
            )
            for record in records:
                study = await _study_proto(record)
                total += study.ByteSize() + 6  # the field's tag and length prefix
                if total > _RESPONSE_BUDGET and studies:
                    return studies, last, True
                studies.append(study)
                last = record.study_id
            if not more or not records:
                return studies, last, False
            after, chunk = records[-1].study_id, chunk * 2
        return studies, last, True

    @_rpc
    async def DeleteStudy(
        self, request: tuning_service_pb2.DeleteStudyRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.DeleteStudyResponse:
        study_id = names.parse_study_name(request.name)
        request_id = self._request_id(request.request_id, request)
        self._forget(study_id)
        await self._store.delete_study(
            self._namespace(), study_id, request_id=request_id, now=self._clock()
        )
        logger.info("deleted study %s", study_id)
        return tuning_service_pb2.DeleteStudyResponse()

    # -- ask / tell ------------------------------------------------------------------------

    @_rpc
    async def SuggestTrials(
        self, request: tuning_service_pb2.SuggestTrialsRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.SuggestTrialsResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        count = _validate.check_count(request.count)
        client_id = _validate.check_client_id(request.client_id)
        request_id = self._request_id(request.request_id, request, ask=True)
        handed: list[Trial] = []
        pending = 0
        record = await self._study(study_id)
        for _ in range(_ASK_ATTEMPTS):
            try:
                replayed, pending = await self._ask(
                    record, count - len(handed), client_id, request_id, handed
                )
                if replayed is not None:
                    handed = replayed
                break
            except StaleStudy:
                # Deleted and created again since we cached it: read it afresh and retry.
                self._forget(study_id)
                record = await self._study(study_id)
            except FailedPrecondition as e:
                # Our claim was taken by another ask (this replica stalled past its deadline):
                # claim again.
                if e.reason != "CLAIM_EXPIRED":
                    raise
            except NotFound:
                self._forget(study_id)
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
        # Trials that do not fit stay RUNNING: with a client_id, an ask after the client has
        # told the ones it got resumes them; else their leases expire and they come back.
        return tuning_service_pb2.SuggestTrialsResponse(
            trials=_fitting([_convert.trial_to_proto(study_id, t) for t in handed])
        )

    async def _ask(
        self,
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
        lease = self._lease(spec)
        # Not tied to the trials' lease: with a lease of a few seconds, a claim as short would
        # lapse whenever this replica's event loop stalls for a second on a busy node. A
        # computing ask renews it; it only bounds how long a dead replica holds the points.
        claim_ttl = self._claim_ttl
        if not handed and sampler.independent_draws:
            key = (self._namespace(), record.study_id, record.uid)
            if self._reserved.should_try(key):
                fast = await self._ask_reserved(
                    key, record, sampler, count, client_id, request_id, lease
                )
                if fast is not None:
                    handed += fast
                    return None, 0
        claim = await self._store.claim_trials(
            self._namespace(),
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
                    record, claim, claim_ttl, request_id, self._model_points(record, claim)
                )
                observe_suggestion(spec.algorithm.value, seconds)
            else:
                points, seconds = _suggest_here(sampler, spec, claim.indices)
                observe_suggestion(spec.algorithm.value, seconds)
        if claim.indices or claim.reissues:
            handed += await self._store.commit_trials(
                self._namespace(),
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

    async def _model_points(self, record: StudyRecord, claim: Claim) -> tuple[list[Params], float]:
        """A model-based sampler's points for the claim's indices, and its compute seconds."""
        history = await self._history(record)
        # Model-based samplers are CPU-heavy: in worker processes, so this replica keeps
        # answering other calls meanwhile.
        return await self._samplers.suggest(
            record.spec.algorithm, record.spec, claim.indices, history
        )

    async def _while_claimed(
        self,
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
                ``SuggestTrials``); ``work`` was cancelled, as its points could not be used.
            Unavailable: A retry of the ask took it over (``REQUEST_IN_PROGRESS``).
            Whatever ``work`` raises.
        """
        task = asyncio.ensure_future(work)
        renewal = asyncio.create_task(self._renew_claim(record, claim, claim_ttl, request_id))
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
                    self._namespace(),
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

    async def _ask_reserved(
        self,
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
        indices = await self._reserved.take(key, count)
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
            if fast.fallback not in ("REQUEST_ID", "CLIENT_HOLDS_TRIALS"):
                self._reserved.fell_back(key)
            return None
        # Counted once the points are handed out: a fallback computes them again.
        observe_suggestion(spec.algorithm.value, seconds)
        return fast.trials

    async def _history(self, record: StudyRecord) -> list[TrialPage]:
        """Finished (completed or failed) and RUNNING trials, for model-based samplers; still
        encoded when the store keeps them so (the sampler's worker decodes them)."""
        pages: list[TrialPage] = []
        after = 0
        while True:
            page, more = await self._store.list_trial_page(
                self._namespace(),
                record.study_id,
                states=[TrialState.COMPLETED, TrialState.FAILED, TrialState.RUNNING],
                page_size=1000,
                after=after,
                now=self._clock(),
            )
            pages.append(page)
            if not more or not page.last:
                return pages
            after = page.last

    @_rpc
    async def CompleteTrial(
        self, request: tuning_service_pb2.CompleteTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.CompleteTrialResponse:
        study_id, number = names.parse_trial_name(request.name)
        metadata = _validate.check_metadata(request.metadata)
        outcome = request.WhichOneof("outcome")
        if outcome is None:
            raise InvalidArgument(
                "set final_measurement (the objective values) or failure (why the trial failed)",
                field="outcome",
            )

        def check(record: StudyRecord) -> dict[str, float] | None:
            if outcome == "final_measurement":
                return _convert.check_values(record.spec, request.final_measurement.values)
            return None

        failure = None
        if outcome == "failure":
            failure = _validate.check_failure_reason(request.failure.reason)
        request_id = self._request_id(request.request_id, request)

        async def write(record: StudyRecord, values: dict[str, float] | None) -> Trial:
            return await self._store.complete_trial(
                self._namespace(),
                study_id,
                number,
                values=values,
                failure_reason=failure,
                metadata=metadata,
                now=self._clock(),
                score=_convert.score(record.spec, values) if values is not None else None,
                uid=record.uid,
                request_id=request_id,
            )

        trial = await self._write_checked(study_id, check, write)
        return tuning_service_pb2.CompleteTrialResponse(
            trial=_convert.trial_to_proto(study_id, trial)
        )

    # -- trials ----------------------------------------------------------------------------

    @_rpc
    async def CreateTrial(
        self, request: tuning_service_pb2.CreateTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.CreateTrialResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        metadata = _validate.check_metadata(request.metadata)
        request_id = self._request_id(request.request_id, request)

        async def write(record: StudyRecord, new: tuple[Trial, float | None]) -> Trial:
            trial, score = new
            return await self._store.create_trial(
                self._namespace(),
                study_id,
                trial,
                score=score,
                uid=record.uid,
                request_id=request_id,
                now=trial.create_time,
            )

        stored = await self._write_checked(
            study_id, lambda r: self._new_trial(r, request, metadata), write
        )
        return tuning_service_pb2.CreateTrialResponse(
            trial=_convert.trial_to_proto(study_id, stored)
        )

    def _new_trial(
        self,
        record: StudyRecord,
        request: tuning_service_pb2.CreateTrialRequest,
        metadata: dict[str, str],
    ) -> tuple[Trial, float | None]:
        space = record.spec.space
        params = space.validate_point(_convert.typed_params_from_proto(space, request.parameters))
        now = self._clock()
        trial = Trial(
            number=0, state=TrialState.WAITING, params=params, create_time=now, metadata=metadata
        )
        score = None
        outcome = request.WhichOneof("outcome")
        if outcome == "final_measurement":
            trial.values = _convert.check_values(record.spec, request.final_measurement.values)
            trial.state = TrialState.COMPLETED
            trial.complete_time = now
            score = _convert.score(record.spec, trial.values)
        elif outcome == "failure":
            trial.failure_reason = _validate.check_failure_reason(request.failure.reason)
            trial.state = TrialState.FAILED
            trial.complete_time = now
        return trial, score

    @_rpc
    async def GetTrial(
        self, request: tuning_service_pb2.GetTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.GetTrialResponse:
        study_id, number = names.parse_trial_name(request.name)
        trial = await self._store.get_trial(self._namespace(), study_id, number, now=self._clock())
        return tuning_service_pb2.GetTrialResponse(trial=_convert.trial_to_proto(study_id, trial))

    @_rpc
    async def HeartbeatTrial(
        self, request: tuning_service_pb2.HeartbeatTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.HeartbeatTrialResponse:
        study_id, number = names.parse_trial_name(request.name)
        record = await self._study(study_id)
        try:
            trial = await self._store.heartbeat_trial(
                self._namespace(),
                study_id,
                number,
                now=self._clock(),
                lease_timeout=self._lease(record.spec),
            )
        except NotFound:
            self._forget(study_id)
            raise
        return tuning_service_pb2.HeartbeatTrialResponse(
            trial=_convert.trial_to_proto(study_id, trial)
        )

    @_rpc
    async def ListTrials(
        self, request: tuning_service_pb2.ListTrialsRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.ListTrialsResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        size = _pagination.page_size(request.page_size)
        states = sorted(
            {_convert.state_from_proto(s, f"states[{i}]") for i, s in enumerate(request.states)},
            key=lambda s: s.value,
        )
        # The token is bound to its study and filter: reused on another study (whose trial
        # numbers mean something else) or with other states, it is refused, not misread.
        scope = {"study": study_id, "states": [s.value for s in states]}
        after = _pagination.decode(request.page_token, scope)
        if after is not None and (not isinstance(after, int) or after < 0):
            raise InvalidArgument("page_token is malformed", field="page_token")
        # A heavy read: admitted within this replica's budget (see ``_admission``).
        async with self._admission.heavy(self._namespace()):
            stored, more = await self._store.list_trial_page(
                self._namespace(),
                study_id,
                states=states or None,
                page_size=size,
                after=after or 0,
                now=self._clock(),
            )
            trials, page = await self._off_loop(
                size > OFF_LOOP_TRIALS, _trial_protos, study_id, stored
            )
        response = tuning_service_pb2.ListTrialsResponse(trials=page)
        if (more or len(page) < len(trials)) and page:
            response.next_page_token = _pagination.encode(trials[len(page) - 1].number, scope)
        return response

    @_rpc
    async def ListOptimalTrials(
        self,
        request: tuning_service_pb2.ListOptimalTrialsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuning_service_pb2.ListOptimalTrialsResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        record = await self._study(study_id)
        async with self._admission.heavy(self._namespace()):
            if len(record.spec.objectives) == 1:
                best = await self._store.best_trial(self._namespace(), study_id)
                optimal = [best] if best is not None else []
            else:
                completed: list[Trial] = []
                after = 0
                while True:
                    page, more = await self._store.list_trials(
                        self._namespace(),
                        study_id,
                        states=[TrialState.COMPLETED],
                        page_size=1000,
                        after=after,
                    )
                    completed += page
                    if not more or not page:
                        break
                    after = page[-1].number
                optimal = pareto_front(completed, record.spec.objectives)
            # A Pareto front too large for one response is cut to its lowest-numbered trials.
            return tuning_service_pb2.ListOptimalTrialsResponse(
                trials=_fitting([_convert.trial_to_proto(study_id, t) for t in optimal])
            )

    # -- helpers ---------------------------------------------------------------------------

    async def _study(self, study_id: str) -> StudyRecord:
        """The study's immutable record, from the bounded per-replica cache if possible."""
        key = (self._namespace(), study_id)
        cached = self._specs.get(key)
        if cached is not None:
            self._specs.move_to_end(key)
            return cached
        record = await self._store.get_study(self._namespace(), study_id)
        self._remember(record)
        return record

    async def _write_checked(
        self,
        study_id: str,
        check: Callable[[StudyRecord], T],
        write: Callable[[StudyRecord, T], Awaitable[Trial]],
    ) -> Trial:
        """Validates a request against the study's spec, then writes it, in step with the
        store: a write refused because the study was re-created under the cached spec
        (``StaleStudy``) is validated again against the current one and retried."""
        for _ in range(_ASK_ATTEMPTS):
            record, checked = await self._validated(study_id, check)
            try:
                return await write(record, checked)
            except StaleStudy:
                self._forget(study_id)
            except NotFound:
                self._forget(study_id)
                raise
        # Not the caller's fault, and a retry may well succeed: a code workers retry.
        raise Unavailable(
            f"study {names.study_name(study_id)!r} was deleted and created again "
            f"{_ASK_ATTEMPTS} times during this call; retry it with the same request_id",
            reason="STUDY_RECREATED",
        )

    async def _validated(
        self, study_id: str, check: Callable[[StudyRecord], T]
    ) -> tuple[StudyRecord, T]:
        """Runs ``check`` against the study; when it refuses the request on a cached copy, reads
        the study afresh first, in case another replica re-created it with another spec."""
        record = await self._study(study_id)
        try:
            return record, check(record)
        except InvalidArgument:
            fresh = await self._store.get_study(self._namespace(), study_id)
            if fresh.uid == record.uid:
                raise
            self._remember(fresh)
            return fresh, check(fresh)

    async def _off_loop(self, heavy: bool, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, on the converter thread when ``heavy``, else here."""
        if not heavy:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._converter, fn, *args)

    def _remember(self, record: StudyRecord) -> None:
        """Caches ``record``, evicting the least recently used past ``SPEC_CACHE_SIZE`` specs
        or ``spec_cache_bytes`` bytes (the newest one is kept whatever its size)."""
        key = (self._namespace(), record.study_id)
        self._drop(key)
        weight = _spec_weight(record.spec)
        self._specs[key] = record
        self._spec_weights[key] = weight
        self._cached_bytes += weight
        while len(self._specs) > 1 and (
            len(self._specs) > SPEC_CACHE_SIZE or self._cached_bytes > self._spec_cache_bytes
        ):
            self._drop(next(iter(self._specs)))

    def _forget(self, study_id: str) -> None:
        self._drop((self._namespace(), study_id))

    def _drop(self, key: tuple[str, str]) -> None:
        if self._specs.pop(key, None) is not None:
            self._cached_bytes -= self._spec_weights.pop(key)

    @property
    def spec_cache_bytes(self) -> int:
        """Estimated bytes of the specs this replica caches now."""
        return self._cached_bytes

    def _lease(self, spec: StudySpec) -> float:
        """Seconds of the lease of the study's RUNNING trials."""
        return spec.lease_timeout or self._lease_timeout

    def _request_id(self, value: str, request: Message, *, ask: bool = False) -> RequestId | None:
        """The validated ``request_id`` of a call, with the fingerprint of ``request`` (see
        :func:`_fingerprint`); ``None`` when empty. An ask gets an attempt id of its own, so
        its second step is told apart from a concurrent retry."""
        if not _validate.check_request_id(value):
            return None
        return RequestId(
            value,
            self._request_id_ttl,
            attempt=_new_uid() if ask else "",
            fingerprint=_fingerprint(request),
        )

    def _namespace(self) -> str:
        """Namespace of the current call: the caller's tenant, else the servicer's default."""
        return current_namespace.get() or self._ns


def _trial_protos(study_id: str, page: TrialPage) -> tuple[list[Trial], list[trial_pb2.Trial]]:
    """A page's trials, and the prefix of them that fits in a response, as protobuf."""
    trials = page.decode()
    return trials, _fitting([_convert.trial_to_proto(study_id, t) for t in trials])


def _spec_weight(spec: StudySpec) -> int:
    """Estimated bytes a spec takes in this process: a few hundred per parameter, and per
    domain value its text and the Python object around it. O(parameters + categorical values),
    never a serialization."""
    total = 512 + 64 * len(spec.objectives)
    for p in spec.space.parameters:
        total += 256 + len(p.name)
        values = getattr(p.domain, "values", ())
        total += 64 * len(values)
        if values and isinstance(values[0], str):
            total += sum(map(len, values))
        if p.condition is not None:
            total += 64 * len(p.condition.values)
    return total


async def _study_proto(record: StudyRecord) -> study_pb2.Study:
    """``record`` as protobuf; converted in a thread when the spec is big (see
    ``OFF_LOOP_SPEC_BYTES``), so that the event loop keeps serving other calls."""
    if _spec_weight(record.spec) > OFF_LOOP_SPEC_BYTES:
        return await asyncio.to_thread(_convert.study_to_proto, record)
    return _convert.study_to_proto(record)


def _fingerprint(request: Message) -> str:
    """A digest of a request's payload: everything but its ``request_id`` and unknown fields.

    The deterministic serialization is the exact payload (map entries sorted), so a retry that
    repeats the call matches and one that changes any field (another spec, count, client,
    value, outcome or parameters) does not. 128 bits of SHA-256, hex: 32 bytes per record.
    """
    payload = type(request)()
    payload.CopyFrom(request)
    payload.ClearField("request_id")
    payload.DiscardUnknownFields()
    return hashlib.sha256(payload.SerializeToString(deterministic=True)).hexdigest()[:32]


def _new_uid() -> str:
    # Tells attempts apart; not a secret, so no system call for entropy.
    return f"{random.getrandbits(64):016x}"


#: Bytes a response may spend on its list of studies or trials: the message limit less room
#: for its other fields.
_RESPONSE_BUDGET = limits.MAX_MESSAGE_BYTES - 64 * 1024

M = TypeVar("M", bound=Message)


def _fitting(messages: list[M]) -> list[M]:
    """The longest prefix of ``messages`` (one at least) that fits in a response; pages stop
    short of the message limit instead of failing with RESOURCE_EXHAUSTED."""
    total = 0
    for i, message in enumerate(messages):
        total += message.ByteSize() + 6  # the field's tag and length prefix
        if total > _RESPONSE_BUDGET and i > 0:
            return messages[:i]
    return messages


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
