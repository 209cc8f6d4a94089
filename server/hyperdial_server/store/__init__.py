"""Stores of study state: the ``Store`` interface, an in-memory and a Redis implementation."""

from __future__ import annotations

from urllib.parse import urlsplit

from hyperdial_server.core.limits import DEFAULT_NAMESPACE_SPEC_BYTES
from hyperdial_server.store._base import (
    DEFAULT_CLAIM_TTL,
    EXPIRE_BATCH,
    Claim,
    Fallback,
    FastAsk,
    Reissue,
    RequestId,
    StaleStudy,
    Store,
)
from hyperdial_server.store._memory import MemoryStore
from hyperdial_server.store._redis import RedisStore

_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def open_store(url: str | None, *, max_spec_bytes: int = DEFAULT_NAMESPACE_SPEC_BYTES) -> Store:
    """The store a URL names.

    Args:
        url: ``None`` or ``""`` for a :class:`MemoryStore`; a ``redis://``, ``rediss://`` or
            ``unix://`` URL for a :class:`RedisStore` (see :meth:`RedisStore.from_url`), or
            ``redis+cluster://`` / ``rediss+cluster://`` for a :class:`RedisStore` on a Redis
            Cluster.
        max_spec_bytes: Most bytes of study records per namespace; 0: no budget.

    Raises:
        ValueError: Any other URL. The message names the scheme only, never the URL, which may
            hold a password.
    """
    if not url:
        return MemoryStore(max_spec_bytes=max_spec_bytes)
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in _REDIS_SCHEMES:
        return RedisStore.from_url(url, max_spec_bytes=max_spec_bytes)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise ValueError(
        f"unsupported store URL ({shown}); use redis://, rediss://, unix:// or "
        "redis+cluster://, or no URL for the in-memory store"
    )


__all__ = [
    "DEFAULT_CLAIM_TTL",
    "EXPIRE_BATCH",
    "Claim",
    "Fallback",
    "FastAsk",
    "MemoryStore",
    "RedisStore",
    "Reissue",
    "RequestId",
    "StaleStudy",
    "Store",
    "open_store",
]
