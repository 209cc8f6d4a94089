"""The state of one study in :class:`._memory.MemoryStore`, and its request records.

:class:`MemoryStudy` holds what the Redis store keeps in a study's keys (``_keys.py``): its
trials, their index by state, the queue, claims, leases, re-issues, client holds, request
records and early-stopping bookkeeping, with the small steps the store's methods are made of.
The request records are typed copies of those the Lua scripts keep as text.
"""

from __future__ import annotations

import bisect
import copy
import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hyperdial_server.core.early_stopping import Decision, RungValue
from hyperdial_server.core.pareto import dominates
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import LEASE_EXPIRED_REASON, Measurement, Trial, TrialState
from hyperdial_server.store._base import RequestId

# --- request records --------------------------------------------------------------------
# Typed copies of the records the Lua scripts keep as text (listed in ``lua/_lib.lua``): each
# step of the memory store reads and writes them exactly where its script does, so both stores
# answer a request id alike.


class Call(enum.Enum):
    """The call a request record answers; the values are the names errors give it (as the
    Lua scripts' ``request_kind``)."""

    #: An ask (``D:A`` in Lua).
    SUGGEST = "SuggestTrials"
    #: A result (``D:T``).
    COMPLETE = "CompleteTrial"
    #: An enqueued or imported trial (``D:C``).
    CREATE = "CreateTrial"
    #: An intermediate report (``D:M``).
    MEASURE = "AddTrialMeasurement"


@dataclass(frozen=True)
class Answered:
    """A call that finished; a retry gets its answer (Lua's ``D:<kind>:<numbers>``).

    Attributes:
        kind: The call.
        numbers: What it answered: an ask's trials (those handed out by every step), the
            trial a result completed, the trial created, or the trial a report was of.
        decision: For a report: the decision it answered.
    """

    kind: Call
    numbers: tuple[int, ...]
    decision: Decision | None = None

    @property
    def call(self) -> Call:
        """The call the record answers."""
        return self.kind


@dataclass(frozen=True)
class InProgress:
    """An ask that claimed and has not committed yet (Lua's ``P:<attempt>:<deadline>``).

    Attributes:
        attempt: ``RequestId.attempt`` of the execution that holds the ask; only it may
            commit. (Attempts are hex uids, so comparing them whole is Lua's pattern match.)
        deadline: Its claim's deadline; past it, a retry takes the ask over.
    """

    attempt: str
    deadline: float

    @property
    def call(self) -> Call:
        """The call the record answers: always an ask."""
        return Call.SUGGEST


@dataclass
class RequestRecord:
    """The record of one request id (Lua's ``requests`` and ``request_times`` entries).

    Attributes:
        record: What the call did so far.
        until: When the record is dropped.
        fingerprint: Payload fingerprint of the call that made the record (Lua's
            ``|<fingerprint>`` suffix); empty for none.
    """

    record: Answered | InProgress
    until: float
    fingerprint: str = ""

    def held_by(self, request_id: RequestId) -> bool:
        """Whether the ask is in progress in this very execution (its commit or renewal)."""
        return isinstance(self.record, InProgress) and self.record.attempt == request_id.attempt


# --- early stopping ---------------------------------------------------------------------------


@dataclass
class Kept:
    """A measurement kept in a trial's curve (a member of the Redis store's ``es_curves``).

    Attributes:
        measurement: The measurement (values as floats).
        protected: Never thinned: a rung was decided at it, or it stopped the trial.
        ordinal: The how-manieth report of its trial it was (1, 2, ...).
    """

    measurement: Measurement
    protected: bool
    ordinal: int


@dataclass
class TrialReports:
    """The early-stopping bookkeeping of one trial that reported (the Redis store's
    ``es_state`` fields of the trial, and its curve).

    Attributes:
        last_step: Step of the last report.
        last_values: Values of the last report, as canonical JSON (a repeat must match).
        decision: Decision of the last report.
        curve: Kept measurements, in order of step.
        next_rung: Rungs passed (successive halving, Hyperband).
        best: Best oriented value of the watched objective so far; ``None`` without a policy.
        best_step: Step at which ``best`` was reached.
        score: Score given with the last report (ranks the trial if the worker stops it).
        front_vector: Front vector given with the last report (puts the trial on the front
            if the worker stops it).
        stride: Unprotected measurements but the last are kept on this stride of ordinals.
    """

    last_step: int
    last_values: str
    decision: Decision
    curve: list[Kept] = field(default_factory=list)
    next_rung: int = 0
    best: float | None = None
    best_step: int = 0
    score: float | None = None
    stride: int = 1
    front_vector: tuple[float, ...] | None = None


