"""The server's layers, checked on its source: which module may import which.

``service`` is the top (gRPC) layer over ``samplers`` and ``store``, which both stand on
``core``, the pure domain::

    server.py, cli.py -> service -> samplers, store -> core

The rules, each one a test below:

* ``core`` imports nothing of the server outside ``core``;
* ``samplers`` and ``store`` import neither ``service`` nor the entry points (``server``,
  ``cli``, ``__main__``);
* ``samplers`` do not import ``store`` (what both need, such as ``TrialPage``, is in ``core``);
* outside ``service``, nothing imports a private module of ``service`` (``service._x``): the
  rest of the server uses the names of ``service/__init__.py``.
* the orchestration under the servicer (``service._asker``, ``service._trials``,
  ``service._importance``, ``service._optimal``) imports neither protobuf nor gRPC, itself or
  through any module of the server it imports.

Every import statement counts, wherever it is (module level, inside a function, under
``TYPE_CHECKING``), and so does a string constant that names a module of the server exactly
(a dynamic import: ``importlib.import_module`` or a table of lazy names).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "hyperdial_server"
SOURCE = Path(__file__).resolve().parent.parent / "server" / PACKAGE
# A string constant that is exactly a dotted name of a module of the server.
_MODULE_NAME = re.compile(rf"{PACKAGE}(\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class Import:
    """One module (or, for ``from m import n``, possibly a name) a module imports.

    Attributes:
        importer: Dotted name of the importing module.
        target: Dotted name of what it imports; for ``from m import n``, ``m.n`` (``n`` may be
            a submodule or a name defined in ``m``: the rules treat it as under ``m`` either
            way).
        line: Line of the statement.
    """

    importer: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.target}"


def module_name(path: Path, root: Path = SOURCE) -> str:
    """The dotted name of the module in ``path``, a file under the package directory ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, importer: str, *, is_package: bool = False) -> list[Import]:
    """Every import of the server's modules in ``source``, the text of module ``importer``.

    Args:
        source: Python source.
        importer: Its dotted module name (to resolve relative imports).
        is_package: Whether it is a package's ``__init__`` (relative imports then start from
            the package itself, not its parent).
    """
    tree = ast.parse(source)
    package = importer if is_package else importer.rpartition(".")[0]
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: list[Import] = []
    # ast.walk visits every node, so imports inside functions, classes and `if` blocks count.
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
            targets = targets or [base]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and _MODULE_NAME.fullmatch(node.value)
        ):
            targets = [node.value]
        found += [
            Import(importer, t, getattr(node, "lineno", 0))
            for t in targets
            if t == PACKAGE or t.startswith(PACKAGE + ".")
        ]
    return found


def all_imports(root: Path = SOURCE) -> list[Import]:
    """The imports of every module of the package in ``root``."""
    return [
        imp
        for path in sorted(root.rglob("*.py"))
        for imp in imports_of(
            path.read_text(), module_name(path, root), is_package=path.name == "__init__.py"
        )
    ]


