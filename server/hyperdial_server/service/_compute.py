"""``SamplerWorkers``: where model-based samplers compute, away from the replica's event loop.

A Bayesian suggestion is tens of milliseconds of numpy and scipy, much of it Python code that
holds the GIL. In a thread of the server process it would take the GIL from the event loop in
5 ms slices, and every other call on the replica (random asks, tells, health checks) would wait
behind it. Worker processes have a GIL each: the event loop only sends the sampler's inputs and
receives its points. Samplers are pure functions of their inputs, so any worker may serve any
study, and a worker that dies loses nothing but the ask it computed (which fails with
UNAVAILABLE and may be retried). Parameter importance (``ComputeParameterImportance``) runs
there too: decoding and reading a study of 100,000 trials takes seconds of CPU; and so does the
recommendation (``ListOptimalTrials`` by the model), which fits the Bayesian sampler's model.

Workers start from a fork server that has already imported the samplers, so starting one
costs milliseconds, not the seconds of importing numpy and scipy; they start on the first
model-based ask, so a replica that serves only grid, random and Sobol studies runs none. They
run at the CPU priority the operator sets (``--sampler-priority``; by default the server's own,
so that on a node whose cores training jobs keep busy a suggestion still gets a fair share of
one: docs/operations.md, "Bayesian asks on a busy node"); never in the idle class, so they
always progress.

None of these processes outlives the replica, however it ends (SIGKILL and out-of-memory kills
included): the fork server gets SIGKILL when the replica dies and each worker when the fork
server dies (Linux's parent-death signal, or a thread that watches the parent pid elsewhere),
and multiprocessing's resource tracker exits once no process holds its pipe any more.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.forkserver
import os
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from hyperdial_server import _tracing as tracing
from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.importance import Importances, Samples
from hyperdial_server.core.space import Params, SearchSpace
from hyperdial_server.core.study import Algorithm, Objective, StudySpec
from hyperdial_server.core.trial import Measurement
from hyperdial_server.samplers._recommend import Recommended
from hyperdial_server.samplers._worker import (
    DEFAULT_SAMPLER_PRIORITY,
    SamplerPriority,
    run_importance,
    run_recommend,
    run_suggest,
    start_worker,
)
from hyperdial_server.service._fair import FairQueue

T = TypeVar("T")

#: ``ErrorInfo.reason`` of an ask whose sampler could not compute: its worker process died (e.g.
#: killed for memory), or the replica is stopping. UNAVAILABLE: the ask may be retried.
SAMPLER_UNAVAILABLE = "SAMPLER_UNAVAILABLE"


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


#: Default number of worker processes: one per core but one, at least 1 and at most 4. The core
#: left over keeps the event loop (and Redis, when it runs alongside) answering short calls
#: promptly while Bayesian asks compute: with every core busy, even at a low priority, the p99
#: of a RANDOM ask triples on a 2-core machine (bench/README.md).
DEFAULT_SAMPLER_PROCESSES = max(1, min(4, _usable_cores() - 1))


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that imported these already; importing the module also
        # ties the fork server's life to this process's (samplers/_worker.py).
        ctx.set_forkserver_preload(["hyperdial_server.samplers._worker"])
        return ctx
    return multiprocessing.get_context("spawn")


class _LifelongThread:
    """Runs functions in one daemon thread that lives as long as this process.

    The fork server dies by the parent-death signal, which Linux sends when the *thread* that
    started it exits, not the process. Started by the thread of an event loop that stops
    before the process does (a server run in a thread, as in the tests or an embedding), it
    would die with that thread, taking the workers of every other pool of the process along.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] | None = None
        self._pid = 0

    def run(self, fn: Callable[[], object]) -> object:
        """``fn()`` run in the thread; its result, or its exception raised here."""
        done: Future[object] = Future()
        with self._lock:
            if self._jobs is None or self._pid != os.getpid():  # none yet, or a forked child
                self._jobs, self._pid = queue.SimpleQueue(), os.getpid()
                threading.Thread(
                    target=self._serve,
                    args=(self._jobs,),
                    name="hyperdial-forkserver-starter",
                    daemon=True,
                ).start()
            self._jobs.put((fn, done))
        return done.result()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]]) -> None:
        while True:
            fn, done = jobs.get()
            try:
                done.set_result(fn())
            except BaseException as e:  # handed to the caller
                done.set_exception(e)


