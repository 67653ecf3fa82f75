"""The Lua scripts of the Redis stores, kept as files in ``worker/store/lua/``.

Every step that must change several keys together is one Lua script, which
Redis runs atomically.  Each file starts with comments naming its KEYS, ARGV
and reply.  A line ``-- include: <file>`` stands for that file's text (the
functions several scripts share); each file is included once.  Constants a
script uses (``IDENTIFY_CODE``, ``HEADROOM``) are set by the module that loads
it, as ``local NAME = value`` lines in front of the text, so that Python and
Lua read the same value.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

LUA_DIR = Path(__file__).with_name("lua")

_INCLUDE = re.compile(r"^-- include: (\S+)\n", re.MULTILINE)


def source(name: str, **constants: str | float) -> str:
    """The text of ``lua/<name>`` with its includes expanded, after the given constants."""
    head = "".join(f"local {key} = {_literal(value)}\n" for key, value in constants.items())
    return head + _expanded(name)


@cache
def _expanded(name: str) -> str:
    included: set[str] = set()

    def expand(match: re.Match[str]) -> str:
        if match.group(1) in included:
            return ""
        included.add(match.group(1))
        return _INCLUDE.sub(expand, (LUA_DIR / match.group(1)).read_text())

    return _INCLUDE.sub(expand, (LUA_DIR / name).read_text())


def _literal(value: str | float) -> str:
    if isinstance(value, str):
        if not re.fullmatch(r"[A-Za-z0-9_.:-]*", value):
            raise ValueError(f"a Lua constant must be a plain word, got {value!r}")
        return f"'{value}'"
    return repr(value)
