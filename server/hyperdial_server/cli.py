"""``hyperdial serve``: flags, each with an environment variable and a documented default."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Callable, Sequence

from hyperdial_server import __version__, logs
from hyperdial_server.core import limits
from hyperdial_server.server import RunningServer, ServerConfig, serve
from hyperdial_server.service import (
    DEFAULT_SAMPLER_PRIORITY,
    DEFAULT_SAMPLER_PROCESSES,
    SPEC_CACHE_BYTES,
    AdmissionLimits,
    SamplerPriority,
)

_MIB = 1024 * 1024


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _port_or_off(value: str) -> int | None:
    """``--metrics-port``, ``--dashboard-port``: a port, or ``off`` (or empty) for none."""
    if value.strip().lower() in ("", "off"):
        return None
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port number (0 to 65535) or off, not {value!r}")
    return port


def _processes(value: str) -> int:
    """``--sampler-processes``: 0 to 64."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 0 <= n <= 64:
        raise argparse.ArgumentTypeError(f"a number of processes from 0 to 64, not {value!r}")
    return n


def _priority(value: str) -> SamplerPriority:
    """``--sampler-priority``: ``N`` (0 to 19), ``batch`` or ``batch:N``."""
    try:
        return SamplerPriority.parse(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seconds(low: float, high: float, *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: seconds between ``low`` and ``high`` (or 0 when ``zero``)."""

    def parse(value: str) -> float:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if (zero and seconds == 0) or low <= seconds <= high:
            return seconds
        also = " or 0" if zero else ""
        raise argparse.ArgumentTypeError(f"seconds from {low:g} to {high:g}{also}, not {value!r}")

    return parse


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = low - 1
        if low <= n <= high:
            return n
        raise argparse.ArgumentTypeError(f"a whole number from {low} to {high}, not {value!r}")

    return parse


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where the value may hold a secret (a Redis URL's password)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.dest == "redis":
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``hyperdial serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hyperdial serve",
        description="Run the hyperdial tuning service (gRPC). Without --redis the studies live "
        "in memory and are lost when the server stops.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--host",
        default=_env("HYPERDIAL_HOST", "127.0.0.1"),
        help="address to listen on; 0.0.0.0 for every interface (env HYPERDIAL_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env("HYPERDIAL_PORT", "50051"),  # a string: argparse converts and checks it
        help="port to listen on; 0 picks a free one (env HYPERDIAL_PORT)",
    )
    parser.add_argument(
        "--redis",
        default=_env("HYPERDIAL_REDIS_URL", ""),
        metavar="URL",
        help="Redis URL (redis://[:password@]host:port/db, rediss:// for TLS, "
        "redis+cluster://host:port for a Redis Cluster); empty: the "
        "embedded in-memory store (env HYPERDIAL_REDIS_URL)",
    )
    parser.add_argument(
        "--allow-evicting-redis",
        action="store_true",
        default=_env("HYPERDIAL_ALLOW_EVICTING_REDIS", "").lower()
        not in ("", "0", "false", "no", "off"),
        help="serve from a Redis whose maxmemory-policy is not noeviction, with a warning, "
        "instead of refusing to start: a full Redis then drops keys and damages studies "
        "(env HYPERDIAL_ALLOW_EVICTING_REDIS=1)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=_env("HYPERDIAL_GRACE", "10"),
        help="seconds in-flight calls get to finish on SIGTERM (env HYPERDIAL_GRACE)",
    )
    parser.add_argument(
        "--no-reflection",
        action="store_true",
        default=_env("HYPERDIAL_NO_REFLECTION", "").lower() not in ("", "0", "false", "no", "off"),
        help="do not serve gRPC server reflection (env HYPERDIAL_NO_REFLECTION=1)",
    )
    parser.add_argument(
        "--tls-cert",
        default=_env("HYPERDIAL_TLS_CERT", ""),
        metavar="PEM",
        help="server certificate chain; with --tls-key the port speaks TLS only "
        "(env HYPERDIAL_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key",
        default=_env("HYPERDIAL_TLS_KEY", ""),
        metavar="PEM",
        help="unencrypted private key of --tls-cert (env HYPERDIAL_TLS_KEY)",
    )
    parser.add_argument(
        "--tls-client-ca",
        default=_env("HYPERDIAL_TLS_CLIENT_CA", ""),
        metavar="PEM",
        help="CA certificates of clients; set, every client must present a certificate they "
        "signed (mutual TLS) (env HYPERDIAL_TLS_CLIENT_CA)",
    )
    parser.add_argument(
        "--tokens-file",
        default=_env("HYPERDIAL_TOKENS_FILE", ""),
        metavar="FILE",
        help="bearer tokens (as SHA-256 hashes) with their namespace and role; set, every "
        "tuning call needs 'authorization: Bearer <token>'; re-read when it changes; see "
        "docs/security.md (env HYPERDIAL_TOKENS_FILE)",
    )
    parser.add_argument(
        "--metrics-port",
        type=_port_or_off,
        default=_env("HYPERDIAL_METRICS_PORT", "off"),
        metavar="PORT",
        help="serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (on --host); "
        "0 picks a free one; off: no endpoint (env HYPERDIAL_METRICS_PORT)",
    )
    parser.add_argument(
        "--dashboard-port",
        type=_port_or_off,
        default=_env("HYPERDIAL_DASHBOARD_PORT", "off"),
        metavar="PORT",
        help="serve the web dashboard at http://HOST:PORT/ (on --host), reading this replica "
        "over loopback; 0 picks a free one; off: none; needs the dashboard extra, and no TLS "
        "(see docs/dashboard.md) (env HYPERDIAL_DASHBOARD_PORT)",
    )
    parser.add_argument(
        "--dashboard-token-file",
        default=_env("HYPERDIAL_DASHBOARD_TOKEN_FILE", ""),
        metavar="FILE",
        help="with --tokens-file: a file holding the token the dashboard reads with (read-only "
        "is enough; the dashboard sees its namespace) (env HYPERDIAL_DASHBOARD_TOKEN_FILE)",
    )
    parser.add_argument(
        "--lease-timeout",
        type=_seconds(limits.MIN_LEASE_TIMEOUT, limits.MAX_LEASE_TIMEOUT),
        default=_env("HYPERDIAL_LEASE_TIMEOUT", f"{limits.DEFAULT_LEASE_TIMEOUT:g}"),
        metavar="SECONDS",
        help="lease of a RUNNING trial (seconds without a heartbeat or a result before it fails "
        "with reason 'lease expired') for studies created without lease_timeout; a study "
        "keeps the value it was created with (env HYPERDIAL_LEASE_TIMEOUT)",
    )
    parser.add_argument(
        "--request-id-ttl",
        type=_seconds(limits.MIN_REQUEST_ID_TTL, limits.MAX_REQUEST_ID_TTL),
        default=_env("HYPERDIAL_REQUEST_ID_TTL", f"{limits.DEFAULT_REQUEST_ID_TTL:g}"),
        metavar="SECONDS",
        help="how long the answer of a call with a request_id is kept, so that a retry with "
        "the same id gets it (env HYPERDIAL_REQUEST_ID_TTL)",
    )
    parser.add_argument(
        "--sampler-processes",
        type=_processes,
        default=_env("HYPERDIAL_SAMPLER_PROCESSES", str(DEFAULT_SAMPLER_PROCESSES)),
        metavar="N",
        help="worker processes for Bayesian suggestions, so that they never hold up this "
        "replica's other calls (started on the first Bayesian ask); 0: threads of the server "
        "process instead (env HYPERDIAL_SAMPLER_PROCESSES)",
    )
    parser.add_argument(
        "--sampler-priority",
        type=_priority,
        default=_env("HYPERDIAL_SAMPLER_PRIORITY", str(DEFAULT_SAMPLER_PRIORITY)),
        metavar="PRIORITY",
        help="CPU priority of the sampler worker processes: N, their niceness above the "
        "server's (0 to 19; 0 competes with training jobs on the node on equal terms, 10 gets "
        "a tenth of a busy core), or batch / batch:N, the same in Linux's SCHED_BATCH class; "
        "see docs/operations.md, Bayesian asks on a busy node (env HYPERDIAL_SAMPLER_PRIORITY)",
    )
    parser.add_argument(
        "--lease-sweep-interval",
        type=_seconds(0.05, 3600.0, zero=True),
        default=_env("HYPERDIAL_LEASE_SWEEP_INTERVAL", "1"),
        metavar="SECONDS",
        help="seconds between two sweeps for expired leases (every replica sweeps; no leader); "
        "0: no sweep, leases then expire only when their study is asked or listed "
        "(env HYPERDIAL_LEASE_SWEEP_INTERVAL)",
    )
    admission = AdmissionLimits()
    parser.add_argument(
        "--max-list-calls",
        type=_whole(1, 10_000),
        default=_env("HYPERDIAL_MAX_LIST_CALLS", str(admission.replica)),
        metavar="N",
        help="most list calls (ListTrials, ListStudies, ListOptimalTrials) one replica serves "
        "at a time, every namespace together; asks and tells wait behind at most this many "
        "(see docs/operations.md, Load shedding) (env HYPERDIAL_MAX_LIST_CALLS)",
    )
    parser.add_argument(
        "--max-list-calls-per-namespace",
        type=_whole(1, 10_000),
        default=_env("HYPERDIAL_MAX_LIST_CALLS_PER_NAMESPACE", str(admission.tenant)),
        metavar="N",
        help="most list calls of one namespace (tenant) one replica serves at a time "
        "(env HYPERDIAL_MAX_LIST_CALLS_PER_NAMESPACE)",
    )
    parser.add_argument(
        "--list-queue",
        type=_whole(0, 100_000),
        default=_env("HYPERDIAL_LIST_QUEUE", str(admission.queue)),
        metavar="N",
        help="most list calls waiting for a slot, per namespace and replica-wide; one more is "
        "refused at once with RESOURCE_EXHAUSTED TOO_MANY_REQUESTS (env HYPERDIAL_LIST_QUEUE)",
    )
    parser.add_argument(
        "--list-wait",
        type=_seconds(0.0, 60.0),
        default=_env("HYPERDIAL_LIST_WAIT", f"{admission.wait:g}"),
        metavar="SECONDS",
        help="most seconds a list call waits for a slot before it is refused with "
        "RESOURCE_EXHAUSTED TOO_MANY_REQUESTS and a retry hint (env HYPERDIAL_LIST_WAIT)",
    )
    parser.add_argument(
        "--spec-cache-mib",
        type=_whole(1, 1024 * 1024),
        default=_env("HYPERDIAL_SPEC_CACHE_MIB", str(SPEC_CACHE_BYTES // _MIB)),
        metavar="MIB",
        help="most MiB of study specs one replica caches (estimated; at most 10000 specs "
        "either way) (env HYPERDIAL_SPEC_CACHE_MIB)",
    )
    parser.add_argument(
        "--namespace-spec-mib",
        type=_whole(0, 1024 * 1024),
        default=_env(
            "HYPERDIAL_NAMESPACE_SPEC_MIB", str(limits.DEFAULT_NAMESPACE_SPEC_BYTES // _MIB)
        ),
        metavar="MIB",
        help="most MiB of stored study specs one namespace holds; CreateStudy past it is "
        "RESOURCE_EXHAUSTED NAMESPACE_SPEC_BUDGET; 0: no budget (env HYPERDIAL_NAMESPACE_SPEC_MIB)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        default=_env("HYPERDIAL_TRACING", "").lower() not in ("", "0", "false", "no", "off"),
        help="trace calls with OpenTelemetry, continuing the callers' W3C trace context; "
        "exporters and sampling come from the standard OTEL_* variables (OTEL_TRACES_EXPORTER, "
        "otlp by default: pip install opentelemetry-exporter-otlp; "
        "OTEL_EXPORTER_OTLP_ENDPOINT); needs pip install 'hyperdial[tracing]'; see "
        "docs/operations.md, Tracing (env HYPERDIAL_TRACING=1)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("HYPERDIAL_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="lowest level logged; DEBUG adds one line per call (env HYPERDIAL_LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format",
        default=_env("HYPERDIAL_LOG_FORMAT", "text"),
        choices=list(logs.FORMATS),
        help="log lines for people (text) or one JSON object per line (json) "
        "(env HYPERDIAL_LOG_FORMAT)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hyperdial serve``."""
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format, sys.stderr)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        redis_url=args.redis,
        allow_evicting_redis=args.allow_evicting_redis,
        grace=args.grace,
        reflection=not args.no_reflection,
        metrics_port=args.metrics_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        tokens_file=args.tokens_file,
        lease_timeout=args.lease_timeout,
        request_id_ttl=args.request_id_ttl,
        lease_sweep_interval=args.lease_sweep_interval,
        sampler_processes=args.sampler_processes,
        sampler_priority=args.sampler_priority,
        admission=AdmissionLimits(
            replica=args.max_list_calls,
            tenant=args.max_list_calls_per_namespace,
            queue=args.list_queue,
            wait=args.list_wait,
        ),
        spec_cache_bytes=args.spec_cache_mib * _MIB,
        namespace_spec_bytes=args.namespace_spec_mib * _MIB,
        tracing=args.tracing,
        dashboard_port=args.dashboard_port,
        dashboard_token_file=args.dashboard_token_file,
    )

    def ready(running: RunningServer) -> None:
        # One machine-readable line on stdout so scripts and tests can find a --port 0 server.
        print(f"hyperdial {__version__} listening on {config.host}:{running.port}", flush=True)
        if running.metrics_endpoint is not None:
            port = running.metrics_endpoint.port
            print(f"metrics on http://{config.host}:{port}/metrics", flush=True)
        if running.dashboard is not None:
            print(f"dashboard on {running.dashboard.url}", flush=True)

    try:
        asyncio.run(serve(config, ready))
    except (OSError, ValueError) as e:
        print(f"hyperdial serve: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
