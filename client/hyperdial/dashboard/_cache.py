"""The dashboard's copy of the service: the list of studies, and one cache per open study that
asks the service only for what changed.

Every browser polls the dashboard, never the service. A study's cache reads its trials once
(``Study.changes(0)``), then only the trials that changed after the revision it holds
(``Study.changes(revision)``), at most once per ``min_interval`` however many browsers poll, one
read at a time (a poll that comes while a read is under way waits for that read). A browser
sends the revision it has and gets the rows changed since, from a log of (revision, number)
kept in order of revision: a poll of a 100k-trial study in which nothing changed costs one
small ``ListTrials`` call at most, and the browser a ``304``.

Everything here runs on the dashboard's own event loop (its thread in ``hyperdial serve``),
never on a replica's.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hyperdial._aio import AsyncClient, AsyncStudy
from hyperdial._base import BaseTrial, TrialState
from hyperdial._errors import FailedPreconditionError, HyperdialError, NotFoundError
from hyperdial.dashboard._model import (
    STATES,
    encode_row,
    epoch_seconds,
    finite,
    study_description,
    trial_row,
)

__all__ = ["Directory", "StudyCache"]

#: Seconds between two checks that a watched study is still the one cached (a study deleted
#: and created again under the same id starts a new copy).
VERIFY_INTERVAL = 10.0
#: Least seconds between two reads of a study's optimal trials (``ListOptimalTrials``).
OPTIMAL_INTERVAL = 3.0
#: Least seconds between two computations of parameter importance for one objective, while
#: trials keep completing.
IMPORTANCE_INTERVAL = 15.0
#: Most trials whose learning curves are read and sent (the latest that reported).
CURVE_LIMIT = 200
#: Most ``GetTrial`` calls in flight when reading learning curves.
CURVE_CONCURRENCY = 8
#: Most ``ListOptimalTrials`` calls in flight for the list of studies.
BEST_CONCURRENCY = 4

_COMPLETED = STATES.index(TrialState.COMPLETED)
_STOPPED = STATES.index(TrialState.STOPPED)


def _error(e: HyperdialError) -> dict[str, str]:
    return {"reason": e.reason, "code": e.code.name, "message": " ".join(str(e).split())}


@dataclass
class _Importance:
    completed: int
    at: float
    payload: dict[str, Any]


class StudyCache:
    """The trials of one study as the dashboard last read them.

    Args:
        client: The dashboard's client.
        study: The study as just read (``get_study``).
        namespace: The namespace shown on the pages (``None``: unknown).
        min_interval: Least seconds between two reads of the service.
        clock: Monotonic seconds (tests move it).
    """

    def __init__(
        self,
        client: AsyncClient,
        study: AsyncStudy,
        *,
        namespace: str | None,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._min_interval = min_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._curves_lock = asyncio.Lock()
        self._importance_lock = asyncio.Lock()
        self.last_used = clock()
        self._start(study)

    def _start(self, study: AsyncStudy) -> None:
        """(Re)starts the copy from nothing, for ``study``."""
        self.study = study
        self.description = study_description(study, self._namespace)
        self._param_names = [p["name"] for p in self.description["parameters"]]
        self._objective_names = [o["name"] for o in self.description["objectives"]]
        self._constraint_names = [c["name"] for c in self.description["constraints"]]
        #: Names this copy, so that a browser holding rows of another copy (a restarted
        #: dashboard, a study created again) starts over instead of mixing them.
        self.epoch = secrets.token_hex(6)
        self.revision = 0
        self.update_time: float | None = epoch_seconds(study.update_time)
        self._rows: dict[int, str] = {}
        self._revisions: dict[int, int] = {}
        self._states: dict[int, int] = {}
        self._measured: dict[int, int] = {}
        self._log: list[tuple[int, int]] = []
        self.counts = [0] * len(STATES)
        self.optimal: list[int] = []
        self._optimal_revision = -1
        self._optimal_at = -math.inf
        #: Bumped whenever what a response holds changes without a new revision (the optimal
        #: trials, an error): part of the ETag.
        self.generation = 0
        self.error: dict[str, str] | None = None
        self._read_at = -math.inf
        self._verified_at = self._clock()
        self._curves: dict[int, tuple[int, list[list[float | None]]]] = {}
        self._importance: dict[str, _Importance] = {}

    # -- reading the service ---------------------------------------------------------------

    async def refresh(self) -> None:
        """Brings the copy up to date, unless it was read less than ``min_interval`` ago.

        An error of the service other than the study being gone is kept in :attr:`error` (the
        pages show it above the last data read); the next refresh tries again.

        Raises:
            NotFoundError: The study no longer exists (or this token no longer sees it).
        """
        self.last_used = self._clock()
        async with self._lock:
            now = self._clock()
            if now - self._read_at < self._min_interval:
                return
            self._read_at = now
            error = None
            try:
                await self._read(now)
            except NotFoundError:
                raise
            except HyperdialError as e:
                error = _error(e)
            if error != self.error:
                self.error = error
                self.generation += 1

    async def _read(self, now: float) -> None:
        if now - self._verified_at >= VERIFY_INTERVAL:
            current = await self._client.get_study(self.study.name)
            self._verified_at = now
            if current.create_time != self.study.create_time:
                self._start(current)  # deleted and created again: a new study
            else:
                self.study = current
            self.update_time = epoch_seconds(current.update_time)
        changes = await self.study.changes(self.revision)
        if changes.revision < self.revision:
            # The revision went back: the study was created again since it was cached.
            self._start(await self._client.get_study(self.study.name))
            changes = await self.study.changes(0)
        full = self.revision == 0
        self._ingest(changes.trials, full=full)
        if changes.trials and not full:
            # A trial changed since the last read, a second or so ago: near enough for "last
            # activity" until the next check of the study says exactly.
            self.update_time = round(time.time(), 3)
        self.revision = changes.revision
        await self._read_optimal(now)

    def _ingest(self, trials: Iterable[BaseTrial], *, full: bool) -> None:
        """Takes the trials of a read into the copy, and their (revision, number) into the
        log that :meth:`rows_since` searches."""
        batch = []
        for trial in trials:
            number = trial.number
            row = trial_row(
                trial,
                self._param_names,
                self._objective_names,
                trial.revision,
                self._constraint_names,
            )
            self._rows[number] = encode_row(row)
            self._revisions[number] = trial.revision
            old = self._states.get(number)
            if old is not None and old >= 0:
                self.counts[old] -= 1
            state = row[1]
            self._states[number] = state
            if state >= 0:
                self.counts[state] += 1
            if trial.measurement_count:
                self._measured[number] = trial.measurement_count
            batch.append((trial.revision, number))
        log = self._log
        if full or len(log) + len(batch) > 2 * len(self._rows) + 1024:
            # Every trial once, at its latest revision (a full read, or a log grown long).
            self._log = sorted((rev, n) for n, rev in self._revisions.items())
            return
        batch.sort()
        joined_in_order = not log or not batch or log[-1] <= batch[0]
        log.extend(batch)
        if not joined_in_order:
            # A trial read on a later page of the previous read comes again with a revision
            # above that read's: rare, and the log stays sorted.
            log.sort()

    async def _read_optimal(self, now: float) -> None:
        """The optimal trials (best or Pareto front), read again when trials changed, at most
        every ``OPTIMAL_INTERVAL`` seconds."""
        if self._optimal_revision == self.revision or now - self._optimal_at < OPTIMAL_INTERVAL:
            return
        numbers: list[int] = []
        if self.counts[_COMPLETED] or self.counts[_STOPPED]:
            numbers = sorted(t.number for t in await self.study.best_trials)
        self._optimal_revision = self.revision
        self._optimal_at = now
        if numbers != self.optimal:
            self.optimal = numbers
            self.generation += 1

    # -- what the browser gets -------------------------------------------------------------

    @property
    def etag(self) -> str:
        """Names what :meth:`rows_since` and the study's state hold now."""
        return f'"{self.epoch}.{self.revision}.{self.generation}"'

    def rows_since(self, revision: int) -> list[str]:
        """The encoded rows of the trials that changed after ``revision`` (all for 0)."""
        if revision <= 0:
            return [self._rows[n] for n in sorted(self._rows)]
        start = bisect.bisect_right(self._log, (revision, math.inf))
        numbers = dict.fromkeys(n for _, n in self._log[start:])
        return [self._rows[n] for n in numbers]

    def state_counts(self) -> dict[str, int]:
        """How many trials the copy holds in each state."""
        return {state.value: self.counts[i] for i, state in enumerate(STATES)}

    @property
    def trial_count(self) -> int:
        return len(self._rows)

    # -- learning curves -------------------------------------------------------------------

    async def curves(self, limit: int = CURVE_LIMIT) -> dict[str, Any]:
        """The learning curves of the latest ``limit`` trials that reported measurements.

        A curve is read (``get_trial`` with measurements) when its trial changed since it was
        read last; the others come from memory.
        """
        async with self._curves_lock:
            reported = sorted(self._measured)
            chosen = reported[-limit:]
            stale = [
                n for n in chosen if self._curves.get(n, (-1, []))[0] < self._revisions.get(n, 0)
            ]
            gate = asyncio.Semaphore(CURVE_CONCURRENCY)

            async def read(number: int) -> None:
                async with gate:
                    trial = await self.study.get_trial(number, with_measurements=True)
                points = [
                    [m.step, *(finite(m.values.get(name)) for name in self._objective_names)]
                    for m in trial.measurements
                ]
                self._curves[number] = (trial.revision, points)

            error = None
            try:
                await asyncio.gather(*(read(n) for n in stale))
            except NotFoundError:
                raise
            except HyperdialError as e:
                error = _error(e)
            keep = set(chosen)
            for number in [n for n in self._curves if n not in keep]:
                del self._curves[number]
            return {
                "total": len(reported),
                "limit": limit,
                "error": error,
                "curves": [[n, self._curves[n][1]] for n in chosen if n in self._curves],
            }

    # -- parameter importance --------------------------------------------------------------

    async def importance(self, objective: str) -> dict[str, Any]:
        """Parameter importance for ``objective``, computed by the service again only when
        more trials completed, and then at most every ``IMPORTANCE_INTERVAL`` seconds.

        Too few completed trials is an answer, not an error: ``{"error": {"reason":
        "NOT_ENOUGH_TRIALS", ...}}``.
        """
        async with self._importance_lock:
            completed = self.counts[_COMPLETED]
            now = self._clock()
            kept = self._importance.get(objective)
            if kept is not None and (
                kept.completed == completed or now - kept.at < IMPORTANCE_INTERVAL
            ):
                return kept.payload
            try:
                result = await self.study.parameter_importance(objective)
            except FailedPreconditionError as e:
                payload: dict[str, Any] = {"objective": objective, "error": _error(e)}
            except NotFoundError:
                raise
            except HyperdialError as e:
                # Not kept: the next poll asks again.
                return {"objective": objective, "error": _error(e)}
            else:
                payload = {
                    "objective": objective,
                    "method": result.method,
                    "trial_count": result.trial_count,
                    "parameters": [
                        {
                            "parameter": p.parameter,
                            "importance": finite(p.importance),
                            "active_trials": p.active_trials,
                        }
                        for p in result.parameters
                    ],
                }
            self._importance[objective] = _Importance(completed, now, payload)
            return payload


