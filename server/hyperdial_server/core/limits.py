"""Size limits of the service, in one place, so the docs and the checks cannot drift apart.

Every request that goes past one of these is refused with INVALID_ARGUMENT and a message that
names the limit; nothing is stored.
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
