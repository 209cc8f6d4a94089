"""The progress line of ``optimize``: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from collections.abc import Iterator

import pytest

import hyperdial as hd
from hyperdial._progress import Progress, progress_wanted
from hyperdial.aio import AsyncClient
from tests.client._support import new_id

SPACE = [hd.Int("n", 1, 5)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_line_counts_trials_and_keeps_the_best() -> None:
    out, clock = io.StringIO(), Clock()
    bar = Progress(out, "demo", 4, goal="minimize", clock=clock)
    assert bar.line() == "demo | 0/4 [------------------------]   0% | best - | 0:00"
    clock.now = 2.0
    bar.trial_finished(1, 3.0)
    bar.trial_finished(2, 1.5)
    bar.trial_finished(3, 2.0)
    bar.trial_failed()
    assert bar.line() == (
        "demo | 4/4 [########################] 100% | 1 failed | best 1.5 (#2) | 0:02, 2.00/s"
    )
    bar.close()
    bar.close()  # once only
    text = out.getvalue()
    assert text.count("\r") == 6 and text.endswith("\n") and text.count("\n") == 1
    assert "\x1b[K" in text  # each redraw erases the tail of a longer previous line


def test_infeasible_trials_are_counted_and_never_the_best() -> None:
    bar = Progress(io.StringIO(), "c", 4, goal="minimize", clock=Clock())
    bar.trial_finished(1, 2.0)
    bar.trial_finished(2, -5.0, feasible=False)  # breaks a constraint: better, not the best
    bar.trial_infeasible()
    bar.trial_stopped()
    assert bar.line() == (
        "c | 4/4 [########################] 100% | 1 stopped | 2 infeasible | best 2 (#1) | 0:00"
    )


def test_line_for_maximize_open_ended_and_several_objectives() -> None:
    clock = Clock()
    up = Progress(io.StringIO(), "up", None, goal="maximize", best=2.0, best_number=9, clock=clock)
    up.trial_finished(10, 1.0)
    assert "best 2 (#9)" in up.line()
    up.trial_finished(11, 5.0)
    assert up.line().startswith("up | 2 trials | best 5 (#11)")
    clock.now = 3725
    assert up.line().endswith("| 1:02:05, 0.00/s")
    multi = Progress(io.StringIO(), "m", 2, goal=None, clock=clock)
    multi.trial_finished(1, None)
    assert "best" not in multi.line() and "1/2" in multi.line()


def test_wanted_only_on_a_terminal_unless_told() -> None:
    plain = io.StringIO()
    assert not progress_wanted(None, plain)
    assert progress_wanted(True, plain)
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        assert progress_wanted(None, tty)
        assert not progress_wanted(False, tty)
    os.close(master)


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, list[bytes]]]:
    """A pseudo-terminal: its slave side as a text file, and what its master side read."""
    master, slave = os.openpty()
    tty = os.fdopen(slave, "w")
    received: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the slave side is closed
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    yield tty, received
    tty.close()
    reader.join(timeout=30)
    os.close(master)


def test_optimize_draws_on_a_terminal(
    server_target: str,
    terminal: tuple[io.TextIOWrapper, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty, received = terminal
    # In the test's body: pytest installs its own capture of stderr between setup and call.
    monkeypatch.setattr(sys, "stderr", tty)
    with hd.Client(server_target) as client:
        study = client.create_study(new_id("bar"), SPACE, algorithm="grid")
        study.optimize(lambda t: float(t.params["n"]), n_trials=5, n_workers=2)
    # The last redraw ends with a newline; read up to it before the terminal closes (Linux
    # drops what the master side has not read when the slave side hangs up).
    for _ in range(1200):  # the bound only guards a hang
        if b"\n" in b"".join(received):
            break
        threading.Event().wait(0.05)
    text = b"".join(received).decode()
    assert f"{study.study_id} | 5/5 [" in text
    last = text.replace("\r\n", "\n").rsplit("\r", 1)[-1]  # the terminal adds \r to \n
    assert "best 1 (#" in last  # all five grid points ran: 1 is the best
    assert text.count("\r") >= 6  # the first line, then one redraw per trial at least


def test_optimize_is_silent_without_a_terminal(
    server_target: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with hd.Client(server_target) as client:
        study = client.create_study(new_id("bar"), SPACE, algorithm="grid")
        study.optimize(lambda t: float(t.params["n"]), n_trials=3)
        assert capfd.readouterr().err == ""
        study.optimize(lambda t: float(t.params["n"]), n_trials=1, show_progress=True)
        forced = capfd.readouterr().err
        best = study.best_trial  # of the four trials: the run started from the first three's
    last = forced.rsplit("\r", 1)[-1]  # the final redraw
    assert last.startswith(f"{study.study_id} | 1/1 [")
    assert f" | best {best.value:g} (#{best.number}) | " in last


def test_async_optimize_draws_when_told(
    server_target: str, capfd: pytest.CaptureFixture[str]
) -> None:
    async def main() -> str:
        async with AsyncClient(server_target) as client:
            study = await client.create_study(new_id("bar"), SPACE, algorithm="grid")
            await study.optimize(lambda t: float(t.params["n"]), n_trials=2)
            assert capfd.readouterr().err == ""
            await study.optimize(lambda t: -float(t.params["n"]), n_trials=2, show_progress=True)
            return study.study_id

    study_id = asyncio.run(main())
    err = capfd.readouterr().err
    assert f"{study_id} | 2/2 [" in err and err.endswith("\n")
