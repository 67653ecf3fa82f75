"""Run the fake: blocking (`serve`), in a background thread, or as a separate process.

Both handles talk to the running fake only through its ``/_fake/`` control endpoints, so a
test written against a thread handle works unchanged against a subprocess handle.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx
import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import FakeConfig
from .runtime import FakeIntercom

#: How long a start waits for the server to listen before giving up.
START_TIMEOUT_SECONDS = 15.0

#: The environment variable that carries a child's config (not argv: tokens stay out of `ps`).
CONFIG_ENV = "FAKE_INTERCOM_CONFIG"

#: The repository root, so a child process can import this package without installation.
_PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket; port 0 picks a free one we can report before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, noticing `should_exit` within 10 ms instead of 100 ms, so a test
    suite that starts a fresh fake per test does not spend its time stopping them."""

    async def main_loop(self) -> None:
        ticks = 0
        while not self.should_exit:
            await asyncio.sleep(0.01)
            ticks += 1
            # uvicorn's own housekeeping (Date header, max-requests) keeps its 100 ms pace.
            if ticks % 10 == 0 and await self.on_tick(ticks // 10):
                return


def _uvicorn_server(config: FakeConfig) -> uvicorn.Server:
    app = create_app(config)
    return _Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # the fake keeps its own request log; never print headers
            lifespan="off",
            proxy_headers=False,
            timeout_graceful_shutdown=2,
            # Benchmarks open many connections at once.
            backlog=4096,
        )
    )


