"""The console in headless Chromium, against a running stack: real celery workers and beat, the suite's Redis, the fake Intercom.

Each test drives the pages as an operator would and checks them against the
stack: the overview's counts are `intercom-relay status --json`'s, a person's
page shows a parked event and why, a dead letter replayed from the page
reaches the fake.  Each takes a screenshot of the page it is about
($CONSOLE_SCREENSHOTS=docs/img refreshes the documentation's).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Callable

import pytest

from producers.sample import SampleStream
from tests.console.conftest import ADMIN, WRITE_KEY, console_settings
from tests.e2e.harness import ROOT, accept
from worker.store.counters import Counters

pytestmark = pytest.mark.e2e

VIEWPORT = {"width": 1280, "height": 900}


def signed_in(chromium: Any, user: tuple[str, str] | None = ADMIN) -> Any:
    """A browser page; signed in with ``user`` (Basic auth), or with nothing."""
    credentials = {"username": user[0], "password": user[1]} if user else None
    return chromium.new_context(viewport=VIEWPORT, http_credentials=credentials).new_page()


def status_json(env: dict) -> dict:
    """`intercom-relay status --json`, as an operator runs it."""
    out = subprocess.run([sys.executable, "-m", "cli", "status", "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def settled(redis: Any, *, parked: int = 0) -> dict | None:
    """The counters once everything accepted is delivered, dead-lettered or (``parked``) parked."""
    counts = Counters(redis).snapshot()
    done = counts["accepted"] and counts["backlog"] == counts["parked"] == parked and counts["retrying"] == 0
    return counts if done else None


# -- the overview and the recent deliveries ------------------------------------------------------


def test_the_overview_counts_what_status_counts(redis, redis_url, fake_intercom_factory, fleet, console_server, chromium, screenshots):
    # Three waves against a low limit ride it over several 10-s windows (the charts have a
    # minute to show); a few 503s are retried; one person is never identified (parked).
    fake = fake_intercom_factory(rate_limit=40, latency_ms=20, fault_rate=0.02, seed=11)
    stream = SampleStream(people=30, tracks_per_person=3, identifies_per_person=2, seed=5)
    ghost = {"type": "track", "userId": "ghost-1", "event": "Viewed Pricing", "timestamp": "2026-02-01T00:00:00Z"}
    workers = fleet(fake.url)
    workers.worker("w1", concurrency=8)
    workers.beat()
    events = stream.events + [ghost]
    third = len(events) // 3 + 1
    for start in range(0, len(events), third):
        accept(redis_url, events[start : start + third])
        time.sleep(12)
    # A 503 backs off for seconds to minutes (full jitter), and the person's later events wait behind it.
    wait_for(lambda: settled(redis, parked=1), 300, "every event delivered but the ghost's, parked")
    snapshots = len(redis.lrange("relay:history", 0, -1))
    wait_for(lambda: len(redis.lrange("relay:history", 0, -1)) > snapshots, 15, "a snapshot of the settled counters")

    console = console_server(console_settings(workers.env), redis)
    page = signed_in(chromium)
    page.goto(console.url)
    status = status_json(workers.env)
    every = {cell.get_attribute("data-count"): cell.text_content() for cell in page.query_selector_all("#all-counts td[data-count]")}
    counters = {k: v for k, v in status.items() if k not in ("paused", "dropped_fields")}  # dropped_fields: counts by field
    assert {name: int(value) for name, value in every.items() if name != "paused"} == counters
    assert status["paused"] is None and every["paused"] == "no"
    tiles = {cell.get_attribute("data-count"): int(cell.inner_text()) for cell in page.query_selector_all("#counts [data-count]")}
    assert tiles == {
        name: status[name] for name in ("accepted", "delivered", "unchanged", "dead_lettered", "parked", "retrying", "backlog")
    }
    assert page.locator("svg.chart").count() == 3
    assert "40 calls per 10-s window" in page.inner_text("main")  # the limit the fake reported, learnt by the budget
    page.screenshot(path=str(screenshots / "console-overview.png"), full_page=True)

    page.click("text=Recent deliveries")
    rows = page.locator("#recent tbody tr")
    assert rows.count() >= 50
    assert "delivered" in page.inner_text("#recent") and "median" in page.inner_text("#latency")
    page.screenshot(path=str(screenshots / "console-recent.png"), full_page=False)


# -- a person --------------------------------------------------------------------------------------


def test_a_persons_page_shows_a_parked_event_and_why(redis, redis_url, fake_intercom, fleet, console_server, chromium, screenshots):
    events: list[dict] = [
        {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", "name": "Ann"}, "timestamp": "2026-02-01T00:00:00Z"},
        {"type": "track", "userId": "ann", "event": "Signed Up", "timestamp": "2026-02-01T00:00:01Z"},
        # Never identified: Intercom knows no such contact, so the tracks are parked.
        {"type": "track", "userId": "ghost-7", "event": "Viewed Pricing", "timestamp": "2026-02-01T00:00:02Z"},
        {"type": "track", "userId": "ghost-7", "event": "Started Trial", "timestamp": "2026-02-01T00:00:03Z"},
    ]
    workers = fleet(fake_intercom.url)
    workers.worker("w1", concurrency=4)
    workers.beat()
    accept(redis_url, events)
    wait_for(lambda: settled(redis, parked=2), 60, "ann delivered and ghost-7's tracks parked")

    console = console_server(console_settings(workers.env), redis)
    page = signed_in(chromium)
    page.goto(console.url + "person")
    page.fill("#q", "ghost-7")
    page.click("text=Look up")
    parked = page.inner_text("#parked")
    assert "Viewed Pricing" in parked and "Started Trial" in parked
    assert "Intercom knows no contact for this person yet (404)" in parked
    assert "released by the person's next delivered identify" in parked
    outcomes = page.inner_text("#outcomes")
    assert "parked" in outcomes and "contact not found" in outcomes
    assert "Intercom answered 404" in outcomes  # the exchange of the newest outcome, open
    assert "none cached" in page.inner_text("#contact")
    assert workers.env["INTERCOM_ACCESS_TOKEN"] not in page.content()
    page.screenshot(path=str(screenshots / "console-person.png"), full_page=True)

    page.fill("#q", "ANN@example.com")
    page.click("text=Look up")
    (ann,) = [c for c in fake_intercom.state()["contacts"] if c["external_id"] == "ann"]
    assert ann["id"] in page.inner_text("#contact")
    assert "idle: nothing waiting" in page.inner_text("#lane-state")


# -- dead letters ----------------------------------------------------------------------------------

MAPPINGS_WITH_AN_UNKNOWN_ATTRIBUTE = """\
include_defaults: true
mappings:
  - name: Identify Contact
    extends: Identify Contact
    fields:
      custom_attributes:
        plan: $.traits.plan
