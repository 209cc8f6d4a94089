"""The asyncio client: :class:`AsyncClient`, :class:`AsyncStudy`, :class:`AsyncTrial`.

The same surface as the blocking client, with ``await`` on every call, on ``grpc.aio``. The
requests, conversions, retries and channel settings are the blocking client's own, shared.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, cast, overload

import grpc

from hyperdial._base import (
    BaseStudy,
    BaseTrial,
    TrialChanges,
    TrialState,
    _ChangesReader,
    _number,
    intermediate_value,
    new_request_id,
    study_name,
    wanted_states,
)
from hyperdial._channel import (
    DEFAULT_CONNECT_TIMEOUT,
    Contact,
    call_metadata,
    channel_options,
    method_timeout,
    normalize_target,
    resolve_credentials,
)
from hyperdial._client import (
    GET_OR_CREATE_ROUNDS,
    check_connect_timeout,
    create_study_request,
    delete_study_request,
    given_up,
    spec_mismatch,
    unreachable,
)
from hyperdial._early_stopping import Decision, EarlyStopping, StoppingRule, TrialStopped
from hyperdial._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    HyperdialError,
    NotFoundError,
    StudyCompleteError,
    from_rpc_error,
)
from hyperdial._importance import (
    ParameterImportances,
    importance_request,
    importances_from_proto,
)
from hyperdial._leases import AsyncLeaseKeeper
from hyperdial._optimize import (
    ObjectiveResult,
    RunState,
    TrialInfeasible,
    _best_for_progress,
    _check_run,
    describe,
    ended_elsewhere,
    ignored_result,
    infeasibility_reason,
    logger,
    progress_line,
    quiet_failure,
    stop_reason,
    worker_ids,
)
from hyperdial._progress import progress_wanted
from hyperdial._retry import Attempts, RetryPolicy, from_transport
from hyperdial._space import Constraint, Objective, Parameter
from hyperdial._study import NO_RESULT_REASON
from hyperdial.v1 import tuning_service_pb2, tuning_service_pb2_grpc

__all__ = ["AsyncClient", "AsyncStudy", "AsyncTrial"]

R = TypeVar("R")

#: An objective of :meth:`AsyncStudy.optimize`: a coroutine function, or a plain function.
AsyncObjective = Callable[
    ["AsyncTrial"], Awaitable[ObjectiveResult | None] | ObjectiveResult | None
]

_DEFAULT_RETRY = RetryPolicy()


class AsyncTrial(BaseTrial):
    """A trial of an :class:`AsyncStudy` (see :class:`~hyperdial.BaseTrial` for the
    attributes)."""

    @overload
    async def report(
        self,
        value: float | Mapping[str, float],
        step: int,
        *,
        elapsed: float | timedelta | None = None,
    ) -> Decision: ...

    @overload
    async def report(
        self,
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        constraint_values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncTrial: ...

    async def report(
        self,
        value: float | Mapping[str, float] | None = None,
        step: int | None = None,
        *,
        values: Mapping[str, float] | None = None,
        constraint_values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
        elapsed: float | timedelta | None = None,
    ) -> Decision | AsyncTrial:
        """``await trial.report(loss, step)``: an intermediate value, answered the
        early-stopping :class:`~hyperdial.Decision`; without a step, the final result (see
        :meth:`hyperdial.Trial.report`).

        Returns:
            With a step, the decision; without, the completed trial as stored.
        """
        study = self._study()
        if step is not None:
            if constraint_values is not None:
                raise TypeError("constraint_values belong to the final report, without a step")
            decision: Decision = await study.report(
                self, intermediate_value(value, values, metadata), step, elapsed=elapsed
            )
            return decision
        if elapsed is not None:
            raise TypeError("elapsed goes with a step: report(value, step, elapsed=...)")
        if isinstance(value, Mapping):
            raise TypeError("pass the final values as values={name: value, ...}")
        done: AsyncTrial = await study.tell(
            self, value, values=values, constraint_values=constraint_values, metadata=metadata
        )
        self._mark_finished(done)
        return done

    async def check_stopping(self) -> Decision:
        """Asks the service whether this trial should stop (see
        :meth:`hyperdial.Study.check_stopping`)."""
        decision: Decision = await self._study().check_stopping(self)
        return decision

    async def stop(self, reason: str = "") -> AsyncTrial:
        """Stops this running trial early (see :meth:`hyperdial.Trial.stop`).

        Returns:
            The stopped trial as stored.
        """
        done: AsyncTrial = await self._study().stop_trial(self, reason)
        self._mark_finished(done)
        return done

    async def fail(self, reason: str) -> AsyncTrial:
        """Records that this running trial failed (see :meth:`AsyncStudy.fail`).

        Returns:
            The failed trial as stored.
        """
        done: AsyncTrial = await self._study().fail(self, reason)
        self._mark_finished(done)
        return done

    async def mark_infeasible(self, reason: str = "") -> AsyncTrial:
        """Records that this running trial's parameters cannot give a result: it becomes
        INFEASIBLE (see :meth:`hyperdial.Study.mark_infeasible`).

        Returns:
            The infeasible trial as stored.
        """
        done: AsyncTrial = await self._study().mark_infeasible(self, reason)
        self._mark_finished(done)
        return done


class AsyncClient:
    """An asyncio connection to a hyperdial service, on ``grpc.aio``.

    Create and use it on one event loop. The arguments are those of
    :class:`hyperdial.Client`: retries with one ``request_id`` per mutating call, the service
    config (round-robin with health checking, per-attempt deadlines, gRPC retries), keepalive,
    TLS and token, the connect timeout until the first contact with the service; the leases
    of open trials are renewed by one task on the loop.

    Args:
        target: A gRPC target (``host:port``, ``dns:///host:port``, ``ipv4:A:P,B:Q``, or
            ``A:P,B:Q``).
        timeout: Deadline of each attempt, in seconds; ``None`` for the per-method ones.
        retry: How failed calls are retried; ``None`` for a single attempt.
        connect_timeout: Seconds a call keeps trying while this client has never reached the
            service (default 5), then :class:`~hyperdial.ServiceUnreachableError`; ``None``:
            ``retry`` alone (see :class:`hyperdial.Client`).
        tls: ``True``, credentials from :func:`~hyperdial.tls_credentials`, or ``False``.
        token: A bearer token, sent with every call.
        load_balancing: gRPC load-balancing policy across the addresses of ``target``.
        health_check: With ``round_robin``, call only replicas whose health is SERVING.
        options: More gRPC channel options; they override the client's.
        renew_leases: Renew the leases of open trials in the background.
        channel: A ``grpc.aio`` channel to use instead of opening one; the caller keeps
            ownership.

    Example:
        >>> async with AsyncClient("localhost:50051") as client:  # doctest: +SKIP
        ...     study = await client.create_study("demo", [Float("x", -1, 1)])
        ...     await study.optimize(objective, n_trials=20, n_workers=4)
    """

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        tls: bool | grpc.ChannelCredentials = False,
        token: str | None = None,
        load_balancing: str | None = "round_robin",
        health_check: bool = True,
        options: Sequence[tuple[str, Any]] = (),
        renew_leases: bool = True,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._target = target
        self._timeout = timeout
        self._retry = retry
        self._connect_timeout = check_connect_timeout(connect_timeout)
        self._metadata = call_metadata(token)
        self._owns_channel = channel is None
        # For the log and ServiceUnreachableError: unknown for a channel of the caller's.
        self._tls: bool | None = None
        self._where = target if channel is None else ""
        if channel is None:
            opts = channel_options(
                retry=retry is not None,
                load_balancing=load_balancing,
                health_check=health_check,
                extra=options,
            )
            target = normalize_target(target)
            credentials = resolve_credentials(tls)
            self._tls = credentials is not None
            if credentials is None:
                channel = grpc.aio.insecure_channel(target, options=opts)
            else:
                channel = grpc.aio.secure_channel(target, credentials, options=opts)
        self._channel = channel
        aio_channel = channel
        self._contact = Contact(
            lambda: aio_channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY
        )
        self._stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        self._leases: AsyncLeaseKeeper | None = (
            AsyncLeaseKeeper(self._heartbeat) if renew_leases else None
        )

    def __repr__(self) -> str:
        return f"AsyncClient({self._target!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops renewing leases and closes the channel, unless the caller passed it in."""
        if self._leases is not None:
            await self._leases.close()
        if self._owns_channel:
            await self._channel.close()

    async def _invoke(
        self, method: str, request: object, response_type: type[R], *, deadline: float | None = None
    ) -> R:
        """Calls one unary RPC, retrying under the policy; converts every gRPC error."""
        rpc: Callable[..., Any] = getattr(self._stub, method)
        timeout = self._timeout if self._timeout is not None else method_timeout(method)
        contact = self._contact
        started = time.monotonic()
        attempts = Attempts(
            method,
            self._retry,
            timeout,
            deadline=deadline,
            target=self._where,
            connect_timeout=self._connect_timeout,
            reached=lambda: contact.reached,
        )
        while True:
            try:
                response = await rpc(request, timeout=attempts.timeout(), metadata=self._metadata)
            except grpc.RpcError as e:
                error = from_rpc_error(e)
                contact.failed(from_transport(error))
                wait = attempts.failed(error)
                if wait is None:
                    last = attempts.last_error(error)
                    if not contact.reached and from_transport(last):
                        elapsed = time.monotonic() - started
                        raise unreachable(
                            last,
                            attempts.count,
                            self._where,
                            self._tls,
                            elapsed,
                            self._connect_timeout,
                        ) from None
                    raise given_up(last, attempts.count) from None
                await asyncio.sleep(wait)
                continue
            contact.seen()
            return cast(R, response)

    async def _heartbeat(self, name: str, timeout: float) -> object:
        """One ``HeartbeatTrial`` (for the lease keeper), a single attempt."""
        try:
            return await self._stub.HeartbeatTrial(
                tuning_service_pb2.HeartbeatTrialRequest(name=name),
                timeout=timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    # -- studies ---------------------------------------------------------------------------

    async def create_study(
        self,
        study_id: str,
        params: Sequence[Parameter],
        objectives: Sequence[Objective] | Objective | str = "minimize",
        *,
        algorithm: str | None = None,
        seed: int | None = None,
        max_trials: int | None = None,
        grid_resolution: int | None = None,
        initial_trials: int | None = None,
        lease_timeout: float | timedelta | None = None,
        early_stopping: EarlyStopping | StoppingRule | None = None,
        deterministic_objective: bool = False,
        constraints: Sequence[Constraint | str] = (),
        load_if_exists: bool = False,
    ) -> AsyncStudy:
        """Creates a study, or with ``load_if_exists`` returns the existing one if its spec
        matches (see :meth:`hyperdial.Client.create_study`)."""
        request = create_study_request(
            study_id,
            params,
            objectives,
            algorithm=algorithm,
            seed=seed,
            max_trials=max_trials,
            grid_resolution=grid_resolution,
            initial_trials=initial_trials,
            lease_timeout=lease_timeout,
            early_stopping=early_stopping,
            deterministic_objective=deterministic_objective,
            constraints=constraints,
        )
        for round_ in range(1, GET_OR_CREATE_ROUNDS + 1):
            try:
                created = await self._invoke(
                    "CreateStudy", request, tuning_service_pb2.CreateStudyResponse
                )
                return AsyncStudy(self, created.study)
            except AlreadyExistsError:
                if not load_if_exists:
                    raise
            # Created by someone else, maybe a moment ago by a worker racing this one.
            try:
                stored = await self._invoke(
                    "GetStudy",
                    tuning_service_pb2.GetStudyRequest(name=study_name(study_id)),
                    tuning_service_pb2.GetStudyResponse,
                )
            except NotFoundError:
                if round_ == GET_OR_CREATE_ROUNDS:
                    raise
                # Deleted in between: create it after all, as a new request.
                request.request_id = new_request_id()
                continue
            spec_mismatch(request.spec, stored.study)
            return AsyncStudy(self, stored.study)
        raise AssertionError("unreachable: the last round returns or raises")

    async def get_study(self, study_id_or_name: str) -> AsyncStudy:
        """Returns a study (see :meth:`hyperdial.Client.get_study`)."""
        response = await self._invoke(
            "GetStudy",
            tuning_service_pb2.GetStudyRequest(name=study_name(study_id_or_name)),
            tuning_service_pb2.GetStudyResponse,
        )
        return AsyncStudy(self, response.study)

    async def list_studies(self) -> AsyncIterator[AsyncStudy]:
        """Every study, in order of id, one page fetched at a time: ``async for s in ...``."""
        token = ""
        while True:
            response = await self._invoke(
                "ListStudies",
                tuning_service_pb2.ListStudiesRequest(page_token=token),
                tuning_service_pb2.ListStudiesResponse,
            )
            for pb in response.studies:
                yield AsyncStudy(self, pb)
            token = response.next_page_token
            if not token:
                return

    async def delete_study(self, study_id_or_name: str | AsyncStudy) -> None:
        """Deletes a study and all its trials (see :meth:`hyperdial.Client.delete_study`)."""
        await self._invoke(
            "DeleteStudy",
            delete_study_request(study_id_or_name),
            tuning_service_pb2.DeleteStudyResponse,
        )


class AsyncStudy(BaseStudy[AsyncTrial]):
    """One tuning problem on the service, from an :class:`AsyncClient`.

    Every method of :class:`hyperdial.Study` is here, as a coroutine; ``best_trials``,
    ``best_trial``, ``recommended_trials`` and ``recommended_trial`` are awaitable properties
    (``await study.best_trial``).
    """

    _trial_type = AsyncTrial

    def __init__(self, client: AsyncClient, pb: Any) -> None:
        super().__init__(client, pb)

    # -- ask / tell ------------------------------------------------------------------------

    async def ask(self, count: int = 1, *, client_id: str = "") -> list[AsyncTrial]:
        """Hands out running trials (see :meth:`hyperdial.Study.ask`)."""
        response = await self._client._invoke(
            "SuggestTrials",
            self._suggest_request(count, client_id),
            tuning_service_pb2.SuggestTrialsResponse,
        )
        trials = [self._trial(pb) for pb in response.trials]
        self._opened(trials)
        return trials

    async def tell(
        self,
        trial_or_number: BaseTrial | int,
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        constraint_values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncTrial:
        """Records the result of a running trial, with the values of the outcome constraints
        (see :meth:`hyperdial.Study.tell`)."""
        return await self._end(
            self._tell_request(trial_or_number, value, values, metadata, constraint_values)
        )

    async def fail(
        self,
        trial_or_number: BaseTrial | int,
        reason: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncTrial:
        """Records that a running trial failed (see :meth:`hyperdial.Study.fail`)."""
        return await self._end(self._fail_request(trial_or_number, reason, metadata))

    async def mark_infeasible(
        self,
        trial_or_number: BaseTrial | int,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncTrial:
        """Records that a running trial's parameters cannot give a result: it becomes
        INFEASIBLE (see :meth:`hyperdial.Study.mark_infeasible`)."""
        return await self._end(self._infeasible_request(trial_or_number, reason, metadata))

    async def stop_trial(
        self,
        trial_or_number: BaseTrial | int,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncTrial:
        """Stops a running trial early, from the worker (see
        :meth:`hyperdial.Study.stop_trial`)."""
        return await self._end(self._stop_request(trial_or_number, reason, metadata))

    async def report(
        self,
        trial_or_number: BaseTrial | int,
        value: float | Mapping[str, float],
        step: int,
        *,
        elapsed: float | timedelta | None = None,
    ) -> Decision:
        """Reports an intermediate measurement and answers the early-stopping decision (see
        :meth:`hyperdial.Study.report`)."""
        request = self._report_request(trial_or_number, value, step, elapsed)
        try:
            response = await self._client._invoke(
                "AddTrialMeasurement", request, tuning_service_pb2.AddTrialMeasurementResponse
            )
        except (FailedPreconditionError, NotFoundError) as e:
            if e.reason != "STEP_NOT_INCREASING":
                self._closed(request.name)
            raise
        return self._reported(trial_or_number, response)

    async def check_stopping(self, trial_or_number: BaseTrial | int) -> Decision:
        """Whether a trial should stop, without reporting (see
        :meth:`hyperdial.Study.check_stopping`)."""
        response = await self._client._invoke(
            "CheckTrialEarlyStopping",
            self._check_request(trial_or_number),
            tuning_service_pb2.CheckTrialEarlyStoppingResponse,
        )
        return self._checked(trial_or_number, response)

    async def _end(self, request: tuning_service_pb2.CompleteTrialRequest) -> AsyncTrial:
        try:
            response = await self._client._invoke(
                "CompleteTrial", request, tuning_service_pb2.CompleteTrialResponse
            )
        except (FailedPreconditionError, NotFoundError):
            self._closed(request.name)
            raise
        self._closed(request.name)
        return self._trial(response.trial, finished=True)

    # -- trials ----------------------------------------------------------------------------

    async def enqueue(
        self, params: Mapping[str, object], metadata: Mapping[str, str] | None = None
    ) -> AsyncTrial:
        """Enqueues a point for the next ask (see :meth:`hyperdial.Study.enqueue`)."""
        response = await self._client._invoke(
            "CreateTrial",
            self._enqueue_request(params, metadata),
            tuning_service_pb2.CreateTrialResponse,
        )
        return self._trial(response.trial)

    async def add_trial(
        self,
        params: Mapping[str, object],
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        constraint_values: Mapping[str, float] | None = None,
        failure: str | None = None,
        infeasibility: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncTrial:
        """Imports a finished trial: completed, failed or infeasible (see
        :meth:`hyperdial.Study.add_trial`)."""
        response = await self._client._invoke(
            "CreateTrial",
            self._add_trial_request(
                params, value, values, failure, metadata, constraint_values, infeasibility
            ),
            tuning_service_pb2.CreateTrialResponse,
        )
        return self._trial(response.trial, finished=True)

    async def trials(
        self,
        states: Iterable[TrialState | str] | None = None,
        *,
        with_measurements: bool = False,
    ) -> list[AsyncTrial]:
        """The trials in order of number, all pages read (see :meth:`hyperdial.Study.trials`)."""
        wanted = wanted_states(states)
        if wanted is None:
            return []
        out: list[AsyncTrial] = []
        token = ""
        while True:
            response = await self._client._invoke(
                "ListTrials",
                self._list_request(wanted, token, with_measurements),
                tuning_service_pb2.ListTrialsResponse,
            )
            out += [self._trial(pb) for pb in response.trials]
            token = response.next_page_token
            if not token:
                return out

    async def changes(
        self, after_revision: int = 0, *, with_measurements: bool = False
    ) -> TrialChanges[AsyncTrial]:
        """The trials that changed after a revision of the study, all pages read, and the
        revision to read from next time (see :meth:`hyperdial.Study.changes`)."""
        reader: _ChangesReader[AsyncTrial] = _ChangesReader(after_revision)
        token = ""
        while True:
            response = await self._client._invoke(
                "ListTrials",
                self._list_request([], token, with_measurements, reader.after_revision),
                tuning_service_pb2.ListTrialsResponse,
            )
            reader.add([self._trial(pb) for pb in response.trials], response.revision)
            token = response.next_page_token
            if not token:
                return reader.result()

    async def get_trial(self, number: int, *, with_measurements: bool = True) -> AsyncTrial:
        """Returns the trial of that number (see :meth:`hyperdial.Study.get_trial`)."""
        response = await self._client._invoke(
            "GetTrial",
            self._trial_request(number, with_measurements),
            tuning_service_pb2.GetTrialResponse,
        )
        return self._trial(response.trial)

    async def _best_trials(self) -> list[AsyncTrial]:
        response = await self._client._invoke(
            "ListOptimalTrials",
            self._optimal_request(),
            tuning_service_pb2.ListOptimalTrialsResponse,
        )
        return [self._trial(pb, finished=True) for pb in response.trials]

    async def _best_trial(self) -> AsyncTrial:
        self._check_single_objective()
        return self._best_of(await self._best_trials())

    async def _recommended_trials(self) -> list[AsyncTrial]:
        response = await self._client._invoke(
            "ListOptimalTrials",
            self._optimal_request(by_model=True),
            tuning_service_pb2.ListOptimalTrialsResponse,
        )
        return self._recommended(response)

    async def _recommended_trial(self) -> AsyncTrial:
        self._check_single_objective("recommended")
        return self._best_of(await self._recommended_trials())

    @property
    def best_trials(self) -> Awaitable[list[AsyncTrial]]:
        """``await study.best_trials``: the best trial or the Pareto front (see
        :attr:`hyperdial.Study.best_trials`)."""
        return self._best_trials()

    @property
    def best_trial(self) -> Awaitable[AsyncTrial]:
        """``await study.best_trial``: the best completed trial of a single-objective study.

        Raises:
            ValueError: Several objectives, or no trial has completed yet (when awaited).
        """
        return self._best_trial()

    @property
    def recommended_trials(self) -> Awaitable[list[AsyncTrial]]:
        """``await study.recommended_trials``: the recommended trial or the Pareto front of
        the recommendation, judged by the model's predictions (for noisy objectives; see
        :attr:`hyperdial.Study.recommended_trials`)."""
        return self._recommended_trials()

    @property
    def recommended_trial(self) -> Awaitable[AsyncTrial]:
        """``await study.recommended_trial``: the completed trial of a single-objective study
        whose prediction is best at its worse end (mean plus or minus one sd), with its
        ``prediction`` (see
        :attr:`hyperdial.Study.recommended_trial`).

        Raises:
            ValueError: Several objectives, or no trial has completed yet (when awaited).
        """
        return self._recommended_trial()

    async def trials_dataframe(self, states: Iterable[TrialState | str] | None = None) -> Any:
        """The trials as a ``pandas.DataFrame`` (see
        :meth:`hyperdial.Study.trials_dataframe`).

        Raises:
            ImportError: pandas is not installed.
        """
        return self._dataframe(await self.trials(states))

    async def parameter_importance(self, objective: str | None = None) -> ParameterImportances:
        """How much each parameter matters to an objective, from the completed trials (see
        :meth:`hyperdial.Study.parameter_importance`)."""
        response = await self._client._invoke(
            "ComputeParameterImportance",
            importance_request(self.name, objective),
            tuning_service_pb2.ComputeParameterImportanceResponse,
        )
        return importances_from_proto(response)

    # -- loops -----------------------------------------------------------------------------

    def trial(self, client_id: str = "") -> _AsyncTrialContext:
        """``async with study.trial() as t: ... await t.report(loss)``: one trial that always
        ends; ``raise hd.TrialStopped()`` ends it as STOPPED, ``raise hd.TrialInfeasible()``
        as INFEASIBLE (see :meth:`hyperdial.Study.trial`)."""
        return _AsyncTrialContext(self, client_id)

    async def optimize(
        self,
        objective: AsyncObjective,
        n_trials: int | None = None,
        *,
        n_workers: int = 1,
        catch: tuple[type[BaseException], ...] = (),
        client_id: str = "",
        show_progress: bool | None = None,
    ) -> None:
        """Runs ask → objective → tell in ``n_workers`` concurrent tasks.

        The objective may be a coroutine function (awaited) or a plain function (called on
        the loop: keep it short, or run heavy work with ``asyncio.to_thread``). Otherwise as
        :meth:`hyperdial.Study.optimize`, early stopping included: an objective that raises
        :class:`~hyperdial.TrialStopped` ends its trial STOPPED, not failed; one that raises
        :class:`~hyperdial.TrialInfeasible` ends it INFEASIBLE.

        Raises:
            ValueError: ``n_workers`` < 1 or ``n_trials`` < 0.
            BaseException: The first exception of the objective not in ``catch``, after every
                worker finished its current trial; or the first error of the service other
                than the study being complete.
        """
        _check_run(n_trials, n_workers)
        progress = None
        if progress_wanted(show_progress, sys.stderr):
            best_trials: list[AsyncTrial] = []
            if len(self._objectives) == 1:
                try:
                    best_trials = await self._best_trials()
                except HyperdialError:
                    best_trials = []
            best, number = _best_for_progress(self, lambda: best_trials)
            progress = progress_line(self, n_trials, best, number)
        run = RunState(n_trials, catch, progress)
        try:
            await asyncio.gather(
                *(_work(self, objective, run, cid) for cid in worker_ids(client_id, n_workers))
            )
        finally:
            if progress is not None:
                progress.close()
        run.raise_error()


async def _fail_quietly(trial: AsyncTrial, reason: str) -> None:
    try:
        await trial.fail(reason)
    except HyperdialError as e:
        quiet_failure(trial, e)


class _AsyncTrialContext:
    """``async with study.trial() as t``: one asked trial that always ends."""

    def __init__(self, study: AsyncStudy, client_id: str) -> None:
        self._study = study
        self._client_id = client_id
        self._trial: AsyncTrial | None = None

    async def __aenter__(self) -> AsyncTrial:
        self._trial = (await self._study.ask(1, client_id=self._client_id))[0]
        return self._trial

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        trial = self._trial
        if isinstance(exc, TrialStopped):
            if trial is not None and not trial._finished:
                await trial.stop(stop_reason(exc))
            return True  # a stopped trial is the block's normal end
        if isinstance(exc, TrialInfeasible):
            if trial is not None and not trial._finished:
                await trial.mark_infeasible(infeasibility_reason(exc))
            return True  # so is an infeasible one: a result, not an error
        if trial is None or trial._finished:
            return False
        if exc is not None:
            await _fail_quietly(trial, describe(exc))
            return False
        try:
            await trial.fail(NO_RESULT_REASON)
        except FailedPreconditionError as e:
            if e.reason != "TRIAL_NOT_RUNNING":
                raise
        return False


async def _work(
    study: AsyncStudy, objective: AsyncObjective, run: RunState, client_id: str
) -> None:
    while run.take_slot():
        try:
            trial = (await study.ask(1, client_id=client_id))[0]
        except StudyCompleteError:
            run.stop()
            return
        except BaseException as e:
            run.record(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        try:
            try:
                result = objective(trial)
                if inspect.isawaitable(result):
                    result = await result
            except TrialStopped as stopped:
                if not trial._finished:
                    await trial.stop(stop_reason(stopped))
                run.finished(trial)
                continue  # stopped early: not a failure
            except TrialInfeasible as infeasible:
                if not trial._finished:
                    await trial.mark_infeasible(infeasibility_reason(infeasible))
                run.finished(trial)
                continue  # a result in itself: not a failure
            if ignored_result(trial, result):
                run.finished(trial)
                continue
            if isinstance(result, Mapping):
                await trial.report(values=result)
            else:
                await trial.report(_number(result))
            run.finished(trial)
        except BaseException as e:
            if ended_elsewhere(trial, e):
                run.finished(trial)
                continue
            if not trial._finished:
                await _fail_quietly(trial, describe(e))
            run.finished(trial)
            if isinstance(e, run.catch) and not isinstance(e, asyncio.CancelledError):
                logger.warning("trial %s failed: %s", trial.name, describe(e))
                continue
            run.record(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
