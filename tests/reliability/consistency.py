"""A consistency check of a study as the Redis store keeps it: reads every key of the study in
one atomic step (a snapshot) and verifies the invariants the Lua scripts maintain. Calls in
flight may make a snapshot show a step half done across stores' scripts (an ask between its
claim and its commit), so run it when no client call is in flight; a replica's lease sweep may
go on."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import redis

from hyperdial_server.core.study import Algorithm
from hyperdial_server.core.trial import LEASE_EXPIRED_REASON, TrialState
from hyperdial_server.store._codec import decode_stored_trial, decode_study
from hyperdial_server.store._keys import LEASE_INDEX, lease_member, study_keys

_ASK = re.compile(r"D:A:(\d+(,\d+)*)?")
_ONE = re.compile(r"D:[TC]:(\d+)")
_PENDING = re.compile(r"P:[0-9a-f]*:(.+)")
# A report's record: the trial and the decision it was answered (JSON).
_REPORT = re.compile(r"D:M:(\d+):(\{.*\})")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def study_ids(r: redis.Redis, namespace: str, prefix: str = "") -> list[str]:
    """Ids of the studies of ``namespace`` whose id starts with ``prefix`` (a SCAN)."""
    pattern = f"hd:{{{namespace}/{prefix}*}}:study"
    found = []
    for key in r.scan_iter(match=pattern, count=1000):
        text = key if isinstance(key, str) else key.decode()
        found.append(text[len(f"hd:{{{namespace}/") : -len("}:study")])
    return sorted(found)


# Reads every key in KEYS but the last by its type, and the score of ARGV[1] in the last (the
# lease index), in one script: nothing runs in Redis between two of these reads.
_SNAPSHOT = """
local out = {}
for i = 1, #KEYS - 1 do
  local kind = redis.call('TYPE', KEYS[i]).ok
  local value = false
  if kind == 'hash' then value = redis.call('HGETALL', KEYS[i])
  elseif kind == 'zset' then value = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  elseif kind == 'list' then value = redis.call('LRANGE', KEYS[i], 0, -1)
  elseif kind == 'string' then value = redis.call('GET', KEYS[i]) end
  out[i] = {kind, value}
