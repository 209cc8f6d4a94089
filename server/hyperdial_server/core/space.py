"""The search space: parameter domains, conditions, and checks of points against them.

Pure Python, no protobuf. A :class:`SearchSpace` is valid by construction: building one from
untrusted parts raises :class:`~hyperdial_server.core.errors.InvalidArgument` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hyperdial_server.core import limits
from hyperdial_server.core.errors import InvalidArgument

#: A parameter value: ``float`` for float and discrete parameters, ``int`` for integer ones,
#: ``str`` for categorical ones.
ParamValue = float | int | str
#: A point of the search space: the values of its active parameters, by name.
Params = dict[str, ParamValue]


@dataclass(frozen=True)
class FloatDomain:
    """Real numbers in ``[low, high]``; ``log`` spreads them uniformly in log space."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntDomain:
    """Integers in ``[low, high]``; ``log`` spreads them uniformly in log space."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class CategoricalDomain:
    """One of the (unordered) string ``values``."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class DiscreteDomain:
    """One of the strictly increasing numbers ``values``."""

    values: tuple[float, ...]


Domain = FloatDomain | IntDomain | CategoricalDomain | DiscreteDomain


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when ``parent`` takes one of ``values``."""

    parent: str
    values: tuple[ParamValue, ...]


@dataclass(frozen=True)
class ParameterConfig:
    """One parameter: its name, domain and optional activation condition."""

    name: str
    domain: Domain
    condition: Condition | None = None


class SearchSpace:
    """A validated, immutable search space.

    ``parameters`` are kept in topological order (every parent before its children) so that
    samplers can fill a point in one pass.

    Raises:
        InvalidArgument: At construction, for any invalid domain or condition.
    """

    def __init__(self, parameters: Sequence[ParameterConfig]) -> None:
        _check_parameters(parameters)
        parameters = _canonical_conditions(parameters)
        self._by_name = {p.name: p for p in parameters}
        self.parameters: tuple[ParameterConfig, ...] = tuple(_topological(parameters))
        self._children: dict[str, list[ParameterConfig]] = {}
        for p in self.parameters:
            if p.condition is not None:
                self._children.setdefault(p.condition.parent, []).append(p)

    def __len__(self) -> int:
        return len(self.parameters)

    def __getitem__(self, name: str) -> ParameterConfig:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.parameters == other.parameters

    def __hash__(self) -> int:
        return hash(self.parameters)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self.parameters)!r})"

    @property
    def roots(self) -> tuple[ParameterConfig, ...]:
        """Parameters without a condition, in order."""
        return tuple(p for p in self.parameters if p.condition is None)

    def children(self, name: str) -> tuple[ParameterConfig, ...]:
        """Parameters whose condition names ``name`` as parent."""
        return tuple(self._children.get(name, ()))

    def is_active(self, param: ParameterConfig, point: Mapping[str, ParamValue]) -> bool:
        """Whether ``param`` is active given the (partial) ``point`` of its ancestors."""
        cond = param.condition
        if cond is None:
            return True
        if cond.parent not in point:
            return False
        return _value_in(point[cond.parent], cond.values)

    def validate_point(self, point: Mapping[str, object], field: str = "parameters") -> Params:
        """Checks that ``point`` is a member of the space and returns it with canonical types.

        Every active parameter must be present with a value of its type inside its domain, and
        every inactive or unknown parameter absent.

        Raises:
            InvalidArgument: Naming the first offending parameter.
        """
        for name in point:
            if name not in self._by_name:
                raise InvalidArgument(
                    f"{field}: {name!r} is not a parameter of the study",
                    field=f"{field}[{name}]",
                    reason="INVALID_PARAMETERS",
                )
        out: Params = {}
        for p in self.parameters:
            active = self.is_active(p, out)
            if not active:
                if p.name in point:
                    assert p.condition is not None
                    raise InvalidArgument(
                        f"{field}: {p.name!r} is inactive here (its parent "
                        f"{p.condition.parent!r} does not take one of "
                        f"{list(p.condition.values)!r}); leave it out",
                        field=f"{field}[{p.name}]",
                        reason="INVALID_PARAMETERS",
                    )
                continue
            if p.name not in point:
                raise InvalidArgument(
                    f"{field}: active parameter {p.name!r} is missing",
                    field=f"{field}[{p.name}]",
                    reason="INVALID_PARAMETERS",
                )
            out[p.name] = _check_value(p, point[p.name], f"{field}[{p.name}]")
        return out


def domain_kind(domain: Domain) -> str:
    """A short word for error messages: float, int, categorical or discrete."""
    return {
        FloatDomain: "float",
        IntDomain: "int",
        CategoricalDomain: "categorical",
        DiscreteDomain: "discrete",
    }[type(domain)]


def _value_in(value: ParamValue, values: Iterable[ParamValue]) -> bool:
    for v in values:
        if type(v) is type(value) and v == value:
            return True
    return False


def _check_value(p: ParameterConfig, value: object, field: str) -> ParamValue:
    d = p.domain
    bad = InvalidArgument(
        f"{field}: {value!r} is not a valid value of {domain_kind(d)} parameter {p.name!r} "
        f"({_describe(d)})",
        field=field,
        reason="INVALID_PARAMETERS",
    )
    if isinstance(d, FloatDomain):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        f = float(value)
        if not math.isfinite(f) or not d.low <= f <= d.high:
            raise bad
        return f
    if isinstance(d, IntDomain):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        if not d.low <= value <= d.high:
            raise bad
        return int(value)
    if isinstance(d, CategoricalDomain):
        if not isinstance(value, str) or value not in d.values:
            raise bad
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    f = float(value)
    if f not in d.values:
        raise bad
    return f


def _describe(d: Domain) -> str:
    if isinstance(d, (FloatDomain, IntDomain)):
        return f"[{d.low}, {d.high}]{' log scale' if d.log else ''}"
    shown = list(d.values[:10])
    return f"one of {shown!r}{' ...' if len(d.values) > 10 else ''}"


def _invalid(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(message, field=field, reason="INVALID_SEARCH_SPACE")


def _check_name(name: str, field: str, what: str) -> None:
    if not name:
        raise _invalid(f"{field}: {what} name is empty", field)
    if len(name) > limits.MAX_NAME_LENGTH:
        raise _invalid(
            f"{field}: {what} name is {len(name)} characters long; the limit is "
            f"{limits.MAX_NAME_LENGTH}",
            field,
        )
    if not name.isprintable():
        raise _invalid(f"{field}: {what} name {name!r} has non-printable characters", field)


def _check_parameters(parameters: Sequence[ParameterConfig]) -> None:
    if not parameters:
        raise _invalid("the search space has no parameters; give at least one", "parameters")
    if len(parameters) > limits.MAX_PARAMETERS:
        raise _invalid(
            f"the search space has {len(parameters)} parameters; the limit is "
            f"{limits.MAX_PARAMETERS}",
            "parameters",
        )
    seen: dict[str, ParameterConfig] = {}
    for i, p in enumerate(parameters):
        field = f"parameters[{i}]"
        _check_name(p.name, f"{field}.name", "parameter")
        if p.name in seen:
            raise _invalid(f"{field}: parameter name {p.name!r} is used twice", f"{field}.name")
        seen[p.name] = p
        _check_domain(p.domain, field)
    for i, p in enumerate(parameters):
        if p.condition is not None:
            _check_condition(p, seen, f"parameters[{i}].condition")
    _check_depth(parameters, seen)


def _check_domain(d: Domain, field: str) -> None:
    if isinstance(d, FloatDomain):
        if not (math.isfinite(d.low) and math.isfinite(d.high)):
            raise _invalid(f"{field}: float bounds must be finite numbers", f"{field}.float_domain")
        if d.low >= d.high:
            raise _invalid(
                f"{field}: min ({d.low}) must be less than max ({d.high})", f"{field}.float_domain"
            )
        if d.log and d.low <= 0:
            raise _invalid(
                f"{field}: log scale needs min > 0 (got {d.low})", f"{field}.float_domain"
            )
    elif isinstance(d, IntDomain):
        if d.low >= d.high:
            raise _invalid(
                f"{field}: min ({d.low}) must be less than max ({d.high})", f"{field}.int_domain"
            )
        if d.log and d.low < 1:
            raise _invalid(
                f"{field}: log scale needs min >= 1 (got {d.low})", f"{field}.int_domain"
            )
    elif isinstance(d, CategoricalDomain):
        sub = f"{field}.categorical_domain"
        if not d.values:
            raise _invalid(f"{field}: a categorical parameter needs at least one value", sub)
        if len(d.values) > limits.MAX_DOMAIN_VALUES:
            raise _invalid(
                f"{field}: {len(d.values)} values; the limit is {limits.MAX_DOMAIN_VALUES}", sub
            )
        for v in d.values:
            _check_name(v, sub, "categorical value")
        if len(set(d.values)) != len(d.values):
            dup = next(v for v in d.values if d.values.count(v) > 1)
            raise _invalid(f"{field}: categorical value {dup!r} is listed twice", sub)
    else:
        sub = f"{field}.discrete_domain"
        if not d.values:
            raise _invalid(f"{field}: a discrete parameter needs at least one value", sub)
        if len(d.values) > limits.MAX_DOMAIN_VALUES:
            raise _invalid(
                f"{field}: {len(d.values)} values; the limit is {limits.MAX_DOMAIN_VALUES}", sub
            )
        if not all(math.isfinite(v) for v in d.values):
            raise _invalid(f"{field}: discrete values must be finite numbers", sub)
        if any(b <= a for a, b in zip(d.values, d.values[1:], strict=False)):
            raise _invalid(f"{field}: discrete values must be strictly increasing", sub)


def _check_condition(
    p: ParameterConfig, by_name: Mapping[str, ParameterConfig], field: str
) -> None:
    cond = p.condition
    assert cond is not None
    if cond.parent == p.name:
        raise _invalid(f"{field}: parameter {p.name!r} cannot be its own parent", f"{field}.parent")
    parent = by_name.get(cond.parent)
    if parent is None:
        raise _invalid(
            f"{field}: parent {cond.parent!r} of {p.name!r} is not a parameter of the study",
            f"{field}.parent",
        )
    if isinstance(parent.domain, FloatDomain):
        raise _invalid(
            f"{field}: parent {cond.parent!r} is a float parameter; a parent must be "
            "categorical, int or discrete",
            f"{field}.parent",
        )
    if not cond.values:
        raise _invalid(
            f"{field}: list the values of {cond.parent!r} that activate {p.name!r}",
            f"{field}.values",
        )
    for v in cond.values:
        try:
            _check_value(parent, v, f"{field}.values")
        except InvalidArgument:
            raise _invalid(
                f"{field}: parent {cond.parent!r} cannot take {v!r} ({_describe(parent.domain)}, "
                f"{domain_kind(parent.domain)})",
                f"{field}.values",
            ) from None


def _check_depth(
    parameters: Sequence[ParameterConfig], by_name: Mapping[str, ParameterConfig]
) -> None:
    for p in parameters:
        depth = 0
        seen = {p.name}
        cur = p
        while cur.condition is not None:
            cur = by_name[cur.condition.parent]
            if cur.name in seen:
                raise _invalid(
                    f"conditions form a cycle through {p.name!r} and {cur.name!r}",
                    "parameters",
                )
            seen.add(cur.name)
            depth += 1
            if depth > limits.MAX_CONDITION_DEPTH:
                raise _invalid(
                    f"parameter {p.name!r} is nested more than {limits.MAX_CONDITION_DEPTH} "
                    "conditions deep",
                    "parameters",
                )


def _canonical_conditions(parameters: Sequence[ParameterConfig]) -> list[ParameterConfig]:
    # Condition values are stored with the parent's own value types (an int 1 given for a
    # discrete parent becomes 1.0), so that activation checks can compare exactly.
    by_name = {p.name: p for p in parameters}
    out = []
    for p in parameters:
        cond = p.condition
        if cond is not None:
            parent = by_name[cond.parent]
            values = tuple(_check_value(parent, v, "condition") for v in cond.values)
            p = ParameterConfig(p.name, p.domain, Condition(cond.parent, values))
        out.append(p)
    return out


def _topological(parameters: Sequence[ParameterConfig]) -> list[ParameterConfig]:
    # Stable: roots keep their order; each child follows right after its subtree's parent
    # chain is placed. Acyclicity was checked before.
    placed: dict[str, ParameterConfig] = {}
    by_name = {p.name: p for p in parameters}

    def place(p: ParameterConfig) -> None:
        if p.name in placed:
            return
        if p.condition is not None:
            place(by_name[p.condition.parent])
        placed[p.name] = p

    for p in parameters:
        place(p)
    return list(placed.values())
