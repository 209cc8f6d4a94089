"""The contract of each Lua script of :mod:`._redis`: the names of its KEYS and ARGV, once.

A :class:`Script` declares the names of a script's keys and arguments in their order. Python
builds ``KEYS`` and ``ARGV`` by those names (:meth:`Script.call_args`), and the text sent to
Redis starts with a generated preamble (:meth:`Script.preamble`) that gives the script the same
names::

    local k = {study = KEYS[1], trials = KEYS[2], ...}   -- k.<key name>
    local a = {uid = ARGV[1], count = ARGV[2], ...}      -- a.<argument name>

so a script body says ``k.trials`` and ``a.uid``, never ``KEYS[2]`` or ``ARGV[1]``, and adding
a key or an argument renumbers nothing. Trailing variadic keys or arguments (``varkeys``,
``varargs``) become one more field of ``k`` or ``a``: a Lua array of the rest, in order.

Key names are the attribute names of :class:`._keys.StudyKeys` wherever the key is one of a
study's, so :meth:`Script.call_args` takes the ``study_keys(namespace, study_id)`` of the study
and finds each key by name; keys that are no attribute (the set of a trial's state, the
namespace's spec accounting) are given by name in a mapping. Every key of a script shares one
hash tag, as Redis Cluster needs (``tests/store/test_lua_contract.py`` checks it, and that each
body uses exactly the names it declares).
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

from hyperdial_server.store._keys import StudyKeys

#: A value passed in ARGV (redis-py sends an int as its decimal text).
Arg = str | int

# The default of a generated call builder's parameters: not an argument's type.
_MISSING = object()
# The exact types of an argument.
_ARG_TYPES = frozenset((str, int))
# ``more_keys`` of a call that gives none.
_NO_KEYS: Mapping[str, str | Sequence[str]] = {}

#: The first line of a script that uses the shared functions of ``lua/_lib.lua``.
USES_LIB = "-- uses: _lib\n"

# Attributes of StudyKeys that name a key (not ``state``, a method, nor ``all``).
_STUDY_KEY_NAMES = frozenset(f.name for f in dataclasses.fields(StudyKeys))

_LUA_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LUA_KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or repeat return "
    "then true until while".split()
)
# Names the generated call builder (``_compile``) uses for itself: an argument of one of these
# names would be shadowed there and sent wrong.
_BUILDER_NAMES = frozenset(("keys", "more_keys", "unknown", "values", "given"))


def _check_names(script: str, kind: str, names: Sequence[str]) -> None:
    """Names a script's preamble can turn into Lua table fields (``k.name``), each once."""
    for name in names:
        if not _LUA_NAME_RE.fullmatch(name) or name in _LUA_KEYWORDS or keyword.iskeyword(name):
            raise ValueError(f"script {script}: {kind} name {name!r} is no Lua field name")
    if len(set(names)) != len(names):
        raise ValueError(f"script {script}: {kind} names repeat: {names}")
    if kind == "argument" and _BUILDER_NAMES & set(names):
        taken = sorted(_BUILDER_NAMES & set(names))
        raise ValueError(f"script {script}: argument names {taken} are the call builder's own")


def _lua_table(
    var: str, source: str, names: Sequence[str], rest: str | None, *, only_rest: bool = False
) -> str:
    """``local <var> = {name = <source>[1], ...}``, plus the array ``<var>.<rest>`` of
    ``<source>[len(names) + 1 ..]`` when there is a variadic tail (with ``only_rest``, that
    array alone)."""
    fields = [] if only_rest else [f"  {n} = {source}[{i}]," for i, n in enumerate(names, 1)]
    if rest is not None:
        fields.append(f"  {rest} = {{}},")
    lines = [f"local {var} = {{", *fields, "}"]
    if rest is not None:
        first = len(names) + 1
        lines.append(
            f"for i = {first}, #{source} do {var}.{rest}[i - {len(names)}] = {source}[i] end"
        )
    return "\n".join(lines)


# ``a.<name>`` in Lua code: an argument of the preamble's ``a`` (``tests/store/
# test_lua_contract.py`` checks that no body declares an ``a`` of its own).
_ARG_USE = re.compile(r"(?<![\w.])a\.(\w+)\b")
# Where each ``local function <name>(`` of ``_lib.lua`` starts, with the comment above it.
_LIB_FUNCTION = re.compile(r"(?:^--[^\n]*\n)*^local function (\w+)\(", re.MULTILINE)


