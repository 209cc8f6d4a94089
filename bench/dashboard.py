"""The web dashboard on big studies: how soon a study page of 1,000 to 100,000 trials paints and
completes its charts in a real browser, what it transfers, what a poll costs, and how much
CPU and memory the dashboard spends.

One invocation starts a ``redis-server``, a replica on it (``python -m hyperdial_server --redis
URL --port 0``), and imports completed trials with ``CreateTrial`` (the asyncio client, many
calls in flight): first ``--studies`` small studies, whose Studies page it measures while they
are the only studies; then one study of each ``--sizes`` (one objective, five parameters of
every kind, one of them conditional) and one of each ``--multi`` (two objectives). For each
study it starts ``python -m hyperdial dashboard --target REPLICA --port 0`` and loads the
study's page in headless Chromium (Debian's ``chromium`` through Debian's ``chromedriver``,
never Selenium Manager; WebGL on the CPU with SwiftShader, as the dashboard's tests draw),
each load in a new tab once the previous one is closed and the browser rested
(:data:`SETTLE`):

* **cold**: the first load after the dashboard started (its copy of the study is read from
  the service then), ``--cold`` starts; **first visit**: ``--reps`` loads of each view (History,
  Parameters, Trials, Pareto front) with the browser's cache emptied; **visit again**: the
  History ``--reps`` times with the browser's cache kept;
* first contentful paint; when the page asked for ``/api/studies/ID/trials?since=0``, the
  dashboard's time to its first byte, when it was received (resource timing); when the view
  held all its points (the History's *Completed* trace every completed trial; the Parameters
  tab its three charts; the Trials tab its first 100 rows; the Pareto front every trial),
  watched every 10 ms by a script added before the page's own; the longest main-thread task
  (``longtask`` entries) until then; the bytes transferred; the JS heap;
* the longest main-thread task of the open page when it draws one new trial;
* from Python: the whole study's answer, gzip-compressed and plain (wall time and the
  dashboard's CPU), and how long gzip takes on it at a few levels; polls as the page sends them
  (``since``, ``epoch``, ``If-None-Match``) with nothing new (``304``) and after one new trial,
  each after the dashboard may read the service again (:data:`POLL_GAP`, :data:`CHANGE_GAP`);
* the CPU seconds of the dashboard and the replica during a cold load (``/proc/PID/stat``),
  the dashboard's resident memory (``/proc/PID/status`` ``VmRSS``, ``VmHWM``), and how long
  ``ListOptimalTrials`` takes on the study.

The Studies page is loaded the same way (cold, first visit, visit again): first paint, and when
its table held every study. Every process runs in a process group of its own, killed on every
path. Run it from the repository root (``bench/README.md``)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.dashboard
    .venv/bin/python -m bench.dashboard --sizes 1000,10000 --multi "" --studies 0 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import hyperdial as hd

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Seconds a page gets to complete its chart, a process to print its first line.
WAIT = 240.0
#: How often the added script looks at the charts, in milliseconds.
WATCH_MS = 10
#: Seconds between two polls with nothing new: the dashboard reads the service at most once a
#: second, so each of these polls reads it (a ``ListTrials`` of the trials changed since).
POLL_GAP = 1.2
#: ... and between two polls after a new trial: past the 3 s after which it reads the optimal
#: trials again too, as the first poll after a change usually does.
CHANGE_GAP = 3.2

#: Seconds the browser rests between two loads, the last page's tab closed.
SETTLE = 2.0

#: Completed trials of each study of the Studies page.
SMALL_TRIALS = 5

#: Where the progress lines and the tables go.
Out = Callable[[str], None]

# -- processes ---------------------------------------------------------------------------------

_lock = threading.Lock()
_groups: set[int] = set()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with _lock:
        _groups.discard(pgid)


def _kill_leftovers() -> None:
    with _lock:
        left = sorted(_groups)
    for pgid in left:
        _kill_group(pgid)


atexit.register(_kill_leftovers)


class Process:
    """A process in a new session (its own process group), whose first stdout line is awaited
    and returned by :meth:`first_line`; :meth:`close` kills the whole group (SIGTERM, then
    SIGKILL after ``grace`` seconds) and reaps it.

    Args:
        args: The command.
        name: For messages.
    """

    def __init__(self, args: Sequence[str], name: str) -> None:
        self.name = name
        self.log: IO[str] = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in close())
            mode="w+", prefix=f"bench-dashboard-{name}-", suffix=".log"
        )
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
            start_new_session=True,
        )
        with _lock:
            _groups.add(self.proc.pid)
        self.pid = self.proc.pid

    def first_line(self, pattern: str) -> re.Match[str]:
        """The first stdout line, matched against ``pattern``.

        Raises:
            RuntimeError: It does not match (the process's log is in the message).
        """
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(pattern, line)
        if match is None:
            self.log.seek(0)
            raise RuntimeError(f"{self.name} did not start: {line!r}\n{self.log.read()[-3000:]}")
        return match

    def cpu(self) -> float:
        """User + system CPU seconds the process has used."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[float, float]:
        """Resident and peak resident memory in MiB (``VmRSS``, ``VmHWM``)."""
        found = {"VmRSS": math.nan, "VmHWM": math.nan}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in found:
                    found[key] = int(value.split()[0]) / 1024
        return found["VmRSS"], found["VmHWM"]

    def close(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        _kill_group(self.pid)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


@contextlib.contextmanager
def replica(redis_url: str) -> Iterator[tuple[str, Process]]:
    """``python -m hyperdial_server --port 0 --redis URL``; yields its target and process."""
    proc = Process(
        [sys.executable, "-m", "hyperdial_server", "--port", "0", "--redis", redis_url], "replica"
    )
    try:
        match = proc.first_line(r"listening on ([0-9.]+):([0-9]+)")
        yield f"{match.group(1)}:{match.group(2)}", proc
    finally:
        proc.close()


class Dashboard:
    """``python -m hyperdial dashboard --target TARGET --port 0``."""

    def __init__(self, target: str) -> None:
        self.proc = Process(
            [sys.executable, "-m", "hyperdial", "dashboard", "--target", target, "--port", "0"],
            "dashboard",
        )
        try:
            match = self.proc.first_line(r" on (http://\S+?)/? ")
        except BaseException:
            self.proc.close()
            raise
        self.url = match.group(1).rstrip("/")

    def close(self) -> None:
        self.proc.close()


# -- seeding -------------------------------------------------------------------------------------

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def parameters() -> list[hd.Parameter]:
    """Five parameters: log-scaled float, int, categorical, a float only for sgd, a float."""
    return [
        hd.Float("lr", 1e-5, 1.0, log=True),
        hd.Int("layers", 1, 8),
        hd.Categorical("optimizer", list(OPTIMIZERS)),
        hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),
        hd.Float("dropout", 0.0, 0.5),
    ]


def point(rng: random.Random) -> tuple[dict[str, object], dict[str, float]]:
    """A random point and its objective values (``loss``, and ``latency`` for two)."""
    optimizer = rng.choice(OPTIMIZERS)
    lr, layers, dropout = 10 ** rng.uniform(-5.0, 0.0), rng.randint(1, 8), rng.uniform(0.0, 0.5)
    params: dict[str, object] = {
        "lr": lr,
        "layers": layers,
        "optimizer": optimizer,
        "dropout": dropout,
    }
    if optimizer == "sgd":
        params["momentum"] = rng.uniform(0.0, 0.99)
    loss = (
        0.1 * (math.log10(lr) + 2.5) ** 2
        + 0.02 * layers
        + (0.15 if optimizer == "sgd" else 0.0)
        + 0.3 * (dropout - 0.2) ** 2
        + rng.gauss(0.0, 0.05)
    )
    latency = 2.0 * layers * (1.5 if optimizer == "rmsprop" else 1.0) + rng.gauss(0.0, 0.5)
    return params, {"loss": loss, "latency": latency}


@dataclass
class Seeded:
    """A study the run made."""

    study_id: str
    objectives: int
    trials: int


async def _seed(target: str, studies: list[Seeded], concurrency: int) -> None:
    from hyperdial.aio import AsyncClient

    gate = asyncio.Semaphore(concurrency)
    rng = random.Random(20261205)
    async with AsyncClient(target) as client:

        async def one(study: Any, two: bool) -> None:
            params, values = point(rng)
            async with gate:
                if two:
                    await study.add_trial(params, values=values)
                else:
                    await study.add_trial(params, values["loss"])

        for s in studies:
            objectives = [hd.Objective("loss", "minimize")]
            if s.objectives == 2:
                objectives.append(hd.Objective("latency", "minimize"))
            study = await client.create_study(
                s.study_id, parameters(), objectives, algorithm="random"
            )
            # One study after the other, each with ``concurrency`` calls in flight.
            await asyncio.gather(*(one(study, s.objectives == 2) for _ in range(s.trials)))


def seed(target: str, studies: list[Seeded], concurrency: int, out: Out) -> None:
    """Creates the studies and imports their trials."""
    t0 = time.monotonic()
    asyncio.run(_seed(target, studies, concurrency))
    took = time.monotonic() - t0
    total = sum(s.trials for s in studies)
    out(
        f"# seeded {len(studies):,} studies, {total:,} trials in {took:.0f} s "
        f"({total / took:,.0f} CreateTrial/s); load average {os.getloadavg()[0]:.1f}"
    )


# -- the browser ---------------------------------------------------------------------------------

#: Added before every document's own scripts: records long tasks, and how many points (rows) each
#: watched chart (table) holds whenever that changes, with ``performance.now()``.
WATCHER = """
(() => {
  if (!location.protocol.startsWith("http")) return;
  const bench = window.__bench = { long: [], seen: {} };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) bench.long.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (err) { bench.noLongtask = String(err); }
  const chart = (id) => {
    const div = document.getElementById(id);
    return div && div.dataset.empty === "false" && div.data ? div.data : null;
  };
  const xs = (t) => (t && t.x ? t.x.length : 0);
  const rows = (id) => {
    const table = document.getElementById(id);
    return table && table.tBodies[0] ? table.tBodies[0].rows.length : 0;
  };
  const WATCH = {
    history: () => { const d = chart("history-chart"); return d ? xs(d[0]) : 0; },
    pareto: () => {
      const d = chart("pareto-chart");
      return d ? d.reduce((n, t) => n + xs(t), 0) : 0;
    },
    parameters: () => {
      const p = chart("parcoords-chart"), s = chart("slice-chart"), c = chart("contour-chart");
      return p && s && c ? 1 : 0;
    },
    trials: () => rows("trials-table"),
    studies: () => rows("studies"),
  };
  setInterval(() => {
    const now = performance.now();
    for (const [name, count] of Object.entries(WATCH)) {
      let n = 0;
      try { n = count(); } catch (err) { n = -1; }
      const seen = bench.seen[name] || (bench.seen[name] = []);
      if (!seen.length || seen[seen.length - 1][1] !== n) seen.push([now, n]);
    }
  }, WATCH_MS);
})();
""".replace("WATCH_MS", str(WATCH_MS))

#: The (time, count) changes of one watched chart.
SEEN = "return (window.__bench && window.__bench.seen[arguments[0]]) || []"

#: What a load collects once its chart is complete.
COLLECT = """
const bench = window.__bench || { long: [] };
const nav = performance.getEntriesByType("navigation")[0];
const resources = performance.getEntriesByType("resource");
const fcp = performance.getEntriesByName("first-contentful-paint")[0];
const api = resources.find((r) => r.name.includes(arguments[0]));
return {
  fcp: fcp ? fcp.startTime : null,
  long: bench.long,
  page_bytes: (nav ? nav.transferSize : 0) + resources.reduce((n, r) => n + r.transferSize, 0),
  api: api ? { start: api.startTime, request: api.requestStart, response: api.responseStart,
               end: api.responseEnd, transfer: api.transferSize, decoded: api.decodedBodySize }
           : null,
  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
};
"""


@dataclass
class Load:
    """One page load; times in milliseconds since the navigation started."""

    fcp_ms: float
    asked_ms: float
    server_ms: float
    received_ms: float
    done_ms: float
    longest_ms: float
    page_bytes: int
    api_bytes: int
    api_json_bytes: int
    heap_mib: float
    errors: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium driven through chromedriver, both in one process group killed by
    :meth:`close`."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
        if missing:
            raise SystemExit(
                f"needs {' and '.join(missing)}: scripts/install_test_tools.sh installs them"
            )
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            # WebGL (scattergl, parallel coordinates) on the CPU, as the dashboard's tests draw.
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--disable-gpu-sandbox",
            "--enable-precise-memory-info",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # chromedriver leads a session of its own; every chromium process joins its group.
        self._service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
        try:
            self.driver = webdriver.Chrome(options=options, service=self._service)
            self.driver.set_page_load_timeout(WAIT)
            self.driver.set_script_timeout(WAIT)
            self._base = self.driver.current_window_handle
        except BaseException:
            self.close()
            raise

    def _kill(self) -> None:
        process = getattr(self._service, "process", None)
        if process is None:
            return
        with _lock:
            _groups.add(process.pid)
        _kill_group(process.pid)
        process.wait()

    def close(self) -> None:
        """Quits, then kills what is left of the group."""
        try:
            if hasattr(self, "driver"):
                self.driver.quit()
        except Exception:  # noqa: BLE001 (the group is killed next either way)
            pass
        finally:
            self._kill()

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def blank(self, settle: float = 0.0) -> None:
        """Closes the tab of the last page (so that no page of the dashboard polls), then
        waits ``settle`` seconds: the browser is done with it before the next page loads."""
        for handle in self.driver.window_handles:
            if handle != self._base:
                self.driver.switch_to.window(handle)
                self.driver.close()
        self.driver.switch_to.window(self._base)
        time.sleep(settle)

    def _new_tab(self) -> None:
        """A new tab (a renderer of its own), the watcher script added to its documents."""
        self.driver.switch_to.new_window("tab")
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCHER})

    def errors(self) -> list[str]:
        """The console's errors since the last call."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    def load(self, url: str, watch: str, expected: int, api: str, *, fresh: bool = True) -> Load:
        """Loads ``url`` and waits until the watched chart holds ``expected`` points.

        Args:
            url: The page.
            watch: What to wait for: a key of the watcher script's ``WATCH``.
            expected: ... and how many points (rows) it must hold.
            api: A part of the URL of the answer whose timing and size are reported.
            fresh: Empty the browser's cache first (a first visit); else a visit again.

        Raises:
            TimeoutError: The chart did not hold them within :data:`WAIT` seconds.
        """
        self.blank(settle=SETTLE)
        self.errors()
        if fresh:
            self.driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        self._new_tab()
        self.driver.get(url)
        done = self.wait_for(watch, expected)
        data = self.js(COLLECT, api)
        answer = data["api"] or {}
        nan = math.nan
        return Load(
            fcp_ms=data["fcp"] if data["fcp"] is not None else nan,
            asked_ms=answer.get("start", nan),
            server_ms=answer.get("response", nan) - answer.get("request", nan),
            received_ms=answer.get("end", nan),
            done_ms=done,
            longest_ms=max((d for t, d in data["long"] if t <= done), default=0.0),
            page_bytes=data["page_bytes"],
            api_bytes=answer.get("transfer", 0),
            api_json_bytes=answer.get("decoded", 0),
            heap_mib=(data["heap"] or 0) / 2**20,
            errors=self.errors(),
        )

    def now(self) -> float:
        """The open page's ``performance.now()``."""
        return float(self.js("return performance.now()"))

    def wait_for(self, watch: str, expected: int) -> float:
        """Waits until the open page's watched chart holds ``expected`` points; returns when
        (the page's ``performance.now()``).

        Raises:
            TimeoutError: It did not within :data:`WAIT` seconds.
        """
        deadline = time.monotonic() + WAIT
        while True:
            seen = self.js(SEEN, watch)
            done = next((t for t, n in seen if n >= expected), None)
            if done is not None:
                return float(done)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{watch} never held {expected} (last seen {seen[-3:]})")
            time.sleep(0.1)

    def long_tasks(self, start: float, end: float) -> list[float]:
        """Durations of the open page's long tasks that started between ``start`` and ``end``."""
        tasks: list[list[float]] = self.js("return window.__bench ? window.__bench.long : []")
        return [d for t, d in tasks if start <= t <= end]


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class LoadRow:
    """Loads of one view of one page."""

    label: str
    view: str
    loads: list[Load]

    def median(self, pick: Callable[[Load], float]) -> float:
        values = [v for v in (pick(x) for x in self.loads) if not math.isnan(v)]
        return statistics.median(values) if values else math.nan


