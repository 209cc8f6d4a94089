"""Opaque page tokens (AIP-158): they encode where the next page starts and the request's
filter, so a token reused with another filter is refused instead of silently misread."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from hyperdial_server.core import limits
from hyperdial_server.core.errors import InvalidArgument


def page_size(requested: int) -> int:
    """The effective page size: default for 0, refused when negative or too large."""
    if requested == 0:
        return limits.DEFAULT_PAGE_SIZE
    if requested < 0 or requested > limits.MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 1 and {limits.MAX_PAGE_SIZE} (or 0 for the default of "
            f"{limits.DEFAULT_PAGE_SIZE}); got {requested}",
            field="page_size",
        )
    return requested


def encode(after: Any, scope: Any = None) -> str:
    """A token for the page after ``after``, valid for requests of the same ``scope``."""
    raw = json.dumps({"a": after, "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, scope: Any = None) -> Any:
    """The ``after`` of a token, or ``None`` for an empty token.

    Raises:
        InvalidArgument: The token is malformed, or was made for another filter.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, token_scope = data["a"], data["s"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise InvalidArgument(
            "page_token is not a token this service issued; pass next_page_token unchanged",
            field="page_token",
            reason="INVALID_PAGE_TOKEN",
        ) from None
    if token_scope != scope:
        raise InvalidArgument(
            "page_token was issued for a request with other filters; repeat the same filters "
            "or start again without a token",
            field="page_token",
            reason="INVALID_PAGE_TOKEN",
        )
    return after
