"""The blocking study and trial, :class:`Study` and :class:`Trial`: one RPC per call.

The requests and conversions are in :mod:`hyperdial._base`, shared with the asyncio client;
the loop behind :meth:`Study.optimize` is in :mod:`hyperdial._optimize`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

from hyperdial._base import (
    BaseStudy,
    BaseTrial,
    TrialChanges,
    TrialState,
    _ChangesReader,
    intermediate_value,
    wanted_states,
)
from hyperdial._early_stopping import Decision, TrialStopped
from hyperdial._errors import FailedPreconditionError, NotFoundError
from hyperdial._importance import (
    ParameterImportances,
    importance_request,
    importances_from_proto,
)
from hyperdial._optimize import (
    ObjectiveResult,
    TrialInfeasible,
    _fail_quietly,
    describe,
    infeasibility_reason,
    optimize_in_threads,
    stop_reason,
)
from hyperdial.v1 import study_pb2, tuning_service_pb2

if TYPE_CHECKING:
    from hyperdial._client import Client

__all__ = ["Study", "Trial"]

# Reason recorded when a ``with study.trial()`` block ends without a result.
NO_RESULT_REASON = "no result reported"


class Trial(BaseTrial):
    """A trial of a :class:`Study` (see :class:`BaseTrial` for the attributes)."""

    @overload
    def report(
        self,
        value: float | Mapping[str, float],
        step: int,
        *,
        elapsed: float | timedelta | None = None,
    ) -> Decision: ...

    @overload
    def report(
        self,
        value: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
        constraint_values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial: ...

    def report(
        self,
        value: float | Mapping[str, float] | None = None,
        step: int | None = None,
        *,
        values: Mapping[str, float] | None = None,
        constraint_values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
        elapsed: float | timedelta | None = None,
    ) -> Decision | Trial:
        """Reports an intermediate value at a step, or, without a step, the final result.

        ``trial.report(loss, step)`` (Optuna's ``trial.report``) records a point of the
        learning curve and answers the study's early-stopping decision (see
        :meth:`Study.report`); when it says ``should_stop``, stop training and
        ``raise hd.TrialStopped()``. ``trial.report(loss)`` records the result and completes
        the trial (see :meth:`Study.tell`); ``trial.report(loss,
        constraint_values={"latency_ms": 12.5})`` with the values of the study's outcome
        constraints.

        Returns:
            With a step, the :class:`Decision`; without, the completed trial as stored.
        """
        study = self._study()
        if step is not None:
            if constraint_values is not None:
                raise TypeError("constraint_values belong to the final report, without a step")
            decision: Decision = study.report(
                self, intermediate_value(value, values, metadata), step, elapsed=elapsed
            )
            return decision
        if elapsed is not None:
            raise TypeError("elapsed goes with a step: report(value, step, elapsed=...)")
        if isinstance(value, Mapping):
            raise TypeError("pass the final values as values={name: value, ...}")
        done: Trial = study.tell(
            self, value, values=values, constraint_values=constraint_values, metadata=metadata
        )
        self._mark_finished(done)
        return done

    def check_stopping(self) -> Decision:
        """Asks the service whether this trial should stop, without reporting (see
        :meth:`Study.check_stopping`); :attr:`should_stop` then says the same."""
        decision: Decision = self._study().check_stopping(self)
        return decision

    def stop(self, reason: str = "") -> Trial:
        """Stops this running trial early: it becomes STOPPED, ranked by its last report (see
        :meth:`Study.stop_trial`). A trial the policy stopped already is answered as it is.

        Returns:
            The stopped trial as stored.
        """
        done: Trial = self._study().stop_trial(self, reason)
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

    def mark_infeasible(self, reason: str = "") -> Trial:
        """Records that this running trial's parameters cannot give a result: it becomes
        INFEASIBLE (see :meth:`Study.mark_infeasible`). Raising
        :class:`~hyperdial.TrialInfeasible` in ``with study.trial()`` or an objective of
        ``optimize`` does this for you.

        Returns:
            The infeasible trial as stored.
        """
        done: Trial = self._study().mark_infeasible(self, reason)
        self._mark_finished(done)
        return done


class Study(BaseStudy[Trial]):
    """One tuning problem on the service. Obtain it from a :class:`~hyperdial.Client`.

    Thread-safe, like the client it uses.
    """

    _trial_type = Trial

    def __init__(self, client: Client, pb: study_pb2.Study) -> None:
        super().__init__(client, pb)

    # -- ask / tell ------------------------------------------------------------------------

    def ask(self, count: int = 1, *, client_id: str = "") -> list[Trial]:
        """Hands out running trials: those this ``client_id`` holds already, then the points of
        lease-expired trials, enqueued trials, and new points (``docs/protocol.md``).

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
        constraint_values: Mapping[str, float] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Records the result of a running trial.

        A study with outcome constraints (:attr:`constraints`) needs each constraint's value
        too: in ``constraint_values``, or in ``values`` beside the objectives'. The trial
        comes back COMPLETED either way; ``infeasible`` says whether it broke a constraint
        (and ``infeasibility_reason`` which).

        Safe to retry: the client sends one ``request_id`` with every attempt, so a tell whose
        answer was lost is not applied twice and does not fail.

        Args:
            trial_or_number: The trial or its number.
            value: The objective value; only for a study with one objective.
            values: One value per objective name (instead of ``value``); may hold the
                constraints' values too.
            constraint_values: One value per outcome constraint name.
            metadata: Annotations merged into the trial's metadata.

        Returns:
            The completed trial as stored.

        Raises:
            ValueError: Neither or both of ``value`` and ``values``, ``value`` for a study
                with several objectives, or a name both in ``values`` and
                ``constraint_values``.
            FailedPreconditionError: The trial is not running (reason ``TRIAL_NOT_RUNNING``).
            InvalidArgumentError: A value is missing, unknown or not finite (reason
                ``INVALID_MEASUREMENT``), or a constraint's value is missing (reason
                ``MISSING_CONSTRAINT_VALUE``, metadata ``constraint``: its name).
        """
        return self._end(
            self._tell_request(trial_or_number, value, values, metadata, constraint_values)
        )

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

    def mark_infeasible(
        self,
        trial_or_number: BaseTrial | int,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Records that a running trial's parameters cannot give a result (out of memory,
        training diverged, an invalid configuration): it becomes INFEASIBLE. Samplers learn
        to avoid its region, and its point is never handed out again.

        Use :meth:`fail` instead when the infrastructure failed (a node lost, a preemption):
        that point is worth another try. Raising :class:`~hyperdial.TrialInfeasible` in
        ``with study.trial()`` or an objective of ``optimize`` does this for you.

        Args:
            trial_or_number: The trial or its number.
            reason: Why, for people (``infeasibility_reason``); cut to 4096 characters.
            metadata: Annotations merged into the trial's metadata.

        Returns:
            The infeasible trial as stored.

        Raises:
            FailedPreconditionError: The trial is not running (reason ``TRIAL_NOT_RUNNING``).
        """
        return self._end(self._infeasible_request(trial_or_number, reason, metadata))

    def stop_trial(
        self,
        trial_or_number: BaseTrial | int,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Stops a running trial early, from the worker (its own criterion, a budget): it
        becomes STOPPED with ``stop_decision.rule`` ``"worker"``, its last report as its
        values. Raising :class:`~hyperdial.TrialStopped` in ``with study.trial()`` or an
        objective of ``optimize`` does this for you.

        Args:
            trial_or_number: The trial or its number.
            reason: Why, for people (the decision's message); cut to 4096 characters.
            metadata: Annotations merged into the trial's metadata.

        Returns:
            The stopped trial as stored; for a trial the policy stopped already, as it is.

        Raises:
            FailedPreconditionError: The trial is COMPLETED or FAILED (``TRIAL_NOT_RUNNING``).
        """
        return self._end(self._stop_request(trial_or_number, reason, metadata))

    def report(
        self,
        trial_or_number: BaseTrial | int,
        value: float | Mapping[str, float],
        step: int,
        *,
        elapsed: float | timedelta | None = None,
    ) -> Decision:
        """Reports an intermediate measurement of a running trial and answers whether it
        should stop, by the study's early-stopping policy.

        A report renews the trial's lease (the client then postpones its own heartbeat). A
        trial told to stop is STOPPED on the service already: stop training, and do not tell
        it. Safe to retry: one ``request_id`` for every attempt, so a report whose answer was
        lost answers the same decision again, a stop included.

        Args:
            trial_or_number: The trial or its number.
            value: The value at this step: a number (the objective of a single-objective
                study, or the one the policy watches), or a mapping of objective name to value
                (the watched objective's at least).
            step: Epochs, batches, or any resource unit: 0 or more, never below the trial's
                last report's step.
            elapsed: Training time so far, in seconds or as a ``timedelta``; optional.

        Returns:
            The policy's decision (``should_stop`` false without a policy).

        Raises:
            ValueError: A bare number for a study of several objectives without a policy.
            FailedPreconditionError: The trial is not running (``TRIAL_NOT_RUNNING``; metadata
                ``state`` says STOPPED when it was stopped), or the step went back
                (``STEP_NOT_INCREASING``).
            InvalidArgumentError: A value is missing, unknown or not finite
                (``INVALID_MEASUREMENT``).
        """
        request = self._report_request(trial_or_number, value, step, elapsed)
        try:
            response = self._client._invoke(
                "AddTrialMeasurement", request, tuning_service_pb2.AddTrialMeasurementResponse
            )
        except (FailedPreconditionError, NotFoundError) as e:
            if e.reason != "STEP_NOT_INCREASING":
                self._closed(request.name)  # ended already: nothing left to renew
            raise
        return self._reported(trial_or_number, response)

    def check_stopping(self, trial_or_number: BaseTrial | int) -> Decision:
        """Whether a trial should stop, from the measurements reported so far, without
        reporting one: the decision of its last report (for a STOPPED trial, why it stopped),
        or continue for a trial that reported nothing yet. For workers whose reports reach
        the service another way.

        Raises:
            NotFoundError: No such trial (``TRIAL_NOT_FOUND``).
        """
        response = self._client._invoke(
            "CheckTrialEarlyStopping",
            self._check_request(trial_or_number),
            tuning_service_pb2.CheckTrialEarlyStoppingResponse,
        )
        return self._checked(trial_or_number, response)

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
        constraint_values: Mapping[str, float] | None = None,
        failure: str | None = None,
        infeasibility: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trial:
        """Imports a trial that finished elsewhere: completed (``value`` or ``values``, and
        the constraints' values), failed (``failure``) or infeasible (``infeasibility``). It
        does not count towards ``max_trials``.

        Args:
            params: Values of the active parameters by name.
            value: The objective value; only for a study with one objective.
            values: One value per objective name; may hold the constraints' values too.
            constraint_values: One value per outcome constraint name.
            failure: Why the trial failed, instead of a result.
            infeasibility: Why its parameters cannot give a result (INFEASIBLE), instead of a
                result; may be empty.
            metadata: Annotations of the trial.

        Returns:
            The trial as stored.

        Raises:
            ValueError: Not exactly one outcome is given.
            InvalidArgumentError: The point or the values are invalid (a constraint's value
                missing included).
        """
        response = self._client._invoke(
            "CreateTrial",
            self._add_trial_request(
                params, value, values, failure, metadata, constraint_values, infeasibility
            ),
            tuning_service_pb2.CreateTrialResponse,
        )
        return self._trial(response.trial, finished=True)

    def trials(
        self,
        states: Iterable[TrialState | str] | None = None,
        *,
        with_measurements: bool = False,
    ) -> list[Trial]:
        """The trials of the study in order of number, all pages read.

        Args:
            states: Only trials in one of these states (e.g. ``["COMPLETED"]``); ``None``
                for every state.
            with_measurements: Read each trial's learning curve too (``Trial.measurements``);
                pages are bigger, so more of them.
        """
        wanted = wanted_states(states)
        if wanted is None:
            return []
        out: list[Trial] = []
        token = ""
        while True:
            response = self._client._invoke(
                "ListTrials",
                self._list_request(wanted, token, with_measurements),
                tuning_service_pb2.ListTrialsResponse,
            )
            out += [self._trial(pb) for pb in response.trials]
            token = response.next_page_token
            if not token:
                return out

    def changes(
        self, after_revision: int = 0, *, with_measurements: bool = False
    ) -> TrialChanges[Trial]:
        """The trials that changed after a revision of the study, all pages read: how a
        dashboard keeps a copy of a study of any size up to date, reading only what changed.

        A change is a trial's creation, its hand-out, a heartbeat, a report, its result, the
        expiry of its lease or the re-issue of its point; each gives the trial the study's next
        revision (``Trial.revision``). Read once from 0 (every trial), then each time from the
        ``revision`` the last read answered::

            seen = study.changes()
            copy = {t.number: t for t in seen.trials}
            ...
            seen = study.changes(seen.revision)
            copy.update((t.number, t) for t in seen.trials)

        A ``revision`` below the one passed means the study was deleted and created again:
        read it again from 0.

        Args:
            after_revision: The ``revision`` of the last read; 0 reads every trial.
            with_measurements: Read each trial's learning curve too (``Trial.measurements``).

        Returns:
            The trials (each once, as last read; in order of revision, of number from 0) and
            the revision to pass next time.

        Raises:
            ValueError: ``after_revision`` is negative.
        """
        reader: _ChangesReader[Trial] = _ChangesReader(after_revision)
        token = ""
        while True:
            response = self._client._invoke(
                "ListTrials",
                self._list_request([], token, with_measurements, reader.after_revision),
                tuning_service_pb2.ListTrialsResponse,
            )
            reader.add([self._trial(pb) for pb in response.trials], response.revision)
            token = response.next_page_token
            if not token:
                return reader.result()

    def get_trial(self, number: int, *, with_measurements: bool = True) -> Trial:
        """Returns the trial of that number.

        Args:
            number: The trial's number.
            with_measurements: Read its learning curve too (``Trial.measurements``).

        Raises:
            NotFoundError: No such trial (reason ``TRIAL_NOT_FOUND``).
        """
        response = self._client._invoke(
            "GetTrial",
            self._trial_request(number, with_measurements),
            tuning_service_pb2.GetTrialResponse,
        )
        return self._trial(response.trial)

    @property
    def best_trials(self) -> list[Trial]:
        """The best completed trial (one objective) or every Pareto-optimal one (several);
        empty when no trial has completed. Only feasible trials rank: one that breaks an
        outcome constraint is never best, however good its values.

        Judged by the values the trials reported: right for a deterministic objective. With a
        noisy one the best observed value is often a lucky measurement; use
        :attr:`recommended_trials` there."""
        response = self._client._invoke(
            "ListOptimalTrials",
            self._optimal_request(),
            tuning_service_pb2.ListOptimalTrialsResponse,
        )
        return [self._trial(pb, finished=True) for pb in response.trials]

    @property
    def best_trial(self) -> Trial:
        """The best feasible completed trial of a single-objective study (the lowest number
        among ties).

        Raises:
            ValueError: The study has several objectives (use ``best_trials``), or no trial
                has completed yet (none feasible, with outcome constraints).
        """
        self._check_single_objective()
        return self._best_of(self.best_trials)

    @property
    def recommended_trials(self) -> list[Trial]:
        """The recommended trial (one objective) or the Pareto front of the recommendation
        (several), each with its :attr:`~hyperdial.BaseTrial.prediction`; empty when no trial
        has completed. Like :attr:`best_trials`, only feasible trials are recommended.

        The service fits a model (the Gaussian process of the ``"bayesian"`` algorithm,
        whatever the study's) to every completed trial and judges the trials by its
        prediction of their noise-free values, not by the values they reported: a point
        measured several times, or whose neighbours agree, wins over one lucky measurement.
        Use it for a noisy objective (a training run with random initialisation, a
        benchmark's timing); for a deterministic one, :attr:`best_trials` says the same from
        the reported values. Trials with the same parameters (measured again) are one point,
        listed by the lowest number; ``prediction.measurements`` counts them. With fewer
        than 2 completed trials there is no model: the answer is :attr:`best_trials`, without
        predictions (``prediction`` is ``None``).
        """
        response = self._client._invoke(
            "ListOptimalTrials",
            self._optimal_request(by_model=True),
            tuning_service_pb2.ListOptimalTrialsResponse,
        )
        return self._recommended(response)

    @property
    def recommended_trial(self) -> Trial:
        """The recommended trial of a single-objective study: the completed trial whose
        prediction is best at its worse end (the predicted mean plus one standard deviation,
        or minus one when maximized: of two trials predicted alike, the surer), with its
        :attr:`~hyperdial.BaseTrial.prediction`; see :attr:`recommended_trials` for when to
        use it rather than :attr:`best_trial`.

        Raises:
            ValueError: The study has several objectives (use ``recommended_trials``), or no
                trial has completed yet.
        """
        self._check_single_objective("recommended")
        return self._best_of(self.recommended_trials)

    def trials_dataframe(self, states: Iterable[TrialState | str] | None = None) -> Any:
        """The trials as a ``pandas.DataFrame``, one row per trial in order of number.

        Columns: ``number``, ``state``, ``value`` (one objective) or ``values_<name>``,
        ``constraints_<name>`` (one per outcome constraint), ``params_<name>``,
        ``client_id``, ``failure_reason``, ``infeasible``, ``infeasibility_reason``,
        ``create_time``,
        ``complete_time``, ``duration``, ``original_number``, ``reissued_number`` (nullable
        integers: the twin of a trial whose lease expired), ``measurement_count``,
        ``stop_rule``, ``stop_step`` (nullable integer), ``metadata_<key>``.

        Args:
            states: Only trials in one of these states; ``None`` for every state.

        Raises:
            ImportError: pandas is not installed (it is not a dependency of hyperdial).
        """
        return self._dataframe(self.trials(states))

    def parameter_importance(self, objective: str | None = None) -> ParameterImportances:
        """How much each parameter matters to reach the best values of an objective, from the
        study's completed trials (PED-ANOVA, computed by the service; see
        ``docs/algorithms.md``).

        Args:
            objective: The objective to explain; ``None`` for the study's first.

        Returns:
            Every parameter, most important first, with its share of the importance (the
            shares sum to 1 unless all are 0).

        Raises:
            FailedPreconditionError: Too few completed trials (``NOT_ENOUGH_TRIALS``; at least
                11).
            InvalidArgumentError: The study has no such objective (``UNKNOWN_OBJECTIVE``).
        """
        response = self._client._invoke(
            "ComputeParameterImportance",
            importance_request(self.name, objective),
            tuning_service_pb2.ComputeParameterImportanceResponse,
        )
        return importances_from_proto(response)

    # -- loops -----------------------------------------------------------------------------

    def trial(self, client_id: str = "") -> _TrialContext:
        """Asks for one trial and makes sure it ends.

        ``with study.trial() as t: ... t.report(loss)``. If the block raises, the trial is
        failed with the exception's type and message and the exception propagates; if the
        block ends without a result, the trial is failed with reason "no result reported".
        The trial's lease is renewed while the block runs.

        Early stopping: ``raise hd.TrialStopped()`` (after a report answered ``should_stop``,
        or on your own criterion) ends the block and the trial as STOPPED; the exception goes
        no further. A trial the policy stopped needs nothing more: leaving the block without
        a result is fine then too. Likewise ``raise hd.TrialInfeasible("out of memory")``
        ends it INFEASIBLE.

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
        name to value (with a value for each outcome constraint, when the study has some);
        it may instead report the trial itself and return ``None``. Stops without error when
        the study is complete. Leases of running trials are renewed in the background,
        however long the objective takes.

        Infeasible points: an objective that raises :class:`~hyperdial.TrialInfeasible`
        (out of memory, diverged) ends its trial INFEASIBLE; the run goes on, as for a
        stopped trial. Any other exception fails the trial (see ``catch``).

        Early stopping: the objective reports intermediate values with
        ``trial.report(value, step)`` and raises :class:`~hyperdial.TrialStopped` when the
        answer says ``should_stop`` (or on its own criterion). Its trial ends STOPPED, which
        is not a failure: the run goes on, and the trial counts towards ``n_trials`` and in
        the progress line. A value returned for a trial the policy stopped is ignored.

        Args:
            objective: Evaluates a trial.
            n_trials: Most trials to run (failed, stopped and infeasible ones included); ``None``
                runs until the study is complete.
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
        optimize_in_threads(
            self,
            objective,
            n_trials,
            n_workers=n_workers,
            catch=catch,
            client_id=client_id,
            show_progress=show_progress,
        )


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
    ) -> bool:
        trial = self._trial
        if isinstance(exc, TrialStopped):
            if trial is not None and not trial._finished:
                trial.stop(stop_reason(exc))
            return True  # a stopped trial is the block's normal end
        if isinstance(exc, TrialInfeasible):
            if trial is not None and not trial._finished:
                trial.mark_infeasible(infeasibility_reason(exc))
            return True  # so is an infeasible one: a result, not an error
        if trial is None or trial._finished:
            return False
        if exc is not None:
            _fail_quietly(trial, describe(exc))
            return False
        try:
            trial.fail(NO_RESULT_REASON)
        except FailedPreconditionError as e:
            # Told through study.tell() instead of t.report(): the trial has ended anyway.
            if e.reason != "TRIAL_NOT_RUNNING":
                raise
        return False
