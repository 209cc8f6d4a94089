"""``python -m hyperdial_server.healthcheck``: asks a server's gRPC health service if it serves.

Exit status 0 when the answer is SERVING (the server runs and its store answers), 1 for any
other answer or no answer. Made for container health checks (the image's ``HEALTHCHECK``):
it needs neither grpcurl nor a shell, and it loads only grpcio, not the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def build_parser() -> argparse.ArgumentParser:
    """The probe's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m hyperdial_server.healthcheck",
        description="Exit 0 if the hyperdial server at TARGET reports SERVING, else 1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    port = os.environ.get("HYPERDIAL_PORT", "50051")
    parser.add_argument(
        "--target",
        default=os.environ.get("HYPERDIAL_HEALTH_TARGET", f"127.0.0.1:{port}"),
        help="host:port of the server (env HYPERDIAL_HEALTH_TARGET; else 127.0.0.1 and "
        "HYPERDIAL_PORT)",
    )
    parser.add_argument(
        "--service",
        default="hyperdial.v1.TuningService",
        help='service to ask about; "" for the server as a whole',
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    return parser


def check(target: str, service: str = "hyperdial.v1.TuningService", timeout: float = 3.0) -> str:
    """The health status name a server reports (``"SERVING"``, ``"NOT_SERVING"``, ...).

    Raises:
        grpc.RpcError: The server did not answer.
    """
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status = check(args.target, args.service, args.timeout)
    except grpc.RpcError as e:
        why = f"{e.code().name}: {e.details()}" if isinstance(e, grpc.Call) else str(e)
        print(f"{args.target}: no answer ({why})")
        return 1
    print(f"{args.target}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
