"""Checks of request fields that are not part of the domain model."""

from __future__ import annotations

from collections.abc import Mapping

from hyperdial_server.core import limits
from hyperdial_server.core.errors import InvalidArgument
from hyperdial_server.core.study import Objective, StudySpec

#: ``ErrorInfo.reason`` of a request that names an objective the study does not have.
UNKNOWN_OBJECTIVE = "UNKNOWN_OBJECTIVE"


def check_count(count: int) -> int:
    """``SuggestTrials.count``: 1 to ``MAX_SUGGEST_COUNT``."""
    if not 1 <= count <= limits.MAX_SUGGEST_COUNT:
        raise InvalidArgument(
            f"count must be between 1 and {limits.MAX_SUGGEST_COUNT}; got {count}",
            field="count",
        )
    return count


def check_client_id(client_id: str) -> str:
    """``client_id``: at most ``MAX_CLIENT_ID_LENGTH`` printable characters."""
    if len(client_id) > limits.MAX_CLIENT_ID_LENGTH:
        raise InvalidArgument(
            f"client_id is {len(client_id)} characters long; the limit is "
            f"{limits.MAX_CLIENT_ID_LENGTH}",
            field="client_id",
        )
    if not client_id.isprintable():
        raise InvalidArgument("client_id has non-printable characters", field="client_id")
    return client_id


def check_request_id(request_id: str) -> str:
    """``request_id``: empty (no deduplication) or 1 to ``MAX_REQUEST_ID_LENGTH`` printable
    characters."""
    if len(request_id) > limits.MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument(
            f"request_id is {len(request_id)} characters long; the limit is "
            f"{limits.MAX_REQUEST_ID_LENGTH} (a UUID4 is 36)",
            field="request_id",
        )
    if not request_id.isprintable():
        raise InvalidArgument(
            "request_id has non-printable characters; use a UUID4, for example",
            field="request_id",
        )
    return request_id


def check_failure_reason(reason: str, field: str = "failure.reason") -> str:
    """A failure reason, or an infeasibility's (``field`` ``infeasibility.reason``): at most
    ``MAX_FAILURE_REASON_LENGTH`` characters."""
    if len(reason) > limits.MAX_FAILURE_REASON_LENGTH:
        raise InvalidArgument(
            f"{field} is {len(reason)} characters long; the limit is "
            f"{limits.MAX_FAILURE_REASON_LENGTH}",
            field=field,
        )
    return reason


def check_metadata(metadata: Mapping[str, str], field: str = "metadata") -> dict[str, str]:
    """Trial metadata within the documented entry, key, value and total limits."""
    if len(metadata) > limits.MAX_METADATA_ENTRIES:
        raise InvalidArgument(
            f"{field} has {len(metadata)} entries; the limit is {limits.MAX_METADATA_ENTRIES}",
            field=field,
        )
    total = 0
    for key, value in metadata.items():
        if not key or len(key) > limits.MAX_METADATA_KEY_LENGTH:
            raise InvalidArgument(
                f"{field}: keys must be 1 to {limits.MAX_METADATA_KEY_LENGTH} characters; "
                f"got one of {len(key)}",
                field=field,
            )
        if len(value) > limits.MAX_METADATA_VALUE_LENGTH:
            raise InvalidArgument(
                f"{field}[{key}] is {len(value)} characters long; the limit is "
                f"{limits.MAX_METADATA_VALUE_LENGTH}",
                field=f"{field}[{key}]",
            )
        total += len(key.encode()) + len(value.encode())
    if total > limits.MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"{field} holds {total} bytes; the limit is {limits.MAX_METADATA_BYTES}",
            field=field,
        )
    return dict(metadata)


def known_metrics(spec: StudySpec) -> str:
    """The end of "'x' is ...", for a name a measurement may not carry: what it may name (the
    study's objectives, and its outcome constraints)."""
    objectives = ", ".join(repr(o.name) for o in spec.objectives)
    if not spec.constraints:
        return f"not an objective of the study (objectives: {objectives})"
    constraints = ", ".join(repr(c.name) for c in spec.constraints)
    return (
        f"not an objective of the study nor one of its constraints (objectives: {objectives}; "
        f"constraints: {constraints})"
    )


def check_objective(spec: StudySpec, name: str, field: str = "objective") -> Objective:
    """The objective of the study a request names; empty names the first.

    Raises:
        InvalidArgument: The study has no objective of that name (``UNKNOWN_OBJECTIVE``).
    """
    if not name:
        return spec.objectives[0]
    objective = spec.objective(name)
    if objective is None:
        known = ", ".join(repr(o.name) for o in spec.objectives)
        raise InvalidArgument(
            f"{field} {name!r} is not an objective of the study (objectives: {known}); leave "
            "it empty for the first",
            field=field,
            reason=UNKNOWN_OBJECTIVE,
        )
    return objective


def check_changed_after_revision(revision: int) -> int:
    """``ListTrialsRequest.changed_after_revision``: 0 (every trial) or more."""
    if revision < 0:
        raise InvalidArgument(
            f"changed_after_revision must be 0 (every trial) or a revision the study had "
            f"(0 or more, as a read answered it in ListTrialsResponse.revision); got {revision}",
            field="changed_after_revision",
        )
    return revision
