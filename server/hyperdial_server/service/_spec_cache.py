"""The bounded per-replica cache of immutable study records (specs) that asks and checked writes
read: the uid check of every store call catches a study re-created under a cached record."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from hyperdial_server.core.study import StudyRecord, StudySpec

#: Most study specs cached per replica (specs are immutable; the uid check catches re-creation).
SPEC_CACHE_SIZE = 10_000
#: Most bytes (estimated, see ``spec_weight``) of the specs cached per replica: near the
#: 2 MiB limit a spec takes about 3 MB of replica memory, so the count alone could reach 30 GB.
SPEC_CACHE_BYTES = 256 * 1024 * 1024

Key = tuple[str, str]  # namespace, study id


class SpecCache:
    """The immutable records of recently used studies, keyed ``(namespace, study_id)``, the
    least recently used dropped first past a count or estimated bytes (:func:`spec_weight`); the
    newest is kept whatever its size, since asks need it. Iterating yields keys, oldest first.

    Args:
        max_bytes: Most estimated bytes of the records kept (at least one is kept).
        max_specs: Most records kept.
    """

    def __init__(self, max_bytes: int = SPEC_CACHE_BYTES, max_specs: int = SPEC_CACHE_SIZE):
        self._specs: OrderedDict[Key, StudyRecord] = OrderedDict()
        # Estimated bytes of each cached spec, and their sum (bounded by max_bytes).
        self._weights: dict[Key, int] = {}
        self._max_bytes = max_bytes
        self._max_specs = max_specs
        self._bytes = 0

    def get(self, namespace: str, study_id: str) -> StudyRecord | None:
        """The cached record of the study (now the most recently used), or ``None``."""
        key = (namespace, study_id)
        cached = self._specs.get(key)
        if cached is not None:
            self._specs.move_to_end(key)
        return cached

    def put(self, namespace: str, record: StudyRecord) -> None:
        """Caches ``record``, evicting the least recently used past the bounds."""
        key = (namespace, record.study_id)
        self._drop(key)
        weight = spec_weight(record.spec)
        self._specs[key] = record
        self._weights[key] = weight
        self._bytes += weight
        while len(self._specs) > 1 and (
            len(self._specs) > self._max_specs or self._bytes > self._max_bytes
        ):
            self._drop(next(iter(self._specs)))

    def forget(self, namespace: str, study_id: str) -> None:
        """Drops the study's record, if cached."""
        self._drop((namespace, study_id))

    def _drop(self, key: Key) -> None:
        if self._specs.pop(key, None) is not None:
            self._bytes -= self._weights.pop(key)

    @property
    def cached_bytes(self) -> int:
        """Estimated bytes of the records cached now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def __iter__(self) -> Iterator[Key]:
        return iter(self._specs)


def spec_weight(spec: StudySpec) -> int:
    """Estimated bytes a spec takes in this process: a few hundred per parameter, and per
    domain value its text and the Python object around it. O(parameters + categorical values),
    never a serialization."""
    total = 512 + 64 * len(spec.objectives)
    for p in spec.space.parameters:
        total += 256 + len(p.name)
        values = getattr(p.domain, "values", ())
        total += 64 * len(values)
        if values and isinstance(values[0], str):
            total += sum(map(len, values))
        if p.condition is not None:
            total += 64 * len(p.condition.values)
    return total
