"""``hyperdial dashboard`` and ``hyperdial serve --dashboard-port`` as commands: their flags,
a service that does not answer, and a clean stop."""

from __future__ import annotations

import socket

import pytest

from hyperdial import cli
from tests.dashboard.helpers import DashboardProcess, http, wait_for
from tests.server_harness import ServerProcess

pytestmark = pytest.mark.timeout(300)


def test_the_commands_list_their_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dashboard", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--target", "--port", "--host", "--token-file", "--ca-cert", "--namespace"):
        assert flag in out, flag
    assert cli.main(["--help"]) == 0
    assert "dashboard" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--dashboard-port" in out and "--dashboard-token-file" in out


def test_a_service_that_does_not_answer_is_said_on_the_pages() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with DashboardProcess(["--target", f"127.0.0.1:{port}", "--timeout", "2"]) as dashboard:
        listing = http(dashboard.url + "/api/studies")
        assert listing.status == 200
        error = listing.json()["error"]
        assert error["code"] == "UNAVAILABLE" and f"127.0.0.1:{port}" in error["message"]
        page = http(dashboard.url + "/studies/anything")
        assert page.status == 503 and b"did not answer" in page.body
        assert http(dashboard.url + "/").status == 200  # the page itself shows the error


def test_serve_stops_the_dashboard_cleanly() -> None:
    replica = ServerProcess("", ["--dashboard-port", "0"])
    try:
        line = replica.next_line()
        assert line.startswith("dashboard on "), line
        url = line.split(" on ", 1)[1].strip().rstrip("/")
        assert wait_for(lambda: http(url + "/api/studies").status == 200, "the dashboard")
        code, log = replica.stop_and_read_log()
    finally:
        replica.close()
    assert code == 0, log
    assert "Traceback" not in log and "ERROR" not in log, log
    host, port = url.removeprefix("http://").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=5):
        pass
