"""Redis key names: the one place that builds them.

Every key of a study shares the hash tag ``{<namespace>/<study_id>}``, so a study lives in one
Redis Cluster slot and every Lua script touches keys of one slot only::

    hd:{ns/id}:study            hash: record (study JSON), uid, trials (count = last number),
                                next_index (sampler index counter), handed_out (max_trials count),
                                create_request, create_request_until, create_request_fp (the
                                request id of CreateStudy, its time, its payload fingerprint),
                                revision (change counter; absent: 0), update_time (the ``now``
                                of the last change of a trial, as ``repr`` text; absent: none),
                                front_seen (how many trials became COMPLETED or STOPPED in
                                steps that kept the Pareto front, see ``front``; absent: 0)
    hd:{ns/id}:trials           hash: trial number -> stored trial JSON
    hd:{ns/id}:numbers          sorted set: every trial number (score = number)
    hd:{ns/id}:state:<STATE>    sorted set per ``TrialState`` (WAITING, RUNNING, COMPLETED,
                                FAILED, STOPPED, INFEASIBLE): trial numbers in that state; a
                                missing key is an empty set (Redis drops empty ones)
    hd:{ns/id}:queue            list: WAITING trial numbers, oldest first
    hd:{ns/id}:claims           sorted set: "<index>:<token>" scored by claim deadline
    hd:{ns/id}:scores           sorted set: zero-padded trial number scored by ``score``
    hd:{ns/id}:leases           sorted set: RUNNING trial numbers scored by lease deadline
    hd:{ns/id}:reissue          sorted set: numbers of lease-expired trials whose point waits to
                                be handed out again (score = number)
    hd:{ns/id}:expired          sorted set: numbers of lease-expired trials that still take a
                                late result (score = number)
    hd:{ns/id}:owners           hash: RUNNING trial number -> client_id (non-empty ones only)
    hd:{ns/id}:holders          sorted set, all scores 0: "<client_id>\0<zero-padded number>"
                                per RUNNING trial with a client_id, so a client's trials are
                                one lexicographic range (``client_id`` resume)
    hd:{ns/id}:requests         hash: request id -> recorded answer (idempotent retries),
                                then "|<payload fingerprint>" if the call gave one
    hd:{ns/id}:request_times    sorted set: request id scored by the time its record expires
    hd:{ns/id}:changes          sorted set: every trial number, scored by the revision of its
                                last change (``touch`` in ``lua/_lib.lua``: each change of a
                                trial's record or lease takes the study's next revision), so
                                the trials changed after a revision are one range in order of
                                revision; a trial stored before revisions existed has no
                                member until it changes
    hd:{ns/id}:front            hash, the study's Pareto front (``Store.pareto_front``):
                                "<number>" -> the front vector of each trial on it (its
                                oriented objective values as ``repr`` texts joined by ","),
                                "u" -> the uid of the study it is of. Every step that makes a
                                trial COMPLETED or STOPPED keeps it and counts the trial in the
                                study's front_seen. The front is exact while "u" is the study's
                                uid and front_seen the number of its COMPLETED and STOPPED
                                trials (neither state is ever left); otherwise (a study stored
                                before fronts were kept, a trial finished by an older server,
                                a front left behind by an older server's DeleteStudy) it is
                                computed again and put back
    hd:{ns/id}:deleted          hash: request ids of ``DeleteStudy`` calls that deleted the
                                study -> "<until>[|<payload fingerprint>]"; a key with a TTL
                                that outlives the study on purpose

Early stopping (intermediate reports, ``add_measurement``) adds four keys. Their members and
fields are built in Python (:mod:`._codec_reports`): ``<number>`` is a trial number and
``<step>`` a step, both zero-padded to 20 digits; ``<sortable>`` is an oriented value (lower is
better) as 16 hex digits whose text order is the order of the values; ``<value>`` the same
value as exact ``repr`` text, which Lua reads back::

    hd:{ns/id}:es_state         hash, per trial that reported: "<n>" -> its bookkeeping
                                "<last step>|<count>|<kept>|<next rung>|<best step>|<best>|
                                <score>|<stride>|<front vector>" (the last field, possibly
                                empty, is missing from lines of older servers), "<n>:v" ->
                                the values of its last report (canonical JSON), "<n>:d" ->
                                the decision of its last report (JSON; its stop decision once
                                STOPPED), "<n>:r" -> its values at rungs, in order of
                                recording ("<bracket>|<rung>|<value>;" each, the same as in
                                es_rungs), "<n>@<step>" (step in decimal) -> the value a
                                percentile rule recorded for it at the step (the same as in
                                es_steps), and "rungs" and "steps" -> how many values those
                                fields hold (equal to the sizes of es_rungs and es_steps unless
                                an older server, which kept neither kind, recorded some): what
                                a model reads of the trials it takes
    hd:{ns/id}:es_curves        sorted set, all scores 0: "<number>|<step>|<p or u>|<ordinal>|
                                <JSON>" per kept measurement (p: protected from thinning;
                                ordinal: the how-manieth report of the trial, zero-padded), so a
                                trial's curve is one lexicographic range, in order of step
    hd:{ns/id}:es_steps         sorted set, all scores 0: "<step>|<sortable>|<number>|<value>"
                                per value a percentile rule recorded, so the values of one step
                                are one range in order of value (counts and the k-th value in
                                O(log n))
    hd:{ns/id}:es_rungs         sorted set, all scores 0: "<bracket>|<rung>|<sortable>|<number>|
                                <value>" (bracket and rung 3 digits) per value recorded at a rung
                                of successive halving or Hyperband

The namespace's study index is a key of its own slot: ``hd:{ns}:studies``, a sorted set whose
members (study ids, all scored 0) sort by code point. In the same slot, ``hd:{ns}:spec_bytes``
(hash: study id -> bytes of its stored record) and ``hd:{ns}:spec_total`` (their sum) count
the namespace's specs against its byte budget. A study tag always holds a ``/`` and a
namespace tag never does, so the two kinds cannot collide.

The lease index ``hd:leases`` (no hash tag, a slot of its own) is one sorted set for every
namespace: member ``<namespace>/<study_id>``, score at most the earliest lease deadline of that
study, so the periodic sweep of every replica finds the studies with a lease due in one range
query, whatever the number of studies. Deleting a study removes its member (and Redis the
key once it is empty), so deleted studies leave no key behind but a ``deleted`` hash that
expires.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from hyperdial_server.core.trial import TrialState

PREFIX = "hd"
#: Studies whose key names :func:`study_keys` keeps (about 1.5 KiB each).
STUDY_KEYS_CACHE_SIZE = 1024

# Ids and namespaces are validated upstream; checked again here because a brace or slash in
# a key would silently move it to another cluster slot or into another study.
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9._-]*")
_STUDY_ID_RE = re.compile(r"[A-Za-z0-9._-]+")


def _check_namespace(namespace: str) -> None:
    if not _NAMESPACE_RE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} may only use letters, digits, '.', '_', '-'")


def _check_study_id(study_id: str) -> None:
    if not _STUDY_ID_RE.fullmatch(study_id):
        raise ValueError(f"study id {study_id!r} may only use letters, digits, '.', '_', '-'")


@dataclass(frozen=True)
class StudyKeys:
    """The names of every key of one study (see the module docstring for their contents)."""

    study: str
    trials: str
    numbers: str
    waiting: str
    running: str
    completed: str
    failed: str
    queue: str
    claims: str
    scores: str
    leases: str
    reissue: str
    expired: str
    owners: str
    holders: str
    requests: str
    request_times: str
    stopped: str
    es_state: str
    es_curves: str
    es_steps: str
    es_rungs: str
    changes: str
    infeasible: str
    front: str
    deleted: str

    def state(self, state: TrialState) -> str:
        """The sorted set of trial numbers in ``state``."""
        return {
            TrialState.WAITING: self.waiting,
            TrialState.RUNNING: self.running,
            TrialState.COMPLETED: self.completed,
            TrialState.FAILED: self.failed,
            TrialState.STOPPED: self.stopped,
            TrialState.INFEASIBLE: self.infeasible,
        }[state]

    @property
    def all(self) -> tuple[str, ...]:
        """Every key of the study, the study hash first; not ``deleted``, which outlives it."""
        return (
            self.study,
            self.trials,
            self.numbers,
            self.waiting,
            self.running,
            self.completed,
            self.failed,
            self.queue,
            self.claims,
            self.scores,
            self.leases,
            self.reissue,
            self.expired,
            self.owners,
            self.holders,
            self.requests,
            self.request_times,
            self.stopped,
            self.es_state,
            self.es_curves,
            self.es_steps,
            self.es_rungs,
            self.changes,
            self.infeasible,
            self.front,
        )


def study_tag(namespace: str, study_id: str) -> str:
    """The hash tag shared by every key of a study, braces included.

    Raises:
        ValueError: ``namespace`` or ``study_id`` holds a character outside ``A-Za-z0-9._-``.
    """
    _check_namespace(namespace)
    _check_study_id(study_id)
    return f"{{{namespace}/{study_id}}}"


@functools.lru_cache(maxsize=STUDY_KEYS_CACHE_SIZE)
def study_keys(namespace: str, study_id: str) -> StudyKeys:
    """The keys of one study (immutable; the last ``STUDY_KEYS_CACHE_SIZE`` are cached, as every
    call of a study builds them).

    Raises:
        ValueError: ``namespace`` or ``study_id`` holds a character outside ``A-Za-z0-9._-``.
    """
    base = f"{PREFIX}:{study_tag(namespace, study_id)}:"
    return StudyKeys(
        study=base + "study",
        trials=base + "trials",
        numbers=base + "numbers",
        waiting=base + "state:" + TrialState.WAITING.value,
        running=base + "state:" + TrialState.RUNNING.value,
        completed=base + "state:" + TrialState.COMPLETED.value,
        failed=base + "state:" + TrialState.FAILED.value,
        queue=base + "queue",
        claims=base + "claims",
        scores=base + "scores",
        leases=base + "leases",
        reissue=base + "reissue",
        expired=base + "expired",
        owners=base + "owners",
        holders=base + "holders",
        requests=base + "requests",
        request_times=base + "request_times",
        stopped=base + "state:" + TrialState.STOPPED.value,
        es_state=base + "es_state",
        es_curves=base + "es_curves",
        es_steps=base + "es_steps",
        es_rungs=base + "es_rungs",
        changes=base + "changes",
        infeasible=base + "state:" + TrialState.INFEASIBLE.value,
        front=base + "front",
        deleted=base + "deleted",
    )


def study_index(namespace: str) -> str:
    """The sorted set of the namespace's study ids.

    Raises:
        ValueError: ``namespace`` holds a character outside ``A-Za-z0-9._-``.
    """
    _check_namespace(namespace)
    return f"{PREFIX}:{{{namespace}}}:studies"


def spec_bytes(namespace: str) -> tuple[str, str]:
    """The namespace's spec accounting, in the slot of its study index: a hash of study id ->
    bytes of its stored record, and a string holding the sum of those bytes.

    Raises:
        ValueError: ``namespace`` holds a character outside ``A-Za-z0-9._-``.
    """
    _check_namespace(namespace)
    return f"{PREFIX}:{{{namespace}}}:spec_bytes", f"{PREFIX}:{{{namespace}}}:spec_total"


#: The lease index of every namespace (see the module docstring).
LEASE_INDEX = f"{PREFIX}:leases"


def lease_member(namespace: str, study_id: str) -> str:
    """A study's member in :data:`LEASE_INDEX`: ``<namespace>/<study_id>``.

    Raises:
        ValueError: ``namespace`` or ``study_id`` holds a character outside ``A-Za-z0-9._-``.
    """
    _check_namespace(namespace)
    _check_study_id(study_id)
    return f"{namespace}/{study_id}"


def parse_lease_member(member: str) -> tuple[str, str] | None:
    """``(namespace, study_id)`` of a :func:`lease_member`; ``None`` for anything else."""
    namespace, slash, study_id = member.partition("/")
    if not slash or not _NAMESPACE_RE.fullmatch(namespace):
        return None
    if not _STUDY_ID_RE.fullmatch(study_id):
        return None
    return namespace, study_id
