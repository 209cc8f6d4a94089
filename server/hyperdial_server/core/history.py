"""A study's history as it travels from the store to a sampler: pages of trials.

It lives in the domain, not with the stores, because both sides use it: a store returns pages
and a sampler worker reads them, and samplers must not depend on stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hyperdial_server.core.early_stopping import (
    EarlyStopping,
    Hyperband,
    PercentileRule,
    RungValue,
    StepValue,
    SuccessiveHalving,
    rungs_of,
    shown,
)
from hyperdial_server.core.trial import Measurement, Trial


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
        last: Where the next page starts: the number of the page's last trial (0 when empty);
            for a page of changes (``Store.list_trial_page`` with ``after_revision``), the
            revision of the last change the store looked at, which may be past the page's
            last trial when the states filter left some out.
        size: Number of trials of an encoded page, if the store knows it without decoding
            (kept in :attr:`size`; a decoded page counts its trials).
        revision: The study's revision when the page was read (0 when not told).
        numbers: Reads the trial numbers of ``encoded`` without decoding the trials (else
            :meth:`numbers` decodes them).
    """

    def __init__(
        self,
        trials: Sequence[Trial] = (),
        *,
        decode: Callable[[Any], list[Trial]] | None = None,
        encoded: Any = None,
        last: int | None = None,
        size: int | None = None,
        revision: int = 0,
        numbers: Callable[[Any], list[int]] | None = None,
    ) -> None:
        self._trials = list(trials)
        self._decode = decode
        self._encoded = encoded
        self._numbers = numbers
        #: Number of trials in the page; ``None``: an encoded page that was not told.
        self.size = size if decode is not None else len(self._trials)
        self.last = last if last is not None else (self._trials[-1].number if trials else 0)
        #: The study's revision when the page was read.
        self.revision = revision

    def decode(self) -> list[Trial]:
        """The trials of the page."""
        if self._decode is not None:
            return self._decode(self._encoded)
        return self._trials

    def numbers(self) -> list[int]:
        """The numbers of the page's trials, in the page's order."""
        if self._decode is not None and self._numbers is not None:
            return self._numbers(self._encoded)
        return [t.number for t in self.decode()]

    @property
    def decoded(self) -> bool:
        """Whether the trials are decoded already (a store that keeps trials decoded, such as
        the memory store): :meth:`decode` costs nothing, but pickling the page costs tens of
        microseconds a trial, all of it holding the GIL."""
        return self._decode is None


def rung_measurements(
    policy: EarlyStopping, values: Iterable[RungValue]
) -> dict[int, list[Measurement]]:
    """Each trial's rung values as measurements at the rungs' steps (the watched objective
    only, in its own direction), in order of step: how a sampler sees what every trial
    measured at the points where the rule compared them. Empty unless the policy's rule has
    rungs."""
    rule = policy.rule
    if not isinstance(rule, (SuccessiveHalving, Hyperband)):
        return {}
    sign = -1.0 if policy.maximize else 1.0
    steps: dict[int, list[int]] = {}
    out: dict[int, list[Measurement]] = {}
    for v in values:
        at = steps.get(v.bracket)
        if at is None:
            at = steps[v.bracket] = rungs_of(rule, v.bracket)
        if not 0 <= v.rung < len(at):
            continue  # a rung the policy does not have (cannot happen through the service)
        measurement = Measurement(at[v.rung], {policy.objective: shown(v.value, sign)})
        out.setdefault(v.number, []).append(measurement)
    for curve in out.values():
        curve.sort(key=lambda m: m.step)
    return out


def step_measurements(
    policy: EarlyStopping, values: Iterable[StepValue]
) -> dict[int, list[Measurement]]:
    """Each trial's values recorded by a percentile rule as measurements at their steps (the
    watched objective only, in its own direction), in order of step; the counterpart of
    :func:`rung_measurements`. Empty unless the policy's rule is a percentile rule."""
    if not isinstance(policy.rule, PercentileRule):
        return {}
    sign = -1.0 if policy.maximize else 1.0
    out: dict[int, list[Measurement]] = {}
    for v in values:
        measurement = Measurement(v.step, {policy.objective: shown(v.value, sign)})
        out.setdefault(v.number, []).append(measurement)
    for curve in out.values():
        curve.sort(key=lambda m: m.step)
    return out
