"""Trials and their states."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from hyperdial_server.core.early_stopping import Decision
from hyperdial_server.core.space import Params

#: ``failure_reason`` of a trial whose lease expired (no heartbeat and no result in time).
LEASE_EXPIRED_REASON = "lease expired"


class TrialState(enum.Enum):
    """Life of a trial. Values are the names stored and sent over the wire."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    #: Stopped early, by the study's early-stopping policy or by the worker.
    STOPPED = "STOPPED"
    #: Its parameters cannot give a result (out of memory, diverged): a result in itself.
    INFEASIBLE = "INFEASIBLE"

    @property
    def finished(self) -> bool:
        """Whether the trial has ended (completed, failed, stopped or infeasible)."""
        return self in (
            TrialState.COMPLETED,
            TrialState.FAILED,
            TrialState.STOPPED,
            TrialState.INFEASIBLE,
        )


@dataclass(frozen=True)
class StateCounts:
    """How many trials of a study are in each state.

    Attributes:
        waiting: WAITING trials.
        running: RUNNING trials.
        completed: COMPLETED trials.
        failed: FAILED trials.
        stopped: STOPPED trials.
        infeasible: INFEASIBLE trials.
    """

    waiting: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    stopped: int = 0
    infeasible: int = 0

    @classmethod
    def of(cls, counts: Mapping[TrialState, int]) -> StateCounts:
        """The counts of a mapping of state to count (a state it lacks counts 0)."""
        return cls(**{state.value.lower(): counts.get(state, 0) for state in TrialState})

    def __getitem__(self, state: TrialState) -> int:
        """The count of ``state``."""
        count: int = getattr(self, state.value.lower())
        return count

    @property
    def total(self) -> int:
        """Trials in every state."""
        return sum(self[state] for state in TrialState)


@dataclass(frozen=True)
class Measurement:
    """An intermediate measurement of a RUNNING trial.

    Attributes:
        step: Epochs, batches or any resource unit the study counts in (>= 0).
        values: Objective values by name (finite), and values of the study's outcome
            constraints when reported; the watched objective's at least.
        elapsed: Seconds of training until this measurement, as the worker measured them;
            ``None`` when not given.
    """

    step: int
    values: dict[str, float]
    elapsed: float | None = None


@dataclass
class Trial:
    """One trial of a study, as stored. Stores hand out copies, never shared instances.

    Attributes:
        number: 1, 2, 3... in order of creation within the study.
        state: Where the trial is in its life.
        params: Values of the active parameters.
        values: Objective values by name, and the outcome constraints' values, when
            COMPLETED (when STOPPED: its last report's).
        client_id: Who was handed the trial.
        create_time: Seconds since the epoch.
        complete_time: Seconds since the epoch, when finished.
        failure_reason: Why it failed, when FAILED; why its parameters are infeasible, when
            INFEASIBLE.
        metadata: User annotations.
        lease_expire_time: Seconds since the epoch when the lease of a RUNNING trial expires
            unless renewed (heartbeat); ``None`` for a trial that is not RUNNING.
        sampler_index: The sampler index the trial's point was computed from; ``None`` for a
            trial enqueued or imported, for a re-issued point, and for trials stored before
            indices were recorded.
        original_number: For a trial created from the re-issued point of a lease-expired
            trial: that trial's number; ``None`` otherwise.
        reissued_number: For a lease-expired trial whose point was handed out again: the
            number of the trial created for it; ``None`` otherwise. If the expired trial took
            a late result as well (COMPLETED), the two are twins measuring one point.
        measurements: Intermediate measurements kept (in order of step), when read with
            them; empty otherwise.
        measurement_count: How many intermediate measurements the trial reported.
        stop: Why the trial stopped, when STOPPED.
        bracket: The Hyperband bracket of the trial; 0 under any other policy.
        revision: The study's revision (:attr:`~hyperdial_server.core.study.StudyRecord.
            revision`) at the trial's last change: its creation, its hand-out, a renewal of its
            lease (heartbeat, resume, report), a report, its result, the expiry of its lease,
            or the re-issue of its point. Each change of a trial takes the next revision of the
            study, so no two trials of a study share one; 0 for a trial no store returned (or
            stored before revisions existed and unchanged since).
    """

    number: int
    state: TrialState
    params: Params
    values: dict[str, float] | None = None
    client_id: str = ""
    create_time: float = 0.0
    complete_time: float | None = None
    failure_reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    lease_expire_time: float | None = None
    sampler_index: int | None = None
    original_number: int | None = None
    reissued_number: int | None = None
    measurements: list[Measurement] = field(default_factory=list)
    measurement_count: int = 0
    stop: Decision | None = None
    bracket: int = 0
    revision: int = 0
