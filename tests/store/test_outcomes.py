"""Outcome samples: bounded per person and for the fleet, and never a header (the token is in one)."""

from __future__ import annotations

import httpx

from worker.store import keys
from worker.store.outcomes import EXCERPT_BYTES, OUTCOME_TTL_SECONDS, PER_PERSON, RECENT, Outcomes, exchange_of


def test_each_list_keeps_only_its_last_entries_newest_first(redis) -> None:
    outcomes = Outcomes(redis)
    for n in range(PER_PERSON + 3):
        outcomes.record("ann", {"delivery": f"{n}:0I", "status": "delivered"})
    outcomes.record("bob", {"delivery": "99:0T", "status": "parked"})
    assert [e["delivery"] for e in outcomes.of_person("ann")] == [f"{n}:0I" for n in range(PER_PERSON + 2, 2, -1)]
    assert outcomes.recent(2) == [outcomes.of_person("bob")[0], outcomes.of_person("ann")[0]]
    assert 0 < redis.ttl(keys.outcomes("ann")) <= OUTCOME_TTL_SECONDS
    for n in range(RECENT + 10):
        outcomes.record(f"p{n}", {"status": "delivered"})
    assert redis.llen(keys.RECENT_OUTCOMES) == RECENT


def test_an_exchange_keeps_the_request_and_answer_cut_short_and_no_header() -> None:
    request = httpx.Request(
        "PUT", "https://api.intercom.io/contacts/c1", headers={"Authorization": "Bearer secret-token"}, content=b"x" * 5000
    )
    response = httpx.Response(422, request=request, json={"type": "error.list", "errors": [{"code": "parameter_invalid"}]})
    exchange = exchange_of(response)
    assert (exchange["method"], exchange["path"], exchange["status"]) == ("PUT", "/contacts/c1", 422)
    assert exchange["request"] == "x" * EXCERPT_BYTES + "…"
    assert "parameter_invalid" in exchange["response"]
    assert "secret-token" not in str(exchange)
