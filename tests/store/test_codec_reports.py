"""The texts the early-stopping scripts compare and order (``store/_codec_reports.py``): a
sortable text of a double orders as the double does, and a kept measurement reads back."""

from __future__ import annotations

import math
import random
import struct

import pytest

from hyperdial_server.core.trial import Measurement
from hyperdial_server.store._codec_reports import (
    curve_json,
    decode_curve,
    orient,
    padded,
    sortable,
    value_text,
    values_json,
)


def test_sortable_texts_order_as_their_values() -> None:
    rng = random.Random(1)
    edge = [-math.inf, -1e308, -1.0, -5e-324, -0.0, 0.0, 5e-324, 2.2e-308, 1.0, 1e308, math.inf]
    values = edge + [rng.uniform(-1e6, 1e6) for _ in range(300)]
    values += [struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0] for _ in range(300)]
    values = [v for v in values if not math.isnan(v)]
    for a in values:
        assert len(sortable(a)) == 16
        for b in rng.sample(values, 20):
            assert (sortable(a) < sortable(b)) == (a < b), (a, b)
            assert (sortable(a) == sortable(b)) == (a == b), (a, b)
    with pytest.raises(ValueError):
        sortable(math.nan)


def test_orient_and_value_texts() -> None:
    assert orient(0.0, True) == 0.0 and math.copysign(1.0, orient(0.0, True)) == 1.0
    assert orient(2.5, True) == -2.5 and orient(2.5, False) == 2.5
    for v in (0.1, -1e-300, 5e-324, 1 / 3):
        assert float(value_text(v)) == v
    assert padded(42) == "00000000000000000042" and len(padded(2**53)) == 20


def test_values_are_canonical_and_measurements_round_trip() -> None:
    assert values_json({"b": 1, "a": 0.5}) == values_json({"a": 0.5, "b": 1.0})
    m = Measurement(7, {"loss": 0.1, "ünï|x": 2}, 1.5)
    member = f"{padded(3)}|{padded(7)}|u|{padded(1)}|{curve_json(m)}"
    assert decode_curve([member]) == [Measurement(7, {"loss": 0.1, "ünï|x": 2.0}, 1.5)]
