"""Stored forms of intermediate reports (early stopping): the members and fields of the keys
``es_state``, ``es_curves``, ``es_steps`` and ``es_rungs`` of a study (see :mod:`._keys`).

Every text the Lua scripts compare or order is built here. The scripts order values by
:func:`sortable` (fixed-width hex whose text order is the order of the doubles, so that one
``ZLEXCOUNT`` counts the values better than another) and read them back from
:func:`value_text` (``repr``, which ``tonumber`` reads as the same double); they never print a
float but into a message (``%.6g``, as :mod:`hyperdial_server.core.early_stopping` does).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from hyperdial_server.core.early_stopping import oriented
from hyperdial_server.core.trial import Measurement
from hyperdial_server.store._codec import dumps

#: Digits of a zero-padded step or trial number: the order of the texts is that of the numbers.
PAD = 20
_SIGN = 1 << 63
_ALL = (1 << 64) - 1


def padded(n: int) -> str:
    """A step or trial number, zero-padded to :data:`PAD` digits."""
    return f"{n:0{PAD}d}"


def orient(value: float, maximize: bool) -> float:
    """``core.early_stopping.oriented(value, maximize)`` with ``-0.0`` as ``0.0``: equal values
    then have one text, so that ties compare, sort and print alike in every store."""
    return oriented(float(value), maximize) + 0.0


def sortable(value: float) -> str:
    """``value`` as 16 hex digits whose text order is the numeric order of the values.

    The IEEE-754 bits, with the sign bit flipped for a positive value and every bit flipped for
    a negative one; ``-0.0`` is written as ``0.0``, so equal values have equal texts (a rank
    counts only values strictly better).

    Raises:
        ValueError: ``value`` is NaN, which has no order.
    """
    f = float(value)
    if math.isnan(f):
        raise ValueError("a measured value cannot be NaN")
    bits: int = struct.unpack(">Q", struct.pack(">d", f + 0.0))[0]
    bits = bits ^ _ALL if bits & _SIGN else bits | _SIGN
    return f"{bits:016x}"


def value_text(value: float) -> str:
    """``value`` as exact text (``repr``), as Lua's ``tonumber`` reads it back."""
    return repr(float(value))


def values_json(values: Mapping[str, float]) -> str:
    """A report's values as canonical JSON (names sorted, floats), so that a repeated report
    is recognised by text."""
    return dumps({name: float(values[name]) for name in sorted(values)})


def curve_json(measurement: Measurement) -> str:
    """A kept measurement's JSON in its ``es_curves`` member (the step is in the member)."""
    values = measurement.values
    out: dict[str, Any] = {"v": {name: float(values[name]) for name in sorted(values)}}
    if measurement.elapsed is not None:
        out["e"] = float(measurement.elapsed)
    return dumps(out)


def decode_curve(members: Sequence[str]) -> list[Measurement]:
    """The measurements of ``es_curves`` members ``<number>|<step>|<flag>|<ordinal>|<JSON>``,
    in order."""
    out = []
    for member in members:
        _, step, _, _, text = member.split("|", 4)
        obj = json.loads(text)
        out.append(Measurement(int(step), dict(obj["v"]), obj.get("e")))
    return out
