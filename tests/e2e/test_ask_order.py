"""The order of an ask, as docs/protocol.md and the `SuggestTrials` comment state it, over real
gRPC against both stores: the asking client's RUNNING trials, then points of expired leases,
then enqueued trials, then new points; the response lists the trials that existed before the
ask before those it created."""

from __future__ import annotations

import time
import uuid
from typing import Any

from google.protobuf.duration_pb2 import Duration

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import ask, create, float_param, pvalue, spec


def _scenario(stub: Any) -> tuple[str, trial_pb2.Trial, trial_pb2.Trial, trial_pb2.Trial]:
    """A study where client "a" holds trial 1, trial 2's lease expired (its point waits to be
    handed out again) and trial 3 is enqueued."""
    sid = f"order-{uuid.uuid4().hex[:12]}"
    s = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM)
    s.lease_timeout.CopyFrom(Duration(seconds=1))
    create(stub, sid, s)
    held = ask(stub, sid, client_id="a")[0]  # trial 1, kept alive below
    lost = ask(stub, sid, client_id="b")[0]  # trial 2, left to expire
    enqueued = stub.CreateTrial(
        ts.CreateTrialRequest(parent=f"studies/{sid}", parameters={"x": pvalue(0.25)})
    ).trial  # trial 3, WAITING
    assert [held.number, lost.number, enqueued.number] == [1, 2, 3]
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        stub.HeartbeatTrial(ts.HeartbeatTrialRequest(name=held.name))
        time.sleep(0.2)
    return sid, held, lost, enqueued


def test_one_ask_takes_every_kind_and_lists_existing_trials_first(stub: Any) -> None:
    sid, held, lost, enqueued = _scenario(stub)
    got = ask(stub, sid, count=5, client_id="a")
    # Fewer than 5 only if the study had fewer: random studies have no end, so 5.
    assert [t.number for t in got] == [1, 3, 4, 5, 6]
    assert all(t.state == trial_pb2.TRIAL_STATE_RUNNING and t.client_id == "a" for t in got)
    resumed, dequeued, reissued, sampled = got[0], got[1], got[2], got[3:]
    assert resumed.name == held.name
    assert dequeued.name == enqueued.name and dequeued.parameters["x"].double_value == 0.25
    assert reissued.original_trial == lost.name
    assert reissued.parameters == lost.parameters
    assert not any(t.original_trial for t in sampled)


def test_expired_points_go_before_enqueued_trials(stub: Any) -> None:
    sid, held, lost, enqueued = _scenario(stub)
    first = ask(stub, sid, count=2, client_id="a")
    assert [t.number for t in first] == [1, 4]  # resumed, then the re-issued point
    assert first[1].original_trial == lost.name
    second = ask(stub, sid, count=3, client_id="c")
    assert [t.number for t in second] == [3, 5, 6]  # the enqueued trial, then sampled ones
    assert second[0].name == enqueued.name
