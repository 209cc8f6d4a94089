"""A headless Chromium for the dashboard's tests: Debian's ``chromium`` driven through Debian's
``chromedriver`` (never a browser or driver Selenium Manager would download), in a process group
of its own that is killed on every path.

The tests need both binaries and fail, not skip, without them: ``scripts/install_test_tools.sh``
installs them.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Seconds a condition gets to come true: generous, the suite runs on a busy 2-CPU machine.
WAIT = 90.0

T = TypeVar("T")

_lock = threading.Lock()
_groups: set[int] = set()


def _kill_leftovers() -> None:
    with _lock:
        left = sorted(_groups)
        _groups.clear()
    for pgid in left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


atexit.register(_kill_leftovers)


def require_binaries() -> None:
    """Fails (never skips) when chromium or chromedriver is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise AssertionError(
            f"the dashboard tests need {' and '.join(missing)}: run scripts/install_test_tools.sh "
            "(Debian packages chromium and chromium-driver)"
        )


class Browser:
    """One headless Chromium, reused by the tests of a module.

    Args:
        artefacts: Directory for screenshots.
    """

    def __init__(self, artefacts: Path) -> None:
        require_binaries()
        self.artefacts = artefacts
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            # WebGL (parallel coordinates, 3-D and scattergl charts) on the CPU.
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--disable-gpu-sandbox",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # A session of its own: chromedriver and every chromium process share its group, which
        # close() (or the exit-time sweep) kills whatever state they are in.
        self._service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
        try:
            self.driver = webdriver.Chrome(options=options, service=self._service)
        except BaseException:
            self._kill()
            raise
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)

    def _kill(self) -> None:
        process = getattr(self._service, "process", None)
        if process is None:
            return
        with _lock:
            _groups.add(process.pid)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        with _lock:
            _groups.discard(process.pid)

    def close(self) -> None:
        """Ends the browser and its driver: quit, then SIGKILL to what is left of the group."""
        try:
            self.driver.quit()
        except (WebDriverException, OSError):
            pass
        finally:
            self._kill()

    # -- pages -----------------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Loads ``url`` afresh (never a mere change of its ``#tab``) and drops the console
        entries of earlier pages."""
        self.driver.get("about:blank")
        self.console()
        self.driver.get(url)

    def console(self) -> list[dict[str, Any]]:
        """The browser's console entries since the last call."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        return entries

    def errors(self, allow: Callable[[dict[str, Any]], bool] = lambda e: False) -> list[str]:
        """Console errors (SEVERE entries) since the last call, but those ``allow`` accepts."""
        return [e["message"] for e in self.console() if e["level"] == "SEVERE" and not allow(e)]

    def wait(self, condition: Callable[[], T], what: str, timeout: float = WAIT) -> T:
        """Waits until ``condition()`` is truthy and returns it; fails naming ``what``."""
        result: T = WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(
            lambda _: condition(), message=f"waited {timeout:.0f} s for {what}"
        )
        return result

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def plot(self, div_id: str) -> list[dict[str, Any]] | None:
        """The traces plotly drew in the graph div ``div_id`` (``None`` while it shows a
        message instead, or has drawn nothing yet)."""
        traces: list[dict[str, Any]] | None = self.js(
            """
            const div = document.getElementById(arguments[0]);
            if (!div || div.dataset.empty !== "false" || !div.data) return null;
            return div.data.map((t) => ({
              type: t.type || "scatter", name: t.name || "", mode: t.mode || "",
              x: t.x ? Array.from(t.x) : null, y: t.y ? Array.from(t.y) : null,
              z: t.z ? Array.from(t.z) : null,
              dimensions: t.dimensions ? t.dimensions.map(
                (d) => ({label: d.label, values: Array.from(d.values)})) : null,
            }));
            """,
            div_id,
        )
        return traces

    def text(self, element_id: str) -> str:
        return str(self.js("return document.getElementById(arguments[0]).textContent", element_id))

    def screenshot(self, name: str) -> Path:
        """The whole page (up to 4000 pixels high) as ``<artefacts>/<name>.png``."""
        path = self.artefacts / f"{name}.png"
        size = self.driver.get_window_size()
        height = int(self.js("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(size["width"], min(max(height + 120, size["height"]), 4000))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(size["width"], size["height"])
        return path
