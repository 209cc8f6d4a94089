"""Bearer tokens: the tokens file, hashing, roles and the principal a token stands for.

The tokens file holds one token per line, as its SHA-256 hash, never the token itself::

    # hash (sha256 + 64 hex digits)        namespace  role        label
    sha256:0b5c1f0e6f5d3e0b0d5a...8e9f00  team-a     read-write  trainer
    sha256:5e884898da28047151d0...1542d8  team-a     read-only   dashboard

(hashes shortened here). Blank lines and lines starting with ``#`` are ignored. The label is
optional and names the token in logs (it defaults to ``line-<n>``). Tokens are random strings
of at least 128 bits (:func:`new_token`), so an unsalted SHA-256 is enough to make a leaked
file useless: nobody can invert it, and there is no low-entropy password to guess.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from hyperdial_server.core.limits import MAX_NAME_LENGTH

logger = logging.getLogger("hyperdial.security")

HASH_PREFIX = "sha256:"
#: Shortest token :func:`hash_token` accepts (``new_token`` makes 43-character ones).
MIN_TOKEN_LENGTH = 20
#: Seconds between two checks of the tokens file for changes.
RELOAD_INTERVAL = 1.0

_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")
# Namespaces become part of Redis keys and hash tags: no braces, no slashes, no colons.
_NAMESPACE_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# What may travel in an ``authorization`` header (RFC 6750 ``b64token``).
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class SecurityConfigError(ValueError):
    """A tokens file or a TLS file is missing, unreadable or malformed.

    The message names the file (and line) and what is expected, and never repeats what the file
    holds, which may be a secret.
    """


class Role(enum.Enum):
    """What a token may do, each role including the ones before it.

    * ``read-only``: read studies and trials (``Get*``, ``List*``).
    * ``read-write``: also create studies and trials, ask, tell and heartbeat.
    * ``admin``: also delete studies.
    """

    READ_ONLY = "read-only"
    READ_WRITE = "read-write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order read-only < read-write < admin."""
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        """Whether this role includes ``required``."""
        return self.rank >= required.rank


