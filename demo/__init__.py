"""``intercom-relay demo``: the whole pipeline on one machine, in about a minute.

What it starts, unless told otherwise by the environment:

* Redis — an embedded ``redis-server`` (demo/embedded_redis.py), unless
  ``REDIS_URL`` is set;
* Intercom — the fake (fake_intercom) in a child process, with a low
  rate limit (100 calls per 10-s window) and some latency, so the sample's
  burst visibly *rides* the limit; unless ``INTERCOM_ACCESS_TOKEN`` is set,
  in which case the real Intercom receives the sample — only with
  ``--yes-send-to-intercom``, because it creates contacts in that workspace;
* a Celery worker (threads pool, embedded beat) and the ingestion server,
  each a child process.

It then sends a sample stream (users, leads, a lead converted into a user,
tracks before identifies, one fast burst) through the HTTP ingestion API,
shows delivery progress, prints what Intercom now holds next to the
pipeline's counts, compares that with ``SampleStream.expected_state()`` and
stops everything it started — by pid, also on Ctrl-C or an error.

With ``--ingest-url`` it starts nothing and drives a relay that already runs
(the ``sample-producer`` service of docker-compose's demo profile does that).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

from demo.embedded_redis import EmbeddedRedis, free_port
from producers.sample import SampleStream
from worker.worker_command import worker_command

#: The fake's rate limit for the demo: low, so a burst of a few hundred calls
#: must wait for the next window instead of being answered 429 and lost.
DEMO_RATE_LIMIT = 100
DEMO_WINDOW_SECONDS = 10
#: Intercom answers in 100-300 ms; a modest latency keeps the demo honest.
DEMO_LATENCY_MS = 60

#: Events per POST /v1/batch: Segment's libraries send batches of about this size.
BATCH_SIZE = 100

#: With nothing left but parked events (waiting for an identify that may never
#: come), the demo stops waiting after this many seconds without progress.
STALL_SECONDS = 15

#: Counters whose growth means "this delivery is finished".
FINISHED = ("delivered", "dead_lettered", "filtered", "duplicate")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


@dataclass
class DemoOptions:
    people: int = 40
    seed: int = 7
    timeout: float = 120.0
    yes_send_to_intercom: bool = False
    ingest_url: str | None = None
    fake_url: str | None = None
    write_key: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


# -- the processes -------------------------------------------------------------


class Stack:
    """The processes the demo started, stopped in reverse order by pid."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.logs = Path(tempfile.mkdtemp(prefix="intercom-relay-demo-"))
        self._exit = ExitStack()
        self.started = False

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.say("stopping what the demo started…")
        self._exit.close()

    def redis(self, env: dict[str, str]) -> str:
        """The Redis URL: REDIS_URL if set, else a fresh embedded redis-server."""
        if env.get("REDIS_URL"):
            self.say(f"Redis: using REDIS_URL ({_redact(env['REDIS_URL'])})")
            return env["REDIS_URL"]
        server = EmbeddedRedis(appendonly=True).start()
        self._exit.callback(server.stop)
        self.started = True
        assert server.process is not None  # start() has set it
        self.say(f"Redis: embedded redis-server (pid {server.process.pid}) on {server.url}")
        return server.url

    def fake_intercom(self) -> tuple[str, str, Any]:
        """Start the fake Intercom; returns its URL, a one-off token and its handle."""
        from fake_intercom import FakeConfig, start_in_subprocess  # noqa: PLC0415

        token = "demo-" + secrets.token_hex(8)
        handle = start_in_subprocess(
            FakeConfig(tokens=(token,), rate_limit=DEMO_RATE_LIMIT, window_seconds=DEMO_WINDOW_SECONDS, latency_ms=DEMO_LATENCY_MS)
        )
        self._exit.callback(handle.stop)
        self.started = True
        self.say(
            f"Intercom: the fake (pid {handle.pid}) on {handle.url}, "
            f"{DEMO_RATE_LIMIT} calls per {DEMO_WINDOW_SECONDS}-s window, {DEMO_LATENCY_MS:g} ms latency"
        )
        return handle.url, token, handle

    def child(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        """A child process logging to a file; its own session, so Ctrl-C reaches only us and we stop it in order."""
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._exit.callback(stop_process, process)
        self.started = True
        self.say(f"{name}: pid {process.pid}, log {log}")
        return process


def stop_process(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM by pid (Celery's warm shutdown finishes in-flight calls), then SIGKILL."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def web_args(port: int) -> list[str]:
    return [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port)]


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Poll GET /ready until the ingestion server answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the ingestion server exited with status {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise DemoError(f"the ingestion server did not become ready within {timeout:g}s; see {log}")


# -- sending and watching ---------------------------------------------------------


def send_stream(url: str, write_key: str, events: list[dict]) -> dict[str, int]:
    """POST the stream to /v1/batch in Segment-sized batches, as fast as it goes (the burst)."""
    sent = refused = 0
    with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30) as client:
        for start in range(0, len(events), BATCH_SIZE):
            batch = events[start : start + BATCH_SIZE]
            response = client.post("/v1/batch", json={"batch": batch})
            if response.status_code != 200:
                raise DemoError(f"POST /v1/batch answered {response.status_code}: {response.text[:300]}")
            refused += len(response.json().get("refused", []))
            sent += len(batch)
    return {"sent": sent, "refused": refused}


def redis_counts(redis_url: str) -> Callable[[], dict[str, int]]:
    """The fleet's counters straight from Redis (what ``intercom-relay status`` shows)."""
    from worker.store.connect import connect  # noqa: PLC0415
    from worker.store.counters import Counters  # noqa: PLC0415

    counters = Counters(connect(redis_url, decode_responses=True))
    return counters.snapshot


def metrics_counts(ingest_url: str) -> Callable[[], dict[str, int]]:
    """The same counters read from the ingestion server's /metrics (no Redis client needed)."""

    def read() -> dict[str, int]:
        text = httpx.get(f"{ingest_url}/metrics", timeout=10).text
        return {m[1]: int(float(m[2])) for m in re.finditer(r"^intercom_relay_(\w+) (\S+)$", text, re.M)}

    return read


def delta(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Counts since the demo started: a shared Redis may hold earlier runs' counts."""
    return {name: value - before.get(name, 0) for name, value in now.items()}


def watch(counts: Callable[[], dict[str, int]], before: dict[str, int], total: int, timeout: float) -> tuple[dict[str, int], str]:
    """Show a bar of finished/accepted until the backlog is empty, stalls on parked events, or time runs out."""
    from tqdm import tqdm  # noqa: PLC0415

    last_progress, done, seen = time.monotonic(), 0, -1
    deadline = time.monotonic() + timeout
    with tqdm(total=total, unit="event", desc="delivered", dynamic_ncols=True, mininterval=1) as bar:
        while True:
            now = delta(counts(), before)
            done = min(total, sum(now.get(name, 0) for name in FINISHED))
            bar.update(done - bar.n)
            bar.set_postfix(
                backlog=now.get("backlog", 0),
                calls=now.get("api_calls", 0),
                parked=now.get("parked", 0),
                retrying=now.get("retrying", 0),
                refresh=False,
            )
            if done != seen:
                seen, last_progress = done, time.monotonic()
            if now.get("accepted", 0) >= total and now.get("backlog", 0) <= 0:
                return now, "done"
            only_parked = now.get("backlog", 0) <= now.get("parked", 0)
            if only_parked and time.monotonic() - last_progress > STALL_SECONDS:
                return now, "stalled"
            if time.monotonic() > deadline:
                return now, "timeout"
            time.sleep(0.5)


# -- what Intercom holds ------------------------------------------------------------


def observed_state(state: dict[str, Any], stream: SampleStream) -> dict[str, Any]:
    """The fake's /_fake/state in the terms of ``SampleStream.expected_state()``.

    Intercom's ids differ from run to run; a sample person is known by email.
    Merged-away leads and deleted contacts are not part of what Intercom holds.
    """
    key_of_email = {p.email: p.key for p in stream.persons}
    live = [c for c in state["contacts"] if not c.get("merged") and not c.get("deleted")]
    key_of_id = {c["id"]: key_of_email.get(c.get("email"), f"?{c['id']}") for c in live}
    company_of_id = {c["id"]: c["company_id"] for c in state["companies"]}
    return {
        "contacts": {
            key_of_id[c["id"]]: {"role": c["role"], "external_id": c.get("external_id"), "email": c.get("email"), "name": c.get("name")}
            for c in live
        },
        "events": {
            key_of_id[cid]: sorted((e["event_name"], e["created_at"]) for e in events)
            for cid, events in state["events"].items()
            if cid in key_of_id
        },
        "companies": {c["company_id"]: c["name"] for c in state["companies"]},
        "attachments": sorted(
            (key_of_id[a["contact_id"]], company_of_id.get(a["company_id"], a["company_id"]))
            for a in state["attachments"]
            if a["contact_id"] in key_of_id
        ),
    }


def differences(expected: dict[str, Any], observed: dict[str, Any]) -> list[str]:
    """Readable lines naming each difference; empty when Intercom holds exactly what it should."""
    lines = []
    for person in sorted(set(expected["contacts"]) | set(observed["contacts"])):
        want, got = expected["contacts"].get(person), observed["contacts"].get(person)
        if want != got:
            lines.append(f"contact {person}: expected {want}, Intercom has {got}")
    for person in sorted(set(expected["events"]) | set(observed["events"])):
        want = [tuple(e) for e in expected["events"].get(person, [])]
        got = [tuple(e) for e in observed["events"].get(person, [])]
        if want != got:
            lines.append(f"events of {person}: expected {len(want)}, Intercom has {len(got)}")
    if expected["companies"] != observed["companies"]:
        lines.append(f"companies: expected {expected['companies']}, Intercom has {observed['companies']}")
    want_att, got_att = set(map(tuple, expected["attachments"])), set(map(tuple, observed["attachments"]))
    if want_att != got_att:
        lines.append(f"attachments: missing {sorted(want_att - got_att)}, unexpected {sorted(got_att - want_att)}")
    return lines


def stream_summary(stream: SampleStream) -> str:
    kinds = Counter(p.kind for p in stream.persons)
    types = Counter(e["type"] for e in stream.events)
    early = sum(1 for p in stream.persons if p.index % 2 == 0) if stream.adversarial else 0
    return (
        f"{len(stream.events)} events for {stream.people} people ({kinds['user']} users, {kinds['lead']} leads, "
        f"{kinds['converted']} leads who become users): {types['identify']} identify, {types['track']} track, "
        f"{types['group']} group; {early} people's tracks arrive before their identify"
    )


def format_report(
    *,
    elapsed: float,
    sent: dict[str, int],
    counts: dict[str, int],
    outcome: str,
    state: dict[str, Any] | None,
    stats: dict[str, Any] | None,
    diffs: list[str] | None,
    limit: int | str = "?",
) -> str:
    """The closing summary: what Intercom holds, the pipeline's counts, and the verdict."""
    out = ["", f"Finished in {elapsed:.1f} s ({outcome})."]
    if state is not None and stats is not None:
        c = state["counts"]
        windows = stats.get("windows", [])
        out += [
            "",
            "What Intercom (the fake) now holds:",
            f"  contacts     {c['contacts']:>5}   ({c['users']} users, {c['leads']} leads; {c['merged']} leads merged into their user)",
            f"  events       {c['events']:>5}   (duplicates refused by Intercom: {c['duplicate_events']})",
            f"  companies    {c['companies']:>5}",
            f"  attachments  {len(state['attachments']):>5}",
            f"  API calls    {stats['total']:>5}   over {len(windows)} rate-limit windows, at most "
            f"{stats['max_accepted_in_window']} accepted in one (limit {limit}); "
            f"429 answers: {stats['rate_limited']}" + (", each waited out" if stats["rate_limited"] else ""),
        ]
    delivered = max(counts.get("delivered", 0), 1)
    out += [
        "",
        "Pipeline (intercom-relay status, this run):",
        "  "
        + " · ".join(
            f"{name.replace('_', '-')} {counts.get(name, 0)}"
            for name in ("accepted", "refused", "delivered", "filtered", "duplicate", "dead_lettered", "parked", "retrying", "backlog")
        ),
        f"  sent {sent['sent']} events over HTTP ({sent['refused']} refused); "
        f"{counts.get('api_calls', 0) / delivered:.2f} API calls per delivered event; "
        f"429s seen by the workers: {counts.get('rate_limited', 0)}",
    ]
    if diffs is None:
        out += ["", "Intercom is real: open the workspace to see the sample contacts (person<N>@example.com)."]
    elif not diffs:
        out += [
            "",
            "Compared with SampleStream.expected_state(): MATCH — every contact, role, name, event, company and attachment is as expected.",
        ]
    else:
        out += ["", f"Compared with SampleStream.expected_state(): {len(diffs)} DIFFERENCE(S):"]
        out += [f"  - {line}" for line in diffs[:15]]
        if len(diffs) > 15:
            out.append(f"  … and {len(diffs) - 15} more")
    return "\n".join(out)


# -- the demo ---------------------------------------------------------------------


def run(options: DemoOptions, say: Callable[[str], None] = print) -> int:
    """Run the demo; 0 when Intercom ends up as expected, 1 otherwise."""
    started = time.monotonic()
    env = dict(options.env)
    real = bool(env.get("INTERCOM_ACCESS_TOKEN", "").strip()) and not options.ingest_url
    if real and not options.yes_send_to_intercom:
        raise DemoError(
            "INTERCOM_ACCESS_TOKEN is set, so the demo would send its sample stream "
            f"({options.people} made-up people, person<N>@example.com) to your real Intercom workspace. "
            "Pass --yes-send-to-intercom if that is what you want, or unset INTERCOM_ACCESS_TOKEN "
            "to run against the fake Intercom."
        )
    stream = SampleStream(people=options.people, adversarial=True, seed=options.seed)
    say(f"Sample stream: {stream_summary(stream)}")
    with _sigterm_as_interrupt(), Stack(say) as stack:
        if options.ingest_url:
            ingest_url, fake = options.ingest_url.rstrip("/"), _remote_fake(options.fake_url)
            write_key = options.write_key or _first_write_key(env)
            counts = metrics_counts(ingest_url)
        else:
            ingest_url, write_key, counts, fake = _start_local(stack, env, real)
        before = counts()
        sent = send_stream(ingest_url, write_key, stream.events)
        say(f"Sent {sent['sent']} events to {ingest_url}/v1/batch in one burst; waiting for delivery…")
        now, outcome = watch(counts, before, sent["sent"] - sent["refused"], options.timeout)
        state = stats = diffs = None
        limit: int | str = "?"
        if fake is not None:
            state, stats, limit = fake.state(), fake.stats(), fake.config()["rate_limit"]
            diffs = differences(stream.expected_state(), observed_state(state, stream))
        say(
            format_report(
                elapsed=time.monotonic() - started,
                sent=sent,
                counts=now,
                outcome=outcome,
                state=state,
                stats=stats,
                diffs=diffs,
                limit=limit,
            )
        )
        if outcome != "done" or diffs:
            say(f"\nLogs of the processes the demo started: {stack.logs}")
        return 0 if outcome == "done" and not diffs else 1


def _start_local(stack: Stack, env: dict[str, str], real: bool) -> tuple[str, str, Callable, Any]:
    """Start Redis, Intercom (the fake unless real), a worker with beat, and the ingestion server."""
    env["REDIS_URL"] = stack.redis(env)
    fake = None
    if real:
        say_url = env.get("INTERCOM_API_URL") or f"region {env.get('INTERCOM_REGION', 'us')}"
        stack.say(f"Intercom: the REAL API ({say_url}) with INTERCOM_ACCESS_TOKEN")
    else:
        env["INTERCOM_API_URL"], env["INTERCOM_ACCESS_TOKEN"], fake = stack.fake_intercom()
    write_key = "demo-" + secrets.token_urlsafe(24)
    env["WRITE_KEYS"] = write_key
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # Beat inside the worker (-B): one process for the demo; production runs beat apart.
    stack.child("worker", worker_command("demo", 16, beat_schedule=stack.logs / "beat-schedule"), env)
    port = free_port()
    web = stack.child("web", web_args(port), env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, web, stack.logs / "web.log")
    stack.say(f"Ingestion API: {url} (write key generated for this run)")
    return url, write_key, redis_counts(env["REDIS_URL"]), fake


def _remote_fake(url: str | None) -> Any:
    if not url:
        return None
    from fake_intercom import FakeHandle  # noqa: PLC0415

    handle = FakeHandle(url.rstrip("/"))
    handle.wait_ready(60)
    return handle


def _first_write_key(env: dict[str, str]) -> str:
    keys = [k.strip() for k in env.get("WRITE_KEYS", "").split(",") if k.strip()]
    if not keys:
        raise DemoError("--ingest-url needs a write key: pass --write-key or set WRITE_KEYS")
    return keys[0]


def _redact(url: str) -> str:
    """A Redis URL without its password, for printing."""
    return re.sub(r"//[^@/]*@", "//***@", url)


class _sigterm_as_interrupt:
    """SIGTERM to the demo unwinds like Ctrl-C, so the finally-blocks stop every child."""

    def __enter__(self) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    @staticmethod
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
