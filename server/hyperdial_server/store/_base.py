"""The ``Store`` interface: where study state lives.

Contract for every implementation (the suite :mod:`hyperdial_server.testing` checks it; our tests
run it on every store of hyperdial):

* **Pass by value.** Returned records are copies; mutating them changes nothing stored, and
  records passed in are not kept by reference.
* **Atomic steps.** Each method is one atomic step as seen by every other caller, whatever the
  number of server replicas sharing the store: two concurrent ``claim_trials`` never hand out the
  same enqueued trial or the same sampler index, two concurrent ``complete_trial`` calls on one
  trial never both succeed.
* **Namespaces.** Every method takes a namespace; studies of different namespaces never see
  each other, even with equal ids.
* **Typed errors.** Failures a caller can cause raise the errors of
  :mod:`hyperdial_server.core.errors`; a store that cannot be reached raises
  :class:`~hyperdial_server.core.errors.Unavailable`.
* **Leases.** Every trial that becomes RUNNING gets a lease deadline, ``now + lease_timeout``
  (``Trial.lease_expire_time``); :meth:`Store.heartbeat_trial` and a ``client_id`` resume
  renew it. A lease is expired once ``deadline < now``. Expiring a trial, in one atomic step:
  it becomes FAILED with ``failure_reason`` :data:`~hyperdial_server.core.trial.
  LEASE_EXPIRED_REASON` and ``complete_time`` now, and its parameters join the study's re-issue
  queue, from which :meth:`Store.claim_trials` hands them out again first, as a new trial.
  Expiry needs no leader: ``claim_trials``, ``heartbeat_trial`` and, when given ``now``,
  ``get_trial`` and ``list_trials`` expire the study's due leases first (at most
  :data:`EXPIRE_BATCH` per call), and :meth:`Store.expire_leases` (the periodic sweep of every
  replica) expires them in every study; each lease expires exactly once whoever gets there.
* **Late results.** ``complete_trial`` on a trial whose lease expired records the result all the
  same: with values the trial becomes COMPLETED and, if its point is still waiting in the
  re-issue queue, the point is withdrawn (it has its measurement); if the point was handed out
  again already, that twin stays and measures the same point a second time. A stop (STOPPED)
  and an infeasible verdict (INFEASIBLE) judge the point too, and are taken alike. With a
  failure the trial stays FAILED with the new reason and its point stays queued (the
  infrastructure failed, not the point). A late result is taken once.
  The trial created for a re-issued point gets ``Trial.original_number`` (the expired trial) and,
  in the same step, the expired trial gets ``Trial.reissued_number`` (the new one), so twins
  name each other whichever of the late result and the re-issue comes first.
* **Request ids.** A call given a :class:`RequestId` that was already answered (same id, same
  study, within its ``ttl``) changes nothing and answers what the first call answered; the
  check and the change are one atomic step. If both calls carry a ``fingerprint`` and they
  differ, the later call changes nothing and is refused (``REQUEST_ID_MISMATCH``,
  INVALID_ARGUMENT) instead. An ask is two steps (``claim_trials`` then
  ``commit_trials``): its id is marked in progress by the claim and answered by the step that
  finishes the ask, so a concurrent retry is refused (``REQUEST_IN_PROGRESS``, UNAVAILABLE)
  instead of handing out more trials, until the first attempt's claim deadline has passed
  (:meth:`Store.renew_claim` pushes it on while that attempt computes).
* **Early stopping.** A RUNNING trial reports intermediate measurements
  (:meth:`Store.add_measurement`). A report is one atomic step: it renews the trial's lease (a
  report is a heartbeat), records the measurement in the trial's curve and applies the study's
  policy by the rules of :mod:`hyperdial_server.core.early_stopping`, reading only what the
  rule needs (the values of one step or one rung, the trial's own best), never every trial.
  Values are compared oriented (lower is better), ``-0.0`` as ``0.0``. A decision to stop makes
  the trial STOPPED in the same step: it leaves the running trials and its lease, its client no
  longer holds it, its point is never handed out again, its values are the report's and
  ``Trial.stop`` says why. Steps never go back. The curve keeps at most the policy's
  ``max_measurements``: past it, passes drop every other unprotected measurement, the oldest
  first, until within the cap, and later reports stay only on the doubled stride (so the curve
  stays evenly spread over the whole training); the last measurement and those at which a rung
  was decided are protected (a stop is always the last), and the cap gives way to them only.
  The worker may stop a trial itself (``complete_trial`` with ``stop_reason``).
  ``Trial.measurement_count`` (every report, kept or thinned) is in every trial a store
  returns; the curve (``Trial.measurements``) only where asked (``with_measurements``).
  ``Trial.bracket`` is left 0: a pure function of the policy and the trial's number
  (:func:`~hyperdial_server.core.early_stopping.hyperband_bracket`), it is the caller's to fill.
* **Revisions.** Every change of a trial's stored record or of its lease takes the study's next
  revision (1, 2, 3... per study; a study deleted and created again starts again from 0), which
  the trial keeps as ``Trial.revision``, in every trial a store returns: its creation
  (``create_trial``, ``commit_trials``, ``commit_reserved``), its hand-out or resume by
  ``claim_trials``, a heartbeat, a report (a repeated one too: it renews the lease), its result
  (a late one too), the expiry of its lease, and the re-issue of its point (the commit of a
  re-issue changes the expired trial, which names its twin, right after creating the twin).
  A step that changes several trials gives each a revision of its own, in the order it changes
  them (``claim_trials``: expired leases first, then resumed trials, then enqueued ones). A
  replay of a request id, and a call that changes nothing, gives none. A study record carries
  its ``revision`` (the last one given), ``update_time`` (the ``now`` of the call that gave
  it) and ``state_counts``. :meth:`Store.list_trial_page` with ``after_revision`` reads the
  trials changed since a revision, in order of revision, at a cost bounded by the page.
* **Pareto fronts.** A study's *candidates* are its COMPLETED trials and, when its policy ranks
  stopped trials, its STOPPED ones; each call that makes a trial COMPLETED or STOPPED
  (``complete_trial``, ``create_trial`` of a finished trial, a report that stops it) may give
  its front vector (:data:`~hyperdial_server.core.pareto.FrontVector`: the oriented values of
  every objective; ``None`` for a trial not on any front), and :meth:`Store.pareto_front`
  answers the trials whose vectors no other's dominates. A store keeps the front as trials
  become candidates, in the same atomic step, at a cost bounded by the front's size, so that
  reading it never scans the study: candidates are never taken back (COMPLETED and STOPPED
  are final, and only deleting the study removes trials), so the front only grows by
  additions.
* **One-step asks (optional).** A store whose :attr:`Store.one_step_asks` is true lets a
  caller, for a sampler whose indices have no bound (RANDOM), take a block of indices at once
  (:meth:`Store.reserve_indices`) and then make each ask one step
  (:meth:`Store.commit_reserved`) while the ask needs nothing ``claim_trials`` hands out
  first. A reserved index that is never committed is skipped, not handed out again: nothing
  of the study depends on it. A store that leaves both methods to their defaults asks in the
  two steps only, with the same result: the one step saves a round trip, nothing more.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import ClassVar

from hyperdial_server.core.early_stopping import Decision, EarlyStopping, RungValue, StepValue
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.limits import DEFAULT_LEASE_TIMEOUT
from hyperdial_server.core.pareto import front_of
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store._values import (
    DEFAULT_CLAIM_TTL,
    EXPIRE_BATCH,
    PERCENTILE_STEPS,
    Claim,
    Fallback,
    FastAsk,
    Reissue,
    RequestId,
    StaleStudy,
)

__all__ = [
    "DEFAULT_CLAIM_TTL",
    "EXPIRE_BATCH",
    "PERCENTILE_STEPS",
    "Claim",
    "Fallback",
    "FastAsk",
    "Reissue",
    "RequestId",
    "StaleStudy",
    "Store",
]


class Store(abc.ABC):
    """Persistent state of studies and trials. See the module docstring for the contract.

    A new store implements the abstract methods; :meth:`reserve_indices` and
    :meth:`commit_reserved` are an optional shortcut, used only when :attr:`one_step_asks`.
    """

    #: Whether :meth:`reserve_indices` and :meth:`commit_reserved` make an ask one store call.
    #: When false (the default), asks take ``claim_trials`` and ``commit_trials`` only.
    one_step_asks: ClassVar[bool] = False

    @abc.abstractmethod
    async def close(self) -> None:
        """Releases connections. The store is unusable afterwards."""
        raise NotImplementedError

    @abc.abstractmethod
    async def ping(self) -> None:
        """Returns when the store answers and takes writes (the health check).

        Raises:
            Unavailable: The store cannot be reached or takes no writes (a read-only replica).
            ResourceExhausted: The store is out of memory (``STORE_OUT_OF_MEMORY``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def create_study(
        self, namespace: str, study: StudyRecord, *, request_id: RequestId | None = None
    ) -> StudyRecord:
        """Stores a new study with no trials and returns it as stored.

        Args:
            namespace: The namespace.
            study: The study; its ``create_time`` is the time of the call.
            request_id: With the id of the call that created this very study, within its
                ``ttl``: returns the study as first created instead of ``AlreadyExists``.

        Raises:
            AlreadyExists: A study of that id exists in the namespace (reason
                ``STUDY_ALREADY_EXISTS``).
            ResourceExhausted: The namespace holds the most studies it may (reason
                ``TOO_MANY_STUDIES``), or its stored study records would pass the store's
                ``max_spec_bytes`` (reason ``NAMESPACE_SPEC_BUDGET``); nothing is created.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def get_study(self, namespace: str, study_id: str) -> StudyRecord:
        """Returns a study, with ``trial_count``, ``revision``, ``update_time`` and
        ``state_counts`` as of now (read in one atomic step).

        Raises:
            NotFound: No such study (reason ``STUDY_NOT_FOUND``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def list_studies(
        self, namespace: str, page_size: int, after: str | None = None
    ) -> tuple[list[StudyRecord], bool]:
        """Lists studies in ascending (code point) order of id, each with ``trial_count``,
        ``revision``, ``update_time`` and ``state_counts`` as :meth:`get_study` has them
        (a store may read them in one step per page, or per study, or one after the other
        within one round trip: they may then be off by changes made during the read).

        Args:
            namespace: The namespace.
            page_size: Most studies to return (>= 1).
            after: Only ids strictly greater than this one; ``None`` from the start.

        Returns:
            The studies, and whether more follow.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def delete_study(
        self,
        namespace: str,
        study_id: str,
        *,
        request_id: RequestId | None = None,
        now: float = 0.0,
    ) -> None:
        """Deletes a study and everything stored for it.

        Args:
            request_id: With the id of a call that deleted the study before, within its
                ``ttl``: returns without deleting anything (even a study created since).
            now: Current time, seconds since the epoch (for ``request_id``).

        Raises:
            NotFound: No such study.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def claim_trials(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        count: int,
        *,
        capacity: int | None,
        max_trials: int | None,
        client_id: str,
        now: float,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        request_id: RequestId | None = None,
    ) -> Claim:
        """Takes up to ``count`` trials to hand out, in one atomic step.

        First the study's due leases expire (see the module docstring). Then, in order:

        1. with a ``client_id``: the RUNNING trials that client holds, oldest first (their
           leases renewed), except those in ``request_id.handed``;
        2. points of lease-expired trials waiting in the re-issue queue, oldest trial first;
        3. enqueued (WAITING) trials, oldest first, become RUNNING with ``client_id``;
        4. sampler indices and re-issued points whose earlier claim expired uncommitted are
           taken again;
        5. new indices 0, 1, 2... are taken from the study's counter, never reaching
           ``capacity``.

        The total handed out over the study's life (enqueued trials and committed or claimed
        indices, an index re-taken after expiry counted once) never exceeds ``max_trials``;
        re-issued points and resumed trials do not count again. Trials becoming RUNNING get
        the lease deadline ``now + lease_timeout``.

        Args:
            namespace: The namespace.
            study_id: The study.
            uid: ``uid`` of the study as the caller read it.
            count: Most trials to take (>= 1).
            capacity: Number of distinct sampler indices (a grid's size), ``None`` for no bound.
            max_trials: The study's ``max_trials``, ``None`` for no limit.
            client_id: Recorded on the trials handed out; empty for no resume.
            now: Current time, seconds since the epoch.
            claim_ttl: Seconds before an uncommitted claim of indices may be taken again.
            lease_timeout: Seconds of the lease of trials handed out.
            request_id: Makes the ask idempotent (see the module docstring).

        Returns:
            The claim; all lists empty when the study has nothing left right now.

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
            Unavailable: Another execution of ``request_id`` is in progress (reason
                ``REQUEST_IN_PROGRESS``).
            InvalidArgument: ``request_id`` was used for another kind of call (reason
                ``REQUEST_ID_REUSED``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def commit_trials(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        token: str,
        points: Sequence[tuple[int, Params]],
        *,
        client_id: str,
        now: float,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        reissues: Sequence[Reissue] = (),
        request_id: RequestId | None = None,
    ) -> list[Trial]:
        """Creates one RUNNING trial per re-issued point and per claimed index, numbered in
        that order, in one atomic step.

        Args:
            token: ``Claim.token`` of the claim that took the indices and re-issues.
            points: ``(index, params)`` for every index of that claim.
            lease_timeout: Seconds of the lease of the new trials.
            reissues: ``Claim.reissues`` of that claim.
            request_id: The request id of the ask, as given to ``claim_trials`` with
                ``handed`` extended by the claim's ``trials``; the ask's answer is recorded.

        Returns:
            The new trials, re-issues first, then in the order of ``points``.

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
            FailedPrecondition: The claim expired and its indices may have been taken again
                (reason ``CLAIM_EXPIRED``); nothing was created.
            Unavailable: A retry of ``request_id`` took the ask over (``REQUEST_IN_PROGRESS``);
                nothing was created.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def renew_claim(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        token: str,
        indices: Sequence[int],
        *,
        now: float,
        claim_ttl: float,
        reissues: Sequence[Reissue] = (),
        request_id: RequestId | None = None,
    ) -> None:
        """Keeps a claim of ``claim_trials`` from expiring while its caller computes its points,
        in one atomic step.

        Every member of the claim (each of ``indices`` and ``reissues`` under ``token``) gets
        the deadline ``now + claim_ttl``, and so does the in-progress record of ``request_id``
        (a concurrent retry is refused until then). A member past its deadline that nobody took
        again is still the caller's, as for ``commit_trials``, and is renewed. Either every
        member is renewed or nothing changes. The caller renews well within ``claim_ttl``, so
        the claim outlives a slow computation yet lapses soon after its caller dies.

        Args:
            namespace: The namespace.
            study_id: The study.
            uid: ``uid`` of the study as the caller read it.
            token: ``Claim.token`` of the claim.
            indices: ``Claim.indices`` of that claim.
            now: Current time, seconds since the epoch.
            claim_ttl: Seconds from ``now`` to the new deadline.
            reissues: ``Claim.reissues`` of that claim.
            request_id: The request id of the ask, as given to ``claim_trials``.

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
            FailedPrecondition: A member of the claim was committed or taken again by another
                claim (reason ``CLAIM_EXPIRED``); nothing changed.
            Unavailable: A retry of ``request_id`` took the ask over or answered it
                (``REQUEST_IN_PROGRESS``); nothing changed.
        """
        raise NotImplementedError

    async def reserve_indices(self, namespace: str, study_id: str, uid: str, count: int) -> int:
        """Takes ``count`` fresh sampler indices off the study's counter for the caller alone,
        in one atomic step, for a sampler whose indices have no bound.

        No other caller ever gets them from ``claim_trials`` or ``reserve_indices``. They are
        not counted against ``max_trials`` until committed, and an index never committed is
        skipped (so only a sampler whose points are independent draws may reserve).

        Args:
            uid: ``uid`` of the study as the caller read it.
            count: Number of indices (>= 1).

        Returns:
            The first index; the caller owns ``first, first + 1, ..., first + count - 1``.

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
            NotImplementedError: The store has no one-step asks (the default): callers check
                :attr:`one_step_asks` first.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no one-step asks (one_step_asks is false)"
        )

    async def commit_reserved(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        points: Sequence[tuple[int, Params]],
        *,
        max_trials: int | None,
        client_id: str,
        now: float,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        request_id: RequestId | None = None,
    ) -> FastAsk:
        """An ask in one atomic step: one new RUNNING trial per point, numbered in order, when
        ``claim_trials`` would hand out nothing before fresh indices.

        First the study's due leases expire. The ask then falls back (nothing is created and
        :attr:`FastAsk.fallback` says why) if ``request_id`` has a record, if ``client_id``
        holds RUNNING trials, if points of lease-expired trials or enqueued trials wait, if a
        claim expired uncommitted, or if the points would take the study past ``max_trials``;
        the caller then asks with ``claim_trials`` and ``commit_trials``. Otherwise the points
        count as handed out, and the answer is recorded under ``request_id``.

        The default, for a store without one-step asks, creates nothing and answers
        :attr:`Fallback.UNSUPPORTED`.

        Args:
            uid: ``uid`` of the study as the caller read it.
            points: ``(index, params)``: each index one the caller reserved
                (:meth:`reserve_indices`), used once, and the point computed from it.
            max_trials: The study's ``max_trials``, ``None`` for no limit.
            client_id: Recorded on the new trials.
            now: Current time, seconds since the epoch.
            lease_timeout: Seconds of the lease of the new trials.
            request_id: Makes the ask idempotent (see the module docstring).

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
        """
        return FastAsk(fallback=Fallback.UNSUPPORTED)

    @abc.abstractmethod
    async def create_trial(
        self,
        namespace: str,
        study_id: str,
        trial: Trial,
        *,
        score: float | None = None,
        uid: str | None = None,
        request_id: RequestId | None = None,
        now: float = 0.0,
        front_vector: Sequence[float] | None = None,
    ) -> Trial:
        """Adds a trial with the next number: WAITING (enqueued) or already finished.

        Args:
            trial: The trial; its ``number`` is ignored and assigned by the store. Its state
                is WAITING or finished (COMPLETED, FAILED, STOPPED or INFEASIBLE: a trial
                imported from elsewhere, whose ``failure_reason`` says why it failed or why
                its parameters are infeasible).
            score: For a COMPLETED trial of a single-objective study: its rank among completed
                trials, lower is better (see ``best_trial``).
            front_vector: For a COMPLETED or STOPPED trial: its front vector (see
                :meth:`pareto_front`); ``None`` puts it on no front.
            uid: When given, the ``uid`` of the study the caller validated ``trial`` against.
            request_id: With the id of an earlier ``create_trial`` of the study: returns the
                trial it created, as it is now, and creates nothing.
            now: Current time, seconds since the epoch (for ``request_id``, and the time of
                the change: the study's ``update_time``).

        Raises:
            NotFound: No such study.
            StaleStudy: ``uid`` is given and the study's uid differs; nothing was created.
            ValueError: A ``front_vector`` for a trial neither COMPLETED nor STOPPED, or
                with a value that is not finite (a caller's mistake; nothing was created).
            InvalidArgument: ``request_id`` was used for another kind of call.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def complete_trial(
        self,
        namespace: str,
        study_id: str,
        number: int,
        *,
        values: Mapping[str, float] | None,
        failure_reason: str | None,
        metadata: Mapping[str, str],
        now: float,
        score: float | None = None,
        uid: str | None = None,
        request_id: RequestId | None = None,
        stop_reason: str | None = None,
        infeasible_reason: str | None = None,
        front_vector: Sequence[float] | None = None,
    ) -> Trial:
        """Ends a RUNNING trial, or records the late result of a lease-expired one, in one
        atomic step.

        Exactly one of ``values`` (the trial becomes COMPLETED), ``failure_reason`` (FAILED:
        the infrastructure failed), ``stop_reason`` (STOPPED: the worker stopped it early) and
        ``infeasible_reason`` (INFEASIBLE: its parameters cannot give a result, say out of
        memory or diverged) is given. ``metadata`` is merged into the trial's metadata. The
        trial's lease ends.

        A stopped trial's values are those of its last report (``None`` if it reported
        nothing), and ``Trial.stop`` is a decision of rule ``WORKER`` at that report's step (0
        without one) with ``stop_reason`` as its message. A stop is a late result like values:
        a lease-expired trial that takes it becomes STOPPED and its point is withdrawn from the
        re-issue queue if still there (the worker judged the point). A stop of a trial already
        STOPPED (by its policy at a report, or by an earlier stop) answers the trial as it is
        and changes nothing; values or a failure for it are refused (``TRIAL_NOT_RUNNING``).

        ``Trial.failure_reason`` is one stored field for two reasons: why a FAILED trial
        failed, and why an INFEASIBLE trial's parameters cannot give a result
        (``infeasible_reason``, which replaces the lease-expiry reason of a late verdict). An
        INFEASIBLE trial has no values, no stop and no score. An infeasible verdict judges the
        point, like values or a stop: a lease-expired trial takes it as a late result, becomes
        INFEASIBLE, and its point is withdrawn from the re-issue queue if still there. An
        INFEASIBLE trial, like a COMPLETED or FAILED one, takes no further outcome
        (``TRIAL_NOT_RUNNING``; only a retry with the same ``request_id`` is answered).

        Args:
            score: Rank among the trials ``best_trial`` compares, lower is better: for a
                single-objective study, with ``values``; with ``stop_reason``, only when the
                study ranks stopped trials (without one, a stop is ranked by the score given
                with the trial's last report, if any); never with ``failure_reason`` or
                ``infeasible_reason``.
            front_vector: The trial's front vector (see :meth:`pareto_front`), given as
                ``score`` is: with ``values``; with ``stop_reason``, only when the study ranks
                stopped trials (without one, a stop takes the vector given with the trial's
                last report, if any); never with ``failure_reason`` or ``infeasible_reason``.
                ``None`` puts the trial on no front.
            uid: When given, the ``uid`` of the study the caller validated ``values`` against.
            request_id: With the id of an earlier ``complete_trial`` of this trial: returns the
                trial as it is and changes nothing.
            stop_reason: Why the worker stopped the trial (may be empty).
            infeasible_reason: Why the trial's parameters cannot give a result (may be
                empty); kept as ``Trial.failure_reason``.

        Raises:
            NotFound: No such study or trial.
            StaleStudy: ``uid`` is given and the study's uid differs; nothing changed.
            FailedPrecondition: The trial is not RUNNING and took no late result (reason
                ``TRIAL_NOT_RUNNING``); nothing changed.
            InvalidArgument: ``request_id`` was used for another call.
            ValueError: Not exactly one outcome is given, or a ``score`` or a
                ``front_vector`` with a failure or an infeasible verdict, or a
                ``front_vector`` with a value that is not finite (a caller's mistake; nothing
                changed).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def heartbeat_trial(
        self, namespace: str, study_id: str, number: int, *, now: float, lease_timeout: float
    ) -> Trial:
        """Renews the lease of a RUNNING trial to ``now + lease_timeout``, in one atomic step.

        A lease found expired is expired (see the module docstring) instead of renewed.

        Raises:
            NotFound: No such study or trial.
            FailedPrecondition: The trial is not RUNNING, or its lease had expired (reason
                ``TRIAL_NOT_RUNNING``, metadata ``state``: the trial's state, FAILED, STOPPED,
                INFEASIBLE..., and ``lease_expired``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def add_measurement(
        self,
        namespace: str,
        study_id: str,
        number: int,
        measurement: Measurement,
        *,
        policy: EarlyStopping | None,
        now: float,
        lease_timeout: float,
        uid: str | None = None,
        request_id: RequestId | None = None,
        score: float | None = None,
        front_vector: Sequence[float] | None = None,
    ) -> tuple[Trial, Decision]:
        """Records an intermediate measurement of a RUNNING trial and answers the policy's
        decision, in one atomic step (see the module docstring).

        The trial must be RUNNING; a lease found expired expires instead, as for
        :meth:`heartbeat_trial`. The report renews the lease to ``now + lease_timeout``. A step
        below the trial's last reported step, or equal to it with other values, changes
        nothing; the last step with the same values (a repeated report) answers the last
        decision and changes nothing but the lease.

        Otherwise the measurement joins the curve (thinned within ``policy.max_measurements``,
        :data:`~hyperdial_server.core.early_stopping.DEFAULT_MAX_MEASUREMENTS` without a
        policy), and the policy decides, on the oriented values of its watched objective:

        * percentile rules: at a step where the rule decides, the trial's value is recorded for
          that step, and its best value so far is compared with the percentile of the *other*
          trials' values recorded at that step;
        * successive halving and Hyperband: at each rung the report reaches for the first time,
          in order (a sparse report may reach several), the value is recorded at the rung and
          ranked (``rank``: values strictly better; ``size``: values at the rung, its own
          included); the first rung it is not promoted at stops it. A Hyperband trial's bracket
          is ``hyperband_bracket(rule, number)``;
        * threshold and patience: on the trial's own best value and the step it was reached at
          (the best improves only by more than ``min_delta``).

        Without a policy the decision is to continue. A decision to stop makes the trial
        STOPPED with this report's values, ``complete_time`` now and the decision as
        ``Trial.stop``.

        Args:
            measurement: The report; its ``values`` hold the watched objective's.
            policy: The study's early-stopping policy; ``None``: record only.
            now: Current time, seconds since the epoch.
            lease_timeout: Seconds of the renewed lease.
            uid: When given, the ``uid`` of the study the caller validated the report against.
            request_id: Makes the report idempotent: a retry answers the first answer (the
                same decision, the trial as it is now) and changes nothing.
            score: The rank of this report's values (as for ``complete_trial``), given only
                when the study ranks stopped trials: the trial's score if this report stops it,
                or if the worker stops it later without a report since.
            front_vector: The front vector of this report's values (see
                :meth:`pareto_front`), given, as ``score``, only when the study ranks stopped
                trials: the trial's vector if this report stops it, or if the worker stops it
                later without a report since.

        Returns:
            The trial after the report (without its curve; ``lease_expire_time`` renewed, or
            ``None`` once STOPPED) and the decision.

        Raises:
            NotFound: No such study or trial.
            StaleStudy: ``uid`` is given and the study's uid differs; nothing changed.
            FailedPrecondition: The trial is not RUNNING (``TRIAL_NOT_RUNNING``, as for
                ``heartbeat_trial``), or the step goes back (``STEP_NOT_INCREASING``); nothing
                changed (but an expired lease).
            InvalidArgument: ``request_id`` was used for another call, or with another payload.
            ValueError: A ``front_vector`` with a value that is not finite.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def check_early_stopping(self, namespace: str, study_id: str, number: int) -> Decision:
        """The decision of the trial's last report, read only: for a STOPPED trial, why it
        stopped; for a trial that never reported, continue at step 0.

        Raises:
            NotFound: No such study or trial.
        """
        raise NotImplementedError

    async def rung_values(
        self, namespace: str, study_id: str, numbers: Collection[int]
    ) -> list[RungValue]:
        """The values the given trials recorded at the rungs of the study's successive halving
        or Hyperband policy, one per trial and rung it reached, in no particular order: what a
        model-based sampler compares a stopped trial with, for the trials it models. Read only;
        the work grows with ``numbers``, not with the study.

        The default keeps none (a store without them still works: the Bayesian sampler then
        values stopped trials by their own last value alone, ``docs/algorithms.md``).

        Args:
            namespace: The study's namespace.
            study_id: The study.
            numbers: The trials (numbers of no trial, or of trials without reports, add
                nothing).

        Returns:
            The values; empty for a study without rungs, without reports, or unknown.
        """
        return []

    async def percentile_values(
        self, namespace: str, study_id: str, numbers: Collection[int]
    ) -> list[StepValue]:
        """The values the study's percentile (or median) rule recorded for the given trials at
        the steps where the given STOPPED trials made their last report, at the
        ``PERCENTILE_STEPS`` steps with the most of them (ties: the lower step), in no
        particular order: what a model-based sampler compares a stopped trial with, for the
        trials it models. Read only; the work grows with ``numbers``, not with the study (a
        store may choose the steps from every STOPPED trial of a study whose older records
        say nothing of their trials).

        The default keeps none (the Bayesian sampler then values stopped trials by their own
        last value alone, ``docs/algorithms.md``).

        Args:
            namespace: The study's namespace.
            study_id: The study.
            numbers: The trials (numbers of no trial, or of trials without reports, add
                nothing).

        Returns:
            The values; empty for a study without a percentile rule, without stopped trials,
            or unknown.
        """
        return []

    @abc.abstractmethod
    async def expire_leases(self, *, now: float, limit: int = 1000) -> int:
        """Expires due leases in every namespace and study: the periodic sweep.

        Safe to run on every replica at once. Finds the studies with a due lease without
        visiting the others.

        Args:
            now: Current time, seconds since the epoch.
            limit: Most studies visited by this call.

        Returns:
            How many leases this call expired.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def get_trial(
        self,
        namespace: str,
        study_id: str,
        number: int,
        *,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> Trial:
        """Returns one trial.

        Args:
            now: When given, the study's due leases expire first.
            with_measurements: Whether ``Trial.measurements`` holds the kept curve.

        Raises:
            NotFound: No such study (``STUDY_NOT_FOUND``) or trial (``TRIAL_NOT_FOUND``).
        """
        raise NotImplementedError

    async def list_trials(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        after_revision: int = 0,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> tuple[list[Trial], bool]:
        """Lists trials in ascending order of number, or the trials changed after a revision
        in ascending order of revision: the trials of :meth:`list_trial_page`, decoded.

        Returns:
            The trials, and whether more follow.
        """
        page, more = await self.list_trial_page(
            namespace,
            study_id,
            states=states,
            page_size=page_size,
            after=after,
            after_revision=after_revision,
            now=now,
            with_measurements=with_measurements,
        )
        return page.decode(), more

    @abc.abstractmethod
    async def list_trial_page(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        after_revision: int = 0,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> tuple[TrialPage, bool]:
        """One page of trials, in one atomic step, with the study's revision: in ascending
        order of number; or, with ``after_revision`` above 0, the trials whose revision is
        greater (that changed since), in ascending order of revision. The trials may still be
        encoded (a store that keeps them so lets the caller decode them where it likes).

        By revision, the page looks at ``page_size`` changes (the trials changed after
        ``after_revision``, in order) and keeps those in ``states``: the filter may make the
        page shorter than ``page_size``, even empty, while more follow. The next page starts
        at ``page.last``, the revision of the last change looked at. A reader that keeps a
        copy of the study reads every page by number (or by revision from its last read),
        keeps ``page.revision`` of the first page, and reads again from that revision: a
        trial that changed during the read has a greater revision by then, so nothing is lost.

        Args:
            states: Only trials in one of these states; ``None`` for every state (an empty
                collection: no trial).
            page_size: Most trials to return (>= 1).
            after: By number: only numbers strictly greater than this one.
            after_revision: When above 0: by revision, only trials whose revision is greater
                (``after`` must then be 0).
            now: When given, the study's due leases expire first (expiring is a change).
            with_measurements: Whether each ``Trial.measurements`` holds the kept curve.

        Returns:
            The page, and whether more follow: ``page.last`` is what to pass as ``after``
            (by number: the page's last number) or ``after_revision`` (by revision: the
            revision of the last change looked at, ``after_revision`` if none) for the next
            page, and ``page.revision`` the study's revision when the page was read. The cost
            is bounded by the page size, not by the size of the study.

        Raises:
            NotFound: No such study.
            ValueError: ``page_size`` below 1, ``after_revision`` below 0, or ``after`` and
                ``after_revision`` both given.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def model_history(
        self,
        namespace: str,
        study_id: str,
        *,
        best: int,
        recent: int,
        running: int,
        front: bool = False,
        now: float | None = None,
    ) -> TrialPage:
        """The trials a model-based sampler reads: every trial of a study of at most
        ``best + recent`` trials; of a longer one, its ``best`` best trials, the ``recent``
        trials changed last (the order of revisions), and the ``running`` RUNNING trials of
        highest number, each trial once. The best trials are those of lowest ``score`` (the
        order of :meth:`best_trial`) or, with ``front``, those of lowest number on the
        study's kept Pareto front (:meth:`pareto_front`; none if the store keeps no front,
        and the front as kept even while it waits to be rebuilt: this is a sample for a
        model, not an answer). In ascending order of number, WAITING trials included, without
        measurements.

        The cost is bounded by ``best + recent + running`` (and the size of the front) and the
        log of the study's size: an ask at 100,000 trials reads what one at a few hundred
        does. One consistent snapshot: the trials as they were at ``page.revision``.

        Args:
            best: Best trials of a long study (0 or more).
            recent: Trials changed last of a long study (0 or more).
            running: RUNNING trials of highest number of a long study (0 or more).
            front: The best trials are the front's, not those of lowest score (a study of
                several objectives, whose trials have no score).
            now: The time, to expire the study's due leases first (none without it).

        Raises:
            NotFound: No such study.
            ValueError: A negative count.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """The trial of lowest ``score``, the lowest number among ties; ``None`` if no trial
        has a score. Scores are those given with values (COMPLETED trials) and, when the study
        ranks stopped trials, with reports or stops (STOPPED trials).

        Raises:
            NotFound: No such study.
        """
        raise NotImplementedError

    async def pareto_front(
        self,
        namespace: str,
        study_id: str,
        *,
        vector: Callable[[Trial], Sequence[float] | None],
    ) -> list[Trial]:
        """The study's candidates (see the module docstring) whose front vectors no other
        candidate's dominates, in order of number, read in one atomic step. A vector
        dominates another when it is no greater in every place and less in one; equal
        vectors are all kept (neither dominates), and a candidate without a vector is on no
        front. The vectors are those given when each trial became a candidate
        (``complete_trial``, ``create_trial``, ``add_measurement``).

        A store keeps the front as candidates come, so reading it costs the front's size, not
        the study's. A store that finds its front missing or incomplete (a study stored
        before the store kept fronts, or a candidate made by an older server that did not
        keep it) reads every candidate and computes each one's vector with ``vector``, then
        keeps the front it found for the next read. The default, for a store that keeps no
        front, always does so: correct, at the cost of the whole study.

        Args:
            vector: A candidate's front vector as the callers give it, from the trial as
                stored (``None``: on no front); only called when the front is computed
                afresh.

        Raises:
            NotFound: No such study.
        """
        return await scan_pareto_front(self, namespace, study_id, vector=vector)


#: Candidates per page when a front is computed from every candidate.
FRONT_SCAN_PAGE = 1000


async def scan_pareto_front(
    store: Store,
    namespace: str,
    study_id: str,
    *,
    vector: Callable[[Trial], Sequence[float] | None],
) -> list[Trial]:
    """:meth:`Store.pareto_front` computed from every candidate of the study, read in pages
    (not one atomic step: a trial that becomes a candidate during the read may be missed)."""
    front, _, _ = await read_pareto_front(store.list_trial_page, namespace, study_id, vector=vector)
    return front


async def read_pareto_front(
    list_page: Callable[..., Awaitable[tuple[TrialPage, bool]]],
    namespace: str,
    study_id: str,
    *,
    vector: Callable[[Trial], Sequence[float] | None],
) -> tuple[list[Trial], list[tuple[int, tuple[float, ...]]], int]:
    """Reads every candidate of the study (COMPLETED and STOPPED trials) in pages with
    ``list_page`` (a store's :meth:`Store.list_trial_page`) and computes the front of their
    vectors.

    Returns:
        The trials on the front in order of number, their ``(number, vector)``, and how many
        COMPLETED and STOPPED trials were read (vector or not): a store that keeps a count of
        its candidates compares it with its own, as candidates are never taken back.
    """
    candidates: list[tuple[Trial, tuple[float, ...]]] = []
    read = 0
    after = 0
    while True:
        encoded, more = await list_page(
            namespace,
            study_id,
            states=(TrialState.COMPLETED, TrialState.STOPPED),
            page_size=FRONT_SCAN_PAGE,
            after=after,
        )
        page = encoded.decode()
        read += len(page)
        for trial in page:
            v = vector(trial)
            if v is not None:
                candidates.append((trial, check_front_vector(v)))
        if not more or not page:
            break
        after = page[-1].number
    kept = [candidates[i] for i in front_of([v for _, v in candidates])]
    kept.sort(key=lambda pair: pair[0].number)
    return [t for t, _ in kept], [(t.number, v) for t, v in kept], read


def check_front_vector(vector: Sequence[float]) -> tuple[float, ...]:
    """``vector`` as a tuple of floats; ``ValueError`` if empty or if a value is not finite
    (every store refuses the same vectors)."""
    out = tuple(float(x) for x in vector)
    if not out or not all(math.isfinite(x) for x in out):
        raise ValueError(f"a front vector holds one finite value per objective, not {vector!r}")
    return out


def check_front_allowed(vector: Sequence[float] | None, state: TrialState) -> None:
    """Raises ``ValueError`` for a front vector given with a trial that does not become a
    candidate (neither COMPLETED nor STOPPED), or holding a value that is not finite."""
    if vector is None:
        return
    if state not in (TrialState.COMPLETED, TrialState.STOPPED):
        raise ValueError("a front_vector is only given for a COMPLETED or STOPPED trial")
    check_front_vector(vector)
