"""Bearer tokens for the security tests: a tokens file with fresh random tokens, and the call
metadata that carries one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hyperdial_server.security import Role, hash_token, new_token


class Tokens:
    """Fresh random tokens for (namespace, role) pairs, and the tokens file holding their
    hashes (a server's ``tokens_file``)."""

    def __init__(self, path: Path, grants: Sequence[tuple[str, Role]]) -> None:
        self.path = path
        self.by_grant: dict[tuple[str, Role], str] = {g: new_token() for g in grants}
        self.write()

    def __getitem__(self, grant: tuple[str, Role]) -> str:
        return self.by_grant[grant]

    def line(self, grant: tuple[str, Role]) -> str:
        namespace, role = grant
        label = f"{namespace}-{role.value}"
        return f"{hash_token(self.by_grant[grant])}  {namespace}  {role.value}  {label}"

    def write(self) -> None:
        lines = ["# test tokens: hash namespace role label"]
        lines += [self.line(g) for g in self.by_grant]
        self.path.write_text("\n".join(lines) + "\n")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries ``token``."""
    return (("authorization", f"Bearer {token}"),)