_starter = _LifelongThread()


def _ensure_fork_server(ctx: multiprocessing.context.BaseContext) -> None:
    """Starts the fork server, if ``ctx`` uses one and it is not running, from the lifelong
    thread. The pool's first worker would otherwise start it from the thread that asks."""
    if ctx.get_start_method() == "forkserver":
        _starter.run(multiprocessing.forkserver.ensure_running)


class SamplerWorkers:
    """A pool for model-based samplers (and for parameter importance, which reads a whole
    study as they do): worker processes, or threads when ``processes`` is 0.

    Args:
        processes: Worker processes; 0 computes in a thread pool of this process instead (for
            an embedding that cannot start processes; other calls then share the GIL with the
            samplers).
        priority: How the worker processes compete for the CPU (``--sampler-priority``);
            threads keep the server's.
    """

    def __init__(
        self,
        processes: int = DEFAULT_SAMPLER_PROCESSES,
        priority: SamplerPriority = DEFAULT_SAMPLER_PRIORITY,
    ) -> None:
        if processes < 0:
            raise ValueError(f"sampler processes must be 0 or more; got {processes}")
        self.processes = processes
        self.priority = priority
        self._executor: Executor | None = None
        self._closed = False
        self._closing: threading.Thread | None = None
        # Computations wait here, by study, for a worker (``_fair``): as many run at once as
        # the pool has workers.
        self.queue = FairQueue(processes or _thread_count())

    def _pool(self) -> Executor:
        if self._closed:
            raise Unavailable(
                "the server is stopping and computes no more suggestions; retry on another replica",
                reason=SAMPLER_UNAVAILABLE,
            )
        if self._executor is None:
            if self.processes:
                ctx = _context()
                _ensure_fork_server(ctx)
                self._executor = ProcessPoolExecutor(
                    self.processes,
                    mp_context=ctx,
                    initializer=start_worker,
                    initargs=(self.priority,),
                )
            else:
                self._executor = ThreadPoolExecutor(
                    _thread_count(), thread_name_prefix="hyperdial-sampler"
                )
        return self._executor

    async def suggest(
        self,
        algorithm: Algorithm,
        spec: StudySpec,
        indices: Sequence[int],
        history: Sequence[TrialPage],
        measurements: Mapping[int, list[Measurement]] | None = None,
        *,
        study: str = "",
    ) -> tuple[list[Params], float]:
        """The sampler's points for ``indices`` and its compute seconds, from a worker, which
        decodes the ``history`` pages (the study's finished and RUNNING trials) itself and
        gives the trials their ``measurements`` (by trial number; see
        :func:`~hyperdial_server.samplers._worker.run_suggest`). ``study`` names the line the
        computation waits in for a worker (:class:`~._fair.FairQueue`).

        Raises:
            Unavailable: Reason ``SAMPLER_UNAVAILABLE``: the worker died twice in a row
                (e.g. killed for memory), or the server is stopping.
        """
        return await self._run(
            study,
            f"the {algorithm.name} sampler's worker process died (killed, e.g. for memory, or "
            "crashed) while computing this suggestion",
            lambda: tracing.sampler(algorithm.name, len(indices), history),
            run_suggest,
            algorithm,
            spec,
            list(indices),
            list(history),
            dict(measurements or {}),
        )

    async def importance(
        self,
        space: SearchSpace,
        objective: Objective,
        history: Sequence[TrialPage | Samples],
        *,
        study: str = "",
    ) -> Importances:
        """The importance of every parameter of ``space`` to ``objective``, from a worker,
        which decodes the ``history`` pages (the study's completed trials, or what the replica
        reduced them to) itself (see :func:`~hyperdial_server.samplers._worker.run_importance`).

        Raises:
            FailedPrecondition: Too few completed trials (``NOT_ENOUGH_TRIALS``).
            Unavailable: Reason ``SAMPLER_UNAVAILABLE``: the worker died twice in a row, or
                the server is stopping.
        """
        return await self._run(
            study,
            "the worker process that computes parameter importance died (killed, e.g. for "
            "memory, or crashed)",
            lambda: tracing.importance(_count(history)),
            run_importance,
            space,
            objective,
            list(history),
        )

    async def recommend(
        self, spec: StudySpec, history: Sequence[TrialPage], *, study: str = ""
    ) -> list[Recommended] | None:
        """The recommended trials of a study, from a worker, which decodes the ``history``
        pages (the study's completed trials) itself (see
        :func:`~hyperdial_server.samplers._worker.run_recommend`); ``None`` with too few
        completed trials for a model.

        Raises:
            Unavailable: Reason ``SAMPLER_UNAVAILABLE``: the worker died twice in a row, or
                the server is stopping.
        """
        return await self._run(
            study,
            "the worker process that computes the recommendation died (killed, e.g. for "
            "memory, or crashed)",
            lambda: tracing.recommendation(history),
            run_recommend,
            spec,
            list(history),
        )

    async def _run(
        self,
        study: str,
        died: str,
        span: Callable[[], AbstractContextManager[Any]],
        fn: Callable[..., T],
        *args: Any,
    ) -> T:
        """``fn(*args)`` in a worker once it is ``study``'s turn; run again in a new pool once
        if the worker dies.

        Args:
            study: The line the computation waits in (any string naming its study).
            died: What the error says happened when the second worker died too.
            span: Opens the trace span of an attempt.
        """
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            pool: Executor | None = None
            try:
                # A span per attempt, around the wait for a turn, the submit and the wait in
                # this process (the worker has no tracing); a shared no-op when tracing is off.
                with span():
                    async with self.queue.turn(study):
                        # The pool of now: one replaced while this waited is gone.
                        pool = self._pool()
                        return await loop.run_in_executor(pool, fn, *args)
            except BrokenProcessPool:
                # A worker died: this pool is unusable. The next attempt starts a new one.
                if pool is not None and self._executor is pool:
                    self._executor = None
                    pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 1:
                    raise Unavailable(
                        f"{died}, and so did the one that computed it again; retry, and check "
                        "the replica's memory limit and its log",
                        reason=SAMPLER_UNAVAILABLE,
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stops the workers once they finish what they are computing; suggestions not started
        yet are cancelled, and later ones answer UNAVAILABLE."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            # Waited for in a thread of its own, so the caller (the event loop) does not block
            # and `wait_closed` can see the pool's manager thread finish: one still closing its
            # pipe when the interpreter exits races concurrent.futures' exit hook, which then
            # writes to the closed pipe ("Bad file descriptor" on stderr after "stopped").
            self._closing = threading.Thread(
                target=executor.shutdown,
                kwargs={"wait": True, "cancel_futures": True},
                name="hyperdial-sampler-stop",
                daemon=True,
            )
            self._closing.start()

    def wait_closed(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for the workers stopped by ``close`` to be gone;
        whether they are (a computation in flight may outlast a short wait)."""
        if self._closing is None:
            return True
        self._closing.join(timeout)
        return not self._closing.is_alive()


def _thread_count() -> int:
    """Threads of the pool that computes in this process (``processes=0``)."""
    return max(2, min(4, _usable_cores()))


def _count(history: Sequence[TrialPage | Samples]) -> int | None:
    """How many trials ``history`` holds, if known without decoding it."""
    sizes = [len(part) if isinstance(part, Samples) else part.size for part in history]
    return None if None in sizes else sum(s for s in sizes if s is not None)
