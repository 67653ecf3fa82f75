"""The command lines that start a Celery worker and beat, for the Python that starts them.

The demo, the benchmarks and the tests start workers as child processes; each
builds the command here, so that they all run the worker the same way.  The
Procfile and docker-compose.yml write the production command out (a shell
line, a YAML list): ``celery -A worker worker --loglevel INFO -E``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence


def worker_command(
    name: str,
    concurrency: int | None,
    *,
    events: bool = True,
    beat_schedule: Path | None = None,
    peers: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """``celery -A worker worker`` in this interpreter: a threads pool of ``concurrency``, named ``<name>@<host>``.

    ``concurrency`` None keeps the app's own (``worker_concurrency``, as the
    Procfile's worker runs).  Mingle and gossip are off unless ``peers``: a
    worker started for one run has no peers worth waiting for at start.
    ``events`` turns task events on (-E: what Flower and Celery's inspect
    show).  With ``beat_schedule``, beat runs inside the worker (-B): one
    process, for the demo; production runs beat apart.  ``extra`` is added as
    it is (``--prefetch-multiplier 4``).
    """
    command = [sys.executable, "-m", "celery", "-A", "worker", "worker", "-n", f"{name}@%h", "--loglevel", "INFO"]
    if concurrency is not None:
        command += ["--pool", "threads", "-c", str(concurrency)]
    if not peers:
        command += ["--without-mingle", "--without-gossip"]
    if events:
        command.append("-E")
    if beat_schedule is not None:
        command += ["-B", "-s", str(beat_schedule)]
    return command + list(extra)


def beat_command(schedule: Path, loglevel: str = "WARNING") -> list[str]:
    """``celery -A worker beat`` in this interpreter, keeping its schedule in the file ``schedule``."""
    return [sys.executable, "-m", "celery", "-A", "worker", "beat", "-s", str(schedule), "--loglevel", loglevel]
