"""Typed helpers that describe a search space, its objectives and its outcome constraints.

Each helper converts itself to its protocol message; values keep their Python type on the wire
(``int`` as ``int_value``, ``float`` as ``double_value``, ``str`` as ``string_value``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hyperdial.v1 import study_pb2

#: A parameter value: ``float`` for float and discrete parameters, ``int`` for integer ones,
#: ``str`` for categorical ones.
ParamValue = float | int | str
#: ``(parent name, parent values)``: the parameter is active only when the parent takes one
#: of the values.
When = tuple[str, Sequence[ParamValue]]
#: The goal of an objective.
Goal = Literal["minimize", "maximize"]

__all__ = [
    "Categorical",
    "Constraint",
    "Discrete",
    "Float",
    "Goal",
    "Int",
    "Objective",
    "Parameter",
    "ParamValue",
    "When",
]


class Parameter:
    """Base class of the parameter helpers :class:`Float`, :class:`Int`,
    :class:`Categorical` and :class:`Discrete`.

    Attributes:
        name: Name of the parameter, unique in the study.
        when: ``(parent_name, (values...))`` for a conditional parameter, else ``None``.
    """

    name: str
    when: When | None

    def _to_proto(self, parent: Parameter | None = None) -> study_pb2.ParameterSpec:
        raise NotImplementedError


def _freeze_when(obj: object, when: When | None) -> None:
    if when is None:
        return
    if isinstance(when, (str, bytes)) or len(when) != 2 or not isinstance(when[0], str):
        raise TypeError(f"when must be (parent_name, [values...]); got {when!r}")
    parent, values = when
    # A bare value would otherwise become a list of its characters (or fail to iterate).
    frozen = (values,) if isinstance(values, (str, int, float)) else tuple(values)
    object.__setattr__(obj, "when", (parent, frozen))


@dataclass(frozen=True)
class Float(Parameter):
    """A real-valued parameter in ``[low, high]``.

    Args:
        name: Name of the parameter, unique in the study.
        low: Lower bound, inclusive.
        high: Upper bound, inclusive, greater than ``low``.
        log: Spread values uniformly in log space (needs ``low`` > 0).
        when: ``(parent_name, [values...])``: active only when the parent takes one of them.
    """

    name: str
    low: float
    high: float
    log: bool = field(default=False, kw_only=True)
    when: When | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _freeze_when(self, self.when)

    def _to_proto(self, parent: Parameter | None = None) -> study_pb2.ParameterSpec:
        pb = study_pb2.ParameterSpec(
            name=self.name,
            float_domain=study_pb2.FloatDomain(
                min=float(self.low), max=float(self.high), scale=_scale(self.log)
            ),
        )
        _set_condition(pb, self.when, parent)
        return pb


@dataclass(frozen=True)
class Int(Parameter):
    """An integer parameter in ``[low, high]``.

    Args:
        name: Name of the parameter, unique in the study.
        low: Lower bound, inclusive.
        high: Upper bound, inclusive, greater than ``low``.
        log: Spread values uniformly in log space (needs ``low`` >= 1).
        when: ``(parent_name, [values...])``: active only when the parent takes one of them.
    """

    name: str
    low: int
    high: int
    log: bool = field(default=False, kw_only=True)
    when: When | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        for bound in (self.low, self.high):
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise TypeError(f"Int {self.name!r}: bounds must be int; got {bound!r}")
        _freeze_when(self, self.when)

    def _to_proto(self, parent: Parameter | None = None) -> study_pb2.ParameterSpec:
        pb = study_pb2.ParameterSpec(
            name=self.name,
            int_domain=study_pb2.IntDomain(min=self.low, max=self.high, scale=_scale(self.log)),
        )
        _set_condition(pb, self.when, parent)
        return pb


@dataclass(frozen=True)
class Categorical(Parameter):
    """A parameter taking one of a list of strings (unordered).

    Args:
        name: Name of the parameter, unique in the study.
        values: The distinct values.
        when: ``(parent_name, [values...])``: active only when the parent takes one of them.
    """

    name: str
    values: Sequence[str]
    when: When | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.values, str):
            raise TypeError(f"Categorical {self.name!r}: values must be a list of strings")
        object.__setattr__(self, "values", tuple(self.values))
        _freeze_when(self, self.when)

    def _to_proto(self, parent: Parameter | None = None) -> study_pb2.ParameterSpec:
        pb = study_pb2.ParameterSpec(
            name=self.name,
            categorical_domain=study_pb2.CategoricalDomain(values=list(self.values)),
        )
        _set_condition(pb, self.when, parent)
        return pb


@dataclass(frozen=True)
class Discrete(Parameter):
    """A numeric parameter taking one of a strictly increasing list of values.

    Args:
        name: Name of the parameter, unique in the study.
        values: The values, strictly increasing. They come back as ``float``.
        when: ``(parent_name, [values...])``: active only when the parent takes one of them.
    """

    name: str
    values: Sequence[float]
    when: When | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        _freeze_when(self, self.when)

    def _to_proto(self, parent: Parameter | None = None) -> study_pb2.ParameterSpec:
        pb = study_pb2.ParameterSpec(
            name=self.name,
            discrete_domain=study_pb2.DiscreteDomain(values=list(self.values)),
        )
        _set_condition(pb, self.when, parent)
        return pb


@dataclass(frozen=True)
class Objective:
    """One objective of a study.

    Args:
        name: Name of the objective, unique in the study.
        goal: ``"minimize"`` or ``"maximize"``.
    """

    name: str
    goal: Goal = "minimize"

    def __post_init__(self) -> None:
        if self.goal not in ("minimize", "maximize"):
            raise ValueError(f"goal must be 'minimize' or 'maximize'; got {self.goal!r}")

    def _to_proto(self) -> study_pb2.ObjectiveSpec:
        goal = study_pb2.GOAL_MAXIMIZE if self.goal == "maximize" else study_pb2.GOAL_MINIMIZE
        return study_pb2.ObjectiveSpec(name=self.name, goal=goal)


@dataclass(frozen=True)
class Constraint:
    """An outcome constraint of a study: a metric every final measurement reports beside the
    objectives, and the bounds it must hold (inclusive). A completed trial is feasible when
    all the study's constraints hold; only feasible trials are best or Pareto-optimal.

    ``Constraint("latency_ms", upper_bound=20)`` is ``latency_ms <= 20``;
    :meth:`parse` reads that text. An Optuna ``constraints_func`` returning ``c_i``
    (satisfied when ``c_i <= 0``) is one constraint per value with ``upper_bound=0``.

    Args:
        name: Name of the metric, as reported in the final measurement's values: distinct
            from every objective's and every other constraint's.
        upper_bound: The metric must be at most this; ``None``: no upper limit.
        lower_bound: The metric must be at least this; ``None``: no lower limit.

    The service checks the rest (a bound at least, finite, ``lower_bound <= upper_bound``;
    reason ``INVALID_CONSTRAINTS``).
    """

    name: str
    upper_bound: float | None = field(default=None, kw_only=True)
    lower_bound: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"a constraint's name must be a str; got {self.name!r}")
        for attr in ("upper_bound", "lower_bound"):
            bound = getattr(self, attr)
            if bound is None:
                continue
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise TypeError(f"constraint {self.name!r}: {attr} must be a number; got {bound!r}")
            object.__setattr__(self, attr, float(bound))

    def __str__(self) -> str:
        low, high = self.lower_bound, self.upper_bound
        if low is not None and high is not None:
            return f"{low:g} <= {self.name} <= {high:g}"
        if high is not None:
            return f"{self.name} <= {high:g}"
        if low is not None:
            return f"{self.name} >= {low:g}"
        return f"{self.name} (no bound)"

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """A constraint from its text: ``NAME <= UPPER``, ``NAME >= LOWER`` or
        ``LOWER <= NAME <= UPPER`` (spaces optional; bounds are inclusive).

        Raises:
            ValueError: The text has none of those forms, or a bound is not a finite number.
        """
        if not isinstance(text, str):
            raise TypeError(f"a constraint's text must be a str; got {text!r}")
        forms = "NAME<=UPPER, NAME>=LOWER or LOWER<=NAME<=UPPER (bounds are inclusive)"
        where = f"constraint {text!r}"
        ops = [op for op in ("<=", ">=") if op in text]
        if len(ops) != 1:
            why = "mixes <= and >=" if ops else "has no <= or >="
            raise ValueError(f"{where} {why}; expected {forms}")
        op = ops[0]
        parts = [p.strip() for p in text.split(op)]
        if any(c in p for p in parts for c in "<>=") or len(parts) > 3:
            raise ValueError(f"{where}: expected {forms}")
        numbers = [_bound(p) for p in parts]
        names = [p for p, n in zip(parts, numbers, strict=True) if n is None]
        if len(names) != 1 or not names[0]:
            raise ValueError(f"{where}: expected {forms}, with one metric name")
        for p, n in zip(parts, numbers, strict=True):
            if n is not None and not math.isfinite(n):
                raise ValueError(f"{where}: the bound {p!r} is not a finite number")
        # Ascending order: "a <= b <= c" as written; "c >= b >= a" reversed.
        ordered = numbers if op == "<=" else numbers[::-1]
        at = ordered.index(None)
        if len(parts) == 3 and at != 1:
            raise ValueError(f"{where}: expected {forms}")
        lower = ordered[at - 1] if at > 0 else None
        upper = ordered[at + 1] if at + 1 < len(ordered) else None
        return cls(names[0], upper_bound=upper, lower_bound=lower)

    def _to_proto(self) -> study_pb2.OutcomeConstraint:
        pb = study_pb2.OutcomeConstraint(name=self.name)
        if self.upper_bound is not None:
            pb.upper_bound = self.upper_bound
        if self.lower_bound is not None:
            pb.lower_bound = self.lower_bound
        return pb


def _bound(text: str) -> float | None:
    """The number ``text`` spells, or ``None`` when it is a name."""
    try:
        return float(text)
    except ValueError:
        return None


def constraint_from_proto(pb: study_pb2.OutcomeConstraint) -> Constraint:
    """The helper describing an ``OutcomeConstraint``."""
    return Constraint(
        pb.name,
        upper_bound=pb.upper_bound if pb.HasField("upper_bound") else None,
        lower_bound=pb.lower_bound if pb.HasField("lower_bound") else None,
    )


def constraints_to_proto(
    constraints: Sequence[Constraint | str],
) -> list[study_pb2.OutcomeConstraint]:
    """The ``OutcomeConstraint`` of each constraint, given as a :class:`Constraint` or as its
    text (``"latency_ms <= 20"``).

    Raises:
        TypeError: An item is neither (a bare string for the whole list included).
        ValueError: A text is malformed.
    """
    if isinstance(constraints, str | Constraint):
        raise TypeError("constraints must be a list: constraints=[...]")
    out = []
    for c in constraints:
        if isinstance(c, str):
            c = Constraint.parse(c)
        if not isinstance(c, Constraint):
            raise TypeError(f"constraints must be Constraint instances or text; got {c!r}")
        out.append(c._to_proto())
    return out


def _scale(log: bool) -> study_pb2.Scale.ValueType:
    return study_pb2.SCALE_LOG if log else study_pb2.SCALE_LINEAR


def _set_condition(
    pb: study_pb2.ParameterSpec, when: When | None, parent: Parameter | None
) -> None:
    if when is None:
        return
    name, values = when
    pb.condition.parent = name
    for v in values:
        pb.condition.values.append(value_to_proto(v, parent))


def value_to_proto(value: object, param: Parameter | None = None) -> study_pb2.ParameterValue:
    """A Python value as a ``ParameterValue``, typed for ``param`` when it is known.

    Values that cannot take the parameter's type are sent as they are, for the service to
    refuse with a message naming the parameter.

    Args:
        value: The value.
        param: The parameter it belongs to; ``None`` types the value by its Python type.

    Raises:
        TypeError: ``value`` is not a ``str``, ``int`` or ``float`` (``bool`` included).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"a parameter value must be str, int or float; got {value!r}")
    if isinstance(param, (Float, Discrete)) and not isinstance(value, str):
        return study_pb2.ParameterValue(double_value=float(value))
    if (
        isinstance(param, Int)
        and isinstance(value, float)
        and math.isfinite(value)
        and value.is_integer()
    ):
        return study_pb2.ParameterValue(int_value=int(value))
    if isinstance(value, str):
        return study_pb2.ParameterValue(string_value=value)
    if isinstance(value, int):
        return study_pb2.ParameterValue(int_value=value)
    return study_pb2.ParameterValue(double_value=value)


