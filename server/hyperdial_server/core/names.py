"""Resource names and ids: ``studies/{study}`` and ``studies/{study}/trials/{trial}``."""

from __future__ import annotations

import re

from hyperdial_server.core.errors import InvalidArgument
from hyperdial_server.core.limits import MAX_NAME_LENGTH

# Braces and slashes are excluded on purpose: ids become part of Redis keys and hash tags.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TRIAL_NUMBER_RE = re.compile(r"[1-9][0-9]{0,17}")


def validate_study_id(study_id: str, field: str = "study_id") -> str:
    """Checks a user-chosen study id and returns it.

    Raises:
        InvalidArgument: The id is empty, too long or uses a character outside ``A-Za-z0-9._-``.
    """
    if not study_id:
        raise InvalidArgument(f"{field} is empty", field=field, reason="INVALID_STUDY_ID")
    if len(study_id) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"{field} is {len(study_id)} characters long; the limit is {MAX_NAME_LENGTH}",
            field=field,
            reason="INVALID_STUDY_ID",
        )
    if not _ID_RE.fullmatch(study_id):
        raise InvalidArgument(
            f"{field} {study_id!r} may only use letters, digits, '.', '_' and '-', "
            "and must start with a letter or digit",
            field=field,
            reason="INVALID_STUDY_ID",
        )
    return study_id


def study_name(study_id: str) -> str:
    """Formats ``studies/{study}``."""
    return f"studies/{study_id}"


def trial_name(study_id: str, number: int) -> str:
    """Formats ``studies/{study}/trials/{trial}``."""
    return f"studies/{study_id}/trials/{number}"


def parse_study_name(name: str, field: str = "name") -> str:
    """Returns the study id of ``studies/{study}``.

    Raises:
        InvalidArgument: ``name`` is not of that form.
    """
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "studies":
        raise InvalidArgument(
            f"{field} {_shorten(name)!r} is not a study name; expected 'studies/{{study}}'",
            field=field,
            reason="INVALID_NAME",
        )
    return validate_study_id(parts[1], field)


def parse_trial_name(name: str, field: str = "name") -> tuple[str, int]:
    """Returns ``(study id, trial number)`` of ``studies/{study}/trials/{trial}``.

    Raises:
        InvalidArgument: ``name`` is not of that form or the trial number is not a positive integer.
    """
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "studies" or parts[2] != "trials":
        raise InvalidArgument(
            f"{field} {_shorten(name)!r} is not a trial name; "
            "expected 'studies/{study}/trials/{trial}'",
            field=field,
            reason="INVALID_NAME",
        )
    study_id = validate_study_id(parts[1], field)
    if not _TRIAL_NUMBER_RE.fullmatch(parts[3]):
        raise InvalidArgument(
            f"{field}: trial {_shorten(parts[3])!r} is not a trial number (1, 2, 3, ...)",
            field=field,
            reason="INVALID_NAME",
        )
    return study_id, int(parts[3])


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
