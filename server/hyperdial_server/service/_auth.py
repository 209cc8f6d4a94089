"""Bearer-token authentication and role checks, as a ``grpc.aio`` server interceptor.

Every call of ``hyperdial.v1.TuningService`` must carry the metadata entry
``authorization: Bearer <token>``. The token resolves to a principal (tenant namespace and
role, :mod:`hyperdial_server.security`); the method's required role (:data:`METHOD_ROLES`)
is checked against it; and the handler then runs with :data:`current_namespace` set to the
principal's namespace, so the servicer reads and writes only that tenant's studies.

* No ``authorization`` entry → UNAUTHENTICATED, reason ``TOKEN_MISSING``.
* Not ``Bearer <token>``, or a token not in the tokens file → UNAUTHENTICATED, reason
  ``TOKEN_INVALID``. Both messages say what to send and never repeat what was sent.
* A valid token whose role is too low → PERMISSION_DENIED, reason ``ROLE_INSUFFICIENT``, with
  the token's role and the required one in the ``ErrorInfo`` metadata.

The health and reflection services stay open without a token (load balancers and
orchestrators probe health without credentials; reflection only describes the public
protocol). A method of any other service needs an ``admin`` token.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc

from hyperdial.v1 import tuning_service_pb2
from hyperdial_server.core.errors import HyperdialError, PermissionDenied, Unauthenticated
from hyperdial_server.security import Principal, Role, TokenRegistry
from hyperdial_server.service._context import current_namespace
from hyperdial_server.service._status import to_status

logger = logging.getLogger("hyperdial.auth")

_SERVICE = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"]

#: The least role each ``TuningService`` method needs. A method missing here needs ``admin``
#: (a test checks that every method of the service is listed).
METHOD_ROLES: dict[str, Role] = {
    "GetStudy": Role.READ_ONLY,
    "ListStudies": Role.READ_ONLY,
    "GetTrial": Role.READ_ONLY,
    "ListTrials": Role.READ_ONLY,
    "ListOptimalTrials": Role.READ_ONLY,
    "CheckTrialEarlyStopping": Role.READ_ONLY,
    "ComputeParameterImportance": Role.READ_ONLY,
    "CreateStudy": Role.READ_WRITE,
    "SuggestTrials": Role.READ_WRITE,
    "CompleteTrial": Role.READ_WRITE,
    "CreateTrial": Role.READ_WRITE,
    "HeartbeatTrial": Role.READ_WRITE,
    "AddTrialMeasurement": Role.READ_WRITE,
    "DeleteStudy": Role.ADMIN,
}

#: Services reachable without a token.
PUBLIC_SERVICES: frozenset[str] = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

#: The metadata key (gRPC keys are lowercase) and scheme of a bearer token.
AUTHORIZATION_KEY = "authorization"
BEARER_SCHEME = "bearer"

_HOW = "send the metadata entry 'authorization: Bearer <token>' with every call"


def required_role(method: str) -> Role | None:
    """The role a full method name (``/package.Service/Method``) needs; ``None`` if public."""
    service, _, name = method.lstrip("/").partition("/")
    if service in PUBLIC_SERVICES:
        return None
    if service == _SERVICE.full_name and name in METHOD_ROLES:
        return METHOD_ROLES[name]
    return Role.ADMIN


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates each call by its bearer token and runs it in the token's namespace.

    Args:
        tokens: The accepted tokens.
    """

    def __init__(self, tokens: TokenRegistry) -> None:
        self._tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        required = required_role(method)
        handler = await continuation(handler_call_details)
        if required is None:
            return handler
        try:
            principal = self._authenticate(handler_call_details.invocation_metadata)
        except HyperdialError as error:
            return _refusal(handler, error, method)
        try:
            _authorize(principal, required, method)
        except HyperdialError as error:
            return _refusal(handler, error, method, f"token {principal.label!r}")
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED
            return handler
        return _in_namespace(handler, principal.namespace)

    def _authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Principal:
        values = [v for k, v in metadata or () if k.lower() == AUTHORIZATION_KEY]
        if not values:
            raise Unauthenticated(
                f"this server requires a bearer token: {_HOW}", reason="TOKEN_MISSING"
            )
        if len(values) > 1:
            raise Unauthenticated(
                f"the call carries {len(values)} authorization entries; {_HOW}, once",
                reason="TOKEN_INVALID",
            )
        value = values[0]
        scheme, _, token = value.partition(" ") if isinstance(value, str) else ("", "", "")
        # Exactly "Bearer <token>": one space, no padding. A lenient parse would let two
        # spellings of one credential through, and the documented form is what every gRPC
        # library's token credentials send.
        if scheme.lower() != BEARER_SCHEME or not token or token != token.strip():
            raise Unauthenticated(
                f"the authorization entry is not of the form 'Bearer <token>'; {_HOW}",
                reason="TOKEN_INVALID",
            )
        principal = self._tokens.resolve(token)
        if principal is None:
            raise Unauthenticated(
                "the bearer token is not valid on this server (unknown or revoked); "
                "ask its operator for a token",
                reason="TOKEN_INVALID",
            )
        return principal