def _layer(name: str) -> str:
    """The top-level part of the server a dotted name belongs to ("" for the package root)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _under(name: str, *layers: str) -> bool:
    return _layer(name) in layers


def _private_service_module(target: str) -> bool:
    parts = target.split(".")
    return (
        len(parts) > 2
        and parts[1] == "service"
        and parts[2].startswith("_")
        and not parts[2].startswith("__")
    )


def core_violations(imports: list[Import]) -> Iterator[Import]:
    """``core`` importing anything of the server outside ``core`` (the root included)."""
    return (i for i in imports if _under(i.importer, "core") and not _under(i.target, "core"))


def upward_violations(imports: list[Import]) -> Iterator[Import]:
    """``samplers`` or ``store`` importing ``service`` or an entry point."""
    return (
        i
        for i in imports
        if _under(i.importer, "samplers", "store")
        and _under(i.target, "service", "server", "cli", "__main__")
    )


def sideways_violations(imports: list[Import]) -> Iterator[Import]:
    """``samplers`` importing ``store``."""
    return (i for i in imports if _under(i.importer, "samplers") and _under(i.target, "store"))


def private_service_violations(imports: list[Import]) -> Iterator[Import]:
    """A module outside ``service`` importing one of its private modules."""
    return (
        i
        for i in imports
        if not _under(i.importer, "service") and _private_service_module(i.target)
    )


def contract_suite_violations(imports: list[Import]) -> Iterator[Import]:
    """A module of the server importing the shipped contract suite (``testing``, which needs
    pytest): only the suite imports itself."""
    return (i for i in imports if not _under(i.importer, "testing") and _under(i.target, "testing"))


RULES = {
    "core imports only core": core_violations,
    "samplers and store import no service, server or cli": upward_violations,
    "samplers import no store": sideways_violations,
    "only service imports service's private modules": private_service_violations,
    "nothing of the server imports the testing package": contract_suite_violations,
}


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    found = all_imports()
    # Guard against a scan that finds nothing (a moved directory) and so passes vacuously.
    importers = {i.importer for i in found}
    assert {
        f"{PACKAGE}.server",
        f"{PACKAGE}.service",
        f"{PACKAGE}.store._redis",
        f"{PACKAGE}.testing",
    } <= importers
    return found


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_server_keeps_its_layers(imports: list[Import], rule: str) -> None:
    broken = [str(i) for i in RULES[rule](imports)]
    assert broken == [], f"{rule}:\n" + "\n".join(broken)


# --- the scan itself: each rule catches what it should, wherever the import is --------------


def _scan(files: dict[str, str], tmp_path: Path) -> list[Import]:
    root = tmp_path / PACKAGE
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return all_imports(root)


def test_the_scan_finds_imports_in_functions_relative_imports_and_lazy_names(
    tmp_path: Path,
) -> None:
    found = _scan(
        {
            "__init__.py": '_LAZY = {"Metrics": "hyperdial_server.service._metrics"}\n',
            "core/__init__.py": '"""Mentions hyperdial_server.store in a docstring only."""\n',
            "core/a.py": "def f():\n    from hyperdial_server.store import Store\n",
            "samplers/__init__.py": "",
            "samplers/w.py": "if True:\n    from ..store._base import TrialPage\n",
            "store/__init__.py": "from . import _memory\n",
            "store/b.py": "import hyperdial_server.service\n",
            "cli.py": "from hyperdial_server.service import _admission, TuningServicer\n",
        },
        tmp_path,
    )
    assert {(i.importer, i.target) for i in found} == {
        ("hyperdial_server", "hyperdial_server.service._metrics"),
        ("hyperdial_server.core.a", "hyperdial_server.store.Store"),
        ("hyperdial_server.samplers.w", "hyperdial_server.store._base.TrialPage"),
        ("hyperdial_server.store", "hyperdial_server.store._memory"),
        ("hyperdial_server.store.b", "hyperdial_server.service"),
        ("hyperdial_server.cli", "hyperdial_server.service._admission"),
        ("hyperdial_server.cli", "hyperdial_server.service.TuningServicer"),
    }


def test_each_rule_catches_its_violation_and_allows_the_layers(tmp_path: Path) -> None:
    found = _scan(
        {
            "core/a.py": "from hyperdial_server.core.trial import Trial\n"
            "from hyperdial_server.samplers import get_sampler\n",
            "samplers/a.py": "from hyperdial_server.core.history import TrialPage\n"
            "from hyperdial_server.store import Store\n",
            "store/a.py": "from hyperdial_server.core import limits\n"
            "def f():\n    from hyperdial_server.server import serve\n",
            "service/_a.py": "from hyperdial_server.service._b import x\n"
            "from hyperdial_server.store import Store\n",
            "server.py": "from hyperdial_server.service import TuningServicer\n"
            "from hyperdial_server.service._servicer import SPEC_CACHE_BYTES\n"
            "from hyperdial_server.testing import StoreContract\n",
            "testing/a.py": "from hyperdial_server.testing._helpers import make_record\n"
            "from hyperdial_server.store import Store\n",
        },
        tmp_path,
    )
    caught = {rule: sorted(str(i) for i in check(found)) for rule, check in RULES.items()}
    assert caught == {
        "core imports only core": [
            "hyperdial_server.core.a (line 2) imports hyperdial_server.samplers.get_sampler"
        ],
        "samplers and store import no service, server or cli": [
            "hyperdial_server.store.a (line 3) imports hyperdial_server.server.serve"
        ],
        "samplers import no store": [
            "hyperdial_server.samplers.a (line 2) imports hyperdial_server.store.Store"
        ],
        "only service imports service's private modules": [
            "hyperdial_server.server (line 2) imports "
            "hyperdial_server.service._servicer.SPEC_CACHE_BYTES"
        ],
        "nothing of the server imports the testing package": [
            "hyperdial_server.server (line 3) imports hyperdial_server.testing.StoreContract"
        ],
    }


# --- the orchestration under the servicer: no protobuf, no gRPC -------------------------------

#: Modules of ``service`` that run below its gRPC surface (core types in and out), checked with
#: every module of the server they import, transitively.
PROTOBUF_FREE = (
    f"{PACKAGE}.service._asker",
    f"{PACKAGE}.service._trials",
    f"{PACKAGE}.service._spec_cache",
    f"{PACKAGE}.service._importance",
    f"{PACKAGE}.service._optimal",
)
# Top-level names of protobuf, gRPC and the generated protocol code (the ``hyperdial`` client).
_WIRE = re.compile(r"(grpc|grpc_\w+|google\.(protobuf|rpc)|hyperdial)(\..+)?")


def _module_file(name: str, root: Path = SOURCE) -> Path | None:
    """The file of the server's module ``name``, or of the module defining the name ``name``."""
    parts = name.split(".")[1:]
    while True:
        base = root.joinpath(*parts)
        if parts and base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if not parts:
            return None
        parts = parts[:-1]


def wire_imports(start: str, root: Path = SOURCE) -> list[str]:
    """Imports of protobuf or gRPC by ``start`` or by any module of the server it imports,
    transitively (a package's ``__init__`` counts when imported by name, not as a parent)."""
    seen: set[Path] = set()
    todo, broken = [start], []
    while todo:
        path = _module_file(todo.pop(), root)
        if path is None or path in seen:
            continue
        seen.add(path)
        text = path.read_text()
        name = module_name(path, root)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                targets = [node.module]
            else:
                continue
            broken += [
                f"{name} (line {node.lineno}) imports {t}" for t in targets if _WIRE.fullmatch(t)
            ]
        todo += [i.target for i in imports_of(text, name, is_package=path.name == "__init__.py")]
    return broken


@pytest.mark.parametrize("module", PROTOBUF_FREE)
def test_the_orchestration_imports_no_protobuf_or_grpc(module: str) -> None:
    assert _module_file(module) is not None, f"{module} moved: update PROTOBUF_FREE"
    assert wire_imports(module) == []
    # The scan sees the wire where it is: the servicer, through its own imports.
    assert any("imports grpc" in b for b in wire_imports(f"{PACKAGE}.service._servicer"))
