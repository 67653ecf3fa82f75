"""WORKER_CPU: pinning a worker process to one CPU (worker/cpu.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from worker import cpu
from worker.settings import Settings, SettingsError


def test_off_and_blank_pin_nothing():
    assert cpu.choose("off") is None
    assert cpu.choose("") is None


def test_a_number_is_that_cpu_and_auto_picks_an_allowed_one():
    allowed = cpu.allowed_cpus()
    assert cpu.choose(str(allowed[-1])) == allowed[-1]
    chosen = cpu.choose("auto")
    assert chosen is None if len(allowed) == 1 else chosen in allowed


def test_the_idlest_cpu_is_the_one_with_most_idle_ticks(monkeypatch):
    readings = iter([{0: 100, 1: 100}, {0: 110, 1: 150}])
    monkeypatch.setattr(cpu, "_idle_ticks", lambda: next(readings))
    assert cpu.idlest([0, 1], seconds=0) == 1


def test_pin_applies_to_every_thread_of_the_process():
    # In a child process: pinning the test process would bind the rest of the suite.
    target = cpu.allowed_cpus()[-1]
    code = textwrap.dedent(f"""
        import os, threading, time
        from worker import cpu
        started = threading.Event()
        threading.Thread(target=lambda: (started.set(), time.sleep(2)), daemon=True).start()
        started.wait()
        cpu.pin({target})
        later = []
        t = threading.Thread(target=lambda: later.append(os.sched_getaffinity(0)))
        t.start(); t.join()
        tasks = os.listdir("/proc/self/task")
        print(all(os.sched_getaffinity(int(tid)) == {{{target}}} for tid in tasks), len(tasks), later[0] == {{{target}}})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    pinned, threads, inherited = out.stdout.split()
    assert (pinned, inherited) == ("True", "True") and int(threads) >= 2


def test_the_setting_is_validated_against_this_machines_cpus():
    assert Settings.from_env({}).worker_cpu == "off"
    assert Settings.from_env({"WORKER_CPU": "Auto"}).worker_cpu == "auto"
    assert Settings.from_env({"WORKER_CPU": str(cpu.allowed_cpus()[0])}).worker_cpu == str(cpu.allowed_cpus()[0])
    for bad in ("999", "-1", "fast"):
        with pytest.raises(SettingsError, match="WORKER_CPU must be off, auto or one of"):
            Settings.from_env({"WORKER_CPU": bad})