@dataclass
class PollRow:
    """A study's polls and whole answers (milliseconds), the CPU seconds of its first read,
    and the dashboard's memory (MiB)."""

    label: str
    unchanged_ms: list[float]
    changed_ms: list[float]
    redraw_ms: list[float]
    whole_gzip_ms: float
    whole_plain_ms: float
    whole_gzip_cpu_ms: float
    whole_plain_cpu_ms: float
    read_cpu: float
    read_replica_cpu: float
    start_rss: float
    read_rss: float
    rss: float
    peak_rss: float


@dataclass
class Poller:
    """Polls ``/api/studies/ID/trials`` as the page does."""

    url: str
    revision: int = 0
    epoch: str = ""
    etag: str = ""
    #: The last answer's JSON.
    body: bytes = b""

    def poll(self, *, since: int | None = None, gzip: bool = True) -> tuple[float, int, int]:
        """One poll (``since=0`` and no ETag: the whole study); returns its seconds, status,
        and the trials in its answer."""
        start = self.revision if since is None else since
        query = f"?since={start}&epoch={self.epoch}"
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip" if gzip else "identity"}
        if self.etag and since is None:
            headers["If-None-Match"] = self.etag
        request = urllib.request.Request(self.url + query, headers=headers)
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                body = response.read()
                took = time.perf_counter() - t0
                status = response.status
                etag = response.headers.get("ETag", "")
                encoding = response.headers.get("Content-Encoding", "")
        except urllib.error.HTTPError as e:
            with e:
                if e.code != 304:
                    raise
                return time.perf_counter() - t0, 304, 0
        if encoding == "gzip":
            import gzip as gz

            body = gz.decompress(body)
        self.body = body
        data = json.loads(body)
        self.revision, self.epoch, self.etag = data["revision"], data["epoch"], etag
        return took, status, len(data["trials"])


