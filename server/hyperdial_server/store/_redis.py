"""``RedisStore``: study state in Redis, shared by any number of server replicas.

Design:

* **One script per atomic step.** Every mutation of a study is one Lua script (``lua/*.lua``,
  registered once and called by SHA), and every key a script touches is passed in ``KEYS``. All
  keys of a study share one hash tag (:mod:`._keys`), so each script runs on one Redis Cluster
  slot. Scripts take the time from ``ARGV`` (the caller's ``now``), never from Redis.
* **O(1) round trips.** ``claim_trials``, ``commit_trials``, ``complete_trial``,
  ``create_trial``, ``get_trial``, ``list_trials`` and ``best_trial`` are one script call each,
  ``get_study`` one ``HMGET``; none of them reads the whole study, so their cost does not grow
  with the number of trials. On a single server, scripts go through a :class:`._link.RedisLink`:
  the calls of all requests pipelined over one connection, with the lease index updates of a
  claim or commit in the same round trip.
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
* **Redis Cluster.** ``redis+cluster://`` URLs run the same code on a cluster: each script's
  keys share the study's hash tag, hence one slot; the index is its own key, and the reads that
  span studies (``list_studies``) are non-transactional pipelines, which the cluster client
  splits by node (one round trip per node).
* **Leases.** A RUNNING trial's deadline is its score in the study's ``leases`` set, not a field
  of its JSON, so a heartbeat rewrites one score instead of growing the trial; reads join it back.
  The shared functions of ``lua/_lib.lua`` (expiry, client holds, request records) are put in
  front of the scripts that use them. The lease index ``hd:leases`` lives in its own slot: the
  ask writes it before and after its scripts, the sweep moves it (see ``expire_leases``), and
  ``delete_study`` removes the study's member after the study, as for the study index.
* **Request ids.** The record of an answered call lives in the study's ``requests`` hash and is
  checked and written by the same script that makes the change; it ends with ``|`` and the
  fingerprint of the call's payload, compared by that script (see ``lua/_lib.lua``).
* **Errors.** Scripts reply ``{"OK", ...}`` or ``{CODE, ...}``; :func:`._codec.store_error` maps
  each code to a typed error. A Redis that cannot be reached raises
  :class:`~hyperdial_server.core.errors.Unavailable`, whose message names the server without
  its credentials; every other failure of Redis has its own typed error and reason too
  (``RedisStore._failure``: out of memory, read-only, loading, a script that failed on damaged
  keys...), and keys a script or a read finds inconsistent raise ``DataLoss`` naming the
  study. Commands are not retried by the client library: a script whose reply was lost may
  have run, so retrying is left to callers that know whether the step is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import re
from collections.abc import Awaitable, Collection, Coroutine, Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis.exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from hyperdial_server.core.errors import (
    DataLoss,
    FailedPrecondition,
    HyperdialError,
    ResourceExhausted,
    Unavailable,
    study_data_loss,
)
from hyperdial_server.core.limits import (
    DEFAULT_LEASE_TIMEOUT,
    DEFAULT_NAMESPACE_SPEC_BYTES,
    MAX_STUDIES_PER_NAMESPACE,
)
from hyperdial_server.core.space import Params
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.core.trial import LEASE_EXPIRED_REASON, Trial, TrialState
from hyperdial_server.store._base import (
    DEFAULT_CLAIM_TTL,
    EXPIRE_BATCH,
    Claim,
    FastAsk,
    Reissue,
    RequestId,
    Store,
    TrialPage,
)
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
    stored_trial_number,
)
from hyperdial_server.store._keys import (
    LEASE_INDEX,
    PREFIX,
    StudyKeys,
    lease_member,
    parse_lease_member,
    spec_bytes,
    study_index,
    study_keys,
)
from hyperdial_server.store._link import RedisLink, ReplicaBacklog, replies_or_raise

_T = TypeVar("_T")

_SCRIPTS = (
    "create_study",
    "spec_bytes",
    "delete_study",
    "claim_trials",
    "commit_trials",
    "renew_claim",
    "reserve_indices",
    "commit_reserved",
    "create_trial",
    "complete_trial",
    "get_trial",
    "list_trials",
    "best_trial",
    "heartbeat_trial",
    "expire_leases",
)

# Failures that mean "the store cannot serve right now". ConnectionError covers refused
# connections, authentication, a full pool and LOADING (BusyLoadingError); ReadOnlyError and
# ClusterDownError happen during a failover. ``RedisStore._failure`` gives each its reason.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.ReadOnlyError,
    rx.ClusterDownError,
    rx.TryAgainError,
    OSError,
)
# Every failure of a store command that ``RedisStore._failure`` maps to a typed error: the
# above and every error reply of Redis (out of memory, a script that met damaged keys, ...).
# Anything else (a bug of ours) propagates.
_STORE_FAILURES: tuple[type[BaseException], ...] = (*_UNAVAILABLE, rx.ResponseError)

#: The one eviction policy under which Redis never drops a key of a study.
REQUIRED_EVICTION_POLICY = "noeviction"
#: Milliseconds the health probe's key lives: it outlives no replica for long.
HEALTH_KEY_TTL_MS = 60_000

# redis-py's BlockingConnectionPool message when no pooled connection freed up in time.
_POOL_EXHAUSTED = "No connection available."

# The refusal inside a script's error: "... @user_script:19: -OOM command not allowed ...".
_SCRIPT_REFUSAL = re.compile(r"-(OOM|READONLY|NOREPLICAS|MISCONF|BUSY)\b.*", re.DOTALL)
_INNER_ERRORS: dict[str, type[rx.ResponseError]] = {
    "OOM": rx.OutOfMemoryError,
    "READONLY": rx.ReadOnlyError,
}

# URL schemes of a Redis Cluster, and the plain scheme redis-py takes for each.
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: Seconds to wait for a free pooled connection before reporting the store unavailable.
POOL_TIMEOUT = 10.0
#: Seconds to wait for a TCP connection, and for a reply.
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 10.0


def _load_script(name: str) -> str:
    """A script's text; the shared functions of ``_lib.lua`` go in front when it uses them."""
    lua = resources.files("hyperdial_server.store").joinpath("lua")
    text = lua.joinpath(f"{name}.lua").read_text()
    if text.startswith("-- uses: _lib\n"):
        text = lua.joinpath("_lib.lua").read_text() + "\n" + text
    return text


