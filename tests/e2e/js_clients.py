"""Segment's JavaScript clients, for tests/e2e/test_real_clients.py: node, Chromium, a static site.

* ``tests/js/package.json`` and ``package-lock.json`` pin @segment/analytics-node
  and @segment/analytics-next; :func:`node_modules` runs ``npm ci`` there when
  ``node_modules`` is missing or older than the lock file (needs the npm registry).
* analytics-next runs in headless Chromium: Debian's ``chromium`` package at
  /usr/bin/chromium (``.ci/run`` installs it when missing), driven by Playwright
  for Python with that browser; Playwright never downloads one here.
* :class:`StaticSite` serves ``tests/js/pricing.html`` at ``/pricing`` and the
  library's browser bundle from ``node_modules``: nothing comes from a CDN.
  For Segment's snippet it also serves what Segment's CDN would: the settings
  of a write key (``/v1/projects/<key>/settings``).

A missing node or Chromium fails the test, saying how to get it (.ci/run
installs both when they are missing).
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NoReturn

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.producers import LiveServer

JS_DIR = Path(__file__).resolve().parents[1] / "js"
CHROMIUM = Path("/usr/bin/chromium")
#: No sandbox (CI containers run as root), and nothing that reaches out to Google's servers.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: @segment/analytics-node 3 needs node 20.
NODE_MAJOR = 20


def unavailable(reason: str) -> NoReturn:
    """Fail, saying how to get what is missing: a browser test never passes by not running (.ci/run installs it)."""
    pytest.fail(f"{reason}; .ci/run installs it when it is missing")


def node() -> str:
    """The node executable, version 20 or newer."""
    found = shutil.which("node")
    if not found or not shutil.which("npm"):
        unavailable(f"node {NODE_MAJOR}+ and npm are needed for the JavaScript clients (Debian: apt-get install nodejs npm)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = re.match(r"v(\d+)", version)
    if not major or int(major.group(1)) < NODE_MAJOR:
        unavailable(f"node {NODE_MAJOR}+ is needed for @segment/analytics-node; {found} is {version or 'unknown'}")
    return found


def node_modules() -> Path:
    """tests/js/node_modules as package-lock.json pins it, installed with ``npm ci`` when stale."""
    node()
    installed = JS_DIR / "node_modules" / ".package-lock.json"  # npm ci writes it last
    lock = JS_DIR / "package-lock.json"
    # The suite's parallel workers may all get here at once: one runs npm ci, the others wait for it.
    with open(lock, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            npm = shutil.which("npm") or "npm"
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                pytest.fail(f"npm ci in {JS_DIR} failed (it needs the npm registry):\n{result.stderr[-3000:]}")
    return JS_DIR / "node_modules"


def package_version(name: str) -> str:
    """The installed version of an npm package of tests/js."""
    return json.loads((node_modules() / name / "package.json").read_text())["version"]


def run_node(script: str, *args: str, timeout: float = 120) -> str:
    """Run tests/js/``script`` with node, in tests/js so that ``require`` finds its packages; its stdout."""
    node_modules()
    result = subprocess.run([node(), script, *args], cwd=JS_DIR, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"node failed ({result.returncode}):\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}"
    return result.stdout


def render_snippet(host: str, write_key: str) -> str:
    """Segment's snippet (@segment/snippet) for an analytics.js the site hosts at ``https://<host>``."""
    return run_node("render-snippet.js", host, write_key)


class StaticSite(LiveServer):
    """A web site on its own origin (``http://127.0.0.1:<port>``) with the pricing page on it.

    ``pricing_html`` is the page (tests/js/pricing.html unless changed);
    ``segment_settings`` what ``/v1/projects/<key>/settings`` answers.
    """

    def __init__(self) -> None:
        self.pricing_html = (JS_DIR / "pricing.html").read_text()
        self.segment_settings: dict[str, Any] = {}
        bundles = node_modules() / "@segment" / "analytics-next" / "dist" / "umd"
        routes = [
            Route("/pricing", self._pricing),
            Route("/v1/projects/{key}/settings", self._settings),
            # Where the bundle's own lazy chunks are looked for, beside it.
            Mount("/analytics-next/bundles", StaticFiles(directory=bundles)),
        ]
        # Readable from any page, as from Segment's CDN.
        super().__init__(Starlette(routes=routes, middleware=[Middleware(CORSMiddleware, allow_origins=["*"])]))

    async def _pricing(self, request: Request) -> Response:
        return HTMLResponse(self.pricing_html)

    async def _settings(self, request: Request) -> Response:
        return JSONResponse(self.segment_settings)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium under Playwright, closed at the end."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium is needed at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it when missing)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the browser tests need it
    except ImportError:
        unavailable("Playwright for Python is needed: pip install -e '.[test]' (no browser download: it drives /usr/bin/chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
