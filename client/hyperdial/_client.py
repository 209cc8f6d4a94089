"""The connection to a hyperdial service and the study-level calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, cast

import grpc

from hyperdial._base import new_request_id, study_name
from hyperdial._channel import (
    call_metadata,
    channel_options,
    method_timeout,
    normalize_target,
    resolve_credentials,
)
from hyperdial._early_stopping import EarlyStopping, StoppingRule, policy_to_proto
from hyperdial._errors import HyperdialError, from_rpc_error
from hyperdial._leases import LeaseKeeper
from hyperdial._retry import Attempts, RetryPolicy
from hyperdial._space import Objective, Parameter, parameters_to_proto
from hyperdial._study import Study
from hyperdial.v1 import study_pb2, tuning_service_pb2, tuning_service_pb2_grpc

__all__ = ["Client", "create_study_request", "delete_study_request", "given_up"]

R = TypeVar("R")

_ALGORITHMS = {
    "grid": study_pb2.ALGORITHM_GRID,
    "random": study_pb2.ALGORITHM_RANDOM,
    "quasi_random": study_pb2.ALGORITHM_QUASI_RANDOM,
    "bayesian": study_pb2.ALGORITHM_BAYESIAN,
}
# Frozen, so one default instance serves every client.
_DEFAULT_RETRY = RetryPolicy()


class Client:
    """A connection to a hyperdial service.

    Thread-safe: one client may be shared by any number of threads (``Study.optimize`` does).

    Every call is retried on ``UNAVAILABLE``, ``DEADLINE_EXCEEDED`` and the transient reasons
    of :data:`~hyperdial._retry.RETRYABLE_REASONS` (a replica shedding list calls, a full
    store, a call with the same request id in progress) under ``retry``; every
    mutating call carries a ``request_id`` that stays the same across retries, so a retry
    never applies a change twice. Each attempt has a short deadline of its own (5 s for most
    calls, 20 s for an ask), so an attempt stuck on a replica that stopped answering is
    retried on another one within the overall deadline; keepalive pings take such a replica
    out of rotation within about 15 s. While a trial handed out by this client is open (asked and
    not yet told, failed or stopped), a background thread renews its lease.

    Args:
        target: A gRPC target: ``host:port``, ``dns:///host:port`` (every address the name
            resolves to, calls spread round-robin), ``ipv4:10.0.0.1:50051,10.0.0.2:50051``,
            or the same list without the scheme (``10.0.0.1:50051,10.0.0.2:50051``).
        timeout: Deadline of each attempt, in seconds; ``None`` for the per-method deadlines
            of :data:`~hyperdial._channel.METHOD_TIMEOUTS` (5 s; 20 s for an ask, 15 s for a
            page of a list, 30 s to delete a study). The overall deadline is ``retry``'s.
        retry: How failed calls are retried; ``None`` for a single attempt (gRPC's own quick
            retries off too).
        tls: ``True`` for TLS with the system's trusted roots, or credentials from
            :func:`~hyperdial.tls_credentials` (own CA, client certificates); ``False`` for
            plaintext.
        token: A bearer token, sent as ``authorization: Bearer <token>`` with every call.
        load_balancing: gRPC load-balancing policy across the addresses of ``target``.
        health_check: With ``round_robin``, send calls only to replicas whose
            ``grpc.health.v1`` status is SERVING.
        options: More gRPC channel options; they override the client's.
        renew_leases: Renew the leases of open trials in the background. Turn it off only
            when something else sends ``HeartbeatTrial``.
        channel: A channel to use instead of opening one (for interceptors or custom
            credentials); ``tls``, ``load_balancing``, ``health_check`` and ``options`` then do not
            apply. The
            caller keeps ownership: ``close()`` leaves it open.

    Example:
        >>> with Client("dns:///hyperdial.internal:50051", tls=True, token=TOKEN) as client:
        ...     study = client.create_study("demo", [Float("x", -1, 1)])  # doctest: +SKIP
    """

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        tls: bool | grpc.ChannelCredentials = False,
        token: str | None = None,
        load_balancing: str | None = "round_robin",
        health_check: bool = True,
        options: Sequence[tuple[str, Any]] = (),
        renew_leases: bool = True,
        channel: grpc.Channel | None = None,
    ) -> None:
        self._target = target
        self._timeout = timeout
        self._retry = retry
        self._metadata = call_metadata(token)
        self._owns_channel = channel is None
        if channel is None:
            opts = channel_options(
                retry=retry is not None,
                load_balancing=load_balancing,
                health_check=health_check,
                extra=options,
            )
            target = normalize_target(target)
            credentials = resolve_credentials(tls)
            if credentials is None:
                channel = grpc.insecure_channel(target, options=opts)
            else:
                channel = grpc.secure_channel(target, credentials, options=opts)
        self._channel = channel
        self._stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        self._leases: LeaseKeeper | None = LeaseKeeper(self._heartbeat) if renew_leases else None

    def __repr__(self) -> str:
        return f"Client({self._target!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stops renewing leases and closes the channel, unless it was passed in by the
        caller."""
        if self._leases is not None:
            self._leases.close()
        if self._owns_channel:
            self._channel.close()

    def _invoke(
        self, method: str, request: object, response_type: type[R], *, deadline: float | None = None
    ) -> R:
        """Calls one unary RPC of ``TuningService``, retrying under the policy; converts every
        gRPC error.

        Args:
            method: The RPC's name.
            request: The request; resent as it is (same ``request_id``) by every retry.
            response_type: The response's type (for the type checker).
            deadline: Overall deadline instead of the policy's.
        """
        rpc: Callable[..., Any] = getattr(self._stub, method)
        timeout = self._timeout if self._timeout is not None else method_timeout(method)
        attempts = Attempts(method, self._retry, timeout, deadline=deadline)
        while True:
            try:
                response = rpc(request, timeout=attempts.timeout(), metadata=self._metadata)
            except grpc.RpcError as e:
                error = from_rpc_error(e)
                wait = attempts.failed(error)
                if wait is None:
                    raise given_up(attempts.last_error(error), attempts.count) from None
                time.sleep(wait)
                continue
            return cast(R, response)

    def _heartbeat(self, name: str, timeout: float) -> Any:
        """Starts one ``HeartbeatTrial`` (for the lease keeper); returns its future."""
        return self._stub.HeartbeatTrial.future(
            tuning_service_pb2.HeartbeatTrialRequest(name=name),
            timeout=timeout,
            metadata=self._metadata,
        )

    # -- studies ---------------------------------------------------------------------------

    def create_study(
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
    ) -> Study:
        """Creates a study.

        Args:
            study_id: Id of the study: letters, digits, ``.``, ``_``, ``-``.
            params: The search space.
            objectives: The objectives; a bare ``"minimize"`` or ``"maximize"`` means one
                objective named ``"value"`` with that goal.
            algorithm: ``"grid"``, ``"random"``, ``"quasi_random"`` or ``"bayesian"``;
                ``None`` lets the service choose (and the study records its choice).
            seed: Seed of the sampler; ``None`` lets the service draw and record one.
            max_trials: Most trials ever handed out; ``None`` for no limit.
            grid_resolution: For ``"grid"`` with float parameters: values per float parameter.
            initial_trials: For ``"bayesian"``: quasi-random trials before the model is used;
                ``None`` for the service's default.
            lease_timeout: Seconds (or a ``timedelta``) a running trial may go without a
                heartbeat before it fails with reason "lease expired"; ``None`` for the
                service's default.
            early_stopping: When running trials stop early, from the values they report
                (``trial.report(value, step)``): a rule such as ``MedianStopping(warmup_steps=5)``,
                or an ``EarlyStopping(rule, objective=..., ...)`` with the options of the
                policy. ``None``: trials never stop early (reports are still recorded).

        Returns:
            The study as stored.

        Raises:
            ValueError: ``algorithm`` or ``objectives`` is not one of the accepted words.
            TypeError: ``early_stopping`` is not a policy or a rule.
            AlreadyExistsError: A study with that id exists (reason ``STUDY_ALREADY_EXISTS``).
            InvalidArgumentError: The spec is invalid (e.g. reason ``INVALID_SEARCH_SPACE``,
                or ``INVALID_EARLY_STOPPING`` for a rule's field out of its range).
        """
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
        )
        response = self._invoke("CreateStudy", request, tuning_service_pb2.CreateStudyResponse)
        return Study(self, response.study)

    def get_study(self, study_id_or_name: str) -> Study:
        """Returns a study.

        Args:
            study_id_or_name: ``"my-study"`` or ``"studies/my-study"``.

        Raises:
            NotFoundError: No such study (reason ``STUDY_NOT_FOUND``).
        """
        response = self._invoke(
            "GetStudy",
            tuning_service_pb2.GetStudyRequest(name=study_name(study_id_or_name)),
            tuning_service_pb2.GetStudyResponse,
        )
        return Study(self, response.study)

    def list_studies(self) -> Iterator[Study]:
        """Every study, in order of id, fetched one page at a time as the iterator advances."""
        token = ""
        while True:
            response = self._invoke(
                "ListStudies",
                tuning_service_pb2.ListStudiesRequest(page_token=token),
                tuning_service_pb2.ListStudiesResponse,
            )
            for pb in response.studies:
                yield Study(self, pb)
            token = response.next_page_token
            if not token:
                return

    def delete_study(self, study_id_or_name: str | Study) -> None:
        """Deletes a study and all its trials.

        Args:
            study_id_or_name: ``"my-study"``, ``"studies/my-study"`` or a :class:`Study`.

        Raises:
            NotFoundError: No such study (reason ``STUDY_NOT_FOUND``).
        """
        self._invoke(
            "DeleteStudy",
            delete_study_request(study_id_or_name),
            tuning_service_pb2.DeleteStudyResponse,
        )


