"""``SamplerWorkers``: where model-based samplers compute, away from the replica's event loop.

A Bayesian suggestion is tens of milliseconds of numpy and scipy, much of it Python code that
holds the GIL. In a thread of the server process it would take the GIL from the event loop in
5 ms slices, and every other call on the replica (random asks, tells, health checks) would wait
behind it. Worker processes have a GIL each: the event loop only sends the sampler's inputs and
receives its points. Samplers are pure functions of their inputs, so any worker may serve any
study, and a worker that dies loses nothing but the ask it computed (which fails with
UNAVAILABLE and may be retried).

Workers start from a fork server that has already imported the samplers, so starting one
costs milliseconds, not the seconds of importing numpy and scipy; they start on the first
model-based ask, so a replica that serves only grid, random and Sobol studies runs none. They
run at a lower CPU priority (niceness 10) than the server process: when the cores are busy,
short calls (asks of other studies, tells, health checks) get most of them and suggestions
take longer, but always progress.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import Algorithm, StudySpec
from hyperdial_server.samplers._worker import run_suggest
from hyperdial_server.store import TrialPage

#: How much lower the workers' CPU priority is than the server's (``nice``): when the cores are
#: busy, the event loop, answering short calls, goes first.
SAMPLER_NICENESS = 10


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


def _lower_priority() -> None:
    """Runs first in each worker. A niceness, not Linux's idle scheduling class: a worker in
    that class gets no CPU at all while normal tasks keep the cores busy, so an ask could
    wait forever on a saturated node; with niceness 10 it still gets about a tenth."""
    try:
        os.nice(SAMPLER_NICENESS)
    except OSError:  # not allowed here: the workers then compete on equal terms
        pass


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that imported these already.
        ctx.set_forkserver_preload(["hyperdial_server.samplers._worker"])
        return ctx
    return multiprocessing.get_context("spawn")


class SamplerWorkers:
    """A pool for model-based samplers: worker processes, or threads when ``processes`` is 0.

    Args:
        processes: Worker processes; 0 computes in a thread pool of this process instead (for
            an embedding that cannot start processes; other calls then share the GIL with the
            samplers).
    """

    def __init__(self, processes: int = DEFAULT_SAMPLER_PROCESSES) -> None:
        if processes < 0:
            raise ValueError(f"sampler processes must be 0 or more; got {processes}")
        self.processes = processes
        self._executor: Executor | None = None
        self._closed = False

    def _pool(self) -> Executor:
        if self._closed:
            raise Unavailable("the server is stopping; retry on another replica")
        if self._executor is None:
            if self.processes:
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=_context(), initializer=_lower_priority
                )
            else:
                self._executor = ThreadPoolExecutor(
                    max(2, min(4, _usable_cores())), thread_name_prefix="hyperdial-sampler"
                )
        return self._executor

    async def suggest(
        self,
        algorithm: Algorithm,
        spec: StudySpec,
        indices: Sequence[int],
        history: Sequence[TrialPage],
    ) -> tuple[list[Params], float]:
        """The sampler's points for ``indices`` and its compute seconds, from a worker, which
        decodes the ``history`` pages (the study's finished and RUNNING trials) itself.

        Raises:
            Unavailable: The worker died twice in a row (e.g. killed for memory), or the
                server is stopping.
        """
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            pool = self._pool()
            try:
                return await loop.run_in_executor(
                    pool, run_suggest, algorithm, spec, list(indices), list(history)
                )
            except BrokenProcessPool:
                # A worker died: this pool is unusable. The next attempt starts a new one.
                if self._executor is pool:
                    self._executor = None
                    pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 1:
                    raise Unavailable(
                        "the sampler's worker process died twice computing this suggestion; "
                        "retry, and check the replica's memory limit"
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stops the workers once they finish what they are computing; suggestions not started
        yet are cancelled, and later ones answer UNAVAILABLE."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
