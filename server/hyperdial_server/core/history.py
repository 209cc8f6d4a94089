"""A study's history as it travels from the store to a sampler: pages of trials.

It lives in the domain, not with the stores, because both sides use it: a store returns pages
and a sampler worker reads them, and samplers must not depend on stores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hyperdial_server.core.trial import Trial


class TrialPage:
    """A page of trials that may be decoded later, in another process (it pickles cheaply).

    A store that keeps trials encoded returns them as it keeps them, so that a caller who
    hands them to a worker process (the Bayesian sampler) spends no time decoding them on its
    event loop.

    Args:
        trials: Decoded trials.
        decode: Turns ``encoded`` into trials; a module-level function (it is pickled by
            reference).
        encoded: Whatever ``decode`` takes.
        last: Number of the page's last trial (0 when empty).
        size: Number of trials of an encoded page, if the store knows it without decoding
            (kept in :attr:`size`; a decoded page counts its trials).
    """

    def __init__(
        self,
        trials: Sequence[Trial] = (),
        *,
        decode: Callable[[Any], list[Trial]] | None = None,
        encoded: Any = None,
        last: int | None = None,
        size: int | None = None,
    ) -> None:
        self._trials = list(trials)
        self._decode = decode
        self._encoded = encoded
        #: Number of trials in the page; ``None``: an encoded page that was not told.
        self.size = size if decode is not None else len(self._trials)
        self.last = last if last is not None else (self._trials[-1].number if trials else 0)

    def decode(self) -> list[Trial]:
        """The trials of the page."""
        if self._decode is not None:
            return self._decode(self._encoded)
        return self._trials
