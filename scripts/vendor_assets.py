#!/usr/bin/env python3
"""Vendors the dashboard's JavaScript into the package: plotly.js from the npm registry.

The dashboard serves every asset itself (no CDN at run time: it must work offline, in a
container and on an air-gapped cluster), so the files are committed under
``client/hyperdial/dashboard/static/vendor/``:

* ``plotly.min.js``: the bundle of the npm package ``plotly.js-dist-min`` at :data:`VERSION`;
* ``LICENSE.plotly.txt``: its licence, from the same tarball;
* ``VENDOR.json``: name, version, the registry's ``integrity``, the sha256 of the written
  bundle, and the licence's SPDX id.

The tarball's sha512 must match :data:`INTEGRITY`, the ``integrity`` the registry published for
that version (``npm view plotly.js-dist-min@VERSION dist.integrity``), pinned here, so a
tampered or substituted tarball is refused. To move to a new version, change both pins and run::

    python scripts/vendor_assets.py

``tests/dashboard/test_vendor.py`` fails while the committed files do not match the pins.
Standard library only; needs the npm registry (https://registry.npmjs.org).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

NAME = "plotly.js-dist-min"
VERSION = "4.1.2"
#: ``dist.integrity`` of ``NAME@VERSION`` on the npm registry.
INTEGRITY = (
    "sha512-"
    "VSmS9KVNun16S8qFYYp9LlL/XBby4ueeGqB+K9AqRCVsup8dSpGULap4UyR1f2mz4pV3qjWp1sR5chwLgIKPoQ=="
)
LICENSE = "MIT"
REGISTRY = "https://registry.npmjs.org"

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "client" / "hyperdial" / "dashboard" / "static" / "vendor"
BUNDLE = "plotly.min.js"
LICENSE_FILE = "LICENSE.plotly.txt"
RECORD = "VENDOR.json"

#: Files taken from the tarball (its paths) and where they go.
_MEMBERS = {f"package/{BUNDLE}": BUNDLE, "package/LICENSE": LICENSE_FILE}


def tarball_url(name: str = NAME, version: str = VERSION) -> str:
    """Where the registry keeps the tarball of ``name@version`` (unscoped packages)."""
    return f"{REGISTRY}/{name}/-/{name}-{version}.tgz"


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    """Raises ``ValueError`` unless ``data`` hashes to the Subresource-Integrity string
    ``integrity`` (``sha512-<base64>``, what npm records)."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512" or not expected:
        raise ValueError(f"unsupported integrity {integrity!r}: expected sha512-<base64>")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    if actual != expected:
        raise ValueError(
            f"the tarball's sha512 is {actual}, not the pinned {expected}: refusing to vendor it"
        )


def extract(data: bytes) -> dict[str, bytes]:
    """The vendored files out of the tarball ``data``: output name -> content."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member, target in _MEMBERS.items():
            handle = tar.extractfile(member)
            if handle is None:
                raise ValueError(f"{member} is not a file in the tarball")
            out[target] = handle.read()
    return out


def record(bundle: bytes) -> dict[str, str]:
    """The content of ``VENDOR.json`` for the bundle ``bundle``."""
    return {
        "name": NAME,
        "version": VERSION,
        "integrity": INTEGRITY,
        "sha256": hashlib.sha256(bundle).hexdigest(),
        "file": BUNDLE,
        "license": LICENSE,
        "license_file": LICENSE_FILE,
        "source": tarball_url(),
    }


def download(url: str, timeout: float = 120.0) -> bytes:
    """The body at ``url``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tarball",
        type=Path,
        help="use this downloaded tarball instead of fetching it (still checked against the pin)",
    )
    args = parser.parse_args(argv)
    data = args.tarball.read_bytes() if args.tarball else download(tarball_url())
    check_integrity(data)
    files = extract(data)
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (VENDOR_DIR / name).write_bytes(content)
    text = json.dumps(record(files[BUNDLE]), indent=2) + "\n"
    (VENDOR_DIR / RECORD).write_text(text, encoding="utf-8")
    print(f"vendored {NAME}@{VERSION} into {VENDOR_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
