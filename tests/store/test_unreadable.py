"""Dead letters of messages no worker can read (worker/store/unreadable.py), against the suite's real Redis."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest

from worker.runtime import build_lanes
from worker.settings import Settings
from worker.store import keys
from worker.store.counters import Counters
from worker.store.deadletters import DeadLetters
from worker.store.unreadable import MAX_BODY_BYTES, UNDECODABLE, UnreadableMessages, kept_body, kept_headers, message_letter


@pytest.fixture
def lanes(redis):
    return build_lanes(redis, Settings(lease_seconds=1, dispatch_seconds=1, park_hold=1))


@pytest.fixture
def store(redis, lanes):
    return UnreadableMessages(redis, lanes)


def letter(body: bytes | None = b"{not json", letter_id: str = "message:tag-1", **headers) -> dict:
    return message_letter(
        f"{UNDECODABLE}: the body is not valid application/json",
        body=body,
        headers={"task": "intercom.ingest", "id": "t-1", **headers},
        content_type="application/json",
        content_encoding="utf-8",
        queue="celery",
        detail="DecodeError: Expecting property name",
        letter_id=letter_id,
    )


def test_an_unreadable_message_is_a_dead_letter_listed_with_its_reason_and_kept_once(redis, store, lanes):
    assert store.keep(letter()) == []
    assert store.keep(letter()) is None  # the same message back after its worker died: kept already
    letters = list(DeadLetters(redis, lanes).iter(reason="undecodable_message"))
    assert [d.id for d in letters] == ["message:tag-1"]
    assert letters[0].delivery is None and letters[0].attempts == 0
    kept = json.loads(redis.hget(keys.DEAD, "message:tag-1"))["message"]
    assert kept["body"] == "{not json" and kept["encoding"] == "utf-8" and not kept["truncated"]
    assert kept["headers"]["task"] == "intercom.ingest" and kept["queue"] == "celery"
    assert Counters(redis).snapshot()["unreadable"] == 1


def test_a_replay_leaves_it_where_it_is(redis, store, lanes):
    store.keep(letter())
    dead = DeadLetters(redis, lanes)
    assert dead.replay(list(dead.iter())) == (0, [])
    assert dead.count() == 1


def test_its_people_are_released_once_and_their_lanes_woken(redis, store, lanes):
    redis.hset(keys.INFLIGHT, mapping={"ann": 2, "bob": 2})
    did = lanes.delivery_id(7, 0, "track_event")
    record = {"person": "bob", "seq": 7, "action": "track_event", "mapping": "m", "event": {}}
    assert lanes.ingest(7, "bob", "m7", [(did, record)]) is None  # held: bob's other event is in the unreadable message
    woken = store.keep(letter(), Counter({"ann": 1, "bob": 1}))
    assert woken == [("bob", did)]
    assert redis.hgetall(keys.INFLIGHT) == {"ann": "1"}
    assert store.keep(letter(), Counter({"ann": 1})) is None
    assert redis.hget(keys.INFLIGHT, "ann") == "1"  # not released twice


def test_a_release_never_leaves_a_count_below_zero(redis, store):
    store.keep(letter(), Counter({"ann": 3}))
    assert not redis.hexists(keys.INFLIGHT, "ann")


def test_a_large_body_is_cut_and_says_so():
    kept = kept_body(b"x" * (MAX_BODY_BYTES + 10))
    assert kept["size"] == MAX_BODY_BYTES + 10 and kept["truncated"] and len(kept["body"]) == MAX_BODY_BYTES
    cut_inside_a_character = kept_body(b"x" * (MAX_BODY_BYTES - 1) + "é".encode())
    assert cut_inside_a_character["encoding"] == "utf-8" and cut_inside_a_character["truncated"]


def test_a_binary_body_is_kept_as_base64():
    kept = kept_body(b"\xff\xfe\x00binary")
    assert kept["encoding"] == "base64" and base64.b64decode(kept["body"]) == b"\xff\xfe\x00binary"


def test_headers_that_may_hold_a_secret_are_left_out_and_values_bounded():
    kept = kept_headers({"task": "x", "Authorization": "Bearer s3cret", "writeKey": "wk", "x-api-key": "k", "argsrepr": "a" * 5000})
    assert set(kept) == {"task", "argsrepr"}
    assert len(kept["argsrepr"]) <= 2049
    assert "s3cret" not in json.dumps(kept)


def test_the_events_of_an_unreadable_ingest_message_leave_the_backlog(redis, store):
    Counters(redis).incr("accepted", 3)  # the door accepted three events, all in the message no worker can read
    store.keep(letter(), Counter({"ann": 2, "bob": 1}))
    counts = Counters(redis).snapshot()
    assert counts["unreadable_events"] == 3 and counts["backlog"] == 0
