"""The arguments of the Redis store's script calls, and the reading of their replies.

The names of every script's ``KEYS`` and ``ARGV`` are declared in :mod:`._scripts`; the helpers
here build the arguments several scripts share (a request id, lease expiry) and turn what the
scripts return into trials and study records.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any, cast

from hyperdial_server.core.early_stopping import Decision, Rule
from hyperdial_server.core.errors import study_data_loss
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import LEASE_EXPIRED_REASON, StateCounts, Trial, TrialState
from hyperdial_server.store._base import EXPIRE_BATCH, RequestId, check_front_vector
from hyperdial_server.store._codec import (
    decision_to_json,
    decode_stored_trial,
    decode_study,
    dumps,
    encode_trial_patch,
    stored_trial_number,
)
from hyperdial_server.store._codec_reports import decode_curve
from hyperdial_server.store._keys import StudyKeys, spec_bytes
from hyperdial_server.store._scripts import Arg

# --- arguments -------------------------------------------------------------------------------


def front_arg(vector: Sequence[float] | None) -> str:
    """A front vector as the scripts take it: each value's exact ``repr`` text (which Lua's
    ``tonumber`` reads back to the same double), joined by ","; '' for none.

    Raises:
        ValueError: An empty vector, or a value that is not finite.
    """
    if vector is None:
        return ""
    return ",".join(repr(x) for x in check_front_vector(vector))


def expiry_patch(now: float) -> str:
    """The patch layer of a trial whose lease expires at ``now``."""
    return encode_trial_patch(
        state=TrialState.FAILED, complete_time=float(now), failure_reason=LEASE_EXPIRED_REASON
    )


def spec_keys(namespace: str) -> dict[str, str]:
    """The keys of ``spec_bytes.lua`` by name: the namespace's spec accounting."""
    hash_key, total_key = spec_bytes(namespace)
    return {"spec_bytes": hash_key, "spec_total": total_key}


def lazy_expiry_args(now: float | None) -> dict[str, Arg]:
    """Time, patch and batch of a reading script's lazy expiry; no expiry without a time."""
    if now is None:
        return {"now": "", "expiry_patch": "", "expire_batch": 0}
    return {
        "now": repr(float(now)),
        "expiry_patch": expiry_patch(now),
        "expire_batch": EXPIRE_BATCH,
    }


def request_args(request_id: RequestId | None, now: float) -> dict[str, str]:
    """Request id, now, the time until which its record is kept ('' for no id) and the
    payload's fingerprint: the arguments ``_scripts.REQUEST``."""
    if request_id is None:
        return {"rid": "", "now": repr(float(now)), "until_time": "", "fingerprint": ""}
    return {
        "rid": request_id.value,
        "now": repr(float(now)),
        "until_time": repr(float(now) + request_id.ttl),
        "fingerprint": request_id.fingerprint,
    }


def worker_stop(reason: str) -> str:
    """The stop decision of a worker's stop after its step, as ``complete_trial.lua`` splices
    it (``'{"stop":true,"step":' .. step .. ','`` comes first)."""
    fields = dumps(decision_to_json(Decision(True, 0, Rule.WORKER, message=reason)))
    # '{"stop":true,"step":0,"rule":...}' -> '"rule":...}'
    return fields[fields.index('"rule"') :]


def fingerprint_of(request_id: RequestId | None) -> str:
    """The payload fingerprint of a request id, for the scripts ('' for no id or no check)."""
    return "" if request_id is None else request_id.fingerprint


def ask_args(request_id: RequestId | None, now: float) -> dict[str, str]:
    """The request arguments of the two steps of an ask: id, attempt, record time, handed."""
    if request_id is None:
        return {"rid": "", "attempt": "", "until_time": "", "handed": ""}
    return {
        "rid": request_id.value,
        "attempt": request_id.attempt,
        "until_time": repr(float(now) + request_id.ttl),
        "handed": ",".join(str(n) for n in request_id.handed),
    }


# --- reads of studies --------------------------------------------------------------------------

#: The fields of the study hash a read of a study takes (see ``_keys``).
STUDY_FIELDS = ["record", "trials", "uid", "revision", "update_time"]


def queue_study_read(pipe: Any, keys: StudyKeys) -> None:
    """Queues on ``pipe`` what a read of a study takes: :data:`STUDY_FIELDS` of its hash,
    then the size of the sorted set of each state (in the order of ``TrialState``)."""
    pipe.hmget(keys.study, STUDY_FIELDS)
    for state in TrialState:
        pipe.zcard(keys.state(state))


def with_counts(
    study: StudyRecord,
    trials: str | None,
    revision: str | None,
    update_time: str | None,
    counts: Sequence[int],
) -> StudyRecord:
    """``study`` (as stored) with what a read of it counted: :data:`STUDY_FIELDS` but the
    record and uid, then the number of trials in each state (``get_study.lua`` or
    :func:`queue_study_read`)."""
    return dataclasses.replace(
        study,
        trial_count=int(trials or 0),
        revision=int(revision or 0),
        update_time=None if update_time is None else float(update_time),
        state_counts=StateCounts.of(dict(zip(TrialState, map(int, counts), strict=True))),
    )


# --- replies ---------------------------------------------------------------------------------

#: Stored study records longer than this (bytes of JSON) are decoded in a thread: a spec near
#: the 2 MiB limit takes tens of milliseconds to decode, which would stall every other call.
OFF_LOOP_RECORD_BYTES = 256 * 1024


async def decode_study_off_loop(text: str) -> StudyRecord:
    """``decode_study(text)``, in a thread when ``text`` is long."""
    if len(text) > OFF_LOOP_RECORD_BYTES:
        return await asyncio.to_thread(decode_study, text)
    return decode_study(text)


def stored(study_id: str, texts: Sequence[str | None]) -> list[str]:
    """``texts``: stored trials a script read by the numbers in the study's indexes. A
    missing one (``None``) means an index names a trial with no record: DATA_LOSS."""
    if any(text is None for text in texts):
        raise study_data_loss(study_id, "a trial number in its indexes has no trial record")
    return cast(list[str], list(texts))


def decode_page(
    encoded: tuple[list[str], list[Any], list[list[str]], list[Any]],
) -> list[Trial]:
    """The trials of a page as ``list_trials.lua`` returns it: stored texts, leases, the kept
    measurements of each (none when not asked) and revisions."""
    texts, leases, curves, revisions = encoded
    trials = [
        decode_stored_trial(t, lease, revision)
        for t, lease, revision in zip(texts, leases, revisions, strict=True)
    ]
    for trial, curve in zip(trials, curves, strict=False):
        trial.measurements = decode_curve(curve)
    return trials


def page_numbers(encoded: tuple[list[str], list[Any], list[list[str]], list[Any]]) -> list[int]:
    """The trial numbers of a page as :func:`decode_page` takes it, without decoding it."""
    return [stored_trial_number(t) for t in encoded[0]]


def numbered(
    sent: list[Trial], texts: Sequence[str], lease: float, revisions: Sequence[int]
) -> list[Trial]:
    """The new RUNNING trials a commit sent, with the numbers the script gave them (read off
    the stored texts: no need to decode what was just encoded), their lease and revision."""
    for trial, text, revision in zip(sent, texts, revisions, strict=True):
        trial.number = stored_trial_number(text)
        trial.lease_expire_time = lease
        trial.revision = int(revision)
    return sent
