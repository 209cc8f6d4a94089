"""The first contact with the service: a client that has never reached it fails fast, with a
message that says what to check; one that has reached it rides out a restart as before."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import hyperdial as hd
from hyperdial._channel import Contact, channel_options, channel_ready
from hyperdial._retry import WARN_FROM_RETRY, Attempts, from_transport
from hyperdial.aio import AsyncClient
from hyperdial_server.server import ServerConfig
from tests.client._support import RetryLog, new_id, server_on_port
from tests.security.pki import Pki, make_pki
from tests.server_harness import InProcessServer, ServerProcess

SPACE = [hd.Float("x", 0.0, 1.0)]
# Fast retries for the counts; the overall deadline stays long, as in production.
FAST = hd.RetryPolicy(deadline=120, initial_backoff=0.01, max_backoff=0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port whose connections the kernel accepts and no process ever answers: a frozen
    server, or the wrong kind of server."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def check_unreachable(error: hd.ServiceUnreachableError, target: str) -> None:
    """What every never-reached error says."""
    assert isinstance(error, hd.UnavailableError)  # callers catching the old class still do
    assert error.metadata == {"target": target}
    message = str(error)
    assert f"cannot reach the hyperdial service at {target}" in message
    assert "Is the server running" in message
    assert "\n" not in message  # one line, for logs and the command line


# -- the arithmetic ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_connect_timeout_bounds_a_call_only_until_the_service_is_reached() -> None:
    clock = FakeClock()
    reached = False
    policy = hd.RetryPolicy(deadline=120, initial_backoff=1.0, max_backoff=1.0)
    attempts = Attempts(
        "GetStudy",
        policy,
        5.0,
        connect_timeout=3.0,
        reached=lambda: reached,
        clock=clock,
        rng=lambda: 1.0,
    )
    assert attempts.timeout() == 3.0  # cut to the connect timeout
    clock.now += 1.5
    assert attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "refused") == 1.0
    clock.now += 1.0
    assert attempts.timeout() == pytest.approx(0.5)
    # A wait that would end past the connect timeout: give up now.
    assert attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "refused") is None
    # Reached meanwhile (in the middle of the call): the overall deadline alone.
    reached = True
    assert attempts.timeout() == 5.0
    clock.now += 60
    assert attempts.retry_after(grpc.StatusCode.UNAVAILABLE, "restarting") == 1.0

    # Without a policy there is one attempt: its own deadline, never cut.
    once = Attempts("SuggestTrials", None, 20.0, connect_timeout=3.0, reached=lambda: False)
    assert once.timeout() == 20.0


def test_transport_errors_are_the_ones_without_a_reason() -> None:
    assert from_transport(hd.UnavailableError("refused", code=grpc.StatusCode.UNAVAILABLE))
    assert from_transport(hd.DeadlineExceededError("", code=grpc.StatusCode.DEADLINE_EXCEEDED))
    # The service answered these: it was reached.
    assert not from_transport(
        hd.UnavailableError("", code=grpc.StatusCode.UNAVAILABLE, reason="STORE_UNAVAILABLE")
    )
    assert not from_transport(hd.NotFoundError("", code=grpc.StatusCode.NOT_FOUND))
    contact = Contact(lambda: False)
    contact.failed(True)
    assert not contact.reached
    contact.failed(False)
    assert contact.reached
    connected = Contact(lambda: True)  # no answer in time, on a connected channel
    connected.failed(True)
    assert connected.reached


# -- a service that is not there ---------------------------------------------------------------


def test_a_client_that_never_reached_the_service_fails_fast(retry_log: RetryLog) -> None:
    target = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with hd.Client(target) as client:  # the defaults: a 120 s retry budget, 5 s to connect
        with pytest.raises(hd.ServiceUnreachableError) as info:
            client.get_study("anything")
    elapsed = time.monotonic() - started
    check_unreachable(info.value, target)
    message = str(info.value)
    assert "Connection refused" in message  # the transport's own words
    assert "connect_timeout 5 s" in message
    # Plaintext client: the hint is about a server that uses TLS.
    assert "uses plaintext" in message and "tls=True" in message
    # Far fewer attempts than the retry budget allows (24 over 115 s before), well before it.
    assert 1 <= len(retry_log.records) < 12
    assert f"in {len(retry_log.records) + 1} attempts" in message
    assert elapsed < 60


def test_an_async_client_that_never_reached_the_service_fails_fast(retry_log: RetryLog) -> None:
    target = f"127.0.0.1:{free_port()}"

    async def main() -> hd.ServiceUnreachableError:
        async with AsyncClient(target) as client:
            with pytest.raises(hd.ServiceUnreachableError) as info:
                await client.create_study(new_id(), SPACE)
            return info.value

    started = time.monotonic()
    error = asyncio.run(main())
    assert time.monotonic() - started < 60
    check_unreachable(error, target)
    assert "Connection refused" in str(error) and "connect_timeout 5 s" in str(error)
    assert 1 <= len(retry_log.records) < 12


def test_the_connect_timeout_bounds_an_attempt_that_gets_no_answer(silent_listener: str) -> None:
    # Attempts of 30 s each: only the connect timeout can end the call this early, and a
    # single attempt, cut to it, is all there is time for.
    started = time.monotonic()
    with hd.Client(silent_listener, timeout=30, connect_timeout=1.5) as client:
        with pytest.raises(hd.ServiceUnreachableError) as info:
            client.get_study("anything")
    assert time.monotonic() - started < 25
    check_unreachable(info.value, silent_listener)
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no connection (connect_timeout 1.5 s)" in str(info.value)

    async def main() -> hd.ServiceUnreachableError:
        async with AsyncClient(silent_listener, timeout=30, connect_timeout=1.5) as client:
            with pytest.raises(hd.ServiceUnreachableError) as info:
                await client.get_study("anything")
            return info.value

    started = time.monotonic()
    error = asyncio.run(main())
    assert time.monotonic() - started < 25
    assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no connection (connect_timeout 1.5 s)" in str(error)


def test_without_a_connect_timeout_the_retry_policy_alone_decides(retry_log: RetryLog) -> None:
    target = f"127.0.0.1:{free_port()}"
    four = hd.RetryPolicy(deadline=None, max_attempts=4, initial_backoff=0.01, max_backoff=0.01)
    with hd.Client(target, retry=four, connect_timeout=None) as client:
        with pytest.raises(hd.ServiceUnreachableError) as info:
            client.get_study("anything")
    assert len(retry_log.records) == 3
    assert "no connection in 4 attempts" in str(info.value)
    assert "connect_timeout" not in str(info.value)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="connect_timeout"):
            hd.Client(target, connect_timeout=bad)
        with pytest.raises(ValueError, match="connect_timeout"):
            AsyncClient(target, connect_timeout=bad)


# -- TLS on one side only ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[InProcessServer]:
    config = ServerConfig(tls_cert=str(pki.server.cert), tls_key=str(pki.server.key))
    with InProcessServer(config) as server:
        yield server


TWO = hd.RetryPolicy(deadline=None, max_attempts=2, initial_backoff=0.01, max_backoff=0.01)


def test_a_plaintext_client_of_a_tls_server_is_told_about_tls(
    tls_server: InProcessServer, pki: Pki
) -> None:
    with hd.Client(tls_server.target, retry=TWO) as plain:
        with pytest.raises(hd.ServiceUnreachableError) as info:
            plain.get_study("anything")
    check_unreachable(info.value, tls_server.target)
    assert "This client uses plaintext: if the server uses TLS" in str(info.value)
    # With TLS it works: the server was there all along.
    with hd.Client(tls_server.target, tls=hd.tls_credentials(pki.ca.cert)) as secure:
        with pytest.raises(hd.NotFoundError):
            secure.get_study(new_id())


def test_a_tls_client_of_a_plaintext_server_is_told_about_tls(
    server_target: str, pki: Pki, tmp_path: Path
) -> None:
    creds = hd.tls_credentials(pki.ca.cert)
    with hd.Client(server_target, tls=creds, retry=TWO) as secure:
        with pytest.raises(hd.ServiceUnreachableError) as info:
            secure.get_study("anything")
    check_unreachable(info.value, server_target)
    assert "This client uses TLS: if the server is plaintext" in str(info.value)
    assert "tls=False" in str(info.value)

    async def main() -> hd.ServiceUnreachableError:
        async with AsyncClient(server_target, tls=creds, retry=TWO) as client:
            with pytest.raises(hd.ServiceUnreachableError) as info:
                await client.get_study("anything")
            return info.value

    assert "This client uses TLS" in str(asyncio.run(main()))
    # A channel of the caller's: the client cannot tell which side has TLS.
    with grpc.secure_channel(server_target, creds) as channel:
        with hd.Client(channel=channel, retry=TWO) as own:
            with pytest.raises(hd.ServiceUnreachableError) as info:
                own.get_study("anything")
    assert "Client and server must both use TLS, or neither" in str(info.value)
    # Nor which target the channel has: the message does not make one up.
    assert "through the channel given to the client" in str(info.value)
    assert info.value.metadata == {}


# -- a service reached once --------------------------------------------------------------------


def test_a_reached_client_gives_up_with_the_usual_error() -> None:
    three = hd.RetryPolicy(deadline=None, max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    server = InProcessServer().start()
    try:
        client = hd.Client(server.target, retry=three, connect_timeout=60)
        study = client.create_study(new_id(), SPACE, algorithm="random")
    finally:
        server.stop()
    with client:
        with pytest.raises(hd.UnavailableError) as info:
            client.get_study(study.study_id)
    # An outage of a service it talked to, not a wrong address: no first-contact advice.
    assert not isinstance(info.value, hd.ServiceUnreachableError)
    assert info.value.message.endswith("(gave up after 3 attempts)")


@pytest.fixture
def replica(redis_url: str) -> Iterator[list[ServerProcess]]:
    """Server processes on the session's Redis; the test appends the ones it starts."""
    servers: list[ServerProcess] = []
    yield servers
    for s in servers:
        s.close()


