"""The docs cannot drift from the code: their links resolve, the RPCs and Python names they cite
exist, and the service config they print is what the Python client uses and what gRPC loads."""

from __future__ import annotations

import inspect
import json
import re
import uuid
from pathlib import Path

import grpc
import pytest

import hyperdial
from hyperdial._channel import service_config
from hyperdial.v1 import tuning_service_pb2, tuning_service_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
SERVICE = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"]
RPCS = {m.name for m in SERVICE.methods}

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(page: Path) -> str:
    """The page without its fenced code blocks (links there are not links)."""
    return _FENCE.sub("", page.read_text())


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings, and its explicit ``<a id>`` anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _prose(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    found.update(re.findall(r'<a id="([^"]+)"', page.read_text()))
    return found


def _links(page: Path) -> list[str]:
    return [
        target
        for target in _LINK.findall(_prose(page))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_link_check_sees_links() -> None:
    readme = _links(ROOT / "README.md")
    assert "docs/protocol.md" in readme and "docs/coming-from-optuna-vizier.md" in readme
    assert "resuming-a-worker-client_id" in _anchors(ROOT / "docs" / "protocol.md")


def test_the_new_pages_are_linked_from_the_readme() -> None:
    readme = set(_links(ROOT / "README.md"))
    for name in ("architecture.md", "concepts.md", "coming-from-optuna-vizier.md"):
        assert f"docs/{name}" in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_rpcs_exist(page: Path) -> None:
    cited = set(re.findall(r"`TuningService\.(\w+)", page.read_text()))
    assert not cited - RPCS, f"{page.name} cites unknown RPCs {sorted(cited - RPCS)}"


def test_the_rpc_table_lists_every_rpc() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text[text.index("## RPCs") : text.index("## Leases")]
    listed = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert sorted(listed) == sorted(RPCS)


def _mapping() -> str:
    return (ROOT / "docs" / "coming-from-optuna-vizier.md").read_text()


def test_the_mapping_names_every_rpc() -> None:
    cited = set(re.findall(r"`TuningService\.(\w+)", _mapping()))
    assert cited == RPCS, f"not mapped: {sorted(RPCS - cited)}"


def _python_column() -> str:
    """The "hyperdial (Python)" column of the Optuna table."""
    text = _mapping()
    table = text[text.index("| Optuna | hyperdial (Python) |") :].split("\n\n")[0]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert len(rows) > 15 and all(len(row) == 3 for row in rows)
    return "\n".join(row[1] for row in rows)


def test_the_mapping_cites_python_names_that_exist() -> None:
    column = _python_column()
    owners: dict[str, type] = {
        "client": hyperdial.Client,
        "study": hyperdial.Study,
        "trial": hyperdial.Trial,
        "decision": hyperdial.Decision,
        "TrialState": hyperdial.TrialState,
    }
    cited = re.findall(r"(?<![\w.])(client|study|trial|decision|TrialState)\.(\w+)", column)
    assert len(cited) > 15
    for owner, name in cited:
        cls = owners[owner]
        fields = getattr(cls, "__dataclass_fields__", {})
        assert hasattr(cls, name) or name in fields, f"{owner}.{name}"
    hd_names = re.findall(r"(?<![\w.])hd\.(\w+)", column)
    assert len(hd_names) >= 6
    for name in hd_names:
        assert hasattr(hyperdial, name), f"hd.{name}"
    known = {
        name
        for cls in (hyperdial.Client, hyperdial.Study)
        for attr in vars(cls).values()
        if inspect.isfunction(attr)
        for name in inspect.signature(attr).parameters
    }
    keywords = re.findall(r"\((?:\.\.\., )?(\w+)=", column)
    assert "load_if_exists" in keywords
    for keyword in keywords:
        assert keyword in known, keyword


def _printed_service_config() -> str:
    text = (ROOT / "docs" / "protocol.md").read_text()
    blocks: list[str] = re.findall(r"```json\n(.*?)```", text, re.S)
    blocks = [b for b in blocks if "retryPolicy" in b]
    assert len(blocks) == 1
    return blocks[0]


def test_the_printed_service_config_is_the_python_clients() -> None:
    printed = json.loads(_printed_service_config())
    assert printed == json.loads(service_config())
    configs = printed["methodConfig"]
    assert all(c["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"] for c in configs)
    named = {n["method"] for c in configs for n in c["name"] if "method" in n}
    assert named <= RPCS


def test_grpc_loads_the_printed_service_config(server_target: str) -> None:
    options = [
        ("grpc.service_config", _printed_service_config()),
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.enable_retries", 1),
    ]
    with grpc.insecure_channel(server_target, options=options) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            stub.GetStudy(tuning_service_pb2.GetStudyRequest(name=f"studies/{uuid.uuid4().hex}"))
        assert e.value.code() is grpc.StatusCode.NOT_FOUND  # the call reached the server
    # A config gRPC cannot parse fails every call of the channel: the check above can fail.
    bad = [("grpc.service_config", '{"methodConfig": [{"timeout": 5}]}')]
    with grpc.insecure_channel(server_target, options=bad) as channel:
        stub = tuning_service_pb2_grpc.TuningServiceStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            stub.GetStudy(tuning_service_pb2.GetStudyRequest(name="studies/x"), timeout=10)
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "service config" in (e.value.details() or "")
