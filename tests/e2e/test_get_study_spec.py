"""``GetStudy`` answers the spec as the study uses it, over real gRPC against both stores:
``initial_trials`` as given, or for a Bayesian study that left it unset the default its
sampler uses; other algorithms keep what they were given."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hyperdial.v1 import study_pb2
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import cat_param, create, float_param, int_param, spec


def _get(stub: Any, study_id: str) -> study_pb2.StudySpec:
    got: study_pb2.StudySpec = stub.GetStudy(
        ts.GetStudyRequest(name=f"studies/{study_id}")
    ).study.spec
    return got


def _sid() -> str:
    return f"spec-{uuid.uuid4().hex[:12]}"


def test_initial_trials_given_is_returned(stub: Any) -> None:
    sid = _sid()
    created = create(stub, sid, spec(float_param("x", 0, 1), initial_trials=7))
    assert created.spec.initial_trials == 7
    got = _get(stub, sid)
    assert got.initial_trials == 7
    assert got.algorithm == study_pb2.ALGORITHM_BAYESIAN  # the default algorithm


@pytest.mark.parametrize(
    ("params", "default"),
    [
        (1, 5),  # 2 per parameter, at least 5
        (3, 6),
        (7, 10),  # at most 10
    ],
)
def test_unset_initial_trials_reads_as_the_default_the_sampler_uses(
    stub: Any, params: int, default: int
) -> None:
    sid = _sid()
    space = [float_param(f"x{i}", 0, 1) for i in range(params)]
    created = create(stub, sid, spec(*space, algorithm=study_pb2.ALGORITHM_BAYESIAN))
    assert created.spec.initial_trials == default
    got = _get(stub, sid)
    assert got.initial_trials == default
    # The spec read back creates the same study again.
    again = create(stub, _sid(), got)
    assert again.spec == got


@pytest.mark.parametrize(
    "algorithm", [study_pb2.ALGORITHM_RANDOM, study_pb2.ALGORITHM_QUASI_RANDOM]
)
def test_other_algorithms_keep_initial_trials_as_given(stub: Any, algorithm: int) -> None:
    plain, given = _sid(), _sid()
    space = (int_param("n", 1, 4), cat_param("c", ["a", "b"]))
    create(stub, plain, spec(*space, algorithm=algorithm))
    create(stub, given, spec(*space, algorithm=algorithm, initial_trials=3))
    assert _get(stub, plain).initial_trials == 0
    assert _get(stub, given).initial_trials == 3