def value_from_proto(pb: study_pb2.ParameterValue) -> ParamValue:
    """The Python value of a ``ParameterValue``.

    Raises:
        ValueError: No value is set.
    """
    kind = pb.WhichOneof("kind")
    if kind == "double_value":
        return pb.double_value
    if kind == "int_value":
        return pb.int_value
    if kind == "string_value":
        return pb.string_value
    raise ValueError("the parameter value holds no value")


def parameter_from_proto(pb: study_pb2.ParameterSpec) -> Parameter:
    """The helper describing a ``ParameterSpec``.

    Raises:
        ValueError: The spec has no domain.
    """
    when: When | None = None
    if pb.HasField("condition"):
        when = (pb.condition.parent, [value_from_proto(v) for v in pb.condition.values])
    kind = pb.WhichOneof("domain")
    if kind == "float_domain":
        d = pb.float_domain
        return Float(pb.name, d.min, d.max, log=d.scale == study_pb2.SCALE_LOG, when=when)
    if kind == "int_domain":
        di = pb.int_domain
        return Int(pb.name, di.min, di.max, log=di.scale == study_pb2.SCALE_LOG, when=when)
    if kind == "categorical_domain":
        return Categorical(pb.name, list(pb.categorical_domain.values), when=when)
    if kind == "discrete_domain":
        return Discrete(pb.name, list(pb.discrete_domain.values), when=when)
    raise ValueError(f"parameter {pb.name!r} has no domain")


def parameters_to_proto(params: Sequence[Parameter]) -> list[study_pb2.ParameterSpec]:
    """The ``ParameterSpec`` of each helper; condition values take their parent's type."""
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(
                f"parameters must be Float, Int, Categorical or Discrete; got {type(p).__name__}"
            )
    by_name: Mapping[str, Parameter] = {p.name: p for p in params}
    out = []
    for p in params:
        parent = by_name.get(p.when[0]) if p.when is not None else None
        out.append(p._to_proto(parent))
    return out
