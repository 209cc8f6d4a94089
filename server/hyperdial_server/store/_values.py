"""The values ``Store`` methods take and return (request ids, claims, one-step asks), and the
constants of the contract. See :mod:`._base` for the contract itself."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from hyperdial_server.core.space import Params
from hyperdial_server.core.trial import Trial

#: Seconds a sampler index stays claimed without being committed (or renewed) before another
#: ask may take it again (covers a replica that died or froze between ``claim_trials`` and
#: ``commit_trials``). Short, because an ask that computes longer renews its claim; a retry of
#: an ask stuck on a frozen replica takes it over after this long.
DEFAULT_CLAIM_TTL = 10.0
#: Most leases one call expires lazily; the rest wait for the next call or the sweep, so the
#: cost of a call stays bounded whatever the number of trials.
EXPIRE_BATCH = 100
#: Most steps :meth:`Store.percentile_values` returns the values of (the steps where the most
#: stopped trials made their last report): bounds its reply whatever the curves' length.
PERCENTILE_STEPS = 16


@dataclass(frozen=True)
class RequestId:
    """Makes one mutating call idempotent.

    Attributes:
        value: The caller's request id (1 to 128 characters); unique per study.
        ttl: Seconds the answer is kept for retries.
        attempt: For asks: a random id of this execution of the call, so that its own second
            step (or its own retry of a step) is told apart from a concurrent retry.
        handed: For asks: numbers of the trials this execution handed out in earlier steps,
            part of its answer.
        fingerprint: A digest of the call's payload (text without ``|``), recorded with the
            answer; a later call with the same id and another fingerprint is refused
            (``REQUEST_ID_MISMATCH``) instead of answered. Empty: no check, as for records
            made before fingerprints existed.
    """

    value: str
    ttl: float
    attempt: str = ""
    handed: tuple[int, ...] = ()
    fingerprint: str = ""


@dataclass
class Reissue:
    """The point of a lease-expired trial, claimed to be handed out again as a new trial.

    Attributes:
        source: Number of the expired trial.
        params: Its parameters; the new trial gets them unchanged.
        metadata: Its metadata; the new trial gets a copy.
    """

    source: int
    params: Params
    metadata: dict[str, str] = field(default_factory=dict)


class StaleStudy(Exception):
    """The study was deleted and created again since the caller read it (``uid`` differs).

    The caller drops its cached copy of the study and starts over.
    """


@dataclass
class Claim:
    """What one ``claim_trials`` call took for the caller.

    Attributes:
        trials: Trials handed out by this claim, already RUNNING in the store: the caller's own
            RUNNING trials (``client_id`` resume), then enqueued ones. With ``replayed``, the
            recorded answer of the request id instead.
        indices: Sampler indices claimed; the caller computes their points and passes them to
            ``commit_trials`` with ``token`` before the claim expires.
        reissues: Points of lease-expired trials claimed to be handed out again; the caller
            passes them to ``commit_trials`` with ``token``.
        token: Identifies the claim of ``indices`` and ``reissues``; empty when both are empty.
        replayed: The request id was answered before: ``trials`` is that answer (as the trials
            are now) and nothing changed.
        pending: When nothing was handed out: trials still RUNNING plus claims not committed
            yet, whose points may come back to the study if their leases or claims expire.
    """

    trials: list[Trial] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    reissues: list[Reissue] = field(default_factory=list)
    token: str = ""
    replayed: bool = False
    pending: int = 0


class Fallback(str, enum.Enum):
    """Why a one-step ask (``commit_reserved``) created nothing and needs the two steps.

    The values are the codes ``lua/commit_reserved.lua`` answers (the Redis store parses them
    once); the ``str`` base keeps them equal to those codes, and makes :attr:`NONE` (``""``)
    false, so ``if fast.fallback:`` reads "if the ask fell back".
    """

    #: The trials were created: no fallback.
    NONE = ""
    #: The request id has a record (a retry, or an id of another call).
    REQUEST_ID = "REQUEST_ID"
    #: The client holds RUNNING trials, which its ask resumes first.
    CLIENT_HOLDS_TRIALS = "CLIENT_HOLDS_TRIALS"
    #: Points of lease-expired trials wait to be handed out again.
    REISSUE = "REISSUE"
    #: Enqueued (WAITING) trials wait.
    ENQUEUED = "ENQUEUED"
    #: A claim of indices or points expired uncommitted, and is handed out again first.
    EXPIRED_CLAIM = "EXPIRED_CLAIM"
    #: The points would take the study past its ``max_trials``.
    MAX_TRIALS = "MAX_TRIALS"
    #: The store has no one-step asks (:attr:`Store.one_step_asks` is false).
    UNSUPPORTED = "UNSUPPORTED"


@dataclass
class FastAsk:
    """What one ``commit_reserved`` call did.

    Attributes:
        trials: The new RUNNING trials, in the order of the points; empty with ``fallback``.
        fallback: :attr:`Fallback.NONE` when the trials were created; else why the ask needs
            the two steps (nothing was created).
    """

    trials: list[Trial] = field(default_factory=list)
    fallback: Fallback = Fallback.NONE
