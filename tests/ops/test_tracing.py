"""OpenTelemetry tracing: a span per call that continues the caller's trace, with children for
each Redis script call and each model-based sampler computation; nothing when tracing is off.

Real servers over real gRPC (memory store and Redis), spans collected by the OpenTelemetry
SDK's ``InMemorySpanExporter``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server import RedisStore, TracingInterceptor, _tracing, add_tuning_service
from hyperdial_server.core.history import TrialPage
from hyperdial_server.server import ServerConfig
from tests.e2e.protocol import error_reason, float_param, measurement, spec
from tests.server_harness import InProcessServer

TUNING = "hyperdial.v1.TuningService"
# Seconds to wait for a span that ends after the client got its answer (an aborted call's
# status leaves with the abort, before the interceptor ends the span).
SPAN_WAIT = 10.0
# The repository's root, where a child Python finds ``tests``.
ROOT = Path(__file__).resolve().parents[2]


class Caller:
    """A caller's span: the W3C ``traceparent`` of a call made inside it."""

    def __init__(self) -> None:
        self.trace_id = random.getrandbits(128) or 1
        self.span_id = random.getrandbits(64) or 1

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("traceparent", f"00-{self.trace_id:032x}-{self.span_id:016x}-01")]


class Traced:
    """A real server with tracing on, its spans, and a stub on it."""

    def __init__(self, server: InProcessServer, exporter: InMemorySpanExporter) -> None:
        self.server = server
        self.exporter = exporter
        self.redis = bool(server.config.redis_url)
        self.stub = server.stub

    def rpc_span(self, caller: Caller, method: str) -> ReadableSpan:
        """The server span of the one call of ``method`` made in ``caller``'s trace."""
        name = f"{TUNING}/{method}"
        deadline = time.monotonic() + SPAN_WAIT
        while True:
            found = [
                s
                for s in self.exporter.get_finished_spans()
                if s.name == name and s.context.trace_id == caller.trace_id
            ]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert len(found) == 1, f"{len(found)} spans {name} in the caller's trace"
        return found[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The finished spans whose parent is ``parent``."""
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id
        ]


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture(params=["memory", "redis"])
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    """A server of its own with tracing on, spans going to an in-memory exporter; one per store.

    One sampler worker process: the sampler span wraps the hop to it.
    """
    provider, exporter = _provider()
    redis_url = str(request.getfixturevalue("redis_url")) if request.param == "redis" else ""
    config = ServerConfig(
        redis_url=redis_url,
        lease_sweep_interval=0,
        sampler_processes=1,
        tracing=True,
        tracer_provider=provider,
    )
    with InProcessServer(config) as server:
        yield Traced(server, exporter)
    provider.shutdown()


def _study_id() -> str:
    return f"trace-{uuid.uuid4().hex[:12]}"


def _bayesian() -> study_pb2.StudySpec:
    return spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_BAYESIAN)


def test_a_call_continues_the_callers_trace(traced: Traced) -> None:
    caller = Caller()
    study = _study_id()
    traced.stub.CreateStudy(
        ts.CreateStudyRequest(study_id=study, spec=_bayesian()), metadata=caller.metadata
    )

    span = traced.rpc_span(caller, "CreateStudy")
    assert span.kind is SpanKind.SERVER
    assert span.parent is not None and span.parent.is_remote
    assert (span.context.trace_id, span.parent.span_id) == (caller.trace_id, caller.span_id)
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": TUNING,
        "rpc.method": "CreateStudy",
        "rpc.grpc.status_code": 0,
        "hyperdial.study": f"studies/{study}",
    }
    assert span.status.status_code is StatusCode.UNSET


def test_a_call_without_trace_context_starts_a_trace(traced: Traced) -> None:
    study = _study_id()
    traced.stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=_bayesian()))
    traced.stub.GetStudy(ts.GetStudyRequest(name=f"studies/{study}"))
    span = next(
        s
        for s in traced.exporter.get_finished_spans()
        if s.name == f"{TUNING}/GetStudy"
        and (s.attributes or {}).get("hyperdial.study") == f"studies/{study}"
    )
    assert span.parent is None


def test_redis_scripts_and_the_sampler_are_children_of_the_call(traced: Traced) -> None:
    study = _study_id()
    traced.stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=_bayesian()))
    first, second = Caller(), Caller()
    asked = traced.stub.SuggestTrials(
        ts.SuggestTrialsRequest(parent=f"studies/{study}", count=2), metadata=first.metadata
    ).trials
    traced.stub.CompleteTrial(
        ts.CompleteTrialRequest(name=asked[0].name, final_measurement=measurement(loss=1.0))
    )
    traced.stub.SuggestTrials(
        ts.SuggestTrialsRequest(parent=f"studies/{study}", count=1), metadata=second.metadata
    )

    histories = []
    for caller, count in ((first, 2), (second, 1)):
        call = traced.rpc_span(caller, "SuggestTrials")
        assert call.attributes is not None
        assert call.attributes["hyperdial.study"] == f"studies/{study}"
        children = traced.children(call)
        samplers = [s for s in children if s.name == "sampler BAYESIAN"]
        assert len(samplers) == 1
        attributes = dict(samplers[0].attributes or {})
        assert attributes["hyperdial.sampler.algorithm"] == "BAYESIAN"
        assert attributes["hyperdial.sampler.trials_requested"] == count
        histories.append(attributes["hyperdial.sampler.history_size"])
        # Every span of the call's trace is the call's or one of its children: the context
        # carried across the awaits, the pipelined link and the claim renewal task.
        in_trace = [
            s for s in traced.exporter.get_finished_spans() if s.context.trace_id == caller.trace_id
        ]
        assert sorted(s.context.span_id for s in in_trace) == sorted(
            s.context.span_id for s in [call, *children]
        )
        scripts = [s for s in children if s.name.startswith("redis ")]
        if not traced.redis:
            assert scripts == []
            continue
        # An ask of a model-based sampler: claim indices, read the history, commit the trials.
        names = {s.name for s in scripts}
        assert {"redis claim_trials", "redis model_history", "redis commit_trials"} <= names
        for script in scripts:
            attributes = dict(script.attributes or {})
            assert script.kind is SpanKind.CLIENT
            assert attributes["db.system"] == "redis"
            assert attributes["hyperdial.redis.script"] == script.name.removeprefix("redis ")
            assert isinstance(attributes["hyperdial.redis.key_count"], int)
            assert attributes["hyperdial.redis.key_count"] > 0
            # Neither keys nor arguments: they hold the study's data.
            assert not any(study in str(v) for v in attributes.values())
    # The first ask saw no trial; the second, the completed one and the running one.
    assert histories == [0, 2]


def test_an_invalid_request_records_its_status_and_reason(traced: Traced) -> None:
    caller = Caller()
    with pytest.raises(grpc.RpcError) as refused:
        traced.stub.GetStudy(ts.GetStudyRequest(name="not a name"), metadata=caller.metadata)
    code, reason, _ = error_reason(refused.value)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and reason

    span = traced.rpc_span(caller, "GetStudy")
    attributes = dict(span.attributes or {})
    assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert attributes["hyperdial.error.reason"] == reason
    assert "hyperdial.study" not in attributes  # the name is no study's
    # The caller's mistake, not the server's: OpenTelemetry's conventions leave it UNSET.
    assert span.status.status_code is StatusCode.UNSET


def test_a_missing_study_records_not_found(traced: Traced) -> None:
    caller = Caller()
    study = _study_id()
    with pytest.raises(grpc.RpcError) as missing:
        traced.stub.SuggestTrials(
            ts.SuggestTrialsRequest(parent=f"studies/{study}", count=1), metadata=caller.metadata
        )
    code, reason, _ = error_reason(missing.value)
    assert code is grpc.StatusCode.NOT_FOUND

    span = traced.rpc_span(caller, "SuggestTrials")
    attributes = dict(span.attributes or {})
    assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert attributes["hyperdial.error.reason"] == reason
    assert attributes["hyperdial.study"] == f"studies/{study}"


def test_a_server_without_tracing_makes_no_spans(redis_url: str) -> None:
    """Beside a traced server in the same process: the hooks below the service layer follow
    the call, not the process, so the untraced server's script calls and sampler add nothing."""
    provider, exporter = _provider()
    on = ServerConfig(
        redis_url=redis_url, lease_sweep_interval=0, tracing=True, tracer_provider=provider
    )
    # A provider is given but tracing is off: it stays unused.
    off = ServerConfig(redis_url=redis_url, lease_sweep_interval=0, tracer_provider=provider)
    with InProcessServer(on) as on_server, InProcessServer(off) as off_server:
        traced = Traced(on_server, exporter)
        study = _study_id()
        traced.stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=_bayesian()))
        exporter.clear()
        _exercise(off_server.stub)
        # The traced server still traces after the untraced one ran, and its call's spans are
        # the only ones: the untraced calls (which ended before it) made none.
        caller = Caller()
        traced.stub.GetStudy(ts.GetStudyRequest(name=f"studies/{study}"), metadata=caller.metadata)
        call = traced.rpc_span(caller, "GetStudy")
        spans = exporter.get_finished_spans()
    assert spans and all(s.context.trace_id == caller.trace_id for s in spans)
    assert call in spans
    provider.shutdown()


