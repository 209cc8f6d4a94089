"""The examples of docs/client.md (early stopping, outcome constraints) run as written against
real servers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.client._support import new_id

CLIENT_MD = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def example(heading: str) -> str:
    """The first Python block of the section under ``heading``."""
    text = CLIENT_MD.read_text()
    section = text[text.index(f"\n{heading}\n") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, f"no Python example under {heading!r}"
    return block.group(1)


def test_the_early_stopping_example_runs(
    store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = example("## Early stopping")
    assert '"localhost:50051"' in code and '"early-stopping-demo"' in code
    code = code.replace("localhost:50051", store_target)
    code = code.replace('"early-stopping-demo"', repr(new_id("docs")))
    exec(compile(code, str(CLIENT_MD), "exec"), {"__name__": "docs"})
    out = capsys.readouterr().out.splitlines()
    stopped = re.match(r"(\d+) of 20 trials stopped early; best \{'lr': ", out[0])
    assert stopped is not None and 0 < int(stopped.group(1)) < 20, out
    # The curve of a stopped trial: steps 1, 2, ... up to where it stopped (at least the
    # warm-up's 3).
    steps = [int(line.split()[0]) for line in out[1:]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 3


def test_the_constraints_example_runs(
    store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = example("## Outcome constraints and infeasible trials")
    assert '"localhost:50051"' in code and '"constraints-demo"' in code
    code = code.replace("localhost:50051", store_target)
    code = code.replace('"constraints-demo"', repr(new_id("docs")))
    exec(compile(code, str(CLIENT_MD), "exec"), {"__name__": "docs"})
    out = capsys.readouterr().out.splitlines()
    best = re.fullmatch(
        r"best \{'layers': (\d+), 'width': (\d+)\}: loss [\d.]+, ([\d.]+) ms", out[0]
    )
    assert best is not None, out
    layers, width, latency = int(best.group(1)), int(best.group(2)), float(best.group(3))
    assert latency == 0.5 * layers + width / 64 <= 8 and layers * width <= 2048
    counts = re.fullmatch(r"(\d+) trials broke the constraint, (\d+) ran out of memory", out[-1])
    assert counts is not None, out
    broken, oom = int(counts.group(1)), int(counts.group(2))
    # The seed gives trials of each kind.
    assert broken > 0 and oom > 0 and broken + oom < 30
    assert re.fullmatch(
        r"trial \d+ broke the constraint: latency_ms = [\d.]+ > 8 \(upper bound\)", out[1]
    )