end
out[#KEYS] = {'score', redis.call('ZSCORE', KEYS[#KEYS], ARGV[1])}
return out
"""


class _Snapshot:
    """The keys of one study (and its lease index member) as read in one atomic step, with the
    few read methods of a ``redis.Redis`` that the check uses."""

    def __init__(self, r: redis.Redis, keys: Sequence[str], member: str) -> None:
        self._r = r
        reply = r.eval(_SNAPSHOT, len(keys) + 1, *keys, LEASE_INDEX, member)
        self._values: dict[str, tuple[str, Any]] = {
            key: (kind, value) for key, (kind, value) in zip(keys, reply[:-1], strict=True)
        }
        score = reply[-1][1]
        self._lease_score = None if score is None else float(score)
        self._member = member

    def hgetall(self, key: str) -> dict[str, str]:
        kind, flat = self._values.get(key, ("none", None))
        return dict(zip(flat[::2], flat[1::2], strict=True)) if kind == "hash" else {}

    def zrange(self, key: str, start: int, end: int, withscores: bool = False) -> list[Any]:
        assert (start, end) == (0, -1)
        kind, flat = self._values.get(key, ("none", None))
        if kind != "zset":
            return []
        pairs = list(zip(flat[::2], (float(x) for x in flat[1::2]), strict=True))
        return pairs if withscores else [m for m, _ in pairs]

    def lrange(self, key: str, start: int, end: int) -> list[str]:
        assert (start, end) == (0, -1)
        kind, items = self._values.get(key, ("none", None))
        return list(items) if kind == "list" else []

    def zscore(self, key: str, member: str) -> float | None:
        assert (key, member) == (LEASE_INDEX, self._member)
        return self._lease_score

    def scan_iter(self, **kwargs: Any) -> Iterator[str]:
        # Key names only: a study's set of keys changes only with its creation or deletion.
        return self._r.scan_iter(**kwargs)  # type: ignore[no-any-return]


def check_study(
    r: redis.Redis, namespace: str, study_id: str, *, capacity: int | None = None
) -> list[str]:
    """Every broken invariant of one study, worded; empty when the study is consistent.

    Args:
        r: A client with ``decode_responses=True``.
        namespace: The namespace.
        study_id: The study.
        capacity: The number of sampler indices of the study (a grid's size), if bounded.
    """
    k = study_keys(namespace, study_id)
    snapshot = _Snapshot(r, list(k.all), lease_member(namespace, study_id))
    return _check(snapshot, k, namespace, study_id, capacity)


def _check(r: _Snapshot, k: Any, namespace: str, study_id: str, capacity: int | None) -> list[str]:
    bad: list[str] = []
    head = r.hgetall(k.study)
    if not head:
        return [f"{study_id}: no study hash"]
    for name in ("record", "uid", "trials", "next_index", "handed_out"):
        if name not in head:
            bad.append(f"study hash lacks {name}")
    if bad:
        return bad
    record = decode_study(head["record"])
    if record.uid != head["uid"]:
        bad.append("record uid differs from the uid field")
    n = int(head["trials"])
    next_index, handed_out = int(head["next_index"]), int(head["handed_out"])
    numbers = {str(i) for i in range(1, n + 1)}

    texts = r.hgetall(k.trials)
    if set(texts) != numbers:
        bad.append(f"trials hash holds {sorted(set(texts) ^ numbers)[:5]}... off 1..{n}")
    all_numbers = dict(r.zrange(k.numbers, 0, -1, withscores=True))
    if set(all_numbers) != numbers or any(float(m) != s for m, s in all_numbers.items()):
        bad.append("numbers set is not 1..N scored by number")
    trials = {}
    for number, text in texts.items():
        try:
            trial = decode_stored_trial(text)
        except (ValueError, KeyError, TypeError) as e:
            bad.append(f"trial {number} does not decode: {e}")
            continue
        if str(trial.number) != number:
            bad.append(f"trial {number} says it is number {trial.number}")
        trials[number] = trial

    # The state sets partition the numbers, and agree with each trial's own state.
    seen: dict[str, TrialState] = {}
    for state in TrialState:
        members = dict(r.zrange(k.state(state), 0, -1, withscores=True))
        for m, score in members.items():
            if float(m) != score:
                bad.append(f"{state.value} set scores {m} by {score}")
            if m in seen:
                bad.append(f"trial {m} is both {seen[m].value} and {state.value}")
            seen[m] = state
            if m in trials and trials[m].state is not state:
                bad.append(f"trial {m} is {trials[m].state.value} but in the {state.value} set")
    if set(seen) != numbers:
        bad.append(f"state sets miss or add trials: {sorted(set(seen) ^ numbers)[:5]}")
    by_state = {s: {m for m, st in seen.items() if st is s} for s in TrialState}

    queue = r.lrange(k.queue, 0, -1)
    if len(set(queue)) != len(queue):
        bad.append("the queue names a trial twice")
    if set(queue) != by_state[TrialState.WAITING]:
        bad.append("the queue and the WAITING set differ")

    leases = dict(r.zrange(k.leases, 0, -1, withscores=True))
    if set(leases) != by_state[TrialState.RUNNING]:
        odd = sorted(set(leases) ^ by_state[TrialState.RUNNING])
        bad.append(f"leases and RUNNING differ: {odd}")
    if any(not math.isfinite(d) for d in leases.values()):
        bad.append("a lease deadline is not finite")
    if leases:
        indexed = r.zscore(LEASE_INDEX, lease_member(namespace, study_id))
        if indexed is None or indexed > min(leases.values()):
            bad.append(f"lease index score {indexed} is after the earliest lease")

    failed = by_state[TrialState.FAILED]
    expired = set(r.zrange(k.expired, 0, -1))
    reissue = set(r.zrange(k.reissue, 0, -1))
    if not expired <= failed:
        bad.append("an expired trial is not FAILED")
    if not reissue <= failed:
        bad.append("a trial queued for re-issue is not FAILED")
    for m in expired:
        if m in trials and trials[m].failure_reason != LEASE_EXPIRED_REASON:
            bad.append(f"expired trial {m} has reason {trials[m].failure_reason!r}")

    owners = r.hgetall(k.owners)
    if not set(owners) <= by_state[TrialState.RUNNING]:
        bad.append("a client holds a trial that is not RUNNING")
    holders = set(r.zrange(k.holders, 0, -1))
    if holders != {f"{c}\0{int(m):020d}" for m, c in owners.items()}:
        bad.append("holders and owners differ")
    for m, c in owners.items():
        if m in trials and trials[m].client_id != c:
            bad.append(f"trial {m} is held by {c!r} but handed to {trials[m].client_id!r}")

    slots: set[str] = set()
    for member in r.zrange(k.claims, 0, -1):
        slot, colon, token = member.partition(":")
        if not colon or not token:
            bad.append(f"claim {member!r} is malformed")
            continue
        if slot in slots:
            bad.append(f"slot {slot} is claimed twice")
        slots.add(slot)
        if slot.startswith("r"):
            if slot[1:] not in failed:
                bad.append(f"claimed re-issue of {slot[1:]}, which is not FAILED")
        elif not slot.isdigit() or int(slot) >= next_index:
            bad.append(f"claimed index {slot} was never taken from the counter")

    # A replica reserves RANDOM indices ahead and counts them when it commits them; every
    # other index is counted when it is taken.
    if next_index > handed_out and record.spec.algorithm is not Algorithm.RANDOM:
        bad.append("more indices taken than trials counted as handed out")
    if record.spec.max_trials is not None and handed_out > record.spec.max_trials:
        bad.append(f"{handed_out} handed out, past max_trials {record.spec.max_trials}")
    if capacity is not None and next_index > capacity:
        bad.append(f"index counter {next_index} is past the capacity {capacity}")

    # Stopped trials are scored only when their study ranks them.
    policy = record.spec.early_stopping
    ranked = by_state[TrialState.COMPLETED]
    if policy is not None and policy.rank_stopped_trials:
        ranked = ranked | by_state[TrialState.STOPPED]
    for member in r.zrange(k.scores, 0, -1):
        if str(int(member)) not in ranked:
            bad.append(f"scored trial {member} is not COMPLETED (or a ranked STOPPED one)")

    records = r.hgetall(k.requests)
    if set(records) != set(r.zrange(k.request_times, 0, -1)):
        bad.append("request records and their times differ")
    for rid, record in records.items():
        # A record may end in "|<fingerprint>" of the request's payload (hex).
        value, _, fingerprint = record.partition("|")
        if fingerprint and not re.fullmatch(r"[0-9a-f]+", fingerprint):
            bad.append(f"request {rid!r} has the malformed fingerprint {fingerprint!r}")
            continue
        if m1 := _ASK.fullmatch(value):
            refs = (m1.group(1) or "").split(",")
        elif m2 := _ONE.fullmatch(value):
            refs = [m2.group(1)]
        elif (m3 := _PENDING.fullmatch(value)) and math.isfinite(float(m3.group(1))):
            refs = []
        elif (m4 := _REPORT.fullmatch(value)) and _is_json(m4.group(2)):
            refs = [m4.group(1)]
        else:
            bad.append(f"request {rid!r} has the malformed record {value!r}")
            continue
        if any(ref and ref not in numbers for ref in refs):
            bad.append(f"request {rid!r} names a trial that does not exist")

    known = set(k.all) | {k.deleted}
    for key in r.scan_iter(match=f"hd:{{{namespace}/{study_id}}}:*", count=1000):
        if key not in known:
            bad.append(f"unknown key {key}")
    # The stored record keeps its shape: valid JSON with the fields of a study.
    json.loads(head["record"])
    return [f"{study_id}: {b}" for b in bad]
