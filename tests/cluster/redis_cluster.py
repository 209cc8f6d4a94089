"""A real Redis Cluster for tests: three masters from the same ``redis-server`` binary, and
optionally a replica of each.

The cluster is formed by hand (``CLUSTER ADDSLOTS``, ``CLUSTER MEET``, ``CLUSTER REPLICATE``),
as ``redis-cli --cluster create`` would, so no ``redis-cli`` is needed. Each node is a
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


def _sees_master(client: redis.Redis, node_id: str) -> bool:
    for row in str(client.execute_command("CLUSTER", "NODES")).splitlines():
        fields = row.split()
        if fields[0] == node_id:
            return "master" in fields[2].split(",")
    return False


class RedisClusterServer:
    """A Redis Cluster of ``masters`` nodes on loopback, every slot assigned, each master with
    ``replicas`` replicas.

    Args:
        masters: Number of master nodes; the slots are split evenly between them.
        replicas: Replicas per master (``CLUSTER REPLICATE``), which a failover promotes.

    Attributes:
        nodes: Every node: the masters first (as formed), then the replicas.
    """

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.masters = masters
        self.nodes = [_cluster_node() for _ in range(masters * (1 + replicas))]

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
        masters = clients[: self.masters]
        share = -(-SLOTS // len(masters))
        for i, c in enumerate(clients):
            # Distinct epochs up front, as redis-cli does, so no epoch collision is resolved
            # while the nodes meet.
            c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for i, c in enumerate(masters):
            slots = range(i * share, min((i + 1) * share, SLOTS))
            c.execute_command("CLUSTER", "ADDSLOTS", *slots)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait(clients)
        ids = [c.execute_command("CLUSTER", "MYID") for c in masters]
        for i, c in enumerate(clients[self.masters :]):
            c.execute_command("CLUSTER", "REPLICATE", ids[i % self.masters])
        self._wait(clients)

    def node_id(self, node: RedisServer) -> str:
        """The cluster id of ``node``."""
        with redis.Redis(port=node.port, decode_responses=True) as c:
            return str(c.execute_command("CLUSTER", "MYID"))

    def role(self, node: RedisServer) -> str:
        """``master`` or ``slave``, as ``node`` sees itself."""
        with redis.Redis(port=node.port, decode_responses=True) as c:
            return str(c.info("replication")["role"])

    def node_serving(self, key: str) -> RedisServer:
        """The master that serves the slot of ``key`` now, as the first running node sees it."""
        asked = next(n for n in self.nodes if n.running)
        with redis.Redis(port=asked.port, decode_responses=True) as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no node serves the slot of {key!r}")

    def replica_of(self, master: RedisServer) -> RedisServer:
        """A replica of ``master``."""
        master_id = self.node_id(master)
        for node in self.nodes:
            if node is not master:
                with redis.Redis(port=node.port, decode_responses=True) as c:
                    line = c.execute_command("CLUSTER", "NODES")
                    me = next(row for row in str(line).splitlines() if "myself" in row)
                    if me.split()[3] == master_id:
                        return node
        raise RuntimeError(f"node {master.port} has no replica")

    def failover(self, replica: RedisServer, *options: str) -> None:
        """``CLUSTER FAILOVER [options]`` on ``replica``; waits until it is a master and the
        cluster state is ``ok`` on every node again.

        Without options the failover is a manual one: the master stops taking writes, the
        replica catches up with its replication stream, then takes over, so no write the
        master acknowledged is lost. ``TAKEOVER`` promotes the replica at once, without it.
        """
        with redis.Redis(port=replica.port, decode_responses=True) as c:
            c.execute_command("CLUSTER", "FAILOVER", *options)
        deadline = time.monotonic() + START_TIMEOUT
        while self.role(replica) != "master":
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {replica.port} did not become a master in time")
            time.sleep(0.05)
        replica_id = self.node_id(replica)
        # The nodes still running (a failover may follow a crash of the master).
        clients = [redis.Redis(port=n.port, decode_responses=True) for n in self.nodes if n.running]
        try:
            self._wait(clients)
            # Every node has heard of the promotion (gossip), so any node's map names it.
            while not all(_sees_master(c, replica_id) for c in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the nodes did not all see {replica.port} promoted")
                time.sleep(0.05)
        finally:
            for c in clients:
                c.close()

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
        if not (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_known_nodes") == str(len(self.nodes))
            and fields.get("cluster_slots_ok") == str(SLOTS)
        ):
            return False
        # A replica is ready once it has its master's data set.
        replication = client.info("replication")
        return replication["role"] == "master" or replication.get("master_link_status") == "up"

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
