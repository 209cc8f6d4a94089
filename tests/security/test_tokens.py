"""The tokens file, hashing, the registry's reloads, and ``python -m hyperdial_server.security``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from hyperdial_server.security import (
    Principal,
    Role,
    SecurityConfigError,
    TokenRegistry,
    check_namespace,
    hash_token,
    new_token,
    parse_tokens,
)
from hyperdial_server.security.__main__ import main as tokens_main

H1 = hash_token("a" * 32)
H2 = hash_token("b" * 32)


def test_hash_is_sha256_of_the_token() -> None:
    token = new_token()
    assert len(token) >= 43
    assert hash_token(token) == "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def test_parse_tokens() -> None:
    text = f"""
    # comment
    {H1}  team-a  read-write  trainer

    {H2}\tteam.b\tadmin
    """
    assert parse_tokens(text) == {
        H1: Principal("team-a", Role.READ_WRITE, "trainer"),
        H2: Principal("team.b", Role.ADMIN, "line-5"),
    }


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.READ_WRITE) and Role.READ_WRITE.allows(Role.READ_ONLY)
    assert not Role.READ_ONLY.allows(Role.READ_WRITE)
    assert not Role.READ_WRITE.allows(Role.ADMIN)


PLAIN = "my-plaintext-token-0123456789"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"{PLAIN} team-a read-only", "never the token itself"),
        (f"sha256:{'A' * 64} team-a read-only", "lowercase hex"),
        (f"{H1} team-a", "found 2 fields"),
        (f"{H1} team-a read-only label extra", "found 5 fields"),
        (f"{H1} team-a reader", "a role is one of read-only, read-write, admin"),
        (f"{H1} team/a read-only", "a namespace is"),
        (f"{H1} {{team}} read-only", "a namespace is"),
        (f"{H1} team:a read-only", "a namespace is"),
        (f"{H1} .. read-only", "a namespace is"),
        (f"{H1} {'n' * 129} read-only", "a namespace is"),
        (f"{H1} team-a read-only bad/label", "a label is"),
        (f"{H1} a read-only x\n{H1} b admin y", "line 1 already"),
        (f"{H1} a read-only x\n{H2} b admin x", "label 'x' is on line 1"),
    ],
)
def test_malformed_lines_are_refused_without_echo(line: str, expected: str) -> None:
    with pytest.raises(SecurityConfigError) as info:
        parse_tokens(line, "tokens file 't'")
    message = str(info.value)
    assert expected in message
    assert "tokens file 't', line" in message
    assert PLAIN not in message
    assert H1 not in message and H2 not in message


@pytest.mark.parametrize("namespace", ["", "a/b", "a}b", "{a", "a b", "é", "-a", "a:b", "x" * 129])
def test_namespaces_are_safe_for_redis_keys(namespace: str) -> None:
    with pytest.raises(ValueError):
        check_namespace(namespace)


def test_empty_or_missing_file_stops_the_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n")
    with pytest.raises(SecurityConfigError, match="holds no token"):
        TokenRegistry(str(empty))
    with pytest.raises(SecurityConfigError, match="cannot read the tokens file .*No such file"):
        TokenRegistry(str(tmp_path / "absent"))


def test_registry_reloads_at_its_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    t1, t2 = new_token(), new_token()
    path.write_text(f"{hash_token(t1)} ns read-only\n")
    now = [0.0]
    registry = TokenRegistry(str(path), reload_interval=10.0, clock=lambda: now[0])
    assert registry.resolve(t1) == Principal("ns", Role.READ_ONLY, "line-1")
    path.write_text(f"{hash_token(t2)} ns admin\n# a longer file, so its size changes too\n")
    now[0] = 9.0
    assert registry.resolve(t1) is not None and registry.resolve(t2) is None
    now[0] = 10.0
    assert registry.resolve(t1) is None
    assert registry.resolve(t2) == Principal("ns", Role.ADMIN, "line-1")
    # A missing file (or a broken one) keeps the last good table.
    path.unlink()
    now[0] = 20.0
    assert registry.resolve(t2) is not None


def test_cli_new_then_hash_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        tokens_main(["new", "--namespace", "team-a", "--role", "read-write", "--label", "ci"]) == 0
    )
    token, line = capsys.readouterr().out.splitlines()
    assert line == f"{hash_token(token)} team-a read-write ci"
    path = tmp_path / "tokens"
    path.write_text(line + "\n")
    assert tokens_main(["check", str(path)]) == 0
    assert capsys.readouterr().out == "team-a: 1 token\n"
    assert TokenRegistry(str(path)).resolve(token) == Principal("team-a", Role.READ_WRITE, "ci")


def test_cli_hash_reads_stdin() -> None:
    """Run as a process, as an operator would: the token never appears on the command line."""
    token = new_token()
    done = subprocess.run(
        [sys.executable, "-m", "hyperdial_server.security", "hash"],
        input=token + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == hash_token(token) + "\n"
    # The documented shell one-liner gives the same line.
    shell = subprocess.run(
        ["sh", "-c", "printf %s \"$T\" | sha256sum | sed 's/^/sha256:/; s/ .*//'"],
        env={"T": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert shell.stdout == hash_token(token) + "\n"


@pytest.mark.parametrize(
    "bad", ["short-token", "has space in it but is long", "ünïcode-token-long-enough"]
)
def test_cli_hash_refuses_weak_or_unsendable_tokens(
    bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(bad + "\n"))
    assert tokens_main(["hash"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the token")
    assert bad not in err


def test_cli_new_refuses_a_bad_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    assert tokens_main(["new", "--namespace", "a/b", "--role", "admin"]) == 2
    assert "a namespace is" in capsys.readouterr().err


def test_new_tokens_never_start_with_a_dash() -> None:
    # One token in 64 would otherwise: `--token -abc` is read as an option on command lines.
    tokens = [new_token() for _ in range(2000)]
    assert all(t[0] != "-" for t in tokens)
    assert len(set(tokens)) == len(tokens)
