"""The gRPC layer: handlers, validation, conversion and the error-to-status mapping."""

from hyperdial_server.service._servicer import DEFAULT_NAMESPACE, TuningServicer

__all__ = ["DEFAULT_NAMESPACE", "TuningServicer"]
