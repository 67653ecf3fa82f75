"""The Procfile: the same four processes as docker-compose.yml, brought up for real with honcho.

A real Redis (the suite's ``redis_url``) and the fake Intercom (a child
process) stand in for the managed services.  An event POSTed to ``web`` must
reach the fake Intercom, and Flower must report the worker and the task.
Honcho is stopped by its pid (it forwards SIGTERM to its process groups);
any descendant still alive afterwards is a failure, and is killed by pid.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

from demo.embedded_redis import free_port
from fake_intercom import FakeConfig, start_in_subprocess
from tests.processes import ROOT, child_env, descendants, kill_leftovers, start, stop, tail, wait_until

PROCFILE = ROOT / "Procfile"
PROCESSES = ("web", "worker", "beat", "flower")


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_runs_the_same_processes_as_compose() -> None:
    entries = procfile()
    assert tuple(entries) == PROCESSES
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("worker", "beat"):
        compose = services[name]["command"]
        assert entries[name].split()[:4] == compose[:4], name
    assert entries["web"].startswith("intercom-relay serve") and "$PORT" in entries["web"]
    assert "-E" in entries["worker"].split(), "task events must be on for Flower"
    # Flower through the launcher that checks FLOWER_BASIC_AUTH first, as in compose.
    assert entries["flower"].split()[:2] == services["flower"]["command"][:2] == ["intercom-relay", "flower"]


def intercom_relay_on_path(env: dict[str, str], bin_dir: Path) -> None:
    """Make ``intercom-relay`` resolvable when the project is not pip-installed in this interpreter."""
    if shutil.which("intercom-relay", path=env["PATH"]):
        return
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "intercom-relay"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cli "$@"\n')
    shim.chmod(0o755)
    env["PATH"] = os.pathsep.join((str(bin_dir), env["PATH"]))


@pytest.fixture
def fake() -> Iterator[tuple]:
    """The fake Intercom in a child process, and the one token it accepts."""
    token = "procfile-" + secrets.token_hex(6)
    handle = start_in_subprocess(FakeConfig(tokens=(token,)))
    yield handle, token
    handle.stop()


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_the_procfile_stack_delivers_and_flower_sees_it(redis, redis_url: str, fake, tmp_path: Path) -> None:
    fake, token = fake
    web_port, flower_port = free_port(), free_port()
    write_key, flower_auth = "wk-" + secrets.token_urlsafe(24), ("ops", secrets.token_hex(8))
    settings = {
        "REDIS_URL": redis_url,
        "INTERCOM_API_URL": fake.url,
        "INTERCOM_ACCESS_TOKEN": token,
        "WRITE_KEYS": write_key,
        "PORT": str(web_port),
        "FLOWER_PORT": str(flower_port),
        "FLOWER_BASIC_AUTH": ":".join(flower_auth),
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
    }
    env = child_env(**settings)
    intercom_relay_on_path(env, tmp_path / "bin")
    # An env file of our own, so that a developer's .env in the repository is not read.
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    log = tmp_path / "honcho.log"
    honcho = start(
        [
            sys.executable,
            "-m",
            "honcho",
            "-f",
            str(PROCFILE),
            "-d",
            str(ROOT),
            "-e",
            str(env_file),
            "--no-colour",
            "start",
            "-p",
            str(web_port),
        ],
        env,
        log,
    )
    web, flower = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{flower_port}"
    children: set[int] = set()
    try:
        wait_until(lambda: httpx.get(f"{web}/ready", timeout=2).status_code == 200, 60, "web to be ready")
        children.update(descendants(honcho.pid))

        # Flower up first: it shows only the tasks whose events it was there to hear.
        auth = httpx.BasicAuth(*flower_auth)
        assert wait_until(lambda: httpx.get(f"{flower}/api/workers", timeout=5).status_code == 401, 60, "Flower to ask for credentials")
        workers = wait_until(
            lambda: httpx.get(f"{flower}/api/workers", params={"refresh": "1"}, auth=auth, timeout=15).json(),
            60,
            "Flower to list the worker",
        )
        assert any(name.startswith("celery@") for name in workers), workers

        post_events(web, write_key)
        state = wait_until(lambda: delivered(fake), 60, "the events to reach the fake Intercom")
        assert state["contacts"][0]["external_id"] == "procfile-user-1"
        tasks = wait_until(lambda: flower_tasks(flower, auth, "intercom.identify_contact"), 60, "Flower to show the identify task")
        assert {t["state"] for t in tasks} == {"SUCCESS"}, tasks
        # The track ran in a task of its own, or in the identify's task, whose result counts it.
        tracks = flower_tasks(flower, auth, "intercom.track_event")
        assert tracks or any("track_event" in str(t.get("result")) for t in tasks), tasks
        metrics = httpx.get(f"{flower}/metrics", auth=auth, timeout=10).text
        assert "flower_events_total" in metrics
        children.update(descendants(honcho.pid))
    except Exception:
        print(tail(log, 120))
        raise
    finally:
        children.update(descendants(honcho.pid))
        stop(honcho, timeout=60)
        leftovers = kill_leftovers(children)
    assert honcho.returncode is not None
    assert leftovers == [], f"honcho left processes behind: {leftovers}\n{tail(log)}"
    assert len(children) >= len(PROCESSES), f"expected at least one process per Procfile entry: {children}"


def post_events(web: str, write_key: str) -> None:
    """An identify and a track for one user, as a Segment library would send them."""
    batch = [
        {"type": "identify", "userId": "procfile-user-1", "traits": {"email": "procfile@example.com", "name": "Pro File"}},
        {"type": "track", "userId": "procfile-user-1", "event": "Procfile Tested", "properties": {"ok": True}},
    ]
    response = httpx.post(f"{web}/v1/batch", json={"batch": batch}, auth=(write_key, ""), timeout=10)
    assert response.status_code == 200, response.text


def delivered(fake) -> dict | None:
    state = fake.state()
    events = [e for evs in state["events"].values() for e in evs]
    return state if state["contacts"] and any(e["event_name"] == "procfile tested" for e in events) else None


def flower_tasks(flower: str, auth: httpx.BasicAuth, name: str) -> list[dict]:
    tasks = httpx.get(f"{flower}/api/tasks", auth=auth, timeout=10).json()
    return [t for t in tasks.values() if t.get("name") == name and t.get("state") in ("SUCCESS", "FAILURE")]


def test_the_procfiles_flower_keeps_its_credentials_off_the_command_line() -> None:
    """FLOWER_BASIC_AUTH reaches Flower through the environment, checked by the launcher
    (refusals: tests/test_secrets.py); a command line is readable by every user (ps)."""
    assert "FLOWER_BASIC_AUTH" not in procfile()["flower"] and "--basic-auth" not in procfile()["flower"]
