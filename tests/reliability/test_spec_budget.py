"""Byte budgets of study specs: the replica's spec cache, and each namespace's stored specs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import redis

from hyperdial.v1 import study_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.core.study import StudyRecord
from hyperdial_server.service import _convert
from hyperdial_server.service._compute import SamplerWorkers
from hyperdial_server.service._servicer import TuningServicer
from hyperdial_server.service._spec_cache import spec_weight as _spec_weight
from hyperdial_server.store import MemoryStore
from hyperdial_server.store._keys import spec_bytes, study_index, study_keys
from tests.e2e.protocol import cat_param, error_reason, spec
from tests.redis_server import RedisServer
from tests.server_harness import ServerProcess

pytestmark = pytest.mark.timeout(300)


def big_spec(params: int = 100, values: int = 1000) -> study_pb2.StudySpec:
    """A spec near the 2 MiB limit by default (about 1.6 MB serialized)."""
    return spec(
        *[cat_param(f"p{i}", [f"v{i:03d}{j:010d}" for j in range(values)]) for i in range(params)]
    )


def test_the_spec_cache_is_bounded_in_bytes() -> None:
    bound = 8 * 1024 * 1024
    servicer = TuningServicer(MemoryStore(), samplers=SamplerWorkers(0), spec_cache_bytes=bound)
    specs = servicer._asker.specs  # the replica's spec cache, keyed (namespace, study id)
    try:
        one = _convert.spec_from_proto(big_spec())
        weight = _spec_weight(one)
        assert weight > 1_000_000  # the estimate sees a big spec as big
        for i in range(20):
            specs.put("default", StudyRecord(f"s{i}", one, create_time=0.0, uid=str(i)))
            assert servicer.spec_cache_bytes <= max(bound, weight)
        kept = len(specs)
        assert 0 < kept < 20
        assert kept == bound // weight
        assert ("default", "s19") in specs  # the newest stays
        assert ("default", "s0") not in specs  # the oldest went first
        # Forgetting and re-remembering keep the running total exact.
        specs.forget("default", "s19")
        specs.put("default", StudyRecord("s18", one, create_time=0.0, uid="again"))
        assert servicer.spec_cache_bytes == weight * len(specs)
        # One spec over the whole budget is still cached (alone): asks need it.
        tiny = TuningServicer(MemoryStore(), samplers=SamplerWorkers(0), spec_cache_bytes=1)
        tiny._asker.specs.put("default", StudyRecord("big", one, create_time=0.0, uid="u"))
        tiny._asker.specs.put("default", StudyRecord("big2", one, create_time=0.0, uid="v"))
        assert list(tiny._asker.specs) == [("default", "big2")]
        assert tiny.spec_cache_bytes == weight
        tiny.close()
    finally:
        servicer.close()


@pytest.fixture(params=["memory", "redis"])
def budget_replica(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(target, Redis URL or '') of a replica whose namespaces may hold 4 MiB of specs."""
    extra = ["--namespace-spec-mib", "4", "--lease-sweep-interval", "0", "--no-reflection"]
    if request.param == "memory":
        server = ServerProcess("", extra)
        try:
            yield server.target, ""
        finally:
            server.terminate()
        return
    with RedisServer() as redis_server:
        server = ServerProcess(redis_server.url, extra)
        try:
            yield server.target, redis_server.url
        finally:
            server.terminate()


def _check_accounting(url: str, present: list[str]) -> None:
    """The namespace's running total is the sum of its studies' stored records, no more."""
    r = redis.Redis.from_url(url, decode_responses=True)
    try:
        sizes_key, total_key = spec_bytes("default")
        sizes = {k: int(v) for k, v in r.hgetall(sizes_key).items()}
        assert sorted(sizes) == sorted(present)
        for study_id in present:
            assert sizes[study_id] == r.hstrlen(study_keys("default", study_id).study, "record")
        assert int(r.get(total_key) or 0) == sum(sizes.values())
        assert sorted(r.zrange(study_index("default"), 0, -1)) == sorted(present)
    finally:
        r.close()


def test_a_namespace_budget_refuses_a_study_and_leaves_nothing_behind(
    budget_replica: tuple[str, str],
) -> None:
    target, url = budget_replica
    big = big_spec()
    with grpc.insecure_channel(
        target, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]
    ) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        for study_id in ("a", "b"):
            stub.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=big))
        if url:
            _check_accounting(url, ["a", "b"])
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateStudy(ts.CreateStudyRequest(study_id="c", spec=big))
        code, reason, message = error_reason(refused.value)
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "NAMESPACE_SPEC_BUDGET")
        assert "budget" in message
        # Nothing half-created: not readable, not listed, no keys, not counted.
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetStudy(ts.GetStudyRequest(name="studies/c"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        listed = stub.ListStudies(ts.ListStudiesRequest(page_size=10)).studies
        assert [s.name for s in listed] == ["studies/a", "studies/b"]
        if url:
            _check_accounting(url, ["a", "b"])
            r = redis.Redis.from_url(url)
            assert not r.exists(*study_keys("default", "c").all)
            r.close()
        # A small study still fits; a creation refused as a duplicate changes no count.
        stub.CreateStudy(ts.CreateStudyRequest(study_id="small", spec=big_spec(2, 3)))
        with pytest.raises(grpc.RpcError) as duplicate:
            stub.CreateStudy(ts.CreateStudyRequest(study_id="a", spec=big_spec(2, 3)))
        assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS
        if url:
            _check_accounting(url, ["a", "b", "small"])
        # Deleting gives the bytes back.
        stub.DeleteStudy(ts.DeleteStudyRequest(name="studies/a"))
        stub.CreateStudy(ts.CreateStudyRequest(study_id="c", spec=big))
        if url:
            _check_accounting(url, ["b", "c", "small"])
        got = stub.GetStudy(ts.GetStudyRequest(name="studies/c")).study
        assert list(got.spec.parameters) == list(big.parameters)  # converted off the loop, intact


def test_big_studies_list_in_pages_that_fit() -> None:
    server = ServerProcess("", ["--lease-sweep-interval", "0", "--no-reflection"])
    try:
        options = [
            ("grpc.max_send_message_length", 8 * 1024 * 1024),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ]
        with grpc.insecure_channel(server.target, options=options) as channel:
            stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
            big = big_spec()
            ids = [f"s{i}" for i in range(5)] + ["t-small"]
            for study_id in ids:
                chosen = big if study_id.startswith("s") else big_spec(2, 3)
                stub.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=chosen))
            seen: list[str] = []
            token = ""
            for _ in range(10):
                page = stub.ListStudies(ts.ListStudiesRequest(page_size=100, page_token=token))
                assert page.ByteSize() <= 4 * 1024 * 1024
                assert page.studies  # every page makes progress
                seen += [s.name.removeprefix("studies/") for s in page.studies]
                token = page.next_page_token
                if not token:
                    break
            assert seen == ids  # each once, in order, across pages of two big studies
    finally:
        server.terminate()
