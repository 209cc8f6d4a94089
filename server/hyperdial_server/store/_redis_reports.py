"""``ReportCommands``: the early-stopping side of :class:`._redis.RedisStore`.

An intermediate report is one script call (``lua/add_measurement.lua``): the script keeps the
trial's bookkeeping and the values each decision compares, and takes the decision in the same
step as the report, so that every replica decides alike. Python computes what needs no stored
state (:func:`policy_args`): whether the rule decides at the step, how many rungs lie at or
below it, the trial's Hyperband bracket, sortable texts of the value, the messages' fixed
words; the script mirrors :mod:`hyperdial_server.core.early_stopping` for the rest.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from hyperdial_server.core.early_stopping import (
    DEFAULT_MAX_MEASUREMENTS,
    Decision,
    EarlyStopping,
    Hyperband,
    PercentileRule,
    RungValue,
    StepValue,
    SuccessiveHalving,
    hyperband_bracket,
    rungs_of,
)
from hyperdial_server.core.trial import Measurement, Trial, TrialState
from hyperdial_server.store._base import PERCENTILE_STEPS, RequestId
from hyperdial_server.store._checks import check_measurement
from hyperdial_server.store._codec import (
    decision_from_json,
    decode_stored_trial,
    encode_trial_patch,
    score_member,
    score_text,
)
from hyperdial_server.store._codec_reports import (
    curve_json,
    orient,
    padded,
    sortable,
    value_text,
    values_json,
)
from hyperdial_server.store._keys import study_keys
from hyperdial_server.store._redis_base import RedisBase
from hyperdial_server.store._redis_calls import expiry_patch, front_arg, request_args, stored
from hyperdial_server.store._scripts import (
    ADD_MEASUREMENT,
    CHECK_EARLY_STOPPING,
    PERCENTILE_VALUES,
    RUNG_VALUES,
)

# The arguments of add_measurement.lua that only some rules use, at their unused value.
_UNUSED = {
    "mode": "",
    "rule": "",
    "value": "",
    "sortable": "",
    "min_delta": "0.0",
    "decides": "0",
    "percentile": "",
    "min_trials": "",
    "what": "",
    "sign": "1",
    "bracket": "0",
    "reached": "0",
    "eta": "",
    "threshold": "",
    "patience": "0",
    "min_delta_text": "",
}


def policy_args(
    policy: EarlyStopping | None, number: int, step: int, value: float
) -> dict[str, str]:
    """The arguments of ``add_measurement.lua`` that say what the policy decides at a report
    of ``step`` by trial ``number`` whose watched value is ``value`` (as measured)."""
    args = dict(_UNUSED)
    if policy is None:
        return args
    watched = orient(value, policy.maximize)
    args.update(
        value=value_text(watched),
        sortable=sortable(watched),
        rule=policy.name.value,
        sign="-1" if policy.maximize else "1",
    )
    rule = policy.rule
    if isinstance(rule, PercentileRule):
        args.update(
            mode="percentile",
            decides="1" if rule.decides_at(step) else "0",
            percentile=repr(float(rule.percentile)),
            min_trials=str(rule.min_trials),
            # As core's message names the cut.
            what="median" if rule.median else f"{rule.percentile:g}th percentile",
        )
    elif isinstance(rule, (SuccessiveHalving, Hyperband)):
        bracket = hyperband_bracket(rule, number) if isinstance(rule, Hyperband) else 0
        args.update(
            mode="rungs",
            bracket=str(bracket),
            reached=str(sum(1 for at in rungs_of(rule, bracket) if at <= step)),
            eta=str(rule.reduction_factor),
        )
    else:
        threshold = None if rule.threshold is None else orient(rule.threshold, policy.maximize)
        args.update(
            mode="threshold",
            decides="1" if step >= rule.warmup_steps else "0",
            threshold="" if threshold is None else value_text(threshold),
            patience=str(rule.patience_steps),
            min_delta=repr(float(rule.min_delta)),
            min_delta_text=f"{rule.min_delta:g}",
        )
    return args


class ReportCommands(RedisBase):
    """The early-stopping methods of :class:`._redis.RedisStore`."""

    async def add_measurement(
        self,
        namespace: str,
        study_id: str,
        number: int,
        measurement: Measurement,
        *,
        policy: EarlyStopping | None,
        now: float,
        lease_timeout: float,
        uid: str | None = None,
        request_id: RequestId | None = None,
        score: float | None = None,
        front_vector: Sequence[float] | None = None,
    ) -> tuple[Trial, Decision]:
        """See :meth:`Store.add_measurement`. One script call, a constant number of Redis
        commands whatever the size of the study."""
        check_measurement(measurement, policy)
        keys = study_keys(namespace, study_id)
        step = measurement.step
        values = values_json(measurement.values)
        watched = 0.0 if policy is None else measurement.values[policy.objective]
        # The stop patch but its closing brace: the script adds the count and the decision.
        floats = {name: float(v) for name, v in measurement.values.items()}
        head = encode_trial_patch(state=TrialState.STOPPED, values=floats, complete_time=now)[:-1]
        cap = DEFAULT_MAX_MEASUREMENTS if policy is None else policy.max_measurements
        reply = await self._script(
            ADD_MEASUREMENT,
            ADD_MEASUREMENT.call_args(
                keys,
                number=str(number),
                uid=uid or "",
                lease=repr(float(now) + lease_timeout),
                expiry_patch=expiry_patch(now),
                step=str(step),
                step_key=padded(step),
                report_values=values,
                curve=curve_json(measurement),
                cap=str(cap),
                stop_head=head,
                score="" if score is None else score_text(score),
                score_member=score_member(number),
                front_vector=front_arg(front_vector),
                **policy_args(policy, number, step, watched),
                **request_args(request_id, now),
            ),
            study_id,
            number,
        )
        _, text, decision, lease, revision = reply
        trial = decode_stored_trial(stored(study_id, [text])[0], lease, revision)
        return trial, decision_from_json(json.loads(decision))

    async def check_early_stopping(self, namespace: str, study_id: str, number: int) -> Decision:
        """See :meth:`Store.check_early_stopping`. One script call."""
        keys = study_keys(namespace, study_id)
        reply = await self._script(
            CHECK_EARLY_STOPPING,
            CHECK_EARLY_STOPPING.call_args(keys, number=str(number)),
            study_id,
            number,
        )
        if len(reply) < 2 or reply[1] is None:
            return Decision(False, 0)
        return decision_from_json(json.loads(reply[1]))

    async def rung_values(
        self, namespace: str, study_id: str, numbers: Collection[int]
    ) -> list[RungValue]:
        """See :meth:`Store.rung_values`. One script call (``rung_values.lua``), O(numbers):
        each trial's values are one field of ``es_state``; every value of the study only for
        a study where an older server recorded some without that field."""
        keys = study_keys(namespace, study_id)
        wanted = sorted(set(numbers))
        reply = await self._eval(RUNG_VALUES, RUNG_VALUES.call_args(keys, numbers=wanted))
        kind, items = _text(reply[0]), reply[1]
        out = []
        if kind == "ALL":
            chosen = set(wanted)
            for member in items:
                # "<bracket>|<rung>|<sortable>|<number>|<value>" (see _keys).
                bracket, rung, _, padded_number, value = _text(member).split("|", 4)
                if int(padded_number) in chosen:
                    out.append(RungValue(int(padded_number), int(bracket), int(rung), float(value)))
            return out
        if not items:  # no value recorded yet, or no trial asked for
            return out
        for number, field in zip(wanted, items, strict=True):
            if field is None:
                continue
            # "<bracket>|<rung>|<value>;" per rung (see _keys).
            for entry in _text(field).split(";")[:-1]:
                bracket, rung, value = entry.split("|")
                out.append(RungValue(number, int(bracket), int(rung), float(value)))
        return out

    async def percentile_values(
        self, namespace: str, study_id: str, numbers: Collection[int]
    ) -> list[StepValue]:
        """See :meth:`Store.percentile_values`. One script call (``percentile_values.lua``),
        O(numbers x PERCENTILE_STEPS): each value is also a field of ``es_state`` under its
        trial and step; the steps of the study's every STOPPED trial and their every value
        (then filtered) only for a study where an older server recorded some without that
        field."""
        keys = study_keys(namespace, study_id)
        wanted = sorted(set(numbers))
        reply = await self._eval(
            PERCENTILE_VALUES,
            PERCENTILE_VALUES.call_args(keys, max_steps=str(PERCENTILE_STEPS), numbers=wanted),
        )
        out = []
        if _text(reply[0]) == "ALL":
            chosen = set(wanted)
            for member in reply[1:]:
                # "<step>|<sortable>|<number>|<value>" (see _keys).
                step, _, number, value = _text(member).split("|", 3)
                if int(number) in chosen:
                    out.append(StepValue(int(number), int(step), float(value)))
            return out
        for member in reply[1:]:
            # "<step>|<number>|<value>" (percentile_values.lua).
            step, number, value = _text(member).split("|")
            out.append(StepValue(int(number), int(step), float(value)))
        return out


def _text(item: bytes | str) -> str:
    return item.decode() if isinstance(item, bytes) else item
