"""Log lines of a real ``hyperdial serve``: text or JSON, one per notable event, request ids."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server import logs
from tests.e2e.protocol import float_param, spec
from tests.server_harness import ServerProcess

SPEC = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM)


def _calls(target: str) -> None:
    """Calls with each kind of request id: the request's field, the header, none, a bad call."""
    with grpc.insecure_channel(target) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        stub.CreateStudy(ts.CreateStudyRequest(study_id="s", spec=SPEC, request_id="rid-create"))
        stub.GetStudy(ts.GetStudyRequest(name="studies/s"), metadata=[("x-request-id", "hdr-get")])
        stub.ListStudies(ts.ListStudiesRequest())
        with pytest.raises(grpc.RpcError):
            stub.GetStudy(
                ts.GetStudyRequest(name="bad name"), metadata=[("x-request-id", "hdr-bad")]
            )
        # Both given: the request's own id wins (it is what links the retries of a request).
        stub.CreateStudy(
            ts.CreateStudyRequest(study_id="t", spec=SPEC, request_id="rid-both"),
            metadata=[("x-request-id", "hdr-both")],
        )


def _run(args: list[str] = (), env: dict[str, str] | None = None) -> str:  # type: ignore[assignment]
    server = ServerProcess(extra=list(args), env=env)
    try:
        _calls(server.target)
        code, log = server.stop_and_read_log()
    finally:
        server.terminate()
    assert code == 0
    return log


def test_json_lines_carry_request_ids_and_call_fields() -> None:
    log = _run(env={"HYPERDIAL_LOG_FORMAT": "json", "HYPERDIAL_LOG_LEVEL": "DEBUG"})
    entries: list[dict[str, Any]] = [json.loads(line) for line in log.splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    calls = {
        (e["method"], e.get("request_id")): e
        for e in entries
        if e.get("event") == "call" and e["service"] == "hyperdial.v1.TuningService"
    }
    create = calls["CreateStudy", "rid-create"]
    assert create["code"] == "OK" and create["level"] == "DEBUG"
    assert isinstance(create["duration_ms"], float) and create["peer"].startswith("ipv")
    assert calls["GetStudy", "hdr-get"]["code"] == "OK"
    bad = calls["GetStudy", "hdr-bad"]
    assert bad["code"] == "INVALID_ARGUMENT" and bad["level"] == "INFO"
    assert "'bad name'" in bad["message"]  # the status message, for the operator
    assert calls["CreateStudy", "rid-both"]["code"] == "OK"
    assert not any(rid == "hdr-both" for _, rid in calls)
    # A call without an id gets one made up, so that its lines can still be told apart.
    (listed,) = [rid for method, rid in calls if method == "ListStudies"]
    assert re.fullmatch(r"[0-9a-f]{16}", listed)
    # The handler's own line carries the id of its call.
    created = [e for e in entries if e["message"].startswith("created study s ")]
    assert [e["request_id"] for e in created] == ["rid-create"]
    # Lines outside calls have none.
    lifecycle = [e for e in entries if e["logger"] == "hyperdial.server"]
    # The address is the stdout line of `serve`; the log says what the address serves from.
    assert any(e["message"].startswith("store: memory") for e in lifecycle)
    assert lifecycle[-1]["message"] == "stopped"
    assert all("request_id" not in e for e in lifecycle)


def test_text_lines_at_the_default_level_show_notable_events_only() -> None:
    log = _run(["--log-format", "text"])
    lines = log.splitlines()
    line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) \S+ ")
    assert lines and all(line.match(x) for x in lines), lines
    assert any(
        "INFO hyperdial.service [req rid-create] created study s (RANDOM)" in x for x in lines
    )
    (bad,) = [x for x in lines if "INVALID_ARGUMENT" in x]
    assert "INFO hyperdial.calls [req hdr-bad] GetStudy INVALID_ARGUMENT in " in bad
    # Successful calls are not notable at INFO.
    assert not any(" OK in " in x for x in lines)
    assert "stopped" in lines[-1]


def test_debug_text_has_one_line_per_call() -> None:
    log = _run(["--log-level", "DEBUG"])
    calls = [x for x in log.splitlines() if "hyperdial.calls" in x and "TuningService" not in x]
    tuning = [x for x in calls if "Health" not in x and "Check" not in x]
    assert len(tuning) == 5
    assert "DEBUG hyperdial.calls [req hdr-get] GetStudy OK in " in tuning[1]
    # Library internals stay quiet even at DEBUG.
    assert not any(" grpc." in x or " asyncio " in x for x in log.splitlines())


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored after the test (``configure`` replaces its handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("grpc", "asyncio")}
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)


def test_configure_writes_the_chosen_format(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", out)
    token = logs.request_id.set("abc")
    try:
        logging.getLogger("hyperdial.test").info("hello %s", "there", extra={"study": "s"})
    finally:
        logs.request_id.reset(token)
    entry = json.loads(out.getvalue())
    assert entry["message"] == "hello there" and entry["request_id"] == "abc"
    assert entry["study"] == "s" and entry["level"] == "INFO"
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.configure("INFO", "xml")


def test_request_ids_are_cleaned_for_log_lines() -> None:
    assert logs.clean_request_id("a b\nc") == "a?b?c"
    assert len(logs.clean_request_id("x" * 1000)) == logs.MAX_REQUEST_ID
