#!/usr/bin/env python3
"""Takes the screenshots of the web dashboard that the docs show (``docs/images/``).

It starts a ``redis-server`` and a replica serving the dashboard beside it (``hyperdial serve
--redis URL --port 0 --dashboard-port 0``, the one-command laptop mode), runs a few studies
with the Python client:

* ``mnist-mlp``: the README's example (Bayesian, one objective, a conditional parameter), run
  longer;
* ``resnet-cifar10``: a median early-stopping rule and learning curves (trials report a loss at
  every epoch; some are stopped), a few failed trials, one trial whose worker vanished (its
  lease expired and its point was handed out again) and three trials running while the pictures
  are taken;
* ``llm-serving``: two objectives (accuracy up, latency down), so that a Pareto front shows;
* ``xgboost-higgs``: quasi-random, so that the Studies page lists more than one kind;

then opens each page in headless Chromium (Debian's ``chromium`` through Debian's
``chromedriver``, never Selenium Manager) 1400 pixels wide and writes one PNG per page or tab
(each as tall as its content). Every process it starts runs in a process group of its own,
killed on every path. Run it from the repository root, in an environment with
``.[server,dashboard]`` and selenium (the dev venv)::

    .venv/bin/python scripts/dashboard_screenshots.py            # into docs/images/
    .venv/bin/python scripts/dashboard_screenshots.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1400
#: Heights a picture may take: the page's content, within these bounds.
MIN_HEIGHT, MAX_HEIGHT = 400, 2000
#: Seconds a process gets to start, a page to draw what it shows.
WAIT = 120.0
#: The lease of the early-stopping study's trials: the vanished worker's expires after it.
LEASE_SECONDS = 15.0

# -- processes -----------------------------------------------------------------------------------


class Group:
    """A process leading a process group of its own (a new session); :meth:`close` kills the
    whole group (SIGTERM, then SIGKILL) and reaps the leader.

    Args:
        args: The command.
        name: For messages.
        stdout: Read the process's stdout (:meth:`line`); else it goes to its log.
    """

    def __init__(self, args: Sequence[str], name: str, *, stdout: bool = False) -> None:
        self.name = name
        self.log: IO[str] = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in close())
            mode="w+", prefix=f"screenshots-{name}-", suffix=".log"
        )
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE if stdout else self.log,
            stderr=self.log,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )

    def line(self) -> str:
        """The next line of the process's stdout."""
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def failed(self, what: str) -> RuntimeError:
        self.log.seek(0)
        return RuntimeError(f"{self.name}: {what}\n{self.log.read()[-3000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A ``redis-server`` on a free loopback port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs redis-server on PATH (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="screenshots-redis-") as directory:
        port = _free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", directory]
        group = Group(args, "redis-server")
        try:
            deadline = time.monotonic() + WAIT
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if group.proc.poll() is not None or time.monotonic() > deadline:
                    raise group.failed("did not start")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            group.close()


@contextlib.contextmanager
def replica(redis_url: str) -> Iterator[tuple[str, str]]:
    """``hyperdial serve --redis URL --port 0 --dashboard-port 0``; yields its gRPC target and
    the dashboard's URL."""
    args = [sys.executable, "-m", "hyperdial", "serve", "--redis", redis_url, "--port", "0"]
    group = Group([*args, "--dashboard-port", "0"], "replica", stdout=True)
    try:
        listening = re.search(r"listening on ([0-9.]+):([0-9]+)", group.line())
        dashboard = re.search(r"dashboard on (http://\S+)", group.line())
        if listening is None or dashboard is None:
            raise group.failed("did not print its listening and dashboard lines")
        yield f"{listening.group(1)}:{listening.group(2)}", dashboard.group(1).rstrip("/")
    finally:
        group.close()


# -- the studies ---------------------------------------------------------------------------------


def run_readme_study(client: Any, trials: int) -> None:
    """The README's example, with more trials."""
    from hyperdial import Categorical, Float, Int

    study = client.create_study(
        "mnist-mlp",
        params=[
            Float("lr", 1e-5, 1.0, log=True),
            Int("layers", 1, 8),
            Categorical("optimizer", ["adam", "sgd"]),
            Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),  # only for sgd
        ],
        objectives="minimize",
        load_if_exists=True,
    )
    for _ in range(trials):
        with study.trial() as trial:
            p = trial.params
            trial.report((p["lr"] - 0.01) ** 2 + 0.01 * p["layers"])


