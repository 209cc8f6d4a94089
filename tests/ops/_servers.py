"""Servers for the operability tests: in-process with any configuration, or a real process."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

from hyperdial_server.server import RunningServer, ServerConfig
from tests.server_harness import InProcessServer, ServerProcess


class ConfiguredServer(InProcessServer):
    """:class:`InProcessServer` with a whole :class:`ServerConfig` (port 0 on loopback)."""

    def __init__(self, **settings: object) -> None:
        config = ServerConfig(host="127.0.0.1", port=0, grace=1.0)
        for key, value in settings.items():
            setattr(config, key, value)
        super().__init__(config.redis_url)
        self._config = config

    def start(self) -> ConfiguredServer:
        super().start()
        return self

    @property
    def running(self) -> RunningServer:
        assert self._running is not None
        return self._running

    @property
    def metrics_url(self) -> str:
        endpoint = self.running.metrics_endpoint
        assert endpoint is not None
        return f"http://127.0.0.1:{endpoint.port}/metrics"


class Process(ServerProcess):
    """``python -m hyperdial_server`` with extra arguments and environment variables.

    Args:
        args: Flags after ``--port 0 --grace 2``.
        env: Variables added to this process's environment.
    """

    def __init__(self, args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            super().__init__(extra=args)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def next_line(self) -> str:
        """The next line the server printed on stdout."""
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def stop_and_read_log(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM, waits for the exit; returns the exit code and everything logged. What is
        left of the process group then is killed."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.reap_group()
        return code, self.read_log()

    def read_log(self) -> str:
        """Everything logged so far."""
        self.log.flush()
        self.log.seek(0)
        text = self.log.read()
        self.log.seek(0, os.SEEK_END)
        return text


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a ``/metrics`` page: ``(name, sorted labels) -> value``."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(
    samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 when absent (a counter never incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
