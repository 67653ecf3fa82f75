"""The Lua scripts of the Redis stores, kept as files in ``worker/store/lua/``, and their names for KEYS and ARGV.

Every step that must change several keys together is one Lua script, which
Redis runs atomically.  Each file starts with comments saying what it does
and returns, then names its keys and arguments as locals (``local lane =
KEYS[1]``), and its body uses only those names.  Each is declared once here:
a ``Script`` of the file and two TypedDicts, its keys and its arguments in the
file's order (tests/store/test_scripts.py holds the two together).  A caller
passes them by name::

    self._finish = LANE_FINISH.register(redis, IDENTIFY_CODE=code, HEADROOM=HEADROOM)
    self._finish(keys={"lane": ..., ...}, args={"person": ..., ...}, client=pipe)

An argument typed as a list stands for as many values, in its place (the
Lua side takes them with ``slice()``, lua/arguments.lua); a name a TypedDict
declares with ``total=False`` may be left out, and then so are the names
after it.

A line ``-- include: <file>`` stands for that file's text (the functions
several scripts share); each file is included once.  Constants a script uses
(``IDENTIFY_CODE``, ``HEADROOM``) are set by the module that registers it, as
``local NAME = value`` lines in front of the text, so that Python and Lua read
the same value.
"""

from __future__ import annotations

import re
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, Sequence, TypedDict, TypeVar, get_origin, get_type_hints

import redis as redis_lib
from redis.commands.core import Script as RedisScript

LUA_DIR = Path(__file__).with_name("lua")

_INCLUDE = re.compile(r"^-- include: (\S+)\n", re.MULTILINE)

K = TypeVar("K", bound=Mapping[str, Any])
A = TypeVar("A", bound=Mapping[str, Any])


class Script(Generic[K, A]):
    """A Lua file and the names of its KEYS and ARGV: the fields of ``keys`` and ``args``, in order."""

    def __init__(self, file: str, keys: type[K], args: type[A]) -> None:
        self.file = file
        self.keys = _Names(keys)
        self.args = _Names(args)

    def flat(self, keys: K, args: A) -> tuple[Sequence[Any], Sequence[Any]]:
        """KEYS and ARGV of a call, for a caller that sends EVALSHA itself."""
        return self.keys.flat(keys), self.args.flat(args)

    def source(self, **constants: str | float) -> str:
        return source(self.file, **constants)

    def register(self, redis: redis_lib.Redis, **constants: str | float) -> Registered[K, A]:
        """The script on ``redis`` (EVALSHA, loaded again when Redis answers NOSCRIPT), ``constants`` set."""
        return Registered(self, redis.register_script(self.source(**constants)))


class Registered(Generic[K, A]):
    """A script registered on a client; calling it runs it with its keys and arguments by name."""

    def __init__(self, script: Script[K, A], runner: RedisScript) -> None:
        self.script = script
        self._keys, self._args, self._runner = script.keys, script.args, runner

    def __call__(self, keys: K, args: A, client: Any = None) -> Any:
        """Run on the registered client, or on ``client`` (a pipeline queues it: its result comes with ``execute()``)."""
        return self._runner(keys=self._keys.flat(keys), args=self._args.flat(args), client=client)


