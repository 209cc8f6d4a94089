"""Reading what changed, over real gRPC against both stores: ``Study.revision``,
``update_time`` and ``state_counts``, ``Trial.revision``, and ``ListTrials`` with
``changed_after_revision``, whose ``ListTrialsResponse.revision`` a reader keeps to read again
only what changed since (``tuning_service.proto``)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import ask, create, error_field, error_reason, float_param, spec, tell

COMPLETED, RUNNING, WAITING = (
    trial_pb2.TRIAL_STATE_COMPLETED,
    trial_pb2.TRIAL_STATE_RUNNING,
    trial_pb2.TRIAL_STATE_WAITING,
)


def _study(stub: Any) -> str:
    sid = f"chg-{uuid.uuid4().hex[:12]}"
    create(stub, sid, spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM))
    return sid


def _get(stub: Any, sid: str) -> study_pb2.Study:
    study: study_pb2.Study = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{sid}")).study
    return study


def _read(
    stub: Any, sid: str, after: int = 0, page_size: int = 2, states: Any = ()
) -> tuple[list[trial_pb2.Trial], list[ts.ListTrialsResponse]]:
    """Every page of a read (of changes after ``after``, when above 0): the trials and the
    responses."""
    trials: list[trial_pb2.Trial] = []
    responses = []
    token = ""
    while True:
        response = stub.ListTrials(
            ts.ListTrialsRequest(
                parent=f"studies/{sid}",
                page_size=page_size,
                page_token=token,
                changed_after_revision=after,
                states=states,
            )
        )
        responses.append(response)
        trials += response.trials
        token = response.next_page_token
        if not token:
            return trials, responses


def _enqueue(stub: Any, sid: str) -> trial_pb2.Trial:
    request = ts.CreateTrialRequest(
        parent=f"studies/{sid}", parameters={"x": study_pb2.ParameterValue(double_value=0.5)}
    )
    trial: trial_pb2.Trial = stub.CreateTrial(request).trial
    return trial


def test_a_new_study_has_revision_0_its_creation_time_and_no_trials(stub: Any) -> None:
    sid = _study(stub)
    study = _get(stub, sid)
    assert study.revision == 0
    assert study.update_time == study.create_time
    assert study.HasField("state_counts")
    assert study.state_counts == study_pb2.TrialStateCounts()
    response = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}"))
    assert (list(response.trials), response.revision, response.next_page_token) == ([], 0, "")


def test_a_reader_reads_again_only_what_changed(stub: Any) -> None:
    sid = _study(stub)
    trials = ask(stub, sid, count=5)
    for t in trials[:2]:
        tell(stub, t.name, loss=0.5)
    copy, responses = _read(stub, sid)
    assert [t.number for t in copy] == [1, 2, 3, 4, 5]
    first = responses[0].revision
    # Nothing changed during the read: every page has the study's revision.
    study = _get(stub, sid)
    assert [r.revision for r in responses] == [study.revision] * 3 == [first] * 3
    assert first == max(t.revision for t in copy) == 7  # 5 trials created, 2 completed
    assert study.update_time.ToDatetime() >= study.create_time.ToDatetime()
    # Three changes: a result, a heartbeat, an enqueued trial.
    tell(stub, trials[2].name, loss=0.25)
    stub.HeartbeatTrial(ts.HeartbeatTrialRequest(name=trials[3].name))
    queued = _enqueue(stub, sid)
    changes, responses = _read(stub, sid, after=first)
    assert [(t.number, t.state, t.revision) for t in changes] == [
        (3, COMPLETED, first + 1),
        (4, RUNNING, first + 2),
        (6, WAITING, first + 3),
    ]
    assert queued.revision == first + 3
    assert [r.revision for r in responses] == [first + 3, first + 3]
    study = _get(stub, sid)
    assert (study.revision, study.trial_count) == (first + 3, 6)
    assert study.state_counts == study_pb2.TrialStateCounts(waiting=1, running=2, completed=3)
    # Up to date: an empty read that says so.
    again, responses = _read(stub, sid, after=study.revision)
    assert again == [] and [r.revision for r in responses] == [study.revision]
    # What a read returns is what GetTrial returns.
    for t in changes:
        assert stub.GetTrial(ts.GetTrialRequest(name=t.name)).trial.revision == t.revision


def test_nothing_changed_during_a_read_is_lost(stub: Any) -> None:
    sid = _study(stub)
    trials = ask(stub, sid, count=6)
    first_page = stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}", page_size=2))
    kept = first_page.revision
    # During the read: a trial already read and one not read yet change.
    tell(stub, trials[0].name, loss=0.5)
    stub.HeartbeatTrial(ts.HeartbeatTrialRequest(name=trials[4].name))
    rest = stub.ListTrials(
        ts.ListTrialsRequest(
            parent=f"studies/{sid}", page_size=10, page_token=first_page.next_page_token
        )
    )
    assert [t.number for t in rest.trials] == [3, 4, 5, 6]
    assert rest.revision == kept + 2
    # The next read, from the first page's revision, has both.
    changes, _ = _read(stub, sid, after=kept)
    assert [t.number for t in changes] == [1, 5]


def test_changes_filtered_by_state_page_by_what_the_server_looked_at(stub: Any) -> None:
    sid = _study(stub)
    trials = ask(stub, sid, count=5)  # revisions 1 to 5
    tell(stub, trials[4].name, loss=0.5)  # 6
    tell(stub, trials[3].name, loss=0.5)  # 7
    # By revision, pages of one change: trials 2 and 3 (RUNNING, revisions 2 and 3) are looked
    # at and left out, so the first pages are empty, yet have a next page.
    changes, responses = _read(stub, sid, after=1, page_size=1, states=[COMPLETED])
    assert [t.number for t in changes] == [5, 4]
    assert [len(r.trials) for r in responses] == [0, 0, 1, 1]
    assert all(r.revision == 7 for r in responses)
    everything, _ = _read(stub, sid, after=1, page_size=3)
    assert [t.number for t in everything] == [2, 3, 5, 4]


def test_a_page_token_is_refused_by_the_other_kind_of_read(stub: Any) -> None:
    sid = _study(stub)
    ask(stub, sid, count=3)
    parent = f"studies/{sid}"
    by_number = stub.ListTrials(ts.ListTrialsRequest(parent=parent, page_size=1))
    by_revision = stub.ListTrials(
        ts.ListTrialsRequest(parent=parent, page_size=1, changed_after_revision=1)
    )
    assert by_number.next_page_token and by_revision.next_page_token
    refused = [
        ts.ListTrialsRequest(
            parent=parent,
            page_size=1,
            page_token=by_number.next_page_token,
            changed_after_revision=1,
        ),
        ts.ListTrialsRequest(parent=parent, page_size=1, page_token=by_revision.next_page_token),
        ts.ListTrialsRequest(
            parent=parent,
            page_size=1,
            page_token=by_revision.next_page_token,
            changed_after_revision=2,
        ),
    ]
    for request in refused:
        with pytest.raises(grpc.RpcError) as e:
            stub.ListTrials(request)
        code, reason, _ = error_reason(e.value)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    # Each kind of token still works with the read it came from.
    following = stub.ListTrials(
        ts.ListTrialsRequest(
            parent=parent,
            page_size=1,
            page_token=by_revision.next_page_token,
            changed_after_revision=1,
        )
    )
    assert [t.number for t in following.trials] == [3]


def test_a_negative_changed_after_revision_is_invalid(stub: Any) -> None:
    sid = _study(stub)
    with pytest.raises(grpc.RpcError) as e:
        stub.ListTrials(ts.ListTrialsRequest(parent=f"studies/{sid}", changed_after_revision=-1))
    code, reason, message = error_reason(e.value)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert message.startswith("changed_after_revision must be 0") and message.endswith("got -1")
    status = rpc_status.from_call(e.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    (violation,) = bad.field_violations
    assert violation.field == error_field(e.value) == "changed_after_revision"
    assert violation.description.startswith("must be 0 (every trial)")


def test_list_studies_carries_revisions_and_counts(stub: Any) -> None:
    sid = _study(stub)
    (t,) = ask(stub, sid)
    tell(stub, t.name, loss=0.5)
    _enqueue(stub, sid)
    got = _get(stub, sid)
    token = ""
    listed = None
    while listed is None:
        page = stub.ListStudies(ts.ListStudiesRequest(page_size=1000, page_token=token))
        listed = next((s for s in page.studies if s.name == got.name), None)
        token = page.next_page_token
        assert listed is not None or token
    assert listed == got
    assert (got.revision, got.trial_count) == (3, 2)
    assert got.state_counts == study_pb2.TrialStateCounts(waiting=1, completed=1)
    assert got.update_time.ToNanoseconds() >= got.create_time.ToNanoseconds()
