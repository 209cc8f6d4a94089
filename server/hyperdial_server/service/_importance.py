"""The orchestration of ``ComputeParameterImportance``: read a study's completed trials, rank its
parameters in a worker.

The study's record is read afresh (not from the spec cache): the objective is checked against
the spec the trials were told under, and one more read is nothing beside reading every
completed trial. The trials are read in pages of 1000, still encoded where the store keeps them
so (Redis), and handed to the :class:`~hyperdial_server.service._compute.SamplerWorkers`, whose
worker decodes them and computes (:func:`hyperdial_server.core.importance.ped_anova_of`): a
study of 100,000 trials takes seconds of CPU there, and none on the replica's event loop.

A store that keeps trials decoded (the memory store) hands out pages of ``Trial`` objects, and
sending those to a worker would pickle them in one call that holds the GIL, so stops the event
loop, for about 0.9 s per 100,000 trials. Each such page is reduced first, in a thread, to the
arrays the computation reads (:func:`hyperdial_server.core.importance.samples`: Python code,
which lets the event loop run between its bytecodes); arrays pickle as raw bytes.

Like the Asker it takes and returns core types and raises typed errors, never protobuf or gRPC
(``tests/test_layers.py`` checks it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from hyperdial_server.core.errors import NotFound
from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.importance import (
    MIN_TRIALS,
    Importances,
    Samples,
    not_enough_trials,
    samples,
)
from hyperdial_server.core.study import Objective, StudySpec
from hyperdial_server.core.trial import TrialState
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._spec_cache import SpecCache
from hyperdial_server.store import Store

#: Trials per store read.
PAGE_SIZE = 1000


async def parameter_importance(
    store: Store,
    samplers: SamplerWorkers,
    specs: SpecCache,
    namespace: str,
    study_id: str,
    objective: Callable[[StudySpec], Objective],
    *,
    admit: Callable[[], AbstractAsyncContextManager[None]],
    now: float,
) -> Importances:
    """The importance of every parameter of a study to one of its objectives, from its
    COMPLETED trials (FAILED, STOPPED, INFEASIBLE and RUNNING ones are not read). A completed
    trial whose values break an outcome constraint counts: its objective values were measured
    all the same.

    Args:
        store: Where the study lives.
        samplers: Where the computation runs.
        specs: The replica's spec cache, refreshed with the record read here.
        namespace: The caller's namespace.
        study_id: The study.
        objective: Picks the objective from the study's spec (``InvalidArgument`` when the
            request names none of its objectives).
        admit: Admits the read of the trials (the replica's budget of heavy reads); the
            computation runs after it, in a worker.
        now: The time, to expire the study's due leases first, as every read of trials does.

    Raises:
        NotFound: No such study.
        InvalidArgument: Whatever ``objective`` raises.
        ResourceExhausted: Whatever ``admit`` raises (``TOO_MANY_REQUESTS``).
        FailedPrecondition: Too few completed trials (``NOT_ENOUGH_TRIALS``).
        Unavailable: The worker died twice, or the replica is stopping (``SAMPLER_UNAVAILABLE``).
    """
    try:
        record = await store.get_study(namespace, study_id)
    except NotFound:
        specs.forget(namespace, study_id)
        raise
    specs.put(namespace, record)
    chosen = objective(record.spec)
    pages: list[TrialPage] = []
    after = 0
    async with admit():
        while True:
            page, more = await store.list_trial_page(
                namespace,
                study_id,
                states=[TrialState.COMPLETED],
                page_size=PAGE_SIZE,
                after=after,
                now=now,
            )
            pages.append(page)
            if not more or not page.last:
                break
            after = page.last
            # Other calls run between pages: a store that answers without suspending (the
            # memory store) would otherwise hold the event loop for the whole read.
            await asyncio.sleep(0)
    sizes = [page.size for page in pages]
    if None not in sizes and sum(s or 0 for s in sizes) < MIN_TRIALS:
        # Too few to compute (every completed trial has a value of every objective): answered
        # here, without a worker.
        raise not_enough_trials(sum(s or 0 for s in sizes))
    space = record.spec.space
    history: list[TrialPage | Samples] = [
        await asyncio.to_thread(samples, space, chosen.name, page.decode())
        if page.decoded
        else page
        for page in pages
    ]
    return await samplers.importance(space, chosen, history, study=f"{namespace}/{study_id}")