def _epoch_loss(lr: float, width: int, decay: float, epoch: int, rng: random.Random) -> float:
    """A made-up validation loss after ``epoch`` epochs: falls towards a floor set by the
    hyperparameters, with noise."""
    floor = 0.25 + 0.08 * (math.log10(lr) + 2.0) ** 2 + 0.02 * abs(math.log2(width / 64))
    floor += 30 * abs(decay - 5e-4)
    return floor + 2.0 * math.exp(-epoch * lr * 40 / (1 + lr * 40)) + rng.gauss(0, 0.01)


def run_early_stopping_study(client: Any, lost_client: Any, trials: int, epochs: int) -> Any:
    """A study with a median stopping rule, learning curves, failures and an expired lease.

    Returns:
        The study: the caller asks for the trials that run while the pictures are taken.
    """
    import hyperdial as hd

    study = client.create_study(
        "resnet-cifar10",
        [
            hd.Float("lr", 1e-4, 0.3, log=True),
            hd.Categorical("width", ["32", "64", "128", "256"]),
            hd.Float("weight_decay", 1e-5, 1e-2, log=True),
        ],
        hd.Objective("val_loss", "minimize"),
        seed=3,
        lease_timeout=LEASE_SECONDS,
        early_stopping=hd.MedianStopping(warmup_steps=4, min_trials=3),
    )
    # A worker that asks and vanishes: no heartbeat, its lease expires.
    study_lost = lost_client.get_study("resnet-cifar10")
    lost = study_lost.ask(client_id="gpu-node-7")[0]
    rng = random.Random(11)
    for i in range(trials):
        (trial,) = study.ask(client_id=f"gpu-node-{i % 4 + 1}")
        p = trial.params
        if i in (5, 17):
            study.fail(trial, "CUDA error: out of memory")
            continue
        loss = math.inf
        stopped = False
        for epoch in range(1, epochs + 1):
            loss = _epoch_loss(p["lr"], int(p["width"]), p["weight_decay"], epoch, rng)
            if study.report(trial, loss, epoch).should_stop:
                stopped = True
                break
        if not stopped:
            study.tell(trial, loss)
    deadline = time.monotonic() + LEASE_SECONDS + WAIT
    while study.get_trial(lost.number).state is not hd.TrialState.FAILED:
        if time.monotonic() > deadline:
            raise RuntimeError("the vanished worker's lease did not expire")
        time.sleep(0.5)
    return study


def run_two_objective_study(client: Any, trials: int) -> None:
    import hyperdial as hd

    study = client.create_study(
        "llm-serving",
        [
            hd.Int("layers", 4, 48),
            hd.Int("batch", 1, 64, log=True),
            hd.Categorical("quantization", ["fp16", "int8", "int4"]),
        ],
        [hd.Objective("accuracy", "maximize"), hd.Objective("latency_ms", "minimize")],
        algorithm="random",
        seed=5,
    )
    rng = random.Random(5)
    bits = {"fp16": 16, "int8": 8, "int4": 4}
    for _ in range(trials):
        (trial,) = study.ask()
        p = trial.params
        layers, batch, b = int(p["layers"]), int(p["batch"]), bits[p["quantization"]]
        accuracy = 0.9 - 0.35 * math.exp(-layers / 14) - 0.012 * (16 - b) / 4 + rng.gauss(0, 0.01)
        latency = layers * (0.9 + 0.05 * batch) * (0.45 + b / 29) + rng.gauss(0, 1.0)
        study.tell(trial, values={"accuracy": accuracy, "latency_ms": max(latency, 1.0)})


def run_quasi_random_study(client: Any, trials: int) -> None:
    import hyperdial as hd

    study = client.create_study(
        "xgboost-higgs",
        [
            hd.Int("max_depth", 2, 12),
            hd.Float("eta", 0.01, 0.5, log=True),
            hd.Float("subsample", 0.5, 1.0),
        ],
        hd.Objective("auc", "maximize"),
        algorithm="quasi_random",
        seed=9,
    )
    for _ in range(trials):
        (trial,) = study.ask()
        p = trial.params
        auc = 0.84 - 0.002 * (int(p["max_depth"]) - 7) ** 2 - 0.02 * abs(math.log10(p["eta"]) + 1)
        study.tell(trial, auc + 0.02 * (p["subsample"] - 0.75))


# -- the browser ---------------------------------------------------------------------------------


