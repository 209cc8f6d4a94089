"""The entry point of a sampler worker process (see ``service/_compute.py``): suggestions of
model-based samplers (:func:`run_suggest`), and parameter importance (:func:`run_importance`)
and the recommendation (:func:`run_recommend`), which read a whole study as they do.

It lives with the samplers so that a worker imports them and nothing of the server's gRPC
side: workers fork from a process that has imported exactly this (and the store's pure codec,
to decode the history).

Imported by the fork server itself (its preload), this module ties the fork server's life to
the replica's (:func:`die_with_parent`): the fork server and its workers hold pipes to each
other, so without it they would outlive a replica that is killed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.importance import Importances, Samples, ped_anova_of, samples
from hyperdial_server.core.space import Params, SearchSpace
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.samplers import get_sampler
from hyperdial_server.samplers._recommend import Recommended, recommend


def run_suggest(
    algorithm: Algorithm,
    spec: StudySpec,
    indices: Sequence[int],
    history: Sequence[TrialPage],
    measurements: Mapping[int, list[Measurement]] | None = None,
) -> tuple[list[Params], float]:
    """The sampler's points for ``indices`` given the study's history, and the seconds it took.

    Args:
        algorithm: The sampler.
        spec: The study spec.
        indices: Sampler indices.
        history: Pages of the study's finished and RUNNING trials, decoded here (so that the
            replica's event loop does not spend its time on it).
        measurements: Intermediate measurements to give the trials, by trial number, in
            place of the (unread) kept curves: the values the study's policy compared them by,
            at the rungs of successive halving or Hyperband, or at the steps where trials
            stopped under a percentile rule (``core.history.rung_measurements``,
            ``step_measurements``).
    """
    start = time.perf_counter()
    completed: list[Trial] = []
    pending: list[Trial] = []
    for page in history:
        for t in page.decode():
            if measurements and t.number in measurements:
                # A copy: a page of decoded trials hands out the caller's own objects.
                t = dataclasses.replace(t, measurements=measurements[t.number])
            # Failed and stopped trials go with the finished ones: the model learns from them.
            if t.state is TrialState.RUNNING:
                pending.append(t)
            elif t.state is not TrialState.WAITING:
                completed.append(t)
    points = get_sampler(algorithm).suggest(spec, indices, completed, pending)
    return points, time.perf_counter() - start


def run_importance(
    space: SearchSpace, objective: Objective, history: Sequence[TrialPage | Samples]
) -> Importances:
    """The importance of every parameter of ``space`` to ``objective`` (PED-ANOVA, see
    :mod:`hyperdial_server.core.importance`), from the COMPLETED trials of ``history``.

    Args:
        space: The study's search space.
        objective: The objective explained.
        history: The study's completed trials: pages, decoded here (a study of 100,000
            trials takes seconds to decode: not on the replica's event loop), or pages the
            replica reduced already (:func:`~hyperdial_server.core.importance.samples`).

    Raises:
        FailedPrecondition: Too few completed trials (``NOT_ENOUGH_TRIALS``).
    """
    parts = [
        part if isinstance(part, Samples) else samples(space, objective.name, part.decode())
        for part in history
    ]
    return ped_anova_of(space, objective, parts)


def run_recommend(spec: StudySpec, history: Sequence[TrialPage]) -> list[Recommended] | None:
    """The recommended trials of a study (see
    :func:`~hyperdial_server.samplers._recommend.recommend`), or ``None`` with too few completed
    trials for a model.

    Args:
        spec: The study spec.
        history: Pages of the study's completed trials, decoded here.
    """
    return recommend(spec, [t for page in history for t in page.decode()])


# --- Dying with the replica ---------------------------------------------------------------

# prctl(2) option: the signal this process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent pid where the parent-death signal is unavailable.
PARENT_WATCH_INTERVAL = 0.5

#: Pid of the fork server, set in the fork server by the hook at the end of this module (and so
#: inherited by every worker it forks); None in any other process tree.
fork_server_pid: int | None = None


def _set_parent_death_signal() -> bool:
    """Asks Linux for SIGKILL when the parent dies; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc, or no prctl in it
        return False


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_WATCH_INTERVAL)
    _die()