def _wait_until(when: float) -> None:
    time.sleep(max(0.0, when - time.monotonic()))


def _add_trial(target: str, study: Seeded, rng: random.Random) -> None:
    with hd.Client(target) as client:
        params, values = point(rng)
        if study.objectives == 2:
            client.get_study(study.study_id).add_trial(params, values=values)
        else:
            client.get_study(study.study_id).add_trial(params, values["loss"])


def measure_study(
    target: str,
    server: Process,
    browser: Browser,
    study: Seeded,
    args: argparse.Namespace,
    out: Out,
) -> tuple[list[LoadRow], PollRow]:
    """Every figure of one study, on a dashboard started for it alone (``--cold`` times)."""
    label = f"{study.trials:,} trials" + (", 2 objectives" if study.objectives == 2 else "")
    page = f"/studies/{study.study_id}"
    api = f"/api/studies/{study.study_id}/trials?since=0"
    completed = study.trials
    rng = random.Random(study.trials)
    cold: list[Load] = []
    read_cpu: list[tuple[float, float]] = []  # (dashboard, replica) seconds of a cold load
    with hd.Client(target) as client:
        t0 = time.perf_counter()
        optimal = client.get_study(study.study_id).best_trials
        took = time.perf_counter() - t0
    out(f"# {label}: ListOptimalTrials took {1000 * took:,.0f} ms ({len(optimal)} trials)")
    dashboard: Dashboard | None = None
    try:
        for _ in range(args.cold):
            if dashboard is not None:
                dashboard.close()
            dashboard = Dashboard(target)
            start_rss, _ = dashboard.proc.memory()
            before = dashboard.proc.cpu(), server.cpu()
            cold.append(browser.load(dashboard.url + page, "history", completed, api))
            read_cpu.append((dashboard.proc.cpu() - before[0], server.cpu() - before[1]))
            out(f"# {label}: history, cold: {_brief(cold[-1])}")
        assert dashboard is not None
        read_rss, _ = dashboard.proc.memory()
        rows = [LoadRow(label, "history, cold", cold)]
        views = [("history", completed, True), ("history", completed, False)]
        views += [("parameters", 1, True), ("trials", min(100, completed), True)]
        if study.objectives == 2:
            views.append(("pareto", completed, True))
        for view, expected, fresh in views:
            name = f"{view}, {'first visit' if fresh else 'visit again'}"
            loads = [
                browser.load(f"{dashboard.url}{page}#{view}", view, expected, api, fresh=fresh)
                for _ in range(args.reps)
            ]
            out(f"# {label}: {name}, last of {args.reps}: {_brief(loads[-1])}")
            rows.append(LoadRow(label, name, loads))

        # The open page (history) draws one new trial: its longest task meanwhile.
        redraw: list[float] = []
        browser.load(dashboard.url + page, "history", completed, api, fresh=False)
        for _ in range(args.polls):
            t0 = browser.now()
            _add_trial(target, study, rng)
            completed += 1
            t1 = browser.wait_for("history", completed)
            time.sleep(0.3)  # the task that drew it has ended and been reported
            redraw.append(max(browser.long_tasks(t0, t1 + 1), default=0.0))
        browser.blank()

        # From Python, the page closed: the whole study (its wall and CPU time in the
        # dashboard, plain and gzip-compressed), then polls as the page sends them.
        poller = Poller(f"{dashboard.url}/api/studies/{study.study_id}/trials")
        whole: dict[bool, tuple[list[float], float]] = {}
        for gzip in (False, True):
            cpu0 = dashboard.proc.cpu()
            walls = [poller.poll(since=0, gzip=gzip)[0] for _ in range(3)]
            whole[gzip] = walls, (dashboard.proc.cpu() - cpu0) / len(walls)
        out(f"# {label}: {_gzip_levels(poller.body)}")
        unchanged: list[float] = []
        at = time.monotonic()
        for _ in range(args.polls):
            at += POLL_GAP
            _wait_until(at)
            took, status, _ = poller.poll()
            if status != 304:
                raise RuntimeError(f"a poll with nothing new answered {status}")
            unchanged.append(took)
        changed: list[float] = []
        for _ in range(args.polls):
            at = time.monotonic() + CHANGE_GAP
            _add_trial(target, study, rng)
            _wait_until(at)
            took, status, count = poller.poll()
            if status != 200 or count != 1:
                raise RuntimeError(f"a poll after one new trial answered {status}, {count} rows")
            changed.append(took)
        rss, peak = dashboard.proc.memory()
    finally:
        if dashboard is not None:
            dashboard.close()
    row = PollRow(
        label=label,
        unchanged_ms=[1000 * x for x in unchanged],
        changed_ms=[1000 * x for x in changed],
        redraw_ms=redraw,
        whole_gzip_ms=1000 * statistics.median(whole[True][0]),
        whole_plain_ms=1000 * statistics.median(whole[False][0]),
        whole_gzip_cpu_ms=1000 * whole[True][1],
        whole_plain_cpu_ms=1000 * whole[False][1],
        read_cpu=statistics.median(c[0] for c in read_cpu),
        read_replica_cpu=statistics.median(c[1] for c in read_cpu),
        start_rss=start_rss,
        read_rss=read_rss,
        rss=rss,
        peak_rss=peak,
    )
    out(
        f"# {label}: poll 304 {statistics.median(row.unchanged_ms):.1f} ms, one new trial "
        f"{statistics.median(row.changed_ms):.1f} ms, redraw {statistics.median(redraw):.0f} ms, "
        f"whole study {row.whole_gzip_ms:.0f} ms gzip / {row.whole_plain_ms:.0f} ms plain, "
        f"RSS {start_rss:.0f} → {read_rss:.0f} → {rss:.0f} MiB (peak {peak:.0f})"
    )
    return rows, row