def retried_longer_than(retry_log: RetryLog, since: float, seconds: float) -> bool:
    """Whether a retry was logged more than ``seconds`` after ``since`` (wall clock)."""
    records = list(retry_log.records)
    return bool(records) and records[-1].created - since > seconds


def test_a_restart_longer_than_the_connect_timeout_is_ridden_out(
    redis_url: str, replica: list[ServerProcess], retry_log: RetryLog
) -> None:
    replica.append(ServerProcess(redis_url))
    port = int(replica[0].target.rsplit(":", 1)[1])
    with hd.Client(replica[0].target, retry=FAST, connect_timeout=1, renew_leases=False) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random")
        (trial,) = study.ask()
        replica[0].kill()
        killed = time.time()

        result: list[object] = []
        tell = threading.Thread(target=lambda: result.append(study.tell(trial, 0.5)), daemon=True)
        tell.start()
        # The tell goes on retrying past the connect timeout: the service was reached before.
        deadline = time.monotonic() + 60  # only guards a hang
        while not retried_longer_than(retry_log, killed, 2.0):
            assert tell.is_alive(), result
            assert time.monotonic() < deadline, retry_log.messages
            time.sleep(0.05)
        replica.append(server_on_port(redis_url, port))
        tell.join(120)
        assert not tell.is_alive()
    (done,) = result
    assert isinstance(done, hd.Trial) and done.state == "COMPLETED" and done.value == 0.5


