"""The ``hyperdial.v1.TuningService`` handlers.

Each handler validates its request, converts it to core types, calls the store and samplers,
and converts the answer back. Typed errors become gRPC statuses in one place (``_status``);
anything else is a bug, logged with its traceback and answered INTERNAL.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from hyperdial.v1 import tuning_service_pb2, tuning_service_pb2_grpc
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
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._context import current_namespace
from hyperdial_server.service._metrics import observe_suggestion
from hyperdial_server.service._registration import MalformedRequest
from hyperdial_server.service._reservations import IndexReservations
from hyperdial_server.service._status import to_status
from hyperdial_server.store import DEFAULT_CLAIM_TTL, RequestId, StaleStudy, Store, TrialPage

logger = logging.getLogger("hyperdial.service")

#: The namespace of every study until tenants exist.
DEFAULT_NAMESPACE = "default"
#: Most study specs cached per replica (specs are immutable; the uid check catches re-creation).
SPEC_CACHE_SIZE = 10_000
# An ask retries this often when the study was re-created under it or its claim expired.
_ASK_ATTEMPTS = 3

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
    ) -> None:
        self._store = store
        self._lease_timeout = lease_timeout
        self._request_id_ttl = request_id_ttl
        self._ns = namespace
        self._clock = clock
        self._specs: OrderedDict[tuple[str, str], StudyRecord] = OrderedDict()
        self._samplers = samplers if samplers is not None else SamplerWorkers()
        self._reserved = IndexReservations(store.reserve_indices)

    def close(self) -> None:
        """Stops the sampler workers (call after the server stopped)."""
        self._samplers.close()

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
        request_id = self._request_id(request.request_id)
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
        return tuning_service_pb2.GetStudyResponse(study=_convert.study_to_proto(record))

    @_rpc
    async def ListStudies(
        self, request: tuning_service_pb2.ListStudiesRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.ListStudiesResponse:
        size = _pagination.page_size(request.page_size)
        after = _pagination.decode(request.page_token)
        if after is not None and not isinstance(after, str):
            raise InvalidArgument("page_token is malformed", field="page_token")
        records, more = await self._store.list_studies(self._namespace(), size, after)
        studies = _fitting([_convert.study_to_proto(r) for r in records])
        response = tuning_service_pb2.ListStudiesResponse(studies=studies)
        if (more or len(studies) < len(records)) and studies:
            response.next_page_token = _pagination.encode(records[len(studies) - 1].study_id)
        return response

    @_rpc
    async def DeleteStudy(
        self, request: tuning_service_pb2.DeleteStudyRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.DeleteStudyResponse:
        study_id = names.parse_study_name(request.name)
        request_id = self._request_id(request.request_id)
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
        request_id = self._request_id(request.request_id, ask=True)
        handed: list[Trial] = []
        pending = 0
        record = await self._study(study_id)
        for attempt in range(_ASK_ATTEMPTS):
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
                if e.reason != "CLAIM_EXPIRED" or attempt == _ASK_ATTEMPTS - 1:
                    raise
            except NotFound:
                self._forget(study_id)
                raise
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
            # A replica dying between claim and commit delays those points by no more than the
            # lease of a trial would.
            claim_ttl=min(DEFAULT_CLAIM_TTL, lease),
            lease_timeout=lease,
            request_id=_with_handed(request_id, handed),
        )
        if claim.replayed:
            return claim.trials, 0
        handed += claim.trials
        points: list[Params] = []
        if claim.indices:
            if sampler.needs_history:
                history = await self._history(record)
                # Model-based samplers are CPU-heavy: in worker processes, so this replica
                # keeps answering other calls meanwhile.
                points, seconds = await self._samplers.suggest(
                    spec.algorithm, spec, claim.indices, history
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
        request_id = self._request_id(request.request_id)

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
        request_id = self._request_id(request.request_id)

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
        params = record.spec.space.validate_point(_convert.params_from_proto(request.parameters))
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
        scope = [s.value for s in states]
        after = _pagination.decode(request.page_token, scope)
        if after is not None and (not isinstance(after, int) or after < 0):
            raise InvalidArgument("page_token is malformed", field="page_token")
        trials, more = await self._store.list_trials(
            self._namespace(),
            study_id,
            states=states or None,
            page_size=size,
            after=after or 0,
            now=self._clock(),
        )
        page = _fitting([_convert.trial_to_proto(study_id, t) for t in trials])
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
        raise Unavailable("the study keeps changing under this call; retry it")

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

    def _remember(self, record: StudyRecord) -> None:
        key = (self._namespace(), record.study_id)
        self._specs[key] = record
        self._specs.move_to_end(key)
        while len(self._specs) > SPEC_CACHE_SIZE:
            self._specs.popitem(last=False)

    def _forget(self, study_id: str) -> None:
        self._specs.pop((self._namespace(), study_id), None)

    def _lease(self, spec: StudySpec) -> float:
        """Seconds of the lease of the study's RUNNING trials."""
        return spec.lease_timeout or self._lease_timeout

    def _request_id(self, value: str, *, ask: bool = False) -> RequestId | None:
        """The validated ``request_id`` of a call; ``None`` when empty. An ask gets an attempt
        id of its own, so its second step is told apart from a concurrent retry."""
        if not _validate.check_request_id(value):
            return None
        return RequestId(value, self._request_id_ttl, attempt=_new_uid() if ask else "")

    def _namespace(self) -> str:
        """Namespace of the current call: the caller's tenant, else the servicer's default."""
        return current_namespace.get() or self._ns


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