def _lib_for(body: str) -> str:
    """The functions of ``lua/_lib.lua`` that ``body`` calls, directly or through one another,
    in the file's order (each local function is a closure Redis makes on every call)."""
    lib = _lua_file("_lib")
    starts = list(_LIB_FUNCTION.finditer(lib))
    ends = [m.start() for m in starts[1:]] + [len(lib)]
    functions = {m.group(1): lib[m.start() : end] for m, end in zip(starts, ends, strict=True)}
    needed: set[str] = set()
    todo = [body]
    while todo:
        text = todo.pop()
        for name, code in functions.items():
            if name not in needed and re.search(rf"(?<![\w.]){name}\(", text):
                needed.add(name)
                todo.append(code)
    return "".join(code for name, code in functions.items() if name in needed) + "\n"


@dataclasses.dataclass(frozen=True)
class Script:
    """The names of a Lua script's KEYS and ARGV, in the order Redis receives them.

    Attributes:
        name: The script's file, ``lua/<name>.lua``.
        keys: The names of its keys: attributes of :class:`._keys.StudyKeys` for a study's
            keys, else names given in a mapping to :meth:`call_args`.
        args: The names of its arguments.
        varkeys: The name of the keys after ``keys`` (a Lua array ``k.<varkeys>``), or
            ``None`` for a script that takes exactly ``keys``.
        varargs: The name of the arguments after ``args`` (a Lua array ``a.<varargs>``), or
            ``None`` for a script that takes exactly ``args``.

    Raises:
        ValueError: A name is no Lua field name, or repeats among the keys or the arguments.
    """

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...] = ()
    varkeys: str | None = None
    varargs: str | None = None
    # Set in __post_init__: every key and argument name, and the call builder of a script
    # whose keys are all a study's (see ``_compile``), which every store call goes through.
    _key_names: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _arg_names: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _compiled: Callable[..., tuple[list[str], list[Arg]]] | None = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _check_names(self.name, "key", (*self.keys, *filter(None, [self.varkeys])))
        _check_names(self.name, "argument", (*self.args, *filter(None, [self.varargs])))
        # Looked up on every call (the hot path of every store call): computed once.
        set_ = object.__setattr__
        set_(self, "_key_names", frozenset((*self.keys, *filter(None, [self.varkeys]))))
        set_(self, "_arg_names", frozenset((*self.args, *filter(None, [self.varargs]))))
        set_(self, "_compiled", _compile(self))

    @property
    def call_args(self) -> Callable[..., tuple[list[str], list[Arg]]]:
        """Builds ``KEYS`` and ``ARGV`` of a call by name: see :meth:`build`, which this is
        (or a function generated from the declaration that answers the same, faster, for a
        script whose keys all come from a study's :class:`._keys.StudyKeys`)."""
        return self.build if self._compiled is None else self._compiled

    def build(
        self,
        keys: StudyKeys | Mapping[str, str],
        more_keys: Mapping[str, str | Sequence[str]] | None = None,
        /,
        **args: Arg | Sequence[Arg],
    ) -> tuple[list[str], list[Arg]]:
        """``KEYS`` and ``ARGV`` of a call, built by name.

        Args:
            keys: Where keys are found by name: a study's :class:`._keys.StudyKeys` (by
                attribute), or a mapping.
            more_keys: Keys that are not in ``keys`` (the set of a trial's state, say), and the
                list of variadic keys under the ``varkeys`` name.
            **args: Every argument by its name; the variadic ones as a sequence under the
                ``varargs`` name.

        Returns:
            The keys and the arguments, in the declared order.

        Raises:
            TypeError: An argument or a key of ``more_keys`` is missing, not declared, or of
                the wrong kind (a sequence for a single value, or the other way round).
            KeyError: A declared key is found neither in ``more_keys`` nor in ``keys``.
        """
        more = _NO_KEYS if more_keys is None else more_keys
        if more and not more.keys() <= self._key_names:
            extra = set(more) - self._key_names
            raise TypeError(f"script {self.name} takes no keys {sorted(extra)}")
        built: list[str] = []
        for name in self.keys:
            if name in more:
                built.append(_key(self.name, name, more[name]))
            elif isinstance(keys, StudyKeys):
                if name not in _STUDY_KEY_NAMES:
                    raise KeyError(f"script {self.name}: key {name!r} is no key of a study")
                built.append(getattr(keys, name))
            else:
                built.append(keys[name])
        if self.varkeys is not None:
            if self.varkeys not in more:
                raise TypeError(f"script {self.name} needs its keys {self.varkeys!r}")
            built += [
                _key(self.name, self.varkeys, v)
                for v in _many(self.name, self.varkeys, more[self.varkeys])
            ]
        if args.keys() != self._arg_names:
            names = self._arg_names
            raise TypeError(
                f"script {self.name}: missing arguments {sorted(names - set(args))}, unknown "
                f"ones {sorted(set(args) - names)}"
            )
        values: list[Arg] = [_arg(self.name, n, args[n]) for n in self.args]
        if self.varargs is not None:
            values += _many(self.name, self.varargs, args[self.varargs])
        return built, values

    def preamble(self) -> str:
        """The Lua that names the script's KEYS (table ``k``) and variadic ARGV (``a.<name>``).

        Single arguments need no table: :meth:`source` writes ``a.<name>`` of the body as
        ``ARGV[i]`` (a table of them cost about half a microsecond of Redis time per call).
        """
        parts = [
            f"-- Generated from hyperdial_server/store/_scripts.py ({self.name}): KEYS by name;"
            " the body's a.<name> is ARGV[i].",
            _lua_table("k", "KEYS", self.keys, self.varkeys),
        ]
        if self.args:
            parts.append(
                "-- " + ", ".join(f"a.{n} = ARGV[{i}]" for i, n in enumerate(self.args, 1))
            )
        if self.varargs is not None:
            parts.append(_lua_table("a", "ARGV", self.args, self.varargs, only_rest=True))
        return "\n".join(parts) + "\n"

    def body(self) -> str:
        """The text of ``lua/<name>.lua``, as written."""
        return _lua_file(self.name)

    def source(self) -> str:
        """The text Redis runs, all one script (so one atomic EVALSHA): the preamble, then the
        functions of ``lua/_lib.lua`` the body calls (directly or through one another) if its
        first line is ``-- uses: _lib``, then the body with each ``a.<name>`` of a single
        argument written ``ARGV[i]``. Line numbers within the body are kept."""
        body = self.body()
        lib = _lib_for(body) if body.startswith(USES_LIB) else ""
        position = {name: i for i, name in enumerate(self.args, 1)}
        body = _ARG_USE.sub(
            lambda m: f"ARGV[{position[m.group(1)]}]" if m.group(1) in position else m.group(),
            body,
        )
        return self.preamble() + lib + body


