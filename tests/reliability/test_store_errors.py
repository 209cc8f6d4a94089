"""Store failures answer precise codes and reasons, never INTERNAL: a full Redis, a read-only
replica, a Redis that refuses writes or a command, an evicting Redis, a damaged study, and a
stalled Redis (within the documented bounds). Each test runs its own redis-server, configured
for the case with CONFIG SET, behind a real gRPC server."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import redis
import redis.exceptions as rx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server import server as server_module
from hyperdial_server.core.errors import DataLoss, HyperdialError
from hyperdial_server.server import EvictingStoreError, ServerConfig, start
from hyperdial_server.service._status import status_code
from hyperdial_server.store import RedisStore
from hyperdial_server.store._errors import store_error
from hyperdial_server.store._redis_connect import SOCKET_TIMEOUT
from tests.e2e.protocol import ask, create, error_reason, float_param, spec, tell
from tests.process_groups import run
from tests.redis_server import RedisServer
from tests.server_harness import InProcessServer, ServerProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: Generous ceiling of any wait for a condition; tests end as soon as it holds.
PATIENCE = 60.0


def _random_spec() -> study_pb2.StudySpec:
    return spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM)


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _fails(call: Callable[[], object]) -> tuple[grpc.StatusCode, str, str]:
    """(code, reason, message) of a call that must fail; never INTERNAL or UNKNOWN."""
    with pytest.raises(grpc.RpcError) as e:
        call()
    code, reason, message = error_reason(e.value)
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), message
    return code, reason, message


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="hyperdial.v1.TuningService")
        return int(stub.Check(request, timeout=30).status)


def _command(client: redis.Redis, *args: str | int) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _key(r: redis.Redis, pattern: str) -> str:
    keys = r.keys(pattern)
    assert len(keys) == 1, keys
    return str(keys[0])


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client of the test's own Redis, to configure it."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def served(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[InProcessServer, Any]]:
    """An in-process server on the test's Redis (health checked often), and a stub."""
    monkeypatch.setattr(server_module, "HEALTH_INTERVAL", 0.05)
    server = InProcessServer(
        ServerConfig(redis_url=redis_server.url, sampler_processes=0, lease_sweep_interval=0)
    ).start()
    channel = grpc.insecure_channel(server.target)
    try:
        yield server, tuning_service_pb2_grpc.TuningServiceStub(channel)
    finally:
        channel.close()
        server.stop()


# --- out of memory ---------------------------------------------------------------------------


def test_a_full_redis_answers_resource_exhausted_and_health_follows(
    served: tuple[InProcessServer, Any], admin: redis.Redis
) -> None:
    server, stub = served
    create(stub, "s", _random_spec())
    admin.config_set("maxmemory", 1)  # below what it uses: every write is refused (noeviction)
    _wait(lambda: _health(server.target) == NOT_SERVING, "NOT_SERVING on a full Redis")
    for call in (
        lambda: create(stub, "t", _random_spec()),
        lambda: ask(stub, "s"),
    ):
        code, reason, message = _fails(call)
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "STORE_OUT_OF_MEMORY")
        assert "is full" in message and "frees memory" in message
    # Reads still work on a full Redis.
    assert stub.GetStudy(ts.GetStudyRequest(name="studies/s")).study.name == "studies/s"

    admin.config_set("maxmemory", 0)  # an operator frees memory: the same calls work
    _wait(lambda: _health(server.target) == SERVING, "SERVING once memory is freed")
    create(stub, "t", _random_spec())
    assert len(ask(stub, "s")) == 1


# --- read-only replica, refused writes, refused commands -------------------------------------


def test_a_read_only_replica_answers_unavailable_and_health_follows(
    served: tuple[InProcessServer, Any], admin: redis.Redis
) -> None:
    server, stub = served
    with RedisServer() as primary:
        # The server's Redis becomes a replica of another, as after a failover to elsewhere.
        _command(admin, "REPLICAOF", "127.0.0.1", str(primary.port))
        _wait(lambda: _health(server.target) == NOT_SERVING, "NOT_SERVING on a replica")
        reasons = set()

        def read_only() -> bool:
            code, reason, _ = _fails(lambda: create(stub, "s", _random_spec()))
            assert code is grpc.StatusCode.UNAVAILABLE
            reasons.add(reason)
            return reason == "STORE_READ_ONLY"

        _wait(read_only, "CreateStudy to answer STORE_READ_ONLY")
        # While the replica loads the primary's data set it may answer LOADING first.
        assert reasons <= {"STORE_READ_ONLY", "STORE_LOADING"}

        _command(admin, "REPLICAOF", "NO", "ONE")  # promoted: writes work again
        _wait(lambda: _health(server.target) == SERVING, "SERVING once promoted")
        create(stub, "s", _random_spec())
        assert len(ask(stub, "s")) == 1