class _Names:
    """A TypedDict's fields as KEYS or ARGV: their order, which are lists, which may be left out."""

    def __init__(self, declared: type) -> None:
        hints = get_type_hints(declared)
        self.names = tuple(hints)
        self.lists = frozenset(name for name, hint in hints.items() if get_origin(hint) is list)
        self.optional = frozenset(getattr(declared, "__optional_keys__", ()))
        if self.optional and not all(name in self.optional for name in self.names[len(self.names) - len(self.optional) :]):
            raise TypeError(f"{declared.__name__}: the names that may be left out come last")
        # The names before the first list or optional one are taken in one C call: this runs for every script call.
        plain = next((n for n, name in enumerate(self.names) if name in self.lists or name in self.optional), len(self.names))
        self._head = _getter(self.names[:plain])
        self._tail = self.names[plain:]

    def flat(self, values: Mapping[str, Any]) -> Sequence[Any]:
        """The values in their declared order, lists spread in place, left-out names with nothing after them."""
        if not self._tail:
            return self._head(values)
        flat = list(self._head(values))
        for name in self._tail:
            if name in self.lists:
                flat.extend(values[name])
            elif name in values or name not in self.optional:
                flat.append(values[name])
            else:
                break
        return flat


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function of a mapping to the tuple of its values for ``names`` (itemgetter returns a lone value bare)."""
    if len(names) > 1:
        return itemgetter(*names)
    return lambda values: tuple(values[name] for name in names)


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


# -- the scripts -------------------------------------------------------------------------------
# Each script's keys, then its arguments, in the order its file names them.  A key is a Redis key's
# name; "now" and "*_ms" are milliseconds, "*ttl" seconds.


class AcceptKeys(TypedDict):
    inflight: str
    counters: str
    queues: list[str]


class AcceptArgs(TypedDict):
    accepted: int
    messages: list[str]
    people: list[str | int]


ACCEPT = Script("accept.lua", AcceptKeys, AcceptArgs)


class AttributesUnholdKeys(TypedDict):
    held: str
    dead: str
    dead_index: str
    letters: str


class AttributesUnholdArgs(TypedDict):
    letter: str
    values: list[str]


ATTRIBUTES_UNHOLD = Script("attributes_unhold.lua", AttributesUnholdKeys, AttributesUnholdArgs)


class BudgetKeys(TypedDict):
    budget: str
    counters: str


class BudgetAcquireArgs(TypedDict):
    default_limit: int
    share: float
    window_ms: int
    max_wait_ms: int


BUDGET_ACQUIRE = Script("budget_acquire.lua", BudgetKeys, BudgetAcquireArgs)


class BudgetObserveArgs(TypedDict):
    limit: str
    remaining: str
    reset_s: str
    status: str
    share: float
    window_ms: int


BUDGET_OBSERVE = Script("budget_observe.lua", BudgetKeys, BudgetObserveArgs)


class ContactLinkAnonymousKeys(TypedDict):
    anonymous: str
    contact_keys: str


class ContactLinkAnonymousArgs(TypedDict):
    contact: str
    role: str
    ttl: int
    sent: str


CONTACT_LINK_ANONYMOUS = Script("contact_link_anonymous.lua", ContactLinkAnonymousKeys, ContactLinkAnonymousArgs)


class InflightRepairKeys(TypedDict):
    inflight: str
    leases: str
    lane_state: str
    counters: str
    lane: str


class InflightRepairArgs(TypedDict):
    person: str
    seen: int
    found: int
    now: int
    dispatch_ms: int


INFLIGHT_REPAIR = Script("inflight_repair.lua", InflightRepairKeys, InflightRepairArgs)


class LaneAbsorbKeys(TypedDict):
    lane: str
    deliveries: str
    counters: str
    lane_identifies: str
    attempts: str


class LaneAbsorbArgs(TypedDict):
    person: str
    absorbed: list[str]


LANE_ABSORB = Script("lane_absorb.lua", LaneAbsorbKeys, LaneAbsorbArgs)


class LaneClaimKeys(TypedDict):
    lane: str
    leases: str
    lane_state: str
    inflight: str
    deliveries: str
    attempts: str
    lane_identifies: str


class LaneClaimArgs(TypedDict):
    person: str
    delivery: str
    token: str
    now: int
    lease_ms: int
    tolerance_ms: int


LANE_CLAIM = Script("lane_claim.lua", LaneClaimKeys, LaneClaimArgs)


class LaneDropParkedKeys(TypedDict):
    parked: str
    parked_index: str
    deliveries: str
    counters: str


class LaneDropParkedArgs(TypedDict):
    person: str
    boundary: int


LANE_DROP_PARKED = Script("lane_drop_parked.lua", LaneDropParkedKeys, LaneDropParkedArgs)


class LaneExpireParkedKeys(TypedDict):
    parked_index: str
    counters: str
    deliveries: str
    dead: str
    dead_index: str


class LaneExpireParkedArgs(TypedDict):
    now: int
    hold_ms: int
    limit: int
    parked_prefix: str


LANE_EXPIRE_PARKED = Script("lane_expire_parked.lua", LaneExpireParkedKeys, LaneExpireParkedArgs)


class LaneFinishKeys(TypedDict):
    lane: str
    leases: str
    lane_state: str
    inflight: str
    deliveries: str
    counters: str
    lane_identifies: str
    parked: str
    parked_index: str
    attempts: str
    dead: str
    dead_index: str


class LaneFinishReserveKeys(LaneFinishKeys, total=False):
    budget: str


class LaneFinishArgs(TypedDict):
    person: str
    delivery: str
    outcome: str
    now: int
    dispatch_ms: int
    dead_letter: str
    token: str
    lease_ms: int


class LaneFinishReserveArgs(LaneFinishArgs, total=False):
    # With a budget key: reserve()'s arguments (BudgetAcquireArgs).
    default_limit: int
    share: float
    window_ms: int
    max_wait_ms: int


LANE_FINISH = Script("lane_finish.lua", LaneFinishReserveKeys, LaneFinishReserveArgs)


class LaneFollowingIdentifiesKeys(TypedDict):
    lane: str
    deliveries: str


class LaneFollowingIdentifiesArgs(TypedDict):
    head: str
    limit: int


LANE_FOLLOWING_IDENTIFIES = Script("lane_following_identifies.lua", LaneFollowingIdentifiesKeys, LaneFollowingIdentifiesArgs)


class LaneIngestKeys(TypedDict):
    seen: str
    lane: str
    deliveries: str
    leases: str
    lane_state: str
    inflight: str
    counters: str
    lane_identifies: str


class LaneIngestArgs(TypedDict):
    seq: int
    person: str
    now: int
    dispatch_ms: int
    seen_ttl: int
    identifies: int
    records: list[str]


LANE_INGEST = Script("lane_ingest.lua", LaneIngestKeys, LaneIngestArgs)


class LaneParkKeys(TypedDict):
    lane: str
    leases: str
    lane_state: str
    inflight: str
    counters: str
    parked: str
    parked_index: str
    attempts: str


class LaneParkArgs(TypedDict):
    person: str
    delivery: str
    now: int
    dispatch_ms: int
    hold_ms: int


LANE_PARK = Script("lane_park.lua", LaneParkKeys, LaneParkArgs)


class LaneWakeKeys(TypedDict):
    lane: str
    leases: str
    lane_state: str


class LaneWakeArgs(TypedDict):
    person: str
    now: int
    dispatch_ms: int


LANE_PROMOTE = Script("lane_promote.lua", LaneWakeKeys, LaneWakeArgs)


class LaneRenewKeys(TypedDict):
    leases: str
    lane_state: str


class LaneRenewArgs(TypedDict):
    person: str
    token: str
    deadline: int


LANE_RENEW = Script("lane_renew.lua", LaneRenewKeys, LaneRenewArgs)


class LaneReplayKeys(TypedDict):
    lane: str
    deliveries: str
    leases: str
    lane_state: str
    inflight: str
    counters: str
    lane_identifies: str
    dead: str
    dead_index: str


class LaneReplayArgs(TypedDict):
    person: str
    delivery: str
    record: str
    seq: int
    now: int
    dispatch_ms: int
    letter: str


LANE_REPLAY = Script("lane_replay.lua", LaneReplayKeys, LaneReplayArgs)


class LaneSleepKeys(TypedDict):
    lane: str
    leases: str
    lane_state: str
    counters: str
    attempts: str


class LaneSleepArgs(TypedDict):
    person: str
    delivery: str
    wake_at: int
    attempt: str


LANE_SLEEP = Script("lane_sleep.lua", LaneSleepKeys, LaneSleepArgs)


class LaneSweepKeys(TypedDict):
    leases: str
    lane_state: str
    inflight: str


class LaneSweepArgs(TypedDict):
    now: int
    dispatch_ms: int
    limit: int
    lane_prefix: str


LANE_SWEEP = Script("lane_sweep.lua", LaneSweepKeys, LaneSweepArgs)


class LaneUnparkKeys(TypedDict):
    lane: str
    leases: str
    lane_state: str
    inflight: str
    counters: str
    parked: str
    parked_index: str


LANE_UNPARK = Script("lane_unpark.lua", LaneUnparkKeys, LaneWakeArgs)


class MessageDeadLetterKeys(TypedDict):
    dead: str
    dead_index: str
    counters: str
    inflight: str
    leases: str
    lane_state: str


class MessageDeadLetterArgs(TypedDict):
    letter: str
    letter_json: str
    now: int
    dispatch_ms: int
    lane_prefix: str
    people: list[str | int]


MESSAGE_DEAD_LETTER = Script("message_dead_letter.lua", MessageDeadLetterKeys, MessageDeadLetterArgs)

#: Every script, for the test that reads each file's names against its declaration.
ALL = (
    ACCEPT,
    ATTRIBUTES_UNHOLD,
    BUDGET_ACQUIRE,
    BUDGET_OBSERVE,
    CONTACT_LINK_ANONYMOUS,
    INFLIGHT_REPAIR,
    LANE_ABSORB,
    LANE_CLAIM,
    LANE_DROP_PARKED,
    LANE_EXPIRE_PARKED,
    LANE_FINISH,
    LANE_FOLLOWING_IDENTIFIES,
    LANE_INGEST,
    LANE_PARK,
    LANE_PROMOTE,
    LANE_RENEW,
    LANE_REPLAY,
    LANE_SLEEP,
    LANE_SWEEP,
    LANE_UNPARK,
    MESSAGE_DEAD_LETTER,
)