def _gzip_levels(body: bytes) -> str:
    """How long gzip takes on ``body`` in this process, at a few levels."""
    import gzip

    parts = []
    for level in (9, 6, 1):
        t0 = time.perf_counter()
        size = len(gzip.compress(body, compresslevel=level))
        parts.append(
            f"level {level} {1000 * (time.perf_counter() - t0):,.0f} ms → {size >> 10:,} KiB"
        )
    return f"gzip of the whole-study answer ({len(body) >> 10:,} KiB) here: " + ", ".join(parts)


def measure_studies_page(
    target: str, browser: Browser, total: int, args: argparse.Namespace, out: Out
) -> tuple[list[LoadRow], float]:
    """The Studies page holding ``total`` studies; the dashboard's RSS after it."""
    label = f"{total:,} studies"
    cold: list[Load] = []
    dashboard: Dashboard | None = None
    try:
        for _ in range(args.cold):
            if dashboard is not None:
                dashboard.close()
            dashboard = Dashboard(target)
            cold.append(browser.load(dashboard.url + "/", "studies", total, "/api/studies"))
            out(f"# {label}: cold: {_brief(cold[-1])}")
        assert dashboard is not None
        rows = [LoadRow(label, "studies, cold", cold)]
        for fresh in (True, False):
            name = f"studies, {'first visit' if fresh else 'visit again'}"
            loads = [
                browser.load(dashboard.url + "/", "studies", total, "/api/studies", fresh=fresh)
                for _ in range(args.reps)
            ]
            out(f"# {label}: {name}, last of {args.reps}: {_brief(loads[-1])}")
            rows.append(LoadRow(label, name, loads))
        browser.blank()
        rss, _ = dashboard.proc.memory()
    finally:
        if dashboard is not None:
            dashboard.close()
    return rows, rss


