"""The ``hyperdial.v1.TuningService`` handlers.

Each handler validates its request, converts it to core types, calls the store (reads of
studies), the :class:`~hyperdial_server.service._asker.Asker` (asks) or its
:class:`~hyperdial_server.service._trials.Trials` (writes checked against the study's spec,
reports of measurements, reads of trials), and converts the answer back. Typed errors become
gRPC statuses in one place (``_status``); anything else is a bug, logged with its traceback and
answered INTERNAL.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2, tuning_service_pb2_grpc
from hyperdial_server.core import limits, names
from hyperdial_server.core.errors import HyperdialError, InvalidArgument
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.pareto import front_vector
from hyperdial_server.core.study import StudyRecord, StudySpec
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.service import _convert, _pagination, _validate
from hyperdial_server.service import _early_stopping as _es
from hyperdial_server.service._admission import Admission, AdmissionLimits
from hyperdial_server.service._asker import Asker, new_uid
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._context import current_namespace
from hyperdial_server.service._importance import parameter_importance
from hyperdial_server.service._metrics import observe_suggestion
from hyperdial_server.service._optimal import optimal_trials
from hyperdial_server.service._registration import MalformedRequest
from hyperdial_server.service._spec_cache import SPEC_CACHE_BYTES, spec_weight
from hyperdial_server.service._status import to_status
from hyperdial_server.store import DEFAULT_CLAIM_TTL, RequestId, Store

# SPEC_CACHE_BYTES is defined with the cache (``_spec_cache``), and re-exported as the default of
# ``spec_cache_bytes``.
__all__ = ["DEFAULT_NAMESPACE", "SPEC_CACHE_BYTES", "TuningServicer"]

logger = logging.getLogger("hyperdial.service")

#: The namespace of every study until tenants exist.
DEFAULT_NAMESPACE = "default"
#: Specs heavier than this (estimated bytes) are converted to protobuf in a thread, so that one
#: big study does not hold up every other call of the replica for tens of milliseconds.
OFF_LOOP_SPEC_BYTES = 256 * 1024
#: Pages of more trials than this are decoded and converted off the event loop (1000 trials
#: take ~50 ms of CPU, mostly JSON decoding).
OFF_LOOP_TRIALS = 100

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
        self._request_id_ttl = request_id_ttl
        self._ns = namespace
        self._clock = clock
        # Where model-based asks and parameter importance compute (the Asker closes it).
        self._samplers = samplers if samplers is not None else SamplerWorkers()
        # Asks, checked writes and the spec cache: the orchestration, without protobuf.
        self._asker = Asker(
            store,
            clock=clock,
            samplers=self._samplers,
            lease_timeout=lease_timeout,
            claim_ttl=claim_ttl,
            spec_cache_bytes=spec_cache_bytes,
            observe=observe_suggestion,
        )
        # Checked writes (tells, reports) and reads of single trials, on the Asker's cache.
        self._trials = self._asker.trials
        self._admission = Admission(admission)
        # One thread decodes and converts big pages: off the event loop, so that asks and tells
        # interleave with them, and one at a time, so that they do not convoy on the GIL.
        self._converter = ThreadPoolExecutor(1, thread_name_prefix="hyperdial-convert")

    @property
    def samplers(self) -> SamplerWorkers:
        """Where model-based samplers compute (its :attr:`~SamplerWorkers.queue` is read by
        the metrics)."""
        return self._samplers

    def close(self) -> None:
        """Stops the sampler workers (call after the server stopped)."""
        self._asker.close()
        self._converter.shutdown(wait=False)

    def wait_closed(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for the sampler workers to be gone; whether they are."""
        return self._asker.wait_closed(timeout)

    @property
    def spec_cache_bytes(self) -> int:
        """Estimated bytes of the specs this replica caches now."""
        return self._asker.specs.cached_bytes

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
        request_id = self._request_id(request.request_id, request)
        stored = await self._asker.create_study(self._namespace(), study_id, spec, request_id)
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
        await self._asker.delete_study(self._namespace(), study_id, request_id)
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
        namespace = self._namespace()
        handed = await self._asker.ask(namespace, study_id, count, client_id, request_id)
        # The record the ask just read, looked up inline (no coroutine on the hot path).
        record = self._asker.specs.get(namespace, study_id)
        if record is None:
            record = await self._asker.study(namespace, study_id)
        # Trials that do not fit stay RUNNING: with a client_id, an ask after the client has
        # told the ones it got resumes them; else their leases expire and they come back.
        return tuning_service_pb2.SuggestTrialsResponse(
            trials=_fitting([_convert.trial_to_proto(study_id, t, record.spec) for t in handed])
        )

    @_rpc
    async def CompleteTrial(
        self, request: tuning_service_pb2.CompleteTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.CompleteTrialResponse:
        study_id, number = names.parse_trial_name(request.name)
        metadata = _validate.check_metadata(request.metadata)
        outcome = request.WhichOneof("outcome")
        if outcome is None:
            raise InvalidArgument(
                "set final_measurement (the objective values), failure (why the trial failed), "
                "stop (the worker stopped it early) or infeasibility (its parameters cannot "
                "give a result)",
                field="outcome",
            )

        def check(record: StudyRecord) -> dict[str, float] | None:
            if outcome == "final_measurement":
                return _convert.check_values(record.spec, request.final_measurement.values)
            return None

        failure = stop_reason = infeasible = None
        if outcome == "failure":
            failure = _validate.check_failure_reason(request.failure.reason)
        elif outcome == "stop":
            stop_reason = _es.check_stop_reason(request.stop.reason)
        elif outcome == "infeasibility":
            infeasible = _validate.check_failure_reason(
                request.infeasibility.reason, "infeasibility.reason"
            )
        request_id = self._request_id(request.request_id, request)
        namespace = self._namespace()

        async def write(
            record: StudyRecord, values: dict[str, float] | None
        ) -> tuple[Trial, StudySpec]:
            trial = await self._store.complete_trial(
                namespace,
                study_id,
                number,
                values=values,
                failure_reason=failure,
                stop_reason=stop_reason,
                infeasible_reason=infeasible,
                metadata=metadata,
                now=self._clock(),
                # Only feasible values rank: an infeasible trial is never the best, nor on a
                # Pareto front.
                score=_convert.score(record.spec, values) if values is not None else None,
                front_vector=front_vector(record.spec, values),
                uid=record.uid,
                request_id=request_id,
            )
            return trial, record.spec

        trial, spec = await self._trials.write_checked(namespace, study_id, check, write)
        return tuning_service_pb2.CompleteTrialResponse(
            trial=_convert.trial_to_proto(study_id, trial, spec)
        )

    @_rpc
    async def AddTrialMeasurement(
        self,
        request: tuning_service_pb2.AddTrialMeasurementRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuning_service_pb2.AddTrialMeasurementResponse:
        study_id, number = names.parse_trial_name(request.name)
        if not request.HasField("measurement"):
            raise InvalidArgument(
                "measurement is missing; a report gives its step and objective values",
                field="measurement",
                reason=_es.INVALID_MEASUREMENT,
            )
        request_id = self._request_id(request.request_id, request)
        report = await self._trials.report(
            self._namespace(),
            study_id,
            number,
            lambda record: _es.measurement_from_proto(record.spec, request.measurement),
            request_id,
        )
        return tuning_service_pb2.AddTrialMeasurementResponse(
            decision=_es.decision_to_proto(report.decision),
            trial=_convert.trial_to_proto(study_id, report.trial, report.spec),
        )

    @_rpc
    async def CheckTrialEarlyStopping(
        self,
        request: tuning_service_pb2.CheckTrialEarlyStoppingRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuning_service_pb2.CheckTrialEarlyStoppingResponse:
        study_id, number = names.parse_trial_name(request.name)
        decision = await self._trials.check_stopping(self._namespace(), study_id, number)
        return tuning_service_pb2.CheckTrialEarlyStoppingResponse(
            decision=_es.decision_to_proto(decision)
        )

    # -- trials ----------------------------------------------------------------------------

    @_rpc
    async def CreateTrial(
        self, request: tuning_service_pb2.CreateTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.CreateTrialResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        metadata = _validate.check_metadata(request.metadata)
        request_id = self._request_id(request.request_id, request)
        namespace = self._namespace()

        async def write(
            record: StudyRecord, new: tuple[Trial, float | None]
        ) -> tuple[Trial, StudySpec]:
            trial, score = new
            stored = await self._store.create_trial(
                namespace,
                study_id,
                trial,
                score=score,
                front_vector=front_vector(record.spec, trial.values),
                uid=record.uid,
                request_id=request_id,
                now=trial.create_time,
            )
            return stored, record.spec

        stored, spec = await self._trials.write_checked(
            namespace, study_id, lambda r: self._new_trial(r, request, metadata), write
        )
        return tuning_service_pb2.CreateTrialResponse(
            trial=_convert.trial_to_proto(study_id, stored, spec)
        )

    def _new_trial(
        self,
        record: StudyRecord,
        request: tuning_service_pb2.CreateTrialRequest,
        metadata: dict[str, str],
    ) -> tuple[Trial, float | None]:
        """The trial ``request`` adds to the study of ``record``, validated against its spec,
        and its score when it is completed (and feasible)."""
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
        elif outcome == "infeasibility":
            # Stored as a failure's reason is (``Trial.failure_reason``); told apart by state.
            trial.failure_reason = _validate.check_failure_reason(
                request.infeasibility.reason, "infeasibility.reason"
            )
            trial.state = TrialState.INFEASIBLE
            trial.complete_time = now
        return trial, score

    @_rpc
    async def GetTrial(
        self, request: tuning_service_pb2.GetTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.GetTrialResponse:
        study_id, number = names.parse_trial_name(request.name)
        full = _es.full_view(request.view, default_full=True)
        trial, spec = await self._trials.trial(
            self._namespace(), study_id, number, with_measurements=full
        )
        return tuning_service_pb2.GetTrialResponse(
            trial=_convert.trial_to_proto(study_id, trial, spec, full=full)
        )

    @_rpc
    async def HeartbeatTrial(
        self, request: tuning_service_pb2.HeartbeatTrialRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.HeartbeatTrialResponse:
        study_id, number = names.parse_trial_name(request.name)
        trial = await self._trials.heartbeat(self._namespace(), study_id, number)
        return tuning_service_pb2.HeartbeatTrialResponse(
            trial=_convert.trial_to_proto(study_id, trial, await self._spec(study_id))
        )

    @_rpc
    async def ListTrials(
        self, request: tuning_service_pb2.ListTrialsRequest, context: grpc.aio.ServicerContext
    ) -> tuning_service_pb2.ListTrialsResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        size = _pagination.page_size(request.page_size)
        full = _es.full_view(request.view, default_full=False)
        states = sorted(
            {_convert.state_from_proto(s, f"states[{i}]") for i, s in enumerate(request.states)},
            key=lambda s: s.value,
        )
        changed_after = _validate.check_changed_after_revision(request.changed_after_revision)
        # The token is bound to its study and filter: reused on another study (whose trial
        # numbers mean something else) or with other states, it is refused, not misread. A
        # read of changes pages by revision: its tokens hold a revision and are bound to its
        # changed_after_revision, so a token of one kind of read is refused by the other.
        scope: dict[str, Any] = {"study": study_id, "states": [s.value for s in states]}
        if changed_after:
            scope["changed_after_revision"] = changed_after
        after = _pagination.decode(request.page_token, scope)
        if after is not None and (not isinstance(after, int) or after < changed_after):
            raise InvalidArgument("page_token is malformed", field="page_token")
        # A heavy read: admitted within this replica's budget (see ``_admission``).
        async with self._admission.heavy(self._namespace()):
            stored, more = await self._store.list_trial_page(
                self._namespace(),
                study_id,
                states=states or None,
                page_size=size,
                after=0 if changed_after else after or 0,
                after_revision=(after or changed_after) if changed_after else 0,
                now=self._clock(),
                with_measurements=full,
            )
            spec = await self._spec(study_id)
            trials, page = await self._off_loop(
                size > OFF_LOOP_TRIALS or full, _trial_protos, study_id, stored, spec, full
            )
        response = tuning_service_pb2.ListTrialsResponse(trials=page, revision=stored.revision)
        if len(page) < len(trials):  # cut to fit a response: the next page starts after it
            last = trials[len(page) - 1]
            next_after: int | None = last.revision if changed_after else last.number
        elif more:
            # By revision, after the last change the store looked at, which the states filter
            # may have left out of the page (even all of them).
            next_after = stored.last if changed_after else (trials[-1].number if trials else None)
        else:
            next_after = None
        if next_after is not None:
            response.next_page_token = _pagination.encode(next_after, scope)
        return response

    @_rpc
    async def ListOptimalTrials(
        self,
        request: tuning_service_pb2.ListOptimalTrialsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuning_service_pb2.ListOptimalTrialsResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        basis = _convert.basis_from_proto(request.basis)
        record = await self._asker.study(self._namespace(), study_id)
        async with self._admission.heavy(self._namespace()):
            optimal = await optimal_trials(
                self._store,
                self._samplers,
                self._trials,
                self._namespace(),
                record,
                basis,
                now=self._clock(),
            )
            trials = [_convert.trial_to_proto(study_id, t, record.spec) for t in optimal.trials]
            predictions = [_convert.prediction_to_proto(r) for r in optimal.predictions or []]
            # A Pareto front too large for one response is cut to its lowest-numbered trials,
            # each trial with its prediction (measured together).
            if predictions:
                pairs = [
                    tuning_service_pb2.ListOptimalTrialsResponse(trials=[t], predictions=[p])
                    for t, p in zip(trials, predictions, strict=True)
                ]
                kept = len(_fitting(pairs))
            else:
                kept = len(_fitting(trials))
            return tuning_service_pb2.ListOptimalTrialsResponse(
                trials=trials[:kept], predictions=predictions[:kept]
            )

    # -- analysis --------------------------------------------------------------------------

    @_rpc
    async def ComputeParameterImportance(
        self,
        request: tuning_service_pb2.ComputeParameterImportanceRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuning_service_pb2.ComputeParameterImportanceResponse:
        study_id = names.parse_study_name(request.parent, "parent")
        namespace = self._namespace()
        importances = await parameter_importance(
            self._store,
            self._samplers,
            self._asker.specs,
            namespace,
            study_id,
            lambda spec: _validate.check_objective(spec, request.objective),
            # Reading every completed trial is a heavy read, admitted within this replica's
            # budget; the computation after it runs in a worker, holding no slot.
            admit=lambda: self._admission.heavy(namespace),
            now=self._clock(),
        )
        return _convert.importances_to_proto(importances)

    # -- helpers ---------------------------------------------------------------------------

    async def _off_loop(self, heavy: bool, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, on the converter thread when ``heavy``, else here."""
        if not heavy:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._converter, fn, *args)

    def _request_id(self, value: str, request: Message, *, ask: bool = False) -> RequestId | None:
        """The validated ``request_id`` of a call, with the fingerprint of ``request`` (see
        :func:`_fingerprint`); ``None`` when empty. An ask gets an attempt id of its own, so
        its second step is told apart from a concurrent retry."""
        if not _validate.check_request_id(value):
            return None
        return RequestId(
            value,
            self._request_id_ttl,
            attempt=new_uid() if ask else "",
            fingerprint=_fingerprint(request),
        )

    async def _spec(self, study_id: str) -> StudySpec:
        """The study's spec (of the cached record), for trials' brackets and feasibility."""
        return (await self._asker.study(self._namespace(), study_id)).spec

    def _namespace(self) -> str:
        """Namespace of the current call: the caller's tenant, else the servicer's default."""
        return current_namespace.get() or self._ns


def _trial_protos(
    study_id: str, page: TrialPage, spec: StudySpec, full: bool
) -> tuple[list[Trial], list[trial_pb2.Trial]]:
    """A page's trials, and the prefix of them that fits in a response, as protobuf."""
    trials = page.decode()
    return trials, _fitting([_convert.trial_to_proto(study_id, t, spec, full=full) for t in trials])


async def _study_proto(record: StudyRecord) -> study_pb2.Study:
    """``record`` as protobuf; converted in a thread when the spec is big (see
    ``OFF_LOOP_SPEC_BYTES``), so that the event loop keeps serving other calls."""
    if spec_weight(record.spec) > OFF_LOOP_SPEC_BYTES:
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