def _exercise(stub: tuning_service_pb2_grpc.TuningServiceStub) -> None:
    """A Bayesian study's life in a few calls (scripts, the sampler, an error)."""
    study = _study_id()
    stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=_bayesian()))
    trials = stub.SuggestTrials(ts.SuggestTrialsRequest(parent=f"studies/{study}", count=2)).trials
    stub.CompleteTrial(
        ts.CompleteTrialRequest(name=trials[0].name, final_measurement=measurement(loss=1.0))
    )
    stub.SuggestTrials(ts.SuggestTrialsRequest(parent=f"studies/{study}", count=1))
    with pytest.raises(grpc.RpcError):
        stub.GetStudy(ts.GetStudyRequest(name="not a name"))


# --- embedding: the platform's own gRPC instrumentation makes the call spans -----------------


class PlatformSpans(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A platform's own gRPC instrumentation: a server span per call, made current."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        unary, tracer, name = handler.unary_unary, self.tracer, f"platform {details.method}"

        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with tracer.start_as_current_span(name, kind=SpanKind.SERVER):
                return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def test_an_embedding_with_its_own_call_spans_gets_the_store_and_sampler_spans(
    redis_url: str,
) -> None:
    provider, exporter = _provider()
    study = _study_id()

    async def platform() -> None:
        store = RedisStore.from_url(redis_url)
        server = grpc.aio.server(
            interceptors=[
                PlatformSpans(provider.get_tracer("platform")),
                TracingInterceptor(provider, rpc_spans=False),
            ]
        )
        servicer = add_tuning_service(server, store, sampler_processes=0)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
                await stub.CreateStudy(ts.CreateStudyRequest(study_id=study, spec=_bayesian()))
                await stub.SuggestTrials(
                    ts.SuggestTrialsRequest(parent=f"studies/{study}", count=1)
                )
        finally:
            await server.stop(None)
            servicer.close()
            await store.close()

    asyncio.run(platform())
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.name.startswith("platform ")]
    assert [s.name for s in calls] == [
        f"platform /{TUNING}/CreateStudy",
        f"platform /{TUNING}/SuggestTrials",
    ]
    # No span of hyperdial's own per call; its script and sampler spans are the platform's
    # call spans' children.
    ask = [s for s in spans if s.parent and s.parent.span_id == calls[1].context.span_id]
    assert {s.name for s in ask} >= {
        "redis claim_trials",
        "redis commit_trials",
        "sampler BAYESIAN",
    }
    ours = [s for s in spans if s not in calls]
    assert ours and all(s.parent is not None for s in ours)
    assert not [s for s in spans if s.name.startswith(TUNING)]
    provider.shutdown()


