"""hyperdial: a client for the hyperdial hyperparameter-tuning service.

Example:
    >>> import hyperdial as hd  # doctest: +SKIP
    >>> with hd.Client("localhost:50051") as client:  # doctest: +SKIP
    ...     study = client.create_study("demo", [hd.Float("x", -5, 5)])
    ...     study.optimize(lambda t: (t.params["x"] - 1) ** 2, n_trials=20)
    ...     print(study.best_trial.params)

The client needs only ``grpcio`` and ``protobuf``; the server is the ``hyperdial[server]`` extra.
The asyncio client is :mod:`hyperdial.aio`.
"""

from importlib.metadata import PackageNotFoundError, version

from hyperdial._base import BaseTrial, TrialChanges, TrialState
from hyperdial._channel import tls_credentials
from hyperdial._client import Client
from hyperdial._early_stopping import (
    Decision,
    EarlyStopping,
    Hyperband,
    Measurement,
    MedianStopping,
    PercentileStopping,
    StoppingRule,
    SuccessiveHalving,
    ThresholdStopping,
    TrialStopped,
)
from hyperdial._errors import (
    AlreadyExistsError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    HyperdialError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServiceUnreachableError,
    StudyCompleteError,
    StudySpecMismatchError,
    UnauthenticatedError,
    UnavailableError,
    from_rpc_error,
)
from hyperdial._importance import ParameterImportance, ParameterImportances
from hyperdial._optimize import ObjectiveResult, TrialInfeasible
from hyperdial._prediction import Prediction
from hyperdial._retry import RetryPolicy
from hyperdial._space import (
    Categorical,
    Constraint,
    Discrete,
    Float,
    Int,
    Objective,
    Parameter,
    ParamValue,
)
from hyperdial._study import Study, Trial

try:
    __version__ = version("hyperdial")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AlreadyExistsError",
    "BaseTrial",
    "Categorical",
    "Client",
    "Constraint",
    "DataLossError",
    "DeadlineExceededError",
    "Decision",
    "Discrete",
    "EarlyStopping",
    "FailedPreconditionError",
    "Float",
    "Hyperband",
    "HyperdialError",
    "Int",
    "InvalidArgumentError",
    "Measurement",
    "MedianStopping",
    "NotFoundError",
    "Objective",
    "ObjectiveResult",
    "ParamValue",
    "Parameter",
    "ParameterImportance",
    "ParameterImportances",
    "PercentileStopping",
    "PermissionDeniedError",
    "Prediction",
    "ResourceExhaustedError",
    "RetryPolicy",
    "ServiceUnreachableError",
    "StoppingRule",
    "Study",
    "StudyCompleteError",
    "StudySpecMismatchError",
    "SuccessiveHalving",
    "ThresholdStopping",
    "Trial",
    "TrialChanges",
    "TrialInfeasible",
    "TrialState",
    "TrialStopped",
    "UnauthenticatedError",
    "UnavailableError",
    "__version__",
    "from_rpc_error",
    "tls_credentials",
]
