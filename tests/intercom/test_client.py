"""The HTTP client: what each method sends, what it returns, and secrecy of the token."""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest

from worker.intercom.client import Budget, IntercomClient, environment_proxy
from worker.intercom.errors import ContactNotFound, IntercomError, RateLimited, RetryableError, Unauthorized, classify
from worker.settings import Settings

TOKEN = "dG9rOmFiY2RlZl9zZWNyZXRfdG9rZW4="


class Recorder:
    """A MockTransport handler answering one fixed response and keeping requests."""

    def __init__(self, status: int = 200, body: object = None, headers: dict | None = None) -> None:
        self.status, self.body, self.headers = status, {"type": "contact", "id": "c1"} if body is None else body, headers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body == b"":
            return httpx.Response(self.status, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> object:
        return json.loads(self.last.content) if self.last.content else None


def make_client(recorder: Recorder, budget: Budget | None = None) -> IntercomClient:
    return IntercomClient("https://api.intercom.io", TOKEN, transport=httpx.MockTransport(recorder), budget=budget)


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.create_contact({"role": "user", "external_id": "u1"}), "POST", "/contacts", {"role": "user", "external_id": "u1"}),
        (lambda c: c.update_contact("abc", {"name": "Ann"}), "PUT", "/contacts/abc", {"name": "Ann"}),
        (
            lambda c: c.search_contacts({"field": "email", "operator": "=", "value": "a@x.io"}, per_page=5),
            "POST",
            "/contacts/search",
            {"query": {"field": "email", "operator": "=", "value": "a@x.io"}, "pagination": {"per_page": 5}},
        ),
        (
            lambda c: c.merge_contacts("lead1", "user1", skip_duplicate_validation=True),
            "POST",
            "/contacts/merge",
            {"from": "lead1", "into": "user1", "skip_duplicate_validation": True},
        ),
        (lambda c: c.merge_contacts("lead1", "user1"), "POST", "/contacts/merge", {"from": "lead1", "into": "user1"}),
        (lambda c: c.delete_contact("abc"), "DELETE", "/contacts/abc", None),
        (lambda c: c.upsert_company({"company_id": "acme"}), "POST", "/companies", {"company_id": "acme"}),
        (lambda c: c.attach_company("abc", "co9"), "POST", "/contacts/abc/companies", {"id": "co9"}),
        (lambda c: c.me(), "GET", "/me", None),
    ],
)
def test_each_method_sends_its_method_path_and_body(call, method: str, path: str, body: object) -> None:
    recorder = Recorder()
    with make_client(recorder) as client:
        assert call(client) == {"type": "contact", "id": "c1"}
    assert (recorder.last.method, recorder.last.url.path) == (method, path)
    assert recorder.last_json() == body


def test_every_call_carries_the_auth_version_and_json_headers() -> None:
    recorder = Recorder()
    make_client(recorder).me()
    headers = recorder.last.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Intercom-Version"] == "2.16"
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"
    assert str(recorder.last.url) == "https://api.intercom.io/me"


def test_create_event_returns_an_empty_dict_for_202_without_body() -> None:
    recorder = Recorder(202, b"")
    assert make_client(recorder).create_event({"event_name": "x", "created_at": 1, "user_id": "u"}) == {}


def test_ids_are_escaped_as_one_path_segment() -> None:
    recorder = Recorder()
    make_client(recorder).update_contact("a/b?c", {})
    assert recorder.last.url.raw_path == b"/contacts/a%2Fb%3Fc"


def test_a_base_url_with_a_path_keeps_it() -> None:
    recorder = Recorder()
    IntercomClient("http://fake:8080/intercom", TOKEN, transport=httpx.MockTransport(recorder)).me()
    assert str(recorder.last.url) == "http://fake:8080/intercom/me"


def test_from_settings_uses_api_url_token_and_timeout() -> None:
    settings = Settings(access_token=TOKEN, api_url="https://api.eu.intercom.io", http_timeout=7.0)
    client = IntercomClient.from_settings(settings)
    assert client.base_url == "https://api.eu.intercom.io"
    assert client.timeout.read == 7.0 and client.timeout.connect == 5.0
    client.close()


