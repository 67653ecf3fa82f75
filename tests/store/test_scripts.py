"""Each Lua script names its KEYS and ARGV as locals, exactly as worker/store/scripts.py declares them.

A script opens (after its comments and includes) with one line per key and
argument: ``local lane = KEYS[1]``, ``local now = tonumber(ARGV[4])``, or
``local people = slice(ARGV, 6, #ARGV)`` for a variable part; its body uses
only those names.  These tests read the files as text: no Redis needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

import pytest

from worker.store import scripts

_FIXED = re.compile(r"^local (\w+) = (?:tonumber\()?(KEYS|ARGV)\[(\d+)\]\)?$")
_SLICE = re.compile(r"^local (\w+) = slice\((KEYS|ARGV), [^,()]+, [^,()]+\)$")
_INCLUDE = re.compile(r"^-- include: (\S+)$")


@dataclass
class Declared:
    """What a file's opening lines name: its keys and arguments in order, which are slices, and the body after them."""

    keys: list[str]
    args: list[str]
    slices: set[str]
    body: list[str]


def _code(line: str) -> str:
    """A line without its comment (no script has '--' inside a string)."""
    return line.split("--", 1)[0].strip()


def read(file: str) -> Declared:
    declared = Declared([], [], set(), [])
    positions = {"KEYS": 0, "ARGV": 0}
    opening = True
    for line in (scripts.LUA_DIR / file).read_text().splitlines():
        code = _code(line)
        if not code:
            continue
        fixed, sliced = _FIXED.match(code), _SLICE.match(code)
        if opening and (fixed or sliced):
            name, table = (fixed or sliced).group(1, 2)  # type: ignore[union-attr]
            positions[table] += 1
            if fixed:
                assert int(fixed.group(3)) == positions[table], f"{file}: {name} is {table}[{fixed.group(3)}], after {positions[table] - 1}"
                assert not (declared.slices & set(declared.keys if table == "KEYS" else declared.args)), (
                    f"{file}: {name} comes after a variable part of {table}: its place is not a fixed number"
                )
            else:
                declared.slices.add(name)
            (declared.keys if table == "KEYS" else declared.args).append(name)
        else:
            opening = False
            declared.body.append(code)
    return declared


def included_files() -> set[str]:
    found: set[str] = set()
    for script in scripts.ALL:
        for line in (scripts.LUA_DIR / script.file).read_text().splitlines():
            if match := _INCLUDE.match(line):
                found.add(match.group(1))
    return found


@pytest.mark.parametrize("script", scripts.ALL, ids=lambda script: script.file)
def test_a_script_names_its_keys_and_arguments_as_declared(script):
    declared = read(script.file)
    assert tuple(declared.keys) == script.keys.names, f"{script.file}: KEYS named in the file vs worker/store/scripts.py"
    assert tuple(declared.args) == script.args.names, f"{script.file}: ARGV named in the file vs worker/store/scripts.py"
    assert declared.slices == script.keys.lists | script.args.lists, f"{script.file}: the variable parts are the names declared as lists"


@pytest.mark.parametrize("script", scripts.ALL, ids=lambda script: script.file)
def test_a_scripts_body_uses_only_the_names(script):
    body = read(script.file).body
    assert body, f"{script.file}: no body after the keys and arguments"
    used = [line for line in body if re.search(r"\b(KEYS|ARGV)\b", line)]
    assert not used, f"{script.file}: KEYS or ARGV used after the opening locals: {used}"


def test_every_file_is_a_declared_script_or_included_by_one():
    files = {path.name for path in scripts.LUA_DIR.glob("*.lua")}
    declared = [script.file for script in scripts.ALL]
    assert len(declared) == len(set(declared)), "a file declared twice"
    assert set(declared) <= files
    assert files == set(declared) | included_files()
    assert not set(declared) & included_files(), "a script is never included in another"


@pytest.mark.parametrize("file", sorted(included_files()))
def test_an_included_file_reads_no_keys_or_arguments(file):
    text = "\n".join(_code(line) for line in (scripts.LUA_DIR / file).read_text().splitlines())
    assert not re.search(r"\b(KEYS|ARGV)\b", text), f"{file} is included: its functions take what they use as parameters"


# -- passing keys and arguments by name ------------------------------------------------------


class _Keys(TypedDict):
    first: str
    rest: list[str]


class _Args(TypedDict):
    one: int
    two: str


class _Optional(_Args, total=False):
    three: int
    four: int


def test_names_become_keys_and_arguments_in_their_declared_order_lists_spread():
    script = scripts.Script("unused.lua", _Keys, _Args)
    ks, args = script.flat({"rest": ["b", "c"], "first": "a"}, {"two": "x", "one": 1})
    assert (list(ks), list(args)) == (["a", "b", "c"], [1, "x"])


def test_optional_names_left_out_leave_nothing_in_their_place():
    script = scripts.Script("unused.lua", _Keys, _Optional)
    assert list(script.args.flat({"one": 1, "two": "x"})) == [1, "x"]
    assert list(script.args.flat({"one": 1, "two": "x", "three": 3, "four": 4})) == [1, "x", 3, 4]
    with pytest.raises(KeyError):
        script.args.flat({"one": 1})  # a required name is never left out


def test_optional_names_come_last():
    class Misplaced(_Optional):
        five: int

    with pytest.raises(TypeError, match="come last"):
        scripts.Script("unused.lua", _Keys, Misplaced)
