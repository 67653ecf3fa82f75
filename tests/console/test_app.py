"""The console over HTTP, without a browser: who gets in, what a bad request is told, what a page never shows.

The app is served by uvicorn on 127.0.0.1 (tests/console/conftest.py) on the
suite's Redis, filled by the stores' own writers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any, Iterator

import httpx
import pytest

from console.auth import CSRF_TOKEN_SECONDS, Admins
from tests.console.conftest import ADMIN, WRITE_KEY, console_settings
from tests.test_imports import DELIVERY_STACK
from worker.store import keys
from worker.store.counters import Counters
from worker.store.deadletters import letter
from worker.store.history import History
from worker.store.outcomes import Outcomes

TOKEN = "intercom-secret-token-never-shown"
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def settings(redis_url: str) -> Any:
    return console_settings({"REDIS_URL": redis_url, "INTERCOM_ACCESS_TOKEN": TOKEN})


@pytest.fixture
def console(redis, settings, console_server) -> Iterator[httpx.Client]:
    served = console_server(settings, redis)
    with httpx.Client(base_url=served.url, auth=ADMIN, timeout=10) as client:
        yield client


def dead_letter_in(redis, delivery: str, person: str, reason: str, *, action: str = "identify_contact", event: dict | None = None) -> None:
    """A dead letter as lanes.finish stores it."""
    event = event or {"type": "identify", "userId": person, "messageId": f"m-{delivery}", "traits": {"plan": "pro"}}
    record = {"person": person, "seq": 1, "mapping": "Identify Contact", "action": action, "event": event}
    body = letter(delivery, record, reason, response={"status": 400, "body": {"errors": [{"code": "parameter_invalid"}]}}, attempts=1)
    redis.hset(keys.DEAD, delivery, json.dumps(body))
    redis.zadd(keys.DEAD_INDEX, {delivery: body["dead_at"]})
    Counters(redis).incr("dead_lettered")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page holds no form token"
    return found.group(1)


# -- who gets in -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [None, (WRITE_KEY, ""), (WRITE_KEY, WRITE_KEY), (ADMIN[0], "wrong-password-123"), ("someone", ADMIN[1])],
    ids=["none", "write-key", "write-key-twice", "wrong-password", "wrong-user"],
)
def test_without_an_admin_key_every_page_answers_401(redis, settings, console_server, auth) -> None:
    served = console_server(settings, redis)
    for path in ("", "person", "dead-letters", "recent", "static/console.css", "no-such-page"):
        answer = httpx.get(served.url + path, auth=auth, timeout=10)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"].startswith('Basic realm="Intercom Relay console"')
        assert "ADMIN_KEYS" in answer.text
    assert httpx.post(served.url + "dead-letters", auth=auth, data={"op": "purge", "id": "1:0I"}).status_code == 401


def test_with_no_admin_keys_configured_the_console_is_closed(redis, redis_url, console_server) -> None:
    served = console_server(console_settings({"REDIS_URL": redis_url}, admin_keys=()), redis)
    answer = httpx.get(served.url, auth=ADMIN, timeout=10)
    assert answer.status_code == 403
    assert "set ADMIN_KEYS" in answer.text


def test_every_answer_forbids_framing_caching_and_foreign_scripts(console) -> None:
    for path in ("", "nope"):
        headers = console.get(path).headers
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "same-origin"


# -- what the pages show, and never show -------------------------------------------------------


def test_the_overview_shows_the_counts_and_the_pause_and_never_the_token(redis, console) -> None:
    Counters(redis).incr("accepted", 5)
    Counters(redis).incr("delivered", 3)
    History(redis).snapshot_if_due()
    redis.set(keys.paused(console_settings({"INTERCOM_ACCESS_TOKEN": TOKEN}).token_id), json.dumps({"reason": "401", "since": 1}))
    page = console.get("").text
    assert 'data-count="accepted">5<' in page and 'data-count="delivered">3<' in page and 'data-count="backlog">2<' in page
    assert "Delivery is paused" in page
    assert "<svg" in page
    assert TOKEN not in page and ADMIN[1] not in page


def test_what_came_from_events_or_intercom_is_shown_as_text(redis, console) -> None:
    dead_letter_in(redis, "7:0I", HOSTILE, HOSTILE, event={"type": "identify", "userId": HOSTILE, "traits": {"name": HOSTILE}})
    exchange = {"method": "POST", "path": "/contacts", "request": HOSTILE, "status": 400, "response": HOSTILE}
    Outcomes(redis).record(HOSTILE, {"delivery": "7:0I", "action": "identify_contact", "status": "dead_lettered", "exchange": exchange})
    pages = [
        console.get("dead-letters").text,
        console.get("dead-letters/7:0I").text,
        console.get("person", params={"id": HOSTILE}).text,
        console.post("person", data={"q": HOSTILE}).text,
        console.get("recent").text,
    ]
    for page in pages:
        assert HOSTILE not in page
        assert "&lt;script&gt;" in page


def test_a_person_is_found_by_email_through_the_contact_cache(redis, console) -> None:
    redis.hset(keys.contact("email", "ann@example.com"), mapping={"id": "c-1", "role": "user"})
    redis.hset(keys.contact("ext", "user-1"), mapping={"id": "c-1", "role": "user"})
    redis.hset(keys.contact("anon", "anon-1"), mapping={"id": "c-1", "role": "user"})
    redis.sadd(
        keys.contact_keys("c-1"), keys.contact("email", "ann@example.com"), keys.contact("ext", "user-1"), keys.contact("anon", "anon-1")
    )
    page = console.post("person", data={"q": " Ann@Example.com "}).text
    assert 'data-person="user-1"' in page and 'data-person="anon-1"' in page  # a converted lead's two lanes
    assert "c-1" in page
    unknown = console.post("person", data={"q": "nobody"})
    assert unknown.status_code == 404 and "Nothing is known" in unknown.text


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "data", "status", "message"),
    [
        ("GET", "dead-letters?within=forever", None, 400, "within must be one of"),
        ("GET", "dead-letters?action=Track%20Event!", None, 400, "action: an action"),
        ("GET", "dead-letters?replayed=lots", None, 400, "replayed must be a whole number"),
        ("GET", "recent?limit=0", None, 400, "limit must be a whole number from 1 to 500"),
        ("GET", "recent?status=lost", None, 400, "status must be one of"),
        ("GET", "person?id=", None, 400, "type a userId"),
        ("GET", "person?id=" + "x" * 600, None, 400, "at most 512 characters"),
        ("POST", "person", {"q": "   "}, 400, "type a userId"),
        ("GET", "dead-letters/9:9Z", None, 404, "no dead letter"),
        ("GET", "elsewhere", None, 404, "no such page"),
        ("DELETE", "dead-letters", None, 405, "does not take that method"),
    ],
)
def test_bad_input_is_told_what_was_wrong(console, method, path, data, status, message) -> None:
    answer = console.request(method, path, data=data)
    assert answer.status_code == status
    assert message in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_a_form_that_is_not_url_encoded_is_refused(console) -> None:
    answer = console.post("person", json={"q": "ann"})
    assert answer.status_code == 415


# -- replay and purge --------------------------------------------------------------------------


def test_replay_asks_first_then_puts_the_letter_back_in_its_lane(redis, console) -> None:
    dead_letter_in(redis, "5:0I", "user-5", "Custom attribute 'plan' does not exist")
    token = csrf_of(console.get("dead-letters").text)

    asked = console.post("dead-letters", data={"csrf": token, "op": "replay", "id": ["5:0I", "gone:0I"]})
    assert asked.status_code == 200
    assert "Replay 1 dead letter(s)?" in asked.text and "1 of those selected are no longer kept" in asked.text
    assert redis.zcard(keys.DEAD_INDEX) == 1  # nothing done before the confirmation

    done = console.post("dead-letters", data={"csrf": token, "op": "replay", "id": ["5:0I"], "confirmed": "yes"})
    assert done.status_code == 303
    assert done.headers["location"].endswith("/dead-letters?replayed=1&missing=0")
    assert redis.zcard(keys.DEAD_INDEX) == 0
    assert redis.zcard(keys.lane("user-5")) == 1  # back at the end of its lane, its task sent
    assert "Replayed 1 dead letter(s)." in console.get(done.headers["location"].split("/console/")[1]).text


def test_purge_deletes_for_good_after_the_confirmation(redis, console) -> None:
    for n in range(3):
        dead_letter_in(redis, f"{n}:0T", f"user-{n}", "contact never identified", action="track_event")
    token = csrf_of(console.get("dead-letters").text)
    done = console.post("dead-letters", data={"csrf": token, "op": "purge", "id": ["0:0T", "1:0T"], "confirmed": "yes"})
    assert done.status_code == 303 and "purged=2" in done.headers["location"]
    assert redis.zrange(keys.DEAD_INDEX, 0, -1) == ["2:0T"]


@pytest.mark.parametrize(
    ("form", "headers", "status", "message"),
    [
        ({"op": "purge", "id": "1:0I", "confirmed": "yes"}, {}, 403, "token is missing or expired"),
        ({"op": "purge", "id": "1:0I", "confirmed": "yes", "csrf": "123.abc"}, {}, 403, "token is missing or expired"),
        ({"op": "purge", "id": "1:0I", "confirmed": "yes", "csrf": None}, {"origin": "https://evil.example"}, 403, "Origin"),
        ({"op": "purge", "id": "1:0I", "confirmed": "yes", "csrf": None}, {"sec-fetch-site": "cross-site"}, 403, "cross-site"),
        ({"op": "burn", "id": "1:0I", "csrf": None}, {}, 400, "replay or purge"),
        ({"op": "purge", "csrf": None}, {}, 400, "no dead letter selected"),
        ({"op": "purge", "id": [str(n) for n in range(501)], "csrf": None}, {}, 400, "at most 500"),
    ],
)
def test_a_replay_or_purge_without_proof_it_came_from_the_console_does_nothing(redis, console, form, headers, status, message) -> None:
    dead_letter_in(redis, "1:0I", "user-1", "refused")
    if "csrf" in form and form["csrf"] is None:
        form["csrf"] = csrf_of(console.get("dead-letters").text)
    answer = console.post("dead-letters", data=form, headers=headers)
    assert answer.status_code == status
    assert message in answer.text
    assert redis.zcard(keys.DEAD_INDEX) == 1


def test_a_form_token_is_bound_to_its_admin_and_expires() -> None:
    admins = Admins((("ops", "first-password-1"), ("audit", "second-password-2")))
    token = admins.csrf_token("ops", now=1000)
    assert admins.csrf_valid("ops", token, now=1000 + CSRF_TOKEN_SECONDS)
    assert not admins.csrf_valid("ops", token, now=1001 + CSRF_TOKEN_SECONDS)
    assert not admins.csrf_valid("audit", token, now=1000)
    assert not Admins((("ops", "another-password"),)).csrf_valid("ops", token, now=1000)


def test_the_door_can_mount_the_console_without_loading_the_delivery_stack() -> None:
    """producers/http.py will import console.app; the door must stay free of the workers' code (tests/test_imports.py)."""
    code = f"import json, sys; import console.app; print(json.dumps([m for m in {DELIVERY_STACK!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []
