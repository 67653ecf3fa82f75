"""Replay a JSON Lines file of Segment events into the pipeline.

For backfills and for re-sending an export: one event per line, ``-`` for
stdin.  The file is streamed (memory stays flat whatever its size), valid lines
are accepted in batches of :data:`REPLAY_BATCH`, and each bad line is reported
with its number and reason while the rest go on.  The CLI calls :func:`replay`
and prints :func:`format_summary`.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Iterator

from producers.enqueue import BackPressure, Enqueuer
from producers.events import MAX_EVENT_BYTES, InvalidEvent, validate_event

#: Lines per ``accept``: a batch costs a few Redis round trips however large,
#: so bigger is faster, and 500 events stay well under a megabyte in memory.
REPLAY_BATCH = 500

#: The longest line read whole.  Twice the event limit leaves room for a
#: pretty-printed event; anything longer is refused without being held.
MAX_LINE_BYTES = 2 * MAX_EVENT_BYTES

#: Refusals kept with their reason; past this only the count grows, so that a
#: file of nothing but bad lines still replays in constant memory.
MAX_REPORTED_REFUSALS = 10_000

#: Refusals ``format_summary`` lists before "… and N more".
SHOWN_REFUSALS = 20


@dataclass
class ReplaySummary:
    """What a replay did.  ``refused`` is (line number, reason), the first MAX_REPORTED_REFUSALS."""

    accepted: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    lines: int = 0
    refused_total: int = 0
    dry_run: bool = False

    def refuse(self, line: int, reason: str) -> None:
        self.refused_total += 1
        if len(self.refused) < MAX_REPORTED_REFUSALS:
            self.refused.append((line, reason))


def replay(path_or_dash: str, enqueuer: Enqueuer | None, *, dry_run: bool = False, progress: bool | None = None) -> ReplaySummary:
    """Validate every line of ``path_or_dash`` and accept the valid ones.

    ``dry_run`` validates only (``enqueuer`` may then be None).  ``progress``
    shows a tqdm bar on stderr; None means "when stderr is a terminal".
    """
    summary = ReplaySummary(dry_run=dry_run)
    with _open(path_or_dash) as stream:
        bar = _progress_bar(stream, path_or_dash, progress)
        try:
            batch: list[dict] = []
            for number, line in _lines(stream, bar):
                summary.lines = number
                event = _parse(number, line, summary)
                if event is not None:
                    batch.append(event)
                if len(batch) >= REPLAY_BATCH:
                    _flush(batch, enqueuer, summary, dry_run)
            _flush(batch, enqueuer, summary, dry_run)
        finally:
            if bar is not None:
                bar.close()
    if summary.refused_total and enqueuer is not None and not dry_run:
        enqueuer.counters.incr("refused", summary.refused_total)
    return summary


def format_summary(summary: ReplaySummary) -> str:
    """A few human lines: the counts, then the first refused lines with their reasons."""
    verb = "valid (dry run, nothing accepted)" if summary.dry_run else "accepted"
    text = [f"{summary.lines:,} lines: {summary.accepted:,} {verb}, {summary.refused_total:,} refused"]
    for line, reason in summary.refused[:SHOWN_REFUSALS]:
        text.append(f"  line {line}: {reason}")
    if summary.refused_total > SHOWN_REFUSALS:
        text.append(f"  … and {summary.refused_total - SHOWN_REFUSALS:,} more refused lines")
    return "\n".join(text)


def _open(path_or_dash: str) -> IO[bytes]:
    """The file in binary mode, or stdin's bytes for ``-`` (not closed afterwards)."""
    if path_or_dash == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(path_or_dash, "rb")


def _lines(stream: IO[bytes], bar: Any) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) pairs from 1, advancing the bar; None for an overlong line.

    Lines are read at most MAX_LINE_BYTES at a time, so that a file with no
    newlines in it cannot make us hold the whole of it.
    """
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES)
        if not line:
            return
        number += 1
        size = len(line)
        overlong = size == MAX_LINE_BYTES and not line.endswith(b"\n")
        while overlong:  # skip the rest of it
            rest = stream.readline(MAX_LINE_BYTES)
            size += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        if bar is not None:
            bar.update(size)
        yield number, None if overlong else line


def _parse(number: int, line: bytes | None, summary: ReplaySummary) -> dict | None:
    """The validated event of one line; None (and a refusal) when it is bad or blank."""
    if line is None:
        summary.refuse(number, f"the line is over {MAX_LINE_BYTES} bytes; an event is at most {MAX_EVENT_BYTES} bytes")
        return None
    if not line.strip():
        return None
    try:
        return validate_event(json.loads(line), received_at=datetime.now(timezone.utc))
    except json.JSONDecodeError as exc:
        summary.refuse(number, f"not valid JSON: {exc.msg} at column {exc.colno}")
    except UnicodeDecodeError:
        summary.refuse(number, "not valid JSON: not UTF-8 text")
    except InvalidEvent as exc:
        summary.refuse(number, str(exc))
    return None


def _flush(batch: list[dict], enqueuer: Enqueuer | None, summary: ReplaySummary, dry_run: bool) -> None:
    """Accept the batch (waiting out back-pressure) and empty it."""
    if not batch:
        return
    if not dry_run:
        assert enqueuer is not None, "replay needs an enqueuer unless dry_run"
        while True:
            try:
                enqueuer.accept(batch)
                break
            except BackPressure as exc:
                # A replay is a backfill: waiting for the workers to catch up is
                # what the operator wants, rather than stopping half-way.
                time.sleep(exc.retry_after)
    summary.accepted += len(batch)
    batch.clear()


def _progress_bar(stream: IO[bytes], path_or_dash: str, progress: bool | None) -> Any:
    """A tqdm bar in bytes (total known for a regular file), or None when quiet."""
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm  # noqa: PLC0415 - needed only on a terminal

    total = None
    mode = os.fstat(stream.fileno()).st_mode
    if stat.S_ISREG(mode):
        total = os.fstat(stream.fileno()).st_size
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        desc=os.path.basename(path_or_dash) if path_or_dash != "-" else "stdin",
        dynamic_ncols=True,
    )