def test_an_async_restart_longer_than_the_connect_timeout_is_ridden_out(
    redis_url: str, replica: list[ServerProcess], retry_log: RetryLog
) -> None:
    replica.append(ServerProcess(redis_url))
    port = int(replica[0].target.rsplit(":", 1)[1])

    async def main() -> hd.BaseTrial:
        async with AsyncClient(
            replica[0].target, retry=FAST, connect_timeout=1, renew_leases=False
        ) as client:
            study = await client.create_study(new_id(), SPACE, algorithm="random")
            (trial,) = await study.ask()
            replica[0].kill()
            killed = time.time()
            tell = asyncio.ensure_future(study.tell(trial, 0.5))
            deadline = time.monotonic() + 60  # only guards a hang
            while not retried_longer_than(retry_log, killed, 2.0):
                assert not tell.done(), tell
                assert time.monotonic() < deadline, retry_log.messages
                await asyncio.sleep(0.05)
            replica.append(await asyncio.to_thread(server_on_port, redis_url, port))
            return await tell

    done = asyncio.run(main())
    assert done.state == "COMPLETED" and done.value == 0.5


def test_a_slow_first_call_on_a_connected_channel_is_retried(
    redis_url: str, replica: list[ServerProcess], retry_log: RetryLog
) -> None:
    replica.append(ServerProcess(redis_url))
    server = replica[0]
    channel = grpc.insecure_channel(server.target, options=channel_options())
    with channel, hd.Client(channel=channel, timeout=1, retry=FAST, connect_timeout=1) as client:
        grpc.channel_ready_future(channel).result(timeout=60)
        # Connected, but no call answered yet: the first one gets no answer in time.
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            started = time.time()
            result: list[str] = []
            get = threading.Thread(target=lambda: result.append(_not_found(client)), daemon=True)
            get.start()
            deadline = time.monotonic() + 60  # only guards a hang
            # Retried past the connect timeout: the channel was connected, the call slow.
            while not retried_longer_than(retry_log, started, 2.0):
                assert get.is_alive(), result
                assert time.monotonic() < deadline, retry_log.messages
                time.sleep(0.05)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        get.join(120)
        assert not get.is_alive() and result == ["STUDY_NOT_FOUND"]
    assert "after DEADLINE_EXCEEDED" in retry_log.messages[0]


