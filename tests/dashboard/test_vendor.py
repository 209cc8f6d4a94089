"""The vendored plotly.js is what scripts/vendor_assets.py pins, and ships in the package.

A staleness test, as ``tests/test_generated_code.py`` is for the protocol code: change the pin
in the script and this fails until ``python scripts/vendor_assets.py`` ran and its files were
committed. Offline: it reads the committed files only.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest and mypy bring tomli on Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "client" / "hyperdial" / "dashboard"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vendor_assets", ROOT / "scripts" / "vendor_assets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_vendored_bundle_matches_its_record_and_the_pin() -> None:
    script = _script()
    vendor = PACKAGE / "static" / "vendor"
    record = json.loads((vendor / "VENDOR.json").read_text())
    bundle = (vendor / record["file"]).read_bytes()
    assert hashlib.sha256(bundle).hexdigest() == record["sha256"], (
        "plotly.min.js differs from VENDOR.json: run python scripts/vendor_assets.py"
    )
    assert record == script.record(bundle), (
        "VENDOR.json is not what scripts/vendor_assets.py pins (name, version, integrity): run "
        "python scripts/vendor_assets.py and commit client/hyperdial/dashboard/static/vendor/"
    )
    assert f"plotly.js v{script.VERSION}" in bundle[:200].decode("ascii", "replace")
    licence = (vendor / record["license_file"]).read_text()
    assert "MIT License" in licence and "Plotly" in licence


def test_the_integrity_check_refuses_another_tarball() -> None:
    script = _script()
    try:
        script.check_integrity(b"not the tarball")
    except ValueError as e:
        assert "refusing" in str(e)
    else:
        raise AssertionError("a tarball with another sha512 was accepted")


def test_the_package_ships_the_assets_and_pages() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["hyperdial"]
    # setuptools expands package-data patterns as recursive globs from the package directory.
    shipped = {
        Path(PACKAGE.parent, found)
        for pattern in patterns
        for found in glob.glob(pattern, root_dir=PACKAGE.parent, recursive=True)
    }
    files = [*(PACKAGE / "static").rglob("*"), *(PACKAGE / "pages").rglob("*")]
    missing = [str(f) for f in files if f.is_file() and f not in shipped]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
    assert PACKAGE / "static" / "vendor" / "plotly.min.js" in shipped


def test_the_pages_load_nothing_from_elsewhere() -> None:
    """No CDN: every script, stylesheet and icon comes from the dashboard itself."""
    for page in (PACKAGE / "pages").glob("*.html"):
        text = page.read_text()
        sources = re.findall(r'(?:src|href)="([^"]+)"', text)
        assert sources, page.name
        assert all(s.startswith("/") or s == "" for s in sources), (page.name, sources)
    for script in (PACKAGE / "static" / "js").glob("*.js"):
        assert not re.search(r"https?://", script.read_text()), script.name
