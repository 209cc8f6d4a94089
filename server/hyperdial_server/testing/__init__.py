"""The ``Store`` contract as a pytest suite, for any implementation of
:class:`~hyperdial_server.store.Store`.

Needs pytest, which is not a dependency of the server (it is in hyperdial's ``test`` extra):
install it where you run your tests. Nothing in the server imports this package.

Subclass :class:`StoreContract` (or one of the classes of a single topic) in a test module,
under a name pytest collects (``Test...``), and give it the fixture ``store``: a
:class:`StoreHarness` whose factory makes your store::

    import pytest
    from hyperdial_server.testing import StoreContract, StoreHarness

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self) -> StoreHarness:
            return StoreHarness(lambda: MyStore.from_url(MY_TEST_URL))

pytest then runs the whole contract on your store. What the fixture provides:

* **A factory, not a store.** Each test runs in an event loop of its own (``asyncio.run``, no
  asyncio plugin needed), and the harness calls the factory inside it: once for the store the
  test gets, and again each time a test needs another replica (:meth:`StoreHarness.open`:
  the concurrency tests and a few others). Each call returns a new handle on the same data,
  with its own connections. For a store that lives in the test's process, pass
  ``shared=True``: the factory is called once per test and that one store is every replica
  (``StoreHarness(MemoryStore, shared=True)``). The factory may be a coroutine function.
* **Clean-up.** The harness closes every store the factory returned when the test ends,
  whatever the outcome. It deletes no data: the tests leave their studies behind. Point the
  factory at a throwaway database, or make ``store`` a yield fixture that wipes it after the
  test.
* **Namespaces.** Each test works in the namespace of the fixture ``namespace`` (by default
  ``t-`` and a random UUID; override it in your class to choose) and in namespaces of that name
  with a suffix (``-other``, ``-b``, ``-c``), so tests sharing one database never see each
  other's studies. The lease sweep (``expire_leases``) is global, and two tests count the
  leases it expires: run the suite one test at a time, on a database nothing else writes to.

Tests skip where the store opts out: the one-step ask tests unless ``Store.one_step_asks`` is
true (one test checks the default ``commit_reserved`` of a store without them), the limit of
studies per namespace unless the store has an attribute ``max_studies`` (:class:`StudyLimited`).

The helpers (``make_record``, ``claim``, ``commit``, ``complete``, ...) are those of the suite,
for tests of your own next to it; they change with the suite.
"""

from __future__ import annotations

try:
    import pytest
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        "hyperdial_server.testing needs pytest, which the server does not install: "
        "pip install pytest",
        name="pytest",
    ) from e

# Before the modules are imported: failed asserts in them then show their values, as in a
# test module (pytest rewrites the asserts of test modules only, and of modules named here).
pytest.register_assert_rewrite(
    "hyperdial_server.testing._asks",
    "hyperdial_server.testing._changes",
    "hyperdial_server.testing._concurrency",
    "hyperdial_server.testing._early_stopping",
    "hyperdial_server.testing._reports",
    "hyperdial_server.testing._helpers",
    "hyperdial_server.testing._infeasible",
    "hyperdial_server.testing._leases",
    "hyperdial_server.testing._model_history",
    "hyperdial_server.testing._one_step_asks",
    "hyperdial_server.testing._pareto",
    "hyperdial_server.testing._request_ids",
    "hyperdial_server.testing._studies",
    "hyperdial_server.testing._trials",
)

from hyperdial_server.testing._asks import AskContract  # noqa: E402
from hyperdial_server.testing._changes import ChangesContract  # noqa: E402
from hyperdial_server.testing._concurrency import ConcurrencyContract  # noqa: E402
from hyperdial_server.testing._contract import StoreContract  # noqa: E402
from hyperdial_server.testing._early_stopping import EarlyStoppingContract  # noqa: E402
from hyperdial_server.testing._helpers import (  # noqa: E402
    Body,
    ContractBase,
    StoreFactory,
    StoreHarness,
    StudyLimited,
    claim,
    commit,
    complete,
    enqueue,
    fail,
    fast,
    frid,
    lease_study,
    make_record,
    make_space,
    mismatch,
    mixed_study,
    nothing,
    point,
    renew,
    rid,
    running_trials,
    skip_unless_one_step_asks,
    trial_pages,
    typed,
)
from hyperdial_server.testing._infeasible import InfeasibleContract  # noqa: E402
from hyperdial_server.testing._leases import LeaseContract  # noqa: E402
from hyperdial_server.testing._model_history import ModelHistoryContract  # noqa: E402
from hyperdial_server.testing._one_step_asks import OneStepAskContract  # noqa: E402
from hyperdial_server.testing._pareto import ParetoContract  # noqa: E402
from hyperdial_server.testing._reports import ReportContract  # noqa: E402
from hyperdial_server.testing._request_ids import RequestIdContract  # noqa: E402
from hyperdial_server.testing._studies import StudyContract  # noqa: E402
from hyperdial_server.testing._trials import TrialContract  # noqa: E402

__all__ = [
    "AskContract",
    "Body",
    "ChangesContract",
    "ConcurrencyContract",
    "ContractBase",
    "EarlyStoppingContract",
    "InfeasibleContract",
    "LeaseContract",
    "ModelHistoryContract",
    "OneStepAskContract",
    "ParetoContract",
    "ReportContract",
    "RequestIdContract",
    "StoreContract",
    "StoreFactory",
    "StoreHarness",
    "StudyContract",
    "StudyLimited",
    "TrialContract",
    "claim",
    "commit",
    "complete",
    "enqueue",
    "fail",
    "fast",
    "frid",
    "lease_study",
    "make_record",
    "make_space",
    "mismatch",
    "mixed_study",
    "nothing",
    "point",
    "renew",
    "rid",
    "running_trials",
    "skip_unless_one_step_asks",
    "trial_pages",
    "typed",
]