def _lua_file(name: str) -> str:
    return (
        resources.files("hyperdial_server.store")
        .joinpath("lua")
        .joinpath(f"{name}.lua")
        .read_text()
    )


def _compile(script: Script) -> Callable[..., tuple[list[str], list[Arg]]] | None:
    """A function that answers what ``script.build`` answers, generated from the declaration
    (as ``dataclasses`` generates ``__init__``): keyword-only parameters named after the
    arguments (Python itself refuses a missing or unknown one) and the study's keys read as
    attributes, so a call costs about a third of the generic build. Any call it does not
    cover (keys from a mapping or ``more_keys``) goes to ``script.build``.

    ``None`` for a script with keys that do not come from a study (or variadic keys).
    """
    if script.varkeys is not None or not set(script.keys) <= _STUDY_KEY_NAMES:
        return None
    # Every name was checked to be an identifier that is no Lua or Python keyword. A missing
    # argument stays MISSING (whose type fails the check) and an unknown one lands in
    # ``unknown``: both go to ``build``, for its message naming the script.
    params = [*script.args, *filter(None, [script.varargs])]
    given = ", ".join(f"{n}={n}" for n in params)
    named = [f"{n}=MISSING" for n in params]
    signature = ", ".join(["keys", "more_keys=None", "/", *(["*", *named] if named else [])])
    variadic = script.varargs
    source = (
        f"def call_args({signature}, **unknown):\n"
        f"    values = [{', '.join(script.args)}]\n"
        "    if (more_keys is not None or type(keys) is not StudyKeys or unknown\n"
        "            or not set(map(type, values)) <= ARG_TYPES"
        + ("" if variadic is None else f" or {variadic} is MISSING")
        + "):\n"
        f"        given = dict({given})\n"
        "        given = {n: v for n, v in given.items() if v is not MISSING}\n"
        "        return build(keys, more_keys, **given, **unknown)\n"
        + ("" if variadic is None else f"    values += many({variadic})\n")
        + f"    return [{', '.join(f'keys.{n}' for n in script.keys)}], values\n"
    )
    scope: dict[str, Any] = {
        "MISSING": _MISSING,
        "StudyKeys": StudyKeys,
        "ARG_TYPES": _ARG_TYPES,
        "build": script.build,
        "many": lambda value: _many(script.name, script.varargs or "", value),
    }
    exec(source, scope)  # noqa: S102 - text built above from checked identifiers only
    compiled: Callable[..., tuple[list[str], list[Arg]]] = scope["call_args"]
    return compiled


