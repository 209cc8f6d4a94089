"""Calls on one trial under the servicer: checked writes, reports, reads, optimal trials.

:class:`Trials` validates a write against the study's spec in step with the store (a write
refused because the study was re-created under a cached spec is checked again and retried),
records reports of intermediate measurements with the study's early-stopping policy, and reads
trials with the policy their conversion needs. It shares the replica's spec cache with the
:class:`~hyperdial_server.service._asker.Asker` that creates it.

Like the Asker it takes and returns core types and raises typed errors, never protobuf or gRPC
(``tests/test_layers.py`` checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from hyperdial_server.core import names
from hyperdial_server.core.early_stopping import Decision, EarlyStopping, oriented
from hyperdial_server.core.errors import InvalidArgument, NotFound, Unavailable
from hyperdial_server.core.feasibility import feasible
from hyperdial_server.core.pareto import front_vector, trial_front_vector
from hyperdial_server.core.study import StudyRecord, StudySpec
from hyperdial_server.core.trial import Measurement, Trial
from hyperdial_server.service._spec_cache import SpecCache
from hyperdial_server.store import RequestId, StaleStudy, Store

#: Attempts of a checked write when the study is re-created under it.
WRITE_ATTEMPTS = 3

T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Report:
    """The answer of a report (:meth:`Trials.report`).

    Attributes:
        trial: The trial after the report (without its measurements).
        decision: What the study's policy decided at it.
        spec: The study's spec, as the report was checked against (its policy decided).
    """

    trial: Trial
    decision: Decision
    spec: StudySpec


class Trials:
    """Checked writes and reads of one trial at a time, for one replica.

    Args:
        store: Where study state lives.
        clock: Seconds since the epoch.
        specs: The replica's cache of study records (shared with the Asker).
        load: Reads a study's record from the store and caches it (``NotFound`` if none).
        lease: Seconds of the lease of a study's RUNNING trials, from its spec.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        specs: SpecCache,
        load: Callable[[str, str], Awaitable[StudyRecord]],
        lease: Callable[[StudySpec], float],
    ) -> None:
        self._store = store
        self._clock = clock
        self.specs = specs
        self._load = load
        self.lease = lease

    async def study(self, namespace: str, study_id: str) -> StudyRecord:
        """The study's immutable record, from the cache if possible (``NotFound`` if none)."""
        record = self.specs.get(namespace, study_id)
        if record is None:
            record = await self._load(namespace, study_id)
        return record

    async def heartbeat(self, namespace: str, study_id: str, number: int) -> Trial:
        """Extends the lease of a RUNNING trial by the study's lease."""
        record = await self.study(namespace, study_id)
        try:
            return await self._store.heartbeat_trial(
                namespace,
                study_id,
                number,
                now=self._clock(),
                lease_timeout=self.lease(record.spec),
            )
        except NotFound:
            self.specs.forget(namespace, study_id)
            raise

    async def report(
        self,
        namespace: str,
        study_id: str,
        number: int,
        check: Callable[[StudyRecord], Measurement],
        request_id: RequestId | None,
    ) -> Report:
        """Records an intermediate measurement of a RUNNING trial and answers the decision of
        the study's policy, in step with the store (see :meth:`write_checked`): the report
        renews the trial's lease, and a trial told to stop is STOPPED at once.

        Args:
            check: Validates the report against the study's record (``InvalidArgument``).
            request_id: Makes the report idempotent.

        Raises:
            FailedPrecondition: The trial is not RUNNING (``TRIAL_NOT_RUNNING``), or the step
                is below its last (``STEP_NOT_INCREASING``).
            NotFound: No such study or trial.
            Unavailable: The study was re-created under every attempt (``STUDY_RECREATED``).
        """

        async def write(record: StudyRecord, measurement: Measurement) -> Report:
            policy = record.spec.early_stopping
            score = vector = None
            if policy is not None and policy.rank_stopped_trials:
                score = _report_score(record.spec, policy, measurement)
                vector = front_vector(record.spec, measurement.values)
            trial, decision = await self._store.add_measurement(
                namespace,
                study_id,
                number,
                measurement,
                policy=policy,
                now=self._clock(),
                lease_timeout=self.lease(record.spec),
                uid=record.uid,
                request_id=request_id,
                score=score,
                front_vector=vector,
            )
            return Report(trial, decision, record.spec)

        return await self.write_checked(namespace, study_id, check, write)

    async def check_stopping(self, namespace: str, study_id: str, number: int) -> Decision:
        """The decision of the trial's last report (why it stopped, for a STOPPED trial), or
        continue for a trial that reported nothing; reads only."""
        try:
            return await self._store.check_early_stopping(namespace, study_id, number)
        except NotFound:
            self.specs.forget(namespace, study_id)
            raise

    async def trial(
        self, namespace: str, study_id: str, number: int, *, with_measurements: bool
    ) -> tuple[Trial, StudySpec]:
        """One trial (due leases expired first), and the study's spec (the trial's bracket
        and feasibility follow from it)."""
        try:
            trial = await self._store.get_trial(
                namespace,
                study_id,
                number,
                now=self._clock(),
                with_measurements=with_measurements,
            )
        except NotFound:
            self.specs.forget(namespace, study_id)
            raise
        record = await self.study(namespace, study_id)
        return trial, record.spec

    async def optimal(self, namespace: str, record: StudyRecord) -> list[Trial]:
        """The study's best feasible trial, or with several objectives the Pareto front of
        its feasible trials, in order of number. STOPPED trials compete, by their last report,
        when the study's policy ranks them (``rank_stopped_trials``); a stopped trial whose
        last report lacks an objective's value is not on a Pareto front. A trial whose values
        break or lack an outcome constraint is never optimal (INFEASIBLE trials have no values
        and are not read).

        Neither reads every trial: the store keeps the best score and the front as trials
        finish (the front of the vectors the writes give, :func:`~hyperdial_server.core.
        pareto.front_vector`), and reads them at the cost of the front's size."""
        spec = record.spec
        if len(spec.objectives) == 1:
            # Only feasible trials were given a score (see ``_convert.score``).
            best = await self._store.best_trial(namespace, record.study_id)
            return [best] if best is not None else []
        # The vector of each trial as the writes gave it, should the store compute its front
        # afresh (a study stored before it kept fronts).
        return await self._store.pareto_front(
            namespace, record.study_id, vector=lambda t: trial_front_vector(spec, t)
        )

    async def write_checked(
        self,
        namespace: str,
        study_id: str,
        check: Callable[[StudyRecord], T],
        write: Callable[[StudyRecord, T], Awaitable[R]],
    ) -> R:
        """Validates a request against the study's spec, then writes it, in step with the
        store: a write refused because the study was re-created under the cached spec
        (``StaleStudy``) is validated again against the current one and retried.

        Args:
            check: Validates the request against the study's record; returns what ``write``
                takes, or raises ``InvalidArgument`` (checked again on a fresh read first).
            write: The store call; it passes the record's uid, so that the store refuses it on
                a study re-created since (``StaleStudy``). What it returns is returned.

        Raises:
            Unavailable: The study was re-created under every attempt (``STUDY_RECREATED``).
        """
        for _ in range(WRITE_ATTEMPTS):
            record = self.specs.get(namespace, study_id)
            if record is None:
                record = await self._load(namespace, study_id)
            try:
                checked = check(record)
            except InvalidArgument:
                # Refused on a cached copy: read the study afresh, in case another replica
                # re-created it with another spec.
                fresh = await self._store.get_study(namespace, study_id)
                if fresh.uid == record.uid:
                    raise
                self.specs.put(namespace, fresh)
                record = fresh
                checked = check(fresh)
            try:
                return await write(record, checked)
            except StaleStudy:
                self.specs.forget(namespace, study_id)
            except NotFound:
                self.specs.forget(namespace, study_id)
                raise
        # Not the caller's fault, and a retry may well succeed: a code workers retry.
        raise Unavailable(
            f"study {names.study_name(study_id)!r} was deleted and created again "
            f"{WRITE_ATTEMPTS} times during this call; retry it with the same request_id",
            reason="STUDY_RECREATED",
        )


def _report_score(spec: StudySpec, policy: EarlyStopping, measurement: Measurement) -> float | None:
    """The score (lower is better) a report gives its trial should it stop there, for a study
    that ranks stopped trials: of a single-objective study, the watched (only) objective's
    oriented value, as a completed trial's; ``None`` with several objectives (Pareto fronts
    read the values themselves), and for a report that lacks a value of an outcome constraint
    or breaks one (the trial would stop infeasible, and an infeasible trial is never best)."""
    if len(spec.objectives) != 1 or not feasible(spec, measurement.values):
        return None
    return oriented(measurement.values[policy.objective], policy.maximize)
