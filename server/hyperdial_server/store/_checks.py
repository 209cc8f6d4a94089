"""Argument checks shared by the stores: programming errors of the caller, refused alike.

Each raises ``ValueError`` before a store touches anything, so the memory store and the Redis
store refuse the same calls with the same words (the contract suite runs both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hyperdial_server.core.early_stopping import EarlyStopping
from hyperdial_server.core.space import Params
from hyperdial_server.core.trial import Measurement, Trial, TrialState


def check_claim_args(count: int) -> None:
    """Raises ``ValueError`` for a ``count`` below 1."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")


def check_points(points: Sequence[tuple[int, Params]]) -> None:
    """Raises ``ValueError`` when an index appears twice in ``points``."""
    indices = [i for i, _ in points]
    if len(set(indices)) != len(indices):
        raise ValueError("points name a sampler index twice")


def check_new_trial(trial: Trial, score: float | None) -> None:
    """Raises ``ValueError`` for a trial ``create_trial`` does not take."""
    if trial.state is TrialState.RUNNING:
        raise ValueError(
            "create_trial takes a WAITING or finished (COMPLETED, FAILED, STOPPED, INFEASIBLE) "
            "trial, not RUNNING"
        )
    if score is not None and trial.state is not TrialState.COMPLETED:
        raise ValueError("a score is only given for a COMPLETED trial")


def check_completion(
    values: Mapping[str, float] | None,
    failure_reason: str | None,
    score: float | None,
    stop_reason: str | None = None,
    infeasible_reason: str | None = None,
) -> TrialState:
    """The state ``complete_trial`` moves to; ``ValueError`` unless exactly one outcome."""
    outcomes = (values, failure_reason, stop_reason, infeasible_reason)
    if sum(x is not None for x in outcomes) != 1:
        raise ValueError(
            "give exactly one of values, failure_reason, stop_reason and infeasible_reason"
        )
    if score is not None and (failure_reason is not None or infeasible_reason is not None):
        raise ValueError("a score is only given with values or a stop")
    if values is not None:
        return TrialState.COMPLETED
    if failure_reason is not None:
        return TrialState.FAILED
    if infeasible_reason is not None:
        return TrialState.INFEASIBLE
    return TrialState.STOPPED


def check_measurement(measurement: Measurement, policy: EarlyStopping | None) -> None:
    """Raises ``ValueError`` for a report ``add_measurement`` does not take: a negative step,
    or no value of the objective the policy watches (the service refuses both first)."""
    if measurement.step < 0:
        raise ValueError(f"a measurement's step must be >= 0, got {measurement.step}")
    if policy is not None and policy.objective not in measurement.values:
        raise ValueError(
            f"the measurement has no value of {policy.objective!r}, which the policy watches"
        )


def check_page_size(page_size: int) -> None:
    """Raises ``ValueError`` for a ``page_size`` below 1."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")


def check_window(best: int, recent: int, running: int) -> None:
    """Raises ``ValueError`` for a negative count of ``Store.model_history``."""
    for name, count in (("best", best), ("recent", recent), ("running", running)):
        if count < 0:
            raise ValueError(f"{name} must be >= 0, got {count}")


def check_list_position(after: int, after_revision: int) -> None:
    """Raises ``ValueError`` for a negative ``after_revision``, or for one given with
    ``after`` (a page of changes starts after a revision, not after a number)."""
    if after_revision < 0:
        raise ValueError(f"after_revision must be >= 0, got {after_revision}")
    if after_revision and after:
        raise ValueError(
            "give after (by number) or after_revision (changes, by revision), not both; the "
            "next page of changes starts after the page's last revision"
        )
