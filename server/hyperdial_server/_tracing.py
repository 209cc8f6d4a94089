"""Optional OpenTelemetry tracing: the thin API every layer may call, and loading the SDK.

Tracing is off unless a server is started with it (``--tracing``) or an embedding installs
:class:`~hyperdial_server.service.TracingInterceptor`. The interceptor sets :data:`current` to
its tracer for each call it traces; the hooks below the service layer (a Redis script call, a
sampler computation) read it, so their spans are children of the call's span, and nothing
happens outside a traced call (the lease sweep, health checks, a server without tracing in
the same process).

OpenTelemetry is an optional extra (``pip install 'hyperdial[tracing]'``): this module imports
it only in the functions that run once tracing is on. With tracing off, a hook costs one
``ContextVar.get`` and returns a shared no-op context manager: no allocation, no import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from hyperdial_server.core.history import TrialPage

#: What to install when tracing is asked for without OpenTelemetry.
INSTALL_HINT = "pip install 'hyperdial[tracing]'"
#: Name and version of the instrumentation, as spans report them (``otel.scope.name``).
SCOPE = "hyperdial_server"
#: Exporters the server sets up when ``OTEL_TRACES_EXPORTER`` is not set (the OTel default).
DEFAULT_EXPORTER = "otlp"
# The entry-point group under which exporter packages register by their OTEL_TRACES_EXPORTER
# name (``otlp``, ``otlp_proto_http``, ``console``...), as the SDK's own configuration finds them.
_EXPORTER_GROUP = "opentelemetry_traces_exporter"

#: The tracer of the traced call being handled; ``None`` (tracing off, or no traced call).
current: ContextVar[Tracer | None] = ContextVar("hyperdial_tracer", default=None)

# What a hook returns when tracing is off: shared, so the off path allocates nothing.
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


class TracingUnavailable(ValueError):
    """Tracing was asked for but cannot run: OpenTelemetry is not installed, or no installed
    package provides the exporter that ``OTEL_TRACES_EXPORTER`` names."""


def tracer_of(provider: TracerProvider | None) -> Tracer:
    """The server's tracer from ``provider`` (``None``: OpenTelemetry's global provider).

    Raises:
        TracingUnavailable: The OpenTelemetry API is not installed.
    """
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise TracingUnavailable(
            f"tracing needs OpenTelemetry, which is not installed: {INSTALL_HINT}"
        ) from exc
    from importlib.metadata import PackageNotFoundError, version

    try:
        scope_version: str | None = version("hyperdial")
    except PackageNotFoundError:  # running from a source tree
        scope_version = None
    if provider is None:
        provider = trace.get_tracer_provider()
    return provider.get_tracer(SCOPE, scope_version)


def provider_from_env() -> tuple[TracerProvider, Callable[[], None] | None]:
    """The tracer provider of a standalone server, and how to flush and close it.

    The process's global provider when one is set (e.g. by ``opentelemetry-instrument``),
    which stays its owner's (no close). Else an SDK provider configured only by OpenTelemetry's
    standard variables: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (service name
    ``hyperdial`` by default), ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, and the exporters that
    ``OTEL_TRACES_EXPORTER`` names (``otlp`` by default, from ``opentelemetry-exporter-otlp``,
    which reads ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``none`` for no exporter), each behind a
    batch processor.

    Raises:
        TracingUnavailable: The OpenTelemetry SDK is not installed, or a named exporter is not.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError as exc:
        raise TracingUnavailable(
            f"tracing needs the OpenTelemetry SDK, which is not installed: {INSTALL_HINT}"
        ) from exc
    from importlib.metadata import entry_points

    configured = trace.get_tracer_provider()
    if not isinstance(configured, trace.ProxyTracerProvider):
        return configured, None
    exporters: list[SpanExporter] = []
    names = os.environ.get("OTEL_TRACES_EXPORTER", DEFAULT_EXPORTER)
    for name in (n.strip() for n in names.split(",")):
        if name in ("", "none"):
            continue
        found = list(entry_points(group=_EXPORTER_GROUP, name=name))
        if not found:
            package = "opentelemetry-exporter-otlp" if name.startswith("otlp") else "its package"
            raise TracingUnavailable(
                f"OTEL_TRACES_EXPORTER names the exporter {name!r}, which is not installed: "
                f"pip install {package} (or set OTEL_TRACES_EXPORTER=none)"
            )
        exporters.append(found[0].load()())
    resource = Resource.create()
    # The SDK's default name (``unknown_service:python``): not set by OTEL_SERVICE_NAME nor
    # OTEL_RESOURCE_ATTRIBUTES.
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "hyperdial"}))
    provider = SdkTracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, provider.shutdown


def redis_script(name: str, key_count: int) -> AbstractContextManager[Span | None]:
    """The span of one Redis script call in the current traced call; a no-op outside one.

    Attributes: the script's name and number of keys, never the keys or arguments (they hold
    the study's data).
    """
    tracer = current.get()
    if tracer is None:
        return _OFF
    from opentelemetry.trace import SpanKind  # loaded already: tracing is on

    return tracer.start_as_current_span(
        f"redis {name}",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "redis",
            "db.operation.name": "EVALSHA",
            "hyperdial.redis.script": name,
            "hyperdial.redis.key_count": key_count,
        },
    )


def sampler(
    algorithm: str, requested: int, history: Sequence[TrialPage]
) -> AbstractContextManager[Span | None]:
    """The span of a model-based sampler's computation (the submit to its worker and the wait
    for its points, in this process) in the current traced call; a no-op outside one."""
    tracer = current.get()
    if tracer is None:
        return _OFF
    attributes: dict[str, str | int] = {
        "hyperdial.sampler.algorithm": algorithm,
        "hyperdial.sampler.trials_requested": requested,
    }
    sizes = [page.size for page in history]
    if all(size is not None for size in sizes):
        attributes["hyperdial.sampler.history_size"] = sum(s for s in sizes if s is not None)
    return tracer.start_as_current_span(f"sampler {algorithm}", attributes=attributes)


def importance(trials: int | None) -> AbstractContextManager[Span | None]:
    """The span of a parameter-importance computation (the submit to its worker and the wait
    for the answer, in this process) of ``trials`` completed trials (``None``: not known
    before they are decoded) in the current traced call; a no-op outside one."""
    tracer = current.get()
    if tracer is None:
        return _OFF
    attributes: dict[str, str | int] = {"hyperdial.importance.method": "ped-anova"}
    if trials is not None:
        attributes["hyperdial.importance.trials"] = trials
    return tracer.start_as_current_span("importance ped-anova", attributes=attributes)


def recommendation(history: Sequence[TrialPage]) -> AbstractContextManager[Span | None]:
    """The span of a recommendation (``ListOptimalTrials`` by the model: the submit to its
    worker and the wait for the answer, in this process) in the current traced call; a no-op
    outside one."""
    tracer = current.get()
    if tracer is None:
        return _OFF
    attributes: dict[str, str | int] = {}
    sizes = [page.size for page in history]
    if all(size is not None for size in sizes):
        attributes["hyperdial.recommendation.trials"] = sum(s for s in sizes if s is not None)
    return tracer.start_as_current_span("recommendation", attributes=attributes)