def _key(script: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"script {script}: key {name!r} must be one key name, not {value!r}")
    return value


def _arg(script: str, name: str, value: object) -> Arg:
    # bool is an int, but True would go to Redis as "1": refused as a likely mistake.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"script {script}: argument {name!r} must be one value, not {value!r}")
    return value


def _many(script: str, name: str, value: object) -> list[Arg]:
    # A str is a sequence too: refused, as it would send one value per character.
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"script {script}: {name!r} must be a list or a tuple, not {value!r}")
    return [_arg(script, name, v) for v in value]


# --- the scripts -------------------------------------------------------------------------------

#: Every key of a study but ``deleted`` (the order of ``StudyKeys.all``).
STUDY = (
    "study",
    "trials",
    "numbers",
    "waiting",
    "running",
    "completed",
    "failed",
    "queue",
    "claims",
    "scores",
    "leases",
    "reissue",
    "expired",
    "owners",
    "holders",
    "requests",
    "request_times",
    "stopped",
    "es_state",
    "es_curves",
    "es_steps",
    "es_rungs",
    "changes",
    "infeasible",
    "front",
)
#: The keys of the reading scripts, which expire due leases first (``expire_due`` of _lib, which
#: gives each expired trial a revision: ``changes``).
EXPIRY = (
    "study",
    "trials",
    "running",
    "failed",
    "leases",
    "expired",
    "reissue",
    "owners",
    "holders",
    "changes",
)
#: The keys the two scripts that hand out trials share, after their own.
ASK = (
    "claims",
    "leases",
    "reissue",
    "failed",
    "expired",
    "owners",
    "holders",
    "requests",
    "request_times",
    "changes",
)
#: The arguments of a call with a request id: the id ('' for none), the time, the time until
#: which its record is kept, and the fingerprint of the call's payload ('' for no check).
REQUEST = ("rid", "now", "until_time", "fingerprint")
#: The arguments of lease expiry before a script's work: the time, the expiry's patch layer and
#: the most leases to expire.
EXPIRE = ("now", "expiry_patch", "expire_batch")

