"""``python -m fake_intercom``: run the fake Intercom until interrupted.

Example: ``python -m fake_intercom --port 8181 --token T --latency-ms 150
--search-lag 3 --rate-limit 1666``. The project's CLI exposes the same options as
``intercom-relay fake-intercom`` by calling `build_parser` / `config_from_args` / `main`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .config import OUTAGE_MODES, FakeConfig
from .server import CONFIG_ENV, serve


def build_parser(prog: str = "python -m fake_intercom") -> argparse.ArgumentParser:
    """The command-line options; every default comes from FakeConfig."""
    d = FakeConfig()
    p = argparse.ArgumentParser(prog=prog, description="A stateful fake of Intercom's REST API 2.16.")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=8181, help="0 picks a free port (default 8181)")
    p.add_argument(
        "--token", action="append", dest="tokens", metavar="TOKEN", help="accepted bearer token; repeatable (default: test-token)"
    )
    p.add_argument("--latency-ms", type=float, default=d.latency_ms, help="added to every API response")
    p.add_argument("--search-lag", type=float, default=d.search_lag, help="seconds before a write is visible to contact search")
    p.add_argument("--rate-limit", type=int, default=d.rate_limit, help="calls per token per window")
    p.add_argument("--window-seconds", type=int, default=d.window_seconds, help="rate-limit window length")
    p.add_argument("--fault-rate", type=float, default=d.fault_rate, help="fraction of calls answered --fault-status")
    p.add_argument("--fault-status", type=int, default=d.fault_status)
    p.add_argument("--outage-in", type=float, default=None, metavar="SECONDS", help="start an outage this many seconds after start-up")
    p.add_argument("--outage-start", type=float, default=None, metavar="UNIX_TIME")
    p.add_argument("--outage-seconds", type=float, default=d.outage_seconds)
    p.add_argument("--outage-mode", choices=OUTAGE_MODES, default=d.outage_mode)
    p.add_argument(
        "--contact-attribute",
        action="append",
        dest="contact_attributes",
        default=[],
        metavar="NAME",
        help="a contact custom attribute the workspace knows; repeatable",
    )
    p.add_argument(
        "--company-attribute",
        action="append",
        dest="company_attributes",
        default=[],
        metavar="NAME",
        help="a company custom attribute the workspace knows; repeatable",
    )
    p.add_argument("--company-attachment-limit", type=int, default=d.company_attachment_limit)
    p.add_argument("--request-log-size", type=int, default=d.request_log_size)
    p.add_argument("--seed", type=int, default=d.seed, help="seed for fault injection")
    p.add_argument("--region", default=d.region, help="reported as app.region by GET /me")
    p.add_argument("--ready-file", type=Path, default=None, help=argparse.SUPPRESS)
    return p


def config_from_args(args: argparse.Namespace, base: FakeConfig | None = None) -> FakeConfig:
    """A FakeConfig from parsed options, on top of `base` (e.g. one passed by environment)."""
    base = base or FakeConfig()
    outage_start = args.outage_start
    if args.outage_in is not None:
        outage_start = time.time() + args.outage_in
    changes = dict(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        search_lag=args.search_lag,
        rate_limit=args.rate_limit,
        window_seconds=args.window_seconds,
        fault_rate=args.fault_rate,
        fault_status=args.fault_status,
        outage_start=outage_start,
        outage_seconds=args.outage_seconds,
        outage_mode=args.outage_mode,
        company_attachment_limit=args.company_attachment_limit,
        request_log_size=args.request_log_size,
        seed=args.seed,
        region=args.region,
    )
    if args.tokens:
        changes["tokens"] = tuple(args.tokens)
    if args.contact_attributes:
        changes["contact_attributes"] = tuple(args.contact_attributes)
    if args.company_attributes:
        changes["company_attributes"] = tuple(args.company_attributes)
    return base.changed(**changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options and serve until interrupted. A config in $FAKE_INTERCOM_CONFIG (JSON,
    used by `start_in_subprocess`) replaces the options entirely."""
    args = build_parser().parse_args(argv)
    from_env = os.environ.get(CONFIG_ENV)
    config = FakeConfig.from_json(from_env) if from_env else config_from_args(args)

    def ready(url: str) -> None:
        if args.ready_file:
            tmp = args.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
            tmp.replace(args.ready_file)  # atomic: the parent never reads half a file
        print(f"fake Intercom listening on {url}", file=sys.stderr, flush=True)

    try:
        serve(config.host, config.port, config, on_ready=ready)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
