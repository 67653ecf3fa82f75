"""Pinning a worker process to one CPU (the WORKER_CPU setting).

A worker runs its deliveries in 32 threads that take turns holding Python's
GIL, so its Python code never uses more than one core at a time.  Left to
the scheduler, those threads wake on every core and hand the GIL from core
to core, and that costs CPU of its own: the same deliveries in one process
of 32 threads took 2.32 ms of CPU per event on both cores of the benchmark
machine and 1.72 ms pinned to one (1.30 ms in one thread; bench/threads.py).
Pinning loses nothing a threads pool could have used.

It is off unless asked for: several workers on one machine must be pinned
to different CPUs, which only whoever deploys them knows (WORKER_CPU=<n>
per process), or left to ``auto``, which picks the CPU that was idlest over
a fifth of a second at start (right for one worker per machine or container,
or for workers started one after another).
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("worker.cpu")


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (all of them, or its container's cpuset)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def choose(setting: str) -> int | None:
    """The CPU to pin to for a WORKER_CPU value ("off", "auto" or a CPU number); None for none."""
    if setting in ("", "off"):
        return None
    if setting == "auto":
        cpus = allowed_cpus()
        return idlest(cpus) if len(cpus) > 1 else None
    return int(setting)


def idlest(cpus: list[int], seconds: float = 0.2) -> int:
    """The CPU with the most idle time over ``seconds`` (the first of equals)."""
    before = _idle_ticks()
    time.sleep(seconds)
    after = _idle_ticks()
    return max(cpus, key=lambda cpu: (after.get(cpu, 0) - before.get(cpu, 0), -cpu))


def pin(cpu: int) -> None:
    """Pin every thread of this process to ``cpu``; threads started later inherit it."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except ProcessLookupError:  # a thread that ended meanwhile
            pass
    log.info("worker pinned to CPU %d (WORKER_CPU)", cpu)


def _idle_ticks() -> dict[int, int]:
    """Idle + iowait ticks per CPU, from /proc/stat."""
    ticks = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks[int(name[3:])] = int(values[3]) + int(values[4])
    return ticks
