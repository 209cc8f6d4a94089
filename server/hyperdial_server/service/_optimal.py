"""The orchestration of ``ListOptimalTrials``: the best trials judged by the values they
reported, or by a model's prediction of their noise-free values (the recommendation).

Judged by the model, the study's trials are read as a Bayesian ask reads them
(``Store.model_history``: the whole of a study of up to 300 trials; of a longer one its 150
best, or its Pareto front's, and the 150 changed last), still encoded where the store keeps
them so, and handed to the :class:`~hyperdial_server.service._compute.SamplerWorkers`, whose
worker decodes them and fits the Bayesian sampler's model
(:func:`hyperdial_server.samplers._recommend.recommend`) on the completed ones: tens to hundreds
of milliseconds of CPU, none of it on the replica's event loop, and the same at 100,000 trials
as at 300. With too few completed trials for a model, the answer is the observed one, without
predictions.

Only feasible trials are optimal, on either basis. Observed, only feasible trials have a score
for the store's best trial, and a Pareto front is of feasible trials
(:meth:`~._trials.Trials.optimal`). By the model, every completed trial is fitted on (an
infeasible trial's objective values are measurements too) and only feasible points are
recommended (:func:`~hyperdial_server.samplers._recommend.recommend`).

Like the Asker it takes and returns core types and raises typed errors, never protobuf or gRPC
(``tests/test_layers.py`` checks it).
"""

from __future__ import annotations

import dataclasses

from hyperdial_server.core.pareto import OptimalityBasis
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Trial
from hyperdial_server.samplers._recommend import MIN_RECOMMEND_TRIALS, Recommended
from hyperdial_server.service._asker import MODEL_HISTORY_BEST, MODEL_HISTORY_RECENT
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._trials import Trials
from hyperdial_server.store import Store


@dataclasses.dataclass(frozen=True)
class Optimal:
    """The answer of ``ListOptimalTrials``.

    Attributes:
        trials: The best trial, or the Pareto front, in order of number.
        predictions: Judged by the model: the recommendation of each trial of ``trials``, in
            the same order. ``None`` when judged by the observed values (the basis asked for,
            or too few completed trials for a model).
    """

    trials: list[Trial]
    predictions: list[Recommended] | None = None


async def optimal_trials(
    store: Store,
    samplers: SamplerWorkers,
    trials: Trials,
    namespace: str,
    record: StudyRecord,
    basis: OptimalityBasis,
    *,
    now: float,
) -> Optimal:
    """The study's best trial, or with several objectives its Pareto front, judged on
    ``basis``.

    Args:
        store: Where the study lives.
        samplers: Where the model is fitted.
        trials: Reads the observed answer (:meth:`~._trials.Trials.optimal`).
        namespace: The caller's namespace.
        record: The study.
        basis: What the trials are judged by.
        now: The time, to expire the study's due leases first, as every read of trials does.

    Raises:
        NotFound: No such study.
        Unavailable: The worker died twice, or the replica is stopping (``SAMPLER_UNAVAILABLE``).
    """
    if basis is OptimalityBasis.MODEL:
        recommended = await _recommended(store, samplers, namespace, record, now)
        if recommended is not None:
            return Optimal([r.trial for r in recommended], recommended)
    return Optimal(await trials.optimal(namespace, record))


async def _recommended(
    store: Store, samplers: SamplerWorkers, namespace: str, record: StudyRecord, now: float
) -> list[Recommended] | None:
    """The recommendation from the study's completed trials; ``None`` with too few of them."""
    # The window a Bayesian ask reads: the model fits at most 200 trials anyway, and the trial
    # it recommends (lowest predicted mean) is among the best observed of a long study, or was
    # measured lately. A point measured again is aggregated over its measurements in it.
    page = await store.model_history(
        namespace,
        record.study_id,
        best=MODEL_HISTORY_BEST,
        recent=MODEL_HISTORY_RECENT,
        running=0,
        front=len(record.spec.objectives) > 1,
        now=now,
    )
    if page.size is not None and page.size < MIN_RECOMMEND_TRIALS:
        return None  # no model from so few: answered without a worker
    return await samplers.recommend(record.spec, [page], study=f"{namespace}/{record.study_id}")
