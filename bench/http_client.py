"""CPU per Intercom call: through ``httpx.Client``, and through the relay's client (the transport directly).

Both send the same POST /events to the fake Intercom (answering at once, in
a process of its own, so that only the caller's CPU is counted), alternating
rounds so that a busy machine weighs on both alike.  This is why
``worker/intercom/client.py`` calls the transport itself:

    python bench/http_client.py            → bench/results/http_client.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from fake_intercom import FakeConfig, start_in_subprocess  # noqa: E402
from worker.intercom.client import IntercomClient, _headers  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOKEN = "bench-token"


def cpu_per_call(send, calls: int) -> float:
    """Microseconds of this process's CPU per call of ``send(n)``."""
    started = time.process_time()
    for n in range(calls):
        send(n)
    return (time.process_time() - started) / calls * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "http_client.json"))
    args = ap.parse_args()

    fake = start_in_subprocess(FakeConfig(tokens=(TOKEN,), rate_limit=10**9, latency_ms=0))
    try:
        plain = httpx.Client(base_url=fake.url, headers=_headers(TOKEN))
        relay = IntercomClient(fake.url, TOKEN)
        relay.create_contact({"role": "user", "external_id": "u1"})
        created = iter(range(10**9))  # Intercom de-duplicates equal events: each call sends a new one

        def event() -> dict:
            return {
                "event_name": "bench",
                "created_at": 1_700_000_000 + next(created),
                "user_id": "u1",
                "metadata": {"plan": "pro", "seats": 3},
            }

        def through_httpx_client(_: int) -> None:
            assert plain.post("/events", json=event()).status_code == 202

        def through_relay_client(_: int) -> None:
            relay.create_event(event())

        rows: dict[str, list[float]] = {"httpx.Client.request": [], "IntercomClient (transport)": []}
        for _ in range(args.rounds):
            rows["httpx.Client.request"].append(cpu_per_call(through_httpx_client, args.calls))
            rows["IntercomClient (transport)"].append(cpu_per_call(through_relay_client, args.calls))
        plain.close()
        relay.close()
    finally:
        fake.stop()

    medians = {name: sorted(values)[len(values) // 2] for name, values in rows.items()}
    for name, values in rows.items():
        print(
            f"{name:<28} {medians[name]:6.0f} µs CPU per call (median of {args.rounds} rounds of {args.calls}: "
            f"{', '.join(f'{v:.0f}' for v in values)})"
        )
    ratio = medians["IntercomClient (transport)"] / medians["httpx.Client.request"]
    print(f"the relay's client costs {ratio:.2f} of httpx.Client's CPU per call")
    Path(args.out).write_text(
        json.dumps(
            {"calls_per_round": args.calls, "rounds": args.rounds, "cpu_us_per_call": rows, "median_us": medians, "ratio": round(ratio, 3)},
            indent=2,
        )
        + "\n"
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
