"""The README's Python example runs as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs(server_target: str, capsys: object) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no Python example"
    code = blocks[0].replace("localhost:50051", server_target)
    # Twice, as a user reruns a script: the second run gets the study the first one created.
    for _ in range(2):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "python3 -m hyperdial serve" in text
    test_command = (
        'scripts/install_test_tools.sh && python3 -m pip install -e ".[test]" && python3 -m pytest'
    )
    assert test_command in text
    # CI installs the system packages with the same script the README shows.
    assert "\nscripts/install_test_tools.sh\n" in (README.parent / ".ci" / "run").read_text()
