"""Embedding (docs/embedding.md): a platform's own ``grpc.aio`` server, with a service of its own
and a store it provides, serves the tuning service."""

from __future__ import annotations

import asyncio
import importlib
import re
import uuid
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

import hyperdial_server
from hyperdial import Client, Float
from hyperdial_server import (
    CallInterceptor,
    MemoryStore,
    Metrics,
    RedisStore,
    Store,
    TuningServicer,
    add_tuning_service,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"
ECHO = "/platform.v1.Echo/Echo"


def _platform_service() -> grpc.GenericRpcHandler:
    """The platform's own service (bytes in, bytes out: no protos needed)."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"echo:" + request

    return grpc.method_handlers_generic_handler(
        "platform.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )


def _work(target: str, study_id: str) -> tuple[bytes, float, int]:
    """What the platform's users do: their own call, and a study through the tuning service."""
    with grpc.insecure_channel(target) as channel:
        echoed = channel.unary_unary(ECHO)(b"ping", timeout=30)
    client = Client(target)
    study = client.create_study(
        study_id, params=[Float("x", 0.0, 1.0)], algorithm="random", max_trials=5
    )
    for _ in range(5):
        with study.trial() as trial:
            trial.report((trial.params["x"] - 0.3) ** 2)
    best = study.best_trial.value
    assert best is not None
    return echoed, best, len(study.trials(["COMPLETED"]))


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_platform_server_serves_the_tuning_service(kind: str, redis_url: str) -> None:
    registry = CollectorRegistry()
    study_id = f"embedded-{uuid.uuid4().hex[:8]}"

    async def platform() -> tuple[bytes, float, int]:
        store: Store = MemoryStore() if kind == "memory" else RedisStore.from_url(redis_url)
        server = grpc.aio.server(interceptors=[CallInterceptor(Metrics(registry))])
        server.add_generic_rpc_handlers((_platform_service(),))
        servicer = add_tuning_service(server, store)
        assert isinstance(servicer, TuningServicer)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            result = await asyncio.to_thread(_work, f"127.0.0.1:{port}", study_id)
        finally:
            await server.stop(None)
            servicer.close()
        # The store is the platform's: still open after the server stopped, until it closes it.
        await store.ping()
        assert (await store.get_study("default", study_id)).study_id == study_id
        await store.close()
        return result

    echoed, best, completed = asyncio.run(platform())
    assert echoed == b"echo:ping" and completed == 5
    assert 0 <= best <= 0.49
    # The platform's registry counted the calls of both services.
    handled = "hyperdial_grpc_server_handled_total"
    suggest = {"grpc_service": "hyperdial.v1.TuningService", "grpc_method": "SuggestTrials"}
    assert registry.get_sample_value(handled, {**suggest, "grpc_code": "OK"}) == 5
    echo = {"grpc_service": "platform.v1.Echo", "grpc_method": "Echo", "grpc_code": "OK"}
    assert registry.get_sample_value(handled, echo) == 1
    assert registry.get_sample_value("hyperdial_trials_asked_total") == 5


def test_the_tuning_service_works_without_the_interceptor() -> None:
    async def platform() -> int:
        store = MemoryStore()
        server = grpc.aio.server()
        add_tuning_service(server, store)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            client = Client(f"127.0.0.1:{port}")
            study = await asyncio.to_thread(
                client.create_study, "plain", [Float("x", 0.0, 1.0)], algorithm="grid",
                grid_resolution=3,
            )  # fmt: skip
            trials = await asyncio.to_thread(study.ask, 3)
        finally:
            await server.stop(None)
            await store.close()
        return len(trials)

    assert asyncio.run(platform()) == 3


def test_the_doc_imports_what_the_package_exports() -> None:
    text = DOC.read_text()
    assert "add_tuning_service(server, store)" in text
    imports = re.findall(r"^from hyperdial_server import (.+)$", text, re.M)
    assert imports
    for line in imports:
        for name in (n.strip() for n in line.split(",")):
            assert name in hyperdial_server.__all__
            assert getattr(hyperdial_server, name) is not None
    # Every name the doc lists resolves.
    for name in re.findall(r"`(\w+)`", text.split("**The names.**")[1].split("\n\n")[0]):
        if name[0].isupper() or name in ("add_tuning_service", "open_store"):
            assert hasattr(hyperdial_server, name), name


def test_the_lazy_exports_resolve_to_their_modules() -> None:
    for name in hyperdial_server.__all__:
        if name == "__version__":
            continue
        value = getattr(hyperdial_server, name)
        module = importlib.import_module(value.__module__)
        assert getattr(module, name) is value
    with pytest.raises(AttributeError):
        hyperdial_server.no_such_name  # noqa: B018
