"""Real Segment-compatible client libraries sending to the server the suite starts.

* segment-analytics-python (module ``segment.analytics``) and rudder-sdk-python
  (module ``rudderstack.analytics``) live in the test environment (the ``test``
  extra of pyproject.toml).
* analytics-python 1.4 (Segment's old library, module ``analytics``) cannot:
  it pins ``backoff==1.10.0`` where rudder-sdk-python needs ``backoff>=2.2.1``,
  and its wheel also ships ``segment/analytics/*``, overwriting
  segment-analytics-python's files.  The test installs it with
  ``pip install --target`` into its own directory under the user's cache
  (``$XDG_CACHE_HOME`` or ``~/.cache``: ``intercom-relay/test-clients/``, made
  once and reused) and runs it in a subprocess with ``python -S`` and
  ``PYTHONPATH`` set to that directory, so it sees none of the test
  environment's packages.  Delete that directory to reinstall.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.producers import WRITE_KEY, accepted_count, queued_events, refused_count

OLD_ANALYTICS = "analytics-python==1.4.post1"


def test_segment_analytics_python_in_sync_mode(live_server, redis):
    from segment.analytics import Client

    client = Client(WRITE_KEY, host=live_server.url, sync_mode=True, max_retries=0)
    client.identify("u-seg", {"email": "seg@example.com", "plan": "pro"})
    client.track("u-seg", "Order Completed", {"revenue": 12.5})
    client.group("u-seg", "acme", {"name": "Acme"})
    client.page("u-seg", "Docs", "Install")
    client.alias("anon-seg", "u-seg")
    assert accepted_count(redis) == 5
    identify, track, group, page, alias = queued_events(redis)
    assert identify["traits"] == {"email": "seg@example.com", "plan": "pro"}
    assert (track["event"], track["properties"]) == ("Order Completed", {"revenue": 12.5})
    assert (group["groupId"], page["name"], alias["previousId"]) == ("acme", "Install", "anon-seg")
    assert identify["context"]["library"]["name"] == "analytics-python"
    assert all("writeKey" not in e for e in queued_events(redis))


def test_segment_analytics_python_batched_with_gzip(live_server, redis):
    from segment.analytics import Client

    errors = []
    client = Client(WRITE_KEY, host=live_server.url, gzip=True, upload_size=100, on_error=lambda error, batch: errors.append(error))
    for i in range(250):
        client.track(f"u{i % 7}", "Feature Used", {"i": i})
    client.flush()
    client.shutdown()
    assert errors == []
    events = queued_events(redis)
    assert len(events) == accepted_count(redis) == 250
    assert sorted(e["properties"]["i"] for e in events) == list(range(250))


def test_segment_analytics_python_hears_a_wrong_key(live_server, redis):
    from segment.analytics import Client

    errors = []
    client = Client("wk_wrong", host=live_server.url, max_retries=0, on_error=lambda e, b: errors.append(e))
    client.track("u1", "E")
    client.flush()
    client.shutdown()
    assert errors and errors[0].status == 401
    assert accepted_count(redis) == 0


def test_rudder_sdk_python_with_gzip_and_traits_only_in_context(live_server, redis):
    from rudderstack.analytics import Client

    client = Client(WRITE_KEY, host=live_server.url, gzip=True, sync_mode=True, max_retries=0)
    client.identify("u-rudder", {"email": "rudder@example.com"})
    client.track("u-rudder", "Signed Up", {"source": "ads"})
    client.group("u-rudder", "globex", {"name": "Globex"})
    identify, track, group = queued_events(redis)
    # rudder-sdk-python puts identify traits only in context.traits: kept as sent
    # for the mapping layer to fall back on.
    assert "traits" not in identify
    assert identify["context"]["traits"] == {"email": "rudder@example.com"}
    assert (track["event"], group["groupId"]) == ("Signed Up", "globex")
    assert accepted_count(redis) == 3


def test_rudder_sdk_python_batched(live_server, redis):
    from rudderstack.analytics import Client

    client = Client(WRITE_KEY, host=live_server.url, gzip=True, upload_size=50)
    for i in range(120):
        client.track(f"r{i}", "Feature Used")
    client.flush()
    client.shutdown()
    assert accepted_count(redis) == 120


def _old_analytics_dir() -> Path:
    """analytics-python 1.4 and its pinned dependencies in a directory of their own."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "intercom-relay" / "test-clients" / OLD_ANALYTICS.replace("==", "-")
    if (target / "analytics" / "client.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-conflicts",
            "--target",
            str(staging),
            OLD_ANALYTICS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"could not install {OLD_ANALYTICS} into {staging} (needs PyPI):\n{result.stderr[-2000:]}")
    try:
        staging.rename(target)  # atomic: a half-made install is never taken for a whole one
    except OSError:
        pass  # another run made it first
    return target


def test_analytics_python_1_4_in_its_own_directory(live_server, redis):
    script = textwrap.dedent(f"""
        import sys
        assert not any("site-packages" in p and "test-clients" not in p for p in sys.path), sys.path
        import analytics
        assert analytics.VERSION == "1.4.post1", analytics.VERSION
        client = analytics.Client({WRITE_KEY!r}, host={live_server.url!r}, sync_mode=True, max_retries=0)
        client.identify("u-old", {{"email": "old@example.com"}})
        client.track("u-old", "Order Completed", {{"revenue": 3}})
        client.group("u-old", "initech", {{"name": "Initech"}})
        batched = analytics.Client({WRITE_KEY!r}, host={live_server.url!r}, gzip=True)
        for i in range(30):
            batched.track("u-old", "Feature Used", {{"i": i}})
        batched.flush()
        batched.shutdown()
        print("sent")
    """)
    env = {"PYTHONPATH": str(_old_analytics_dir()), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    events = queued_events(redis)
    assert accepted_count(redis) == 33
    identify, track, group = events[:3]
    assert identify["traits"] == {"email": "old@example.com"}
    assert (track["event"], track["properties"]) == ("Order Completed", {"revenue": 3})
    assert group["groupId"] == "initech"
    assert identify["context"]["library"] == {"name": "analytics-python", "version": "1.4.post1"}
    assert refused_count(redis) == 0
