"""Channels to the service, configured the gRPC way: a service config, keepalive, TLS.

The service config (passed as the ``grpc.service_config`` channel option) sets:

* ``round_robin`` load balancing, so a ``dns:///`` target that resolves to several replicas
  (or an ``ipv4:A:P,B:Q`` list) spreads calls over all of them;
* a deadline per method (:data:`METHOD_TIMEOUTS`);
* a gRPC retry policy for ``UNAVAILABLE`` (see :mod:`hyperdial._retry` for the second layer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import grpc

__all__ = [
    "DEFAULT_TIMEOUT",
    "METHOD_TIMEOUTS",
    "SERVICE",
    "channel_options",
    "call_metadata",
    "method_timeout",
    "resolve_credentials",
    "service_config",
    "tls_credentials",
]

#: Full name of the tuning service.
SERVICE = "hyperdial.v1.TuningService"
#: Deadline of a call, in seconds, for methods without their own in :data:`METHOD_TIMEOUTS`.
DEFAULT_TIMEOUT = 30.0
#: Deadline of a call per method, in seconds: an ask may fit a model; a heartbeat must be quick
#: to be useful at all.
METHOD_TIMEOUTS: Mapping[str, float] = {"SuggestTrials": 60.0, "HeartbeatTrial": 10.0}
# The service refuses larger messages; matching it makes an oversized answer fail clearly.
_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# gRPC's own retries: a handful within about a second, for blips (gRPC caps attempts at 5).
_GRPC_RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
#: Keepalive pings while calls are in flight: a dead peer behind a silent network is noticed
#: within ``time + timeout`` instead of at the call's deadline.
KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000
# Reconnect quickly after a replica restarts: gRPC's default first backoff is 1 s, up to 120 s.
_INITIAL_RECONNECT_BACKOFF_MS = 200
_MAX_RECONNECT_BACKOFF_MS = 5_000


def method_timeout(method: str) -> float:
    """The deadline of one attempt of ``method`` when the caller sets none, in seconds."""
    return METHOD_TIMEOUTS.get(method, DEFAULT_TIMEOUT)


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def service_config(*, retry: bool = True, load_balancing: str | None = "round_robin") -> str:
    """The channel's service config, as JSON.

    Args:
        retry: Include the gRPC retry policy for ``UNAVAILABLE``.
        load_balancing: gRPC load-balancing policy (``"round_robin"`` or ``"pick_first"``);
            ``None`` leaves gRPC's default (``pick_first``).

    Returns:
        The JSON text for the ``grpc.service_config`` channel option.
    """
    configs: list[dict[str, Any]] = []
    for method, seconds in METHOD_TIMEOUTS.items():
        configs.append(
            {"name": [{"service": SERVICE, "method": method}], "timeout": _duration(seconds)}
        )
    configs.append({"name": [{"service": SERVICE}], "timeout": _duration(DEFAULT_TIMEOUT)})
    if retry:
        for method_config in configs:
            method_config["retryPolicy"] = dict(_GRPC_RETRY)
    config: dict[str, Any] = {"methodConfig": configs}
    if load_balancing:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    return json.dumps(config, sort_keys=True)


def channel_options(
    *,
    retry: bool = True,
    load_balancing: str | None = "round_robin",
    extra: Sequence[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """The options of a channel the client opens; ``extra`` ones override the defaults.

    Args:
        retry: Let gRPC retry ``UNAVAILABLE`` (the service config's retry policy).
        load_balancing: See :func:`service_config`.
        extra: More options, e.g. ``("grpc.ssl_target_name_override", "hyperdial.internal")``.
    """
    options: dict[str, Any] = {
        "grpc.service_config": service_config(retry=retry, load_balancing=load_balancing),
        # The config above is the one that applies, not one a DNS TXT record might carry.
        "grpc.service_config_disable_resolution": 1,
        "grpc.enable_retries": 1 if retry else 0,
        "grpc.max_receive_message_length": _MAX_MESSAGE_BYTES,
        "grpc.max_send_message_length": _MAX_MESSAGE_BYTES,
        "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
        "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
        "grpc.keepalive_permit_without_calls": 0,
        "grpc.initial_reconnect_backoff_ms": _INITIAL_RECONNECT_BACKOFF_MS,
        "grpc.max_reconnect_backoff_ms": _MAX_RECONNECT_BACKOFF_MS,
    }
    for key, value in extra:
        options[key] = value
    return list(options.items())


def _read(path: str | PathLike[str] | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None


def tls_credentials(
    ca_cert: str | PathLike[str] | None = None,
    *,
    client_cert: str | PathLike[str] | None = None,
    client_key: str | PathLike[str] | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials from PEM files, for ``Client(target, tls=...)``.

    Args:
        ca_cert: Certificates that may sign the server's certificate; ``None`` for the
            system's trusted roots.
        client_cert: The client's certificate chain, for a server that requires client
            certificates (mutual TLS); needs ``client_key``.
        client_key: The private key of ``client_cert``.

    Raises:
        ValueError: A file cannot be read, or only one of ``client_cert`` and ``client_key``
            is given.
    """
    if (client_cert is None) != (client_key is None):
        raise ValueError("give both client_cert and client_key (mutual TLS), or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_cert),
        private_key=_read(client_key),
        certificate_chain=_read(client_cert),
    )


def resolve_credentials(tls: bool | grpc.ChannelCredentials) -> grpc.ChannelCredentials | None:
    """The channel credentials for a ``tls`` argument: ``None`` for a plaintext channel."""
    if tls is True:
        return grpc.ssl_channel_credentials()
    if tls is False or tls is None:
        return None
    if not isinstance(tls, grpc.ChannelCredentials):
        raise TypeError(
            f"tls must be True, False or grpc.ChannelCredentials (see tls_credentials); got {tls!r}"
        )
    return tls


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata sent with every call: ``authorization: Bearer <token>`` when there is one.

    Raises:
        ValueError: The token is empty or holds whitespace (it would not survive the header).
    """
    if token is None:
        return ()
    if not token or any(c.isspace() for c in token):
        raise ValueError("a token must be a non-empty string without whitespace")
    return (("authorization", f"Bearer {token}"),)
