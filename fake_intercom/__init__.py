"""A stateful fake of Intercom's REST API 2.16, for tests, the demo and benchmarks.

Faithful to Intercom's *documented* behaviour (see the module docstrings for the sources);
undocumented choices are marked "undocumented" where they are made.

Modules: `config` (FakeConfig), `schemas` (request bodies), `search` (contact search),
`state` (the workspace model), `traffic` (rate limits, faults, request log, stats),
`runtime` (all of it plus a lock), `app` (the Starlette app), `server` (running it).
"""

from .app import create_app
from .config import FakeConfig
from .runtime import FakeIntercom
from .server import FakeHandle, ProcessHandle, ThreadHandle, serve, start_in_subprocess, start_in_thread

__all__ = [
    "FakeConfig",
    "FakeHandle",
    "FakeIntercom",
    "ProcessHandle",
    "ThreadHandle",
    "create_app",
    "serve",
    "start_in_subprocess",
    "start_in_thread",
]
