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
    DEFAULT_CONNECT_TIMEOUT,
    Contact,
    call_metadata,
    channel_options,
    channel_ready,
    method_timeout,
    normalize_target,
    resolve_credentials,
)
from hyperdial._early_stopping import (
    EarlyStopping,
    StoppingRule,
    policy_from_proto,
    policy_to_proto,
)
from hyperdial._errors import (
    AlreadyExistsError,
    HyperdialError,
    NotFoundError,
    ServiceUnreachableError,
    StudySpecMismatchError,
    from_rpc_error,
)
from hyperdial._leases import LeaseKeeper, lease_seconds
from hyperdial._retry import Attempts, RetryPolicy, from_transport
from hyperdial._space import (
    Constraint,
    Objective,
    Parameter,
    constraint_from_proto,
    constraints_to_proto,
    parameter_from_proto,
    parameters_to_proto,
)
from hyperdial._study import Study
from hyperdial.v1 import study_pb2, tuning_service_pb2, tuning_service_pb2_grpc

__all__ = [
    "GET_OR_CREATE_ROUNDS",
    "Client",
    "check_connect_timeout",
    "create_study_request",
    "delete_study_request",
    "given_up",
    "spec_mismatch",
    "unreachable",
]

R = TypeVar("R")

_ALGORITHMS = {
    "grid": study_pb2.ALGORITHM_GRID,
    "random": study_pb2.ALGORITHM_RANDOM,
    "quasi_random": study_pb2.ALGORITHM_QUASI_RANDOM,
    "bayesian": study_pb2.ALGORITHM_BAYESIAN,
}
# Frozen, so one default instance serves every client.
_DEFAULT_RETRY = RetryPolicy()
#: Rounds of create, then get, that get-or-create makes when the study is deleted between the
#: two calls each time (by a concurrent ``delete``); the last round's ``NotFoundError`` is
#: raised.
GET_OR_CREATE_ROUNDS = 3


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

    The retries ride out outages of a service the client has reached before (a replica
    restarting mid-study). Until its first contact with the service, a call gives up after
    ``connect_timeout`` instead, with a :class:`~hyperdial.ServiceUnreachableError` that names
    the target and what to check: a wrong address, a server that is not running, or TLS on one
    side only otherwise look the same as an outage. Retries are logged on the ``hyperdial``
    logger, at WARNING from the third on.

    Args:
        target: A gRPC target: ``host:port``, ``dns:///host:port`` (every address the name
            resolves to, calls spread round-robin), ``ipv4:10.0.0.1:50051,10.0.0.2:50051``,
            or the same list without the scheme (``10.0.0.1:50051,10.0.0.2:50051``).
        timeout: Deadline of each attempt, in seconds; ``None`` for the per-method deadlines
            of :data:`~hyperdial._channel.METHOD_TIMEOUTS` (5 s; 20 s for an ask, 15 s for a
            page of a list, 30 s to delete a study). The overall deadline is ``retry``'s.
        retry: How failed calls are retried; ``None`` for a single attempt (gRPC's own quick
            retries off too).
        connect_timeout: Seconds a call keeps trying while this client has never reached the
            service (default 5); then it raises :class:`~hyperdial.ServiceUnreachableError`.
            The service is reached once a call gets an answer from it, or fails (no answer
            in time) while the channel is connected (to a replica that reports SERVING,
            with ``health_check``); from then on only ``retry`` applies. ``None``: no such
            bound, ``retry`` alone (for a job started long before its server). With
            ``retry=None`` it does not apply: the one attempt has its own deadline.
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
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
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
                channel = grpc.insecure_channel(target, options=opts)
            else:
                channel = grpc.secure_channel(target, credentials, options=opts)
        self._channel = channel
        self._contact = Contact(lambda: channel_ready(channel))
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
                response = rpc(request, timeout=attempts.timeout(), metadata=self._metadata)
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
                time.sleep(wait)
                continue
            contact.seen()
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
        deterministic_objective: bool = False,
        constraints: Sequence[Constraint | str] = (),
        load_if_exists: bool = False,
    ) -> Study:
        """Creates a study, or with ``load_if_exists``, returns the existing one of that id.

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
            deterministic_objective: Declares that the objectives are deterministic: the
                same parameters always give the same values. The ``"bayesian"`` algorithm
                then fits no noise and never measures a point again, and the recommendation
                (``study.recommended_trial``) predicts no noise. By default the model fits
                the noise from the results: leave it false for training runs with random
                initialisation, data order or timing in their results.
            constraints: Outcome constraints, as :class:`~hyperdial.Constraint` or text:
                ``["latency_ms <= 20", "accuracy >= 0.9", "0.1 <= sparsity <= 0.5"]``. Every
                final result then reports each constraint's value beside the objectives
                (``trial.report(loss, constraint_values={...})``); a completed trial that
                breaks one is ``infeasible``, and never best or Pareto-optimal. At most 8.
            load_if_exists: When a study with that id exists, return it instead of raising
                ``AlreadyExistsError``, provided its spec is the one asked for: every
                argument given here must match the stored study (the parameters, their order
                included, the objectives, ``max_trials``, ``early_stopping``,
                ``deterministic_objective`` and ``constraints`` always; the algorithm, seed,
                ``grid_resolution``, ``initial_trials`` and ``lease_timeout`` when given,
                since otherwise the service chose them). Safe for many workers starting at
                once: each ends up with the one study.

        Returns:
            The study as stored.

        Raises:
            ValueError: ``algorithm`` or ``objectives`` is not one of the accepted words, or
                a constraint's text is malformed.
            TypeError: ``early_stopping`` is not a policy or a rule, or ``constraints`` is
                not a list of constraints.
            AlreadyExistsError: A study with that id exists (reason ``STUDY_ALREADY_EXISTS``)
                and ``load_if_exists`` is false.
            StudySpecMismatchError: With ``load_if_exists``, the study exists with another
                spec; the message lists each differing field, requested against stored.
            InvalidArgumentError: The spec is invalid (e.g. reason ``INVALID_SEARCH_SPACE``,
                ``INVALID_EARLY_STOPPING`` for a rule's field out of its range, or
                ``INVALID_CONSTRAINTS`` for a constraint without a bound or named as an
                objective).
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
            deterministic_objective=deterministic_objective,
            constraints=constraints,
        )
        for round_ in range(1, GET_OR_CREATE_ROUNDS + 1):
            try:
                created = self._invoke(
                    "CreateStudy", request, tuning_service_pb2.CreateStudyResponse
                )
                return Study(self, created.study)
            except AlreadyExistsError:
                if not load_if_exists:
                    raise
            # Created by someone else, maybe a moment ago by a worker racing this one.
            try:
                stored = self._invoke(
                    "GetStudy",
                    tuning_service_pb2.GetStudyRequest(name=study_name(study_id)),
                    tuning_service_pb2.GetStudyResponse,
                )
            except NotFoundError:
                if round_ == GET_OR_CREATE_ROUNDS:
                    raise
                # Deleted in between: create it after all, as a new request (the service
                # would answer the old request id with its ALREADY_EXISTS).
                request.request_id = new_request_id()
                continue
            spec_mismatch(request.spec, stored.study)
            return Study(self, stored.study)
        raise AssertionError("unreachable: the last round returns or raises")

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


def check_connect_timeout(connect_timeout: float | None) -> float | None:
    """``connect_timeout``, checked: positive seconds, or ``None``."""
    if connect_timeout is not None and not connect_timeout > 0:
        raise ValueError(f"connect_timeout must be positive or None; got {connect_timeout!r}")
    return connect_timeout


def unreachable(
    error: HyperdialError,
    attempts: int,
    target: str,
    tls: bool | None,
    elapsed: float,
    connect_timeout: float | None,
) -> ServiceUnreachableError:
    """The error to raise when a client that has never reached the service gives up.

    Args:
        error: The last transport error.
        attempts: How many attempts were made.
        target: The target as the caller gave it; "" for a channel of the caller's.
        tls: Whether the client uses TLS; ``None`` when unknown (a channel of the caller's).
        elapsed: Seconds since the first attempt.
        connect_timeout: The client's connect timeout, named in the message as the knob.
    """
    if tls is None:
        hint = "Client and server must both use TLS, or neither."
    elif tls:
        hint = (
            "This client uses TLS: if the server is plaintext (started without --tls-cert), "
            "connect with tls=False; if it uses TLS, check that the CA you trust signed its "
            "certificate, that the certificate names the target, and whether it requires a "
            "client certificate."
        )
    else:
        hint = (
            "This client uses plaintext: if the server uses TLS, connect with tls=True or "
            "tls=hyperdial.tls_credentials(...) (--tls on the command line)."
        )
    tries = f" in {attempts} attempts over {elapsed:.1f} s" if attempts > 1 else ""
    if connect_timeout is not None:
        tries += f" (connect_timeout {connect_timeout:g} s)"
    where = f"at {target}" if target else "through the channel given to the client"
    return ServiceUnreachableError(
        f"cannot reach the hyperdial service {where}: no connection{tries}. Is the server "
        f"running, and listening on that address? {hint} Last error: {error}",
        code=error.code,
        metadata={"target": target} if target else {},
    )


def spec_mismatch(requested: study_pb2.StudySpec, stored: study_pb2.Study) -> None:
    """Checks an existing study against the spec a get-or-create asked for.

    Compares only what the request specified: the service fills what it left unset (the
    algorithm, the seed, ``initial_trials``, ``lease_timeout``, the early-stopping policy's
    defaults), and those are not differences. Parameters and policies are compared as the
    client reads them (:func:`~hyperdial._space.parameter_from_proto`,
    :func:`~hyperdial._early_stopping.policy_from_proto`), so equal specs spelled differently
    on the wire (``SCALE_UNSPECIFIED`` and ``SCALE_LINEAR``, a default written out) match.

    Raises:
        StudySpecMismatchError: A field differs; the message lists each one.
    """
    have = stored.spec
    diffs: list[tuple[str, object, object]] = []

    def compare(name: str, want: object, got: object) -> None:
        if want != got:
            diffs.append((name, want, got))

    want_params = _parameters(requested)
    have_params = _parameters(have)
    for name, param in want_params.items():
        compare(f"parameters[{name!r}]", param, have_params.get(name, "absent"))
    for name, param in have_params.items():
        if name not in want_params:
            diffs.append((f"parameters[{name!r}]", "absent", param))
    if not diffs and list(want_params) != list(have_params):
        # The same parameters in another order: a grid or Sobol point maps to other values.
        diffs.append(("parameter order", list(want_params), list(have_params)))
    compare("objectives", _objective_list(requested), _objective_list(have))
    if requested.algorithm != study_pb2.ALGORITHM_UNSPECIFIED:
        compare("algorithm", _algorithm(requested), _algorithm(have))
    if requested.HasField("seed"):
        compare("seed", requested.seed, have.seed if have.HasField("seed") else None)
    compare("max_trials", requested.max_trials or None, have.max_trials or None)
    if requested.grid_resolution:
        compare("grid_resolution", requested.grid_resolution, have.grid_resolution or None)
    if requested.initial_trials:
        compare("initial_trials", requested.initial_trials, have.initial_trials or None)
    if lease_seconds(requested) is not None:
        compare("lease_timeout", lease_seconds(requested), lease_seconds(have))
    compare("early_stopping", policy_from_proto(requested), policy_from_proto(have))
    compare(
        "deterministic_objective",
        requested.deterministic_objective,
        have.deterministic_objective,
    )
    compare("constraints", _constraint_list(requested), _constraint_list(have))
    if not diffs:
        return
    listed = "; ".join(f"{name}: requested {want!r}, stored {got!r}" for name, want, got in diffs)
    raise StudySpecMismatchError(
        f"study {stored.name} exists with another spec: {listed}",
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="STUDY_ALREADY_EXISTS",
        metadata={"study": stored.name, "fields": "\n".join(name for name, _, _ in diffs)},
    )


def _parameters(spec: study_pb2.StudySpec) -> dict[str, object]:
    """The parameters of a spec by name, in order: helpers, or the message itself for a
    domain newer than this client."""
    out: dict[str, object] = {}
    for pb in spec.parameters:
        try:
            out[pb.name] = parameter_from_proto(pb)
        except ValueError:
            out[pb.name] = pb
    return out


def _objective_list(spec: study_pb2.StudySpec) -> list[Objective]:
    return [
        Objective(o.name, "maximize" if o.goal == study_pb2.GOAL_MAXIMIZE else "minimize")
        for o in spec.objectives
    ]


def _constraint_list(spec: study_pb2.StudySpec) -> list[Constraint]:
    return [constraint_from_proto(c) for c in spec.constraints]


def _algorithm(spec: study_pb2.StudySpec) -> str:
    for name, value in _ALGORITHMS.items():
        if value == spec.algorithm:
            return name
    return f"unknown ({spec.algorithm})"


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
    deterministic_objective: bool = False,
    constraints: Sequence[Constraint | str] = (),
) -> tuning_service_pb2.CreateStudyRequest:
    """The ``CreateStudy`` request (see :meth:`Client.create_study` for the arguments)."""
    spec = study_pb2.StudySpec(
        parameters=parameters_to_proto(params),
        objectives=[o._to_proto() for o in _objectives(objectives)],
        constraints=constraints_to_proto(constraints),
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
    if deterministic_objective:
        spec.deterministic_objective = True
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
