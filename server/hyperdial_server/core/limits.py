"""Size limits of the service, in one place, so the docs and the checks cannot drift apart.

Every request that goes past one of these is refused with INVALID_ARGUMENT (RESOURCE_EXHAUSTED
for the message size and the number of studies) and a message that names the limit; nothing is
stored. ``docs/protocol.md`` lists them all.
"""

from __future__ import annotations

#: Longest study id, parameter name, objective name or categorical value, in characters.
MAX_NAME_LENGTH = 128
#: Most parameters in one study, conditional ones included.
MAX_PARAMETERS = 100
#: Most values of one categorical or discrete parameter.
MAX_DOMAIN_VALUES = 1000
#: Most objectives in one study.
MAX_OBJECTIVES = 16
#: Most outcome constraints in one study.
MAX_CONSTRAINTS = 8
#: Deepest chain of conditional parameters (a top-level parameter has depth 0).
MAX_CONDITION_DEPTH = 8
#: Most values one float parameter takes on a grid.
MAX_GRID_RESOLUTION = 10_000
#: Most trials one ``SuggestTrials`` call hands out.
MAX_SUGGEST_COUNT = 100
#: Default and largest page of ``ListStudies`` / ``ListTrials``.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Longest ``client_id``.
MAX_CLIENT_ID_LENGTH = 128
#: Longest failure reason.
MAX_FAILURE_REASON_LENGTH = 4096
#: Trial metadata: most entries, longest key, longest value, most bytes in all.
MAX_METADATA_ENTRIES = 64
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_VALUE_LENGTH = 4096
MAX_METADATA_BYTES = 65_536
#: Largest ``max_trials``.
MAX_MAX_TRIALS = 1_000_000_000
#: Largest request or response of the gRPC service, in bytes; a bigger request is refused with
#: RESOURCE_EXHAUSTED by the transport, and list pages stop short of it.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Largest ``StudySpec`` (serialized), so that every study fits in any response.
MAX_SPEC_BYTES = 2 * 1024 * 1024
#: Most studies one namespace holds; ``CreateStudy`` past it is RESOURCE_EXHAUSTED.
MAX_STUDIES_PER_NAMESPACE = 10_000
#: Longest ``request_id`` (idempotent retries), in characters.
MAX_REQUEST_ID_LENGTH = 128
#: Largest step of an intermediate measurement, and of every step count of an early-stopping
#: policy (warm-up, interval, resources, patience): 2^53, below which every store (Redis's
#: sorted-set scores and Lua numbers are doubles) compares and counts steps exactly.
MAX_STEP = 2**53
#: Lease of a RUNNING trial (seconds without a heartbeat or a result before it fails with
#: reason "lease expired"): the server default, and the bounds of ``StudySpec.lease_timeout``.
DEFAULT_LEASE_TIMEOUT = 600.0
MIN_LEASE_TIMEOUT = 1.0
MAX_LEASE_TIMEOUT = 7 * 24 * 3600.0
#: Seconds the answer of a call with a ``request_id`` is kept for its retries: the default and
#: the bounds of ``hyperdial serve --request-id-ttl``.
DEFAULT_REQUEST_ID_TTL = 24 * 3600.0
MIN_REQUEST_ID_TTL = 60.0
MAX_REQUEST_ID_TTL = 30 * 24 * 3600.0
#: Most bytes of stored study records (specs, as stored JSON) one namespace holds by default;
#: ``CreateStudy`` past it is RESOURCE_EXHAUSTED (``NAMESPACE_SPEC_BUDGET``); 0: no budget.
DEFAULT_NAMESPACE_SPEC_BYTES = 256 * 1024 * 1024
