"""The one builder of the worker and beat command lines (worker/worker_command.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from worker.worker_command import beat_command, worker_command


def test_a_worker_runs_celery_in_this_interpreter_with_a_threads_pool_and_its_name() -> None:
    command = worker_command("w1", 8)
    assert command[:6] == [sys.executable, "-m", "celery", "-A", "worker", "worker"]
    assert command[command.index("--pool") + 1] == "threads" and command[command.index("-c") + 1] == "8"
    assert command[command.index("-n") + 1] == "w1@%h"
    assert "-E" in command and "-B" not in command


def test_task_events_and_an_inner_beat_are_chosen_by_the_caller() -> None:
    assert "-E" not in worker_command("bench0", 4, events=False)
    command = worker_command("demo", 16, beat_schedule=Path("/tmp/schedule"))
    assert "-B" in command and command[command.index("-s") + 1] == "/tmp/schedule"


def test_beat_keeps_its_schedule_where_it_is_told() -> None:
    command = beat_command(Path("/tmp/beat-schedule"), loglevel="INFO")
    assert command == [sys.executable, "-m", "celery", "-A", "worker", "beat", "-s", "/tmp/beat-schedule", "--loglevel", "INFO"]


def test_the_procfiles_worker_keeps_the_apps_pool_and_its_peers() -> None:
    command = worker_command("w1", None, peers=True, extra=["--prefetch-multiplier", "4"])
    assert "--pool" not in command and "-c" not in command
    assert "--without-mingle" not in command and "--without-gossip" not in command
    assert command[-2:] == ["--prefetch-multiplier", "4"]
