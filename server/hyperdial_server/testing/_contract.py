"""The whole ``Store`` contract in one class."""

from __future__ import annotations

from hyperdial_server.testing._asks import AskContract
from hyperdial_server.testing._changes import ChangesContract
from hyperdial_server.testing._concurrency import ConcurrencyContract
from hyperdial_server.testing._early_stopping import EarlyStoppingContract
from hyperdial_server.testing._infeasible import InfeasibleContract
from hyperdial_server.testing._leases import LeaseContract
from hyperdial_server.testing._model_history import ModelHistoryContract
from hyperdial_server.testing._one_step_asks import OneStepAskContract
from hyperdial_server.testing._pareto import ParetoContract
from hyperdial_server.testing._reports import ReportContract
from hyperdial_server.testing._request_ids import RequestIdContract
from hyperdial_server.testing._studies import StudyContract
from hyperdial_server.testing._trials import TrialContract


# pytest collects inherited tests in reverse MRO order: the last base listed runs first, so the
# topics are listed from last to first.
class StoreContract(
    ParetoContract,
    ModelHistoryContract,
    InfeasibleContract,
    ChangesContract,
    EarlyStoppingContract,
    ReportContract,
    OneStepAskContract,
    ConcurrencyContract,
    RequestIdContract,
    LeaseContract,
    TrialContract,
    AskContract,
    StudyContract,
):
    """Every test of the ``Store`` contract: studies, asks, trials, leases, request ids,
    concurrency, one-step asks, early stopping (intermediate reports and decisions),
    revisions (reads of what changed), INFEASIBLE trials, the history a model reads, and
    Pareto fronts.

    Subclass it in a test module as ``Test...`` and give it the fixture ``store`` (see
    :mod:`hyperdial_server.testing`).
    """
