"""Replay: JSON Lines streamed in, bad lines reported by number, the rest accepted."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

from producers import replay as replay_module
from producers.replay import MAX_LINE_BYTES, ReplaySummary, format_summary, replay
from tests.producers import accepted_count, make_event, queued_events, refused_count


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_valid_lines_are_accepted_and_bad_ones_reported_by_line_number(tmp_path, enqueuer, redis):
    path = write_lines(
        tmp_path / "events.jsonl",
        [
            json.dumps(make_event(userId="a")),
            "{not json",
            json.dumps(make_event(userId=None)),
            "",
            json.dumps(make_event("identify", userId="b")),
            json.dumps(make_event("purchase")),
        ],
    )
    summary = replay(path, enqueuer, progress=False)
    assert (summary.accepted, summary.lines, summary.refused_total) == (2, 6, 3)
    assert [line for line, _ in summary.refused] == [2, 3, 6]
    assert "not valid JSON" in summary.refused[0][1]
    assert "userId" in summary.refused[1][1] and "'purchase'" in summary.refused[2][1]
    assert [e["userId"] for e in queued_events(redis)] == ["a", "b"]
    assert (accepted_count(redis), refused_count(redis)) == (2, 3)


def test_lines_are_accepted_in_batches(tmp_path, enqueuer, redis, monkeypatch):
    sizes: list[int] = []
    real_accept = enqueuer.accept

    def accept(events):
        sizes.append(len(events))
        return real_accept(events)

    enqueuer.accept = accept
    path = write_lines(tmp_path / "e.jsonl", [json.dumps(make_event(userId=f"u{i}")) for i in range(1_234)])
    assert replay(path, enqueuer, progress=False).accepted == 1_234
    assert sizes == [500, 500, 234]


def test_dry_run_validates_only(tmp_path, enqueuer, redis):
    path = write_lines(tmp_path / "e.jsonl", [json.dumps(make_event()), "[]"])
    summary = replay(path, None, dry_run=True, progress=False)
    assert (summary.accepted, summary.refused) == (1, [(2, "the event must be a JSON object, not an array")])
    assert accepted_count(redis) == 0 and queued_events(redis) == []
    assert "dry run" in format_summary(summary)


def test_an_overlong_line_is_refused_without_being_held(tmp_path, enqueuer, redis):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"x": "' + b"y" * (MAX_LINE_BYTES * 3) + b'"}\n' + json.dumps(make_event()).encode() + b"\n")
    summary = replay(str(path), enqueuer, progress=False)
    assert summary.accepted == 1 and summary.refused[0][0] == 1 and "over" in summary.refused[0][1]


def test_stdin_is_read_for_a_dash(redis_url, redis):
    script = textwrap.dedent(f"""
        import celery, redis
        from producers.enqueue import Enqueuer
        from producers.replay import replay, format_summary
        r = redis.Redis.from_url({redis_url!r}, decode_responses=True)
        e = Enqueuer(r, celery.Celery(broker={redis_url!r}), max_backlog=10**6)
        print(format_summary(replay("-", e)))
    """)
    lines = "\n".join(json.dumps(make_event(userId=f"u{i}")) for i in range(3)) + "\n"
    result = subprocess.run([sys.executable, "-c", script], input=lines, capture_output=True, text=True, check=True)
    assert "3 lines: 3 accepted, 0 refused" in result.stdout
    assert result.stderr == ""  # stderr is not a terminal: no progress bar
    assert accepted_count(redis) == 3


def test_progress_bar_counts_bytes_of_a_regular_file(tmp_path, enqueuer, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(replay_module.sys, "stderr", stream)
    path = write_lines(tmp_path / "e.jsonl", [json.dumps(make_event())] * 10)
    replay(path, enqueuer, progress=True)
    output = stream.getvalue()
    assert "100%" in output and "B/s" in output


def test_memory_stays_flat_on_a_large_file(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps(make_event(properties={"pad": "p" * 900})) + "\n"  # ~1 KB
    with open(path, "w") as f:
        for _ in range(60_000):  # ~60 MB
            f.write(line)
    script = textwrap.dedent(f"""
        import resource, sys
        from producers.replay import replay
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        summary = replay({str(path)!r}, None, dry_run=True, progress=False)
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(summary.accepted, grew)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    accepted, grew_kb = int(out[0]), int(out[1])
    assert accepted == 60_000
    assert grew_kb < 20_000, f"replaying 60 MB grew the process by {grew_kb} KB"


def test_format_summary_lists_the_first_refusals():
    summary = ReplaySummary(accepted=5, lines=30)
    for n in range(25):
        summary.refuse(n + 6, f"reason {n}")
    text = format_summary(summary)
    assert text.splitlines()[0] == "30 lines: 5 accepted, 25 refused"
    assert "  line 6: reason 0" in text
    assert text.splitlines()[-1] == "  … and 5 more refused lines"