def test_a_redis_refusing_writes_answers_unavailable(
    served: tuple[InProcessServer, Any], admin: redis.Redis
) -> None:
    server, stub = served
    create(stub, "s", _random_spec())
    # A primary cut off from its replicas refuses writes (docs/operations.md).
    admin.config_set("min-replicas-to-write", 1)
    _wait(lambda: _health(server.target) == NOT_SERVING, "NOT_SERVING without replicas")
    for call in (lambda: create(stub, "t", _random_spec()), lambda: ask(stub, "s")):
        code, reason, _ = _fails(call)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_WRITES_REFUSED")
    admin.config_set("min-replicas-to-write", 0)
    _wait(lambda: _health(server.target) == SERVING, "SERVING again")
    assert len(ask(stub, "s")) == 1


def test_a_command_the_acl_denies_answers_failed_precondition(
    served: tuple[InProcessServer, Any], admin: redis.Redis
) -> None:
    _, stub = served
    create(stub, "s", _random_spec())
    # The default user may no longer run scripts (an operator's ACL mistake).
    _command(admin, "ACL", "SETUSER", "default", "-evalsha", "-eval", "-script")
    code, reason, message = _fails(lambda: ask(stub, "s"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "STORE_REJECTED")
    assert "NOPERM" in message or "permission" in message.lower()


# --- an evicting Redis -----------------------------------------------------------------------


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_an_evicting_redis_is_refused_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer("--maxmemory-policy", "allkeys-lru") as evicting:
        config = ServerConfig(host="127.0.0.1", port=0, redis_url=evicting.url, sampler_processes=0)
        with pytest.raises(EvictingStoreError) as e:
            _run(start(config))
        assert "noeviction" in str(e.value)
        assert "--allow-evicting-redis" in str(e.value)

        async def allowed() -> None:
            config.allow_evicting_redis = True
            running = await start(config)
            await running.stop(0)

        with caplog.at_level(logging.WARNING, logger="hyperdial.server"):
            _run(allowed())
        assert any(
            r.levelno == logging.WARNING and "REDIS MAY EVICT KEYS" in r.getMessage()
            for r in caplog.records
        )

        # The command line: refused with exit code 2, or started with the variable set.
        args = [sys.executable, "-m", "hyperdial_server", "--port", "0", "--redis", evicting.url]
        env = {k: v for k, v in os.environ.items() if k != "HYPERDIAL_ALLOW_EVICTING_REDIS"}
        refused = run(args, env=env, timeout=120)
        assert refused.returncode == 2
        assert "refusing to start" in refused.stderr and "maxmemory-policy" in refused.stderr
        process = ServerProcess(evicting.url, env={"HYPERDIAL_ALLOW_EVICTING_REDIS": "1"})
        code, log = process.stop_and_read_log()
        assert code == 0
        assert "REDIS MAY EVICT KEYS" in log


def test_a_redis_without_config_is_served_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Managed Redis often disables CONFIG: the policy cannot be checked, so warn and go on.
    with RedisServer("--rename-command", "CONFIG", "") as managed:
        config = ServerConfig(host="127.0.0.1", port=0, redis_url=managed.url, sampler_processes=0)

        async def main() -> None:
            running = await start(config)
            await running.stop(0)

        with caplog.at_level(logging.WARNING, logger="hyperdial.server"):
            _run(main())
        assert any("cannot read maxmemory-policy" in r.getMessage() for r in caplog.records)


def test_health_checks_the_eviction_policy_again_when_the_store_comes_back(
    served: tuple[InProcessServer, Any],
    admin: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _ = served
    caplog.set_level(logging.ERROR, logger="hyperdial.server")
    admin.config_set("maxmemory", 1)
    _wait(lambda: _health(server.target) == NOT_SERVING, "NOT_SERVING on a full Redis")
    # Writes work again, but this Redis would evict keys when full: not served from.
    admin.config_set("maxmemory-policy", "allkeys-lru")
    admin.config_set("maxmemory", 0)
    _wait(
        lambda: any("may evict keys" in r.getMessage() for r in caplog.records),
        "the eviction policy to be refused",
    )
    assert _health(server.target) == NOT_SERVING
    admin.config_set("maxmemory-policy", "noeviction")
    _wait(lambda: _health(server.target) == SERVING, "SERVING with noeviction")


# --- a damaged study -------------------------------------------------------------------------


def test_a_damaged_study_answers_data_loss_naming_it(
    served: tuple[InProcessServer, Any], admin: redis.Redis
) -> None:
    _, stub = served
    create(stub, "s", _random_spec())
    first, second = ask(stub, "s", count=2)
    tell(stub, first.name, loss=0.5)
    # The record of a trial the indexes still name is gone (an eviction, a hand edit).
    admin.hdel(_key(admin, "hd:{*/s}:trials"), str(second.number))
    code, reason, message = _fails(
        lambda: stub.ListTrials(ts.ListTrialsRequest(parent="studies/s"))
    )
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "STUDY_DATA_LOSS")
    assert "studies/s" in message

    # The record of the best trial is gone too.
    admin.hdel(_key(admin, "hd:{*/s}:trials"), str(first.number))
    code, reason, message = _fails(
        lambda: stub.ListOptimalTrials(ts.ListOptimalTrialsRequest(parent="studies/s"))
    )
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "STUDY_DATA_LOSS")
    assert "studies/s" in message

    # A study hash missing some of its fields.
    create(stub, "u", _random_spec())
    admin.hdel(_key(admin, "hd:{*/u}:study"), "uid")
    code, reason, message = _fails(lambda: stub.GetStudy(ts.GetStudyRequest(name="studies/u")))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "STUDY_DATA_LOSS")
    assert "studies/u" in message and "uid" in message


