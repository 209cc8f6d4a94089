"""Channels to the service, configured the gRPC way: a service config, keepalive, TLS.

The service config (passed as the ``grpc.service_config`` channel option) sets:

* ``round_robin`` load balancing, so a ``dns:///`` target that resolves to several replicas
  (or an ``ipv4:A:P,B:Q`` list) spreads calls over all of them;
* client-side health checking (``grpc.health.v1``), so round-robin only picks replicas that
  report SERVING (a replica that lost its store, or is shutting down, is skipped);
* a deadline per attempt of each method (:data:`METHOD_TIMEOUTS`);
* a gRPC retry policy for ``UNAVAILABLE`` (see :mod:`hyperdial._retry` for the second layer).

A replica that stops answering without closing its connections (a paused VM, a stopped
process, a silent partition) is noticed two ways: an attempt stuck on it ends at its short
per-attempt deadline and is retried (round-robin sends the retry to the next replica), and
keepalive pings that go unanswered close the connection, which takes the replica out of
rotation until it answers again.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import grpc

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "KEEPALIVE_TIMEOUT_MS",
    "KEEPALIVE_TIME_MS",
    "METHOD_TIMEOUTS",
    "SERVICE",
    "Contact",
    "call_metadata",
    "channel_ready",
    "channel_options",
    "method_timeout",
    "normalize_target",
    "resolve_credentials",
    "service_config",
    "tls_credentials",
]

#: Full name of the tuning service.
SERVICE = "hyperdial.v1.TuningService"
#: Deadline of one attempt, in seconds, for methods without their own in
#: :data:`METHOD_TIMEOUTS`. The service answers these in milliseconds; 5 s leaves a loaded
#: replica plenty of room, while an attempt stuck on a replica that stopped answering costs
#: only 5 s before it is retried elsewhere (the retry keeps the ``request_id``).
DEFAULT_TIMEOUT = 5.0
#: Seconds a client that has never reached the service keeps trying before it gives up (a
#: wrong address, a server that is not running, TLS on one side only). Long enough for a
#: server starting next to the job; short enough that a mistake shows at once.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Deadline of one attempt per method, in seconds. An ask may start the sampler processes and
#: fit a model on a loaded replica: 20 s, longer than keepalive needs to notice a dead peer
#: (:data:`KEEPALIVE_TIME_MS` + :data:`KEEPALIVE_TIMEOUT_MS`), so keepalive, not the deadline,
#: moves an ask off a frozen replica. Shorter would buy little: a retry of an ask that is still
#: running is refused (``REQUEST_IN_PROGRESS``) until that ask ends. Pages of lists are up to
#: 4 MiB; parameter importance reads every completed trial (about 3 s for 100,000, with the
#: first call of a replica starting its worker processes); deleting a study removes all its
#: trials in one step.
METHOD_TIMEOUTS: Mapping[str, float] = {
    "SuggestTrials": 20.0,
    "ListStudies": 15.0,
    "ListTrials": 15.0,
    "ListOptimalTrials": 15.0,
    "ComputeParameterImportance": 30.0,
    "DeleteStudy": 30.0,
    "HeartbeatTrial": 5.0,
}
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
#: Keepalive: a ping every 10 s on every connection (idle ones too), closed when the peer has
#: not answered within 5 s, so a frozen replica leaves the rotation within about 15 s. 10 s
#: is the shortest interval Go and Java clients allow; servers accept pings every 5 s.
KEEPALIVE_TIME_MS = 10_000
KEEPALIVE_TIMEOUT_MS = 5_000
# Reconnect quickly after a replica restarts: gRPC's default first backoff is 1 s, up to 120 s.
_INITIAL_RECONNECT_BACKOFF_MS = 200
_MAX_RECONNECT_BACKOFF_MS = 5_000
# A connection attempt to a frozen replica: the kernel completes the TCP handshake, the process
# never answers; give up on it after this (gRPC's default is 20 s).
_MIN_CONNECT_TIMEOUT_MS = 5_000
_URI_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:", "xds:")


def method_timeout(method: str) -> float:
    """The deadline of one attempt of ``method`` when the caller sets none, in seconds."""
    return METHOD_TIMEOUTS.get(method, DEFAULT_TIMEOUT)


def normalize_target(target: str) -> str:
    """A gRPC target for ``target``; a comma-separated list of addresses becomes an ``ipv4:``
    or ``ipv6:`` list, which round-robin spreads calls over.

    Args:
        target: ``host:port``, a gRPC target (``dns:///host:port``, ``ipv4:A:P,B:Q``, ...), or
            ``A:P,B:Q`` with IP addresses (``[::1]:P`` for IPv6), all of one family.

    Raises:
        ValueError: A list holds a host name, an address without a port, or both families
            (use ``dns:///name:port`` for a name that resolves to several replicas).
    """
    if "," not in target or target.startswith(_URI_SCHEMES) or "://" in target:
        return target
    families: set[int] = set()
    for item in target.split(","):
        host, sep, port = item.strip().rpartition(":")
        try:
            version = ipaddress.ip_address(host.strip("[]")).version
            # An IPv6 address needs its brackets, or its last group would read as the port.
            valid = bool(sep) and port.isdigit() and (version == 4) != host.startswith("[")
            families.add(version)
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(
                f"a list of replicas must be IP:PORT addresses ({item.strip()!r} is not); "
                "for a host name with several addresses use 'dns:///NAME:PORT'"
            )
    if len(families) > 1:
        raise ValueError(f"a list of replicas must be all IPv4 or all IPv6; got {target!r}")
    items = ",".join(item.strip() for item in target.split(","))
    return f"ipv{families.pop()}:{items}"


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def service_config(
    *,
    retry: bool = True,
    load_balancing: str | None = "round_robin",
    health_check: bool = True,
) -> str:
    """The channel's service config, as JSON.

    Args:
        retry: Include the gRPC retry policy for ``UNAVAILABLE``.
        load_balancing: gRPC load-balancing policy (``"round_robin"`` or ``"pick_first"``);
            ``None`` leaves gRPC's default (``pick_first``).
        health_check: Route only to replicas whose ``grpc.health.v1`` status (service ``""``)
            is SERVING. Takes effect with ``round_robin`` (``pick_first`` ignores it); a
            server without the health service counts as healthy.

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
    if health_check:
        # "": the server's overall status, which every hyperdial server (and gRPC's stock
        # health servicer) sets; NOT_SERVING while its store is unreachable or it stops.
        config["healthCheckConfig"] = {"serviceName": ""}
    return json.dumps(config, sort_keys=True)


def channel_options(
    *,
    retry: bool = True,
    load_balancing: str | None = "round_robin",
    health_check: bool = True,
    extra: Sequence[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """The options of a channel the client opens; ``extra`` ones override the defaults.

    Args:
        retry: Let gRPC retry ``UNAVAILABLE`` (the service config's retry policy).
        load_balancing: See :func:`service_config`.
        health_check: See :func:`service_config`.
        extra: More options, e.g. ``("grpc.ssl_target_name_override", "hyperdial.internal")``.
    """
    options: dict[str, Any] = {
        "grpc.service_config": service_config(
            retry=retry, load_balancing=load_balancing, health_check=health_check
        ),
        # The config above is the one that applies, not one a DNS TXT record might carry.
        "grpc.service_config_disable_resolution": 1,
        "grpc.enable_retries": 1 if retry else 0,
        "grpc.max_receive_message_length": _MAX_MESSAGE_BYTES,
        "grpc.max_send_message_length": _MAX_MESSAGE_BYTES,
        "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
        "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
        # gRPC core (grpcio 1.85 measured) waits for a keepalive ping's ack this long, not
        # keepalive_timeout_ms: left at its 60 s default, a frozen peer kept calls for a minute.
        "grpc.http2.ping_timeout_ms": KEEPALIVE_TIMEOUT_MS,
        # Ping idle connections too: a replica that froze while this client was not calling
        # it would otherwise stay in rotation until a call got stuck on it.
        "grpc.keepalive_permit_without_calls": 1,
        # gRPC stops pinging after 2 pings without data by default, which would end keepalive
        # on a connection waiting for a long ask (or carrying only the health watch).
        "grpc.http2.max_pings_without_data": 0,
        "grpc.initial_reconnect_backoff_ms": _INITIAL_RECONNECT_BACKOFF_MS,
        "grpc.max_reconnect_backoff_ms": _MAX_RECONNECT_BACKOFF_MS,
        "grpc.min_reconnect_backoff_ms": _MIN_CONNECT_TIMEOUT_MS,
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


class Contact:
    """Whether a client has reached its service yet.

    The service counts as reached once a call got any answer from it, or a call failed while
    the channel was connected (READY: with health checking, to a replica that reports
    SERVING), which means the call was slow, not the connection missing. It stays reached for
    the client's life: a later outage is a restart to ride out, not a wrong address. The flag
    only ever turns on, so threads may share one instance.

    Args:
        ready: Whether the client's channel is READY right now.
    """

    def __init__(self, ready: Callable[[], bool]) -> None:
        self.reached = False
        self._ready = ready

    def seen(self) -> None:
        """Records an answer from the service."""
        self.reached = True

    def failed(self, transport: bool) -> None:
        """Records a failed attempt; ``transport``: its error came from the transport, not
        from the service (see :func:`hyperdial._retry.from_transport`)."""
        if not transport or (not self.reached and self._ready()):
            self.reached = True


# -- the state of a blocking channel ---------------------------------------------------------
# A blocking grpc.Channel has no public way to read its connectivity at one moment, only
# subscribe(), served by a thread polling every 0.2 s that raises in that thread ("Cannot
# monitor channel state: Channel closed!") when the channel closes while it runs: every
# short-lived client (the hyperdial command) would print that. The core channel under it has
# check_connectivity_state(); reach it through the private ``_channel`` attributes, and answer
# "not ready" when they are not there (then only answers count as contact). The test of this
# fallback's absence is test_first_contact.py::test_the_state_of_a_blocking_channel_is_read.

_READY = grpc.ChannelConnectivity.READY.value[0]


def channel_ready(channel: object) -> bool:
    """Whether a blocking channel (or a ``grpc.intercept_channel`` around one) is READY now,
    without making it connect; ``False`` when that cannot be read."""
    core = channel
    for _ in range(4):  # intercept_channel -> grpc._channel.Channel -> the core channel
        check = getattr(core, "check_connectivity_state", None)
        if callable(check):
            try:
                return bool(check(False) == _READY)
            except ValueError:  # closed
                return False
        core = getattr(core, "_channel", None)
        if core is None:
            return False
    return False
