"""Per-call context shared between interceptors and handlers."""

from __future__ import annotations

from contextvars import ContextVar

#: Namespace (tenant) of the current call. Set by the authentication layer for each call;
#: unset, the servicer uses its own default namespace.
current_namespace: ContextVar[str | None] = ContextVar("hyperdial_namespace", default=None)