def test_a_script_failing_on_damaged_keys_is_data_loss(
    served: tuple[InProcessServer, Any], admin: redis.Redis
) -> None:
    server, stub = served
    create(stub, "s", _random_spec())
    (trial,) = ask(stub, "s")
    admin.hdel(_key(admin, "hd:{*/s}:trials"), str(trial.number))
    # The sweep expires the lease of the RUNNING trial whose record is gone: its script fails
    # in Lua on the missing record.
    store = server.store
    assert isinstance(store, RedisStore)
    with pytest.raises(DataLoss) as e:
        server.run(store.expire_leases(now=time.time() + 10**7))
    assert status_code(e.value) is grpc.StatusCode.DATA_LOSS
    assert e.value.reason == "STUDY_DATA_LOSS"
    assert e.value.metadata == {"study": "studies/s"}


# --- every Redis failure has its code --------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "reason"),
    [
        (rx.OutOfMemoryError("command not allowed"), "RESOURCE_EXHAUSTED", "STORE_OUT_OF_MEMORY"),
        (
            rx.ReadOnlyError("You can't write against a read only replica."),
            "UNAVAILABLE",
            "STORE_READ_ONLY",
        ),
        (
            rx.BusyLoadingError("Redis is loading the dataset in memory"),
            "UNAVAILABLE",
            "STORE_LOADING",
        ),
        (rx.ResponseError("BUSY Redis is busy running a script."), "UNAVAILABLE", "STORE_BUSY"),
        (
            rx.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
            "UNAVAILABLE",
            "STORE_WRITES_REFUSED",
        ),
        (
            rx.ResponseError("NOREPLICAS Not enough good replicas to write."),
            "UNAVAILABLE",
            "STORE_WRITES_REFUSED",
        ),
        (rx.ConnectionError("Connection refused"), "UNAVAILABLE", "STORE_UNAVAILABLE"),
        (rx.TimeoutError("Timeout reading from socket"), "UNAVAILABLE", "STORE_UNAVAILABLE"),
        (rx.ClusterDownError("The cluster is down"), "UNAVAILABLE", "STORE_UNAVAILABLE"),
        (
            rx.TryAgainError("Multiple keys request during rehashing"),
            "UNAVAILABLE",
            "STORE_UNAVAILABLE",
        ),
        (
            rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "DATA_LOSS",
            "STUDY_DATA_LOSS",
        ),
        (
            rx.ResponseError("ERR user_script:3: bad argument #1 to 'sub'"),
            "DATA_LOSS",
            "STUDY_DATA_LOSS",
        ),
        # A script's first write refused: nothing was written, so the refusal, not damage.
        (
            rx.ResponseError(
                "Error running script (call to f_6d98): @user_script:19: @user_script: 19: "
                "-OOM command not allowed when used memory > 'maxmemory'."
            ),
            "RESOURCE_EXHAUSTED",
            "STORE_OUT_OF_MEMORY",
        ),
        (
            rx.ResponseError(
                "Error running script (call to f_6d98): @user_script:19: @user_script: 19: "
                "-NOREPLICAS Not enough good replicas to write."
            ),
            "UNAVAILABLE",
            "STORE_WRITES_REFUSED",
        ),
        (
            rx.ResponseError(
                "Error running script (call to f_6d98): @user_script:7: @user_script: 7: "
                "-READONLY You can't write against a read only replica."
            ),
            "UNAVAILABLE",
            "STORE_READ_ONLY",
        ),
        (
            rx.NoPermissionError("this user has no permissions to run the 'evalsha' command"),
            "FAILED_PRECONDITION",
            "STORE_REJECTED",
        ),
        (
            rx.NoPermissionError(
                "this user has no permissions to run the 'zadd' command script: 1f, on "
                "@user_script:9."
            ),
            "FAILED_PRECONDITION",
            "STORE_REJECTED",
        ),
        (
            rx.ResponseError("ERR unknown command 'ZMSCORE'"),
            "FAILED_PRECONDITION",
            "STORE_REJECTED",
        ),
    ],
)
def test_every_redis_failure_has_a_precise_status(exc: Exception, code: str, reason: str) -> None:
    store = RedisStore.from_url("redis://:hunter2@127.0.0.1:1/0")
    try:
        error = store.errors.failure(exc, "s")
        assert isinstance(error, HyperdialError)
        assert (status_code(error).name, error.reason) == (code, reason)
        assert "hunter2" not in error.message
        if code == "DATA_LOSS":
            assert "studies/s" in error.message
    finally:
        _run(store.close())


