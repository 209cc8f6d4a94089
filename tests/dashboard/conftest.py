"""Fixtures of the dashboard's tests: a Redis of their own, a replica serving the dashboard
beside it (``hyperdial serve --dashboard-port``) with seeded studies, a browser, and a
directory for screenshots."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hyperdial as hd
from tests.dashboard import helpers
from tests.dashboard.browser import Browser, require_binaries
from tests.redis_server import RedisServer
from tests.server_harness import ServerProcess


@pytest.fixture(scope="session")
def dashboard_redis_url() -> Iterator[str]:
    """A redis-server for these tests alone: the replica sweeps expired leases on the real
    clock, which would expire the leases of store tests that share the session's Redis on
    made-up clocks (the lease index is global)."""
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$HYPERDIAL_TEST_ARTEFACTS/dashboard`` when set (CI keeps it),
    else a temporary directory of the run."""
    root = os.environ.get("HYPERDIAL_TEST_ARTEFACTS")
    if root:
        path = Path(root) / "dashboard"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("dashboard-artefacts")


@pytest.fixture(scope="module")
def browser(artefacts: Path) -> Iterator[Browser]:
    """One headless Chromium per module; killed with its driver on every path."""
    require_binaries()
    b = Browser(artefacts)
    try:
        yield b
    finally:
        b.close()


@dataclass
class Site:
    """A replica serving the dashboard, and the studies seeded on it."""

    replica: ServerProcess
    url: str
    metrics_url: str
    seeded: helpers.Seeded
    prefix: str

    def study(self, name: str) -> str:
        """The id of the seeded study ``name``."""
        return f"{self.prefix}{name}"


#: The seeded studies, by short name.
STUDIES = (
    "main",
    "leases",
    "empty",
    "failed",
    "wide",
    "multi2",
    "multi3",
    "big",
    "live",
    "constrained",
)
#: Trials of the big study: past the WebGL (2,000) and sample (2,000) thresholds.
BIG_TRIALS = 2300


@pytest.fixture(scope="session")
def site(dashboard_redis_url: str) -> Iterator[Site]:
    """``hyperdial serve --redis URL --dashboard-port 0 --metrics-port 0`` with one study of
    each shape the pages must draw (see :data:`STUDIES`)."""
    replica = ServerProcess(dashboard_redis_url, ["--dashboard-port", "0", "--metrics-port", "0"])
    try:
        metrics = replica.next_line()
        dashboard = replica.next_line()
        assert metrics.startswith("metrics on ") and dashboard.startswith("dashboard on "), (
            metrics,
            dashboard,
            replica.read_log(),
        )
        prefix = f"d{uuid.uuid4().hex[:6]}-"
        seeded = helpers.Seeded(replica.target)
        with hd.Client(replica.target, renew_leases=False) as client:
            helpers.seed_main(client, prefix + "main")
            helpers.seed_leases(client, prefix + "leases")
            client.create_study(prefix + "empty", [hd.Float("x", 0.0, 1.0)])
            helpers.seed_failed_only(client, prefix + "failed")
            helpers.seed_wide(client, prefix + "wide")
            helpers.seed_multi(client, prefix + "multi2", 2)
            helpers.seed_multi(client, prefix + "multi3", 3)
            helpers.seed_big(client, prefix + "big", BIG_TRIALS)
            helpers.seed_constrained(client, prefix + "constrained")
            client.create_study(prefix + "live", [hd.Float("x", 0.0, 1.0)], algorithm="random")
            helpers.read_back(client, seeded, [prefix + s for s in STUDIES])
        yield Site(
            replica,
            dashboard.split(" on ", 1)[1].strip().rstrip("/"),
            metrics.split(" on ", 1)[1].strip(),
            seeded,
            prefix,
        )
    finally:
        replica.close()
