"""Real Segment-compatible libraries, all the way to Intercom.

Each library sends to the ingestion server the suite starts; a real celery
worker delivers to the fake Intercom; the test reads what Intercom holds.
The JavaScript clients (analytics-node under node, analytics.js in headless
Chromium) are pinned in tests/js and run as tests/e2e/js_clients.py says.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from producers.enqueue import Enqueuer
from producers.http import create_app
from tests.e2e.harness import ROOT, wait_until_finished
from tests.e2e.js_clients import StaticSite, chromium, node_modules, package_version, render_snippet, run_node
from tests.producers import WRITE_KEY, LiveServer, accepted_count
from tests.producers.test_real_clients import _old_analytics_dir
from worker.celery_app import create_app as create_celery_app
from worker.settings import Settings

pytestmark = pytest.mark.e2e


class IngestionServer(LiveServer):
    """The ingestion app, noting each answer as (method, path, status): a browser's
    preflights are seen only here, Playwright does not report them."""

    def __init__(self, app: Any) -> None:
        self.answers: list[tuple[str, str, int]] = []
        super().__init__(self._noting(app))

    def _noting(self, app: Any) -> Any:
        async def noting_app(scope: Any, receive: Any, send: Any) -> None:
            async def noting_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    self.answers.append((scope["method"], scope["path"], message["status"]))
                await send(message)

            await app(scope, receive, noting_send if scope["type"] == "http" else send)

        return noting_app


def ingestion_server(redis: Any, redis_url: str, *, cors_origins: tuple[str, ...] = ()) -> IngestionServer:
    settings = Settings(redis_url=redis_url, write_keys=(WRITE_KEY,), cors_origins=cors_origins)
    server = IngestionServer(create_app(settings, Enqueuer(redis, create_celery_app(settings), max_backlog=10**6)))
    server.start()
    return server


@pytest.fixture
def relay(redis, redis_url, fake_intercom_factory, fleet):
    """Ingestion server + worker + beat against a fresh fake Intercom."""
    fake = fake_intercom_factory()
    server = ingestion_server(redis, redis_url)
    workers = fleet(fake.url)
    workers.worker("w1", concurrency=8)
    workers.beat()
    yield server, fake, workers
    server.stop()


def page_view_mappings(tmp_path: Path) -> Path:
    """docs/mappings.md's "Page views as Intercom events" example, as a MAPPINGS_FILE."""
    doc = (ROOT / "docs" / "mappings.md").read_text()
    section = doc.split("### Page views as Intercom events", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, "docs/mappings.md has no YAML block under 'Page views as Intercom events'"
    path = tmp_path / "mappings.yaml"
    path.write_text(block.group(1))
    return path


@pytest.fixture
def site():
    """The pricing page on a web site of its own origin (tests/js/pricing.html)."""
    server = StaticSite().start()
    yield server
    server.stop()


@pytest.fixture
def page_view_relay(redis, redis_url, fake_intercom_factory, fleet, tmp_path):
    """``make(*cors_origins)``: the relay with the docs' page-view mapping -> (server, fake, workers)."""
    servers: list[LiveServer] = []

    def make(*cors_origins: str) -> tuple[IngestionServer, Any, Any]:
        fake = fake_intercom_factory()
        server = ingestion_server(redis, redis_url, cors_origins=cors_origins)
        servers.append(server)
        workers = fleet(fake.url, MAPPINGS_FILE=str(page_view_mappings(tmp_path)))
        workers.worker("w1", concurrency=8)
        workers.beat()
        return server, fake, workers

    yield make
    for server in servers:
        server.stop()


def contacts_by_email(fake) -> dict:
    return {c["email"]: c for c in fake.state()["contacts"] if not c["merged"]}


def events_of(fake, contact) -> list[str]:
    return sorted(e["event_name"] for e in fake.state()["events"].get(contact["id"], []))


def test_segment_analytics_python_reaches_intercom(relay, redis):
    from segment.analytics import Client

    server, fake, workers = relay
    client = Client(WRITE_KEY, host=server.url, sync_mode=True, max_retries=0)
    # Sent before its identify, on purpose: it waits for it (or is parked and re-sent after it).
    client.track("u-seg", "Order Completed", {"revenue": 19.99})
    client.identify("u-seg", {"email": "seg@example.com", "name": "Seg Ment"})
    client.group("u-seg", "acme", {"name": "Acme"})
    batched = Client(WRITE_KEY, host=server.url, gzip=True, upload_size=10)
    for i in range(25):
        batched.track("u-seg", "Feature Used", {"i": i}, timestamp=None)
    batched.flush()
    batched.shutdown()
    wait_until_finished(redis, workers, timeout=60)

    contact = contacts_by_email(fake)["seg@example.com"]
    assert (contact["external_id"], contact["name"], contact["role"]) == ("u-seg", "Seg Ment", "user")
    names = events_of(fake, contact)
    assert names.count("order completed") == 1
    order = next(e for e in fake.state()["events"][contact["id"]] if e["event_name"] == "order completed")
    assert order["metadata"]["price"] == {"amount": 1999, "currency": "USD"}
    assert [c["company_id"] for c in fake.state()["companies"]] == ["acme"]


def test_rudder_sdk_python_with_traits_only_in_context_reaches_intercom(relay, redis):
    from rudderstack.analytics import Client

    server, fake, workers = relay
    client = Client(WRITE_KEY, host=server.url, gzip=True, sync_mode=True, max_retries=0)
    client.identify("u-rudder", {"email": "rudder@example.com", "name": "Rudder Stack"})
    client.track("u-rudder", "Signed Up", {"source": "ads"})
    wait_until_finished(redis, workers, timeout=60)

    contact = contacts_by_email(fake)["rudder@example.com"]
    assert (contact["external_id"], contact["name"]) == ("u-rudder", "Rudder Stack")
    assert events_of(fake, contact) == ["signed up"]


def test_analytics_python_1_4_reaches_intercom(relay, redis):
    server, fake, workers = relay
    script = textwrap.dedent(f"""
        import analytics
        client = analytics.Client({WRITE_KEY!r}, host={server.url!r}, sync_mode=True, max_retries=0)
        client.identify("u-old", {{"email": "old@example.com"}})
        client.track("u-old", "Order Completed", {{"revenue": 3}})
        client.group("u-old", "initech", {{"name": "Initech"}})
    """)
    env = {"PYTHONPATH": str(_old_analytics_dir()), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    wait_until_finished(redis, workers, timeout=60)

    contact = contacts_by_email(fake)["old@example.com"]
    assert events_of(fake, contact) == ["order completed"]
    assert [c["company_id"] for c in fake.state()["companies"]] == ["initech"]


# -- JavaScript: @segment/analytics-node and @segment/analytics-next ------------------------


def test_analytics_node_reaches_intercom_alias_included(page_view_relay, redis):
    node_modules()  # before starting anything: fails in CI, skips elsewhere, without node
    server, fake, workers = page_view_relay()
    report = json.loads(run_node("analytics-node.js", server.url, WRITE_KEY).strip().splitlines()[-1])
    print(f"@segment/analytics-node {package_version('@segment/analytics-node')} sent: {report['sent']}")
    assert report["errors"] == [] and set(report["statuses"]) == {200}
    assert {r["url"] for r in report["sent"]} == {f"{server.url}/v1/batch"}
    assert sorted(t for r in report["sent"] for t in r["types"]) == sorted(
        ["identify", "track", "page", "alias", "identify", "track", "group", "page"]
    )
    wait_until_finished(redis, workers, timeout=90)

    state = fake.state()
    [person] = [c for c in state["contacts"] if not c["merged"] and c["email"] == "node@example.com"]
    assert (person["role"], person["external_id"]) == ("user", "u-node")
    [lead] = [c for c in state["contacts"] if c["role"] == "lead"]
    assert lead["merged"] and {"from": lead["id"], "into": person["id"]} in [{k: m[k] for k in ("from", "into")} for m in state["merges"]]
    # The visitor's events moved to the user with the merge; page views by the docs' mapping.
    assert events_of(fake, person) == ["order completed", "viewed docs", "viewed pricing page", "viewed pricing page"]
    assert [c["company_id"] for c in state["companies"]] == ["node-co"]


def browser_session(browser: Any, site: LiveServer, relay: LiveServer, *, batching: bool = False) -> tuple[Any, dict[str, list]]:
    """A fresh browser profile on the site's pricing page with analytics.js loaded for the relay."""
    page, seen = watched_page(browser.new_context(), relay)
    page.goto(f"{site.url}/pricing")
    version = page.evaluate(
        "([host, key, batching]) => loadAnalytics(host, key, batching)", [relay.url.removeprefix("http://"), WRITE_KEY, batching]
    )
    assert version == package_version("@segment/analytics-next")
    return page, seen


def watched_page(context: Any, relay: LiveServer) -> tuple[Any, dict[str, list]]:
    """A page noting what it met on the network: every URL off this machine (there
    must be none: no CDN), failed requests (by path on the relay) and console errors."""
    page = context.new_page()
    seen: dict[str, list] = {"offline": [], "failed": [], "console": []}
    page.on("request", lambda r: None if urlsplit(r.url).hostname in ("127.0.0.1", None) else seen["offline"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url.removeprefix(relay.url)))
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    return page, seen


SEND_FROM_THE_PAGE = """async ([who, email]) => {
    const analytics = window.relayAnalytics;
    await analytics.identify(who, { email, name: 'Brow Ser' });
    await analytics.track('Signed Up', { plan: 'pro' });
    await analytics.group('browser-co', { name: 'Browser Co' });
    await analytics.page('Pricing');
}"""


def test_analytics_js_in_chromium_reaches_intercom(page_view_relay, redis, site):
    server, fake, workers = page_view_relay(site.url)
    with chromium() as browser:
        page, seen = browser_session(browser, site, server)
        page.evaluate(SEND_FROM_THE_PAGE, ["u-browser", "browser@example.com"])
        one_by_one, server.answers[:] = set(server.answers), []
        batched, batched_seen = browser_session(browser, site, server, batching=True)
        batched.evaluate(SEND_FROM_THE_PAGE, ["u-batched", "batched@example.com"])  # 4 calls: one full batch of 4
        wait_for(lambda: ("POST", "/v1/b", 200) in server.answers, what="the batch of 4 answered")
    version = package_version("@segment/analytics-next")
    print(f"@segment/analytics-next {version} asked: {sorted(one_by_one)}; batching: {sorted(set(server.answers))}")
    for record in (seen, batched_seen):
        assert record["offline"] == [] and record["failed"] == [] and record["console"] == [], record
    assert one_by_one == {(method, f"/v1/{letter}", status) for letter in "itgp" for method, status in (("OPTIONS", 204), ("POST", 200))}
    assert set(server.answers) == {("OPTIONS", "/v1/b", 204), ("POST", "/v1/b", 200)}
    assert accepted_count(redis) == 8
    wait_until_finished(redis, workers, timeout=90)

    people = contacts_by_email(fake)
    for user_id, email in (("u-browser", "browser@example.com"), ("u-batched", "batched@example.com")):
        contact = people[email]
        assert (contact["role"], contact["external_id"], contact["name"]) == ("user", user_id, "Brow Ser")
        assert events_of(fake, contact) == ["signed up", "viewed pricing page"]
    assert [c["company_id"] for c in fake.state()["companies"]] == ["browser-co"]


def test_segments_snippet_with_analytics_js_hosted_by_the_site_reaches_intercom(page_view_relay, redis, site):
    server, fake, workers = page_view_relay(site.url)
    host = f"127.0.0.1:{site.port}"  # the site hosts analytics.js and its settings itself, not Segment's CDN
    site.pricing_html = f"<!doctype html><title>Pricing</title><script>{render_snippet(host, WRITE_KEY)}</script><h1>Pricing</h1>"
    relay_host = server.url.removeprefix("http://")
    site.segment_settings = {"integrations": {"Segment.io": {"apiKey": WRITE_KEY, "apiHost": f"{relay_host}/v1", "protocol": "http"}}}
    with chromium() as browser:
        context = browser.new_context()
        # The snippet loads from https://<host>; this test's site speaks plain http.
        context.route(re.compile(rf"^https://{re.escape(host)}/"), lambda route: route.fulfill(response=route.fetch(url=as_http(route))))
        page, seen = watched_page(context, server)
        page.goto(f"{site.url}/pricing")  # the snippet's analytics.page(): an anonymous visitor's page view
        page.evaluate("() => new Promise((resolve) => analytics.ready(resolve))")
        page.evaluate("() => analytics.identify('u-snippet', { email: 'snippet@example.com', name: 'Snip Pet' })")
        wait_for(lambda: accepted_count(redis) == 2, what="the page view and the identify accepted")
    assert seen["offline"] == [] and seen["failed"] == [] and seen["console"] == [], seen
    # With a route set, Playwright answers the browser's preflights itself: only the POSTs reach the relay.
    assert set(server.answers) == {("POST", "/v1/p", 200), ("POST", "/v1/i", 200)}
    wait_until_finished(redis, workers, timeout=90)

    # The page view came before the identify, from the anonymous id that the identify names with the userId.
    contact = contacts_by_email(fake)["snippet@example.com"]
    assert (contact["role"], contact["external_id"]) == ("user", "u-snippet")
    assert events_of(fake, contact) == ["viewed pricing page"]


def as_http(route: Any) -> str:
    return "http://" + route.request.url.removeprefix("https://")


def test_analytics_js_on_a_page_not_in_cors_origins_is_refused(redis, redis_url, site):
    other_site = StaticSite().start()  # the same page on another origin (port), not in CORS_ORIGINS
    server = ingestion_server(redis, redis_url, cors_origins=(site.url,))
    try:
        with chromium() as browser:
            page, seen = browser_session(browser, other_site, server)
            page.evaluate("() => window.relayAnalytics.track('Signed Up')")
            # An older analytics.js: a simple request, no preflight; the browser sends it, the server refuses it.
            page.evaluate(
                "([url, key]) => fetch(url, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'},"
                " body: JSON.stringify({writeKey: key, userId: 'u-elsewhere', event: 'Old Style'})})",
                [f"{server.url}/v1/t", WRITE_KEY],
            )
    finally:
        server.stop()
        other_site.stop()
    assert ("OPTIONS", "/v1/t", 403) in server.answers and "/v1/t" in seen["failed"]
    assert any("blocked by CORS policy" in line for line in seen["console"]), seen["console"]
    assert ("POST", "/v1/t", 403) in server.answers  # the simple request reached the server, which refused it
    assert accepted_count(redis) == 0


def wait_for(condition: Any, *, what: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)
