"""Twins over real gRPC: a lease-expired trial whose point was handed out again, and which
then takes its late result, and the trial of the re-issued point name each other."""

from __future__ import annotations

import time
import uuid
from typing import Any

from google.protobuf.duration_pb2 import Duration

from hyperdial.v1 import trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import ask, create, float_param, py_params, spec, tell


def test_a_late_result_after_a_reissue_marks_both_twins(stub: Any) -> None:
    sid = f"twin-{uuid.uuid4().hex[:12]}"
    create(stub, sid, spec(float_param("lr", 0.0, 1.0), lease_timeout=Duration(seconds=1)))
    (first,) = ask(stub, sid, client_id="slow")
    assert (first.original_trial, first.reissued_trial) == ("", "")
    time.sleep(1.3)  # the lease expires; the next ask hands the point out again
    (again,) = ask(stub, sid, client_id="fast")
    assert py_params(again) == py_params(first)
    assert (again.number, again.original_trial) == (2, first.name)
    late = tell(stub, first.name, loss=0.5)  # the slow worker's result, after expiry
    assert late.state == trial_pb2.TRIAL_STATE_COMPLETED
    assert (late.reissued_trial, late.original_trial) == (again.name, "")
    tell(stub, again.name, loss=0.25)
    listed = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}")).trials
    assert [(t.state, t.original_trial, t.reissued_trial) for t in listed] == [
        (trial_pb2.TRIAL_STATE_COMPLETED, "", again.name),
        (trial_pb2.TRIAL_STATE_COMPLETED, first.name, ""),
    ]
    got = stub.GetTrial(ts.GetTrialRequest(name=first.name)).trial
    assert got.reissued_trial == again.name
