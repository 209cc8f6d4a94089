"""``TrialCommands``: the trial side of :class:`._redis.RedisStore`.

Handing out trials (an ask: ``claim_trials`` then ``commit_trials``, or ``reserve_indices`` then
``commit_reserved``), creating and completing trials, leases (heartbeat, the sweep) and reading
trials. Each is one script call (``lua/<name>.lua``, declared in :mod:`._scripts`), plus the
lease index for the steps that create a lease.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import cast

from hyperdial_server.core.history import TrialPage
from hyperdial_server.core.limits import DEFAULT_LEASE_TIMEOUT
from hyperdial_server.core.space import Params
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store._base import (
    DEFAULT_CLAIM_TTL,
    EXPIRE_BATCH,
    Claim,
    Fallback,
    FastAsk,
    Reissue,
    RequestId,
    check_front_allowed,
    read_pareto_front,
)
from hyperdial_server.store._checks import (
    check_claim_args,
    check_completion,
    check_list_position,
    check_new_trial,
    check_page_size,
    check_points,
    check_window,
)
from hyperdial_server.store._codec import (
    decode_stored_trial,
    encode_trial_body,
    encode_trial_patch,
    score_member,
    score_text,
    stored_trial_number,
)
from hyperdial_server.store._codec_reports import decode_curve
from hyperdial_server.store._errors import store_error
from hyperdial_server.store._keys import LEASE_INDEX, lease_member, parse_lease_member, study_keys
from hyperdial_server.store._redis_base import RedisBase
from hyperdial_server.store._redis_calls import (
    ask_args,
    decode_page,
    expiry_patch,
    fingerprint_of,
    front_arg,
    lazy_expiry_args,
    numbered,
    page_numbers,
    request_args,
    stored,
    worker_stop,
)
from hyperdial_server.store._scripts import (
    BEST_TRIAL,
    CLAIM_TRIALS,
    COMMIT_RESERVED,
    COMMIT_TRIALS,
    COMPLETE_TRIAL,
    CREATE_TRIAL,
    EXPIRE_LEASES,
    GET_TRIAL,
    HEARTBEAT_TRIAL,
    INSTALL_FRONT,
    LIST_TRIALS,
    MODEL_HISTORY,
    PARETO_FRONT,
    RENEW_CLAIM,
    RESERVE_INDICES,
    Arg,
)

#: Most leases one sweep step expires in one study.
SWEEP_BATCH = 1000


class TrialCommands(RedisBase):
    """The trial methods of :class:`._redis.RedisStore`."""

    # --- handing out trials ------------------------------------------------------------------

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
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        request_id: RequestId | None = None,
    ) -> Claim:
        """See :meth:`Store.claim_trials`. One script call, plus the lease index."""
        check_claim_args(count)
        keys = study_keys(namespace, study_id)
        # Matches the commit to its claim; not a secret, so no system call for entropy.
        token = f"{random.getrandbits(64):016x}"
        patch = encode_trial_patch(state=TrialState.RUNNING, client_id=client_id)
        lease = float(now) + lease_timeout
        reply = await self._script(
            CLAIM_TRIALS,
            CLAIM_TRIALS.call_args(
                keys,
                uid=uid,
                count=count,
                capacity=-1 if capacity is None else capacity,
                max_trials=-1 if max_trials is None else max_trials,
                now=repr(float(now)),
                claim_deadline=repr(float(now) + claim_ttl),
                token=token,
                patch=patch,
                lease=repr(lease),
                client_id=client_id,
                expiry_patch=expiry_patch(now),
                expire_batch=EXPIRE_BATCH,
                fingerprint=fingerprint_of(request_id),
                **ask_args(request_id, now),
            ),
            study_id,
            # Trials taken from the queue become RUNNING here, with a lease.
            lease=(lease_member(namespace, study_id), lease),
        )
        _, texts, leases, raw_indices, raw_reissues, pending, replayed, revisions = reply
        texts, raw_reissues = stored(study_id, texts), stored(study_id, raw_reissues)
        trials = [
            decode_stored_trial(t, lease, revision)
            for t, lease, revision in zip(texts, leases, revisions, strict=True)
        ]
        if replayed:
            return Claim(trials=trials, replayed=True)
        indices = [int(i) for i in raw_indices]
        reissues = []
        for source, text in zip(raw_reissues[::2], raw_reissues[1::2], strict=True):
            old = decode_stored_trial(text)
            reissues.append(Reissue(int(source), old.params, old.metadata))
        return Claim(
            trials=trials,
            indices=indices,
            reissues=reissues,
            token=token if indices or reissues else "",
            pending=int(pending),
        )

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
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        reissues: Sequence[Reissue] = (),
        request_id: RequestId | None = None,
    ) -> list[Trial]:
        """See :meth:`Store.commit_trials`. One script call, plus the lease index."""
        check_points(points)
        keys = study_keys(namespace, study_id)
        lease = float(now) + lease_timeout
        pairs: list[Arg] = []  # slot, trial body, slot, trial body...
        slots: list[tuple[str, Params, dict[str, str], int | None]] = [
            (f"r{r.source}", r.params, r.metadata, None) for r in reissues
        ]
        slots += [(str(index), params, {}, index) for index, params in points]
        sent: list[Trial] = []
        for slot, params, metadata, index in slots:
            trial = Trial(
                0,
                TrialState.RUNNING,
                params,
                client_id=client_id,
                create_time=now,
                metadata=metadata,
                sampler_index=index,
                # A re-issue names the expired trial; the script marks that one back.
                original_number=int(slot[1:]) if slot.startswith("r") else None,
            )
            sent.append(trial)
            pairs += [slot, encode_trial_body(trial)]
        reply = await self._script(
            COMMIT_TRIALS,
            COMMIT_TRIALS.call_args(
                keys,
                uid=uid,
                token=token,
                lease=repr(lease),
                client_id=client_id,
                slots=pairs,
                now=repr(float(now)),
                **ask_args(request_id, now),
            ),
            study_id,
            lease=(lease_member(namespace, study_id), lease),
        )
        return numbered(sent, reply[1], lease, reply[2])

    async def renew_claim(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        token: str,
        indices: Sequence[int],
        *,
        now: float,
        claim_ttl: float,
        reissues: Sequence[Reissue] = (),
        request_id: RequestId | None = None,
    ) -> None:
        """See :meth:`Store.renew_claim`. One script call."""
        keys = study_keys(namespace, study_id)
        ask = ask_args(request_id, now)
        slots = [f"r{r.source}" for r in reissues] + [str(index) for index in indices]
        await self._script(
            RENEW_CLAIM,
            RENEW_CLAIM.call_args(
                keys,
                uid=uid,
                token=token,
                deadline=repr(float(now) + claim_ttl),
                rid=ask["rid"],
                attempt=ask["attempt"],
                until_time=ask["until_time"],
                slots=slots,
            ),
            study_id,
        )

    async def reserve_indices(self, namespace: str, study_id: str, uid: str, count: int) -> int:
        """See :meth:`Store.reserve_indices`. One script call."""
        check_claim_args(count)
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            RESERVE_INDICES, RESERVE_INDICES.call_args(keys, uid=uid, count=count), study_id
        )
        return int(reply[1])

    async def commit_reserved(
        self,
        namespace: str,
        study_id: str,
        uid: str,
        points: Sequence[tuple[int, Params]],
        *,
        max_trials: int | None,
        client_id: str,
        now: float,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        request_id: RequestId | None = None,
    ) -> FastAsk:
        """See :meth:`Store.commit_reserved`. One script call, plus the lease index."""
        check_points(points)
        keys = study_keys(namespace, study_id)
        lease = float(now) + lease_timeout
        sent = [
            Trial(
                0,
                TrialState.RUNNING,
                params,
                client_id=client_id,
                create_time=now,
                sampler_index=index,
            )
            for index, params in points
        ]
        reply = await self._script(
            COMMIT_RESERVED,
            COMMIT_RESERVED.call_args(
                keys,
                uid=uid,
                lease=repr(lease),
                client_id=client_id,
                expiry_patch=expiry_patch(now),
                expire_batch=EXPIRE_BATCH,
                max_trials=-1 if max_trials is None else max_trials,
                bodies=[encode_trial_body(t) for t in sent],
                **request_args(request_id, now),
            ),
            study_id,
            lease=(lease_member(namespace, study_id), lease),
        )
        texts, fallback = reply[1], reply[2]
        if fallback:
            # Parsed here, once: past this line the script's code is a Fallback member.
            return FastAsk(fallback=Fallback(str(fallback)))
        return FastAsk(trials=numbered(sent, texts, lease, reply[3]))

    async def create_trial(
        self,
        namespace: str,
        study_id: str,
        trial: Trial,
        *,
        score: float | None = None,
        uid: str | None = None,
        request_id: RequestId | None = None,
        now: float = 0.0,
        front_vector: Sequence[float] | None = None,
    ) -> Trial:
        """See :meth:`Store.create_trial`. One script call."""
        check_new_trial(trial, score)
        check_front_allowed(front_vector, trial.state)
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            CREATE_TRIAL,
            CREATE_TRIAL.call_args(
                keys,
                {"state": keys.state(trial.state)},
                body=encode_trial_body(trial),
                state=trial.state.value,
                score="" if score is None else score_text(score),
                front_vector=front_arg(front_vector),
                uid=uid or "",
                **request_args(request_id, now),
            ),
            study_id,
        )
        return decode_stored_trial(stored(study_id, reply[1:2])[0], reply[2], reply[3])

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
        request_id: RequestId | None = None,
        stop_reason: str | None = None,
        infeasible_reason: str | None = None,
        front_vector: Sequence[float] | None = None,
    ) -> Trial:
        """See :meth:`Store.complete_trial`. One script call."""
        state = check_completion(values, failure_reason, score, stop_reason, infeasible_reason)
        check_front_allowed(front_vector, state)
        keys = study_keys(namespace, study_id)
        if stop_reason is not None:
            # A stop clears the reason of a lease-expired trial, as late values do.
            reason: str | None = ""
        elif infeasible_reason is not None:
            # One stored field for both: Trial.failure_reason says why it is INFEASIBLE.
            reason = infeasible_reason
        else:
            reason = failure_reason
        patch = encode_trial_patch(
            state=state,
            values=values,
            complete_time=now,
            failure_reason=reason,
            metadata=metadata,
        )
        reply = await self._script(
            COMPLETE_TRIAL,
            COMPLETE_TRIAL.call_args(
                keys,
                number=str(number),
                state=state.value,
                patch=patch,
                stop="" if stop_reason is None else worker_stop(stop_reason),
                score="" if score is None else score_text(score),
                score_member=score_member(number),
                front_vector=front_arg(front_vector),
                uid=uid or "",
                **request_args(request_id, now),
            ),
            study_id,
            number,
        )
        return decode_stored_trial(stored(study_id, reply[1:2])[0], revision=reply[2])

    # --- leases ------------------------------------------------------------------------------

    async def heartbeat_trial(
        self, namespace: str, study_id: str, number: int, *, now: float, lease_timeout: float
    ) -> Trial:
        """See :meth:`Store.heartbeat_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        lease = float(now) + lease_timeout
        reply = await self._script(
            HEARTBEAT_TRIAL,
            HEARTBEAT_TRIAL.call_args(
                keys,
                number=str(number),
                now=repr(float(now)),
                lease=repr(lease),
                expiry_patch=expiry_patch(now),
            ),
            study_id,
            number,
        )
        return decode_stored_trial(stored(study_id, reply[1:2])[0], lease, reply[2])

    async def expire_leases(self, *, now: float, limit: int = 1000) -> int:
        """See :meth:`Store.expire_leases`.

        One range query on the lease index finds the studies with a due lease; each costs one
        script call and a few index updates. A study's entry is moved to its earliest deadline
        left (or removed), then checked again, so that a lease created meanwhile by another
        replica is never left behind a later score (see ``_index_lease_member``).
        """
        due = cast(
            list[str],
            await self._do(
                self._r.zrangebyscore(LEASE_INDEX, "-inf", repr(float(now)), start=0, num=limit)
            ),
        )
        total = 0
        for member in due:
            where = parse_lease_member(member)
            if where is None:  # not written by this code: nothing to expire
                await self._do(self._r.zrem(LEASE_INDEX, member))
                continue
            keys = study_keys(*where)
            # The sweep's script takes the same keys as the reading scripts' lazy expiry.
            reply = await self._eval(
                EXPIRE_LEASES,
                EXPIRE_LEASES.call_args(
                    keys,
                    now=repr(float(now)),
                    expiry_patch=expiry_patch(now),
                    expire_batch=SWEEP_BATCH,
                ),
            )
            if reply[0] == "OK":
                total += int(reply[1])
                earliest = reply[2]
            else:  # the study is gone
                earliest = ""
            if earliest == "":
                await self._do(self._r.zrem(LEASE_INDEX, member))
            else:
                await self._do(self._r.zadd(LEASE_INDEX, {member: float(earliest)}))
            # A lease created since the script ran may be earlier than what was just written.
            first = cast(
                list[tuple[str, float]],
                await self._do(self._r.zrange(keys.leases, 0, 0, withscores=True)),
            )
            if first:
                await self._do(self._r.zadd(LEASE_INDEX, {member: first[0][1]}, lt=True))
        return total

    # --- reading trials ----------------------------------------------------------------------

    async def get_trial(
        self,
        namespace: str,
        study_id: str,
        number: int,
        *,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> Trial:
        """See :meth:`Store.get_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            GET_TRIAL,
            GET_TRIAL.call_args(
                keys,
                number=str(number),
                curve="1" if with_measurements else "",
                **lazy_expiry_args(now),
            ),
            study_id,
            number,
        )
        _, text, lease, curve, revision = reply
        trial = decode_stored_trial(text, lease, revision)
        trial.measurements = decode_curve(curve)
        return trial

    async def list_trial_page(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        after_revision: int = 0,
        now: float | None = None,
        with_measurements: bool = False,
    ) -> tuple[TrialPage, bool]:
        """See :meth:`Store.list_trial_page`: one script call, O(page size) work; the trials
        as stored, decoded on demand."""
        check_page_size(page_size)
        check_list_position(after, after_revision)
        keys = study_keys(namespace, study_id)
        wanted = set(TrialState) if states is None else set(states)
        by_revision = after_revision
        if wanted == set(TrialState):
            # By number every trial is in ``numbers``; by revision no filter is needed.
            sources = [] if by_revision else [keys.numbers]
        else:
            sources = [keys.state(s) for s in TrialState if s in wanted]
            if not sources:
                # No state wanted: no trial, read by number from no set (the script still
                # checks the study, expires leases and reads the revision).
                by_revision = 0
        reply = await self._script(
            LIST_TRIALS,
            LIST_TRIALS.call_args(
                keys,
                {"sources": sources},
                after=str(int(after)),
                after_revision=str(int(by_revision)),
                page_size=page_size,
                curve="1" if with_measurements else "",
                **lazy_expiry_args(now),
            ),
            study_id,
        )
        _, more, texts, leases, curves, revisions, revision, position = reply
        texts = stored(study_id, texts)
        if after_revision:
            last = int(position) if by_revision else after_revision
        else:
            last = stored_trial_number(texts[-1]) if texts else 0
        encoded = (texts, leases, curves, revisions)
        page = TrialPage(
            decode=decode_page,
            encoded=encoded,
            last=last,
            size=len(texts),
            revision=int(revision or 0),
        )
        return page, bool(more)

    async def model_history(
        self,
        namespace: str,
        study_id: str,
        *,
        best: int,
        recent: int,
        running: int,
        front: bool = False,
        now: float | None = None,
    ) -> TrialPage:
        """See :meth:`Store.model_history`: one script call; the trials as stored, decoded on
        demand (by the sampler's worker)."""
        check_window(best, recent, running)
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            MODEL_HISTORY,
            MODEL_HISTORY.call_args(
                keys,
                best=best,
                by="front" if front else "score",
                recent=recent,
                running_limit=running,
                **lazy_expiry_args(now),
            ),
            study_id,
        )
        _, texts, leases, revisions, revision, _ = reply
        texts = stored(study_id, texts)
        return TrialPage(
            decode=decode_page,
            encoded=(texts, leases, [], revisions),
            last=stored_trial_number(texts[-1]) if texts else 0,
            size=len(texts),
            revision=int(revision or 0),
            numbers=page_numbers,
        )

    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """See :meth:`Store.best_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(BEST_TRIAL, BEST_TRIAL.call_args(keys), study_id)
        if len(reply) < 2:
            return None
        return decode_stored_trial(stored(study_id, reply[1:2])[0], revision=reply[2])

    async def pareto_front(
        self,
        namespace: str,
        study_id: str,
        *,
        vector: Callable[[Trial], Sequence[float] | None],
    ) -> list[Trial]:
        """See :meth:`Store.pareto_front`. One script call, O(front size), while the front
        kept as trials became candidates is exact; otherwise every candidate is read in
        pages, the front computed and put back for the next read (``install_front.lua``,
        which writes only if no candidate came in between)."""
        keys = study_keys(namespace, study_id)
        reply = await self._eval(PARETO_FRONT, PARETO_FRONT.call_args(keys))
        if reply[0] == "OK":
            _, texts, revisions = reply
            texts = stored(study_id, texts)
            return [
                decode_stored_trial(text, revision=revision)
                for text, revision in zip(texts, revisions, strict=True)
            ]
        if reply[0] != "STALE_FRONT":
            raise store_error(reply[0], study_id)
        # The uid first: a study created again during the read then fails the install.
        uid = await self._do(self._r.hget(keys.study, "uid"))
        if uid is None:
            raise store_error("STUDY_NOT_FOUND", study_id)
        front, members, seen = await read_pareto_front(
            self.list_trial_page, namespace, study_id, vector=vector
        )
        flat: list[Arg] = []
        for number, v in members:
            flat += [str(number), front_arg(v)]
        # "CHANGED" (a candidate came during the read) writes nothing: the next read tries
        # again; this one answers the front of what it read, as a scan would.
        await self._eval(
            INSTALL_FRONT, INSTALL_FRONT.call_args(keys, uid=uid, seen=str(seen), members=flat)
        )
        return front
