"""hyperdial server: the gRPC tuning service, its stores and samplers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hyperdial")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
