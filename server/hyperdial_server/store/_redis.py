"""``RedisStore``: study state in Redis, shared by any number of server replicas.

Design:

* **One script per atomic step.** Every mutation of a study is one Lua script (``lua/*.lua``,
  registered once and called by SHA), and every key a script touches is passed in ``KEYS``.
  :mod:`._scripts` declares each script's keys and arguments by name, once: calls build
  ``KEYS`` and ``ARGV`` from it, and the scripts read them by the same names. All
  keys of a study share one hash tag (:mod:`._keys`), so each script runs on one Redis Cluster
  slot. Scripts take the time from ``ARGV`` (the caller's ``now``), never from Redis.
* **O(1) round trips.** ``get_study``, ``claim_trials``, ``commit_trials``,
  ``complete_trial``, ``create_trial``, ``get_trial``, ``list_trials``, ``best_trial``,
  ``add_measurement`` and ``check_early_stopping`` are one script call each (``get_study``:
  an ``HMGET`` and a ``ZCARD`` per state); none of them reads the whole study, so their cost does
  not grow with the number of trials (an early-stopping decision reads a count and at most two
  values of one sorted-set range, ``tests/store/test_redis_report_commands.py``; a read of the
  changes since a revision, a range of ``changes``, ``tests/e2e/test_redis_commands.py``).
  ``pareto_front`` is one script call too, reading the front that ``complete_trial``,
  ``create_trial`` and a stopping ``add_measurement`` keep in the same step (O(front size),
  ``tests/store/test_redis_pareto.py``); only a front found incomplete (a study stored before
  fronts were kept, trials finished by an earlier version) is computed from every trial once
  and put back. On
  a single server, scripts go through a :class:`._link.PipelinedLink`: the calls of all
  requests pipelined over one connection, with the lease index updates of a claim or commit
  in the same round trip.
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
  keys share the study's hash tag, hence one slot, and go over a pipelined link to the primary
  that owns it (``_cluster_link``: MOVED and ASK followed, the slot map refreshed); the index
  is its own key, and the reads that span studies (``list_studies``) are non-transactional
  pipelines, which the cluster client splits by node (one round trip per node).
* **Leases.** A RUNNING trial's deadline is its score in the study's ``leases`` set, not a field
  of its JSON, so a heartbeat rewrites one score instead of growing the trial; reads join it back.
  The shared functions of ``lua/_lib.lua`` (expiry, client holds, request records) are put in
  front of the scripts that use them. The lease index ``hd:leases`` lives in its own slot: the
  ask writes it before and after its scripts, the sweep moves it (see ``expire_leases``), and
  ``delete_study`` removes the study's member after the study, as for the study index.
* **Request ids.** The record of an answered call lives in the study's ``requests`` hash and is
  checked and written by the same script that makes the change; it ends with ``|`` and the
  fingerprint of the call's payload, compared by that script (see ``lua/_lib.lua``).
* **Errors.** Scripts reply ``{"OK", ...}`` or ``{CODE, ...}``; :func:`._errors.store_error` maps
  each code to a typed error. A Redis that cannot be reached raises
  :class:`~hyperdial_server.core.errors.Unavailable`, whose message names the server without
  its credentials; every other failure of Redis has its own typed error and reason too
  (:meth:`._errors.RedisErrors.failure`: out of memory, read-only, loading, a script that failed
  on damaged keys...), and keys a script or a read finds inconsistent raise ``DataLoss`` naming the
  study. Commands are not retried by the client library: a script whose reply was lost may
  have run, so retrying is left to callers that know whether the step is idempotent.

Layout. An ask reaches :meth:`RedisStore.claim_trials` and ``commit_trials`` (or
``reserve_indices`` and ``commit_reserved``) in ``_redis_trials.py``; each calls its script
(``lua/<name>.lua``, declared in ``_scripts.py``) through ``RedisBase._script`` in
``_redis_base.py``, which sends it over the pipelined link (``_link.py``) and maps any failure
to a typed error (``_errors.py``). The modules:

* ``_redis.py``: :class:`RedisStore`, made from a URL, its health check and close;
* ``_redis_base.py``: its clients and the path of every command and script (``_do``,
  ``_eval``, ``_script``);
* ``_redis_studies.py``, ``_redis_trials.py`` and ``_redis_reports.py``: the study, the trial
  and the early-stopping methods (intermediate reports);
* ``_redis_calls.py``: the arguments scripts share and the reading of their replies;
* ``_redis_connect.py``: the clients a URL names (pool, pipelined link, cluster);
* ``_scripts.py`` and ``lua/``: the scripts; ``_keys.py``: the keys; ``_codec.py`` and
  ``_codec_reports.py``: stored forms; ``_errors.py``: every error mapping; ``_link.py``: the
  pipelined link.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from redis.asyncio.cluster import RedisCluster

from hyperdial_server.core.errors import FailedPrecondition
from hyperdial_server.core.limits import DEFAULT_NAMESPACE_SPEC_BYTES, MAX_STUDIES_PER_NAMESPACE
from hyperdial_server.store._redis_connect import clients_from_url
from hyperdial_server.store._redis_reports import ReportCommands
from hyperdial_server.store._redis_studies import StudyCommands
from hyperdial_server.store._redis_trials import TrialCommands

#: The one eviction policy under which Redis never drops a key of a study.
REQUIRED_EVICTION_POLICY = "noeviction"
#: Milliseconds the health probe's key lives: it outlives no replica for long.
HEALTH_KEY_TTL_MS = 60_000


class RedisStore(StudyCommands, TrialCommands, ReportCommands):
    """A store on Redis. Each script touches the keys of one study, all in one cluster slot.

    Asks of RANDOM studies take one script call (:attr:`one_step_asks`): on Redis the round
    trip it saves is measured in ``bench/README.md``.

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

    one_step_asks = True

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
                ``_redis_connect.POOL_TIMEOUT`` seconds for a free connection.
            max_studies: Most studies per namespace.
            max_spec_bytes: Most bytes of stored study records per namespace; 0: no budget.

        Raises:
            ValueError: The URL is malformed.
        """
        clients = clients_from_url(url, max_connections=max_connections)
        store = cls(
            clients.client,
            where=clients.where,
            hide=clients.hide,
            max_studies=max_studies,
            link=clients.link,
            max_spec_bytes=max_spec_bytes,
        )
        store._gate = clients.gate
        return store

    async def close(self) -> None:
        """Closes the client and its connection pool."""
        if self._link is not None:
            await self._link.close()
        if self._cluster_links is not None:
            await self._cluster_links.close()
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
