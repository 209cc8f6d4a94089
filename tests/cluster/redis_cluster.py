"""A real Redis Cluster for tests: three masters from the same ``redis-server`` binary.

The cluster is formed by hand (``CLUSTER ADDSLOTS``, ``CLUSTER MEET``), as ``redis-cli
--cluster create`` would, so no ``redis-cli`` is needed. Each node is a
:class:`tests.redis_server.RedisServer` with ``cluster-enabled yes`` on a free loopback port
whose cluster bus port (port + 10000) is free too.
"""

from __future__ import annotations

import socket
import time
from types import TracebackType

import redis

from tests.redis_server import START_TIMEOUT, RedisServer

#: Number of hash slots of a Redis Cluster.
SLOTS = 16384
# Redis puts a node's cluster bus on its port + 10000.
_BUS_OFFSET = 10000


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_node() -> RedisServer:
    """A cluster-enabled server (not started) whose bus port is usable too."""
    for _ in range(100):
        node = RedisServer(
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        )
        bus = node.port + _BUS_OFFSET
        if bus <= 65535 and _port_free(bus):
            return node
        node.close()
    raise RuntimeError("no free port pair (port, port + 10000) for a cluster node")


class RedisClusterServer:
    """A Redis Cluster of ``masters`` nodes on loopback, every slot assigned, no replicas.

    Args:
        masters: Number of master nodes; the slots are split evenly between them.
    """

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [_cluster_node() for _ in range(masters)]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:PORT`` of the first node (any node seeds discovery)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> RedisClusterServer:
        """Starts the nodes, assigns the slots, joins the nodes, and waits until the cluster
        state is ``ok`` on every node.

        Raises:
            RuntimeError: The cluster did not form in time.
        """
        try:
            for node in self.nodes:
                node.start()
            clients = [redis.Redis(port=n.port, decode_responses=True) for n in self.nodes]
            try:
                self._form(clients)
            finally:
                for c in clients:
                    c.close()
        except BaseException:
            self.close()
            raise
        return self

    def _form(self, clients: list[redis.Redis]) -> None:
        share = -(-SLOTS // len(clients))
        for i, c in enumerate(clients):
            # Distinct epochs up front, as redis-cli does, so no epoch collision is resolved
            # while the nodes meet.
            c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            slots = range(i * share, min((i + 1) * share, SLOTS))
            c.execute_command("CLUSTER", "ADDSLOTS", *slots)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait(clients)

    def restart(self, node: RedisServer) -> None:
        """Starts a stopped node again (it keeps its slots) and waits until the cluster state
        is ``ok`` on every node."""
        node.start()
        clients = [redis.Redis(port=n.port, decode_responses=True) for n in self.nodes]
        try:
            self._wait(clients)
        finally:
            for c in clients:
                c.close()

    def _wait(self, clients: list[redis.Redis]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not all(self._ready(c) for c in clients):
            if time.monotonic() > deadline:
                states = [c.execute_command("CLUSTER", "INFO") for c in clients]
                raise RuntimeError(f"the Redis Cluster did not form in time: {states}")
            time.sleep(0.05)

    def _ready(self, client: redis.Redis) -> bool:
        info = client.execute_command("CLUSTER", "INFO")
        if isinstance(info, str):
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        else:
            fields = {k: str(v) for k, v in info.items()}
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_known_nodes") == str(len(self.nodes))
            and fields.get("cluster_slots_ok") == str(SLOTS)
        )

    def close(self) -> None:
        """Kills every node and removes its directory."""
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
