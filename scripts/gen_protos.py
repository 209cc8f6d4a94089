"""Regenerates the committed protocol code from ``protos/``.

Usage: ``python scripts/gen_protos.py [OUT_DIR]``. Without ``OUT_DIR`` the files are written
into ``client/`` (so ``client/hyperdial/v1/``); tests pass a temporary directory to check that
the committed files are not stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc with the Python, gRPC and mypy-protobuf plugins into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(
        str(p.relative_to(PROTOS)) for p in (PROTOS / "hyperdial" / "v1").glob("*.proto")
    )
    bin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTOS}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_dir / "hyperdial" / "v1").glob("*.py*"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "client"
    for path in generate(target):
        print(path.relative_to(target))
