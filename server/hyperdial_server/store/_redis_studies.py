"""``StudyCommands``: the study side of :class:`._redis.RedisStore`.

Creating, reading, listing and deleting studies, with the two indexes that live in other slots
than the study itself (a namespace's study index and spec accounting, the lease index) and how
they are kept right when replicas race or crash (see "Study index" in :mod:`._redis`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any, cast

from hyperdial_server.core.errors import ResourceExhausted, study_data_loss
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import TrialState
from hyperdial_server.store._base import RequestId
from hyperdial_server.store._checks import check_page_size
from hyperdial_server.store._codec import decode_study, encode_study
from hyperdial_server.store._errors import store_error
from hyperdial_server.store._keys import LEASE_INDEX, lease_member, study_index, study_keys
from hyperdial_server.store._redis_base import RedisBase
from hyperdial_server.store._redis_calls import (
    decode_study_off_loop,
    queue_study_read,
    request_args,
    spec_keys,
    with_counts,
)
from hyperdial_server.store._scripts import CREATE_STUDY, DELETE_STUDY, GET_STUDY, SPEC_BYTES


class StudyCommands(RedisBase):
    """The study methods of :class:`._redis.RedisStore`."""

    async def create_study(
        self, namespace: str, study: StudyRecord, *, request_id: RequestId | None = None
    ) -> StudyRecord:
        """See :meth:`Store.create_study` and "Study index" in :mod:`._redis`.

        The number of studies is the size of the index, checked after adding the new id to it:
        two creations racing for the last place may both be refused, never both accepted. An
        index entry left by a crash counts until ``list_studies`` removes it.

        The bytes of the stored record count against the namespace's ``max_spec_bytes`` the
        same way: reserved (atomically with the namespace's running total, in the index's
        slot) before the study is written, so two creations cannot both pass the budget. A
        creation that fails afterwards, a deletion and the lazy index clean-up each set the
        entry to what the study holds when they look (``_settle_spec_bytes``). A crash between
        the reservation and that look leaves an entry counted for a study that does not exist
        (the total errs on the side of refusing) until that id is created or removed again.
        """
        keys = study_keys(namespace, study.study_id)
        index = study_index(namespace)
        stored = encode_study(dataclasses.replace(study, trial_count=0))
        await self._do(self._r.zadd(index, {study.study_id: 0}))
        size = cast(int, await self._do(self._r.zcard(index)))
        if size > self.max_studies and not await self._do(self._r.exists(keys.study)):
            await self._drop_from_index(namespace, [study.study_id])
            raise store_error("TOO_MANY_STUDIES", study.study_id, None, str(self.max_studies))
        await self._reserve_spec_bytes(namespace, study.study_id, len(stored.encode()))
        now = study.create_time
        try:
            reply = await self._script(
                CREATE_STUDY,
                CREATE_STUDY.call_args(
                    keys, record=stored, uid=study.uid, **request_args(request_id, now)
                ),
                study.study_id,
            )
        except BaseException:
            # Already exists, or unknown: count what the study holds, not what we reserved.
            with contextlib.suppress(Exception):
                await self._settle_spec_bytes(namespace, [study.study_id])
            raise
        # Again, now that the study exists: undoes a lazy removal that raced with us.
        await self._do(self._r.zadd(index, {study.study_id: 0}))
        created = decode_study(reply[1])
        if created.uid != study.uid:  # a retry answered with the study as first created
            await self._settle_spec_bytes(namespace, [study.study_id])
        return created

    async def _reserve_spec_bytes(self, namespace: str, study_id: str, size: int) -> None:
        """Counts ``size`` bytes for the study against the namespace's budget.

        Raises:
            ResourceExhausted: They do not fit (reason ``NAMESPACE_SPEC_BUDGET``); the index
                entry of a study that does not exist is removed, so nothing is left behind.
        """
        reply = await self._eval(
            SPEC_BYTES,
            SPEC_BYTES.call_args(
                spec_keys(namespace), study_id=study_id, size=size, budget=self.max_spec_bytes
            ),
        )
        if reply[0] == "OK":
            return
        if not await self._do(self._r.exists(study_keys(namespace, study_id).study)):
            await self._drop_from_index(namespace, [study_id])
        raise ResourceExhausted(
            f"namespace {namespace!r} holds {int(reply[1])} bytes of study specs; this study's "
            f"{size} bytes would pass its budget of {self.max_spec_bytes} bytes; delete "
            "studies you no longer need or ask the operator for a larger budget",
            reason="NAMESPACE_SPEC_BUDGET",
            metadata={"budget_bytes": str(self.max_spec_bytes), "spec_bytes": str(size)},
        )

    async def _settle_spec_bytes(self, namespace: str, study_ids: Sequence[str]) -> None:
        """Sets the spec bytes counted for each study to those of its stored record now (or
        none when it does not exist)."""
        pipe = self._r.pipeline(transaction=False)
        for study_id in study_ids:
            pipe.hstrlen(study_keys(namespace, study_id).study, "record")
        sizes: list[int] = await self._do(pipe.execute())
        for study_id, size in zip(study_ids, sizes, strict=True):
            # HSTRLEN is 0 for an absent study; -1 tells the script to drop the entry.
            await self._eval(
                SPEC_BYTES,
                SPEC_BYTES.call_args(
                    spec_keys(namespace), study_id=study_id, size=size or -1, budget=0
                ),
            )

    async def get_study(self, namespace: str, study_id: str) -> StudyRecord:
        """See :meth:`Store.get_study`: one script call (``get_study.lua``: an ``HMGET`` and a
        ``ZCARD`` per state, in one atomic step)."""
        replies = await self._eval(GET_STUDY, GET_STUDY.call_args(study_keys(namespace, study_id)))
        row, counts = replies[0], replies[1:]
        record, count, uid, revision, update_time = cast(list[str | None], row)
        if record is None or count is None or uid is None:
            if record is None and count is None and uid is None:
                raise store_error("STUDY_NOT_FOUND", study_id)
            # Some fields but not all: every script writes them together, so keys were lost.
            lost = [f for f, v in zip(("record", "trials", "uid"), row, strict=False) if v is None]
            raise study_data_loss(study_id, f"its study hash has no {', '.join(lost)}")
        try:
            study = await decode_study_off_loop(record)
        except (ValueError, KeyError, TypeError) as exc:
            raise study_data_loss(study_id, f"its stored record is unreadable: {exc!r}") from None
        return with_counts(study, count, revision, update_time, counts)

    async def list_studies(
        self, namespace: str, page_size: int, after: str | None = None
    ) -> tuple[list[StudyRecord], bool]:
        """See :meth:`Store.list_studies`; skips and removes index entries without a study."""
        check_page_size(page_size)
        index = study_index(namespace)
        low = "-" if after is None else "(" + after
        found: list[StudyRecord] = []
        while len(found) <= page_size:
            want = page_size + 1 - len(found)
            got = await self._do(self._r.zrangebylex(index, low, "+", start=0, num=want))
            ids = cast(list[str], got)
            if not ids:
                break
            # Each study's record and counts (a read of get_study), in one round trip; not
            # one transaction, as the studies live in different slots.
            pipe = self._r.pipeline(transaction=False)
            for study_id in ids:
                queue_study_read(pipe, study_keys(namespace, study_id))
            replies: list[Any] = await self._do(pipe.execute())
            per_study = 1 + len(TrialState)  # the HMGET, then a ZCARD per state
            dangling = []
            for i, study_id in enumerate(ids):
                row, *counts = replies[i * per_study : (i + 1) * per_study]
                record, count, _, revision, update_time = row
                if record is None:
                    dangling.append(study_id)
                else:
                    study = await decode_study_off_loop(record)
                    found.append(with_counts(study, count, revision, update_time, counts))
            if dangling:
                await self._drop_from_index(namespace, dangling)
            if len(ids) < want:
                break
            low = "(" + ids[-1]
        return found[:page_size], len(found) > page_size

    async def _drop_from_index(self, namespace: str, study_ids: Sequence[str]) -> None:
        index = study_index(namespace)
        await self._do(self._r.zrem(index, *study_ids))
        # A study created meanwhile keeps (or gets back) its entry.
        pipe = self._r.pipeline(transaction=False)
        for study_id in study_ids:
            pipe.exists(study_keys(namespace, study_id).study)
        exists: list[int] = await self._do(pipe.execute())
        back = {i: 0 for i, e in zip(study_ids, exists, strict=True) if e}
        if back:
            await self._do(self._r.zadd(index, back))
        await self._settle_spec_bytes(namespace, study_ids)

    async def delete_study(
        self,
        namespace: str,
        study_id: str,
        *,
        request_id: RequestId | None = None,
        now: float = 0.0,
    ) -> None:
        """See :meth:`Store.delete_study` and "Study index" in :mod:`._redis`."""
        keys = study_keys(namespace, study_id)
        ttl_ms = 1 if request_id is None else max(1, int(request_id.ttl * 1000))
        await self._script(
            DELETE_STUDY,
            DELETE_STUDY.call_args(keys, ttl_ms=ttl_ms, **request_args(request_id, now)),
            study_id,
        )
        await self._drop_from_index(namespace, [study_id])
        await self._drop_lease_member(namespace, study_id)

    async def _drop_lease_member(self, namespace: str, study_id: str) -> None:
        """Removes a deleted study's member of the lease index, which lives in another slot
        than the study (so not in the delete script); left there, it would stay until its
        score came due for the sweep, about 100 bytes per deleted study with a lease.

        As for the study index: a study created again meanwhile that holds a lease gets its
        member back, so a removal racing with an ask cannot hide a lease from the sweep.
        """
        await self._do(self._r.zrem(LEASE_INDEX, lease_member(namespace, study_id)))
        leases = study_keys(namespace, study_id).leases
        first = cast(
            list[tuple[str, float]],
            await self._do(self._r.zrange(leases, 0, 0, withscores=True)),
        )
        if first:
            await self._index_lease_member(lease_member(namespace, study_id), first[0][1])
