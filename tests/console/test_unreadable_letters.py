"""A message no worker could read, in the console: shown with its raw body, never replayed."""

from __future__ import annotations

import httpx

from tests.console.conftest import ADMIN, console_settings
from tests.console.test_app import csrf_of
from worker.runtime import build_lanes
from worker.settings import Settings
from worker.store.deadletters import DeadLetters
from worker.store.unreadable import UNDECODABLE, UnreadableMessages, message_letter


def keep_unreadable(redis) -> str:
    letter = message_letter(
        f"{UNDECODABLE}: the body is not valid application/json",
        body=b'[[{"seq": 1, "event": {"userId": "ann"',
        headers={"task": "intercom.ingest", "id": "t-1", "authorization": "Basic c2VjcmV0"},
        content_type="application/json",
        content_encoding="utf-8",
        queue="celery",
        detail="DecodeError: Expecting ',' delimiter",
        letter_id="message:tag-7",
    )
    UnreadableMessages(redis, build_lanes(redis, Settings())).keep(letter)
    return letter["id"]


def test_an_unreadable_message_is_shown_with_its_body_and_a_replay_says_why_not(redis, redis_url, console_server) -> None:
    letter_id = keep_unreadable(redis)
    served = console_server(console_settings({"REDIS_URL": redis_url}), redis)
    with httpx.Client(base_url=served.url, auth=ADMIN, timeout=10) as console:
        detail = console.get(f"dead-letters/{letter_id}").text
        assert 'id="message-body"' in detail and "&#34;userId&#34;: &#34;ann&#34;" in detail
        assert "intercom.ingest" in detail and "c2VjcmV0" not in detail  # a secret header is never kept
        token = csrf_of(console.get("dead-letters").text)
        answer = console.post("dead-letters", data={"csrf": token, "op": "replay", "id": [letter_id], "confirmed": "yes"})
    assert answer.status_code == 409 and "no worker could read" in answer.text and "purge" in answer.text
    assert [d.id for d in DeadLetters(redis, build_lanes(redis, Settings())).iter()] == [letter_id]  # still kept