def test_the_environment_proxy_is_used_as_httpx_client_would(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://api.intercom.io") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert environment_proxy("https://api.intercom.io") == "http://proxy.internal:3128"
    assert environment_proxy("http://fake:8080") is None  # https_proxy is for https:// only
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:3128")
    assert environment_proxy("http://fake:8080") == "http://all.internal:3128"
    monkeypatch.setenv("NO_PROXY", "intercom.io,localhost")
    assert environment_proxy("https://api.intercom.io") is None


def test_requests_carry_the_timeouts() -> None:
    recorder = Recorder()
    IntercomClient("https://api.intercom.io", TOKEN, timeout=7.0, transport=httpx.MockTransport(recorder)).me()
    assert recorder.last.extensions["timeout"] == {"connect": 5.0, "read": 7.0, "write": 7.0, "pool": 7.0}


def test_errors_are_raised_from_the_classification() -> None:
    recorder = Recorder(401, {"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]})
    with pytest.raises(Unauthorized) as info:
        make_client(recorder).me()
    assert info.value.code == "unauthorized"


def test_transport_errors_become_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = IntercomClient("https://api.intercom.io", TOKEN, transport=httpx.MockTransport(refuse))
    with pytest.raises(RetryableError, match="ConnectError"):
        client.create_contact({"role": "lead"})
    assert client.calls == 1


def test_calls_are_counted_across_threads() -> None:
    client = make_client(Recorder())
    threads = [threading.Thread(target=lambda: [client.me() for _ in range(25)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.calls == 200


class FakeBudget:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse, self.acquired = refuse, 0
        self.observed: list[str | None] = []

    def acquire(self) -> None:
        if self.refuse:
            raise RateLimited("fleet budget spent", reset_at=100.0)
        self.acquired += 1

    def observe(self, response: httpx.Response, slot: float | None = None) -> None:
        self.observed.append(response.headers.get("X-RateLimit-Remaining"))


def test_the_budget_is_asked_before_and_told_after_every_call() -> None:
    budget = FakeBudget()
    recorder = Recorder(
        429,
        {"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000010"},
    )
    with pytest.raises(RateLimited) as info:
        make_client(recorder, budget=budget).me()
    assert info.value.reset_at == 1700000010
    assert (budget.acquired, budget.observed) == (1, ["0"])


def test_a_spent_budget_stops_the_call_before_it_is_made() -> None:
    recorder = Recorder()
    client = make_client(recorder, budget=FakeBudget(refuse=True))
    with pytest.raises(RateLimited):
        client.me()
    assert recorder.requests == [] and client.calls == 0


# -- the token never leaks --------------------------------------------------


def test_the_token_is_not_in_the_client_repr() -> None:
    client = make_client(Recorder())
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client._headers)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 429, 500, 502])
def test_the_token_is_in_no_error_message_repr_or_body(status: int) -> None:
    # Even an error body that echoes the token (a misbehaving proxy) is scrubbed.
    body = {"type": "error.list", "errors": [{"code": "bad", "message": f"got Bearer {TOKEN}"}]}
    with pytest.raises(IntercomError) as info:
        make_client(Recorder(status, body)).update_contact("abc", {"name": "x"})
    error = info.value
    for text in (str(error), repr(error), json.dumps(error.body), str(error.args)):
        assert TOKEN not in text
    assert "[token]" in str(error)


def test_the_token_is_not_in_transport_errors() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = IntercomClient("https://api.intercom.io", TOKEN, transport=httpx.MockTransport(timeout))
    with pytest.raises(RetryableError) as info:
        client.me()
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


def test_the_token_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(Recorder(404, {"type": "error.list", "errors": [{"code": "not_found"}]}))
    with pytest.raises(IntercomError):
        client.update_contact("abc", {})
    assert "PUT /contacts/abc" in caplog.text
    assert TOKEN not in caplog.text


def test_settings_repr_hides_the_token_too() -> None:
    assert TOKEN not in repr(Settings(access_token=TOKEN))


def test_classify_is_what_the_client_raises() -> None:
    # The client adds nothing of its own to the classification.
    response = httpx.Response(
        404,
        json={"type": "error.list", "errors": [{"code": "not_found"}]},
        request=httpx.Request("PUT", "https://api.intercom.io/contacts/abc"),
    )
    assert not isinstance(classify(response), ContactNotFound)
