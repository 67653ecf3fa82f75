"""Process helpers for tests that start real servers and workers.

Everything a test starts, it stops *by pid*: SIGTERM, a wait, then SIGKILL.
Nothing here ever looks processes up by name (no pkill), because other test
runs, other engineers' processes and the machinery around the suite share
this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence, TypeVar, overload

import httpx

from worker.worker_command import worker_command

#: The repository root: child processes import ``worker`` and ``producers`` from it.
ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child: ours, the repo on PYTHONPATH, the venv's bin first on PATH.

    The venv's bin goes first so that ``celery`` and ``honcho`` named in a
    Procfile resolve to the interpreter running the tests.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    # The suite's own REDIS_URL (if any) must not leak into a child meant for another Redis.
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


def start(args: Sequence[str], env: dict[str, str], log: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``args`` with stdout and stderr in ``log`` (read it when a test fails)."""
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    try:
        return subprocess.Popen(list(args), env=env, cwd=str(ROOT), stdout=handle, stderr=subprocess.STDOUT, **popen)
    finally:
        handle.close()  # the child keeps its own copy of the descriptor


def celery_worker(env: dict[str, str], log: Path, name: str = "w1", concurrency: int = 8) -> subprocess.Popen[bytes]:
    """A Celery worker with a threads pool and task events on, as production runs it."""
    return start(worker_command(name, concurrency), env, log)


def stop(process: subprocess.Popen[Any] | None, timeout: float = 30.0) -> int | None:
    """SIGTERM ``process`` by its pid, wait up to ``timeout`` s, then SIGKILL; its exit status."""
    if process is None:
        return None
    if process.poll() is None:
        _signal(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal(process.pid, signal.SIGKILL)
            process.wait(10)
    return process.returncode


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid`` (children, grandchildren…), from /proc."""
    try:
        import psutil  # noqa: PLC0415 - optional: /proc is enough on Linux

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    except ImportError:
        return _descendants_from_proc(pid)


def _descendants_from_proc(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a living process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_leftovers(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, each pid still alive; returns those that were left over."""
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        _signal(pid, signal.SIGTERM)
    wait_until(lambda: not any(alive(pid) for pid in left), timeout, "leftover processes to exit", fail=False)
    for pid in left:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    return left


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@overload
def wait_until(
    predicate: Callable[[], T | Literal[False] | None], timeout: float, what: str, *, interval: float = ..., fail: Literal[True] = ...
) -> T: ...
@overload
def wait_until(
    predicate: Callable[[], T | Literal[False] | None], timeout: float, what: str, *, interval: float = ..., fail: bool
) -> T | None: ...
def wait_until(
    predicate: Callable[[], T | Literal[False] | None], timeout: float, what: str, *, interval: float = 0.2, fail: bool = True
) -> T | None:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout``.

    The predicate answers False or None for "not yet" (``cond and value`` reads well), so the
    value returned is typed without them; with ``fail=False`` a timeout returns None.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (httpx.TransportError, ConnectionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            return None
        time.sleep(interval)


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log, for assertion messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
