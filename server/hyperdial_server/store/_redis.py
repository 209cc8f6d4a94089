"""``RedisStore``: study state in Redis, shared by any number of server replicas.

Design:

* **One script per atomic step.** Every mutation of a study is one Lua script (``lua/*.lua``,
  registered once and called by SHA), and every key a script touches is passed in ``KEYS``. All
  keys of a study share one hash tag (:mod:`._keys`), so each script runs on one Redis Cluster
  slot. Scripts take the time from ``ARGV`` (the caller's ``now``), never from Redis.
* **O(1) round trips.** ``claim_trials``, ``commit_trials``, ``complete_trial``,
  ``create_trial``, ``get_trial``, ``list_trials`` and ``best_trial`` are one script call each,
  ``get_study`` one ``HMGET``; none of them reads the whole study, so their cost does not grow
  with the number of trials.
* **Exact numbers.** Trials are stored as JSON written by Python (see :mod:`._codec`): a script
  that changes a trial appends a patch layer that Python built, and never decodes or
  re-encodes JSON. Doubles therefore never pass through Lua's ``cjson`` and round-trip bit-exact.
  Scores go to sorted sets as ``repr`` text, which Redis parses to the same double.
* **Study index.** A namespace's list of studies lives in another slot than the studies, so it
  cannot be updated in the same script. ``create_study`` adds the id to the index *before* the
  study exists and again after; ``delete_study`` removes the study first and the index entry
  after. A crash leaves at worst an index entry without a study, which ``list_studies`` skips and
  removes lazily. Whoever removes an entry checks the study again afterwards and puts the entry
  back if the study exists by then, so a removal racing with a creation cannot hide a study.
* **Errors.** Scripts reply ``{"OK", ...}`` or ``{CODE, ...}``; :func:`._codec.store_error` maps
  each code to a typed error. A Redis that cannot be reached raises
  :class:`~hyperdial_server.core.errors.Unavailable`, whose message names the server without
  its credentials. Commands are not retried by the client library: a script whose reply was
  lost may have run, so retrying is left to callers that know whether the step is idempotent.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Collection, Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis.exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from hyperdial_server.core.errors import Unavailable
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store._base import DEFAULT_CLAIM_TTL, Claim, Store
from hyperdial_server.store._codec import (
    check_claim_args,
    check_completion,
    check_new_trial,
    check_page_size,
    check_points,
    decode_stored_trial,
    decode_study,
    encode_study,
    encode_trial_body,
    encode_trial_patch,
    score_member,
    score_text,
    store_error,
)
from hyperdial_server.store._keys import study_index, study_keys

_T = TypeVar("_T")

_SCRIPTS = (
    "create_study",
    "delete_study",
    "claim_trials",
    "commit_trials",
    "create_trial",
    "complete_trial",
    "get_trial",
    "list_trials",
    "best_trial",
)

# Failures that mean "the store cannot serve right now"; everything else is a bug and propagates.
# ConnectionError covers refused connections, authentication, a full pool and LOADING
# (BusyLoadingError); ReadOnlyError and ClusterDownError happen during a failover.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.ReadOnlyError,
    rx.ClusterDownError,
    rx.TryAgainError,
    OSError,
)

#: Seconds to wait for a free pooled connection before reporting the store unavailable.
POOL_TIMEOUT = 10.0
#: Seconds to wait for a TCP connection, and for a reply.
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 10.0


def _load_script(name: str) -> str:
    return (
        resources.files("hyperdial_server.store")
        .joinpath("lua")
        .joinpath(f"{name}.lua")
        .read_text()
    )


def _public_url(url: str) -> tuple[str, list[str]]:
    """``url`` without credentials or query, and the secrets to scrub from messages."""
    parts = urlsplit(url)
    secret_values = [s for s in (parts.password,) if s]
    for value in parse_qs(parts.query).get("password", []):
        secret_values.append(value)
    # Every spelling a library might print: as written, decoded, and encoded.
    spelled = {v for s in secret_values for v in (s, unquote(s), quote(s, safe=""))}
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}", sorted(spelled, key=len, reverse=True)


class RedisStore(Store):
    """A store on Redis. Each script touches the keys of one study, all in one cluster slot.

    Args:
        client: A ``redis.asyncio`` client whose responses are decoded (``decode_responses``);
            the store owns it and closes it in :meth:`close`.
        where: How to name the server in error messages, without credentials.
        hide: Texts (passwords) never to show in an error message.
    """

    def __init__(self, client: Redis, *, where: str = "Redis", hide: Sequence[str] = ()) -> None:
        self._r = client
        self._where = where
        self._hide = [h for h in hide if h]
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(_load_script(name)) for name in _SCRIPTS
        }

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 64) -> RedisStore:
        """A store with its own connection pool of at most ``max_connections`` connections.

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) or
                ``unix:///path/to/socket``; query options of redis-py are honoured.
            max_connections: Size of the pool; a call waits up to ``POOL_TIMEOUT`` seconds for
                a free connection.

        Raises:
            ValueError: The URL is malformed.
        """
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=POOL_TIMEOUT,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        where, hide = _public_url(url)
        return cls(Redis.from_pool(pool), where=where, hide=hide)

    # --- plumbing ----------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> Unavailable:
        detail = str(exc)
        for secret in self._hide:
            detail = detail.replace(secret, "***")
        return Unavailable(
            f"the store at {self._where} cannot be reached ({type(exc).__name__}: {detail}); "
            "retry later"
        )

    async def _do(self, call: Awaitable[_T]) -> _T:
        try:
            return await call
        except _UNAVAILABLE as exc:
            # ``from None``: the original error is described in the message, scrubbed.
            raise self._unavailable(exc) from None

    async def _script(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | int],
        study_id: str,
        number: int | None = None,
    ) -> list[Any]:
        reply = cast(list[Any], await self._do(self._scripts[name](keys=keys, args=args)))
        if reply[0] != "OK":
            detail = reply[1] if len(reply) > 1 else ""
            raise store_error(reply[0], study_id, number, detail)
        return reply

    async def close(self) -> None:
        """Closes the client and its connection pool."""
        await self._r.aclose()

    async def ping(self) -> None:
        """See :meth:`Store.ping`."""
        await self._do(cast(Awaitable[Any], self._r.ping()))

    # --- studies -----------------------------------------------------------------------------

    async def create_study(self, namespace: str, study: StudyRecord) -> StudyRecord:
        """See :meth:`Store.create_study` and the study index in the module docstring."""
        keys = study_keys(namespace, study.study_id)
        index = study_index(namespace)
        stored = encode_study(dataclasses.replace(study, trial_count=0))
        await self._do(self._r.zadd(index, {study.study_id: 0}))
        await self._script("create_study", keys.all, [stored, study.uid], study.study_id)
        # Again, now that the study exists: undoes a lazy removal that raced with us.
        await self._do(self._r.zadd(index, {study.study_id: 0}))
        return decode_study(stored)

    async def get_study(self, namespace: str, study_id: str) -> StudyRecord:
        """See :meth:`Store.get_study`."""
        key = study_keys(namespace, study_id).study
        row = await self._do(self._r.hmget(key, ["record", "trials"]))
        record, count = cast(list[str | None], row)
        if record is None:
            raise store_error("STUDY_NOT_FOUND", study_id)
        return dataclasses.replace(decode_study(record), trial_count=int(count or 0))

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
            pipe = self._r.pipeline(transaction=False)
            for study_id in ids:
                pipe.hmget(study_keys(namespace, study_id).study, ["record", "trials"])
            rows: list[list[str | None]] = await self._do(pipe.execute())
            dangling = []
            for study_id, (record, count) in zip(ids, rows, strict=True):
                if record is None:
                    dangling.append(study_id)
                else:
                    found.append(
                        dataclasses.replace(decode_study(record), trial_count=int(count or 0))
                    )
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

    async def delete_study(self, namespace: str, study_id: str) -> None:
        """See :meth:`Store.delete_study` and the study index in the module docstring."""
        keys = study_keys(namespace, study_id)
        await self._script("delete_study", keys.all, [], study_id)
        await self._drop_from_index(namespace, [study_id])

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
    ) -> Claim:
        """See :meth:`Store.claim_trials`. One script call."""
        check_claim_args(count)
        keys = study_keys(namespace, study_id)
        token = secrets.token_hex(8)
        patch = encode_trial_patch(state=TrialState.RUNNING, client_id=client_id)
        reply = await self._script(
            "claim_trials",
            [keys.study, keys.trials, keys.queue, keys.waiting, keys.running, keys.claims],
            [
                uid,
                count,
                -1 if capacity is None else capacity,
                -1 if max_trials is None else max_trials,
                repr(float(now)),
                repr(float(now) + claim_ttl),
                token,
                patch,
            ],
            study_id,
        )
        indices = [int(i) for i in reply[2]]
        return Claim(
            trials=[decode_stored_trial(t) for t in reply[1]],
            indices=indices,
            token=token if indices else "",
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
    ) -> list[Trial]:
        """See :meth:`Store.commit_trials`. One script call."""
        check_points(points)
        keys = study_keys(namespace, study_id)
        args: list[str | int] = [uid, token]
        for index, params in points:
            trial = Trial(0, TrialState.RUNNING, params, client_id=client_id, create_time=now)
            args += [index, encode_trial_body(trial)]
        reply = await self._script(
            "commit_trials",
            [keys.study, keys.trials, keys.numbers, keys.running, keys.claims],
            args,
            study_id,
        )
        return [decode_stored_trial(t) for t in reply[1]]

    async def create_trial(
        self,
        namespace: str,
        study_id: str,
        trial: Trial,
        *,
        score: float | None = None,
        uid: str | None = None,
    ) -> Trial:
        """See :meth:`Store.create_trial`. One script call."""
        check_new_trial(trial, score)
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            "create_trial",
            [
                keys.study,
                keys.trials,
                keys.numbers,
                keys.state(trial.state),
                keys.queue,
                keys.scores,
            ],
            [
                encode_trial_body(trial),
                trial.state.value,
                "" if score is None else score_text(score),
                uid or "",
            ],
            study_id,
        )
        return decode_stored_trial(reply[1])

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
        """See :meth:`Store.complete_trial`. One script call."""
        state = check_completion(values, failure_reason, score)
        keys = study_keys(namespace, study_id)
        patch = encode_trial_patch(
            state=state,
            values=values,
            complete_time=now,
            failure_reason=failure_reason,
            metadata=metadata,
        )
        reply = await self._script(
            "complete_trial",
            [
                keys.study,
                keys.trials,
                keys.waiting,
                keys.running,
                keys.completed,
                keys.failed,
                keys.scores,
            ],
            [
                str(number),
                state.value,
                patch,
                "" if score is None else score_text(score),
                score_member(number),
                uid or "",
            ],
            study_id,
            number,
        )
        return decode_stored_trial(reply[1])

    # --- reading trials ----------------------------------------------------------------------

    async def get_trial(self, namespace: str, study_id: str, number: int) -> Trial:
        """See :meth:`Store.get_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            "get_trial", [keys.study, keys.trials], [str(number)], study_id, number
        )
        return decode_stored_trial(reply[1])

    async def list_trials(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
    ) -> tuple[list[Trial], bool]:
        """See :meth:`Store.list_trials`. One script call, O(page size) work."""
        check_page_size(page_size)
        keys = study_keys(namespace, study_id)
        wanted = set(TrialState) if states is None else set(states)
        if wanted == set(TrialState):
            sources = [keys.numbers]
        else:
            sources = [keys.state(s) for s in TrialState if s in wanted]
        reply = await self._script(
            "list_trials",
            [keys.study, keys.trials, *sources],
            [str(int(after)), page_size],
            study_id,
        )
        return [decode_stored_trial(t) for t in reply[2:]], bool(reply[1])

    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """See :meth:`Store.best_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            "best_trial", [keys.study, keys.trials, keys.scores], [], study_id
        )
        return decode_stored_trial(reply[1]) if len(reply) > 1 else None
