"""The gRPC layer: handlers, validation, conversion and the error-to-status mapping.

The names below are the layer's public face: the rest of the server (``server.py``,
``cli.py``, the package root) imports them from here, never from the private modules, so that
those can be split or merged freely (``tests/test_layers.py`` checks it).
"""

from hyperdial_server.samplers._worker import DEFAULT_SAMPLER_PRIORITY, SamplerPriority
from hyperdial_server.service._admission import AdmissionLimits
from hyperdial_server.service._auth import AuthInterceptor
from hyperdial_server.service._call_spans import TracingInterceptor
from hyperdial_server.service._compute import DEFAULT_SAMPLER_PROCESSES, SamplerWorkers
from hyperdial_server.service._health import HealthServicer
from hyperdial_server.service._metrics import (
    STORE_UNAVAILABLE,
    CallInterceptor,
    Metrics,
    MetricsEndpoint,
)
from hyperdial_server.service._registration import add_tuning_servicer
from hyperdial_server.service._servicer import (
    DEFAULT_NAMESPACE,
    SPEC_CACHE_BYTES,
    TuningServicer,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_SAMPLER_PRIORITY",
    "DEFAULT_SAMPLER_PROCESSES",
    "SPEC_CACHE_BYTES",
    "STORE_UNAVAILABLE",
    "AdmissionLimits",
    "AuthInterceptor",
    "CallInterceptor",
    "HealthServicer",
    "Metrics",
    "MetricsEndpoint",
    "SamplerPriority",
    "SamplerWorkers",
    "TracingInterceptor",
    "TuningServicer",
    "add_tuning_servicer",
]
