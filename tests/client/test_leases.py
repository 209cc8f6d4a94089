"""Lease renewal: an open trial keeps its lease however long its objective runs; without the
renewal, the same trial expires.

The studies have a 1 s lease. Nothing here waits for a time to pass: each test waits for what
the service reports (the lease's end, the trial's state), polling ``ListTrials``, which is
also where the service expires leases lazily.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

import hyperdial as hd
from hyperdial.aio import AsyncClient, AsyncStudy
from tests.client._support import new_id

SPACE = [hd.Float("x", 0.0, 1.0)]
LEASE = 1.0


def listed(study: hd.Study, number: int) -> hd.Trial:
    """The trial as ``ListTrials`` shows it (which applies expired leases first)."""
    (trial,) = [t for t in study.trials() if t.number == number]
    return trial


def hold_past_the_lease(study: hd.Study, trial: hd.Trial) -> int:
    """Waits until the service has renewed the trial's lease so far that its first lease is
    over; checks it stays RUNNING all along. Returns how many polls it took."""
    assert trial.lease_expire_time is not None
    first_end = trial.lease_expire_time
    polls = 0
    while True:
        seen = listed(study, trial.number)
        polls += 1
        assert seen.state == "RUNNING", seen
        assert seen.lease_expire_time is not None
        # The service sets the end to its now + lease: past first_end + lease, its clock has
        # passed first_end, when the lease would have expired without renewal.
        if seen.lease_expire_time >= first_end + timedelta(seconds=2 * LEASE):
            return polls
        time.sleep(0.05)


def wait_until_expired(study: hd.Study, number: int) -> hd.Trial:
    deadline = time.monotonic() + 60  # only guards a hang: expiry takes about one lease
    while time.monotonic() < deadline:
        seen = listed(study, number)
        if seen.state != "RUNNING":
            return seen
        time.sleep(0.05)
    raise AssertionError("the lease never expired")


def test_a_slow_objective_keeps_its_trial(store_target: str) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random", lease_timeout=LEASE)
        assert study.lease_timeout == LEASE
        held: list[hd.Trial] = []

        def slow(trial: hd.Trial) -> float:
            hold_past_the_lease(study, trial)
            held.append(trial)
            return 0.5

        study.optimize(slow, n_trials=1)
        assert client._leases is not None
        assert client._leases.sent >= 2
        assert client._leases.open_trials() == []  # told: no longer renewed
        (done,) = study.trials()
    assert done.number == held[0].number
    assert done.state == "COMPLETED" and done.value == 0.5 and done.failure_reason == ""


def test_without_renewal_the_same_trial_expires(store_target: str) -> None:
    with hd.Client(store_target, renew_leases=False) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random", lease_timeout=LEASE)
        with study.trial() as trial:
            expired = wait_until_expired(study, trial.number)
            assert expired.state == "FAILED"
            assert expired.failure_reason == "lease expired"
            # A result that arrives late is still recorded.
            late = trial.report(0.25)
        assert late.state == "COMPLETED" and late.value == 0.25


def test_renewal_stops_when_the_trial_ends_elsewhere(store_target: str) -> None:
    with hd.Client(store_target) as client, hd.Client(store_target) as other:
        study = client.create_study(new_id(), SPACE, algorithm="random", lease_timeout=LEASE)
        a, b = study.ask(2)
        keeper = client._leases
        assert keeper is not None
        assert keeper.open_trials() == sorted([a.name, b.name])
        # Told by another process: the next heartbeat learns it and renewal stops.
        other.get_study(study.study_id).tell(a, 1.0)
        while a.name in keeper.open_trials():
            time.sleep(0.05)
        assert keeper.open_trials() == [b.name]
        study.fail(b, "gave up")
        assert keeper.open_trials() == []


def test_study_without_lease_timeout_has_the_service_default(store_target: str) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random")
        # The service resolves its default at creation, as it does the algorithm and seed.
        assert study.lease_timeout is not None and study.lease_timeout > 0
        (trial,) = study.ask()
        assert trial.lease_expire_time is not None  # the service's default lease
        assert study.tell(trial, 1.0).state == "COMPLETED"
        with pytest.raises(ValueError, match="lease_timeout"):
            client.create_study(new_id(), SPACE, lease_timeout=0)


def test_asyncio_client_renews_too(store_target: str) -> None:
    async def main() -> tuple[int, hd.BaseTrial]:
        async with AsyncClient(store_target) as client:
            study = await client.create_study(
                new_id(), SPACE, algorithm="random", lease_timeout=LEASE
            )
            async with study.trial() as trial:
                assert trial.lease_expire_time is not None
                first_end = trial.lease_expire_time
                while True:
                    (seen,) = await study.trials()
                    assert seen.state == "RUNNING"
                    assert seen.lease_expire_time is not None
                    if seen.lease_expire_time >= first_end + timedelta(seconds=2 * LEASE):
                        break
                    await asyncio.sleep(0.05)
                await trial.report(0.5)
            assert client._leases is not None
            assert client._leases.open_trials() == []
            sent = client._leases.sent
            (done,) = await study.trials()
            return sent, done

    sent, done = asyncio.run(main())
    assert sent >= 2
    assert done.state == "COMPLETED" and done.value == 0.5


def test_asyncio_client_without_renewal_lets_the_lease_expire(store_target: str) -> None:
    async def main() -> hd.BaseTrial:
        async with AsyncClient(store_target, renew_leases=False) as client:
            study: AsyncStudy = await client.create_study(
                new_id(), SPACE, algorithm="random", lease_timeout=LEASE
            )
            (trial,) = await study.ask()
            for _ in range(1200):  # about a lease; the bound only guards a hang
                (seen,) = await study.trials()
                if seen.state != "RUNNING":
                    return seen
                await asyncio.sleep(0.05)
            raise AssertionError(f"{trial.name} never expired")

    expired = asyncio.run(main())
    assert expired.state == "FAILED" and expired.failure_reason == "lease expired"


def test_twins_name_each_other_by_number(store_target: str) -> None:
    with hd.Client(store_target, renew_leases=False) as client:
        study = client.create_study(new_id(), SPACE, algorithm="random", lease_timeout=LEASE)
        (first,) = study.ask()
        assert (first.original_number, first.reissued_number) == (None, None)
        expired = wait_until_expired(study, first.number)
        assert expired.state == "FAILED" and expired.reissued_number is None

        (again,) = study.ask()  # the expired trial's point, handed out again
        assert again.params == first.params
        assert again.original_number == first.number and again.reissued_number is None

        late = study.tell(first, 0.5)  # its result arrives after the lease expired: twins
        assert late.state == "COMPLETED" and late.value == 0.5
        assert late.reissued_number == again.number and late.original_number is None
        study.tell(again, 0.25)
        by_number = {t.number: t for t in study.trials()}
        assert by_number[first.number].reissued_number == again.number
        assert by_number[again.number].original_number == first.number
        assert study.get_trial(again.number).original_number == first.number


def test_twin_numbers_of_odd_names() -> None:
    from hyperdial._base import _trial_number

    assert _trial_number("studies/s/trials/12") == 12
    for name in ("", "studies/s/trials/", "studies/s/trials/x", "/trials/3", "trials/3"):
        assert _trial_number(name) is None, name
