"""The committed protocol code must be exactly what the protos generate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "client" / "hyperdial" / "v1"


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)  # type: ignore[attr-defined]
    fresh = {p.name: p.read_bytes() for p in generated}
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*_pb2*.py*")}
    assert sorted(fresh) == sorted(committed), "run: python scripts/gen_protos.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files {stale}; run: python scripts/gen_protos.py"


def test_every_message_and_field_is_commented() -> None:
    from google.protobuf import descriptor_pb2

    from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2

    for module in (study_pb2, trial_pb2, tuning_service_pb2):
        text = (ROOT / "protos" / module.DESCRIPTOR.name).read_text()
        lines = text.splitlines()
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        declared = [m.name for m in proto.message_type] + [e.name for e in proto.enum_type]
        for name in declared:
            idx = next(
                i
                for i, line in enumerate(lines)
                if line.startswith((f"message {name} ", f"enum {name} "))
            )
            assert lines[idx - 1].lstrip().startswith("//"), f"{name} has no comment"
        # Every field, enum value and rpc line is preceded by a comment line.
        for i, line in enumerate(lines):
            stripped = line.strip()
            is_member = (
                stripped.endswith(";")
                and "=" in stripped
                and not stripped.startswith(("option", "//", "syntax", "package", "import"))
            ) or stripped.startswith("rpc ")
            if is_member:
                prev = lines[i - 1].strip()
                assert prev.startswith("//"), f"{module.DESCRIPTOR.name}:{i + 1} {stripped!r}"


def test_enums_have_unspecified_zero() -> None:
    from hyperdial.v1 import study_pb2, trial_pb2

    for module in (study_pb2, trial_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            zero = enum.values_by_number[0].name
            assert zero.endswith("_UNSPECIFIED"), zero