def _authorize(principal: Principal, required: Role, method: str) -> None:
    if principal.role.allows(required):
        return
    name = method.rsplit("/", 1)[-1]
    raise PermissionDenied(
        f"{name} needs a token with role '{required.value}' or higher; this token has role "
        f"'{principal.role.value}'",
        reason="ROLE_INSUFFICIENT",
        metadata={"method": name, "role": principal.role.value, "required_role": required.value},
    )


def _refusal(
    handler: grpc.RpcMethodHandler | None, error: HyperdialError, method: str, who: str = ""
) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that only aborts with ``error``'s status.

    It does not decode the request: a refused caller gets no further than this. The log line
    names the token by its label (``who``), never by its value.
    """
    status = to_status(error)
    caller = f" ({who})" if who else ""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        logger.info("refused %s from %s%s: %s", method, context.peer(), caller, error.reason)
        await context.abort(status.code, status.details, status.trailing_metadata)

    streams_in = handler is not None and handler.request_streaming
    streams_out = handler is not None and handler.response_streaming
    if streams_in and streams_out:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if streams_in:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if streams_out:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


def _in_namespace(handler: grpc.RpcMethodHandler, namespace: str) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour run while :data:`current_namespace` is ``namespace``.

    The variable is set inside the behaviour itself, in the context the call's handler runs
    in, so the servicer sees it whatever the server does between interception and handling.
    """
    if handler.unary_unary is not None:
        kind, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    elif handler.unary_stream is not None:
        kind, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    elif handler.stream_unary is not None:
        kind, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    else:
        kind, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    return kind(
        _bind(behavior, namespace),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _bind(behavior: Callable[..., Any], namespace: str) -> Callable[..., Any]:
    """Wraps a handler behaviour (async or not, streaming or not) to run in ``namespace``."""
    if inspect.iscoroutinefunction(behavior):

        async def run_async(request: Any, context: Any) -> Any:
            token = current_namespace.set(namespace)
            try:
                return await behavior(request, context)
            finally:
                current_namespace.reset(token)

        return run_async
    if inspect.isasyncgenfunction(behavior):

        async def stream_async(request: Any, context: Any) -> AsyncIterator[Any]:
            # The call's task has a context of its own, so the value cannot leak to another
            # call; it is not reset because the generator may be closed from another context.
            current_namespace.set(namespace)
            async for item in behavior(request, context):
                yield item

        return stream_async

    # Synchronous behaviours run in a thread pool, whose threads serve many calls: run them in
    # a copy of the context instead of setting the variable in the thread's own.
    def scoped() -> contextvars.Context:
        ctx = contextvars.copy_context()
        ctx.run(current_namespace.set, namespace)
        return ctx

    if inspect.isgeneratorfunction(behavior):

        def stream_sync(request: Any, context: Any) -> Iterator[Any]:
            ctx = scoped()
            items = ctx.run(behavior, request, context)
            while True:
                try:
                    item = ctx.run(next, items)
                except StopIteration:
                    return
                yield item

        return stream_sync

    def run_sync(request: Any, context: Any) -> Any:
        return scoped().run(behavior, request, context)

    return run_sync
