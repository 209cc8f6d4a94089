"""The loop behind ``optimize``: ask → objective → tell, in worker threads or tasks.

The blocking loop is here; the asyncio one is beside ``AsyncStudy`` and shares
:class:`RunState` (trial budget, first error, progress line) and the helpers that fail a
trial whose code raised.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hyperdial._base import BaseStudy, BaseTrial, TrialState, _cut, _number
from hyperdial._early_stopping import TrialStopped
from hyperdial._errors import FailedPreconditionError, HyperdialError, StudyCompleteError
from hyperdial._progress import Progress, progress_wanted

if TYPE_CHECKING:
    from hyperdial._study import Study, Trial

__all__ = [
    "ObjectiveResult",
    "RunState",
    "TrialInfeasible",
    "describe",
    "ignored_result",
    "infeasibility_reason",
    "optimize_in_threads",
    "progress_line",
    "quiet_failure",
    "stop_reason",
    "worker_ids",
]

logger = logging.getLogger("hyperdial")

#: What an objective function returns: one value (single-objective studies) or one value
#: per objective name, and per outcome constraint name when the study has constraints.
ObjectiveResult = float | Mapping[str, float]


class TrialInfeasible(Exception):  # noqa: N818 - named as TrialStopped is
    """Raise it when the trial's parameters cannot give a result: the model ran out of memory,
    training diverged, the configuration is invalid. In ``with study.trial()`` or an objective
    of ``optimize``, the trial ends INFEASIBLE with the exception's message as its reason, and
    the exception goes no further: the run goes on.

    INFEASIBLE is a result: samplers learn to avoid the region and the point is never handed
    out again. When the infrastructure failed instead (a node lost, a preemption), let any
    other exception fail the trial: a FAILED point is worth another try.

    Example:
        >>> def objective(trial):  # doctest: +SKIP
        ...     try:
        ...         return train(trial.params)
        ...     except torch.cuda.OutOfMemoryError as e:
        ...         raise hd.TrialInfeasible(f"out of memory: {e}") from e
    """


def optimize_in_threads(
    study: Study,
    objective: Callable[[Trial], ObjectiveResult | None],
    n_trials: int | None,
    *,
    n_workers: int,
    catch: tuple[type[BaseException], ...],
    client_id: str,
    show_progress: bool | None,
) -> None:
    """Runs :meth:`hyperdial.Study.optimize` (see there for the arguments and errors)."""
    _check_run(n_trials, n_workers)
    progress = None
    if progress_wanted(show_progress, sys.stderr):
        best, number = _best_for_progress(study, lambda: study.best_trials)
        progress = progress_line(study, n_trials, best, number)
    run = RunState(n_trials, catch, progress)
    ids = worker_ids(client_id, n_workers)
    try:
        if n_workers == 1:
            _work(study, objective, run, ids[0])  # in the caller's thread: Ctrl-C works
        else:
            threads = [
                threading.Thread(
                    target=_work,
                    args=(study, objective, run, ids[i]),
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


def progress_line(
    study: BaseStudy[Any], total: int | None, best: float | None, number: int | None
) -> Progress:
    """The progress line of one ``optimize`` call, drawn on stderr."""
    goal = study._objectives[0].goal if len(study._objectives) == 1 else None
    return Progress(sys.stderr, study.study_id, total, goal=goal, best=best, best_number=number)


def describe(exc: BaseException) -> str:
    """``"Type: message"``, cut to a failure reason's length."""
    text = str(exc)
    return _cut(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def stop_reason(exc: TrialStopped) -> str:
    """The reason of a worker stop: the message of the ``TrialStopped`` raised, if any."""
    return _cut(str(exc))


def infeasibility_reason(exc: TrialInfeasible) -> str:
    """The reason of an INFEASIBLE trial: the message of the ``TrialInfeasible`` raised."""
    return _cut(str(exc))


def quiet_failure(trial: BaseTrial, error: HyperdialError) -> None:
    """Logs why a trial could not be failed while another error is being handled."""
    if isinstance(error, FailedPreconditionError) and error.reason == "TRIAL_NOT_RUNNING":
        return  # already ended by other means: nothing to do
    logger.warning("could not fail %s: %s", trial.name, error)


def ended_elsewhere(trial: BaseTrial, error: BaseException) -> bool:
    """Whether ``error`` says the trial ended without this worker, logging it if so.

    The service answers ``TRIAL_NOT_RUNNING`` to a report on a trial whose lease expired (its
    point is handed out again), or that another client stopped or failed. The protocol's rule
    is to drop that trial and ask for another: one lost trial does not end the run.
    """
    if not (isinstance(error, FailedPreconditionError) and error.reason == "TRIAL_NOT_RUNNING"):
        return False
    how = "its lease expired" if error.metadata.get("lease_expired") == "true" else None
    state = error.metadata.get("state", "").lower()
    logger.warning(
        "%s ended without this worker (%s); its result is dropped",
        trial.name,
        how or (f"it is {state}" if state else "it is no longer running"),
    )
    return True


def _fail_quietly(trial: Trial, reason: str) -> None:
    """Fails a running trial while another error is being handled: that error matters more."""
    try:
        trial.fail(reason)
    except HyperdialError as e:
        quiet_failure(trial, e)


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
        result = trial._attachment.result if trial._attachment is not None else None
        if trial._stopped:
            self.progress.trial_stopped()
        elif result is not None and result.state is TrialState.INFEASIBLE:
            self.progress.trial_infeasible()
        elif result is None or result.state is not TrialState.COMPLETED:
            self.progress.trial_failed()
        else:
            # A trial that breaks a constraint is never the best: counted, not ranked.
            self.progress.trial_finished(
                result.number, result.value, feasible=not result.infeasible
            )


def ignored_result(trial: BaseTrial, result: object) -> bool:
    """Whether the objective's result has nothing left to do: it reported the trial itself
    (``None``), or the policy stopped the trial, whose result the service would refuse."""
    if not trial._finished:
        return False
    if result is not None and trial._stopped:
        logger.debug("%s was stopped early: its objective's result is ignored", trial.name)
        return True
    return result is None


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
            try:
                result = objective(trial)
            except TrialStopped as stopped:
                if not trial._finished:
                    trial.stop(stop_reason(stopped))
                run.finished(trial)
                continue  # stopped early: not a failure
            except TrialInfeasible as infeasible:
                if not trial._finished:
                    trial.mark_infeasible(infeasibility_reason(infeasible))
                run.finished(trial)
                continue  # a result in itself: not a failure
            if ignored_result(trial, result):
                run.finished(trial)
                continue
            if isinstance(result, Mapping):
                trial.report(values=result)
            else:
                trial.report(_number(result))
            run.finished(trial)
        except BaseException as e:
            if ended_elsewhere(trial, e):
                run.finished(trial)
                continue
            if not trial._finished:
                _fail_quietly(trial, describe(e))
            run.finished(trial)
            if isinstance(e, run.catch):
                logger.warning("trial %s failed: %s", trial.name, describe(e))
                continue
            run.record(e)
            return
