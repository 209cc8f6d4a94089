"""The default of ``Store.pareto_front``, for a store that keeps no front: every candidate read
and the front computed from the vectors the caller gives, the same answers as a store that
keeps it (the Pareto topic of the contract suite, on a memory store that forgets its own)."""

from __future__ import annotations

import pytest

from hyperdial_server.store import MemoryStore, Store
from hyperdial_server.testing import ParetoContract, StoreHarness


class ScanningStore(MemoryStore):
    """A memory store that reads its fronts as a store without one does."""

    pareto_front = Store.pareto_front


class TestScanningStore(ParetoContract):
    @pytest.fixture
    def store(self) -> StoreHarness:
        return StoreHarness(ScanningStore, shared=True)