_RANKS = {Role.READ_ONLY: 0, Role.READ_WRITE: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """Who a valid token stands for.

    Attributes:
        namespace: The tenant: every study the token reaches lives in this namespace.
        role: What the token may do there.
        label: A name for the token in logs (never the token or its hash).
    """

    namespace: str
    role: Role
    label: str


def hash_token(token: str) -> str:
    """The form of ``token`` kept in the tokens file: ``sha256:`` and 64 hex digits."""
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token(token: str) -> str:
    """Checks that ``token`` can be sent as a bearer token and is long enough to be safe.

    Raises:
        ValueError: It is too short or holds characters an ``authorization`` header cannot
            carry. The message does not repeat the token.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the token is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} random "
            "characters (make one with 'python -m hyperdial_server.security new')"
        )
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError(
            "the token may only use letters, digits and '-._~+/' (with '=' at the end), as a "
            "bearer token in an authorization header"
        )
    return token


def new_token() -> str:
    """A fresh random token: 256 bits, URL-safe base64 (43 characters)."""
    # Never a leading "-": command lines (``--token -x…``) would read it as an option.
    while True:
        token = secrets.token_urlsafe(32)
        if token[0] != "-":
            return token


def check_namespace(namespace: str) -> str:
    """Checks a tenant namespace: 1 to 128 of ``A-Z a-z 0-9 . _ -``, starting with a letter or
    digit (namespaces become part of Redis keys).

    Raises:
        ValueError: It is not.
    """
    if not _NAMESPACE_RE.fullmatch(namespace):
        raise ValueError(
            f"a namespace is 1 to {MAX_NAME_LENGTH} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return namespace


def check_label(label: str) -> str:
    """Checks a token label: 1 to 64 of ``A-Z a-z 0-9 . _ @ -``, starting with a letter or digit.

    Raises:
        ValueError: It is not.
    """
    if not _LABEL_RE.fullmatch(label):
        raise ValueError("a label is 1 to 64 letters, digits, '.', '_', '@' or '-'")
    return label


def parse_role(text: str) -> Role:
    """The role named ``text`` (``read-only``, ``read-write`` or ``admin``).

    Raises:
        ValueError: No role has that name.
    """
    try:
        return Role(text)
    except ValueError:
        raise ValueError("a role is one of " + ", ".join(r.value for r in Role)) from None


def parse_tokens(text: str, source: str = "tokens file") -> dict[str, Principal]:
    """Parses the text of a tokens file (format in the module docstring).

    Args:
        text: The file's contents.
        source: How to name the file in error messages.

    Returns:
        Token hash (``sha256:...``) → principal.

    Raises:
        SecurityConfigError: A line is malformed, or two lines hold the same hash or label.
            The message gives the line number and never repeats the line.
    """
    table: dict[str, Principal] = {}
    labels: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{source}, line {number}"
        if len(fields) not in (3, 4):
            raise SecurityConfigError(
                f"{where}: expected 'sha256:<hex> <namespace> <role> [label]', "
                f"found {len(fields)} fields"
            )
        digest, namespace, role_name = fields[:3]
        if not _HASH_RE.fullmatch(digest):
            raise SecurityConfigError(
                f"{where}: the first field must be 'sha256:' and 64 lowercase hex digits, the "
                "hash of the token, never the token itself (make it with "
                "'python -m hyperdial_server.security hash')"
            )
        label = fields[3] if len(fields) == 4 else f"line-{number}"
        try:
            check_namespace(namespace)
            role = parse_role(role_name)
            check_label(label)
        except ValueError as e:
            raise SecurityConfigError(f"{where}: {e}") from None
        if digest in table:
            raise SecurityConfigError(
                f"{where}: the same token hash is on line {lines_of[digest]} already"
            )
        if label in labels:
            raise SecurityConfigError(
                f"{where}: the label {label!r} is on line {labels[label]} already"
            )
        table[digest] = Principal(namespace=namespace, role=role, label=label)
        labels[label] = number
        lines_of[digest] = number
    return table


def read_tokens_file(path: str) -> dict[str, Principal]:
    """Reads and parses a tokens file.

    Raises:
        SecurityConfigError: It cannot be read, is malformed, or holds no token.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SecurityConfigError(f"cannot read the tokens file {path!r}: {_why(e)}") from None
    table = parse_tokens(text, f"tokens file {path!r}")
    if not table:
        raise SecurityConfigError(
            f"the tokens file {path!r} holds no token: every call would be refused"
        )
    return table


def _why(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return "not UTF-8 text"


class TokenRegistry:
    """The tokens a server accepts, from a tokens file it re-reads when the file changes.

    A change (new contents, or a new file moved into place) is picked up at most
    ``reload_interval`` seconds later by every replica, so tokens are added and revoked without
    a restart. A new version that cannot be read or parsed is refused with an error in the log,
    and the last good table stays in force.

    Args:
        path: The tokens file; read once here, so a bad file stops the server from starting.
        reload_interval: Seconds between two checks of the file; 0 checks on every call.
        clock: Monotonic seconds (injectable for tests).

    Raises:
        SecurityConfigError: The file cannot be read, is malformed or holds no token.
    """

    def __init__(
        self,
        path: str,
        *,
        reload_interval: float = RELOAD_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._interval = reload_interval
        self._clock = clock
        self._signature = self._stat()
        self._table = read_tokens_file(path)
        self._checked = clock()

    def __len__(self) -> int:
        return len(self._table)

    def resolve(self, token: str) -> Principal | None:
        """The principal of ``token``, or ``None`` if no line of the file holds its hash."""
        self._maybe_reload()
        # The lookup is by hash: its timing tells a caller nothing about any valid token.
        return self._table.get(hash_token(token))

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _maybe_reload(self) -> None:
        if not self.path:
            return
        now = self._clock()
        if now - self._checked < self._interval:
            return
        self._checked = now
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            table = read_tokens_file(self.path)
        except SecurityConfigError as e:
            logger.error("%s; keeping the %d tokens loaded before", e, len(self._table))
            return
        self._table = table
        logger.info("reloaded the tokens file %r: %d tokens", self.path, len(table))