class Browser:
    """Headless Chromium through chromedriver, in a process group killed by :meth:`close`."""

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
            f"--window-size={WIDTH},{MIN_HEIGHT}",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            # WebGL (parallel coordinates) on the CPU.
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--disable-gpu-sandbox",
        ):
            options.add_argument(arg)
        self._service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
        try:
            self.driver = webdriver.Chrome(options=options, service=self._service)
            self.driver.set_page_load_timeout(WAIT)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Quits, then kills what is left of chromedriver's group."""
        try:
            if hasattr(self, "driver"):
                self.driver.quit()
        except Exception:  # noqa: BLE001 (the group is killed next either way)
            pass
        finally:
            process = getattr(self._service, "process", None)
            if process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {WAIT:.0f} s for {what}")
            time.sleep(0.2)

    def shoot(self, url: str, ready: str, path: Path) -> None:
        """Opens ``url``, waits until the script ``ready`` returns true, sizes the window to
        the page's content, and saves the picture."""
        self.driver.set_window_size(WIDTH, MIN_HEIGHT)
        self.driver.get("about:blank")
        self.driver.get(url)
        self.wait(lambda: self.js(ready), f"{url} to draw")
        time.sleep(1.0)  # plotly's transitions and WebGL frames
        height = int(self.js("return document.documentElement.scrollHeight"))
        # The window is taller than the page's viewport by the browser's own bars.
        bars = self.driver.get_window_size()["height"] - int(self.js("return innerHeight"))
        self.driver.set_window_size(WIDTH, min(max(height, MIN_HEIGHT), MAX_HEIGHT) + bars)
        time.sleep(1.0)  # responsive charts redraw at the new size
        self.wait(lambda: self.js(ready), f"{url} to draw again")
        self.driver.save_screenshot(str(path))


#: Helpers of the ``ready`` scripts: whether a chart holds a plotly figure, whether a table has
#: at least ``n`` body rows.
_READY = """
const chart = (id) => {
  const d = document.getElementById(id);
  return !!(d && d.dataset.empty === "false" && d.data && d.data.length);
};
const rows = (id, n) => {
  const t = document.getElementById(id);
  return !!(t && t.tBodies[0] && t.tBodies[0].rows.length >= n);
};
"""


def _ready(condition: str) -> str:
    """A script that returns whether ``condition`` (JavaScript, over ``chart`` and ``rows``)
    holds."""
    return f"{_READY}return {condition};"


#: (file name, page, when it is ready to be taken, what it shows).
SHOTS = [
    ("dashboard-studies.png", "/", 'rows("studies", 4)', "the Studies page"),
    (
        "dashboard-history.png",
        "/studies/resnet-cifar10#history",
        'chart("history-chart")',
        "history",
    ),
    (
        "dashboard-parameters.png",
        "/studies/mnist-mlp#parameters",
        'chart("parcoords-chart") && chart("slice-chart") && chart("contour-chart")',
        "parallel coordinates, slice and contour",
    ),
    (
        "dashboard-importance.png",
        "/studies/mnist-mlp#importance",
        'chart("importance-chart")',
        "parameter importance",
    ),
    ("dashboard-pareto.png", "/studies/llm-serving#pareto", 'chart("pareto-chart")', "Pareto"),
    (
        "dashboard-curves.png",
        "/studies/resnet-cifar10#curves",
        'chart("curves-chart")',
        "learning curves",
    ),
    (
        "dashboard-trials.png",
        "/studies/resnet-cifar10#trials",
        'rows("trials-table", 20)',
        "the trials table",
    ),
    (
        "dashboard-running.png",
        "/studies/resnet-cifar10#running",
        'rows("running-table", 3) && rows("expired-table", 1)',
        "running trials and expired leases",
    ),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    import hyperdial as hd

    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server())
        target, dashboard = stack.enter_context(replica(redis_url))
        print(f"replica {target}, dashboard {dashboard}", flush=True)
        client = stack.enter_context(hd.Client(target))
        lost_client = stack.enter_context(hd.Client(target, renew_leases=False))
        run_readme_study(client, 40)
        run_two_objective_study(client, 160)
        run_quasi_random_study(client, 24)
        study = run_early_stopping_study(client, lost_client, 36, 20)
        # Three trials running while the pictures are taken (the client renews their leases);
        # the first gets the point of the trial whose lease expired.
        for node in (1, 2, 3):
            (trial,) = study.ask(client_id=f"gpu-node-{node}")
            for epoch in range(1, 3 + node):
                # Better than most at each step: the median rule lets them run.
                study.report(trial, 0.15 + 0.5 / epoch, epoch)
        print("studies seeded", flush=True)
        browser = Browser()
        stack.callback(browser.close)
        for name, page, ready, what in SHOTS:
            path = args.out / name
            browser.shoot(dashboard + page, _ready(ready), path)
            print(
                f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {what}, "
                f"{path.stat().st_size / 1024:.0f} KiB",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