def _not_found(client: hd.Client) -> str:
    try:
        client.get_study(new_id())
    except hd.NotFoundError as e:
        return e.reason
    return "found"


def test_the_state_of_a_blocking_channel_is_read(server_target: str) -> None:
    # channel_ready() reads a private attribute of grpc's channels: fail here, loudly, if a
    # grpc release moves it (the client would then only count answers as contact).
    with grpc.insecure_channel(server_target) as channel:
        assert channel_ready(channel) is False  # idle: reading the state does not connect
        grpc.channel_ready_future(channel).result(timeout=60)
        assert channel_ready(channel) is True
        assert channel_ready(grpc.intercept_channel(channel)) is True
    assert channel_ready(channel) is False  # closed
    assert channel_ready(object()) is False


# -- the log -----------------------------------------------------------------------------------


def retry_levels(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "hyperdial" and r.getMessage().startswith("retrying ")
    ]


def check_levels(records: list[tuple[int, str]], target: str) -> None:
    """Four retries: the first ones at INFO, from WARN_FROM_RETRY on at WARNING, each saying
    the method, the target, the code, the attempt and the wait."""
    assert WARN_FROM_RETRY == 3
    assert [level for level, _ in records] == [
        logging.INFO,
        logging.INFO,
        logging.WARNING,
        logging.WARNING,
    ]
    for n, (_, message) in enumerate(records, start=2):
        assert message.startswith(f"retrying GetStudy on {target} in ")
        assert f" s after UNAVAILABLE (attempt {n}): " in message


FIVE = hd.RetryPolicy(deadline=None, max_attempts=5, initial_backoff=0.01, max_backoff=0.01)


def test_retries_are_logged_at_warning_after_the_first_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hyperdial")
    target = f"127.0.0.1:{free_port()}"
    with hd.Client(target, retry=FIVE, connect_timeout=60) as client:
        with pytest.raises(hd.ServiceUnreachableError):
            client.get_study("anything")
    check_levels(retry_levels(caplog), target)

    caplog.clear()

    async def main() -> None:
        async with AsyncClient(target, retry=FIVE, connect_timeout=60) as client:
            with pytest.raises(hd.ServiceUnreachableError):
                await client.get_study("anything")

    asyncio.run(main())
    check_levels(retry_levels(caplog), target)
