"""Authentication and rate limiting (docs/intercom-api.md, Errors and Rate limits)."""

from __future__ import annotations

import time

import httpx

from tests.fixtures_fake import api_client

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def test_missing_token_is_401_access_token_invalid_without_rate_limit_headers(fake_intercom):
    response = httpx.get(f"{fake_intercom.url}/admins")
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error.list"
    assert body["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    assert len(body["request_id"]) == 36  # a uuid
    # "Headers are sent on authenticated responses only, not when credentials are invalid."
    assert not any(h in response.headers for h in RATE_HEADERS)


def test_wrong_token_and_wrong_scheme_are_401(fake_intercom):
    with api_client(fake_intercom, token="nope") as client:
        assert client.get("/me").status_code == 401
    response = httpx.get(f"{fake_intercom.url}/me", headers={"Authorization": "Basic dGVzdC10b2tlbg=="})
    assert response.status_code == 401
    assert [e["auth"] for e in fake_intercom.requests()] == ["invalid", "missing"]


def test_accepted_tokens_are_configurable_and_never_shown(fake_intercom_factory):
    fake = fake_intercom_factory(tokens=("alpha", "beta"))
    with api_client(fake, token="beta") as client:
        assert client.get("/me").status_code == 200
    assert "beta" not in str(fake.config())
    assert "beta" not in str(fake.requests())


def test_intercom_version_header_is_recorded(fake_intercom, fake_intercom_client):
    fake_intercom_client.get("/me")
    assert fake_intercom.requests()[-1]["intercom_version"] == "2.16"
    assert fake_intercom.stats()["by_version"] == {"2.16": 1}


def test_authenticated_answers_carry_limit_remaining_and_window_end(fake_intercom_client):
    before = time.time()
    first = fake_intercom_client.get("/admins")
    second = fake_intercom_client.post("/contacts", json={"nonsense": 1})  # errors carry them too
    assert first.headers["x-ratelimit-limit"] == "1666"  # 10,000/min in 10-second windows
    assert int(first.headers["x-ratelimit-remaining"]) == 1665
    assert int(second.headers["x-ratelimit-remaining"]) == 1664
    reset = int(first.headers["x-ratelimit-reset"])
    assert reset % 10 == 0 and before < reset <= before + 10  # Unix seconds at the window's end


def test_over_the_limit_is_429_rate_limit_exceeded_and_is_logged(fake_intercom_factory):
    fake = fake_intercom_factory(rate_limit=3, window_seconds=10)
    with api_client(fake) as client:
        statuses = [client.get("/admins").status_code for _ in range(4)]
        if statuses != [200, 200, 200, 429]:  # the run straddled a window boundary: once more
            statuses = [client.get("/admins").status_code for _ in range(4)]
        refused = client.get("/admins")
    assert statuses == [200, 200, 200, 429]
    assert refused.status_code == 429
    assert refused.json()["errors"] == [{"code": "rate_limit_exceeded", "message": "Exceeded rate limit of 3 in 10_seconds"}]
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert "retry-after" not in refused.headers  # no Retry-After is documented
    assert fake.requests(status=429)
    stats = fake.stats()
    assert stats["rate_limited"] >= 2
    assert stats["max_accepted_in_window"] == 3
    assert stats["max_calls_in_window"] >= 5


def test_budget_comes_back_in_the_next_aligned_window(fake_intercom_factory):
    fake = fake_intercom_factory(rate_limit=2, window_seconds=1)
    with api_client(fake) as client:
        while client.get("/admins").status_code != 429:
            pass
        reset = int(client.get("/admins").headers["x-ratelimit-reset"])
        time.sleep(max(0.0, reset - time.time()) + 0.02)
        fresh = client.get("/admins")
    assert fresh.status_code == 200
    assert fresh.headers["x-ratelimit-remaining"] == "1"
    windows = fake.stats()["windows"]
    assert all(w["accepted"] <= 2 for w in windows)
    assert all(w["start"] % 1 == 0 for w in windows)


def test_each_token_has_its_own_budget(fake_intercom_factory):
    fake = fake_intercom_factory(tokens=("a", "b"), rate_limit=1, window_seconds=10)
    with api_client(fake, token="a") as a, api_client(fake, token="b") as b:
        a.get("/me")
        assert b.get("/me").status_code == 200
