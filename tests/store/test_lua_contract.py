"""The Lua scripts and their declarations in ``store/_scripts.py`` agree: a body uses exactly the
key and argument names its declaration gives (itself or through the ``_lib.lua`` functions it
calls), never ``KEYS``/``ARGV`` by number, and every key of a call shares one hash tag (one
Redis Cluster slot). The Lua is read with regular expressions, which its plain style allows."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pytest

from hyperdial_server.store._keys import StudyKeys, spec_bytes, study_keys
from hyperdial_server.store._scripts import (
    CLAIM_TRIALS,
    COMMIT_TRIALS,
    CREATE_TRIAL,
    LIST_TRIALS,
    SCRIPTS,
    SPEC_BYTES,
    USES_LIB,
    Arg,
    Script,
)

_LUA = resources.files("hyperdial_server.store").joinpath("lua")
_LIB = _LUA.joinpath("_lib.lua").read_text()

# A comment or a one-line string literal, whichever starts first (so a quote in a comment, or
# "--" in a string, is read as Lua reads it).
_NOT_CODE = re.compile(r"--[^\n]*|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"")
_FUNCTION = re.compile(r"^local function (\w+)\(", re.MULTILINE)
_KEY_USE = re.compile(r"(?<![\w.])k\.(\w+)")
_ARG_USE = re.compile(r"(?<![\w.])a\.(\w+)")
_BY_NUMBER = re.compile(r"\b(?:KEYS|ARGV)\b")
_SHADOW = re.compile(r"\blocal\s+(?:function\s+)?(?:k|a)\b|\bfunction\s*\(\s*(?:k|a)\b")
_STUDY_KEY_NAMES = {f.name for f in dataclasses.fields(StudyKeys)}


def _code(text: str) -> str:
    """Lua text without comments and string literals: what names code uses."""
    return _NOT_CODE.sub(lambda m: "" if m.group().startswith("--") else "''", text)


def _lib_functions(lib: str) -> dict[str, str]:
    """The code of each ``local function`` of ``_lib.lua``, by name."""
    starts = list(_FUNCTION.finditer(lib))
    ends = [m.start() for m in starts[1:]] + [len(lib)]
    return {m.group(1): _code(lib[m.start() : end]) for m, end in zip(starts, ends, strict=True)}


def _calls(code: str, functions: dict[str, str]) -> set[str]:
    """The ``_lib`` functions ``code`` calls, directly or through one another."""
    found: set[str] = set()
    todo = [code]
    while todo:
        text = todo.pop()
        for name, body in functions.items():
            if name not in found and re.search(rf"(?<![\w.]){name}\(", text):
                found.add(name)
                todo.append(body)
    return found


def contract_problems(script: Script, body: str, lib: str = _LIB) -> list[str]:
    """What is wrong between a script's ``body`` and its declaration (empty: nothing).

    The names a body uses are those in its own code plus those in the code of the ``_lib``
    functions it calls: their ``k`` is the script's table.
    """
    problems = []
    if _BY_NUMBER.search(body):
        problems.append("uses KEYS or ARGV: name keys and arguments (k.<name>, a.<name>)")
    code = _code(body)
    if _SHADOW.search(code):
        problems.append("declares its own k or a, hiding the preamble's")
    functions = _lib_functions(lib)
    called = _calls(code, functions)
    if called and not body.startswith(USES_LIB):
        problems.append(f"calls _lib functions {sorted(called)} without '-- uses: _lib'")
    keys = set(_KEY_USE.findall(code))
    for name in called:
        keys |= set(_KEY_USE.findall(functions[name]))
    args = set(_ARG_USE.findall(code))
    declared_keys = {*script.keys, *filter(None, [script.varkeys])}
    declared_args = {*script.args, *filter(None, [script.varargs])}
    for kind, used, declared in (
        ("key", keys, declared_keys),
        ("argument", args, declared_args),
    ):
        if used - declared:
            problems.append(f"uses {kind}s it does not declare: {sorted(used - declared)}")
        if declared - used:
            problems.append(f"declares {kind}s it does not use: {sorted(declared - used)}")
    return problems


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_body_uses_exactly_the_declared_names(script: Script) -> None:
    assert contract_problems(script, script.body()) == []


def test_lib_names_keys_only() -> None:
    assert not _BY_NUMBER.search(_LIB)
    assert not _ARG_USE.search(_code(_LIB)), "_lib functions take what they need as arguments"
    # Every name _lib reads from ``k`` is a key of a study (scripts pass their k as it is).
    assert set(_KEY_USE.findall(_code(_LIB))) <= _STUDY_KEY_NAMES


def test_every_script_file_is_declared() -> None:
    files = {p.name[: -len(".lua")] for p in _LUA.iterdir() if p.name.endswith(".lua")}
    assert files - {"_lib"} == {s.name for s in SCRIPTS}
    assert len({s.name for s in SCRIPTS}) == len(SCRIPTS)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("return {redis.call('GET', k.study), a.uid}", "declares keys it does not use"),
        ("return {k.study, k.trials, a.uid, a.count}", "uses keys it does not declare"),
        ("return {k.study, a.uid, a.count, a.other}", "uses arguments it does not declare"),
        ("return {k.study, k.spare, a.uid}", "declares arguments it does not use"),
        ("return {k.study, k.spare, a.uid, a.count, KEYS[1]}", "uses KEYS or ARGV"),
        ("return {k.study, k.spare, a.uid, ARGV[2]}", "uses KEYS or ARGV"),
        # Through a _lib function: open_study reads k.study, record_request k.requests...
        ("-- uses: _lib\nopen_study(k, a.uid)\nreturn {k.spare, a.count}", None),
        ("open_study(k, a.uid)\nreturn {k.spare, a.count}", "without '-- uses: _lib'"),
        (
            "-- uses: _lib\nrecord_request(k, a.uid, '', a.count)\nreturn {k.study, k.spare}",
            "uses keys",
        ),
        ("local k = {}\nreturn {k.study, k.spare, a.uid, a.count}", "declares its own k"),
        # Names in comments and strings do not count.
        ("-- k.other a.other\nreturn {k.study, k.spare, a.uid, a.count, 'k.x'}", None),
    ],
)
def test_the_check_finds_each_kind_of_mismatch(body: str, problem: str | None) -> None:
    script = Script("example", ("study", "spare"), ("uid", "count"))
    problems = contract_problems(script, body)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def _sample_call(script: Script) -> list[str]:
    """The keys of a call of ``script`` on one study (or, for the spec accounting, on one
    namespace), every argument a placeholder."""
    args: dict[str, Arg | list[Arg]] = {name: "x" for name in script.args}
    if script.varargs is not None:
        args[script.varargs] = ["x", "y"]
    if script is SPEC_BYTES:
        hash_key, total_key = spec_bytes("ns")
        keys, _ = script.call_args({"spec_bytes": hash_key, "spec_total": total_key}, **args)
        return keys
    study = study_keys("ns", "s1")
    more: dict[str, str | list[str]] = {}
    for name in script.keys:
        if name not in _STUDY_KEY_NAMES:  # e.g. create_trial's set of the trial's state
            more[name] = study.waiting
    if script.varkeys is not None:
        more[script.varkeys] = [study.completed, study.failed]
    keys, _ = script.call_args(study, more, **args)
    return keys


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_every_key_of_a_call_shares_one_hash_tag(script: Script) -> None:
    keys = _sample_call(script)
    tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
    assert len(keys) == len(script.keys) + (2 if script.varkeys else 0)
    assert tags == ({"ns"} if script is SPEC_BYTES else {"ns/s1"})


def test_keys_and_args_are_built_in_declared_order() -> None:
    study = study_keys("ns", "s1")
    keys, args = COMMIT_TRIALS.call_args(
        study,
        uid="u",
        token="t",
        lease="1.0",
        client_id="c",
        rid="r",
        attempt="p",
        until_time="2.0",
        handed="",
        now="0.5",
        slots=["3", "{}"],
    )
    assert keys == [getattr(study, name) for name in COMMIT_TRIALS.keys]
    assert args == ["u", "t", "1.0", "c", "r", "p", "2.0", "", "0.5", "3", "{}"]
    keys, args = LIST_TRIALS.call_args(
        study,
        {"sources": [study.waiting]},
        after="0",
        after_revision="7",
        page_size=5,
        curve="",
        now="",
        expiry_patch="",
        expire_batch=0,
    )
    assert keys[-1] == study.waiting and keys[0] == study.study
    assert args == ["0", "7", 5, "", "", "", 0]


def test_call_args_fail_loudly_on_a_wrong_name() -> None:
    study = study_keys("ns", "s1")
    ok: dict[str, Arg] = {"uid": "u", "count": 1}
    reserve = next(s for s in SCRIPTS if s.name == "reserve_indices")
    assert reserve.call_args(study, **ok) == ([study.study], ["u", 1])
    with pytest.raises(TypeError, match="missing arguments \\['count'\\]"):
        reserve.call_args(study, uid="u")
    with pytest.raises(TypeError, match="unknown ones \\['extra'\\]"):
        reserve.call_args(study, uid="u", count=1, extra="x")
    with pytest.raises(TypeError, match="takes no keys"):
        reserve.call_args(study, {"trials": study.trials}, **ok)
    with pytest.raises(TypeError, match="one value"):
        reserve.call_args(study, uid=["u"], count=1)
    with pytest.raises(KeyError, match="state"):  # a method of StudyKeys, not a key
        CREATE_TRIAL.call_args(study, **{name: "x" for name in CREATE_TRIAL.args})
    with pytest.raises(KeyError):
        reserve.call_args({"trials": study.trials}, **ok)
    with pytest.raises(TypeError, match="list or a tuple"):
        COMMIT_TRIALS.call_args(study, **{n: "x" for n in COMMIT_TRIALS.args}, slots="3")
    with pytest.raises(TypeError, match="needs its keys"):
        LIST_TRIALS.call_args(study, **{n: "x" for n in LIST_TRIALS.args})


def test_declarations_refuse_bad_names() -> None:
    with pytest.raises(ValueError, match="no Lua field name"):
        Script("bad", ("study",), ("until",))  # a Lua keyword: a.until does not parse
    with pytest.raises(ValueError, match="repeat"):
        Script("bad", ("study", "study"))
    with pytest.raises(ValueError, match="call builder's own"):
        Script("bad", ("study",), ("values",))  # shadowed in the generated builder


def test_preamble_names_keys_and_args_by_position() -> None:
    preamble = CLAIM_TRIALS.preamble()
    for i, name in enumerate(CLAIM_TRIALS.keys, 1):
        assert f"  {name} = KEYS[{i}],\n" in preamble
    for i, name in enumerate(CLAIM_TRIALS.args, 1):
        assert f"a.{name} = ARGV[{i}]" in preamble  # documented; no table is built
    assert "local a" not in preamble
    tail = COMMIT_TRIALS.preamble()
    assert "for i = 10, #ARGV do a.slots[i - 9] = ARGV[i] end" in tail
    # The preamble comes first, then the _lib functions the body uses, then the body with its
    # single arguments by position, line for line.
    source = CLAIM_TRIALS.source()
    assert source.startswith(preamble)
    body = CLAIM_TRIALS.body()
    ran = source[len(source) - len(source.split(USES_LIB, 1)[1]) - len(USES_LIB) :]
    assert ran.count("\n") == body.count("\n")
    for i, name in enumerate(CLAIM_TRIALS.args, 1):
        if f"a.{name}" in body:
            assert f"a.{name}" not in ran and f"ARGV[{i}]" in ran
    assert source.index("local function open_study") < source.index(ran)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_a_script_carries_only_the_lib_functions_it_calls(script: Script) -> None:
    source, body = script.source(), script.body()
    carried = set(_FUNCTION.findall(source)) - set(_FUNCTION.findall(body))
    functions = _lib_functions(_LIB)
    assert carried == _calls(_code(body), functions)
    # What Redis runs uses no a.<name> of a single argument, and the rest as declared.
    assert not set(_ARG_USE.findall(_code(source))) & set(script.args)


@pytest.mark.parametrize(
    "script", [s for s in SCRIPTS if s._compiled is not None], ids=lambda s: s.name
)
def test_a_generated_call_builder_answers_what_the_generic_one_does(script: Script) -> None:
    study = study_keys("ns", "s1")
    args: dict[str, Arg | list[Arg]] = {n: f"v-{n}" for n in script.args}
    if script.varargs is not None:
        args[script.varargs] = ["x", 3]
    assert script.call_args is not script.build
    assert script.call_args(study, **args) == script.build(study, **args)
    with pytest.raises(TypeError, match=f"script {script.name} takes no keys"):
        script.call_args(study, {"nothing": "k"}, **args)
    if not script.args:
        return
    args[script.args[0]] = 7  # an int goes as it is
    assert script.call_args(study, **args) == script.build(study, **args)
    # Anything else goes to the generic builder, whose errors name the script.
    with pytest.raises(TypeError, match=f"script {script.name}: missing"):
        script.call_args(study, **{n: v for n, v in args.items() if n != script.args[-1]})
    with pytest.raises(TypeError, match=f"script {script.name}: argument .* one value"):
        script.call_args(study, **{**args, script.args[0]: True})
