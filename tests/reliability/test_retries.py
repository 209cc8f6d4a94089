"""Idempotent retries and resumes through the gRPC service, on both stores: a retry with the
same request_id gets the first answer and changes nothing; a client asking again gets its
RUNNING trials back. Also the answers to input that is not a message or too big for one."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from hyperdial.v1 import trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import create, error_reason, float_param, measurement, pvalue, spec

Stub = Any


def new_study(stub: Stub, **kw: Any) -> str:
    sid = f"retry-{uuid.uuid4().hex[:8]}"
    create(stub, sid, spec(float_param("x", 0, 1), **kw))
    return sid


def suggest(stub: Stub, sid: str, count: int = 1, **kw: str) -> list[trial_pb2.Trial]:
    req = ts.SuggestTrialsRequest(parent=f"studies/{sid}", count=count, **kw)  # type: ignore[arg-type]
    return list(stub.SuggestTrials(req).trials)


def trial_count(stub: Stub, sid: str) -> int:
    return int(stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study.trial_count)


def test_a_retried_create_or_delete_of_a_study_gets_the_first_answer(stub: Stub) -> None:
    sid = f"retry-{uuid.uuid4().hex[:8]}"
    req = ts.CreateStudyRequest(study_id=sid, spec=spec(float_param("x", 0, 1)), request_id="c")
    first = stub.CreateStudy(req).study
    assert stub.CreateStudy(req).study == first
    other = ts.CreateStudyRequest(study_id=sid, spec=req.spec, request_id="c2")
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateStudy(other)
    assert error_reason(e.value)[1] == "STUDY_ALREADY_EXISTS"
    delete = ts.DeleteStudyRequest(name=f"studies/{sid}", request_id="d")
    stub.DeleteStudy(delete)
    create(stub, sid, spec(float_param("y", 0, 1)))
    stub.DeleteStudy(delete)  # a retry: the new study stays
    assert trial_count(stub, sid) == 0


def test_a_retried_ask_gets_the_same_trials(stub: Stub) -> None:
    sid = new_study(stub)
    first = suggest(stub, sid, 3, request_id="ask-1")
    again = suggest(stub, sid, 3, request_id="ask-1")
    assert [t.name for t in again] == [t.name for t in first]
    assert trial_count(stub, sid) == 3
    assert [t.number for t in suggest(stub, sid, 1, request_id="ask-2")] == [4]


def test_a_retried_tell_never_fails_because_the_first_one_succeeded(stub: Stub) -> None:
    sid = new_study(stub)
    (t,) = suggest(stub, sid)
    tell = ts.CompleteTrialRequest(
        name=t.name, final_measurement=measurement(loss=0.5), request_id="tell-1"
    )
    first = stub.CompleteTrial(tell).trial
    again = stub.CompleteTrial(tell).trial
    assert again == first and again.state == trial_pb2.TRIAL_STATE_COMPLETED
    # Without the id, the same tell is refused: the trial is no longer RUNNING.
    with pytest.raises(grpc.RpcError) as e:
        stub.CompleteTrial(
            ts.CompleteTrialRequest(name=t.name, final_measurement=tell.final_measurement)
        )
    assert error_reason(e.value)[1] == "TRIAL_NOT_RUNNING"
    # The id of a tell cannot be reused for another trial.
    (u,) = suggest(stub, sid)
    reuse = ts.CompleteTrialRequest(
        name=u.name, final_measurement=tell.final_measurement, request_id="tell-1"
    )
    with pytest.raises(grpc.RpcError) as e:
        stub.CompleteTrial(reuse)
    assert error_reason(e.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")


def test_a_retried_create_trial_adds_one_trial(stub: Stub) -> None:
    sid = new_study(stub)
    req = ts.CreateTrialRequest(
        parent=f"studies/{sid}", parameters={"x": pvalue(0.5)}, request_id="enqueue-1"
    )
    first = stub.CreateTrial(req).trial
    assert stub.CreateTrial(req).trial == first
    assert trial_count(stub, sid) == 1


@pytest.mark.parametrize("bad", ["x" * 129, "tab\there", "\x00"])
def test_a_malformed_request_id_is_refused(stub: Stub, bad: str) -> None:
    sid = new_study(stub)
    with pytest.raises(grpc.RpcError) as e:
        suggest(stub, sid, request_id=bad)
    assert error_reason(e.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "request_id" in error_reason(e.value)[2]
    assert trial_count(stub, sid) == 0


def test_a_client_asking_again_resumes_its_running_trials(stub: Stub) -> None:
    sid = new_study(stub)
    mine = suggest(stub, sid, 2, client_id="host-1/gpu-0")
    theirs = suggest(stub, sid, 1, client_id="host-2")
    assert [t.number for t in theirs] == [3]
    # The worker restarted: it gets its two trials back, oldest first, then a new one.
    again = suggest(stub, sid, 3, client_id="host-1/gpu-0")
    assert [t.number for t in again] == [t.number for t in mine] + [4]
    assert [t.parameters for t in again[:2]] == [t.parameters for t in mine]
    stub.CompleteTrial(
        ts.CompleteTrialRequest(name=mine[0].name, final_measurement=measurement(loss=1))
    )
    assert [t.number for t in suggest(stub, sid, 1, client_id="host-1/gpu-0")] == [2]


def test_bytes_that_are_no_message_are_invalid_argument(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        for method in ("GetStudy", "SuggestTrials", "CompleteTrial", "HeartbeatTrial"):
            raw = channel.unary_unary(f"/hyperdial.v1.TuningService/{method}")
            for payload in (b"\xff\xff\xff", b"\x0a\x02\xff\xfe", b"\x0a\x05abc"):
                with pytest.raises(grpc.RpcError) as e:
                    raw(payload)
                code, reason, message = error_reason(e.value)
                assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
                assert "hyperdial.v1." in message


def test_errors_quoting_huge_input_stay_small_enough_to_arrive(stub: Stub) -> None:
    sid = new_study(stub)
    huge = "ü" * 60_000  # 120 kB of UTF-8 in the error's field and message, unclipped
    req = ts.CreateTrialRequest(parent=f"studies/{sid}", parameters={huge: pvalue(0.5)})
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateTrial(req)
    code, reason, message = error_reason(e.value)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PARAMETERS")
    assert len(message.encode()) <= 1024


def test_pages_and_asks_stop_short_of_the_message_limit(stub: Stub) -> None:
    sid = new_study(stub)
    metadata = {f"k{i}": "v" * 1000 for i in range(60)}  # 60 kB per trial
    for _ in range(80):
        req = ts.CreateTrialRequest(
            parent=f"studies/{sid}", parameters={"x": pvalue(0.5)}, metadata=metadata
        )
        stub.CreateTrial(req)
    page = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}", page_size=1000))
    assert 0 < len(page.trials) < 80 and page.next_page_token
    assert page.ByteSize() <= 4 * 2**20
    rest = stub.ListTrials(
        ts.ListTrialsRequest(
            parent=f"studies/{sid}", page_size=1000, page_token=page.next_page_token
        )
    )
    assert [t.number for t in page.trials] + [t.number for t in rest.trials] == list(range(1, 81))
    handed = suggest(stub, sid, 80, client_id="big")
    assert 0 < len(handed) < 80
    # The trials that did not fit are still the client's: once it has told the ones it got,
    # its next ask resumes them.
    for t in handed:
        fail = ts.CompleteTrialRequest(name=t.name, failure=ts.TrialFailure(reason="x"))
        stub.CompleteTrial(fail)
    more = suggest(stub, sid, 80 - len(handed), client_id="big")
    assert [t.number for t in handed + more] == list(range(1, 81))
