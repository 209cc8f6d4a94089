"""Parameter importance on the client: what ``Study.parameter_importance`` answers.

The service computes it (``ComputeParameterImportance``, PED-ANOVA on the study's completed
trials; ``docs/algorithms.md``); the client only carries the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperdial.v1 import tuning_service_pb2

__all__ = [
    "ParameterImportance",
    "ParameterImportances",
    "importance_request",
    "importances_from_proto",
]


@dataclass(frozen=True)
class ParameterImportance:
    """How much one parameter matters to an objective.

    Attributes:
        parameter: Name of the parameter.
        importance: Its share of the importance, from 0 to 1.
        active_trials: In how many of the trials used the parameter was active (fewer than
            ``trial_count`` only for a conditional parameter).
    """

    parameter: str
    importance: float
    active_trials: int


@dataclass(frozen=True)
class ParameterImportances:
    """The importance of every parameter of a study to one objective.

    Attributes:
        method: How it was computed: ``"ped-anova"``.
        trial_count: How many completed trials it was computed from.
        parameters: Every parameter of the study, most important first (ties in the order of
            the study's parameters). Importances sum to 1, unless all are 0 (the objective did
            not vary, or no parameter explains it).
    """

    method: str
    trial_count: int
    parameters: list[ParameterImportance]

    def as_dict(self) -> dict[str, float]:
        """``{parameter: importance}``, most important first (as Optuna's
        ``get_param_importances`` answers)."""
        return {p.parameter: p.importance for p in self.parameters}


def importance_request(
    study_name: str, objective: str | None
) -> tuning_service_pb2.ComputeParameterImportanceRequest:
    """The request for the importances of ``study_name``'s parameters to ``objective`` (the
    first objective when ``None``)."""
    return tuning_service_pb2.ComputeParameterImportanceRequest(
        parent=study_name, objective=objective or ""
    )


def importances_from_proto(
    pb: tuning_service_pb2.ComputeParameterImportanceResponse,
) -> ParameterImportances:
    """The answer of ``ComputeParameterImportance``."""
    return ParameterImportances(
        method=pb.method,
        trial_count=pb.trial_count,
        parameters=[
            ParameterImportance(p.parameter, p.importance, p.active_trials) for p in pb.importances
        ],
    )
