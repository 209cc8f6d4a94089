"""The shipped contract suite (``hyperdial_server.testing``) as a package: its harness, and that
the server never needs it or pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hyperdial_server import testing
from hyperdial_server.store import MemoryStore, Store
from hyperdial_server.testing import StoreContract, StoreHarness


class CountingStore(MemoryStore):
    """A memory store that counts its closes."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


def test_the_harness_opens_a_store_per_replica_and_closes_each_once() -> None:
    made: list[CountingStore] = []

    async def factory() -> Store:  # a coroutine function is a factory too
        made.append(CountingStore())
        return made[-1]

    async def body(s: Store) -> None:
        assert s is made[-1]
        other = await harness.open()
        assert other is made[-1] and other is not s

    harness = StoreHarness(factory)
    harness.run(body)
    assert [m.closed for m in made] == [1, 1]
    harness.run(body)  # the next test starts afresh
    assert [m.closed for m in made] == [1, 1, 1, 1]


def test_a_shared_store_is_every_replica_and_closed_even_when_the_body_fails() -> None:
    made: list[CountingStore] = []

    def factory() -> Store:
        made.append(CountingStore())
        return made[-1]

    async def body(s: Store) -> None:
        assert await harness.open() is s
        raise RuntimeError("the body failed")

    harness = StoreHarness(factory, shared=True)
    with pytest.raises(RuntimeError, match="the body failed"):
        harness.run(body)
    assert [m.closed for m in made] == [1]


def test_the_contract_class_holds_every_topic() -> None:
    names = [n for n in testing.__all__ if n.endswith("Contract") and n != "StoreContract"]
    assert len(names) == 13  # with ModelHistoryContract and ParetoContract
    for name in names:
        assert issubclass(StoreContract, getattr(testing, name)), name


@pytest.mark.parametrize(
    "code",
    [
        # The server (and its top-level package) runs without pytest installed.
        "import sys, hyperdial_server, hyperdial_server.server; "
        "assert 'pytest' not in sys.modules, 'pytest imported'; "
        "assert 'hyperdial_server.testing' not in sys.modules",
        # The suite imports outside a pytest run, as an embedder's tooling may.
        "import hyperdial_server.testing as t; assert t.StoreContract",
    ],
    ids=["server-without-pytest", "testing-imports"],
)
def test_imports_in_a_fresh_interpreter(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
