"""Bad input never yields a 5xx, and nothing answered 200 is something a worker could not deliver.

Each row: what was sent, the status and error code answered, the field the
error names, and what reached the queue (nothing, for a refused request).
"""

from __future__ import annotations

import json
import logging
import socket
import time

import httpx
import pytest

import producers.http as http_module
from producers.events import MAX_DEPTH
from tests.producers import WRITE_KEY, accepted_count, make_event, queued_events


@pytest.fixture
def client(live_server):
    with httpx.Client(base_url=live_server.url, auth=(WRITE_KEY, ""), timeout=10) as c:
        yield c


def nested(levels: int) -> str:
    """JSON of objects nested ``levels`` deep (written out: json.dumps itself stops near 1,000)."""
    return '{"a":' * levels + '"bottom"' + "}" * levels


def raw_track(properties_json: str) -> bytes:
    return ('{"type":"track","userId":"u1","event":"Hostile","properties":' + properties_json + "}").encode()


CASES = [
    ("100,000 [", b"[" * 100_000, 400, "invalid_json", None),
    ("an integer of 5,000 digits", raw_track('{"n":' + "9" * 5000 + "}"), 400, "invalid_json", None),
    ("an integer past 64 bits", raw_track('{"n":' + str(2**64) + "}"), 400, "invalid_event", "properties.n"),
    ("NaN", raw_track('{"n":NaN}'), 400, "invalid_json", None),
    ("a lone surrogate", raw_track('{"name":"cut \\ud83d"}'), 400, "invalid_event", "properties.name"),
    ("nested 960 levels deep", raw_track(nested(960)), 400, "invalid_event", "properties" + ".a" * MAX_DEPTH),
    ("nested one level too deep", raw_track(nested(MAX_DEPTH)), 400, "invalid_event", "properties" + ".a" * MAX_DEPTH),
    (
        "a timestamp past year 9999 in UTC",
        json.dumps(make_event("track", timestamp="9999-12-31T23:00:00-01:00")).encode(),
        400,
        "invalid_event",
        "timestamp",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_a_hostile_single_event_is_a_400_naming_the_problem_and_stores_nothing(client, redis, name, body, status, code, field):
    response = client.post("/v1/track", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    if field:
        assert response.json()["field"] == field
    assert queued_events(redis) == [] and accepted_count(redis) == 0


def test_just_deep_enough_is_accepted(client, redis):
    response = client.post("/v1/track", content=raw_track(nested(MAX_DEPTH - 1)), headers={"Content-Type": "application/json"})
    assert response.status_code == 200


def test_one_bad_event_in_a_batch_is_refused_alone(client, redis):
    good = [make_event("track", messageId=f"m{n}") for n in range(3)]
    bad = make_event("track", messageId="bad", properties={"name": "cut \ud83d"})
    too_late = make_event("track", messageId="late", timestamp="9999-12-31T23:00:00-01:00")
    body = json.dumps({"batch": [good[0], bad, good[1], too_late, good[2]]})  # ASCII: the surrogate stays an escape
    response = client.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert [(r["index"], r["field"]) for r in response.json()["refused"]] == [(1, "properties.name"), (3, "timestamp")]
    assert [e["messageId"] for e in queued_events(redis)] == ["m0", "m1", "m2"]


def test_the_size_limit_counts_the_batchs_shared_context_merged_into_each_event(client, redis):
    big_context = {"page": {"title": "x" * 20_000}, "traits": {"note": "y" * 13_000}}
    response = client.post("/v1/batch", json={"batch": [make_event("track"), make_event("track")], "context": big_context})
    assert response.status_code == 400
    assert all(r["field"] == "(event)" and "over the limit" in r["message"] for r in response.json()["refused"])
    assert queued_events(redis) == []


def send_raw(url: str, head: bytes, body: bytes, *, then_wait: float = 0.0, close: bool = False) -> bytes:
    """Send a request by hand (to trickle or cut its body); the answer's first bytes, if any."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        if close:
            return b""
        time.sleep(then_wait)
        return sock.recv(4096)


def test_a_body_that_does_not_arrive_in_time_is_a_408(live_server, redis, monkeypatch):
    monkeypatch.setattr(http_module, "BODY_READ_SECONDS", 0.5)
    head = b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    answer = send_raw(live_server.url, head, b'{"type":', then_wait=1.5)
    assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout" in answer
    assert queued_events(redis) == []


def test_a_client_that_goes_away_mid_body_is_one_log_line_and_the_door_goes_on(live_server, client, caplog):
    head = b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    with caplog.at_level(logging.INFO):
        send_raw(live_server.url, head, b'{"type":"tr', close=True)
        time.sleep(0.5)
    assert client.post("/v1/track", json=make_event("track")).status_code == 200
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client that went away"