def _brief(load: Load) -> str:
    text = (
        f"first paint {load.fcp_ms:.0f} ms, asked {load.asked_ms:.0f} ms, answered in "
        f"{load.server_ms:.0f} ms, received {load.received_ms:.0f} ms, complete "
        f"{load.done_ms:.0f} ms, longest task {load.longest_ms:.0f} ms"
    )
    if load.errors:
        text += f"; console errors: {load.errors[:3]}"
    return text


# -- the tables ----------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _kib(value: float) -> str:
    return "-" if math.isnan(value) or not value else f"{value / 1024:,.0f}"


def print_loads(rows: list[LoadRow], out: Out) -> None:
    out(
        "| page | view | first paint | data asked | dashboard answered in | data received "
        "| complete | longest task | page KiB | data KiB gzip / JSON | JS heap MiB |"
    )
    out("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        m = r.median
        painted = sum(1 for x in r.loads if not math.isnan(x.fcp_ms))
        fcp = _ms(m(lambda x: x.fcp_ms))
        if painted < len(r.loads):  # Chromium reported no first contentful paint for some
            fcp += f" ({painted} of {len(r.loads)})"
        out(
            f"| {r.label} | {r.view} | {fcp} | {_ms(m(lambda x: x.asked_ms))} "
            f"| {_ms(m(lambda x: x.server_ms))} | {_ms(m(lambda x: x.received_ms))} "
            f"| {_ms(m(lambda x: x.done_ms))} | {_ms(m(lambda x: x.longest_ms))} "
            f"| {_kib(m(lambda x: x.page_bytes))} | {_kib(m(lambda x: x.api_bytes))} / "
            f"{_kib(m(lambda x: x.api_json_bytes))} | {m(lambda x: x.heap_mib):.0f} |"
        )


def print_polls(rows: list[PollRow], out: Out) -> None:
    med = statistics.median
    out(
        "| study | poll, nothing new (304) ms | poll, one new trial ms "
        "| open page draws one new trial: longest task ms |"
    )
    out("| --- | ---: | ---: | ---: |")
    for r in rows:
        out(
            f"| {r.label} | {med(r.unchanged_ms):.1f} | {med(r.changed_ms):.1f} "
            f"| {med(r.redraw_ms):.0f} |"
        )
    out("")
    out(
        "| study | first read (cold load): dashboard / replica CPU s | whole study answered in, "
        "gzip / plain ms | dashboard CPU per whole answer, gzip / plain ms | dashboard RSS MiB: "
        "started → study read → end | peak RSS MiB |"
    )
    out("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        out(
            f"| {r.label} | {r.read_cpu:.1f} / {r.read_replica_cpu:.1f} "
            f"| {r.whole_gzip_ms:,.0f} / {r.whole_plain_ms:,.0f} "
            f"| {r.whole_gzip_cpu_ms:,.0f} / {r.whole_plain_cpu_ms:,.0f} "
            f"| {r.start_rss:.0f} → {r.read_rss:.0f} → {r.rss:.0f} | {r.peak_rss:.0f} |"
        )


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000,100000", help="trials of each study")
    parser.add_argument(
        "--multi", default="100000", help="trials of each 2-objective study (empty: none)"
    )
    parser.add_argument(
        "--studies", type=int, default=1000, help="small studies for the Studies page (0: none)"
    )
    parser.add_argument("--reps", type=int, default=5, help="loads of each view")
    parser.add_argument("--cold", type=int, default=3, help="dashboard starts (cold loads)")
    parser.add_argument("--polls", type=int, default=5, help="polls of each kind")
    parser.add_argument("--concurrency", type=int, default=64, help="CreateTrial calls in flight")
    args = parser.parse_args(argv)
    if min(args.reps, args.cold, args.polls) < 1:
        parser.error("--reps, --cold and --polls must be at least 1")

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    def out(line: str) -> None:
        print(line, flush=True)

    studies = [Seeded(f"big-{n}", 1, n) for n in _sizes(args.sizes)]
    studies += [Seeded(f"big-{n}-2obj", 2, n) for n in _sizes(args.multi)]
    load_rows: list[LoadRow] = []
    poll_rows: list[PollRow] = []
    studies_rows: list[LoadRow] = []
    studies_rss = math.nan
    from tests.redis_server import RedisServer

    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        target, server = stack.enter_context(replica(redis.url))
        browser = Browser()
        stack.callback(browser.close)
        out(
            f"# {os.cpu_count()} CPUs, chromium "
            f"{browser.driver.capabilities.get('browserVersion', '?')}"
        )
        if args.studies:
            # The Studies page first, while the namespace holds these studies alone.
            small = [Seeded(f"small-{i:04d}", 1, SMALL_TRIALS) for i in range(args.studies)]
            seed(target, small, args.concurrency, out)
            studies_rows, studies_rss = measure_studies_page(target, browser, len(small), args, out)
        seed(target, studies, args.concurrency, out)
        for study in studies:
            rows, poll_row = measure_study(target, server, browser, study, args, out)
            load_rows += rows
            poll_rows.append(poll_row)
        out(f"# load average at the end {os.getloadavg()[0]:.1f}")
    out("")
    out(
        f"Page loads, milliseconds since the navigation started, median of {args.reps} loads "
        f"({args.cold} for cold: the first load after the dashboard started); first visit: the "
        "browser's cache emptied before the load."
    )
    out("")
    print_loads(load_rows + studies_rows, out)
    out("")
    print_polls(poll_rows, out)
    if studies_rows:
        out(f"\nDashboard RSS after the Studies page's loads: {studies_rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