def serve(host: str, port: int, config: FakeConfig | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM). `on_ready` gets the base URL once bound."""
    config = (config or FakeConfig()).changed(host=host, port=port)
    sock = _bind(host, port)
    server = _uvicorn_server(config)
    if on_ready:
        on_ready(_url(sock, host))
    server.run(sockets=[sock])


class FakeHandle:
    """A running fake, controlled over HTTP through its ``/_fake/`` endpoints."""

    url: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._control: httpx.Client | None = None

    @property
    def control(self) -> httpx.Client:
        """An httpx client on the control endpoints (created on first use)."""
        if self._control is None:
            self._control = httpx.Client(base_url=self.url, timeout=30.0)
        return self._control

    def _get(self, endpoint: str, /, **params: Any) -> Any:
        response = self.control.get(f"/_fake/{endpoint}", params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def _post(self, endpoint: str, body: dict[str, Any]) -> Any:
        response = self.control.post(f"/_fake/{endpoint}", json=body)
        if response.status_code == 400:
            raise ValueError(response.json().get("error", response.text))
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        """GET /_fake/state: contacts, events per contact, companies, attachments, merges."""
        return self._get("state")

    def requests(
        self,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        route: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """GET /_fake/requests: logged API calls matching every given filter, oldest first."""
        return self._get("requests", method=method, path=path, status=status, route=route, since=since, limit=limit)["requests"]

    def stats(self) -> dict[str, Any]:
        """GET /_fake/stats: counters per status, route, window; 429s; max calls per window."""
        return self._get("stats")

    def config(self) -> dict[str, Any]:
        """GET /_fake/config (tokens redacted)."""
        return self._get("config")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """POST /_fake/config: change FakeConfig fields at runtime, plus `add_contact_attributes`,
        `add_company_attributes`, `outage_in` and `queue_faults`."""
        return self._post("config", changes)

    def queue_faults(self, status: int | str, count: int = 1) -> dict[str, Any]:
        """Answer the next `count` API calls with `status` (or "drop")."""
        return self._post("faults", {"status": status, "count": count})

    def add_custom_attributes(
        self, contacts: list[str] | tuple[str, ...] = (), companies: list[str] | tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Create custom attribute names in the workspace (so a refused call can be replayed)."""
        return self.configure(add_contact_attributes=list(contacts), add_company_attributes=list(companies))

    def seed(
        self,
        contacts: Iterable[dict[str, Any]] = (),
        companies: Iterable[dict[str, Any]] = (),
        data_attributes: Iterable[dict[str, Any]] = (),
    ) -> dict[str, list[str]]:
        """POST /_fake/seed: a workspace made before the relay; returns the new ids in order."""
        return self._post("seed", {"contacts": list(contacts), "companies": list(companies), "data_attributes": list(data_attributes)})

    def admin_delete(self, contact: str | None = None, company: str | None = None) -> dict[str, Any]:
        """POST /_fake/admin/delete: an admin deletes a contact or a company (by Intercom id)."""
        return self._post("admin/delete", {"contact": contact} if contact else {"company": company})

    def admin_merge(self, lead: str, user: str) -> dict[str, Any]:
        """POST /_fake/admin/merge: an admin merges a lead into a user."""
        return self._post("admin/merge", {"from": lead, "into": user})

    def reset(self, config: bool = False) -> None:
        """POST /_fake/reset: empty state, log and counters (and restore the start config)."""
        self._post("reset", {"config": config})

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Poll /_fake/health until it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.control.get("/_fake/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake Intercom at {self.url} did not become ready")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (subclasses) and close the control client."""
        if self._control is not None:
            self._control.close()
            self._control = None

    def __enter__(self) -> FakeHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadHandle(FakeHandle):
    """A fake served by uvicorn on its own event loop in a daemon thread."""

    def __init__(self, url: str, server: uvicorn.Server, thread: threading.Thread) -> None:
        super().__init__(url)
        self.server = server
        self.thread = thread

    @property
    def runtime(self) -> FakeIntercom:
        """The in-process `FakeIntercom` (thread handles only; prefer the HTTP methods)."""
        app = self.server.config.app
        assert isinstance(app, Starlette), "a thread handle serves the app of create_app"
        return app.state.fake

    def stop(self, wait: bool = True) -> None:
        """Ask uvicorn to exit; with `wait`, block until the thread is gone (uvicorn's graceful
        shutdown takes ~0.1 s, which test fixtures may prefer not to wait for)."""
        super().stop()  # close our keep-alive connection first, so shutdown need not wait
        self.server.should_exit = True
        if wait:
            self.thread.join(timeout=10)


def start_in_thread(config: FakeConfig | None = None) -> ThreadHandle:
    """Start a fake in a background thread; returns once it accepts connections."""
    config = config or FakeConfig()
    sock = _bind(config.host, config.port)
    url = _url(sock, config.host)
    server = _uvicorn_server(config.changed(port=sock.getsockname()[1]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-intercom", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("fake Intercom thread failed to start")
        time.sleep(0.005)
    return ThreadHandle(url, server, thread)


class ProcessHandle(FakeHandle):
    """A fake running as ``python -m fake_intercom`` in a child process."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        super().__init__(url)
        self.process = process

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child by its pid, then SIGKILL it if it has not exited in time."""
        super().stop()
        if self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout)


def start_in_subprocess(config: FakeConfig | None = None, quiet: bool = True) -> ProcessHandle:
    """Start a fake in a child process; returns once it answers on its control endpoint.

    The child writes its URL to a ready-file (so port 0 works) and gets its config through
    the environment (so tokens are not visible in the process list).
    """
    config = config or FakeConfig()
    with tempfile.TemporaryDirectory(prefix="fake-intercom-") as tmp:
        ready_file = Path(tmp) / "url"
        env = dict(os.environ)
        env[CONFIG_ENV] = config.to_json()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        output = subprocess.DEVNULL if quiet else None
        process = subprocess.Popen(
            [sys.executable, "-m", "fake_intercom", "--ready-file", str(ready_file)],
            env=env,
            stdout=output,
            stderr=output,
        )
        url = _wait_for_ready_file(ready_file, process)
    handle = ProcessHandle(url, process)
    try:
        handle.wait_ready()
    except TimeoutError:
        handle.stop()
        raise
    return handle


def _wait_for_ready_file(path: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake Intercom process exited with status {process.returncode}")
        if path.exists():
            text = path.read_text().strip()
            if text:
                return json.loads(text)["url"]
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    raise TimeoutError("fake Intercom process did not start")
