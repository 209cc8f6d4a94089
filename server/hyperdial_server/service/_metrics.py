"""Per-call observability: request ids, one log line per call, Prometheus metrics.

:class:`CallInterceptor` wraps every handler of the server it is installed on. For each call
it sets the request id that log lines carry (``hyperdial_server.logs``), writes one log line
when the call ends, and counts it in a :class:`Metrics`. Sampler compute time is measured
where the sampler runs and recorded with :func:`observe_suggestion`, since an interceptor
cannot see it.

Metrics (``--metrics-port`` serves them at ``/metrics``):

* ``hyperdial_grpc_server_handled_total{grpc_service, grpc_method, grpc_code}``: ended calls.
* ``hyperdial_grpc_server_handling_seconds{grpc_service, grpc_method}``: latency histogram.
* ``hyperdial_grpc_server_in_flight{grpc_service, grpc_method}``: calls being handled.
* ``hyperdial_suggestion_compute_seconds{algorithm}``: time a sampler spent computing the
  suggestions of one ask.
* ``hyperdial_trials_asked_total``: trials handed out by ``SuggestTrials``.
* ``hyperdial_trials_told_total{outcome}``: trials ended by ``CompleteTrial`` (``completed``,
  ``failed``, ``stopped`` or ``infeasible``), and trials stopped by their policy at a report
  (``stopped``).
* ``hyperdial_store_errors_total{operation,reason}``: store failures, by the RPC that met them
  (or ``health_check`` for the health service's own store checks) and their ``ErrorInfo``
  reason (``STORE_UNAVAILABLE``, ``STORE_OUT_OF_MEMORY``, ``STORE_READ_ONLY``, ...).
* ``hyperdial_store_up``: 1 while the store answers the health service's checks, else 0.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from hyperdial.v1 import trial_pb2
from hyperdial_server import logs
from hyperdial_server.service._fair import FairQueue

logger = logging.getLogger("hyperdial.calls")


#: Latency buckets of calls, in seconds (1 ms to 30 s).
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Buckets of sampler compute time, in seconds (index-based samplers take microseconds).
COMPUTE_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: ``ErrorInfo.reason`` of a failure to reach the store.
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"


def is_store_failure(reason: str | None) -> bool:
    """Whether an error's reason says the store failed (unreachable, full, read-only, refusing
    a command, inconsistent), as opposed to the caller or this replica."""
    return reason is not None and (reason.startswith("STORE_") or reason == "STUDY_DATA_LOSS")


# Codes that are the normal end of a call (a worker's loop ends on STUDY_COMPLETE).
_QUIET = frozenset({grpc.StatusCode.OK, grpc.StatusCode.OUT_OF_RANGE})
# Codes that point at the server or its store rather than at the caller.
_SERVER_SIDE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)

_TOLD: dict[int, str] = {
    trial_pb2.TRIAL_STATE_COMPLETED: "completed",
    trial_pb2.TRIAL_STATE_FAILED: "failed",
    trial_pb2.TRIAL_STATE_STOPPED: "stopped",
    trial_pb2.TRIAL_STATE_INFEASIBLE: "infeasible",
}

# The metrics of the server handling the current call (read by ``observe_suggestion``).
_current: ContextVar[Metrics | None] = ContextVar("hyperdial_metrics", default=None)


class Metrics:
    """The Prometheus metrics of one server, in a registry of their own.

    Args:
        registry: Where to register; a new one by default (so several servers can live in
            one process). Process and platform metrics are added to a new registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        self.registry = registry
        labels = ["grpc_service", "grpc_method"]
        self.handled = Counter(
            "hyperdial_grpc_server_handled",
            "gRPC calls ended, by method and status code.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "hyperdial_grpc_server_handling_seconds",
            "Time from the start to the end of a gRPC call, by method.",
            labels,
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "hyperdial_grpc_server_in_flight",
            "gRPC calls being handled, by method.",
            labels,
            registry=registry,
        )
        self.suggestion_seconds = Histogram(
            "hyperdial_suggestion_compute_seconds",
            "Time a sampler spent computing the suggestions of one ask, by algorithm.",
            ["algorithm"],
            buckets=COMPUTE_BUCKETS,
            registry=registry,
        )
        self.trials_asked = Counter(
            "hyperdial_trials_asked", "Trials handed out by SuggestTrials.", registry=registry
        )
        self.trials_told = Counter(
            "hyperdial_trials_told",
            "Trials ended by CompleteTrial, by outcome (completed, failed, stopped, infeasible), "
            "and trials stopped by their early-stopping policy at a report (stopped).",
            ["outcome"],
            registry=registry,
        )
        self.store_errors = Counter(
            "hyperdial_store_errors",
            "Store failures, by the operation that met them and their ErrorInfo reason.",
            ["operation", "reason"],
            registry=registry,
        )
        self.store_up = Gauge(
            "hyperdial_store_up",
            "1 while the store answers the health service's checks, else 0.",
            registry=registry,
        )
        self.sampler_computations = Gauge(
            "hyperdial_sampler_computations",
            "Model-based computations (Bayesian asks, recommendations, importance) on the "
            "sampler workers (running) or waiting for one (waiting).",
            ["state"],
            registry=registry,
        )

    def watch(self, queue: FairQueue) -> None:
        """Reads the sampler workers' queue at each scrape."""
        self.sampler_computations.labels("running").set_function(lambda: queue.running)
        self.sampler_computations.labels("waiting").set_function(lambda: queue.waiting)


