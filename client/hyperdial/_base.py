"""The half of studies and trials that both clients share: what they know, and the requests.

:class:`BaseTrial` is a trial as the service returned it; :class:`BaseStudy` knows its study
without calling the service and builds every request. The calls themselves are in
:class:`~hyperdial.Study` (blocking) and ``hyperdial.aio.AsyncStudy``, so the two clients
cannot drift apart.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, SupportsFloat, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from hyperdial._dataframe import trials_dataframe
from hyperdial._early_stopping import (
    Decision,
    EarlyStopping,
    Measurement,
    decision_from_proto,
    elapsed_to_proto,
    measurement_from_proto,
    policy_from_proto,
    step_value,
)
from hyperdial._leases import UNKNOWN_LEASE_TIMEOUT, lease_seconds
from hyperdial._prediction import Prediction
from hyperdial._space import (
    Constraint,
    Objective,
    Parameter,
    ParamValue,
    constraint_from_proto,
    parameter_from_proto,
    value_from_proto,
    value_to_proto,
)
from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2

__all__ = [
    "BaseStudy",
    "BaseTrial",
    "TrialChanges",
    "TrialState",
    "new_request_id",
    "split_values",
    "study_name",
]

logger = logging.getLogger("hyperdial")

#: Longest failure reason the service records; longer ones are cut.
MAX_FAILURE_REASON_LENGTH = 4096
# Largest page the service serves: fewest round trips when reading every trial.
_PAGE_SIZE = 1000


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
    #: Stopped early, by the study's early-stopping policy or by its worker;
    #: ``stop_decision`` says why. Optuna calls this state PRUNED.
    STOPPED = "STOPPED"
    #: Finished without a result because its parameters cannot give one (out of memory,
    #: diverged, an invalid configuration); ``infeasibility_reason`` says why. Unlike FAILED
    #: (the infrastructure failed), the point is a result: it is never handed out again.
    INFEASIBLE = "INFEASIBLE"
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
    trial_pb2.TRIAL_STATE_STOPPED: TrialState.STOPPED,
    trial_pb2.TRIAL_STATE_INFEASIBLE: TrialState.INFEASIBLE,
}
_STATES_PB = {v: k for k, v in _STATES.items()}


@dataclass
class _StudyAttachment:
    """Ties a frozen trial to its study: where it reports, whether (and how) it ended, and
    the last early-stopping decision this process got for it."""

    study: Any
    finished: bool = False
    result: BaseTrial | None = None
    decision: Decision | None = None


@dataclass(frozen=True)
class BaseTrial:
    """One evaluation of the objectives at one point of the search space.

    A snapshot: it does not change when the trial does; ``report`` (without a step), ``fail``
    and ``stop`` return the trial as stored afterwards. What intermediate reports answered is
    kept beside it: :attr:`should_stop` and :attr:`last_decision`.

    Attributes:
        name: ``studies/{study}/trials/{number}``.
        number: 1, 2, 3... in order of creation within the study.
        state: Where the trial is in its life.
        params: Values of the active parameters by name: ``float`` for float and discrete
            parameters, ``int`` for integer ones, ``str`` for categorical ones. Inactive
            conditional parameters are absent.
        values: Objective values by name: the result of a COMPLETED trial; for a STOPPED
            one, the values of its last report (which may lack objectives other than the
            one the policy watches; ``None`` when it reported nothing); else ``None``.
        constraint_values: The values of the study's outcome constraints
            (:attr:`BaseStudy.constraints`) that came with ``values``, by name; ``None``
            when ``values`` is, or when the study has no constraints. (A trial read without
            its study, as ``hyperdial ask`` does, keeps every measured value in ``values``.)
        client_id: Who was handed the trial.
        failure_reason: Why it failed, when FAILED.
        infeasible: Whether its outcome is infeasible: an INFEASIBLE trial, or a COMPLETED
            one (or a STOPPED one ranked by its last report) whose values break a
            constraint of the study. Never best or Pareto-optimal. False for a trial that
            has not finished.
        infeasibility_reason: Why it is infeasible: the worker's reason for an INFEASIBLE
            trial, or the constraints broken (``"latency_ms = 25.3 > 20 (upper bound)"``);
            empty when ``infeasible`` is false.
        metadata: User annotations.
        create_time: When it was created (UTC).
        complete_time: When it finished (UTC), else ``None``.
        lease_expire_time: When the lease of a RUNNING trial expires unless renewed (UTC),
            else ``None``. Not compared by ``==``.
        original_number: Set on a trial created to measure again the point of a trial whose
            lease expired: that trial's number; else ``None``.
        reissued_number: Set on a trial whose lease expired once its point was handed out
            again: the number of the trial created for it (whose ``original_number`` is this
            trial's); else ``None``. A COMPLETED trial with a ``reissued_number`` took its
            result after its lease expired: it and that trial are *twins* measuring the same
            point, and an analysis that wants one measurement per point keeps one of the two.
        measurement_count: How many intermediate measurements the trial reported.
        measurements: Its learning curve, in order of step: the intermediate measurements
            the service kept (at most the policy's ``max_measurements_per_trial``; older ones
            are thinned past it, the last one is always kept). Only in a trial read with its
            measurements (``get_trial``, ``trials(with_measurements=True)``); empty
            otherwise, while ``measurement_count`` still counts them. Not compared by ``==``.
        stop_decision: Why a STOPPED trial stopped, else ``None``.
        bracket: The Hyperband bracket of the trial; 0 under any other policy.
        revision: The study's revision (:attr:`BaseStudy.revision`) at the trial's last
            change: its creation, its hand-out, a heartbeat, a report, its result, the expiry
            of its lease or the re-issue of its point (see :meth:`~hyperdial.Study.changes`).
            Not compared by ``==`` (a heartbeat changes it).
        prediction: What the service's model predicts at the trial's parameters, for a trial
            read as a recommendation (``study.recommended_trial``, ``recommended_trials``);
            ``None`` otherwise, and when the study had too few completed trials for a model.
            Not compared by ``==``.
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
    measurement_count: int = 0
    measurements: tuple[Measurement, ...] = field(default=(), compare=False)
    stop_decision: Decision | None = None
    bracket: int = 0
    revision: int = field(default=0, compare=False)
    prediction: Prediction | None = field(default=None, compare=False)
    constraint_values: dict[str, float] | None = None
    infeasible: bool = False
    infeasibility_reason: str = ""
    _attachment: _StudyAttachment | None = field(default=None, repr=False, compare=False)

    def __hash__(self) -> int:
        return hash((self.name, self.state))

    @classmethod
    def _from_proto(
        cls: type[TrialT], pb: trial_pb2.Trial, attachment: _StudyAttachment | None = None
    ) -> TrialT:
        params = {k: value_from_proto(v) for k, v in pb.parameters.items()}
        constraint_names: list[str] = []
        if attachment is not None:
            # A protobuf map has no order: show the parameters in the order of the spec.
            order = {name: i for i, name in enumerate(attachment.study._param_names)}
            params = dict(sorted(params.items(), key=lambda kv: order.get(kv[0], len(order))))
            constraint_names = [c.name for c in attachment.study._constraints]
        values = constraint_values = None
        if pb.HasField("final_measurement"):
            values, constraint_values = split_values(pb.final_measurement.values, constraint_names)
        return cls(
            name=pb.name,
            number=pb.number,
            state=_STATES.get(pb.state, TrialState.UNKNOWN),
            params=params,
            values=values,
            constraint_values=constraint_values,
            infeasible=pb.infeasible,
            infeasibility_reason=pb.infeasibility_reason,
            client_id=pb.client_id,
            failure_reason=pb.failure_reason,
            metadata=dict(pb.metadata),
            create_time=_datetime(pb, "create_time"),
            complete_time=_datetime(pb, "complete_time"),
            lease_expire_time=_datetime(pb, "lease_expire_time"),
            original_number=_trial_number(pb.original_trial),
            reissued_number=_trial_number(pb.reissued_trial),
            measurement_count=pb.measurement_count,
            measurements=tuple(measurement_from_proto(m) for m in pb.measurements),
            stop_decision=(
                decision_from_proto(pb.stop_decision) if pb.HasField("stop_decision") else None
            ),
            bracket=pb.bracket,
            revision=pb.revision,
            _attachment=attachment,
        )

    @property
    def value(self) -> float | None:
        """The objective value of a single-objective trial that completed (or stopped after a
        report), else ``None``."""
        if self.values is None or len(self.values) != 1:
            return None
        if self._attachment is not None and len(self._attachment.study._objectives) != 1:
            return None  # a stopped trial's partial values in a multi-objective study
        return next(iter(self.values.values()))

    @property
    def last_step(self) -> int | None:
        """Step of the trial's last intermediate measurement when known: from its
        measurements, or from its stop decision; else ``None``."""
        if self.measurements:
            return self.measurements[-1].step
        if self.stop_decision is not None and self.measurement_count:
            return self.stop_decision.step
        return None

    @property
    def last_decision(self) -> Decision | None:
        """The last early-stopping decision this process got for the trial (from a report or
        ``check_stopping``); else its ``stop_decision`` as read; else ``None``."""
        if self._attachment is not None and self._attachment.decision is not None:
            return self._attachment.decision
        return self.stop_decision

    @property
    def should_stop(self) -> bool:
        """Whether the trial was told to stop: by the last report or ``check_stopping`` of this
        process, or as read (a STOPPED trial). No call to the service: see
        ``check_stopping()`` for a fresh answer."""
        decision = self.last_decision
        return decision is not None and decision.should_stop

    def _study(self) -> Any:
        if self._attachment is None:
            raise RuntimeError(f"trial {self.name} is not attached to a study")
        return self._attachment.study

    def _mark_finished(self, result: BaseTrial | None) -> None:
        if self._attachment is not None:
            self._attachment.finished = True
            if result is not None:
                self._attachment.result = result

    def _decided(self, decision: Decision, trial: BaseTrial | None) -> None:
        """Records a decision; a stop ends the trial (the service stopped it already)."""
        if self._attachment is not None:
            self._attachment.decision = decision
        if decision.should_stop:
            self._mark_finished(trial)

    @property
    def _stopped(self) -> bool:
        """Whether this process knows the trial is STOPPED."""
        a = self._attachment
        if a is None:
            return False
        if a.result is not None:
            return a.result.state is TrialState.STOPPED
        return a.decision is not None and a.decision.should_stop

    @property
    def _finished(self) -> bool:
        return self._attachment is not None and self._attachment.finished


TrialT = TypeVar("TrialT", bound=BaseTrial)


def split_values(
    measured: Mapping[str, float], constraint_names: Iterable[str]
) -> tuple[dict[str, float], dict[str, float] | None]:
    """A measurement's values split into the objectives' (and any other name) and the
    constraints'; the second is ``None`` for a study without constraints."""
    names = set(constraint_names)
    if not names:
        return dict(measured), None
    values = {k: v for k, v in measured.items() if k not in names}
    return values, {k: v for k, v in measured.items() if k in names}


@dataclass(frozen=True)
class TrialChanges(Generic[TrialT]):
    """What :meth:`~hyperdial.Study.changes` read: the trials that changed after a revision of
    the study, and the revision to read from next time.

    Attributes:
        trials: Each trial that changed, once, as last read: in order of its revision (of
            its number for a read of every trial, from revision 0).
        revision: The study's revision when the read began (the ``revision`` of its first
            page): pass it as ``after_revision`` to the next read. A trial that changed while
            the pages were read has a greater revision, so it comes again then: nothing is
            missed.
    """

    trials: list[TrialT]
    revision: int


class _ChangesReader(Generic[TrialT]):
    """Gathers the pages of one read of :meth:`~hyperdial.Study.changes`."""

    def __init__(self, after_revision: int) -> None:
        if isinstance(after_revision, bool) or not isinstance(after_revision, int):
            raise TypeError(f"after_revision must be an int; got {after_revision!r}")
        if after_revision < 0:
            raise ValueError(
                f"after_revision must be 0 (every trial) or a revision the study had; got "
                f"{after_revision}"
            )
        self.after_revision = after_revision
        self._trials: dict[int, TrialT] = {}
        self._revision: int | None = None

    def add(self, trials: Iterable[TrialT], revision: int) -> None:
        """Takes a page: its trials, and the study's revision when it was read."""
        if self._revision is None:
            self._revision = revision
        for t in trials:
            # A trial read again (it changed during the read) is kept as last read.
            self._trials.pop(t.number, None)
            self._trials[t.number] = t

    def result(self) -> TrialChanges[TrialT]:
        return TrialChanges(list(self._trials.values()), self._revision or 0)


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
        self._constraints = [constraint_from_proto(c) for c in pb.spec.constraints]

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
    def constraints(self) -> list[Constraint]:
        """The outcome constraints: metrics every final measurement reports beside the
        objectives, and their bounds. Empty for a study without any."""
        return list(self._constraints)

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
    def early_stopping(self) -> EarlyStopping | None:
        """The early-stopping policy, with every default the service resolved (the objective
        it watches by name, ``max_measurements_per_trial``); ``None`` when trials never stop
        early (reports are still recorded)."""
        return policy_from_proto(self._pb.spec)

    @property
    def deterministic_objective(self) -> bool:
        """Whether the study declares its objectives deterministic (the same parameters always
        give the same values): the model then fits no noise."""
        return self._pb.spec.deterministic_objective

    @property
    def create_time(self) -> datetime | None:
        """When the study was created (UTC)."""
        return _datetime(self._pb, "create_time")

    @property
    def trial_count(self) -> int:
        """Number of trials when this object was fetched from the service."""
        return self._pb.trial_count

    @property
    def revision(self) -> int:
        """The study's change counter when this object was fetched: 0 without trials, one more
        at every change of one of its trials (which takes it as its ``revision``). Pass it to
        :meth:`~hyperdial.Study.changes` to read what changed since."""
        return self._pb.revision

    @property
    def update_time(self) -> datetime | None:
        """When a trial of the study last changed (UTC), as of when this object was fetched;
        the creation time while it has no trials; ``None`` from a service too old to say."""
        return _datetime(self._pb, "update_time")

    @property
    def state_counts(self) -> dict[str, int]:
        """How many trials were in each state when this object was fetched, keyed
        ``"WAITING"``, ``"RUNNING"``, ``"COMPLETED"``, ``"FAILED"``, ``"STOPPED"``,
        ``"INFEASIBLE"`` (a :class:`TrialState` works as a key too). COMPLETED counts the
        trials that break a constraint too (their ``infeasible`` is true)."""
        counts = self._pb.state_counts
        return {
            TrialState.WAITING.value: counts.waiting,
            TrialState.RUNNING.value: counts.running,
            TrialState.COMPLETED.value: counts.completed,
            TrialState.FAILED.value: counts.failed,
            TrialState.STOPPED.value: counts.stopped,
            TrialState.INFEASIBLE.value: counts.infeasible,
        }

    # -- requests --------------------------------------------------------------------------

    def _trial(self, pb: trial_pb2.Trial, *, finished: bool = False) -> TrialT:
        return self._trial_type._from_proto(pb, _StudyAttachment(self, finished=finished))

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
        constraint_values: Mapping[str, float] | None = None,
    ) -> tuning_service_pb2.CompleteTrialRequest:
        return tuning_service_pb2.CompleteTrialRequest(
            name=self._trial_name(trial_or_number),
            final_measurement=self._measurement(value, values, constraint_values),
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

    def _infeasible_request(
        self, trial_or_number: BaseTrial | int, reason: str, metadata: Mapping[str, str] | None
    ) -> tuning_service_pb2.CompleteTrialRequest:
        return tuning_service_pb2.CompleteTrialRequest(
            name=self._trial_name(trial_or_number),
            infeasibility=tuning_service_pb2.TrialInfeasibility(reason=_cut(reason)),
            metadata=dict(metadata or {}),
            request_id=new_request_id(),
        )

    def _stop_request(
        self, trial_or_number: BaseTrial | int, reason: str, metadata: Mapping[str, str] | None
    ) -> tuning_service_pb2.CompleteTrialRequest:
        return tuning_service_pb2.CompleteTrialRequest(
            name=self._trial_name(trial_or_number),
            stop=tuning_service_pb2.TrialStop(reason=_cut(reason)),
            metadata=dict(metadata or {}),
            request_id=new_request_id(),
        )

    def _report_request(
        self,
        trial_or_number: BaseTrial | int,
        value: float | Mapping[str, float],
        step: int,
        elapsed: float | timedelta | None,
    ) -> tuning_service_pb2.AddTrialMeasurementRequest:
        measurement = trial_pb2.Measurement(
            step=step_value(step), values=self._report_values(value)
        )
        if elapsed is not None:
            elapsed_to_proto(elapsed, measurement)
        return tuning_service_pb2.AddTrialMeasurementRequest(
            name=self._trial_name(trial_or_number),
            measurement=measurement,
            request_id=new_request_id(),
        )

    def _check_request(
        self, trial_or_number: BaseTrial | int
    ) -> tuning_service_pb2.CheckTrialEarlyStoppingRequest:
        return tuning_service_pb2.CheckTrialEarlyStoppingRequest(
            name=self._trial_name(trial_or_number)
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
        constraint_values: Mapping[str, float] | None = None,
        infeasibility: str | None = None,
    ) -> tuning_service_pb2.CreateTrialRequest:
        request = self._enqueue_request(params, metadata)
        result = value is not None or values is not None or constraint_values is not None
        if (failure is not None) + (infeasibility is not None) + result > 1:
            raise ValueError(
                "give one outcome: a result (value or values), a failure or an infeasibility"
            )
        if failure is not None:
            request.failure.reason = _cut(failure)
        elif infeasibility is not None:
            request.infeasibility.reason = _cut(infeasibility)
        elif value is None and values is None:
            raise ValueError(
                "give the outcome (value, values, failure or infeasibility); use enqueue() "
                "for a trial to run"
            )
        else:
            request.final_measurement.CopyFrom(self._measurement(value, values, constraint_values))
        return request

    def _list_request(
        self,
        states: list[trial_pb2.TrialState.ValueType],
        token: str,
        with_measurements: bool,
        changed_after_revision: int = 0,
    ) -> tuning_service_pb2.ListTrialsRequest:
        return tuning_service_pb2.ListTrialsRequest(
            parent=self.name,
            page_size=_PAGE_SIZE,
            page_token=token,
            states=states,
            view=_view(with_measurements),
            changed_after_revision=changed_after_revision,
        )

    def _trial_request(
        self, number: int, with_measurements: bool
    ) -> tuning_service_pb2.GetTrialRequest:
        return tuning_service_pb2.GetTrialRequest(
            name=self._trial_name(number), view=_view(with_measurements)
        )

    def _optimal_request(
        self, *, by_model: bool = False
    ) -> tuning_service_pb2.ListOptimalTrialsRequest:
        basis = (
            tuning_service_pb2.OPTIMALITY_BASIS_MODEL
            if by_model
            else tuning_service_pb2.OPTIMALITY_BASIS_UNSPECIFIED
        )
        return tuning_service_pb2.ListOptimalTrialsRequest(parent=self.name, basis=basis)

    def _recommended(self, response: tuning_service_pb2.ListOptimalTrialsResponse) -> list[TrialT]:
        """The trials of a ``ListOptimalTrials`` answer by the model, each with its prediction
        (none when the service answered by observed values: too few completed trials)."""
        trials = [self._trial(pb, finished=True) for pb in response.trials]
        if len(response.predictions) != len(trials):
            return trials
        return [
            replace(t, prediction=Prediction._from_proto(p))
            for t, p in zip(trials, response.predictions, strict=True)
        ]

    def _best_of(self, best: list[TrialT]) -> TrialT:
        if not best:
            raise ValueError(f"no trial of {self.name} has completed yet")
        return best[0]

    def _check_single_objective(self, best: str = "best") -> None:
        if len(self._objectives) != 1:
            raise ValueError(
                f"{self.name} has {len(self._objectives)} objectives, so no single {best} "
                f"trial; use {best}_trials for the Pareto front"
            )

    def _dataframe(self, trials: list[TrialT]) -> Any:
        return trials_dataframe(
            trials,
            self._param_names,
            [o.name for o in self._objectives],
            [c.name for c in self._constraints],
        )

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

    def _reported(
        self,
        trial_or_number: BaseTrial | int,
        response: tuning_service_pb2.AddTrialMeasurementResponse,
    ) -> Decision:
        """Handles a report's answer: a stop ends the lease, a continue renewed it."""
        decision = decision_from_proto(response.decision)
        name = self._trial_name(trial_or_number)
        if decision.should_stop or response.trial.state != trial_pb2.TRIAL_STATE_RUNNING:
            self._closed(name)
        else:
            keeper = self._client._leases
            if keeper is not None:
                keeper.renewed(name, _datetime(response.trial, "lease_expire_time"))
        if isinstance(trial_or_number, BaseTrial):
            stored = self._trial(response.trial, finished=True) if decision.should_stop else None
            trial_or_number._decided(decision, stored)
        return decision

    def _checked(
        self,
        trial_or_number: BaseTrial | int,
        response: tuning_service_pb2.CheckTrialEarlyStoppingResponse,
    ) -> Decision:
        decision = decision_from_proto(response.decision)
        if decision.should_stop:
            self._closed(self._trial_name(trial_or_number))
        if isinstance(trial_or_number, BaseTrial):
            trial_or_number._decided(decision, None)
        return decision

    # -- helpers ---------------------------------------------------------------------------

    def _trial_name(self, trial_or_number: BaseTrial | int) -> str:
        if isinstance(trial_or_number, BaseTrial):
            return trial_or_number.name
        if isinstance(trial_or_number, bool) or not isinstance(trial_or_number, int):
            raise TypeError(f"expected a Trial or a trial number; got {trial_or_number!r}")
        return f"{self.name}/trials/{trial_or_number}"

    def _params_to_proto(self, params: Mapping[str, object]) -> dict[str, study_pb2.ParameterValue]:
        return {name: value_to_proto(v, self._params.get(name)) for name, v in params.items()}

    def _report_values(self, value: float | Mapping[str, float]) -> dict[str, float]:
        """The values of an intermediate report: a mapping, or a bare number for the single
        objective (with several, for the objective the policy watches)."""
        if isinstance(value, Mapping):
            return {str(k): _number(v) for k, v in value.items()}
        if len(self._objectives) == 1:
            return {self._objectives[0].name: _number(value)}
        policy = self.early_stopping
        if policy is None or policy.objective is None:
            names = ", ".join(repr(o.name) for o in self._objectives)
            raise ValueError(
                f"{self.name} has {len(self._objectives)} objectives ({names}) and no "
                "early-stopping policy to say which one a bare value is; pass a mapping "
                "{name: value, ...}"
            )
        return {policy.objective: _number(value)}

    def _measurement(
        self,
        value: float | None,
        values: Mapping[str, float] | None,
        constraint_values: Mapping[str, float] | None = None,
    ) -> trial_pb2.Measurement:
        """A final measurement: the objectives' values (``value`` or ``values``, which may hold
        the constraints' values too) and the constraints' (``constraint_values``). Whether
        every constraint has its value is the service's to check (``MISSING_CONSTRAINT_VALUE``)."""
        if (value is None) == (values is None):
            raise ValueError("give exactly one of value and values")
        if value is not None:
            if len(self._objectives) != 1:
                names = ", ".join(repr(o.name) for o in self._objectives)
                raise ValueError(
                    f"{self.name} has {len(self._objectives)} objectives ({names}); "
                    "pass values={name: value, ...}"
                )
            measured = {self._objectives[0].name: _number(value)}
        else:
            if not isinstance(values, Mapping):
                raise TypeError(
                    f"values must be a mapping of objective name to value; got {values!r}"
                )
            measured = {str(k): _number(v) for k, v in values.items()}
        if constraint_values is not None:
            if not isinstance(constraint_values, Mapping):
                raise TypeError(
                    "constraint_values must be a mapping of constraint name to value; got "
                    f"{constraint_values!r}"
                )
            for k, v in constraint_values.items():
                if str(k) in measured:
                    raise ValueError(f"{k!r} is given twice: in the values and constraint_values")
                measured[str(k)] = _number(v)
        return trial_pb2.Measurement(values=measured)


def wanted_states(
    states: Iterable[TrialState | str] | None,
) -> list[trial_pb2.TrialState.ValueType] | None:
    """The ``ListTrials`` filter for ``states``: ``[]`` for every state, ``None`` for none."""
    if states is None:
        return []
    wanted = [_state(s)._to_proto() for s in states]
    return wanted or None


def intermediate_value(
    value: float | Mapping[str, float] | None,
    values: Mapping[str, float] | None,
    metadata: Mapping[str, str] | None,
) -> float | Mapping[str, float]:
    """The value of ``trial.report(value, step)``, checked: the keywords of a final report
    do not go with a step."""
    if values is not None or metadata is not None:
        raise TypeError(
            "an intermediate report takes its value (a number or a mapping) first: "
            "report(value, step); values= and metadata= belong to the final report"
        )
    if value is None:
        raise TypeError("report(value, step) needs a value")
    return value


def _view(with_measurements: bool) -> trial_pb2.TrialView.ValueType:
    return trial_pb2.TRIAL_VIEW_FULL if with_measurements else trial_pb2.TRIAL_VIEW_BASIC


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
            f"unknown trial state {state!r}; use WAITING, RUNNING, COMPLETED, FAILED, STOPPED "
            "or INFEASIBLE"
        )
    return found


def _cut(reason: str) -> str:
    reason = str(reason)
    if len(reason) <= MAX_FAILURE_REASON_LENGTH:
        return reason
    return reason[: MAX_FAILURE_REASON_LENGTH - 3] + "..."