def _text(script: AsyncScript) -> str:
    text = script.script
    return text if isinstance(text, str) else bytes(text).decode()


def _public_url(url: str) -> tuple[str, list[str]]:
    """``url`` without credentials or query, and the secrets to scrub from messages."""
    parts = urlsplit(url)
    secret_values = [s for s in (parts.password,) if s]
    query = parse_qs(parts.query)
    # The Redis password, and the passphrase of a TLS client key.
    for name in ("password", "ssl_password"):
        secret_values += [v for v in query.get(name, []) if v]
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
        max_studies: Most studies per namespace (attribute ``max_studies``).
        link: Where scripts go on a single server (pipelined; see :mod:`._link`); ``None``:
            through ``client``, as on a cluster.
        max_spec_bytes: Most bytes of stored study records per namespace; 0: no budget
            (attribute ``max_spec_bytes``; see ``create_study``).
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        where: str = "Redis",
        hide: Sequence[str] = (),
        max_studies: int = MAX_STUDIES_PER_NAMESPACE,
        link: RedisLink | None = None,
        max_spec_bytes: int = DEFAULT_NAMESPACE_SPEC_BYTES,
    ) -> None:
        self.max_studies = max_studies
        self.max_spec_bytes = max_spec_bytes
        self._r = client
        self._link = link
        self._where = where
        self._hide = [h for h in hide if h]
        # Bounds in-flight calls on a cluster (see ``_cluster_from_url``); None: the pool waits.
        self._gate: asyncio.Semaphore | None = None
        # Written by every health check (see ``ping``); one per store, so replicas never race.
        self._health_key = f"{PREFIX}:health:{random.getrandbits(64):016x}"
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(_load_script(name)) for name in _SCRIPTS
        }

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_connections: int = 64,
        max_studies: int = MAX_STUDIES_PER_NAMESPACE,
        max_spec_bytes: int = DEFAULT_NAMESPACE_SPEC_BYTES,
    ) -> RedisStore:
        """A store with its own connection pool of at most ``max_connections`` connections.

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) or
                ``unix:///path/to/socket``; query options of redis-py are honoured.
                ``redis+cluster://[[user]:password@]host:port`` (``rediss+cluster://`` for TLS)
                opens a Redis Cluster; ``host:port`` is any node, the others are discovered.
            max_connections: Size of the pool (per node on a cluster); a call waits up to
                ``POOL_TIMEOUT`` seconds for a free connection.
            max_studies: Most studies per namespace.
            max_spec_bytes: Most bytes of stored study records per namespace; 0: no budget.

        Raises:
            ValueError: The URL is malformed.
        """
        scheme = urlsplit(url).scheme.lower()
        if scheme in _CLUSTER_SCHEMES:
            store = cls._cluster_from_url(url, _CLUSTER_SCHEMES[scheme], max_connections)
            store.max_studies = max_studies
            store.max_spec_bytes = max_spec_bytes
            return store
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
        # Scripts, the hot path, share one pipelined connection made with the pool's options;
        # the pool serves the other commands.
        link = RedisLink(
            # The handshake (TLS, AUTH, SELECT) within CONNECT_TIMEOUT too: a Redis that
            # accepts but stalls delays a call by at most that before its command is sent.
            lambda: pool.connection_class(
                **{**pool.connection_kwargs, "socket_timeout": CONNECT_TIMEOUT}
            ),
            reply_timeout=SOCKET_TIMEOUT,
        )
        return cls(
            Redis.from_pool(pool),
            where=where,
            hide=hide,
            max_studies=max_studies,
            link=link,
            max_spec_bytes=max_spec_bytes,
        )

    @classmethod
    def _cluster_from_url(cls, url: str, scheme: str, max_connections: int) -> RedisStore:
        """A store on a Redis Cluster: every script runs on the slot of its study's hash tag.

        The cluster client follows MOVED and ASK redirections itself (a redirected command has
        not run, so that is no retry); like the single-server store it retries nothing else.
        """
        try:
            client = RedisCluster.from_url(
                scheme + url[url.index("://") :],
                max_connections=max_connections,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
        except rx.RedisClusterException as e:
            # E.g. a database other than 0: a cluster has only one.
            raise ValueError(f"unusable Redis Cluster URL: {e}") from None
        where, hide = _public_url(url)
        store = cls(client, where=where, hide=hide)
        # A cluster node's pool fails at once when full instead of waiting: queue here instead.
        store._gate = asyncio.Semaphore(max_connections)
        return store

    # --- plumbing ----------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> Unavailable:
        if isinstance(exc, ReplicaBacklog) or (
            isinstance(exc, rx.ConnectionError) and str(exc) == _POOL_EXHAUSTED
        ):
            # The call waited behind this replica's own queue (link or pool), not for Redis.
            return Unavailable(
                f"this replica is overloaded; retry on another ({exc})",
                reason="REPLICA_OVERLOADED",
            )
        detail = str(exc)
        for secret in self._hide:
            detail = detail.replace(secret, "***")
        return Unavailable(
            f"the store at {self._where} cannot be reached ({type(exc).__name__}: {detail}); "
            "retry later"
        )

    def _scrub(self, text: str) -> str:
        for secret in self._hide:
            text = text.replace(secret, "***")
        return text

    def _failure(self, exc: BaseException, study_id: str | None = None) -> HyperdialError:
        """The typed error of a store command that failed with ``exc`` (one of
        ``_STORE_FAILURES``): each kind of Redis failure gets its own code and reason, so a
        caller can tell a retry that may work now from one that needs an operator first.

        Args:
            exc: What redis-py raised, or the error reply of a pipelined command.
            study_id: The study whose keys the command touched, if one: named in a DATA_LOSS.
        """
        detail = self._scrub(str(exc))
        where = f"the store at {self._where}"
        # A script whose first write Redis refuses (out of memory, a replica, no replicas to
        # write to) fails with that refusal wrapped in "Error running script": nothing was
        # written, so it is the refusal, not damaged keys. Map the inner error as if bare.
        inner = _SCRIPT_REFUSAL.search(str(exc))
        if inner is not None and type(exc) is rx.ResponseError:
            exc = _INNER_ERRORS.get(inner.group(1), rx.ResponseError)(inner.group(0).lstrip("-"))
        if isinstance(exc, rx.OutOfMemoryError):
            return ResourceExhausted(
                f"{where} is full: Redis refuses writes above its maxmemory ({detail}); a retry "
                "(with the same request_id) works once an operator frees memory or raises "
                "maxmemory",
                reason="STORE_OUT_OF_MEMORY",
            )
        if isinstance(exc, rx.ReadOnlyError):
            return Unavailable(
                f"{where} is a read-only replica ({detail}): a failover is under way, or the "
                "URL names a replica; retry later",
                reason="STORE_READ_ONLY",
            )
        if isinstance(exc, rx.BusyLoadingError):
            return Unavailable(
                f"{where} is loading its data set after a restart; retry in a few seconds",
                reason="STORE_LOADING",
            )
        if isinstance(exc, _UNAVAILABLE):
            return self._unavailable(exc)
        # Error replies redis-py has no class for start with their code.
        code = str(exc).split(" ", 1)[0]
        if code == "BUSY":
            return Unavailable(
                f"{where} is busy running a script ({detail}); retry later",
                reason="STORE_BUSY",
            )
        if code in ("MISCONF", "NOREPLICAS"):
            # MISCONF: it cannot write its RDB snapshot; NOREPLICAS: min-replicas-to-write.
            return Unavailable(
                f"{where} refuses writes until an operator fixes it ({detail}); retry later",
                reason="STORE_WRITES_REFUSED",
            )
        if code == "WRONGTYPE" or (type(exc) is rx.ResponseError and "user_script" in str(exc)):
            # Our scripts fail at run time only on keys not as they wrote them (a record
            # evicted or deleted by hand): the study is damaged, retrying cannot help. (A
            # subclass, such as NOPERM inside a script, is Redis refusing, not damage.)
            if study_id is not None:
                return study_data_loss(study_id, f"a store script failed on its keys: {detail}")
            return DataLoss(
                f"{where} holds keys that are not as hyperdial wrote them ({detail}); an "
                "operator must repair them (check maxmemory-policy noeviction, "
                "docs/operations.md)",
                reason="STORE_DATA_LOSS",
            )
        # Anything else (a command the server lacks or an ACL denies, a module's error): the
        # store refuses what it should take; only an operator can change that.
        return FailedPrecondition(
            f"{where} refused a command ({detail}); an operator must fix the store's version, "
            "ACL or configuration (docs/operations.md)",
            reason="STORE_REJECTED",
        )

    async def _do(self, call: Awaitable[_T], study_id: str | None = None) -> _T:
        try:
            if self._gate is not None:
                return await self._on_cluster(self._gate, call)
            return await call
        except _STORE_FAILURES as exc:
            # ``from None``: the original error is described in the message, scrubbed.
            raise self._failure(exc, study_id) from None

    async def _on_cluster(self, gate: asyncio.Semaphore, call: Awaitable[_T]) -> _T:
        """Runs ``call`` on a Redis Cluster, at most ``max_connections`` at a time."""
        try:
            async with gate:
                try:
                    # Discovers the nodes first, under the client's lock: commands racing
                    # through the cluster client's lazy start-up break its connections.
                    await cast(RedisCluster, self._r).initialize()
                except rx.RedisClusterException as exc:  # no node of the cluster answers
                    raise self._unavailable(exc) from None
                return await call
        finally:
            if isinstance(call, Coroutine):
                call.close()  # a no-op once it ran; else it never starts

    async def _eval(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | int],
        lease: tuple[str, float] | None = None,
    ) -> list[Any]:
        """A script's reply. With ``lease`` (lease index member, deadline), the member's score
        in the lease index is lowered to the deadline before and after the script (see
        ``_index_lease_member``); on a single server the three go in one round trip."""
        link = self._link
        if link is None:
            if lease is not None:
                await self._index_lease_member(*lease)
            reply = await self._do(self._scripts[name](keys=keys, args=args), _study_of(keys))
            if lease is not None:
                await self._index_lease_member(*lease)
            return cast(list[Any], reply)
        script = self._scripts[name]
        call: list[str | int] = ["EVALSHA", script.sha, len(keys), *keys, *args]
        batch = [call]
        if lease is not None:
            index: list[str | int] = ["ZADD", LEASE_INDEX, "LT", repr(float(lease[1])), lease[0]]
            batch = [index, call, index]
        try:
            replies = await link.execute(*batch)
            if isinstance(replies[len(batch) // 2], rx.NoScriptError):
                # First call since Redis started (or SCRIPT FLUSH): nothing ran; load, run again.
                replies_or_raise(await link.execute(["SCRIPT", "LOAD", _text(script)]))
                replies = await link.execute(*batch)
            return cast(list[Any], replies_or_raise(replies)[len(batch) // 2])
        except _STORE_FAILURES as exc:
            raise self._failure(exc, _study_of(keys)) from None

    async def _script(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | int],
        study_id: str,
        number: int | None = None,
        lease: tuple[str, float] | None = None,
    ) -> list[Any]:
        reply = await self._eval(name, keys, args, lease)
        if reply[0] != "OK":
            detail = reply[1] if len(reply) > 1 else ""
            raise store_error(reply[0], study_id, number, detail)
        return reply

    async def close(self) -> None:
        """Closes the client and its connection pool."""
        if self._link is not None:
            await self._link.close()
        await self._r.aclose()

    async def ping(self) -> None:
        """See :meth:`Store.ping`: a tiny write, so that a Redis that answers but takes no
        writes (a read-only replica after a failover, out of memory) fails it too.

        The key is this store's own and expires by itself (``HEALTH_KEY_TTL_MS``); on a cluster
        it lives on one primary.

        Raises:
            Unavailable: The store cannot be reached or refuses writes (``STORE_READ_ONLY``...).
            ResourceExhausted: The store is out of memory (``STORE_OUT_OF_MEMORY``).
        """
        await self._do(self._r.set(self._health_key, "1", px=HEALTH_KEY_TTL_MS))

    async def eviction_policies(self) -> dict[str, str | None]:
        """``maxmemory-policy`` of the server, or of every primary of a cluster, by address;
        ``None`` for a server that refuses ``CONFIG GET`` (managed Redis often does).

        Only ``noeviction`` (:data:`REQUIRED_EVICTION_POLICY`) keeps every key of a study:
        any other policy lets Redis drop keys when memory runs out, and the study is damaged.

        Raises:
            Unavailable: A server cannot be reached.
        """
        if isinstance(self._r, RedisCluster):
            cluster = self._r
            await self._do(cluster.initialize())
            return {
                node.name: await self._policy(
                    cluster.execute_command("CONFIG GET", "maxmemory-policy", target_nodes=node)
                )
                for node in cluster.get_primaries()
            }
        return {self._where: await self._policy(self._r.config_get("maxmemory-policy"))}

    async def _policy(self, call: Awaitable[Any]) -> str | None:
        try:
            reply = await self._do(call)
        except FailedPrecondition:  # CONFIG disabled, renamed or denied by an ACL
            return None
        return _policy_of(reply)

    # --- studies -----------------------------------------------------------------------------

    async def create_study(
        self, namespace: str, study: StudyRecord, *, request_id: RequestId | None = None
    ) -> StudyRecord:
        """See :meth:`Store.create_study` and the study index in the module docstring.

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
                "create_study",
                keys.all,
                [stored, study.uid, *_request_args(request_id, now), _fingerprint(request_id)],
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
            "spec_bytes", spec_bytes(namespace), [study_id, size, self.max_spec_bytes]
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
            await self._eval("spec_bytes", spec_bytes(namespace), [study_id, size or -1, 0])

    async def get_study(self, namespace: str, study_id: str) -> StudyRecord:
        """See :meth:`Store.get_study`."""
        key = study_keys(namespace, study_id).study
        row = await self._do(self._r.hmget(key, ["record", "trials", "uid"]), study_id)
        record, count, uid = cast(list[str | None], row)
        if record is None or count is None or uid is None:
            if record is None and count is None and uid is None:
                raise store_error("STUDY_NOT_FOUND", study_id)
            # Some fields but not all: every script writes them together, so keys were lost.
            lost = [f for f, v in zip(("record", "trials", "uid"), row, strict=True) if v is None]
            raise study_data_loss(study_id, f"its study hash has no {', '.join(lost)}")
        try:
            study = await _decode_study(record)
        except (ValueError, KeyError, TypeError) as exc:
            raise study_data_loss(study_id, f"its stored record is unreadable: {exc!r}") from None
        return dataclasses.replace(study, trial_count=int(count))

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
                        dataclasses.replace(
                            await _decode_study(record), trial_count=int(count or 0)
                        )
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
        await self._settle_spec_bytes(namespace, study_ids)

    async def delete_study(
        self,
        namespace: str,
        study_id: str,
        *,
        request_id: RequestId | None = None,
        now: float = 0.0,
    ) -> None:
        """See :meth:`Store.delete_study` and the study index in the module docstring."""
        keys = study_keys(namespace, study_id)
        ttl_ms = 1 if request_id is None else max(1, int(request_id.ttl * 1000))
        await self._script(
            "delete_study",
            [*keys.all, keys.deleted],
            [*_request_args(request_id, now), ttl_ms, _fingerprint(request_id)],
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
            "claim_trials",
            [keys.study, keys.trials, keys.queue, keys.waiting, keys.running, *_ask_keys(keys)],
            [
                uid,
                count,
                -1 if capacity is None else capacity,
                -1 if max_trials is None else max_trials,
                repr(float(now)),
                repr(float(now) + claim_ttl),
                token,
                patch,
                repr(lease),
                client_id,
                _expiry_patch(now),
                EXPIRE_BATCH,
                *_ask_args(request_id, now),
                _fingerprint(request_id),
            ],
            study_id,
            # Trials taken from the queue become RUNNING here, with a lease.
            lease=(lease_member(namespace, study_id), lease),
        )
        _, texts, leases, raw_indices, raw_reissues, pending, replayed = reply
        texts, raw_reissues = _stored(study_id, texts), _stored(study_id, raw_reissues)
        trials = [decode_stored_trial(t, lease) for t, lease in zip(texts, leases, strict=True)]
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
        args: list[str | int] = [uid, token, repr(lease), client_id, *_ask_args(request_id, now)]
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
            args += [slot, encode_trial_body(trial)]
        reply = await self._script(
            "commit_trials",
            [
                keys.study,
                keys.trials,
                keys.numbers,
                keys.running,
                keys.claims,
                keys.leases,
                keys.owners,
                keys.holders,
                keys.requests,
                keys.request_times,
            ],
            args,
            study_id,
            lease=(lease_member(namespace, study_id), lease),
        )
        return _numbered(sent, reply[1], lease)

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
        rid, attempt, until, _ = _ask_args(request_id, now)
        slots = [f"r{r.source}" for r in reissues] + [str(index) for index in indices]
        await self._script(
            "renew_claim",
            [keys.study, keys.claims, keys.requests, keys.request_times],
            [uid, token, repr(float(now) + claim_ttl), rid, attempt, until, *slots],
            study_id,
        )

    async def reserve_indices(self, namespace: str, study_id: str, uid: str, count: int) -> int:
        """See :meth:`Store.reserve_indices`. One script call."""
        check_claim_args(count)
        keys = study_keys(namespace, study_id)
        reply = await self._script("reserve_indices", [keys.study], [uid, count], study_id)
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
            "commit_reserved",
            [keys.study, keys.trials, keys.numbers, keys.running, keys.queue, *_ask_keys(keys)],
            [
                uid,
                repr(lease),
                client_id,
                _expiry_patch(now),
                EXPIRE_BATCH,
                -1 if max_trials is None else max_trials,
                *_request_args(request_id, now),
                _fingerprint(request_id),
                *(encode_trial_body(t) for t in sent),
            ],
            study_id,
            lease=(lease_member(namespace, study_id), lease),
        )
        _, texts, fallback = reply
        if fallback:
            return FastAsk(fallback=str(fallback))
        return FastAsk(trials=_numbered(sent, texts, lease))

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
                keys.requests,
                keys.request_times,
                keys.leases,
            ],
            [
                encode_trial_body(trial),
                trial.state.value,
                "" if score is None else score_text(score),
                uid or "",
                *_request_args(request_id, now),
                _fingerprint(request_id),
            ],
            study_id,
        )
        return decode_stored_trial(_stored(study_id, reply[1:2])[0], reply[2])

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
        rid, _, until = _request_args(request_id, now)
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
                keys.leases,
                keys.expired,
                keys.reissue,
                keys.owners,
                keys.holders,
                keys.requests,
                keys.request_times,
            ],
            [
                str(number),
                state.value,
                patch,
                "" if score is None else score_text(score),
                score_member(number),
                uid or "",
                rid,
                repr(float(now)),
                until,
                _fingerprint(request_id),
            ],
            study_id,
            number,
        )
        return decode_stored_trial(_stored(study_id, reply[1:2])[0])

    # --- leases ------------------------------------------------------------------------------

    async def heartbeat_trial(
        self, namespace: str, study_id: str, number: int, *, now: float, lease_timeout: float
    ) -> Trial:
        """See :meth:`Store.heartbeat_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        lease = float(now) + lease_timeout
        reply = await self._script(
            "heartbeat_trial",
            [
                keys.study,
                keys.trials,
                keys.waiting,
                keys.running,
                keys.completed,
                keys.failed,
                keys.leases,
                keys.expired,
                keys.reissue,
                keys.owners,
                keys.holders,
            ],
            [str(number), repr(float(now)), repr(lease), _expiry_patch(now)],
            study_id,
            number,
        )
        return decode_stored_trial(_stored(study_id, reply[1:2])[0], lease)

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
                "expire_leases",
                _expiry_keys(keys),
                [repr(float(now)), _expiry_patch(now), SWEEP_BATCH],
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

    async def _index_lease_member(self, member: str, deadline: float) -> None:
        """Lowers a study's score in the lease index to ``deadline`` (or adds it).

        The index lives in its own slot, so it cannot change in the script that creates a
        lease. Callers write it before the script (a replica dying after the script leaves the
        lease indexed) and after it (a sweep that moved the entry to a later score in between
        cannot hide the new lease). The score only ever goes down here; the sweep moves it up.
        """
        await self._do(self._r.zadd(LEASE_INDEX, {member: deadline}, lt=True))

    # --- reading trials ----------------------------------------------------------------------

    async def get_trial(
        self, namespace: str, study_id: str, number: int, *, now: float | None = None
    ) -> Trial:
        """See :meth:`Store.get_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            "get_trial",
            [*_expiry_keys(keys)],
            [str(number), *_lazy_expiry_args(now)],
            study_id,
            number,
        )
        return decode_stored_trial(reply[1], reply[2] if len(reply) > 2 else None)

    async def list_trials(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        now: float | None = None,
    ) -> tuple[list[Trial], bool]:
        """See :meth:`Store.list_trials`. One script call, O(page size) work."""
        page, more = await self.list_trial_page(
            namespace, study_id, states=states, page_size=page_size, after=after, now=now
        )
        return page.decode(), more

    async def list_trial_page(
        self,
        namespace: str,
        study_id: str,
        *,
        states: Collection[TrialState] | None = None,
        page_size: int,
        after: int = 0,
        now: float | None = None,
    ) -> tuple[TrialPage, bool]:
        """See :meth:`Store.list_trial_page`: the trials as stored, decoded on demand."""
        check_page_size(page_size)
        keys = study_keys(namespace, study_id)
        wanted = set(TrialState) if states is None else set(states)
        if wanted == set(TrialState):
            sources = [keys.numbers]
        else:
            sources = [keys.state(s) for s in TrialState if s in wanted]
        reply = await self._script(
            "list_trials",
            [*_expiry_keys(keys), *sources],
            [str(int(after)), page_size, *_lazy_expiry_args(now)],
            study_id,
        )
        _, more, texts, leases = reply
        texts = _stored(study_id, texts)
        last = stored_trial_number(texts[-1]) if texts else 0
        return TrialPage(decode=_decode_page, encoded=(texts, leases), last=last), bool(more)

    async def best_trial(self, namespace: str, study_id: str) -> Trial | None:
        """See :meth:`Store.best_trial`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            "best_trial", [keys.study, keys.trials, keys.scores], [], study_id
        )
        return decode_stored_trial(_stored(study_id, reply[1:])[0]) if len(reply) > 1 else None


#: Stored study records longer than this (bytes of JSON) are decoded in a thread: a spec near
#: the 2 MiB limit takes tens of milliseconds to decode, which would stall every other call.
OFF_LOOP_RECORD_BYTES = 256 * 1024


async def _decode_study(text: str) -> StudyRecord:
    """``decode_study(text)``, in a thread when ``text`` is long."""
    if len(text) > OFF_LOOP_RECORD_BYTES:
        return await asyncio.to_thread(decode_study, text)
    return decode_study(text)


def _stored(study_id: str, texts: Sequence[str | None]) -> list[str]:
    """``texts``: stored trials a script read by the numbers in the study's indexes. A
    missing one (``None``) means an index names a trial with no record: DATA_LOSS."""
    if any(text is None for text in texts):
        raise study_data_loss(study_id, "a trial number in its indexes has no trial record")
    return cast(list[str], list(texts))


def _policy_of(reply: object) -> str | None:
    """The policy in a ``CONFIG GET maxmemory-policy`` reply, however redis-py shaped it (a
    dict, a flat list, or a cluster client's dict by node)."""
    if isinstance(reply, dict):
        if "maxmemory-policy" in reply:
            return str(reply["maxmemory-policy"])
        if len(reply) == 1:
            return _policy_of(next(iter(reply.values())))
    if isinstance(reply, list) and len(reply) == 2:
        return str(reply[1])
    return None


def _study_of(keys: Sequence[str]) -> str | None:
    """The study id in a script's first key (``hd:{namespace/study}:study``), or ``None``."""
    tag = keys[0].partition("{")[2].partition("}")[0] if keys else ""
    _, slash, study_id = tag.partition("/")
    return study_id if slash and study_id else None


def _decode_page(encoded: tuple[list[str], list[Any]]) -> list[Trial]:
    texts, leases = encoded
    return [decode_stored_trial(t, lease) for t, lease in zip(texts, leases, strict=True)]


#: Most leases one sweep step expires in one study.
SWEEP_BATCH = 1000


def _expiry_patch(now: float) -> str:
    """The patch layer of a trial whose lease expires at ``now``."""
    return encode_trial_patch(
        state=TrialState.FAILED, complete_time=float(now), failure_reason=LEASE_EXPIRED_REASON
    )


def _expiry_keys(keys: StudyKeys) -> tuple[str, ...]:
    """KEYS[1..9] of the reading scripts that expire due leases first."""
    return (
        keys.study,
        keys.trials,
        keys.running,
        keys.failed,
        keys.leases,
        keys.expired,
        keys.reissue,
        keys.owners,
        keys.holders,
    )


def _ask_keys(keys: StudyKeys) -> tuple[str, ...]:
    """KEYS[6..14] of the scripts that hand out trials (claim_trials, commit_reserved)."""
    return (
        keys.claims,
        keys.leases,
        keys.reissue,
        keys.failed,
        keys.expired,
        keys.owners,
        keys.holders,
        keys.requests,
        keys.request_times,
    )


def _lazy_expiry_args(now: float | None) -> list[str | int]:
    """Time, patch and batch of a reading script's lazy expiry; no expiry without a time."""
    if now is None:
        return ["", "", 0]
    return [repr(float(now)), _expiry_patch(now), EXPIRE_BATCH]


def _request_args(request_id: RequestId | None, now: float) -> list[str]:
    """Request id, now, and the time until which its record is kept ('' for no id)."""
    if request_id is None:
        return ["", repr(float(now)), ""]
    return [request_id.value, repr(float(now)), repr(float(now) + request_id.ttl)]


def _numbered(sent: list[Trial], texts: Sequence[str], lease: float) -> list[Trial]:
    """The new RUNNING trials a commit sent, with the numbers the script gave them (read off
    the stored texts: no need to decode what was just encoded) and their lease."""
    for trial, text in zip(sent, texts, strict=True):
        trial.number = stored_trial_number(text)
        trial.lease_expire_time = lease
    return sent


def _fingerprint(request_id: RequestId | None) -> str:
    """The payload fingerprint of a request id, for the scripts ('' for no id or no check)."""
    return "" if request_id is None else request_id.fingerprint


def _ask_args(request_id: RequestId | None, now: float) -> list[str]:
    """The request arguments of the two steps of an ask: id, attempt, record time, handed."""
    if request_id is None:
        return ["", "", "", ""]
    return [
        request_id.value,
        request_id.attempt,
        repr(float(now) + request_id.ttl),
        ",".join(str(n) for n in request_id.handed),
    ]
