"""Tenant isolation end to end, on the memory store and on a real Redis: a tenant cannot see,
ask, tell or delete another tenant's studies, nor learn that they exist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import redis

from hyperdial.v1 import study_pb2, trial_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.security import Role
from hyperdial_server.server import ServerConfig
from tests.e2e.protocol import float_param, measurement, pvalue, spec
from tests.security.calls import SPEC, call, error_info, implemented, new_id, snapshot, stub
from tests.security.tokens import Tokens, bearer
from tests.server_harness import InProcessServer

NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module", params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "memory" else str(request.getfixturevalue("redis_url"))


@pytest.fixture(scope="module")
def iso_server(store_url: str, tokens: Tokens) -> Iterator[InProcessServer]:
    config = ServerConfig(redis_url=store_url, tokens_file=str(tokens.path))
    with InProcessServer(config) as server:
        yield server


@pytest.fixture
def s(iso_server: InProcessServer) -> Iterator[Any]:
    with grpc.insecure_channel(iso_server.target) as channel:
        yield stub(channel)


def _probes(study_id: str) -> dict[str, Any]:
    """Every call that names a study or one of its trials."""
    study, trial = f"studies/{study_id}", f"studies/{study_id}/trials/"
    return {
        "GetStudy": ts.GetStudyRequest(name=study),
        "SuggestTrials": ts.SuggestTrialsRequest(parent=study, count=1),
        "CompleteTrial": ts.CompleteTrialRequest(
            name=trial + "2", final_measurement=measurement(loss=0.0)
        ),
        "CreateTrial": ts.CreateTrialRequest(parent=study, parameters={"x": pvalue(0.25)}),
        "GetTrial": ts.GetTrialRequest(name=trial + "1"),
        "HeartbeatTrial": ts.HeartbeatTrialRequest(name=trial + "2"),
        "ListTrials": ts.ListTrialsRequest(parent=study),
        "ListOptimalTrials": ts.ListOptimalTrialsRequest(parent=study),
        "AddTrialMeasurement": ts.AddTrialMeasurementRequest(
            name=trial + "2", measurement=trial_pb2.Measurement(step=1, values={"loss": 0.0})
        ),
        "CheckTrialEarlyStopping": ts.CheckTrialEarlyStoppingRequest(name=trial + "1"),
        "ComputeParameterImportance": ts.ComputeParameterImportanceRequest(parent=study),
        "DeleteStudy": ts.DeleteStudyRequest(name=study),
    }


def _outcome(s: Any, method: str, req: Any, md: Any, study_id: str) -> tuple[Any, ...]:
    code, answer = call(s, method, req, md)
    if code == grpc.StatusCode.OK:
        return (code,)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return (code, answer.details())
    c, reason, meta, message = error_info(answer)
    return (
        c,
        reason,
        message.replace(study_id, "<id>"),
        {k: v.replace(study_id, "<id>") for k, v in meta.items()},
    )


def _alpha_study(s: Any, md: Any) -> str:
    """A study of tenant alpha with trial 1 COMPLETED, trial 2 RUNNING and one enqueued."""
    study_id = new_id("iso")
    s.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=SPEC), metadata=md)
    parent = f"studies/{study_id}"
    trials = s.SuggestTrials(ts.SuggestTrialsRequest(parent=parent, count=2), metadata=md).trials
    done = ts.CompleteTrialRequest(name=trials[0].name, final_measurement=measurement(loss=1.0))
    s.CompleteTrial(done, metadata=md)
    queued = ts.CreateTrialRequest(parent=parent, parameters={"x": pvalue(0.75)})
    s.CreateTrial(queued, metadata=md)
    return study_id


def test_other_tenant_gets_not_found_exactly_as_if_absent(s: Any, tokens: Tokens) -> None:
    alpha = bearer(tokens["alpha", Role.ADMIN])
    beta = bearer(tokens["beta", Role.ADMIN])
    study_id = _alpha_study(s, alpha)
    before = snapshot(s, alpha, study_id)
    absent = new_id("iso")  # exists nowhere
    for method, req in _probes(study_id).items():
        seen = _outcome(s, method, req, beta, study_id)
        blind = _outcome(s, method, _probes(absent)[method], beta, absent)
        assert seen == blind, method
        expected = NOT_FOUND if implemented(method) else grpc.StatusCode.UNIMPLEMENTED
        assert seen[0] == expected, (method, seen)
    listed = s.ListStudies(ts.ListStudiesRequest(page_size=1000), metadata=beta).studies
    assert f"studies/{study_id}" not in {x.name for x in listed}
    # Nothing of alpha's changed, whatever beta tried.
    assert snapshot(s, alpha, study_id) == before


def test_same_study_id_in_two_tenants_is_two_studies(
    s: Any, tokens: Tokens, store_url: str
) -> None:
    alpha = bearer(tokens["alpha", Role.ADMIN])
    beta = bearer(tokens["beta", Role.READ_WRITE])
    study_id = _alpha_study(s, alpha)
    before = snapshot(s, alpha, study_id)
    other = spec(
        float_param("y", -1.0, 1.0),
        float_param("z", 0.0, 2.0),
        algorithm=study_pb2.ALGORITHM_GRID,
        grid_resolution=3,
    )
    made = s.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=other), metadata=beta).study
    assert made.name == f"studies/{study_id}" and made.trial_count == 0
    parent = f"studies/{study_id}"
    trials = s.SuggestTrials(ts.SuggestTrialsRequest(parent=parent, count=5), metadata=beta).trials
    assert [t.number for t in trials] == [1, 2, 3, 4, 5]
    assert set(trials[0].parameters) == {"y", "z"}
    for t in trials:
        req = ts.CompleteTrialRequest(name=t.name, final_measurement=measurement(loss=2.0))
        s.CompleteTrial(req, metadata=beta)
    assert snapshot(s, alpha, study_id) == before
    # Deleting beta's twin leaves alpha's study alone.
    admin_b = bearer(tokens["beta", Role.ADMIN])
    s.DeleteStudy(ts.DeleteStudyRequest(name=parent), metadata=admin_b)
    assert snapshot(s, alpha, study_id) == before
    if not store_url:
        return
    client = redis.Redis.from_url(store_url)
    try:
        alpha_keys = set(client.scan_iter(match=f"hd:{{alpha/{study_id}}}:*"))
        assert alpha_keys, "alpha's study has keys under its own tag"
        assert not set(client.scan_iter(match=f"hd:{{beta/{study_id}}}:*"))
        # Every key that names the id is under alpha's tag or in a tenant's study index.
        for key in client.scan_iter(match=f"*{study_id}*"):
            assert key in alpha_keys, key
        assert client.zscore("hd:{alpha}:studies", study_id) is not None
        assert client.zscore("hd:{beta}:studies", study_id) is None
    finally:
        client.close()


HOSTILE_IDS = [
    "../alpha",
    "alpha/x",
    "x}",
    "{alpha/x}",
    "x:study",
    "x*",
    "x y",
    "x\n",
    "ünï",
    "",
    ".hidden",
]


@pytest.mark.parametrize("study_id", HOSTILE_IDS)
def test_study_ids_cannot_escape_the_namespace(
    s: Any, tokens: Tokens, store_url: str, study_id: str
) -> None:
    beta = bearer(tokens["beta", Role.ADMIN])
    client = redis.Redis.from_url(store_url, decode_responses=True) if store_url else None
    before = set(client.scan_iter(match="*")) if client else set()
    code, answer = call(s, "CreateStudy", ts.CreateStudyRequest(study_id=study_id, spec=SPEC), beta)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(answer)[1] == "INVALID_STUDY_ID"
    for method, req in _probes(study_id).items():
        code, answer = call(s, method, req, beta)
        if not implemented(method):
            assert code == grpc.StatusCode.UNIMPLEMENTED
            continue
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, answer)
        assert error_info(answer)[1] in ("INVALID_NAME", "INVALID_STUDY_ID")
    if client is not None:
        try:
            # Refused before the store: not a single new key, in any namespace.
            assert set(client.scan_iter(match="*")) - before == set()
        finally:
            client.close()
