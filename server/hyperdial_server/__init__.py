"""hyperdial server: the gRPC tuning service, its stores and samplers.

To mount the tuning service on a ``grpc.aio`` server of your own, with a store you provide
(see ``docs/embedding.md``)::

    from hyperdial_server import RedisStore, add_tuning_service

    store = RedisStore.from_url("redis://redis.internal:6379/0")
    add_tuning_service(server, store)

The names below are imported on first use, so that light entry points (the health probe)
do not load the samplers' numerical libraries.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("hyperdial")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from hyperdial_server.server import (
        RunningServer,
        ServerConfig,
        add_tuning_service,
        serve,
        start,
        sweep_leases,
    )
    from hyperdial_server.service import (
        CallInterceptor,
        Metrics,
        TracingInterceptor,
        TuningServicer,
    )
    from hyperdial_server.store import MemoryStore, RedisStore, Store, open_store

# Public name -> module that defines it.
_LAZY = {
    "add_tuning_service": "hyperdial_server.server",
    "RunningServer": "hyperdial_server.server",
    "ServerConfig": "hyperdial_server.server",
    "serve": "hyperdial_server.server",
    "start": "hyperdial_server.server",
    "sweep_leases": "hyperdial_server.server",
    "TuningServicer": "hyperdial_server.service",
    "CallInterceptor": "hyperdial_server.service",
    "Metrics": "hyperdial_server.service",
    "TracingInterceptor": "hyperdial_server.service",
    "MemoryStore": "hyperdial_server.store",
    "RedisStore": "hyperdial_server.store",
    "Store": "hyperdial_server.store",
    "open_store": "hyperdial_server.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hyperdial_server' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CallInterceptor",
    "MemoryStore",
    "Metrics",
    "RedisStore",
    "RunningServer",
    "ServerConfig",
    "Store",
    "TracingInterceptor",
    "TuningServicer",
    "__version__",
    "add_tuning_service",
    "open_store",
    "serve",
    "start",
    "sweep_leases",
]
