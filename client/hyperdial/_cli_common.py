"""What every module of the ``hyperdial`` command shares: exit statuses, JSON output, errors
of the user's making, and reading a file or standard input."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = [
    "EXIT_DENIED",
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandError",
    "load_document",
    "message_record",
    "print_json",
    "read_text",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4
EXIT_INVALID = 5
EXIT_DENIED = 6

#: What ``--spec FILE`` says when a YAML file comes without PyYAML (not a client dependency).
YAML_HINT = "reading YAML needs PyYAML (pip install pyyaml); or write the file as JSON"


class CommandError(Exception):
    """A command cannot go on for a reason of the user's making; one line, an exit status.

    Args:
        message: What is wrong and what to do about it.
        status: The exit status.
    """

    def __init__(self, message: str, status: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.status = status


def print_json(data: object, out: TextIO) -> None:
    """Writes ``data`` as indented JSON and a newline."""
    json.dump(data, out, indent=2, allow_nan=False)
    out.write("\n")


def message_record(message: Message) -> dict[str, Any]:
    """A protobuf message as its JSON mapping, with the field names of the ``.proto`` file.

    Driven by the message's descriptor: a field added to the protocol shows up here without a
    change of the command.
    """
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def read_text(path: str) -> str:
    """The content of ``path``; ``-`` reads standard input.

    Raises:
        CommandError: The file cannot be read.
    """
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CommandError(f"cannot read {path}: {e.strerror or e}") from None


def load_document(path: str, text: str) -> object:
    """A JSON or YAML document: YAML for a ``.yaml``/``.yml`` file, JSON for a ``.json``
    one, otherwise JSON when it parses as JSON, else YAML.

    YAML needs PyYAML, which the client does not depend on; it is used only when importable.

    Raises:
        CommandError: The text is neither, or it is YAML and PyYAML is not installed.
    """
    lower = path.lower()
    as_yaml = lower.endswith((".yaml", ".yml"))
    if not as_yaml:
        try:
            return json.loads(text)
        except ValueError as e:
            if lower.endswith(".json") or text.lstrip()[:1] in ("{", "["):
                raise CommandError(f"{path}: not valid JSON: {e}") from None
    try:
        # Imported by name: PyYAML is optional, and not a dependency of the client.
        yaml: Any = importlib.import_module("yaml")
    except ModuleNotFoundError:
        what = "is YAML" if as_yaml else "is not JSON"
        raise CommandError(f"{path} {what}: {YAML_HINT}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CommandError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