CREATE_STUDY = Script("create_study", STUDY, ("record", "uid", *REQUEST))
GET_STUDY = Script(
    "get_study",
    ("study", "waiting", "running", "completed", "failed", "stopped", "infeasible"),
)
#: The namespace's spec accounting (``_keys.spec_bytes``), in the slot of its study index.
SPEC_BYTES = Script("spec_bytes", ("spec_bytes", "spec_total"), ("study_id", "size", "budget"))
DELETE_STUDY = Script(
    "delete_study", (*STUDY, "deleted"), ("rid", "now", "until_time", "ttl_ms", "fingerprint")
)
CLAIM_TRIALS = Script(
    "claim_trials",
    ("study", "trials", "queue", "waiting", "running", *ASK),
    (
        "uid",
        "count",
        "capacity",
        "max_trials",
        "now",
        "claim_deadline",
        "token",
        "patch",
        "lease",
        "client_id",
        "expiry_patch",
        "expire_batch",
        "rid",
        "attempt",
        "until_time",
        "handed",
        "fingerprint",
    ),
)
COMMIT_TRIALS = Script(
    "commit_trials",
    (
        "study",
        "trials",
        "numbers",
        "running",
        "claims",
        "leases",
        "owners",
        "holders",
        "requests",
        "request_times",
        "changes",
    ),
    ("uid", "token", "lease", "client_id", "rid", "attempt", "until_time", "handed", "now"),
    varargs="slots",
)
RENEW_CLAIM = Script(
    "renew_claim",
    ("study", "claims", "requests", "request_times"),
    ("uid", "token", "deadline", "rid", "attempt", "until_time"),
    varargs="slots",
)
RESERVE_INDICES = Script("reserve_indices", ("study",), ("uid", "count"))
COMMIT_RESERVED = Script(
    "commit_reserved",
    ("study", "trials", "numbers", "running", "queue", *ASK),
    ("uid", "lease", "client_id", "expiry_patch", "expire_batch", "max_trials", *REQUEST),
    varargs="bodies",
)
CREATE_TRIAL = Script(
    "create_trial",
    # ``state``: the sorted set of the new trial's state (``StudyKeys.state``).
    (
        "study",
        "trials",
        "numbers",
        "state",
        "queue",
        "scores",
        "requests",
        "request_times",
        "leases",
        "changes",
        "front",
    ),
    ("body", "state", "score", "front_vector", "uid", *REQUEST),
)
COMPLETE_TRIAL = Script(
    "complete_trial",
    (
        "study",
        "trials",
        "waiting",
        "running",
        "completed",
        "failed",
        "stopped",
        "infeasible",
        "scores",
        "leases",
        "expired",
        "reissue",
        "owners",
        "holders",
        "requests",
        "request_times",
        "es_state",
        "changes",
        "front",
    ),
    (
        "number",
        "state",
        "patch",
        "stop",
        "score",
        "score_member",
        "front_vector",
        "uid",
        *REQUEST,
    ),
)
HEARTBEAT_TRIAL = Script(
    "heartbeat_trial",
    (
        "study",
        "trials",
        "waiting",
        "running",
        "completed",
        "failed",
        "stopped",
        "infeasible",
        "leases",
        "expired",
        "reissue",
        "owners",
        "holders",
        "changes",
    ),
    ("number", "now", "lease", "expiry_patch"),
)
EXPIRE_LEASES = Script("expire_leases", EXPIRY, EXPIRE)
GET_TRIAL = Script("get_trial", (*EXPIRY, "es_curves"), ("number", "curve", *EXPIRE))
LIST_TRIALS = Script(
    "list_trials",
    (*EXPIRY, "es_curves"),
    ("after", "after_revision", "page_size", "curve", *EXPIRE),
    varkeys="sources",
)
BEST_TRIAL = Script("best_trial", ("study", "trials", "scores", "changes"))
PARETO_FRONT = Script(
    "pareto_front", ("study", "trials", "completed", "stopped", "front", "changes")
)
#: The pairs ``members`` are ``<number>, <front vector text>`` of each trial on the front.
INSTALL_FRONT = Script(
    "install_front", ("study", "completed", "stopped", "front"), ("uid", "seen"), varargs="members"
)
MODEL_HISTORY = Script(
    "model_history",
    (*EXPIRY, "numbers", "scores", "front"),
    ("best", "by", "recent", "running_limit", *EXPIRE),
)
ADD_MEASUREMENT = Script(
    "add_measurement",
    (
        "study",
        "trials",
        "waiting",
        "running",
        "completed",
        "failed",
        "stopped",
        "infeasible",
        "scores",
        "leases",
        "expired",
        "reissue",
        "owners",
        "holders",
        "requests",
        "request_times",
        "es_state",
        "es_curves",
        "es_steps",
        "es_rungs",
        "changes",
        "front",
    ),
    (
        "number",
        "uid",
        "lease",
        "expiry_patch",
        "step",
        "step_key",
        "report_values",
        "curve",
        "cap",
        "mode",
        "rule",
        "value",
        "sortable",
        "min_delta",
        "decides",
        "percentile",
        "min_trials",
        "what",
        "sign",
        "bracket",
        "reached",
        "eta",
        "threshold",
        "patience",
        "min_delta_text",
        "stop_head",
        "score",
        "score_member",
        "front_vector",
        *REQUEST,
    ),
)
CHECK_EARLY_STOPPING = Script("check_early_stopping", ("study", "trials", "es_state"), ("number",))

PERCENTILE_VALUES = Script(
    "percentile_values", ("stopped", "es_state", "es_steps"), ("max_steps",), varargs="numbers"
)

RUNG_VALUES = Script("rung_values", ("es_state", "es_rungs"), (), varargs="numbers")

#: Every script, registered with Redis once per store.
SCRIPTS: tuple[Script, ...] = (
    CREATE_STUDY,
    GET_STUDY,
    SPEC_BYTES,
    DELETE_STUDY,
    CLAIM_TRIALS,
    COMMIT_TRIALS,
    RENEW_CLAIM,
    RESERVE_INDICES,
    COMMIT_RESERVED,
    CREATE_TRIAL,
    COMPLETE_TRIAL,
    GET_TRIAL,
    LIST_TRIALS,
    BEST_TRIAL,
    PARETO_FRONT,
    INSTALL_FRONT,
    MODEL_HISTORY,
    HEARTBEAT_TRIAL,
    EXPIRE_LEASES,
    ADD_MEASUREMENT,
    CHECK_EARLY_STOPPING,
    PERCENTILE_VALUES,
    RUNG_VALUES,
)