def die_with_parent(parent: int) -> None:
    """Ends this process (SIGKILL) when its parent process dies, however the parent dies.

    Linux's parent-death signal where it is available; else a daemon thread that checks the
    parent pid every :data:`PARENT_WATCH_INTERVAL` seconds. The signal is sent when the thread
    that started this process exits, so the parent must start it from a thread that lives as
    long as the parent does.

    Args:
        parent: Pid of the parent this process must not outlive. If it is not the parent any
            more (it died before the signal was set up, and this process was re-parented),
            this process ends at once.
    """
    if _set_parent_death_signal():
        # The parent may have died before the signal was set: then nothing would send it.
        if os.getppid() != parent:
            _die()
        return
    threading.Thread(
        target=_watch_parent, args=(parent,), name="hyperdial-parent-watch", daemon=True
    ).start()


#: The workers' default niceness above the server's: 0, the server's own priority. At 10 (the
#: default before ``--sampler-priority``) a worker got about a tenth of a core once training
#: jobs kept the cores busy, and Bayesian asks took seconds, while the event loop, at the
#: neighbours' priority, waited behind them anyway (docs/operations.md, "Bayesian asks on a
#: busy node").
SAMPLER_NICENESS = 0


@dataclasses.dataclass(frozen=True)
class SamplerPriority:
    """How the sampler workers compete for the CPU (``--sampler-priority``).

    Attributes:
        niceness: How much higher the workers' niceness is than the server's, 0 to 19
            (``nice``): 0 competes on equal terms, 10 gets about a tenth of a core that a
            normal-priority process keeps busy.
        batch: Whether the workers run in Linux's ``SCHED_BATCH`` class: the same share of
            the CPU for their niceness, but marked CPU-bound, so a worker that wakes does not
            preempt a running process (the event loop, a neighbour) and waits for the tick.
    """

    niceness: int = SAMPLER_NICENESS
    batch: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.niceness <= 19:
            raise ValueError(f"a niceness from 0 to 19, not {self.niceness}")

    @classmethod
    def parse(cls, text: str) -> SamplerPriority:
        """The priority written ``N`` (a niceness, 0 to 19), ``batch`` (``SCHED_BATCH`` at
        niceness 0) or ``batch:N``, as :meth:`__str__` writes it.

        Raises:
            ValueError: Anything else; the message says what is accepted.
        """
        words = text.strip().lower().split(":")
        batch = words[0] == "batch"
        number = words[1:] if batch else words
        try:
            if len(number) > 1 or (batch and number == [""]):
                raise ValueError
            return cls(int(number[0]) if number else 0, batch)
        except ValueError:
            raise ValueError(
                "N (a niceness above the server's, 0 to 19), batch (Linux's SCHED_BATCH at "
                f"niceness 0) or batch:N; not {text!r}"
            ) from None

    def __str__(self) -> str:
        if self.batch:
            return f"batch:{self.niceness}" if self.niceness else "batch"
        return str(self.niceness)


#: The workers' priority unless the operator sets one (``--sampler-priority``).
DEFAULT_SAMPLER_PRIORITY = SamplerPriority()


def _set_priority(priority: SamplerPriority) -> None:
    """A niceness (and maybe ``SCHED_BATCH``), never Linux's idle scheduling class: a worker
    in that class gets no CPU at all while normal tasks keep the cores busy, so an ask could
    wait forever on a saturated node. Where a change is not allowed or not available, the
    worker keeps the server's priority."""
    if priority.niceness:
        try:
            os.nice(priority.niceness)
        except OSError:  # not allowed here
            pass
    if priority.batch and hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError:
            pass


def start_worker(priority: SamplerPriority | None = None) -> None:
    """Runs first in each worker: its CPU priority, and death with its parent process.

    Here, not in the service module that starts the pool: an initializer is pickled by
    reference, and importing the service side would load gRPC into every worker (~15 MB each).

    Args:
        priority: How the worker competes for the CPU; ``None``:
            :data:`DEFAULT_SAMPLER_PRIORITY`.
    """
    _set_priority(priority or DEFAULT_SAMPLER_PRIORITY)
    # The parent is the fork server (whose pid the worker inherited from it), or the replica
    # itself where workers are spawned, or a fork server started without our preload.
    die_with_parent(fork_server_pid or os.getppid())


def _imported_by_fork_server() -> bool:
    """Whether the code importing this module is the fork server's preload (not a worker
    that fork server forked, whose stack holds the fork server's ``main`` too)."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return False
    # Frame 1 is this module's code; above it, the import machinery's, then the importer's.
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return frame is not None and frame.f_code is forkserver.main.__code__


if _imported_by_fork_server():
    # The replica started the fork server; with this, the fork server dies with it, and its
    # workers with the fork server (see service/_compute.py). A replica that died before this
    # line is seen by the fork server itself: its "alive" pipe is at EOF, and it exits.
    fork_server_pid = os.getpid()
    die_with_parent(os.getppid())
