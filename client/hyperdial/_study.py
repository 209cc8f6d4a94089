"""Studies and trials as the client sees them: ask, tell, and the loops built on them.

The request building and the conversions live in :class:`BaseStudy` and :class:`BaseTrial`,
shared by the blocking classes here and the asyncio ones in :mod:`hyperdial.aio`, so the two
clients cannot drift apart.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, SupportsFloat, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from hyperdial._dataframe import trials_dataframe
from hyperdial._errors import (
    FailedPreconditionError,
    HyperdialError,
    NotFoundError,
    StudyCompleteError,
)
from hyperdial._leases import UNKNOWN_LEASE_TIMEOUT, lease_seconds
from hyperdial._progress import Progress, progress_wanted
from hyperdial._space import (
    Objective,
    Parameter,
    ParamValue,
    parameter_from_proto,
    value_from_proto,
    value_to_proto,
)
from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2

if TYPE_CHECKING:
    from hyperdial._client import Client

__all__ = [
    "BaseStudy",
    "BaseTrial",
    "ObjectiveResult",
    "Study",
    "Trial",
    "TrialState",
    "new_request_id",
    "study_name",
]

logger = logging.getLogger("hyperdial")

#: What an objective function returns: one value (single-objective studies) or one value
#: per objective name.
ObjectiveResult = float | Mapping[str, float]

#: Longest failure reason the service records; longer ones are cut.
MAX_FAILURE_REASON_LENGTH = 4096
# Largest page the service serves: fewest round trips when reading every trial.
_PAGE_SIZE = 1000
# Reason recorded when a ``with study.trial()`` block ends without a result.
NO_RESULT_REASON = "no result reported"


def study_name(study_id_or_name: str) -> str:
    """``studies/{study}`` for a study id or name."""
    if study_id_or_name.startswith("studies/"):
        return study_id_or_name
    return f"studies/{study_id_or_name}"


def new_request_id() -> str:
    """A fresh ``request_id`` for one mutating call; its retries reuse it."""
    return str(uuid.uuid4())


class TrialState(str, enum.Enum):
    """Where a trial is in its life."""

    #: Enqueued, waiting to be handed out by the next ask.
    WAITING = "WAITING"
    #: Handed out to a worker, waiting for its result.
    RUNNING = "RUNNING"
    #: Finished with objective values.
    COMPLETED = "COMPLETED"
    #: Finished without a result; ``failure_reason`` says why.
    FAILED = "FAILED"
    #: A state added to the protocol after this client was released.
    UNKNOWN = "UNKNOWN"

    def __str__(self) -> str:
        return self.value

    def _to_proto(self) -> trial_pb2.TrialState.ValueType:
        return _STATES_PB[self]


_STATES = {
    trial_pb2.TRIAL_STATE_WAITING: TrialState.WAITING,
    trial_pb2.TRIAL_STATE_RUNNING: TrialState.RUNNING,
    trial_pb2.TRIAL_STATE_COMPLETED: TrialState.COMPLETED,
    trial_pb2.TRIAL_STATE_FAILED: TrialState.FAILED,
}
_STATES_PB = {v: k for k, v in _STATES.items()}


@dataclass
class _Link:
    """What a trial needs to report itself: its study, and the result once one was sent."""

    study: Any
    finished: bool = False
    result: BaseTrial | None = None


@dataclass(frozen=True)
class BaseTrial:
    """One evaluation of the objectives at one point of the search space.

    A snapshot: it does not change when the trial does; ``report`` and ``fail`` return the
    trial as stored afterwards.

    Attributes:
        name: ``studies/{study}/trials/{number}``.
        number: 1, 2, 3... in order of creation within the study.
        state: Where the trial is in its life.
        params: Values of the active parameters by name: ``float`` for float and discrete
            parameters, ``int`` for integer ones, ``str`` for categorical ones. Inactive
            conditional parameters are absent.
        values: Objective values by name when COMPLETED, else ``None``.
        client_id: Who was handed the trial.
        failure_reason: Why it failed, when FAILED.
        metadata: User annotations.
        create_time: When it was created (UTC).
        complete_time: When it completed or failed (UTC), else ``None``.
        lease_expire_time: When the lease of a RUNNING trial expires unless renewed (UTC),
            else ``None``. Not compared by ``==``.
        original_number: Set on a trial created to measure again the point of a trial whose
            lease expired: that trial's number; else ``None``.
        reissued_number: Set on a trial whose lease expired once its point was handed out
            again: the number of the trial created for it (whose ``original_number`` is this
            trial's); else ``None``. A COMPLETED trial with a ``reissued_number`` took its
            result after its lease expired: it and that trial are *twins* measuring the same
            point, and an analysis that wants one measurement per point keeps one of the two.
    """

    name: str
    number: int
    state: TrialState
    params: dict[str, ParamValue]
    values: dict[str, float] | None
    client_id: str
    failure_reason: str
    metadata: dict[str, str]
    create_time: datetime | None
    complete_time: datetime | None
    lease_expire_time: datetime | None = field(default=None, compare=False)
    original_number: int | None = None
    reissued_number: int | None = None
    _link: _Link | None = field(default=None, repr=False, compare=False)

    def __hash__(self) -> int:
        return hash((self.name, self.state))

    @classmethod
    def _from_proto(cls: type[TrialT], pb: trial_pb2.Trial, link: _Link | None = None) -> TrialT:
        params = {k: value_from_proto(v) for k, v in pb.parameters.items()}
        if link is not None:
            # A protobuf map has no order: show the parameters in the order of the spec.
            order = {name: i for i, name in enumerate(link.study._param_names)}
            params = dict(sorted(params.items(), key=lambda kv: order.get(kv[0], len(order))))
        return cls(
            name=pb.name,
            number=pb.number,
            state=_STATES.get(pb.state, TrialState.UNKNOWN),
            params=params,
            values=(
                dict(pb.final_measurement.values) if pb.HasField("final_measurement") else None
            ),
            client_id=pb.client_id,
            failure_reason=pb.failure_reason,
            metadata=dict(pb.metadata),
            create_time=_datetime(pb, "create_time"),
            complete_time=_datetime(pb, "complete_time"),
            lease_expire_time=_datetime(pb, "lease_expire_time"),
            original_number=_trial_number(pb.original_trial),
            reissued_number=_trial_number(pb.reissued_trial),
            _link=link,
        )

    @property
    def value(self) -> float | None:
        """The objective value of a completed single-objective trial, else ``None``."""
        if self.values is None or len(self.values) != 1:
            return None
        return next(iter(self.values.values()))

    def _study(self) -> Any:
        if self._link is None:
            raise RuntimeError(f"trial {self.name} is not attached to a study")
        return self._link.study

    def _mark_finished(self, result: BaseTrial) -> None:
        if self._link is not None:
            self._link.finished = True
            self._link.result = result

    @property
    def _finished(self) -> bool:
        return self._link is not None and self._link.finished


TrialT = TypeVar("TrialT", bound=BaseTrial)


class Trial(BaseTrial):
    """A trial of a :class:`Study` (see :class:`BaseTrial` for the attributes)."""

    def report(
        self,
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Records the result of this running trial (see :meth:`Study.tell`).

        Returns:
            The completed trial as stored.
        """
        done: Trial = self._study().tell(self, value, values=values, metadata=metadata)
        self._mark_finished(done)
        return done

    def fail(self, reason: str) -> Trial:
        """Records that this running trial failed (see :meth:`Study.fail`).

        Returns:
            The failed trial as stored.
        """
        done: Trial = self._study().fail(self, reason)
        self._mark_finished(done)
        return done


def _trial_number(name: str) -> int | None:
    """The number of a trial resource name (``studies/{study}/trials/{n}``); ``None`` for an
    empty or unreadable name (the twin fields are empty on most trials)."""
    head, sep, number = name.rpartition("/trials/")
    if not sep or not head or not number.isdigit():
        return None
    return int(number)


def _datetime(pb: trial_pb2.Trial | study_pb2.Study, field_name: str) -> datetime | None:
    if not pb.HasField(field_name):  # type: ignore[arg-type]
        return None
    ts: Timestamp = getattr(pb, field_name)
    return ts.ToDatetime(tzinfo=timezone.utc)


class BaseStudy(Generic[TrialT]):
    """What every study object knows without calling the service, and how it builds requests.

    The calls themselves are in :class:`Study` (blocking) and ``hyperdial.aio.AsyncStudy``.
    """

    _trial_type: type[TrialT]

    def __init__(self, client: Any, pb: study_pb2.Study) -> None:
        self._client = client
        self._pb = pb
        self._params: dict[str, Parameter] = {}
        for p in pb.spec.parameters:
            try:
                self._params[p.name] = parameter_from_proto(p)
            except ValueError:  # a domain newer than this client: its values go untyped
                logger.debug("parameter %r of %s has an unknown domain", p.name, pb.name)
        self._param_names = [p.name for p in pb.spec.parameters]
        self._objectives = [
            Objective(o.name, "maximize" if o.goal == study_pb2.GOAL_MAXIMIZE else "minimize")
            for o in pb.spec.objectives
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def name(self) -> str:
        """``studies/{study}``."""
        return self._pb.name

    @property
    def study_id(self) -> str:
        """The ``{study}`` of the name."""
        return self._pb.name.split("/", 1)[-1]

    @property
    def spec(self) -> study_pb2.StudySpec:
        """The spec as stored (algorithm and seed resolved). A copy: changing it changes
        nothing."""
        spec = study_pb2.StudySpec()
        spec.CopyFrom(self._pb.spec)
        return spec

    @property
    def parameters(self) -> list[Parameter]:
        """The search space, as helpers."""
        return list(self._params.values())

    @property
    def objectives(self) -> list[Objective]:
        """The objectives."""
        return list(self._objectives)

    @property
    def algorithm(self) -> str:
        """``"grid"``, ``"random"``, ``"quasi_random"`` or ``"bayesian"``."""
        try:
            name = study_pb2.Algorithm.Name(self._pb.spec.algorithm)
        except ValueError:  # an algorithm newer than this client
            return f"unknown ({self._pb.spec.algorithm})"
        return name.removeprefix("ALGORITHM_").lower()

    @property
    def lease_timeout(self) -> float | None:
        """Seconds a running trial may go without a heartbeat or a result before its lease
        expires; ``None`` when the study has the service's default. The client renews the
        leases of its open trials by itself."""
        return lease_seconds(self._pb.spec)

    @property
    def create_time(self) -> datetime | None:
        """When the study was created (UTC)."""
        return _datetime(self._pb, "create_time")

    @property
    def trial_count(self) -> int:
        """Number of trials when this object was fetched from the service."""
        return self._pb.trial_count

    # -- requests --------------------------------------------------------------------------

    def _trial(self, pb: trial_pb2.Trial, *, finished: bool = False) -> TrialT:
        return self._trial_type._from_proto(pb, _Link(self, finished=finished))

    def _suggest_request(
        self, count: int, client_id: str
    ) -> tuning_service_pb2.SuggestTrialsRequest:
        return tuning_service_pb2.SuggestTrialsRequest(
            parent=self.name, count=count, client_id=client_id, request_id=new_request_id()
        )

    def _tell_request(
        self,
        trial_or_number: BaseTrial | int,
        value: float | None,
        values: Mapping[str, float] | None,
        metadata: Mapping[str, str] | None,
    ) -> tuning_service_pb2.CompleteTrialRequest:
        return tuning_service_pb2.CompleteTrialRequest(
            name=self._trial_name(trial_or_number),
            final_measurement=self._measurement(value, values),
            metadata=dict(metadata or {}),
            request_id=new_request_id(),
        )

    def _fail_request(
        self, trial_or_number: BaseTrial | int, reason: str, metadata: Mapping[str, str] | None
    ) -> tuning_service_pb2.CompleteTrialRequest:
        return tuning_service_pb2.CompleteTrialRequest(
            name=self._trial_name(trial_or_number),
            failure=tuning_service_pb2.TrialFailure(reason=_cut(reason)),
            metadata=dict(metadata or {}),
            request_id=new_request_id(),
        )

    def _enqueue_request(
        self, params: Mapping[str, object], metadata: Mapping[str, str] | None
    ) -> tuning_service_pb2.CreateTrialRequest:
        return tuning_service_pb2.CreateTrialRequest(
            parent=self.name,
            parameters=self._params_to_proto(params),
            metadata=dict(metadata or {}),
            request_id=new_request_id(),
        )

    def _add_trial_request(
        self,
        params: Mapping[str, object],
        value: float | None,
        values: Mapping[str, float] | None,
        failure: str | None,
        metadata: Mapping[str, str] | None,
    ) -> tuning_service_pb2.CreateTrialRequest:
        request = self._enqueue_request(params, metadata)
        if failure is not None:
            if value is not None or values is not None:
                raise ValueError("give a result (value or values) or a failure, not both")
            request.failure.reason = _cut(failure)
        elif value is None and values is None:
            raise ValueError(
                "give the outcome (value, values or failure); use enqueue() for a trial to run"
            )
        else:
            request.final_measurement.CopyFrom(self._measurement(value, values))
        return request

    def _list_request(
        self, states: list[trial_pb2.TrialState.ValueType], token: str
    ) -> tuning_service_pb2.ListTrialsRequest:
        return tuning_service_pb2.ListTrialsRequest(
            parent=self.name, page_size=_PAGE_SIZE, page_token=token, states=states
        )

    def _trial_request(self, number: int) -> tuning_service_pb2.GetTrialRequest:
        return tuning_service_pb2.GetTrialRequest(name=self._trial_name(number))

    def _optimal_request(self) -> tuning_service_pb2.ListOptimalTrialsRequest:
        return tuning_service_pb2.ListOptimalTrialsRequest(parent=self.name)

    def _best_of(self, best: list[TrialT]) -> TrialT:
        if not best:
            raise ValueError(f"no trial of {self.name} has completed yet")
        return best[0]

    def _check_single_objective(self) -> None:
        if len(self._objectives) != 1:
            raise ValueError(
                f"{self.name} has {len(self._objectives)} objectives, so no single best trial; "
                "use best_trials for the Pareto front"
            )

    def _dataframe(self, trials: list[TrialT]) -> Any:
        return trials_dataframe(trials, self._param_names, [o.name for o in self._objectives])

    # -- leases ----------------------------------------------------------------------------

    def _opened(self, trials: Iterable[BaseTrial]) -> None:
        """Starts renewing the leases of trials just handed out."""
        keeper = self._client._leases
        if keeper is None:
            return
        for t in trials:
            if t.state is TrialState.RUNNING:
                keeper.add(t.name, self.lease_timeout or UNKNOWN_LEASE_TIMEOUT, t.lease_expire_time)

    def _closed(self, name: str) -> None:
        """Stops renewing a trial's lease: it has ended."""
        keeper = self._client._leases
        if keeper is not None:
            keeper.discard(name)

    # -- helpers ---------------------------------------------------------------------------

    def _progress(self, total: int | None, best: float | None, number: int | None) -> Progress:
        goal = self._objectives[0].goal if len(self._objectives) == 1 else None
        return Progress(sys.stderr, self.study_id, total, goal=goal, best=best, best_number=number)

    def _trial_name(self, trial_or_number: BaseTrial | int) -> str:
        if isinstance(trial_or_number, BaseTrial):
            return trial_or_number.name
        if isinstance(trial_or_number, bool) or not isinstance(trial_or_number, int):
            raise TypeError(f"expected a Trial or a trial number; got {trial_or_number!r}")
        return f"{self.name}/trials/{trial_or_number}"

    def _params_to_proto(self, params: Mapping[str, object]) -> dict[str, study_pb2.ParameterValue]:
        return {name: value_to_proto(v, self._params.get(name)) for name, v in params.items()}

    def _measurement(
        self, value: float | None, values: Mapping[str, float] | None
    ) -> trial_pb2.Measurement:
        if (value is None) == (values is None):
            raise ValueError("give exactly one of value and values")
        if value is not None:
            if len(self._objectives) != 1:
                names = ", ".join(repr(o.name) for o in self._objectives)
                raise ValueError(
                    f"{self.name} has {len(self._objectives)} objectives ({names}); "
                    "pass values={name: value, ...}"
                )
            return trial_pb2.Measurement(values={self._objectives[0].name: _number(value)})
        assert values is not None
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of objective name to value; got {values!r}")
        return trial_pb2.Measurement(values={str(k): _number(v) for k, v in values.items()})


def wanted_states(
    states: Iterable[TrialState | str] | None,
) -> list[trial_pb2.TrialState.ValueType] | None:
    """The ``ListTrials`` filter for ``states``: ``[]`` for every state, ``None`` for none."""
    if states is None:
        return []
    wanted = [_state(s)._to_proto() for s in states]
    return wanted or None


class Study(BaseStudy[Trial]):
    """One tuning problem on the service. Obtain it from a :class:`~hyperdial.Client`.

    Thread-safe, like the client it uses.
    """

    _trial_type = Trial

    def __init__(self, client: Client, pb: study_pb2.Study) -> None:
        super().__init__(client, pb)

    # -- ask / tell ------------------------------------------------------------------------

    def ask(self, count: int = 1, *, client_id: str = "") -> list[Trial]:
        """Hands out running trials: enqueued ones first, then sampled ones.

        The client renews the leases of the trials it hands out until they are told or
        failed (unless it was created with ``renew_leases=False``).

        Args:
            count: How many, 1 to 100. Fewer come back only when the study has fewer left.
            client_id: Who asks (a worker or host id), recorded on the trials. A worker that
                asks again with the same id while it holds running trials of the study gets
                those back first, so give each concurrent worker its own id.

        Raises:
            StudyCompleteError: No trial is left (grid exhausted or ``max_trials`` reached).
        """
        response = self._client._invoke(
            "SuggestTrials",
            self._suggest_request(count, client_id),
            tuning_service_pb2.SuggestTrialsResponse,
        )
        trials = [self._trial(pb) for pb in response.trials]
        self._opened(trials)
        return trials

    def tell(
        self,
        trial_or_number: BaseTrial | int,
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Records the result of a running trial.

        Safe to retry: the client sends one ``request_id`` with every attempt, so a tell whose
        answer was lost is not applied twice and does not fail.

        Args:
            trial_or_number: The trial or its number.
            value: The objective value; only for a study with one objective.
            values: One value per objective name (instead of ``value``).
            metadata: Annotations merged into the trial's metadata.

        Returns:
            The completed trial as stored.

        Raises:
            ValueError: Neither or both of ``value`` and ``values``, or ``value`` for a study
                with several objectives.
            FailedPreconditionError: The trial is not running (reason ``TRIAL_NOT_RUNNING``).
            InvalidArgumentError: A value is missing, unknown or not finite.
        """
        return self._end(self._tell_request(trial_or_number, value, values, metadata))

    def fail(
        self,
        trial_or_number: BaseTrial | int,
        reason: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Records that a running trial failed.

        Args:
            trial_or_number: The trial or its number.
            reason: Why, for people; cut to 4096 characters.
            metadata: Annotations merged into the trial's metadata.

        Returns:
            The failed trial as stored.

        Raises:
            FailedPreconditionError: The trial is not running (reason ``TRIAL_NOT_RUNNING``).
        """
        return self._end(self._fail_request(trial_or_number, reason, metadata))

    def _end(self, request: tuning_service_pb2.CompleteTrialRequest) -> Trial:
        try:
            response = self._client._invoke(
                "CompleteTrial", request, tuning_service_pb2.CompleteTrialResponse
            )
        except (FailedPreconditionError, NotFoundError):
            self._closed(request.name)  # ended already: nothing left to renew
            raise
        self._closed(request.name)
        return self._trial(response.trial, finished=True)

    # -- trials ----------------------------------------------------------------------------

    def enqueue(
        self, params: Mapping[str, object], metadata: Mapping[str, str] | None = None
    ) -> Trial:
        """Enqueues a point: the next ask hands it out before any sampled one.

        Args:
            params: Values of the active parameters by name.
            metadata: Annotations of the trial.

        Returns:
            The WAITING trial.

        Raises:
            InvalidArgumentError: The point is not in the search space
                (reason ``INVALID_PARAMETERS``).
        """
        response = self._client._invoke(
            "CreateTrial",
            self._enqueue_request(params, metadata),
            tuning_service_pb2.CreateTrialResponse,
        )
        return self._trial(response.trial)

    def add_trial(
        self,
        params: Mapping[str, object],
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        failure: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Imports a trial that finished elsewhere: completed (``value`` or ``values``) or
        failed (``failure``). It does not count towards ``max_trials``.

        Args:
            params: Values of the active parameters by name.
            value: The objective value; only for a study with one objective.
            values: One value per objective name.
            failure: Why the trial failed, instead of a result.
            metadata: Annotations of the trial.

        Returns:
            The trial as stored.

        Raises:
            ValueError: Not exactly one outcome is given.
            InvalidArgumentError: The point or the values are invalid.
        """
        response = self._client._invoke(
            "CreateTrial",
            self._add_trial_request(params, value, values, failure, metadata),
            tuning_service_pb2.CreateTrialResponse,
        )
        return self._trial(response.trial, finished=True)

    def trials(self, states: Iterable[TrialState | str] | None = None) -> list[Trial]:
        """The trials of the study in order of number, all pages read.

        Args:
            states: Only trials in one of these states (e.g. ``["COMPLETED"]``); ``None``
                for every state.
        """
        wanted = wanted_states(states)
        if wanted is None:
            return []
        out: list[Trial] = []
        token = ""
        while True:
            response = self._client._invoke(
                "ListTrials",
                self._list_request(wanted, token),
                tuning_service_pb2.ListTrialsResponse,
            )
            out += [self._trial(pb) for pb in response.trials]
            token = response.next_page_token
            if not token:
                return out

    def get_trial(self, number: int) -> Trial:
        """Returns the trial of that number.

        Raises:
            NotFoundError: No such trial (reason ``TRIAL_NOT_FOUND``).
        """
        response = self._client._invoke(
            "GetTrial", self._trial_request(number), tuning_service_pb2.GetTrialResponse
        )
        return self._trial(response.trial)

    @property
    def best_trials(self) -> list[Trial]:
        """The best completed trial (one objective) or every Pareto-optimal one (several);
        empty when no trial has completed."""
        response = self._client._invoke(
            "ListOptimalTrials",
            self._optimal_request(),
            tuning_service_pb2.ListOptimalTrialsResponse,
        )
        return [self._trial(pb, finished=True) for pb in response.trials]

    @property
    def best_trial(self) -> Trial:
        """The best completed trial of a single-objective study (the lowest number among ties).

        Raises:
            ValueError: The study has several objectives (use ``best_trials``), or no trial
                has completed yet.
        """
        self._check_single_objective()
        return self._best_of(self.best_trials)

    def trials_dataframe(self, states: Iterable[TrialState | str] | None = None) -> Any:
        """The trials as a ``pandas.DataFrame``, one row per trial in order of number.

        Columns: ``number``, ``state``, ``value`` (one objective) or ``values_<name>``,
        ``params_<name>``, ``client_id``, ``failure_reason``, ``create_time``,
        ``complete_time``, ``duration``, ``original_number``, ``reissued_number`` (nullable
        integers: the twin of a trial whose lease expired), ``metadata_<key>``.

        Args:
            states: Only trials in one of these states; ``None`` for every state.

        Raises:
            ImportError: pandas is not installed (it is not a dependency of hyperdial).
        """
        return self._dataframe(self.trials(states))

    # -- loops -----------------------------------------------------------------------------

    def trial(self, client_id: str = "") -> _TrialContext:
        """Asks for one trial and makes sure it ends.

        ``with study.trial() as t: ... t.report(loss)``. If the block raises, the trial is
        failed with the exception's type and message and the exception propagates; if the
        block ends without a result, the trial is failed with reason "no result reported".
        The trial's lease is renewed while the block runs.

        Args:
            client_id: Who asks, recorded on the trial.

        Raises:
            StudyCompleteError: On entry, when no trial is left.
        """
        return _TrialContext(self, client_id)

    def optimize(
        self,
        objective: Callable[[Trial], ObjectiveResult | None],
        n_trials: int | None = None,
        *,
        n_workers: int = 1,
        catch: tuple[type[BaseException], ...] = (),
        client_id: str = "",
        show_progress: bool | None = None,
    ) -> None:
        """Runs ask → objective → tell in a loop over ``n_workers`` threads.

        The objective returns one value (single-objective study) or a mapping of objective
        name to value; it may instead report the trial itself and return ``None``. Stops
        without error when the study is complete. Leases of running trials are renewed in
        the background, however long the objective takes.

        Args:
            objective: Evaluates a trial.
            n_trials: Most trials to run (failed ones included); ``None`` runs until the study
                is complete.
            n_workers: Threads running trials in parallel, sharing this study's client.
            catch: Exception types that fail the trial but let the optimisation go on.
            client_id: Recorded on every trial this call runs; with several workers, worker
                *i* uses ``f"{client_id}-{i}"`` (a worker asking with the id of a running
                trial gets that trial back).
            show_progress: Draw a progress line with the best value so far on stderr;
                ``None`` (the default) draws it only when stderr is a terminal.

        Raises:
            ValueError: ``n_workers`` < 1 or ``n_trials`` < 0.
            BaseException: The first exception of the objective not in ``catch`` (its trial
                is failed), after every worker finished its current trial; or the first
                error of the service other than the study being complete.
        """
        _check_run(n_trials, n_workers)
        progress = None
        if progress_wanted(show_progress, sys.stderr):
            best, number = _best_for_progress(self, lambda: self.best_trials)
            progress = self._progress(n_trials, best, number)
        run = RunState(n_trials, catch, progress)
        ids = worker_ids(client_id, n_workers)
        try:
            if n_workers == 1:
                _work(self, objective, run, ids[0])  # in the caller's thread: Ctrl-C works
            else:
                threads = [
                    threading.Thread(
                        target=_work,
                        args=(self, objective, run, ids[i]),
                        name=f"hyperdial-worker-{i}",
                        daemon=True,
                    )
                    for i in range(n_workers)
                ]
                for t in threads:
                    t.start()
                try:
                    for t in threads:
                        t.join()
                except BaseException:
                    # Ctrl-C while waiting: let every worker finish its current trial, then stop.
                    run.stop()
                    for t in threads:
                        t.join()
                    raise
        finally:
            if progress is not None:
                progress.close()
        run.raise_error()


def _check_run(n_trials: int | None, n_workers: int) -> None:
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1; got {n_workers}")
    if n_trials is not None and n_trials < 0:
        raise ValueError(f"n_trials must be None or at least 0; got {n_trials}")


def worker_ids(client_id: str, n_workers: int) -> list[str]:
    """The ``client_id`` of each worker of ``optimize``: distinct when several share one."""
    if not client_id or n_workers == 1:
        return [client_id] * n_workers
    return [f"{client_id}-{i}" for i in range(n_workers)]


def _best_for_progress(
    study: BaseStudy[Any], best_trials: Callable[[], Sequence[BaseTrial]]
) -> tuple[float | None, int | None]:
    if len(study._objectives) != 1:
        return None, None
    try:
        best = best_trials()
    except HyperdialError:  # only for the display: the run reports real errors itself
        return None, None
    return (best[0].value, best[0].number) if best else (None, None)


def _number(value: object) -> float:
    # SupportsFloat admits numpy scalars; bool and str would convert silently, so refuse them.
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, SupportsFloat):
        raise TypeError(f"an objective value must be a number; got {value!r}")
    return float(value)


def _state(state: TrialState | str) -> TrialState:
    try:
        found = TrialState(str(state).upper())
    except ValueError:
        found = TrialState.UNKNOWN
    if found is TrialState.UNKNOWN:
        raise ValueError(
            f"unknown trial state {state!r}; use WAITING, RUNNING, COMPLETED or FAILED"
        )
    return found


def _cut(reason: str) -> str:
    reason = str(reason)
    if len(reason) <= MAX_FAILURE_REASON_LENGTH:
        return reason
    return reason[: MAX_FAILURE_REASON_LENGTH - 3] + "..."


def describe(exc: BaseException) -> str:
    """``"Type: message"``, cut to a failure reason's length."""
    text = str(exc)
    return _cut(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def quiet_failure(trial: BaseTrial, error: HyperdialError) -> None:
    """Logs why a trial could not be failed while another error is being handled."""
    if isinstance(error, FailedPreconditionError) and error.reason == "TRIAL_NOT_RUNNING":
        return  # already ended by other means: nothing to do
    logger.warning("could not fail %s: %s", trial.name, error)


def _fail_quietly(trial: Trial, reason: str) -> None:
    """Fails a running trial while another error is being handled: that error matters more."""
    try:
        trial.fail(reason)
    except HyperdialError as e:
        quiet_failure(trial, e)


class _TrialContext(contextlib.AbstractContextManager["Trial"]):
    """``with study.trial() as t``: one asked trial that always ends."""

    def __init__(self, study: Study, client_id: str) -> None:
        self._study = study
        self._client_id = client_id
        self._trial: Trial | None = None

    def __enter__(self) -> Trial:
        self._trial = self._study.ask(1, client_id=self._client_id)[0]
        return self._trial

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        trial = self._trial
        if trial is None or trial._finished:
            return
        if exc is not None:
            _fail_quietly(trial, describe(exc))
            return
        try:
            trial.fail(NO_RESULT_REASON)
        except FailedPreconditionError as e:
            # Told through study.tell() instead of t.report(): the trial has ended anyway.
            if e.reason != "TRIAL_NOT_RUNNING":
                raise


class RunState:
    """State shared by the workers of one ``optimize`` call (threads or tasks)."""

    def __init__(
        self,
        n_trials: int | None,
        catch: tuple[type[BaseException], ...],
        progress: Progress | None,
    ) -> None:
        self.catch = catch
        self.progress = progress
        self._n_trials = n_trials
        self._lock = threading.Lock()
        self._started = 0
        self._stopped = False
        self._error: BaseException | None = None

    def stop(self) -> None:
        """No worker starts another trial."""
        with self._lock:
            self._stopped = True

    def raise_error(self) -> None:
        """Raises the first error recorded, if any."""
        if self._error is not None:
            raise self._error

    def take_slot(self) -> bool:
        """Claims the right to run one more trial."""
        with self._lock:
            if self._stopped or (self._n_trials is not None and self._started >= self._n_trials):
                return False
            self._started += 1
            return True

    def record(self, error: BaseException) -> None:
        """Stops the run on an error; the first one is raised at the end."""
        with self._lock:
            self._stopped = True
            if self._error is None:
                self._error = error

    def finished(self, trial: BaseTrial) -> None:
        """Counts a trial that ended (for the progress line)."""
        if self.progress is None:
            return
        result = trial._link.result if trial._link is not None else None
        if result is None or result.state is not TrialState.COMPLETED:
            self.progress.trial_failed()
        else:
            self.progress.trial_finished(result.number, result.value)


def _work(
    study: Study,
    objective: Callable[[Trial], ObjectiveResult | None],
    run: RunState,
    client_id: str,
) -> None:
    while run.take_slot():
        try:
            trial = study.ask(1, client_id=client_id)[0]
        except StudyCompleteError:
            run.stop()
            return
        except BaseException as e:
            run.record(e)
            return
        try:
            result = objective(trial)
            if result is None and trial._finished:
                run.finished(trial)
                continue  # the objective reported the trial itself
            if isinstance(result, Mapping):
                trial.report(values=result)
            else:
                trial.report(_number(result))
            run.finished(trial)
        except BaseException as e:
            if not trial._finished:
                _fail_quietly(trial, describe(e))
            run.finished(trial)
            if isinstance(e, run.catch):
                logger.warning("trial %s failed: %s", trial.name, describe(e))
                continue
            run.record(e)
            return
