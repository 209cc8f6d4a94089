"""Unit tests of admission control (``service._admission``): slots, queue, wait, refusals."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from hyperdial_server.core.errors import ResourceExhausted
from hyperdial_server.service._admission import TOO_MANY_REQUESTS, Admission, AdmissionLimits
from hyperdial_server.service._status import to_status


async def _hold(admission: Admission, namespace: str, release: asyncio.Event) -> None:
    async with admission.heavy(namespace):
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        AdmissionLimits(replica=0)
    with pytest.raises(ValueError):
        AdmissionLimits(wait=-1)


def test_a_tenant_gets_its_slots_then_queues_then_is_refused() -> None:
    async def scenario() -> None:
        admission = Admission(AdmissionLimits(replica=10, tenant=2, queue=1, wait=30))
        release = asyncio.Event()
        holders = [asyncio.ensure_future(_hold(admission, "a", release)) for _ in range(2)]
        await _settle()
        assert admission.in_flight == 2
        queued = asyncio.ensure_future(_hold(admission, "a", release))
        await _settle()
        assert admission.waiting == 1
        # The queue of "a" is full: refused at once, not after the wait.
        with pytest.raises(ResourceExhausted) as refused:
            async with admission.heavy("a"):
                pass
        assert refused.value.reason == TOO_MANY_REQUESTS
        assert refused.value.retry_delay is not None and refused.value.retry_delay > 0
        assert refused.value.metadata["scope"] == "namespace"
        # Another tenant is not held up by "a".
        async with admission.heavy("b"):
            assert admission.in_flight == 3
        release.set()
        await asyncio.gather(*holders, queued)
        assert admission.in_flight == 0
        assert admission.waiting == 0
        assert not admission._tenants  # idle tenants leave nothing behind

    asyncio.run(scenario())


def test_the_replica_budget_bounds_every_tenant_together() -> None:
    async def scenario() -> None:
        admission = Admission(AdmissionLimits(replica=2, tenant=2, queue=0, wait=30))
        release = asyncio.Event()
        holders = [asyncio.ensure_future(_hold(admission, ns, release)) for ns in ("a", "b")]
        await _settle()
        with pytest.raises(ResourceExhausted) as refused:
            async with admission.heavy("c"):
                pass
        assert refused.value.metadata["scope"] == "replica"
        release.set()
        await asyncio.gather(*holders)
        async with admission.heavy("c"):
            assert admission.in_flight == 1

    asyncio.run(scenario())


def test_a_queued_call_gets_a_freed_slot() -> None:
    async def scenario() -> None:
        admission = Admission(AdmissionLimits(replica=1, tenant=1, queue=4, wait=30))
        release = asyncio.Event()
        holder = asyncio.ensure_future(_hold(admission, "a", release))
        await _settle()
        order: list[int] = []

        async def queued(i: int) -> None:
            async with admission.heavy("a"):
                order.append(i)

        waiters = [asyncio.ensure_future(queued(i)) for i in range(3)]
        await _settle()
        assert admission.waiting == 3
        release.set()
        await asyncio.gather(holder, *waiters)
        assert order == [0, 1, 2]  # first come, first served

    asyncio.run(scenario())


def test_waiting_is_bounded_in_time_and_gives_the_slot_back() -> None:
    async def scenario() -> None:
        admission = Admission(AdmissionLimits(replica=1, tenant=1, queue=4, wait=0.05))
        release = asyncio.Event()
        holder = asyncio.ensure_future(_hold(admission, "a", release))
        await _settle()
        with pytest.raises(ResourceExhausted) as refused:
            async with admission.heavy("a"):
                pass
        assert "wait bound" in refused.value.message
        assert admission.waiting == 0
        release.set()
        await holder
        # Nothing leaked: the single slot is free again.
        async with admission.heavy("a"):
            assert admission.in_flight == 1
        assert admission.in_flight == 0

    asyncio.run(scenario())


def test_a_failing_body_frees_its_slots() -> None:
    async def scenario() -> None:
        admission = Admission(AdmissionLimits(replica=1, tenant=1, queue=0, wait=0))
        for _ in range(3):
            with pytest.raises(KeyError):
                async with admission.heavy("a"):
                    raise KeyError("boom")
        assert admission.in_flight == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_frees_its_place() -> None:
    async def scenario() -> None:
        admission = Admission(AdmissionLimits(replica=1, tenant=1, queue=1, wait=30))
        release = asyncio.Event()
        holder = asyncio.ensure_future(_hold(admission, "a", release))
        await _settle()
        waiter = asyncio.ensure_future(_hold(admission, "a", release))
        await _settle()
        waiter.cancel()
        await _settle()
        assert admission.waiting == 0
        release.set()
        await holder
        async with admission.heavy("a"):
            assert admission.in_flight == 1

    asyncio.run(scenario())


def test_the_refusal_carries_a_retry_hint_on_the_wire() -> None:
    error = ResourceExhausted("slow down", reason=TOO_MANY_REQUESTS, retry_delay=1.25)
    status = to_status(error)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    (key, value), *_ = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    details = status_pb2.Status.FromString(value).details
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in details if d.Is(retry.DESCRIPTOR))
    assert retry.retry_delay.ToNanoseconds() == 1_250_000_000
    # A size limit says nothing of when to retry.
    plain = to_status(ResourceExhausted("too big"))
    (_, value), *_ = plain.trailing_metadata
    assert not any(
        d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)
        for d in status_pb2.Status.FromString(value).details
    )