class Directory:
    """The list of studies as the Studies page shows it, read at most every ``min_interval``
    seconds; the best value of a study is read again only when its revision moved.

    Args:
        client: The dashboard's client.
        namespace: The namespace shown on the pages (``None``: unknown).
        min_interval: Least seconds between two reads of the list.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        namespace: str | None,
        min_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._min_interval = min_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._read_at = -math.inf
        # (name, create time, revision) -> what the list shows as the study's best.
        self._best: dict[tuple[str, float | None, int], dict[str, Any] | None] = {}
        self.studies: list[dict[str, Any]] = []
        self.error: dict[str, str] | None = None
        self._epoch = secrets.token_hex(6)
        self._version = 0

    async def refresh(self) -> None:
        """Reads the list again unless it was read less than ``min_interval`` ago; an error
        is kept in :attr:`error` beside the last list read."""
        async with self._lock:
            now = self._clock()
            if now - self._read_at < self._min_interval:
                return
            self._read_at = now
            listed, error = self.studies, None
            try:
                studies = [s async for s in self._client.list_studies()]
                best = await self._best_of(studies)
            except HyperdialError as e:
                error = _error(e)
            else:
                listed = [self._entry(s, best.get(s.name)) for s in studies]
            if (listed, error) != (self.studies, self.error):
                self.studies, self.error = listed, error
                self._version += 1

    @property
    def etag(self) -> str:
        """Names what :attr:`studies` and :attr:`error` hold now."""
        return f'"{self._epoch}.{self._version}"'

    async def _best_of(self, studies: list[AsyncStudy]) -> dict[str, dict[str, Any] | None]:
        gate = asyncio.Semaphore(BEST_CONCURRENCY)
        found: dict[str, dict[str, Any] | None] = {}
        keys: dict[str, tuple[str, float | None, int]] = {}

        async def read(study: AsyncStudy, key: tuple[str, float | None, int]) -> None:
            async with gate:
                try:
                    best = await study.best_trials
                except NotFoundError:  # deleted meanwhile
                    self._best[key] = None
                    return
            self._best[key] = _best_entry(study, best)

        todo = []
        for study in studies:
            key = (study.name, epoch_seconds(study.create_time), study.revision)
            keys[study.name] = key
            counts = study.state_counts
            if not (counts.get("COMPLETED", 0) or counts.get("STOPPED", 0)):
                self._best[key] = None
            elif key not in self._best:
                todo.append(read(study, key))
        await asyncio.gather(*todo)
        for study in studies:
            found[study.name] = self._best.get(keys[study.name])
        live = set(keys.values())
        for key in [k for k in self._best if k not in live]:
            del self._best[key]
        return found

    def _entry(self, study: AsyncStudy, best: dict[str, Any] | None) -> dict[str, Any]:
        counts = study.state_counts
        return {
            "id": study.study_id,
            "namespace": self._namespace,
            "algorithm": study.algorithm,
            "objectives": [{"name": o.name, "goal": o.goal} for o in study.objectives],
            "counts": {s.value: int(counts.get(s.value, 0)) for s in STATES},
            "trial_count": study.trial_count,
            "best": best,
            "create_time": epoch_seconds(study.create_time),
            "update_time": epoch_seconds(study.update_time),
            "revision": study.revision,
        }


def _best_entry(study: AsyncStudy, best: list[Any]) -> dict[str, Any] | None:
    """The best value of a single-objective study (and its trial), or the size of the Pareto
    front of a multi-objective one; ``None`` when no trial ranks."""
    if not best:
        return None
    objectives = study.objectives
    if len(objectives) == 1:
        trial = best[0]
        values = trial.values or {}
        return {"value": finite(values.get(objectives[0].name)), "trial": trial.number}
    return {"front": len(best)}
