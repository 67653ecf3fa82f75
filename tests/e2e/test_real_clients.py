"""Real Segment-compatible libraries, all the way to Intercom.

Each library sends to the ingestion server the suite starts; a real celery
worker delivers to the fake Intercom; the test reads what Intercom holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from producers.enqueue import Enqueuer
from producers.http import create_app
from tests.e2e.harness import wait_until_finished
from tests.producers import WRITE_KEY, LiveServer
from tests.producers.test_real_clients import _old_analytics_dir
from worker.celery_app import create_app as create_celery_app
from worker.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def relay(redis, redis_url, fake_intercom_factory, fleet):
    """Ingestion server + worker + beat against a fresh fake Intercom."""
    fake = fake_intercom_factory()
    settings = Settings(redis_url=redis_url, write_keys=(WRITE_KEY,))
    server = LiveServer(create_app(settings, Enqueuer(redis, create_celery_app(settings), max_backlog=10**6))).start()
    workers = fleet(fake.url)
    workers.worker("w1", concurrency=8)
    workers.beat()
    yield server, fake, workers
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
