"""The ``Store`` interface: where study state lives.

Contract for every implementation (the contract suite in ``tests/store/`` runs against all):

* **Pass by value.** Returned records are copies; mutating them changes nothing stored, and
  records passed in are not kept by reference.
* **Atomic steps.** Each method is one atomic step as seen by every other caller, whatever the
  number of server replicas sharing the store: two concurrent ``claim_trials`` never hand out the
  same enqueued trial or the same sampler index, two concurrent ``complete_trial`` calls on one
  trial never both succeed.
* **Namespaces.** Every method takes a namespace; studies of different namespaces never see
  each other, even with equal ids.
* **Typed errors.** Failures a caller can cause raise the errors of
  :mod:`hyperdial_server.core.errors`; a store that cannot be reached raises
  :class:`~hyperdial_server.core.errors.Unavailable`.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Trial, TrialState

#: Seconds a sampler index stays claimed without being committed before another ask may take
#: it again (covers a replica that died between ``claim_trials`` and ``commit_trials``).
DEFAULT_CLAIM_TTL = 30.0


class StaleStudy(Exception):
    """The study was deleted and created again since the caller read it (``uid`` differs).

    The caller drops its cached copy of the study and starts over.
    """


@dataclass
class Claim:
    """What one ``claim_trials`` call took for the caller.

    Attributes:
        trials: Enqueued trials handed out by this claim, already RUNNING in the store.
        indices: Sampler indices claimed; the caller computes their points and passes them to
            ``commit_trials`` with ``token`` before the claim expires.
        token: Identifies the claim of ``indices``; empty when ``indices`` is empty.
    """

    trials: list[Trial] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    token: str = ""


class Store(abc.ABC):
    """Persistent state of studies and trials. See the module docstring for the contract."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Releases connections. The store is unusable afterwards."""
        raise NotImplementedError

    @abc.abstractmethod
    async def ping(self) -> None:
        """Returns when the store answers.

        Raises:
            Unavailable: The store cannot be reached.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def create_study(self, namespace: str, study: StudyRecord) -> StudyRecord:
        """Stores a new study with no trials and returns it as stored.

        Raises:
            AlreadyExists: A study of that id exists in the namespace (reason
                ``STUDY_ALREADY_EXISTS``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def get_study(self, namespace: str, study_id: str) -> StudyRecord:
        """Returns a study, with ``trial_count`` as of now.

        Raises:
            NotFound: No such study (reason ``STUDY_NOT_FOUND``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def list_studies(
        self, namespace: str, page_size: int, after: str | None = None
    ) -> tuple[list[StudyRecord], bool]:
        """Lists studies in ascending (code point) order of id.

        Args:
            namespace: The namespace.
            page_size: Most studies to return (>= 1).
            after: Only ids strictly greater than this one; ``None`` from the start.

        Returns:
            The studies, and whether more follow.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def delete_study(self, namespace: str, study_id: str) -> None:
        """Deletes a study and everything stored for it.

        Raises:
            NotFound: No such study.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def claim_trials(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        count: int,
        *,
        capacity: int | None,
        max_trials: int | None,
        client_id: str,
        now: float,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
    ) -> Claim:
        """Takes up to ``count`` trials to hand out, in one atomic step.

        In order: enqueued (WAITING) trials, oldest first, become RUNNING with ``client_id``;
        then sampler indices whose earlier claim expired uncommitted are taken again; then new
        indices 0, 1, 2... are taken from the study's counter, never reaching ``capacity``.
        The total handed out over the study's life (enqueued trials and committed or claimed
        indices, an index re-taken after expiry counted once) never exceeds ``max_trials``.

        Args:
            namespace: The namespace.
            study_id: The study.
            uid: ``uid`` of the study as the caller read it.
            count: Most trials to take (>= 1).
            capacity: Number of distinct sampler indices (a grid's size), ``None`` for no bound.
            max_trials: The study's ``max_trials``, ``None`` for no limit.
            client_id: Recorded on the trials handed out.
            now: Current time, seconds since the epoch.
            claim_ttl: Seconds before an uncommitted claim of indices may be taken again.

        Returns:
            The claim; both lists empty when the study has nothing left.

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def commit_trials(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        token: str,
        points: Sequence[tuple[int, Params]],
        *,
        client_id: str,
        now: float,
    ) -> list[Trial]:
        """Creates one RUNNING trial per claimed index, numbered in order, in one atomic step.

        Args:
            token: ``Claim.token`` of the claim that took the indices.
            points: ``(index, params)`` for every index of that claim.

        Returns:
            The new trials, in the order of ``points``.

        Raises:
            NotFound: No such study.
            StaleStudy: The study's uid is not ``uid``.
            FailedPrecondition: The claim expired and its indices may have been taken again
                (reason ``CLAIM_EXPIRED``); nothing was created.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def create_trial(
        self,
        namespace: str,
        study_id: str,
        trial: Trial,
        *,
        score: float | None = None,
        uid: str | None = None,
    ) -> Trial:
        """Adds a trial with the next number: WAITING (enqueued) or already finished.

        Args:
            trial: The trial; its ``number`` is ignored and assigned by the store. Its state
                is WAITING, COMPLETED or FAILED.
            score: For a COMPLETED trial of a single-objective study: its rank among completed
                trials, lower is better (see ``best_trial``).
            uid: When given, the ``uid`` of the study the caller validated ``trial`` against.

        Raises:
            NotFound: No such study.
            StaleStudy: ``uid`` is given and the study's uid differs; nothing was created.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def complete_trial(
        self,
        namespace: str,
        study_id: str,
        number: int,
        *,
        values: Mapping[str, float] | None,
        failure_reason: str | None,
        metadata: Mapping[str, str],
        now: float,
        score: float | None = None,
        uid: str | None = None,
    ) -> Trial:
        """Ends a RUNNING trial, in one atomic step.

        Exactly one of ``values`` (the trial becomes COMPLETED) and ``failure_reason`` (FAILED)
        is given. ``metadata`` is merged into the trial's metadata.

        Args:
            score: For a single-objective study and ``values``: rank among completed trials,
                lower is better.
            uid: When given, the ``uid`` of the study the caller validated ``values`` against.

        Raises:
            NotFound: No such study or trial.
            StaleStudy: ``uid`` is given and the study's uid differs; nothing changed.
            FailedPrecondition: The trial is not RUNNING (reason ``TRIAL_NOT_RUNNING``);
                nothing changed.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def get_trial(self, namespace: str, study_id: str, number: int) -> Trial:
        """Returns one trial.

        Raises:
            NotFound: No such study (``STUDY_NOT_FOUND``) or trial (``TRIAL_NOT_FOUND``).
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def list_trials(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
    ) -> tuple[list[Trial], bool]:
        """Lists trials in ascending order of number.

        Args:
            states: Only trials in one of these states; ``None`` for every state.
            page_size: Most trials to return (>= 1).
            after: Only numbers strictly greater than this one.

        Returns:
            The trials, and whether more follow. The cost is bounded by the page size, not by
            the size of the study.

        Raises:
            NotFound: No such study.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """The COMPLETED trial of lowest ``score``, the lowest number among ties; ``None`` if
        no completed trial has a score.

        Raises:
            NotFound: No such study.
        """
        raise NotImplementedError