# --- one study ------------------------------------------------------------------------------


@dataclass
class MemoryStudy:
    """Everything the memory store keeps of one study (the Redis store's keys of a study)."""

    record: StudyRecord
    trials: list[Trial] = field(default_factory=list)  # trials[number - 1]
    # Trial numbers by state, ascending, so a filtered page costs O(page + log n).
    by_state: dict[TrialState, list[int]] = field(
        default_factory=lambda: {s: [] for s in TrialState}
    )
    queue: deque[int] = field(default_factory=deque)  # WAITING numbers, oldest first
    next_index: int = 0
    handed_out: int = 0
    # Claimed slot ("<index>" or "r<number>") -> (token, deadline).
    claims: dict[str, tuple[str, float]] = field(default_factory=dict)
    best: tuple[float, int] | None = None  # (score, number) of the best trial
    # Each scored trial's score, and (score, number) of every one in ascending order (the
    # Redis store's ``scores`` set), so the best k cost O(k).
    scores: dict[int, float] = field(default_factory=dict)
    score_order: list[tuple[float, int]] = field(default_factory=list)
    # The Pareto front (the Redis store's ``front`` hash): the front vector of each trial on
    # it, kept as trials become candidates (``add_to_front``), so reading it costs its size.
    front: dict[int, tuple[float, ...]] = field(default_factory=dict)
    leases: dict[int, float] = field(default_factory=dict)  # RUNNING number -> deadline
    reissue: list[int] = field(default_factory=list)  # ascending numbers
    expired: set[int] = field(default_factory=set)  # lease-expired, take a late result
    owners: dict[int, str] = field(default_factory=dict)  # RUNNING number -> client_id
    holders: dict[str, list[int]] = field(default_factory=dict)  # client_id -> numbers
    requests: dict[str, RequestRecord] = field(default_factory=dict)  # request id -> its record
    # Early stopping: per trial that reported; oriented values recorded at each step by a
    # percentile rule and at each (bracket, rung), ascending.
    reports: dict[int, TrialReports] = field(default_factory=dict)
    step_values: dict[int, list[float]] = field(default_factory=dict)
    rung_values: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    # The same values with their trials (Store.rung_values, Store.percentile_values): per
    # step, trial number -> value; per trial, its rung values in order of recording.
    step_records: dict[int, dict[int, float]] = field(default_factory=dict)
    rung_records: dict[int, list[RungValue]] = field(default_factory=dict)
    create_request: tuple[str, float] | None = None
    create_fingerprint: str = ""
    # Revisions (the Redis store's ``revision`` and ``update_time`` fields and ``changes``
    # set): the study's counter, the time of its last change, and every trial that changed,
    # in ascending order of its revision (two parallel lists, so a page of changes is a slice).
    revision: int = 0
    update_time: float | None = None
    change_revisions: list[int] = field(default_factory=list)
    change_numbers: list[int] = field(default_factory=list)

    def touch(self, number: int, now: float) -> int:
        """Records a change of trial ``number`` (its record or its lease) at ``now``, as Lua's
        ``touch``: the trial takes the study's next revision. Returns it."""
        trial = self.trials[number - 1]
        if trial.revision:
            i = bisect.bisect_left(self.change_revisions, trial.revision)
            del self.change_revisions[i]
            del self.change_numbers[i]
        self.revision += 1
        trial.revision = self.revision
        self.change_revisions.append(self.revision)
        self.change_numbers.append(number)
        self.update_time = now
        return self.revision

    def changed_after(self, revision: int, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` (revision, number) of the trials changed after ``revision``, in
        order of revision."""
        i = bisect.bisect_right(self.change_revisions, revision)
        return list(
            zip(
                self.change_revisions[i : i + limit],
                self.change_numbers[i : i + limit],
                strict=True,
            )
        )

    def set_state(self, trial: Trial, state: TrialState) -> None:
        old = self.by_state[trial.state]
        del old[bisect.bisect_left(old, trial.number)]
        bisect.insort(self.by_state[state], trial.number)
        trial.state = state

    def add_score(self, score: float, number: int) -> None:
        if self.best is None or (score, number) < self.best:
            self.best = (score, number)
        previous = self.scores.get(number)
        if previous is not None:  # a new score replaces the old one, as ZADD does
            del self.score_order[bisect.bisect_left(self.score_order, (previous, number))]
        self.scores[number] = score
        bisect.insort(self.score_order, (score, number))

    def add_to_front(self, number: int, vector: tuple[float, ...] | None) -> None:
        """Trial ``number`` became a candidate with ``vector`` (``None``: on no front): as
        Lua's ``keep_front``, it joins the front unless a vector there dominates it, and the
        vectors it dominates leave. O(front size)."""
        if vector is None:
            return
        if any(dominates(v, vector) for v in self.front.values()):
            return
        for n in [n for n, v in self.front.items() if dominates(vector, v)]:
            del self.front[n]
        self.front[number] = vector

    def hold(self, number: int, client_id: str) -> None:
        if client_id:
            self.owners[number] = client_id
            bisect.insort(self.holders.setdefault(client_id, []), number)

    def release(self, number: int) -> None:
        owner = self.owners.pop(number, None)
        if owner is not None:
            held = self.holders[owner]
            del held[bisect.bisect_left(held, number)]
            if not held:
                del self.holders[owner]

    def add_running(
        self,
        params: Params,
        metadata: Mapping[str, str],
        client_id: str,
        now: float,
        lease: float,
        sampler_index: int | None,
    ) -> int:
        """Appends a new RUNNING trial (copies of ``params`` and ``metadata``); its number."""
        trial = Trial(
            number=len(self.trials) + 1,
            state=TrialState.RUNNING,
            params=copy.deepcopy(params),
            client_id=client_id,
            create_time=now,
            metadata=dict(metadata),
            sampler_index=sampler_index,
        )
        self.trials.append(trial)
        self.by_state[TrialState.RUNNING].append(trial.number)
        self.leases[trial.number] = lease
        self.hold(trial.number, client_id)
        self.touch(trial.number, now)
        return trial.number

    def expire_one(self, number: int, now: float) -> None:
        del self.leases[number]
        trial = self.trials[number - 1]
        self.set_state(trial, TrialState.FAILED)
        self.expired.add(number)
        bisect.insort(self.reissue, number)
        self.release(number)
        trial.complete_time = now
        trial.failure_reason = LEASE_EXPIRED_REASON
        trial.lease_expire_time = None
        self.touch(number, now)

    def record_request(
        self,
        request_id: RequestId,
        record: Answered | InProgress,
        until: float,
        *,
        fingerprint: str | None,
    ) -> None:
        """Records what ``request_id``'s call did, as Lua's ``record_request``.

        Args:
            fingerprint: The call's payload fingerprint; ``None`` keeps the one recorded, so
                that a step that only moves an ask along (its commit, a renewal) need not
                know it.
        """
        if fingerprint is None:
            old = self.requests.get(request_id.value)
            fingerprint = "" if old is None else old.fingerprint
        self.requests[request_id.value] = RequestRecord(record, until, fingerprint)

    def answer_ask(self, request_id: RequestId, numbers: Sequence[int], now: float) -> None:
        """Records ``numbers`` (with those handed out by earlier steps) as the ask's answer,
        keeping the fingerprint the claim recorded."""
        answer = Answered(Call.SUGGEST, (*request_id.handed, *numbers))
        self.record_request(request_id, answer, now + request_id.ttl, fingerprint=None)

    def expire_due(self, now: float, limit: int) -> int:
        # The Redis order: by deadline, then by the member text.
        due = sorted((d, str(n), n) for n, d in self.leases.items() if d < now)[:limit]
        for _, _, number in due:
            self.expire_one(number, now)
        return len(due)

    def find_request(self, request_id: str, now: float) -> RequestRecord | None:
        """The live record of ``request_id``, after dropping every record whose time is over."""
        for rid in [r for r, got in self.requests.items() if got.until < now]:
            del self.requests[rid]
        return self.requests.get(request_id)


def fingerprint_mismatch(recorded: str, request_id: RequestId) -> bool:
    """Whether a call's payload fingerprint differs from the one recorded with its id (none on
    either side: no check, as in ``lua/_lib.lua``)."""
    return bool(recorded) and bool(request_id.fingerprint) and recorded != request_id.fingerprint
