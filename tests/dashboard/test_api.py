"""The dashboard's HTTP API, without a browser: live updates stay cheap for the service (a poll
with nothing new is a 304, a change brings only the changed trials, many polls cost the service
one read), it only reads, and an unknown study is a 404."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

import hyperdial as hd
from tests.dashboard.conftest import BIG_TRIALS, Site
from tests.dashboard.helpers import http, wait_for
from tests.server_harness import sample, scrape

pytestmark = pytest.mark.timeout(600)

VENDOR = Path(__file__).resolve().parents[2] / "client/hyperdial/dashboard/static/vendor"


def _trials(site: Site, study: str, since: int = 0, epoch: str = "", etag: str = "") -> Any:
    headers = {"If-None-Match": etag} if etag else {}
    return http(
        f"{site.url}/api/studies/{site.study(study)}/trials?since={since}&epoch={epoch}",
        headers=headers,
    )


def _list_calls(site: Site, method: str) -> float:
    return sample(
        scrape(site.metrics_url),
        "hyperdial_grpc_server_handled_total",
        grpc_service="hyperdial.v1.TuningService",
        grpc_method=method,
        grpc_code="OK",
    )


def test_a_poll_brings_only_what_changed(site: Site) -> None:
    first = _trials(site, "big")
    assert first.status == 200 and first.headers["cache-control"] == "no-cache"
    data = first.json()
    assert data["reset"] and len(data["trials"]) == BIG_TRIALS
    fields = data["study"]["trial_fields"]
    assert fields[:4] == ["number", "state", "values", "params"]
    assert all(isinstance(row, list) and len(row) == len(fields) for row in data["trials"])
    etag, revision, epoch = first.headers["etag"], data["revision"], data["epoch"]

    # Nothing changed: 304, no body.
    again = wait_for(
        lambda: (a := _trials(site, "big", revision, epoch, etag)).status == 304 and a,
        "a 304 while nothing changes",
    )
    assert again.body == b""

    with hd.Client(site.seeded.target, renew_leases=False) as client:
        trial = client.get_study(site.study("big")).add_trial({"a": 0.5, "b": 0.5, "c": 3}, 0.125)

    def changed() -> Any:
        answer = _trials(site, "big", revision, epoch, etag)
        return answer.status == 200 and answer

    delta = wait_for(changed, "the new trial").json()
    assert not delta["reset"] and [row[0] for row in delta["trials"]] == [trial.number]
    assert delta["revision"] > revision and delta["counts"]["COMPLETED"] == BIG_TRIALS + 1

    # Rows of another copy (a restarted dashboard): everything again.
    other = _trials(site, "big", revision, "another-epoch").json()
    assert other["reset"] and len(other["trials"]) == BIG_TRIALS + 1


def test_many_polls_cost_the_service_one_read(site: Site) -> None:
    study = "main"
    _trials(site, study)  # the copy exists and is read
    before = _list_calls(site, "ListTrials")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _trials(site, study).status, range(40)))
    elapsed = time.monotonic() - started
    after = _list_calls(site, "ListTrials")
    assert answers == [200] * 40
    # One read per second at most (the dashboard's least interval), however many polls: 40
    # polls cost the service a read per second they took, not 40.
    assert after - before <= math.ceil(elapsed) + 1, (before, after, elapsed)


def test_the_studies_list_is_cached_with_an_etag(site: Site) -> None:
    first = http(site.url + "/api/studies")
    assert first.status == 200
    ids = {s["id"] for s in first.json()["studies"]}
    assert {site.study("main"), site.study("empty")} <= ids
    again = wait_for(
        lambda: (
            (
                a := http(
                    site.url + "/api/studies", headers={"If-None-Match": first.headers["etag"]}
                )
            ).status
            == 304
            and a
        ),
        "the list to answer 304",
    )
    assert again.body == b""


def test_the_dashboard_only_reads(site: Site) -> None:
    paths = [
        "/",
        "/api/studies",
        f"/studies/{site.study('main')}",
        f"/api/studies/{site.study('main')}/trials",
        f"/api/studies/{site.study('main')}/curves",
        f"/api/studies/{site.study('main')}/importance",
    ]
    for path in paths:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert http(site.url + path, method=method).status == 405, (method, path)
    with hd.Client(site.seeded.target, renew_leases=False) as client:
        assert client.get_study(site.study("main")).trial_count == len(
            site.seeded.studies[site.study("main")]
        )


def test_unknown_studies_and_paths_are_404(site: Site) -> None:
    for path in (
        f"/studies/{site.study('nope')}",
        "/studies/..%2F..%2Fetc",
        "/studies/bad%20id",
        "/no-such-page",
    ):
        answer = http(site.url + path)
        assert answer.status == 404, path
        assert b"Not found" in answer.body and answer.headers["content-type"].startswith(
            "text/html"
        )
    api = http(f"{site.url}/api/studies/{site.study('nope')}/trials")
    assert api.status == 404 and api.json()["error"]["reason"] == "STUDY_NOT_FOUND"


def test_importance_says_not_enough_trials(site: Site) -> None:
    answer = http(f"{site.url}/api/studies/{site.study('failed')}/importance")
    assert answer.status == 200
    assert answer.json()["error"]["reason"] == "NOT_ENOUGH_TRIALS"


def test_assets_come_from_the_package(site: Site) -> None:
    record = json.loads((VENDOR / "VENDOR.json").read_text())
    plotly = http(
        f"{site.url}/static/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"}
    )
    assert plotly.status == 200
    assert hashlib.sha256(plotly.body).hexdigest() == record["sha256"]
    page = http(site.url + "/")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert http(site.url + "/healthz").body == b"ok"