class MetricsEndpoint:
    """An HTTP server (its own thread) answering ``GET /metrics`` from a registry.

    Args:
        metrics: What to serve.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (see :attr:`port`).
    """

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=metrics.registry)
        self.port: int = self._server.server_port

    def close(self) -> None:
        """Stops serving and waits for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def observe_suggestion(algorithm: str, seconds: float) -> None:
    """Records a sampler's compute time measured elsewhere (e.g. in a worker process) into
    ``hyperdial_suggestion_compute_seconds`` of the current call; a no-op outside one."""
    metrics = _current.get()
    if metrics is not None:
        metrics.suggestion_seconds.labels(algorithm.lower()).observe(seconds)


class CallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Gives every call a request id, one log line when it ends, and metrics.

    Install it first in the server's ``interceptors`` so that it sees every call, including
    those that later interceptors refuse.

    Args:
        metrics: Where to count; ``None`` only logs.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        # Per method: the handler seen last and its wrapped form (built once, not per call).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED itself
            return handler
        full = handler_call_details.method
        cached = self._wrapped.get(full)
        if cached is not None and cached[0] is handler:
            return cached[1]
        service, _, method = full.lstrip("/").rpartition("/")
        wrapped = _wrap(handler, _Method(self._metrics, service, method))
        self._wrapped[full] = (handler, wrapped)
        return wrapped


class _Method:
    """What every call of one method shares: its names and its metric series."""

    def __init__(self, metrics: Metrics | None, service: str, method: str) -> None:
        self.metrics = metrics
        self.service = service
        self.method = method
        self.in_flight = metrics.in_flight.labels(service, method) if metrics else None
        self.seconds = metrics.handling_seconds.labels(service, method) if metrics else None
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        """The call counter of one status code."""
        counter = self._handled.get(code)
        if counter is None and self.metrics is not None:
            counter = self.metrics.handled.labels(self.service, self.method, code.name)
            self._handled[code] = counter
        return counter


def _header(metadata: Sequence[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("utf-8", "replace")
    return None


class _Call:
    """One call being observed: sets the context at the start, records at the end."""

    def __init__(self, method: _Method) -> None:
        self.m = method
        self._tokens: list[Any] = []
        self._start = 0.0

    def begin(self, request: object | None, context: grpc.aio.ServicerContext) -> None:
        given = getattr(request, "request_id", None) if request is not None else None

        def rid() -> str:
            found = given if isinstance(given, str) and given else None
            if found is None:
                found = _header(context.invocation_metadata(), "x-request-id")
            return logs.clean_request_id(found) if found else f"{random.getrandbits(64):016x}"

        self._tokens = [logs.request_id.set(rid), _current.set(self.m.metrics)]
        if self.m.in_flight is not None:
            self.m.in_flight.inc()
        self._start = time.perf_counter()

    def end(
        self,
        context: grpc.aio.ServicerContext,
        error: BaseException | None,
        response: object | None = None,
    ) -> None:
        try:
            self._record(context, error, response)
        finally:
            for token in reversed(self._tokens):
                token.var.reset(token)

    def _record(
        self, context: grpc.aio.ServicerContext, error: BaseException | None, response: object
    ) -> None:
        elapsed = time.perf_counter() - self._start
        code = _code(context, error)
        m = self.m
        if m.metrics is not None and m.in_flight is not None and m.seconds is not None:
            m.in_flight.dec()
            m.handled(code).inc()
            m.seconds.observe(elapsed)
            if code is grpc.StatusCode.OK:
                _count_trials(m.metrics, m.method, response)
            elif code not in _QUIET and is_store_failure(reason := _reason(context)):
                m.metrics.store_errors.labels(m.method, reason).inc()
        level = (
            logging.DEBUG
            if code in _QUIET
            else logging.WARNING
            if code in _SERVER_SIDE
            else logging.INFO
        )
        if not logger.isEnabledFor(level):
            return
        details = "" if code is grpc.StatusCode.OK else _details(context, error)
        peer = _peer(context)
        logger.log(
            level,
            "%s %s in %.1f ms from %s%s",
            m.method,
            code.name,
            elapsed * 1000,
            peer,
            f": {details}" if details else "",
            extra={
                "event": "call",
                "service": m.service,
                "method": m.method,
                "code": code.name,
                "duration_ms": round(elapsed * 1000, 3),
                "peer": peer,
            },
        )


def _wrap(handler: grpc.RpcMethodHandler, method: _Method) -> grpc.RpcMethodHandler:
    """``handler`` with each call of its behaviour observed by a new :class:`_Call`."""
    kind, behavior = _behavior(handler)
    if behavior is None:
        return handler  # a synchronous handler: nothing of ours runs in its context
    request_streaming = kind.startswith("stream")
    if inspect.isasyncgenfunction(behavior):
        stream = behavior

        async def wrapped_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _Call(method)
            call.begin(None if request_streaming else request, context)
            try:
                async for item in stream(request, context):
                    yield item
            except BaseException as e:
                call.end(context, e)
                raise
            call.end(context, None)

        new: Callable[..., Any] = wrapped_stream
    else:
        unary = behavior

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _Call(method)
            call.begin(None if request_streaming else request, context)
            try:
                response = await unary(request, context)
            except BaseException as e:
                call.end(context, e)
                raise
            call.end(context, None, response)
            return response

        new = wrapped
    factory = getattr(grpc, f"{kind}_rpc_method_handler")
    result: grpc.RpcMethodHandler = factory(
        new,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return result


def _behavior(handler: grpc.RpcMethodHandler) -> tuple[str, Callable[..., Any] | None]:
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behavior = getattr(handler, kind)
        if behavior is not None:
            if inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior):
                return kind, behavior
            return kind, None
    return "unary_unary", None


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, (GeneratorExit, asyncio.CancelledError)):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN  # what gRPC answers for an exception the handler let out


def _details(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    details = context.details()
    if isinstance(details, bytes):
        details = details.decode("utf-8", "replace")
    if details:
        return str(details)
    if error is not None and not isinstance(error, asyncio.CancelledError):
        return f"{type(error).__name__}: {error}"
    return ""


def _peer(context: grpc.aio.ServicerContext) -> str:
    try:
        return str(context.peer())
    except Exception:  # the peer is gone already (a cancelled call)
        return "?"


def _reason(context: grpc.aio.ServicerContext) -> str | None:
    """``ErrorInfo.reason`` of the status the call ended with, if it carries one."""
    for key, value in context.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return None


def _count_trials(metrics: Metrics, method: str, response: object) -> None:
    if method == "SuggestTrials":
        metrics.trials_asked.inc(len(getattr(response, "trials", ())))
    elif method == "CompleteTrial":
        state = getattr(getattr(response, "trial", None), "state", None)
        outcome = _TOLD.get(int(state or 0))
        if outcome is not None:
            metrics.trials_told.labels(outcome).inc()
    elif method == "AddTrialMeasurement":
        decision = getattr(response, "decision", None)
        if getattr(decision, "should_stop", False):
            metrics.trials_told.labels("stopped").inc()