def given_up(error: HyperdialError, attempts: int) -> HyperdialError:
    """The error to raise after the last attempt: says how many there were, if several."""
    if attempts <= 1:
        return error
    return type(error)(
        f"{error.message} (gave up after {attempts} attempts)",
        code=error.code,
        reason=error.reason,
        metadata=error.metadata,
        retry_delay=error.retry_delay,
    )


def delete_study_request(study: object) -> tuning_service_pb2.DeleteStudyRequest:
    """The ``DeleteStudy`` request for a study id, name, or study object."""
    name = getattr(study, "name", study)
    if not isinstance(name, str):
        raise TypeError(f"expected a study id, name or study; got {study!r}")
    return tuning_service_pb2.DeleteStudyRequest(name=study_name(name), request_id=new_request_id())


def create_study_request(
    study_id: str,
    params: Sequence[Parameter],
    objectives: Sequence[Objective] | Objective | str,
    *,
    algorithm: str | None,
    seed: int | None,
    max_trials: int | None,
    grid_resolution: int | None,
    initial_trials: int | None,
    lease_timeout: float | timedelta | None,
    early_stopping: EarlyStopping | StoppingRule | None = None,
) -> tuning_service_pb2.CreateStudyRequest:
    """The ``CreateStudy`` request (see :meth:`Client.create_study` for the arguments)."""
    spec = study_pb2.StudySpec(
        parameters=parameters_to_proto(params),
        objectives=[o._to_proto() for o in _objectives(objectives)],
    )
    if algorithm is not None:
        if algorithm not in _ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {sorted(_ALGORITHMS)} or None; got {algorithm!r}"
            )
        spec.algorithm = _ALGORITHMS[algorithm]
    if seed is not None:
        spec.seed = seed
    if max_trials is not None:
        spec.max_trials = max_trials
    if grid_resolution is not None:
        spec.grid_resolution = grid_resolution
    if initial_trials is not None:
        spec.initial_trials = initial_trials
    if lease_timeout is not None:
        seconds = (
            lease_timeout.total_seconds()
            if isinstance(lease_timeout, timedelta)
            else float(lease_timeout)
        )
        if not seconds > 0:
            raise ValueError(f"lease_timeout must be positive or None; got {lease_timeout!r}")
        spec.lease_timeout.FromTimedelta(timedelta(seconds=seconds))
    if early_stopping is not None:
        spec.early_stopping.CopyFrom(policy_to_proto(early_stopping))
    return tuning_service_pb2.CreateStudyRequest(
        study_id=study_id, spec=spec, request_id=new_request_id()
    )


def _objectives(objectives: Sequence[Objective] | Objective | str) -> list[Objective]:
    if isinstance(objectives, str):
        if objectives not in ("minimize", "maximize"):
            raise ValueError(
                "objectives must be 'minimize', 'maximize' or a list of Objective; "
                f"got {objectives!r}"
            )
        return [Objective("value", "maximize" if objectives == "maximize" else "minimize")]
    if isinstance(objectives, Objective):
        return [objectives]
    out = list(objectives)
    for o in out:
        if not isinstance(o, Objective):
            raise TypeError(f"objectives must be Objective instances; got {o!r}")
    return out
