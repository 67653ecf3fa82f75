"""Per-test Intercom stubs, in the style of Segment's nock stubs: each expected
call is asserted for method, path, headers and body, and answered in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN = "secret-token-for-tests"


@dataclass
class Expected:
    method: str
    path: str
    status: int
    answer: Any
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StubIntercom:
    """Answers the expected calls in order; anything else fails the test."""

    expected: list[Expected] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def expect(
        self, method: str, path: str, *, status: int = 200, answer: Any = None, body: Any = ..., headers: dict[str, str] | None = None
    ) -> None:
        """Expect one call; ``body`` (when given) must equal the JSON sent; ``headers`` go on the answer."""
        self.expected.append(Expected(method, path, status, answer, body, headers or {}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.expected, f"unexpected call {request.method} {request.url.path}"
        want = self.expected.pop(0)
        assert (request.method, request.url.path) == (want.method, want.path)
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Intercom-Version"] == "2.16"
        if want.body is not ...:
            assert json.loads(request.content) == want.body
        if want.answer is None:
            return httpx.Response(want.status, headers=want.headers)
        return httpx.Response(want.status, json=want.answer, headers=want.headers)

    def verify(self) -> None:
        assert not self.expected, f"calls never made: {[(e.method, e.path) for e in self.expected]}"


def contact(contact_id: str, role: str = "user", **extra: Any) -> dict:
    """A contact as Intercom answers it (only the fields the actions read)."""
    return {"type": "contact", "id": contact_id, "role": role, **extra}


def error(code: str, message: str | None = None) -> dict:
    """Intercom's error.list body."""
    return {"type": "error.list", "request_id": None, "errors": [{"code": code, "message": message}]}


def merged_into(survivor: str) -> dict:
    """The 410 of a contact merged into ``survivor``: its body and its canonical Link, as **kwargs of expect."""
    return {"status": 410, "answer": error("contact_merged"), "headers": {"Link": f'</contacts/{survivor}>; rel="canonical"'}}


def found(*contacts: dict) -> dict:
    """A search answer."""
    return {"type": "list", "data": list(contacts), "total_count": len(contacts)}
