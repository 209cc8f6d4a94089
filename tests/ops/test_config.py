"""``hyperdial serve`` configuration: every flag has an environment variable and a default,
and ``--help`` shows them all."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from hyperdial_server.cli import build_parser

_ENV = re.compile(r"\(env (HYPERDIAL_[A-Z_]+)")


def _options() -> list[argparse.Action]:
    return [a for a in build_parser()._actions if a.option_strings and a.dest != "help"]


def _variable(action: argparse.Action) -> str:
    match = _ENV.search(action.help or "")
    assert match, f"{action.option_strings[0]} does not name its environment variable"
    return match.group(1)


def _sample(action: argparse.Action) -> tuple[str, object]:
    """A value for the flag's variable other than the default, and what it parses to."""
    if action.nargs == 0:  # a switch
        return "1", not action.default
    if action.choices:
        choice = next(c for c in action.choices if c != action.default)
        return str(choice), choice
    if action.type is int:
        return "4321", 4321
    if action.type is float:
        return "2.5", 2.5
    if action.type is None:
        return "from-the-environment", "from-the-environment"
    # A custom type (ports, bounded seconds): the first candidate it takes, other than the default.
    convert: Callable[[str], object] = action.type  # type: ignore[assignment]
    default = convert(action.default) if isinstance(action.default, str) else action.default
    for raw in ("9100", "2.5", "7", "0", "60", "0.5"):
        try:
            value = convert(raw)
        except (argparse.ArgumentTypeError, TypeError, ValueError):
            continue
        if value != default:
            return raw, value
    raise AssertionError(f"no sample value for {action.option_strings[0]}")


def test_every_flag_has_a_variable_and_a_help_text() -> None:
    options = _options()
    assert {o.dest for o in options} >= {
        "host", "port", "redis", "grace", "no_reflection", "metrics_port", "log_level",
        "log_format",
    }  # fmt: skip
    variables = [_variable(o) for o in options]
    assert len(set(variables)) == len(variables)
    assert isinstance(build_parser().formatter_class, type)
    assert issubclass(build_parser().formatter_class, argparse.ArgumentDefaultsHelpFormatter)


@pytest.mark.parametrize("action", _options(), ids=lambda a: a.option_strings[0])
def test_each_variable_sets_its_flag_and_the_flag_wins(
    action: argparse.Action, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, expected = _sample(action)
    default = getattr(build_parser().parse_args([]), action.dest)
    assert default != expected
    monkeypatch.setenv(_variable(action), raw)
    assert getattr(build_parser().parse_args([]), action.dest) == expected
    if action.nargs != 0:  # a value on the command line beats the variable
        given = build_parser().parse_args([action.option_strings[0], str(action.default)])
        assert getattr(given, action.dest) == default


def test_a_bad_variable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from hyperdial_server.cli import main

    for name, value in (
        ("HYPERDIAL_PORT", "http"),
        ("HYPERDIAL_GRACE", "soon"),
        ("HYPERDIAL_METRICS_PORT", "70000"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as e:
            main([])
        assert e.value.code == 2
        monkeypatch.delenv(name)


def test_serve_help_lists_every_flag_variable_and_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyperdial", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # undo the line wrapping
    assert text.startswith("usage: hyperdial serve")
    for action in _options():
        assert action.option_strings[0] in text
        assert _variable(action) in text
    # Every default is shown, but the Redis URL's: it may hold a password.
    assert text.count("(default: ") == len(_options()) - 1


def test_serve_help_never_shows_the_redis_url_from_the_environment() -> None:
    env = dict(os.environ, HYPERDIAL_REDIS_URL="redis://:hunter2-secret@redis.internal:6379/0")
    done = subprocess.run(
        [sys.executable, "-m", "hyperdial", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout and "redis.internal" not in done.stdout