# --- tracing off: OpenTelemetry is not needed, and hyperdial does not load it ------------------

# redis-py (8 and later) imports OpenTelemetry's API and metrics SDK on its own whenever they are
# installed; what only hyperdial's tracing loads is the propagator and the trace SDK.
TRACING_ONLY = ("opentelemetry.propagate", "opentelemetry.sdk.trace")

_UNTRACED = """
import asyncio, json, sys

if sys.argv[3] == "absent":
    sys.modules["opentelemetry"] = None  # as without the extra: importing it raises ImportError

import grpc

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
import hyperdial_server.cli  # every module the server's entry point loads
import hyperdial_server.samplers._worker  # what the sampler worker processes load
from hyperdial_server.server import ServerConfig, start
from tests.e2e import protocol

async def main() -> None:
    config = ServerConfig(port=0, redis_url=sys.argv[1], lease_sweep_interval=0,
                          sampler_processes=0)
    running = await start(config)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            spec = protocol.spec(
                protocol.float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_BAYESIAN
            )
            await stub.CreateStudy(ts.CreateStudyRequest(study_id=sys.argv[2], spec=spec))
            metadata = [("traceparent", "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")]
            asked = await stub.SuggestTrials(
                ts.SuggestTrialsRequest(parent="studies/" + sys.argv[2], count=2),
                metadata=metadata)
            assert len(asked.trials) == 2
    finally:
        await running.stop(1)

asyncio.run(main())
loaded = (m for m, module in sys.modules.items() if module is not None)
print(json.dumps(sorted(m for m in loaded if m.split(".")[0] == "opentelemetry")))
"""


