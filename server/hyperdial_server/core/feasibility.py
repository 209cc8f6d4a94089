"""Which finished trials are feasible: the outcome constraints of a study applied to trials.

A trial is infeasible when its worker said so (``TrialState.INFEASIBLE``), or when the values it
is judged by break an outcome constraint of the study (``StudySpec.constraints``) or lack one:
a COMPLETED trial's final values, and a STOPPED trial's last report when the study's policy
ranks stopped trials by it (``rank_stopped_trials``). Only feasible trials are ranked: they
alone get a score for the best trial, and they alone are on a Pareto front or recommended.
Pure, like the rest of ``core``.
"""

from __future__ import annotations

from collections.abc import Mapping

from hyperdial_server.core.study import StudySpec
from hyperdial_server.core.trial import Trial, TrialState


def judged_by_values(spec: StudySpec, trial: Trial) -> bool:
    """Whether ``trial`` competes for optimal by its values: COMPLETED, or STOPPED with a
    report in a study whose policy ranks stopped trials."""
    if trial.state is TrialState.COMPLETED:
        return True
    policy = spec.early_stopping
    return (
        trial.state is TrialState.STOPPED
        and trial.values is not None
        and policy is not None
        and policy.rank_stopped_trials
    )


def trial_infeasibility(spec: StudySpec, trial: Trial) -> str | None:
    """Why ``trial`` is infeasible, or ``None`` when it is not.

    Returns:
        For an INFEASIBLE trial, the worker's reason (possibly empty); for a trial judged by
        its values (:func:`judged_by_values`), the constraints they break or lack
        (:meth:`StudySpec.infeasibility`); ``None`` for every other trial (feasible, or not
        judged: waiting, running, failed, or stopped and not ranked).
    """
    if trial.state is TrialState.INFEASIBLE:
        return trial.failure_reason
    if judged_by_values(spec, trial):
        return spec.infeasibility(trial.values)
    return None


def feasible(spec: StudySpec, values: Mapping[str, float] | None) -> bool:
    """Whether ``values`` (final values, or a report that would rank a stopped trial) hold
    every constraint of the study: always, for a study without constraints."""
    return not spec.constraints or spec.infeasibility(values) is None
