"""The fake Intercom's configuration: one frozen dataclass, changeable at runtime by replacement.

Defaults follow Intercom's documented numbers (see the comment on each field); tests shrink
them (a 1-second window, a 0.2-second search lag) to stay fast.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

#: Intercom's default limit is 10,000 calls a minute per app, "evenly distributed into
#: 10-second windows" (docs/intercom-api.md, Rate limits): 10,000 / 6 ≈ 1666 per window.
DEFAULT_RATE_LIMIT = 1666

#: Rate-limit windows are 10 seconds long (docs/intercom-api.md, Rate limits).
DEFAULT_WINDOW_SECONDS = 10

#: "Contact has reached the maximum of 1000 company associations" (docs/intercom-api.md, Companies).
DEFAULT_COMPANY_ATTACHMENT_LIMIT = 1000

#: Enough for a long benchmark's tail while keeping memory bounded.
DEFAULT_REQUEST_LOG_SIZE = 100_000

OUTAGE_MODES = ("503", "drop")


@dataclass(frozen=True)
class FakeConfig:
    """Everything that shapes the fake's behaviour. Build a changed copy with `changed()`."""

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    #: Bearer tokens accepted; any other token answers 401 ``unauthorized`` (docs/intercom-api.md, Errors).
    tokens: tuple[str, ...] = ("test-token",)
    #: Fixed delay added to every API response (not to /_fake/ control calls).
    latency_ms: float = 0.0
    #: Seconds before a write becomes visible to POST /contacts/search; Intercom says "a few
    #: minutes" (docs/intercom-api.md, Search).
    search_lag: float = 0.0
    #: Calls allowed per token per window (X-RateLimit-Limit).
    rate_limit: int = DEFAULT_RATE_LIMIT
    #: Window length; windows are aligned to multiples of it in Unix seconds.
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    #: Fraction of API calls answered with `fault_status` (0 = never).
    fault_rate: float = 0.0
    fault_status: int = 503
    #: Unix time an outage starts (None = no outage) and how long it lasts.
    outage_start: float | None = None
    outage_seconds: float = 0.0
    #: "503": every call answered 503; "drop": the connection is closed without a response.
    outage_mode: str = "503"
    #: Custom attribute names the workspace knows (they must exist before use: docs/intercom-api.md, Contacts).
    contact_attributes: tuple[str, ...] = ()
    company_attributes: tuple[str, ...] = ()
    company_attachment_limit: int = DEFAULT_COMPANY_ATTACHMENT_LIMIT
    request_log_size: int = DEFAULT_REQUEST_LOG_SIZE
    #: Seed for the fault-injection dice, for reproducible runs.
    seed: int | None = None
    workspace_id: str = "fakews01"
    #: Reported as app.region by GET /me (a workspace is hosted in one region: US, EU or AU).
    region: str = "US"

    def __post_init__(self) -> None:
        """Normalise list-like fields to tuples and refuse values that make no sense."""
        for name in ("tokens", "contact_attributes", "company_attributes"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(dict.fromkeys(value)))
        problems = self._problems()
        if problems:
            raise ValueError("invalid FakeConfig: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        """List every invalid value, so one error names them all."""
        problems = []
        if self.rate_limit < 1:
            problems.append("rate_limit must be >= 1")
        if self.window_seconds < 1:
            problems.append("window_seconds must be >= 1")
        if not 0.0 <= self.fault_rate <= 1.0:
            problems.append("fault_rate must be between 0 and 1")
        if not 100 <= self.fault_status <= 599:
            problems.append("fault_status must be an HTTP status")
        if self.latency_ms < 0 or self.search_lag < 0 or self.outage_seconds < 0:
            problems.append("latency_ms, search_lag and outage_seconds must be >= 0")
        if self.outage_mode not in OUTAGE_MODES:
            problems.append(f"outage_mode must be one of {OUTAGE_MODES}")
        if self.request_log_size < 1 or self.company_attachment_limit < 1:
            problems.append("request_log_size and company_attachment_limit must be >= 1")
        return problems

    def changed(self, **changes: Any) -> FakeConfig:
        """A validated copy with `changes` applied; unknown names raise ValueError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown FakeConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self, redact_tokens: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; with `redact_tokens` the tokens are replaced by a count."""
        data = dataclasses.asdict(self)
        for name in ("tokens", "contact_attributes", "company_attributes"):
            data[name] = list(data[name])
        if redact_tokens:
            data["tokens"] = f"<{len(self.tokens)} token(s)>"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FakeConfig:
        """Build from `to_dict()` output (or any subset of its keys)."""
        return cls().changed(**data)

    def to_json(self) -> str:
        """Serialise for a child process (tokens included: pass it by env, not argv)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> FakeConfig:
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))