@pytest.mark.parametrize("extra", ["absent", "installed"])
@pytest.mark.parametrize("store", ["memory", "redis"])
def test_with_tracing_off_opentelemetry_is_not_loaded(
    store: str, extra: str, redis_url: str
) -> None:
    """A Bayesian study's calls (Redis scripts, the sampler) with a caller's trace context,
    tracing off: without the extra the server works, and with it nothing of tracing loads."""
    url = redis_url if store == "redis" else ""
    done = _run_python(_UNTRACED, [url, _study_id(), extra])
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    if extra == "absent":
        assert loaded == []
    else:
        assert not [m for m in loaded if m.startswith(TRACING_ONLY)]


def _run_python(
    code: str, args: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=ROOT,
    )
    assert done.returncode in (0, 2), done.stderr
    return done


def test_off_the_hooks_return_one_shared_no_op() -> None:
    """Outside a traced call (tracing off), a hook is a ContextVar read returning the same
    no-op context manager every time: nothing is made per call."""
    assert _tracing.current.get() is None
    script = _tracing.redis_script("claim_trials", 3)
    sampler = _tracing.sampler("BAYESIAN", 2, [TrialPage()])
    assert script is sampler is _tracing.redis_script("commit_trials", 4)
    with script as span:
        assert span is None


# --- tracing asked for but not installed: the server refuses to start ------------------------


def test_tracing_without_opentelemetry_fails_at_start_naming_the_extra() -> None:
    # As if the extra were not installed: importing opentelemetry raises ImportError.
    code = """
        import sys
        sys.modules["opentelemetry"] = None
        from hyperdial_server.cli import main
        sys.exit(main(["--tracing", "--port", "0"]))
    """
    done = _run_python(code)
    assert done.returncode == 2
    assert "pip install 'hyperdial[tracing]'" in done.stderr
    assert "listening" not in done.stdout


def test_an_exporter_that_is_not_installed_fails_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp_not_installed")
    with pytest.raises(
        _tracing.TracingUnavailable, match="pip install opentelemetry-exporter-otlp"
    ):
        _tracing.provider_from_env()


def test_the_provider_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider, close = _tracing.provider_from_env()
    assert isinstance(provider, TracerProvider) and close is not None
    assert provider.resource.attributes["service.name"] == "hyperdial"
    close()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tuning")
    provider, close = _tracing.provider_from_env()
    assert isinstance(provider, TracerProvider) and close is not None
    assert provider.resource.attributes["service.name"] == "tuning"
    close()
