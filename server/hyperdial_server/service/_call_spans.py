"""``TracingInterceptor``: an OpenTelemetry server span per call of the tuning service.

The span continues the caller's trace: the W3C trace context (``traceparent``,
``tracestate``) is taken from the call's metadata by OpenTelemetry's configured propagator
(``OTEL_PROPAGATORS``, W3C trace context and baggage by default). While the call runs, the
interceptor's tracer is :data:`hyperdial_server._tracing.current`, so the Redis script calls
and sampler computations of the call add child spans (``_tracing.redis_script``,
``_tracing.sampler``). Each call runs in a task of its own, whose context carries the span
through every ``await`` and into the tasks the call starts.

Span attributes follow OpenTelemetry's RPC conventions: ``rpc.system`` (``grpc``),
``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``; plus ``hyperdial.study`` (the
study's name, ``studies/{study}``, when the request names one) and ``hyperdial.error.reason``
(the ``ErrorInfo`` reason of an error). As the conventions say for server spans, the span's
status is ERROR only for codes that point at the server (``UNKNOWN``, ``INTERNAL``,
``UNAVAILABLE``...), not for a caller's mistake such as ``INVALID_ARGUMENT``.

OpenTelemetry is imported when an interceptor is made, never by importing this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from hyperdial_server import _tracing
from hyperdial_server.service._metrics import _code, _reason
from hyperdial_server.service._registration import SERVICE

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

#: The service whose calls are traced (health checks and reflection are not).
TRACED_SERVICE = SERVICE.full_name
# Codes for which a server span's status is ERROR (OpenTelemetry's gRPC conventions).
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# Longest study name put on a span: a name is checked by the handler, after the span starts.
_MAX_NAME = 256


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Traces every call of ``hyperdial.v1.TuningService`` on the server it is installed on.

    Install it first in the server's ``interceptors``, so that its span covers the whole call
    (calls other interceptors refuse too).

    Args:
        tracer_provider: Where spans go; ``None``: OpenTelemetry's global provider.
        rpc_spans: Whether to start a server span per call. ``False`` for a server that has
            gRPC instrumentation of its own (``opentelemetry-instrumentation-grpc``): the
            store and sampler spans are then children of that instrumentation's span.

    Raises:
        TracingUnavailable: OpenTelemetry is not installed (``pip install 'hyperdial[tracing]'``).
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, rpc_spans: bool = True
    ) -> None:
        self._tracer = _tracing.tracer_of(tracer_provider)
        self._rpc_spans = rpc_spans
        # Per method: the handler seen last and its wrapped form (built once, not per call).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full = handler_call_details.method
        service, _, method = full.lstrip("/").rpartition("/")
        # Every method of the service is unary and a coroutine (``add_tuning_servicer``).
        if (
            handler is None
            or service != TRACED_SERVICE
            or not inspect.iscoroutinefunction(handler.unary_unary)
        ):
            return handler
        cached = self._wrapped.get(full)
        if cached is not None and cached[0] is handler:
            return cached[1]
        if self._rpc_spans:
            behavior = _traced(handler.unary_unary, self._tracer, service, method)
        else:
            behavior = _with_tracer(handler.unary_unary, self._tracer)
        wrapped = grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[full] = (handler, wrapped)
        return wrapped


def _traced(
    unary: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    tracer: Tracer,
    service: str,
    method: str,
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """``unary`` run in a server span that continues the caller's trace."""
    from opentelemetry import propagate, trace

    name = f"{service}/{method}"
    base = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
        parent = propagate.extract(_carrier(context.invocation_metadata()))
        span = tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=base)
        study = _study(request)
        if study:
            span.set_attribute("hyperdial.study", study)
        token = _tracing.current.set(tracer)
        error: BaseException | None = None
        try:
            # The span is ended below, with the status the call ended with.
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                return await unary(request, context)
        except BaseException as e:
            error = e
            raise
        finally:
            _tracing.current.reset(token)
            _end(span, context, error)

    return traced


def _with_tracer(
    unary: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], tracer: Tracer
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """``unary`` with ``tracer`` current, for the store and sampler spans, and no span."""

    async def with_tracer(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = _tracing.current.set(tracer)
        try:
            return await unary(request, context)
        finally:
            _tracing.current.reset(token)

    return with_tracer


def _end(span: Span, context: grpc.aio.ServicerContext, error: BaseException | None) -> None:
    """Records how the call ended on ``span`` and ends it."""
    from opentelemetry.trace import Status, StatusCode

    code = _code(context, error)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        reason = _reason(context)
        if reason:
            span.set_attribute("hyperdial.error.reason", reason)
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, f"{code.name} {reason or ''}".strip()))
            # An exception the handler let out (not an abort with a status): worth its stack.
            if error is not None and not isinstance(error, grpc.aio.AbortError):
                span.record_exception(error)
    span.end()


def _carrier(metadata: Sequence[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """The call's text metadata, for the propagator (binary ``-bin`` values carry no context)."""
    return {key: value for key, value in metadata or () if isinstance(value, str)}


def _study(request: object) -> str:
    """``studies/{study}`` of the study the request names (its ``name``, ``parent`` or, to
    create one, ``study_id``), or ``""``."""
    for field in ("name", "parent"):
        value = getattr(request, field, "")
        if isinstance(value, str) and value.startswith("studies/"):
            return "/".join(value.split("/", 2)[:2])[:_MAX_NAME]
    study_id = getattr(request, "study_id", "")
    if isinstance(study_id, str) and study_id:
        return f"studies/{study_id}"[:_MAX_NAME]
    return ""
