"""The progress line ``Study.optimize`` draws on stderr: trials done and the best value so far."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "progress_wanted"]

_BAR_WIDTH = 24
# Erase to the end of the line: a shorter line must not leave the tail of a longer one.
_CLEAR_EOL = "\x1b[K"


def progress_wanted(show: bool | None, stream: TextIO) -> bool:
    """Whether to draw: ``show`` when it is given, else only when ``stream`` is a terminal."""
    if show is not None:
        return show
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed or not a real file
        return False


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60:d}:{seconds % 60:02d}"
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """One progress line, redrawn in place (``\\r``) after every finished trial.

    Thread-safe: the workers of ``optimize`` report to one instance.

    Args:
        stream: Where to draw (a terminal).
        label: What is being optimised, e.g. the study id.
        total: Trials to run; ``None`` when the run ends only with the study.
        goal: ``"minimize"`` or ``"maximize"`` for a single-objective study, whose best value
            is shown; ``None`` for several objectives.
        best: The best value of the study before the run, if any.
        best_number: The number of the trial that has it.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        total: int | None,
        *,
        goal: str | None,
        best: float | None = None,
        best_number: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._label = label
        self._total = total
        self._goal = goal
        self._best = best
        self._best_number = best_number
        self._clock = clock
        self._start = clock()
        self._completed = 0
        self._failed = 0
        self._stopped = 0
        self._infeasible = 0
        self._lock = threading.Lock()
        self._closed = False
        self._draw()

    def trial_finished(self, number: int, value: float | None, *, feasible: bool = True) -> None:
        """Counts a completed trial: ``value`` is its objective value, ``None`` with several
        objectives. One that breaks an outcome constraint (``feasible`` false) counts as
        infeasible and is never the best. (A failed trial is counted by :meth:`trial_failed`,
        a stopped one by :meth:`trial_stopped`, an INFEASIBLE one by
        :meth:`trial_infeasible`.)"""
        with self._lock:
            if not feasible:
                self._infeasible += 1
            else:
                self._completed += 1
                if value is not None and math.isfinite(value) and self._better(value):
                    self._best, self._best_number = value, number
            self._draw()

    def trial_infeasible(self) -> None:
        """Counts a trial whose parameters proved infeasible."""
        with self._lock:
            self._infeasible += 1
            self._draw()

    def trial_failed(self) -> None:
        """Counts a failed trial."""
        with self._lock:
            self._failed += 1
            self._draw()

    def trial_stopped(self) -> None:
        """Counts a trial stopped early (by the study's policy or its worker)."""
        with self._lock:
            self._stopped += 1
            self._draw()

    def close(self) -> None:
        """Draws the final line and ends it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._draw()
            self._write("\n")

    def _better(self, value: float) -> bool:
        if self._best is None:
            return True
        return value > self._best if self._goal == "maximize" else value < self._best

    def line(self) -> str:
        """The text of the line, as drawn now."""
        done = self._completed + self._failed + self._stopped + self._infeasible
        elapsed = self._clock() - self._start
        parts = [self._label]
        if self._total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * done // self._total)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            parts.append(f"{done}/{self._total} [{bar}] {100 * done // self._total:3d}%")
        else:
            parts.append(f"{done} trials")
        if self._stopped:
            parts.append(f"{self._stopped} stopped")
        if self._infeasible:
            parts.append(f"{self._infeasible} infeasible")
        if self._failed:
            parts.append(f"{self._failed} failed")
        if self._goal is not None:
            best = "-" if self._best is None else f"{_fmt(self._best)} (#{self._best_number})"
            parts.append(f"best {best}")
        rate = f", {done / elapsed:.2f}/s" if done and elapsed > 0 else ""
        parts.append(f"{_duration(elapsed)}{rate}")
        return " | ".join(parts)

    def _draw(self) -> None:
        text = self.line()
        try:
            width = os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 0
        if width > 1 and len(text) >= width:
            text = text[: width - 1]
        self._write(f"\r{text}{_CLEAR_EOL}")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (ValueError, OSError):  # the terminal went away: the run matters more
            pass
