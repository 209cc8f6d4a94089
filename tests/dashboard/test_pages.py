"""The dashboard's pages in a real browser (headless Chromium), served beside a real replica on
a real Redis (``hyperdial serve --dashboard-port``), over studies seeded with the real client.

Every page loads without a console error; each chart draws as many points as the service holds
trials for it (read from the plotly graph div's data); the filters change the table; a trial
told to the service shows up without a reload; every edge case says what it is. A screenshot of
each page goes to the artefacts directory (``HYPERDIAL_TEST_ARTEFACTS``, else a temporary one).
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import hyperdial as hd
from tests.dashboard.browser import Browser
from tests.dashboard.conftest import BIG_TRIALS, STUDIES, Site

# Seeding and a cold browser on a busy machine: more than the suite's default.
pytestmark = pytest.mark.timeout(600)


def _open(browser: Browser, site: Site, study: str, tab: str) -> None:
    browser.open(f"{site.url}/studies/{site.study(study)}#{tab}")


def _trace(traces: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    for t in traces or []:
        if t["name"] == name:
            return t
    return None


def _xs(traces: list[dict[str, Any]], name: str) -> list[Any]:
    """The x values of the trace ``name`` (none when it is absent)."""
    trace = _trace(traces, name)
    return list(trace["x"]) if trace is not None else []


def _plot_with(browser: Browser, div: str, check: Any, what: str) -> list[dict[str, Any]]:
    """The traces of ``div`` once ``check(traces)`` holds."""

    def ready() -> list[dict[str, Any]] | None:
        traces = browser.plot(div)
        return traces if traces is not None and check(traces) else None

    result: list[dict[str, Any]] = browser.wait(ready, what)
    return result


def _message(browser: Browser, div: str, contains: str) -> str:
    def shown() -> str | None:
        text = browser.js(
            "const d = document.getElementById(arguments[0]);"
            "return d && d.dataset.empty === 'true' ? d.textContent : null;",
            div,
        )
        return text if text and contains in text else None

    text: str = browser.wait(shown, f"{div} to say {contains!r}")
    return text


def _tab(browser: Browser, name: str) -> None:
    browser.driver.find_element(By.CSS_SELECTOR, f'#tabs [data-tab="{name}"]').click()


def _table_rows(browser: Browser, table: str) -> list[list[str]]:
    rows: list[list[str]] = browser.js(
        "return Array.from(document.querySelectorAll(`#${arguments[0]} tbody tr`))"
        ".map((tr) => Array.from(tr.cells).map((td) => td.textContent));",
        table,
    )
    return rows


def _clean(browser: Browser) -> None:
    assert browser.errors() == []


# -- the Studies page --------------------------------------------------------------------------


def test_studies_page_lists_sorts_and_filters(browser: Browser, site: Site) -> None:
    browser.open(site.url + "/")
    rows = browser.wait(
        lambda: (
            len(_table_rows(browser, "studies")) == len(STUDIES) and _table_rows(browser, "studies")
        ),
        "every seeded study in the table",
    )
    by_id = {r[0]: r for r in rows}
    main = by_id[site.study("main")]
    # Study, Namespace, Algorithm, Objectives, Waiting, Running, Completed, Failed, Stopped,
    # Infeasible, Best, Last activity
    assert main[1] == "default" and main[2] == "random" and main[3] == "loss (min)"
    states = ["WAITING", "RUNNING", "COMPLETED", "FAILED", "STOPPED", "INFEASIBLE"]
    for name in ("main", "constrained"):
        for column, state in enumerate(states, start=4):
            shown = int(by_id[site.study(name)][column].replace(",", ""))
            assert shown == site.seeded.state_count(site.study(name), state), (name, state)
    assert int(by_id[site.study("constrained")][9]) > 0  # its INFEASIBLE trials
    best = min(t.value for t in site.seeded.completed(site.study("main")) if t.value is not None)
    assert float(main[10]) == pytest.approx(best, rel=1e-3)
    assert by_id[site.study("multi2")][10].startswith("front of ")
    assert by_id[site.study("empty")][10] == "—"
    browser.screenshot("studies")

    browser.driver.find_element(By.CSS_SELECTOR, '#studies th[data-key="id"]').click()
    ids = [r[0] for r in _table_rows(browser, "studies")]
    assert ids == sorted(ids)
    browser.driver.find_element(By.ID, "filter").send_keys(site.study("multi"))
    browser.wait(
        lambda: len(_table_rows(browser, "studies")) == 2, "the filter to keep two studies"
    )
    assert f"2 of {len(STUDIES)} studies" in browser.text("summary")
    _clean(browser)


# -- a study's charts ----------------------------------------------------------------------------


def test_history_and_importance(browser: Browser, site: Site) -> None:
    study = site.study("main")
    trials = site.seeded.studies[study]
    completed = site.seeded.completed(study)
    stopped = [t for t in trials if t.state is hd.TrialState.STOPPED and t.values]
    _open(browser, site, "main", "history")
    traces = _plot_with(
        browser,
        "history-chart",
        lambda ts: len(_xs(ts, "Completed")) == len(completed),
        "the history to draw every completed trial",
    )
    done = _trace(traces, "Completed")
    assert done is not None and sorted(done["x"]) == sorted(t.number for t in completed)
    best = _trace(traces, "Best so far")
    assert best is not None and best["y"] == sorted(best["y"], reverse=True)  # minimised
    if stopped:
        marked = _trace(traces, "Stopped (last report)")
        assert marked is not None and len(marked["x"]) == len(stopped)
    browser.screenshot("study-history")

    _tab(browser, "importance")
    bars = _plot_with(browser, "importance-chart", lambda ts: True, "the importance bars")
    assert sorted(bars[0]["y"]) == ["layers", "lr", "momentum", "optimizer"]
    assert "over" in browser.text("importance-note")
    browser.screenshot("study-importance")
    _clean(browser)


def test_parameter_charts(browser: Browser, site: Site) -> None:
    study = site.study("main")
    completed = site.seeded.completed(study)
    with_momentum = [t for t in completed if "momentum" in t.params]
    _open(browser, site, "main", "parameters")
    traces = _plot_with(
        browser,
        "parcoords-chart",
        lambda ts: len(ts[0]["dimensions"][-1]["values"]) == len(completed),
        "parallel coordinates over every completed trial",
    )
    labels = [d["label"] for d in traces[0]["dimensions"]]
    assert labels == ["lr (log10)", "layers", "optimizer", "momentum", "loss"]
    slice_ = _plot_with(
        browser, "slice-chart", lambda ts: len(ts[0]["x"]) == len(completed), "the slice of lr"
    )
    assert len(slice_[0]["y"]) == len(completed)
    Select(browser.driver.find_element(By.ID, "slice-param")).select_by_visible_text("momentum")
    _plot_with(
        browser,
        "slice-chart",
        lambda ts: len(ts[0]["x"]) == len(with_momentum),
        "the slice of the conditional momentum",
    )
    assert f"active in {len(with_momentum)} of {len(completed)}" in browser.text("slice-note")
    contour = _plot_with(
        browser,
        "contour-chart",
        lambda ts: len(_xs(ts, "trials")) == len(completed),
        "the contour of lr x layers",
    )
    assert [t["type"] for t in contour] == ["contour", "scatter"]
    Select(browser.driver.find_element(By.ID, "contour-x")).select_by_visible_text("optimizer")
    _plot_with(
        browser,
        "contour-chart",
        lambda ts: len(xs := _xs(ts, "trials")) == len(completed) and set(xs) <= {"adam", "sgd"},
        "the contour of optimizer (categorical) x layers",
    )
    Select(browser.driver.find_element(By.ID, "contour-x")).select_by_visible_text("lr")
    Select(browser.driver.find_element(By.ID, "contour-y")).select_by_visible_text("momentum")
    _plot_with(
        browser,
        "contour-chart",
        lambda ts: len(_xs(ts, "trials")) == len(with_momentum),
        "the contour of lr x momentum",
    )
    browser.screenshot("study-parameters")
    _clean(browser)


def test_learning_curves_mark_stopped_trials(browser: Browser, site: Site) -> None:
    study = site.study("main")
    trials = site.seeded.studies[study]
    reported = [t for t in trials if t.measurement_count]
    stopped = [t for t in reported if t.state is hd.TrialState.STOPPED]
    assert reported
    _open(browser, site, "main", "curves")
    traces = _plot_with(
        browser,
        "curves-chart",
        lambda ts: sum(t["mode"] == "lines" for t in ts) == len(reported),
        "one learning curve per trial that reported",
    )
    marks = _trace(traces, "Stopped here")
    assert len(marks["x"] if marks else []) == len(stopped)
    browser.screenshot("study-curves")
    _clean(browser)


def test_trials_table_filters(browser: Browser, site: Site) -> None:
    study = site.study("main")
    trials = site.seeded.studies[study]
    failed = [t for t in trials if t.state is hd.TrialState.FAILED]
    _open(browser, site, "main", "trials")
    browser.wait(lambda: len(_table_rows(browser, "trials-table")) == len(trials), "every trial")
    assert browser.text("trial-summary") == f"{len(trials)} of {len(trials)} trials"
    Select(browser.driver.find_element(By.ID, "trial-state")).select_by_visible_text("FAILED")
    rows = browser.wait(
        lambda: (
            len(_table_rows(browser, "trials-table")) == len(failed)
            and _table_rows(browser, "trials-table")
        ),
        "only the failed trials",
    )
    assert {r[1] for r in rows} == {"FAILED"}
    Select(browser.driver.find_element(By.ID, "trial-state")).select_by_visible_text("every state")
    browser.driver.find_element(By.ID, "trial-filter").send_keys("worker-running-1")
    rows = browser.wait(
        lambda: (
            len(_table_rows(browser, "trials-table")) == 1 and _table_rows(browser, "trials-table")
        ),
        "the text filter to keep one trial",
    )
    assert rows[0][1] == "RUNNING"
    browser.screenshot("study-trials")
    _clean(browser)


def test_running_work_and_expired_leases(browser: Browser, site: Site) -> None:
    study = site.study("main")
    running = [t for t in site.seeded.studies[study] if t.state is hd.TrialState.RUNNING]
    assert len(running) == 2
    _open(browser, site, "main", "running")
    rows = browser.wait(
        lambda: (
            len(_table_rows(browser, "running-table")) == 2
            and _table_rows(browser, "running-table")
        ),
        "the two running trials",
    )
    assert {r[1] for r in rows} == {"worker-running-1", "worker-running-2"}
    for row in rows:
        assert row[3].endswith("s") and "in " in row[4]  # since the last heartbeat; deadline
    browser.screenshot("study-running")

    leases = site.seeded.studies[site.study("leases")]
    expired = [t for t in leases if t.state is hd.TrialState.FAILED]
    _open(browser, site, "leases", "running")
    rows = browser.wait(
        lambda: (
            len(_table_rows(browser, "expired-table")) >= len(expired)
            and _table_rows(browser, "expired-table")
        ),
        "the expired lease",
    )
    first = next(r for r in rows if r[1] == "vanished")
    assert first[3].startswith("#") and "lease expired" in first[4]
    browser.screenshot("study-expired-leases")
    _clean(browser)


def test_a_new_trial_appears_without_a_reload(browser: Browser, site: Site) -> None:
    _open(browser, site, "live", "trials")
    browser.wait(lambda: browser.text("trial-summary") == "0 of 0 trials", "the empty table")
    browser.js("window.__same_page = true;")
    with hd.Client(site.seeded.target, renew_leases=False) as client:
        study = client.get_study(site.study("live"))
        (trial,) = study.ask(client_id="live-worker")
        study.tell(trial, 0.25)
    rows = browser.wait(
        lambda: (
            len(_table_rows(browser, "trials-table")) == 1 and _table_rows(browser, "trials-table")
        ),
        "the told trial to show up",
    )
    assert rows[0][1] == "COMPLETED" and rows[0][2] == "0.25"
    assert browser.js("return window.__same_page === true;")
    _tab(browser, "history")
    _plot_with(
        browser,
        "history-chart",
        lambda ts: _xs(ts, "Completed") == [trial.number],
        "the new trial in the history",
    )
    _clean(browser)


# -- edge cases ----------------------------------------------------------------------------------


def test_a_study_without_trials(browser: Browser, site: Site) -> None:
    _open(browser, site, "empty", "history")
    _message(browser, "history-chart", "No trials yet.")
    _tab(browser, "parameters")
    _message(browser, "parcoords-chart", "No trials yet.")
    _message(browser, "contour-chart", "one")  # a single parameter: no contour
    _tab(browser, "importance")
    _message(browser, "importance-chart", "Not enough completed trials")
    _tab(browser, "curves")
    _message(browser, "curves-chart", "No trial reported")
    _tab(browser, "running")
    browser.wait(lambda: browser.text("running-note") == "No trial is running.", "the note")
    browser.screenshot("edge-empty")
    _clean(browser)


def test_a_study_of_failed_trials_only(browser: Browser, site: Site) -> None:
    _open(browser, site, "failed", "history")
    _message(browser, "history-chart", "(3 failed)")
    _tab(browser, "importance")
    _message(browser, "importance-chart", "Not enough completed trials")
    _tab(browser, "trials")
    browser.wait(lambda: browser.text("trial-summary") == "3 of 3 trials", "three trials")
    assert "crash 0" in " ".join(r[-1] for r in _table_rows(browser, "trials-table"))
    browser.screenshot("edge-failed")
    _clean(browser)


def test_fifty_parameters_mostly_absent(browser: Browser, site: Site) -> None:
    study = site.study("wide")
    completed = site.seeded.completed(study)
    active = {name for t in completed for name in t.params}
    rare = [t for t in completed if "rare0" in t.params]
    assert len(rare) < len(completed) / 2  # absent in most trials
    _open(browser, site, "wide", "parameters")
    traces = _plot_with(
        browser,
        "parcoords-chart",
        lambda ts: len(ts[0]["dimensions"][-1]["values"]) == len(completed),
        "parallel coordinates of the wide study",
    )
    assert len(traces[0]["dimensions"]) == len(active) + 1
    assert "absent" in browser.text("parcoords-note")
    browser.screenshot("edge-wide-parameters")
    _tab(browser, "trials")
    browser.wait(lambda: len(_table_rows(browser, "trials-table")) == len(completed), "the rows")
    headers = browser.js("return document.querySelectorAll('#trials-table th').length")
    assert headers == 50 + 1 + 6  # parameters, objective; #, state, duration, client, lease, notes
    browser.screenshot("edge-wide-trials")
    _clean(browser)


@pytest.mark.parametrize("objectives", [2, 3])
def test_pareto_front(browser: Browser, site: Site, objectives: int) -> None:
    name = f"multi{objectives}"
    with hd.Client(site.seeded.target, renew_leases=False) as client:
        front = {t.number for t in client.get_study(site.study(name)).best_trials}
    completed = site.seeded.completed(site.study(name))
    _open(browser, site, name, "pareto")
    traces = _plot_with(
        browser,
        "pareto-chart",
        lambda ts: len(_xs(ts, "Pareto optimal")) == len(front),
        "the Pareto front highlighted",
    )
    assert {t["type"] for t in traces} == {"scatter3d" if objectives == 3 else "scatter"}
    others = _trace(traces, "Other trials")
    assert others is not None and len(others["x"]) == len(completed) - len(front)
    browser.screenshot(f"edge-pareto-{objectives}")
    _tab(browser, "history")
    Select(browser.driver.find_element(By.ID, "objective")).select_by_visible_text("speed")
    speeds = sorted(t.values["speed"] for t in completed if t.values)
    _plot_with(
        browser,
        "history-chart",
        lambda ts: sorted((_trace(ts, "Completed") or {"y": []})["y"]) == pytest.approx(speeds),
        "the history of the second objective",
    )
    _clean(browser)


def test_an_unknown_study_is_a_404_page(browser: Browser, site: Site) -> None:
    url = f"{site.url}/studies/{site.study('no-such-study')}"
    browser.open(url)
    browser.wait(lambda: "Not found" in browser.text("not-found"), "the 404 page")
    assert site.study("no-such-study") in browser.text("not-found")
    browser.screenshot("edge-unknown-study")
    # Chromium logs the page's own 404 status as a network error; nothing else may appear.
    assert browser.errors(lambda e: e["source"] == "network" and url in e["message"]) == []


def test_a_big_study_draws_with_webgl_and_samples(browser: Browser, site: Site) -> None:
    with hd.Client(site.seeded.target, renew_leases=False) as client:
        # BIG_TRIALS, or one more when the API tests ran first in this session.
        completed = client.get_study(site.study("big")).state_counts["COMPLETED"]
    assert completed >= BIG_TRIALS
    _open(browser, site, "big", "history")
    traces = _plot_with(
        browser,
        "history-chart",
        lambda ts: len(_xs(ts, "Completed")) == completed,
        "every trial of the big study in the history",
    )
    assert _trace(traces, "Completed")["type"] == "scattergl"  # type: ignore[index]
    assert "WebGL" in browser.text("history-note")
    _tab(browser, "parameters")
    traces = _plot_with(browser, "parcoords-chart", lambda ts: True, "parallel coordinates")
    assert 1900 <= len(traces[0]["dimensions"][0]["values"]) <= 2000 + 5
    assert f"of {completed:,} completed trials" in browser.text("parcoords-note")
    browser.screenshot("study-big-parameters")
    _clean(browser)


# -- outcome constraints and infeasible trials -----------------------------------------------


def _constrained(site: Site) -> tuple[list[hd.Trial], list[hd.Trial], list[hd.Trial]]:
    """The constrained study's completed trials within the constraint, those that break it,
    and its INFEASIBLE ones (each kind present: the seed makes them)."""
    trials = site.seeded.studies[site.study("constrained")]
    completed = [t for t in trials if t.state is hd.TrialState.COMPLETED]
    feasible = [t for t in completed if not t.infeasible]
    broken = [t for t in completed if t.infeasible]
    dead = [t for t in trials if t.state is hd.TrialState.INFEASIBLE]
    assert feasible and broken and dead
    return feasible, broken, dead


def test_constraints_in_the_header_counts_and_history(browser: Browser, site: Site) -> None:
    feasible, broken, dead = _constrained(site)
    _open(browser, site, "constrained", "history")
    traces = _plot_with(
        browser,
        "history-chart",
        lambda ts: len(_xs(ts, "Completed")) == len(feasible),
        "the history of the feasible trials",
    )
    assert sorted(_xs(traces, "Completed")) == sorted(t.number for t in feasible)
    apart = _trace(traces, "Infeasible (breaks a constraint)")
    assert apart is not None and sorted(apart["x"]) == sorted(t.number for t in broken)
    # The best-so-far line follows the feasible trials only, though broken ones err less.
    best = _trace(traces, "Best so far")
    assert best is not None and set(best["x"]) <= {t.number for t in feasible}
    lowest = min((t.values or {})["error"] for t in feasible)
    assert best["y"][-1] == pytest.approx(lowest)
    assert min((t.values or {})["error"] for t in broken) < lowest  # they would have won
    note = browser.text("history-note")
    assert f"{len(broken)} completed trial(s) break a constraint" in note
    assert f"{len(dead)} infeasible trial(s) gave no value" in note
    assert "constraints: latency_ms <= 20" in browser.text("spec")
    chips = browser.js(
        "return Object.fromEntries(Array.from(document.querySelectorAll('#counts [data-count]'))"
        ".map((c) => [c.dataset.count, c.querySelector('b').textContent]));"
    )
    assert chips["INFEASIBLE"] == str(len(dead)) and chips["BROKEN"] == str(len(broken))
    assert chips["COMPLETED"] == str(len(feasible) + len(broken))
    browser.screenshot("study-constraints-history")
    _clean(browser)


def test_the_pareto_front_holds_feasible_trials_only(browser: Browser, site: Site) -> None:
    feasible, broken, _ = _constrained(site)
    with hd.Client(site.seeded.target, renew_leases=False) as client:
        front = {t.number for t in client.get_study(site.study("constrained")).best_trials}
    assert front <= {t.number for t in feasible}
    _open(browser, site, "constrained", "pareto")
    traces = _plot_with(
        browser,
        "pareto-chart",
        lambda ts: len(_xs(ts, "Pareto optimal")) == len(front),
        "the feasible Pareto front",
    )
    # Points, drawn at their values: the feasible trials off the front.
    assert len(_xs(traces, "Other trials")) == len(feasible) - len(front)
    greyed = _trace(traces, "Infeasible (breaks a constraint)")
    assert greyed is not None and len(greyed["x"]) == len(broken)
    assert "never on the front" in browser.text("pareto-note")
    browser.screenshot("study-constraints-pareto")
    _clean(browser)


def test_the_trials_table_shows_and_filters_feasibility(browser: Browser, site: Site) -> None:
    feasible, broken, dead = _constrained(site)
    trials = site.seeded.studies[site.study("constrained")]
    _open(browser, site, "constrained", "trials")
    browser.wait(lambda: len(_table_rows(browser, "trials-table")) == len(trials), "every trial")
    headers = browser.js(
        "return Array.from(document.querySelectorAll('#trials-table th'))"
        ".map((th) => th.textContent);"
    )
    # #, State, Feasible, the objectives, the constraint's value, the parameters, ...
    assert headers[:6] == ["#", "State", "Feasible", "error", "speed", "latency_ms"]
    rows = {int(r[0]): r for r in _table_rows(browser, "trials-table")}
    for t in broken:
        row = rows[t.number]
        assert row[2] == "infeasible" and t.infeasibility_reason in row[-1]
        assert float(row[5]) == pytest.approx((t.constraint_values or {})["latency_ms"], rel=1e-3)
    for t in dead:
        assert rows[t.number][1] == "INFEASIBLE" and rows[t.number][2] == "infeasible"
        assert rows[t.number][-1].startswith("out of memory")
    assert all(rows[t.number][2] == "feasible" for t in feasible)

    picker = Select(browser.driver.find_element(By.ID, "trial-feasibility"))
    picker.select_by_visible_text("infeasible")
    shown = browser.wait(
        lambda: (
            len(_table_rows(browser, "trials-table")) == len(broken) + len(dead)
            and _table_rows(browser, "trials-table")
        ),
        "only the infeasible trials",
    )
    assert {int(r[0]) for r in shown} == {t.number for t in broken + dead}
    Select(browser.driver.find_element(By.ID, "trial-state")).select_by_visible_text("INFEASIBLE")
    browser.wait(
        lambda: len(_table_rows(browser, "trials-table")) == len(dead), "the INFEASIBLE trials"
    )
    Select(browser.driver.find_element(By.ID, "trial-state")).select_by_visible_text("every state")
    picker.select_by_visible_text("feasible")
    browser.wait(
        lambda: len(_table_rows(browser, "trials-table")) == len(feasible), "the feasible trials"
    )
    picker.select_by_visible_text("feasible or not")
    browser.driver.find_element(By.ID, "trial-filter").send_keys("out of memory")
    browser.wait(lambda: len(_table_rows(browser, "trials-table")) == len(dead), "the text filter")
    browser.screenshot("study-constraints-trials")
    _clean(browser)