"""


def test_a_dead_letter_is_replayed_from_the_page_and_reaches_intercom(
    redis, redis_url, fake_intercom, fleet, console_server, chromium, screenshots, tmp_path
):
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(MAPPINGS_WITH_AN_UNKNOWN_ATTRIBUTE)
    people = ["u1", "u2", "u3"]
    events = []
    for n, who in enumerate(people):
        traits = {"email": f"{who}@example.com", "name": who.upper(), "plan": "pro"}
        events.append({"type": "identify", "userId": who, "traits": traits, "timestamp": f"2026-02-01T00:00:0{n}Z"})
        events.append({"type": "track", "userId": who, "event": "Signed Up", "timestamp": f"2026-02-01T00:01:0{n}Z"})
    # The workspace has no attribute 'plan'; UNKNOWN_ATTRIBUTES=fail dead-letters such an identify whole.
    workers = fleet(fake_intercom.url, MAPPINGS_FILE=str(mappings), UNKNOWN_ATTRIBUTES="fail")
    workers.worker("w1", concurrency=4)
    workers.beat()
    accept(redis_url, events)
    wait_for(lambda: Counters(redis).snapshot()["dead_lettered"] == 3 and settled(redis, parked=3), 60, "3 dead letters, 3 parked")

    console = console_server(console_settings({**workers.env, "MAPPINGS_FILE": ""}), redis)
    page = signed_in(chromium)
    page.goto(console.url + "dead-letters")
    groups = page.inner_text("#groups")
    assert "Custom attribute 'plan' does not exist" in groups and "3" in groups
    assert page.locator("#letters tbody tr").count() == 3
    assert page.locator("[data-needs-selection]").first.is_disabled()  # nothing selected yet
    page.screenshot(path=str(screenshots / "console-dead-letters.png"), full_page=True)

    page.locator("#letters tbody tr a").first.click()  # open one
    assert "plan" in page.inner_text("#reason")
    assert '"parameter_invalid"' in page.inner_text("#response")
    assert '"plan": "pro"' in page.inner_text("#event")
    page.screenshot(path=str(screenshots / "console-dead-letter.png"), full_page=True)

    fake_intercom.add_custom_attributes(contacts=["plan"])  # the cause, fixed
    page.goto(console.url + "dead-letters")
    page.check("#select-all")
    assert "3 selected" in page.inner_text("#selected-count")
    page.click("text=Replay selected…")
    assert "Replay 3 dead letter(s)?" in page.inner_text("h1"), page.inner_text("main")
    assert Counters(redis).snapshot()["dead_lettered"] == 3  # asked, not done
    page.click("#confirm-button")
    assert "Replayed 3 dead letter(s)." in page.inner_text("#notice")

    wait_for(lambda: settled(redis), 60, "the replayed identifies delivered and the parked tracks released")
    contacts = {c["external_id"]: c for c in fake_intercom.state()["contacts"]}
    assert {who: contacts[who]["custom_attributes"] for who in people} == {who: {"plan": "pro"} for who in people}
    assert sum(len(v) for v in fake_intercom.state()["events"].values()) == 3
    page.goto(console.url + "dead-letters")
    assert "No dead letter" in page.inner_text("main")


# -- no admin key, no console ----------------------------------------------------------------------


def status_of(page: Any, url: str) -> int:
    """The status the browser got for ``url``."""
    from playwright.sync_api import Error  # noqa: PLC0415 - the driver is imported only where a browser runs

    with page.expect_response(url) as answer:
        try:
            page.goto(url)
        except Error:
            pass  # with no credentials to offer, headless Chromium gives up on a 401 (ERR_INVALID_AUTH_CREDENTIALS)
    return int(answer.value.status)


@pytest.mark.parametrize("user", [None, (WRITE_KEY, ""), (ADMIN[0], "not-the-password")], ids=["nothing", "write-key", "wrong-password"])
def test_without_the_admin_key_the_console_answers_401(redis, redis_url, console_server, chromium, user):
    console = console_server(console_settings({"REDIS_URL": redis_url}), redis)
    page = signed_in(chromium, user)
    for path in ("", "person", "dead-letters", "recent", "dead-letters/1:0I"):
        assert status_of(page, console.url + path) == 401, path
        if user:  # the browser shows the page that says why
            assert "ADMIN_KEYS" in page.inner_text("#error-message")
    assert status_of(signed_in(chromium), console.url) == 200
