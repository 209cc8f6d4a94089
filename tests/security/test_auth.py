"""Bearer tokens over real gRPC: every role against every RPC, refusals, open services."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.security import Role, TokenRegistry, hash_token, new_token
from hyperdial_server.server import add_tuning_service
from hyperdial_server.service._auth import METHOD_ROLES, AuthInterceptor, required_role
from hyperdial_server.store import MemoryStore
from tests.security.calls import (
    METHODS,
    SPEC,
    call,
    error_info,
    implemented,
    new_id,
    prepare,
    request,
    snapshot,
    stub,
)
from tests.security.tokens import Tokens, bearer
from tests.server_harness import InProcessServer

ROLES = list(Role)
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def channel(auth_server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(auth_server.target) as ch:
        yield ch


def test_every_rpc_has_a_role() -> None:
    assert sorted(METHOD_ROLES) == sorted(METHODS)
    assert {m for m, r in METHOD_ROLES.items() if r is Role.READ_ONLY} == {
        "GetStudy",
        "ListStudies",
        "GetTrial",
        "ListTrials",
        "ListOptimalTrials",
        "CheckTrialEarlyStopping",
        "ComputeParameterImportance",
    }
    assert {m for m, r in METHOD_ROLES.items() if r is Role.ADMIN} == {"DeleteStudy"}


def test_required_role_of_other_services() -> None:
    assert required_role("/grpc.health.v1.Health/Check") is None
    assert required_role("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is None
    assert required_role("/hyperdial.v1.TuningService/GetStudy") is Role.READ_ONLY
    # Anything not listed needs admin: a new RPC is never open by mistake.
    assert required_role("/hyperdial.v1.TuningService/Unlisted") is Role.ADMIN
    assert required_role("/other.Service/Method") is Role.ADMIN


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_role_matrix(channel: grpc.Channel, tokens: Tokens, role: Role, method: str) -> None:
    """Every role against every RPC: allowed calls succeed, others are refused and change
    nothing."""
    s = stub(channel)
    admin = bearer(tokens["alpha", Role.ADMIN])
    study_id = prepare(s, admin)
    before = snapshot(s, admin, study_id)
    code, answer = call(s, method, request(method, study_id), bearer(tokens["alpha", role]))
    if role.allows(METHOD_ROLES[method]):
        expected = grpc.StatusCode.OK if implemented(method) else grpc.StatusCode.UNIMPLEMENTED
        assert code == expected, answer
        return
    assert code == DENIED, answer
    _, reason, meta, message = error_info(answer)
    assert reason == "ROLE_INSUFFICIENT"
    assert meta == {
        "method": method,
        "role": role.value,
        "required_role": METHOD_ROLES[method].value,
    }
    assert method in message and role.value in message
    assert snapshot(s, admin, study_id) == before


BAD_CREDENTIALS: dict[str, Any] = {
    "missing": ((), "TOKEN_MISSING"),
    "unknown-token": (bearer(new_token()), "TOKEN_INVALID"),
    "not-bearer": ((("authorization", "Basic dXNlcjpwYXNz"),), "TOKEN_INVALID"),
    "empty-bearer": ((("authorization", "Bearer "),), "TOKEN_INVALID"),
    # Exactly one space between scheme and token, and nothing around them.
    "two-spaces": (None, "TOKEN_INVALID"),
    "trailing-space": (None, "TOKEN_INVALID"),
    "leading-space": (None, "TOKEN_INVALID"),
    # The hash of a valid token is not a token.
    "hash-as-token": (None, "TOKEN_INVALID"),
    "twice": (None, "TOKEN_INVALID"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
def test_bad_credentials(channel: grpc.Channel, tokens: Tokens, case: str, method: str) -> None:
    s = stub(channel)
    admin = bearer(tokens["alpha", Role.ADMIN])
    metadata, expected = BAD_CREDENTIALS[case]
    if case == "hash-as-token":
        metadata = bearer(hash_token(tokens["alpha", Role.ADMIN]))
    elif case == "twice":
        metadata = bearer(tokens["alpha", Role.ADMIN]) + bearer(tokens["alpha", Role.ADMIN])
    elif case == "two-spaces":
        metadata = (("authorization", f"Bearer  {tokens['alpha', Role.ADMIN]}"),)
    elif case == "trailing-space":
        metadata = (("authorization", f"Bearer {tokens['alpha', Role.ADMIN]} "),)
    elif case == "leading-space":
        metadata = (("authorization", f" Bearer {tokens['alpha', Role.ADMIN]}"),)
    study_id = prepare(s, admin)
    before = snapshot(s, admin, study_id)
    code, answer = call(s, method, request(method, study_id), metadata)
    assert code == UNAUTHENTICATED, answer
    _, reason, _, message = error_info(answer)
    assert reason == expected
    assert "authorization: Bearer <token>" in message or "not valid" in message
    for _, value in metadata:
        token = value.partition(" ")[2].strip()
        if token:
            assert token not in message
    assert snapshot(s, admin, study_id) == before


def test_scheme_is_case_insensitive(channel: grpc.Channel, tokens: Tokens) -> None:
    token = tokens["alpha", Role.READ_ONLY]
    md = (("authorization", f"bearer {token}"),)
    stub(channel).ListStudies(ts.ListStudiesRequest(), metadata=md)


def test_health_and_reflection_need_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service="hyperdial.v1.TuningService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(
        refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert "hyperdial.v1.TuningService" in names


def test_unknown_method_needs_admin(channel: grpc.Channel, tokens: Tokens) -> None:
    method = channel.unary_unary("/hyperdial.v1.TuningService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as missing:
        method(b"", timeout=30)
    assert missing.value.code() == UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as denied:
        method(b"", metadata=bearer(tokens["alpha", Role.READ_WRITE]), timeout=30)
    assert denied.value.code() == DENIED
    with pytest.raises(grpc.RpcError) as unknown:
        method(b"", metadata=bearer(tokens["alpha", Role.ADMIN]), timeout=30)
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_concurrent_tenants_never_mix(channel: grpc.Channel, tokens: Tokens) -> None:
    """Calls of two tenants interleaved on one server: each sees only its own studies (the
    namespace is per call, never left over from another call)."""
    s = stub(channel)
    created: dict[str, list[str]] = {"alpha": [], "beta": []}
    lock = threading.Lock()

    def work(i: int) -> list[str]:
        tenant = "alpha" if i % 2 else "beta"
        md = bearer(tokens[tenant, Role.READ_WRITE])
        study_id = new_id(f"mix-{tenant}")
        s.CreateStudy(ts.CreateStudyRequest(study_id=study_id, spec=SPEC), metadata=md)
        with lock:
            created[tenant].append(study_id)
        seen = s.ListStudies(ts.ListStudiesRequest(page_size=1000), metadata=md).studies
        return [f"{tenant}:{st.name}" for st in seen]

    with ThreadPoolExecutor(8) as pool:
        views = list(pool.map(work, range(64)))
    for view in views:
        tenant = view[0].split(":")[0]
        other = "beta" if tenant == "alpha" else "alpha"
        names = {v.split(":", 1)[1] for v in view}
        assert not names & {f"studies/{x}" for x in created[other]}
    for tenant in ("alpha", "beta"):
        md = bearer(tokens[tenant, Role.READ_ONLY])
        seen = {
            st.name
            for st in s.ListStudies(ts.ListStudiesRequest(page_size=1000), metadata=md).studies
        }
        assert {f"studies/{x}" for x in created[tenant]} <= seen


def test_tokens_file_changes_apply_without_restart(tmp_path: Path) -> None:
    """Adding, revoking and a broken edit of the tokens file, on a live server (checked on every
    call here; every second by default)."""
    path = tmp_path / "tokens"
    file = Tokens(path, [("gamma", Role.READ_ONLY)])
    old = file["gamma", Role.READ_ONLY]
    registry = TokenRegistry(str(path), reload_interval=0)

    async def scenario() -> None:
        server = grpc.aio.server(interceptors=[AuthInterceptor(registry)])
        add_tuning_service(server, MemoryStore())
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                s = stub(ch)

                async def code(token: str) -> grpc.StatusCode:
                    try:
                        await s.ListStudies(ts.ListStudiesRequest(), metadata=bearer(token))
                    except grpc.aio.AioRpcError as e:
                        return e.code()
                    return grpc.StatusCode.OK

                assert await code(old) == grpc.StatusCode.OK
                new = new_token()
                file.by_grant = {("gamma", Role.READ_WRITE): new}
                file.write()  # the old token is revoked, a new one added
                assert await code(new) == grpc.StatusCode.OK
                assert await code(old) == UNAUTHENTICATED
                path.write_text("this line is not a token line\n")
                # A broken file is refused; the last good table stays in force.
                assert await code(new) == grpc.StatusCode.OK
                assert await code(old) == UNAUTHENTICATED
        finally:
            await server.stop(None)

    asyncio.run(scenario())