def test_a_script_may_reply_data_loss() -> None:
    error = store_error("DATA_LOSS", "s", None, "trial 7 has no record")
    assert isinstance(error, DataLoss)
    assert (error.reason, error.metadata) == ("STUDY_DATA_LOSS", {"study": "studies/s"})
    assert "trial 7 has no record" in error.message


# --- a stalled Redis -------------------------------------------------------------------------


def test_a_stall_answers_within_the_documented_bounds(
    redis_server: RedisServer, admin: redis.Redis
) -> None:
    """Under a 12 s CLIENT PAUSE WRITE, an ask answers UNAVAILABLE within the 10 s reply
    bound and health turns NOT_SERVING within HEALTH_INTERVAL + HEALTH_TIMEOUT (5 s), with
    the default settings; both come back afterwards. Margins are whole seconds."""
    server = InProcessServer(
        ServerConfig(redis_url=redis_server.url, sampler_processes=0, lease_sweep_interval=0)
    ).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            create(stub, "s", _random_spec())
            assert len(ask(stub, "s")) == 1
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=120
            )
            statuses = iter(r.status for r in watch)
            assert next(statuses) == SERVING
            not_serving_after: list[float] = []

            def watch_health(paused: float) -> None:
                assert next(statuses) == NOT_SERVING
                not_serving_after.append(time.monotonic() - paused)

            paused = time.monotonic()
            _command(admin, "CLIENT", "PAUSE", 12_000, "WRITE")
            watcher = threading.Thread(target=watch_health, args=(paused,))
            watcher.start()
            code, reason, _ = _fails(lambda: ask(stub, "s", count=1))
            elapsed = time.monotonic() - paused
            assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
            bound = SOCKET_TIMEOUT
            assert elapsed <= bound + 1.0, f"the ask took {elapsed:.1f} s, over {bound:g} s"
            watcher.join(PATIENCE)
            limit = server_module.HEALTH_INTERVAL + server_module.HEALTH_TIMEOUT
            assert not_serving_after and not_serving_after[0] <= limit + 1.0
            assert next(statuses) == SERVING  # once the pause ends
            assert len(ask(stub, "s")) == 1
            watch.cancel()
    finally:
        server.stop()


def test_every_primary_of_a_cluster_is_checked(redis_cluster_url: str) -> None:
    async def main() -> dict[str, str | None]:
        store = RedisStore.from_url(redis_cluster_url)
        try:
            await store.ping()  # the health probe's write works on a cluster too
            return await store.eviction_policies()
        finally:
            await store.close()

    policies = _run(main())
    assert len(policies) == 3
    assert set(policies.values()) == {"noeviction"}
