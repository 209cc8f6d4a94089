"""The clients of a :class:`._redis.RedisStore`, opened from a URL (``RedisStore.from_url``).

A single server gets a blocking connection pool for ordinary commands and a
:class:`._link.PipelinedLink` for the scripts, both made with the URL's options; a Redis Cluster
(``redis+cluster://``, ``rediss+cluster://``) gets redis-py's cluster client and a gate that
bounds its calls in flight; the store makes the cluster's links for the scripts
(:func:`cluster_links`). Neither retries a command (see the design notes in :mod:`._redis`).
Error messages name the server by :func:`_public_url`: without credentials or query.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis.exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hyperdial_server.store._cluster_link import ClusterLinks
from hyperdial_server.store._link import PipelinedLink

# URL schemes of a Redis Cluster, and the plain scheme redis-py takes for each.
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: Seconds to wait for a free pooled connection before reporting the store unavailable.
POOL_TIMEOUT = 10.0
#: Seconds to wait for a TCP connection, and for a reply.
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 10.0


@dataclass(frozen=True)
class Clients:
    """What a Redis store talks to Redis through, and how it names the server.

    Attributes:
        client: A ``redis.asyncio`` client whose responses are decoded.
        where: How to name the server in error messages, without credentials.
        hide: Texts (passwords) never to show in an error message.
        link: Where scripts go on a single server; ``None`` on a cluster.
        gate: Bounds the calls in flight on a cluster; ``None`` on a single server, whose
            pool waits for a free connection instead.
    """

    client: Redis | RedisCluster
    where: str
    hide: list[str]
    link: PipelinedLink | None = None
    gate: asyncio.Semaphore | None = None


def clients_from_url(url: str, *, max_connections: int) -> Clients:
    """The clients a store URL names (see ``RedisStore.from_url`` for the URLs).

    Args:
        url: A ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://`` or
            ``rediss+cluster://`` URL.
        max_connections: Size of the pool (per node on a cluster).

    Raises:
        ValueError: The URL is malformed.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in _CLUSTER_SCHEMES:
        return _cluster_from_url(url, _CLUSTER_SCHEMES[scheme], max_connections)
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
    link = PipelinedLink(
        # The handshake (TLS, AUTH, SELECT) within CONNECT_TIMEOUT too: a Redis that
        # accepts but stalls delays a call by at most that before its command is sent.
        lambda: pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": CONNECT_TIMEOUT}
        ),
        reply_timeout=SOCKET_TIMEOUT,
    )
    return Clients(Redis.from_pool(pool), where, hide, link=link)


def _cluster_from_url(url: str, scheme: str, max_connections: int) -> Clients:
    """The clients of a Redis Cluster: every script runs on the slot of its study's hash tag.

    Scripts go over a pipelined link per primary (:mod:`._cluster_link`), other commands
    through redis-py's cluster client. Both follow MOVED and ASK redirections (a redirected
    command has not run, so that is no retry); like the single-server store they retry
    nothing else.
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
    # A cluster node's pool fails at once when full instead of waiting: queue here instead.
    return Clients(client, where, hide, gate=asyncio.Semaphore(max_connections))


def cluster_links(cluster: RedisCluster) -> ClusterLinks:
    """The links of a cluster's scripts: one per primary, each made as the single server's
    link is (the handshake within ``CONNECT_TIMEOUT``), with the cluster client's options."""
    return ClusterLinks(
        cluster,
        lambda node: PipelinedLink(
            lambda: node.connection_class(
                **{**node.connection_kwargs, "socket_timeout": CONNECT_TIMEOUT}
            ),
            reply_timeout=SOCKET_TIMEOUT,
        ),
    )


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
