"""What analytics.js sends, as it sends it, and CORS (producers/cors.py).

The requests here copy @segment/analytics-next 1.84's segmentio plugin: each
event to ``<apiHost>/<first letter of its type>``, batches to ``/b``, its
metrics to ``/m``; the body JSON sent as ``text/plain`` with ``writeKey`` in
it, and ``Authorization: Basic`` and (on a retry) ``X-Retry-Count`` headers.
tests/e2e/test_real_clients.py sends the same with the library itself.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Iterator

import httpx
import pytest

from producers.enqueue import Enqueuer
from producers.http import MAX_REQUEST_BYTES, SHORT_ROUTES, create_app
from tests.producers import WRITE_KEY, LiveServer, accepted_count, make_event, queued_events, refused_count
from worker.settings import Settings, SettingsError

PAGE = "https://app.example.com"
OTHER_PAGE = "https://evil.example.net"


def browser_headers(*, origin: str | None = PAGE, retry: int = 0, key: str | None = WRITE_KEY) -> dict[str, str]:
    """The headers analytics.js's fetch dispatcher sets (the browser adds Origin)."""
    headers = {"Content-Type": "text/plain"}
    if key:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    if retry:
        headers["X-Retry-Count"] = str(retry)
    if origin:
        headers["Origin"] = origin
    return headers


def browser_body(event: dict, key: str = WRITE_KEY) -> str:
    """An event as analytics.js posts it: the write key in it, sentAt, _metadata, userId null for a visitor."""
    return json.dumps({**event, "writeKey": key, "sentAt": "2024-05-01T12:00:01.000Z", "_metadata": {"bundled": ["Segment.io"]}})


def preflight(url: str, path: str, *, origin: str | None = PAGE, method: str = "POST", headers: str = "authorization,x-retry-count"):
    sent = {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}
    if origin:
        sent["Origin"] = origin
    return httpx.options(f"{url}{path}", headers=sent)


def serve_with(redis_url: str, enqueuer: Enqueuer, *origins: str) -> LiveServer:
    settings = Settings(redis_url=redis_url, write_keys=(WRITE_KEY,), cors_origins=origins)
    return LiveServer(create_app(settings, enqueuer)).start()


@pytest.fixture
def cors_server(redis_url, enqueuer) -> Iterator[LiveServer]:
    """The door with CORS_ORIGINS=https://app.example.com."""
    server = serve_with(redis_url, enqueuer, PAGE)
    yield server
    server.stop()


@pytest.fixture
def open_server(redis_url, enqueuer) -> Iterator[LiveServer]:
    """The door with CORS_ORIGINS=*."""
    server = serve_with(redis_url, enqueuer, "*")
    yield server
    server.stop()


# -- the routes and the body analytics.js sends ------------------------------------------


@pytest.mark.parametrize(("letter", "kind"), sorted(SHORT_ROUTES.items()))
def test_each_letter_route_takes_its_type_as_analytics_js_sends_it(cors_server, redis, letter, kind):
    raw = make_event(kind, userId=None, anonymousId="anon-1") if kind != "alias" else make_event("alias")
    del raw["type"]  # analytics.js sends it, but the path decides, as for /v1/<type>
    response = httpx.post(f"{cors_server.url}/v1/{letter}", content=browser_body(raw), headers=browser_headers())
    assert (response.status_code, response.content) == (200, b'{"success":true}')
    assert response.headers["access-control-allow-origin"] == PAGE
    [event] = queued_events(redis)
    assert event["type"] == kind
    assert "writeKey" not in event
    assert event["_metadata"] == {"bundled": ["Segment.io"]}  # kept as sent, like any other key


def test_the_letters_are_the_first_letters_of_the_types():
    assert {kind[0]: kind for kind in SHORT_ROUTES.values()} == SHORT_ROUTES


def test_the_write_key_in_the_text_plain_body_alone_authenticates(cors_server, redis):
    response = httpx.post(f"{cors_server.url}/v1/t", content=browser_body(make_event()), headers=browser_headers(key=None))
    assert response.status_code == 200, response.text
    assert accepted_count(redis) == 1


def test_a_wrong_write_key_is_401_readable_by_the_page(cors_server, redis):
    response = httpx.post(f"{cors_server.url}/v1/t", content=browser_body(make_event(), "wk_wrong"), headers=browser_headers(key=None))
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    # The page must read a 4xx to drop the event; without this header it would see a network error and retry.
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "wk_wrong" not in response.text and accepted_count(redis) == 0


def test_a_retry_with_x_retry_count_is_accepted(cors_server, redis):
    response = httpx.post(f"{cors_server.url}/v1/i", content=browser_body(make_event("identify")), headers=browser_headers(retry=2))
    assert response.status_code == 200
    assert accepted_count(redis) == 1


def test_the_batching_route_b_takes_analytics_js_batches(cors_server, redis):
    # batched-dispatcher.js: {writeKey, batch, sentAt}; each event keeps its own writeKey, loses its sentAt.
    batch = [{**make_event("page", name="Pricing"), "writeKey": WRITE_KEY}, {**make_event("track"), "writeKey": WRITE_KEY}]
    body = json.dumps({"writeKey": WRITE_KEY, "batch": batch, "sentAt": "2024-05-01T12:00:01.000Z"})
    response = httpx.post(f"{cors_server.url}/v1/b", content=body, headers=browser_headers())
    assert response.json() == {"success": True}
    assert [e["type"] for e in queued_events(redis)] == ["page", "track"]
    assert all("writeKey" not in e for e in queued_events(redis))


@pytest.mark.parametrize("path", ["/v1/t", "/v1/b"])
def test_the_letter_routes_have_the_limits_of_the_others(cors_server, redis, path):
    body = json.dumps({"batch": [make_event()], **make_event(properties={"pad": "x" * MAX_REQUEST_BYTES})})
    response = httpx.post(f"{cors_server.url}{path}", content=body, headers=browser_headers())
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert response.headers["access-control-allow-origin"] == PAGE
    bad = httpx.post(f"{cors_server.url}{path}", content=b"{not json", headers=browser_headers())
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_json"
    assert accepted_count(redis) == 0


def test_an_invalid_event_on_a_letter_route_is_400_naming_the_field(cors_server, redis):
    response = httpx.post(f"{cors_server.url}/v1/t", content=browser_body(make_event(event=None)), headers=browser_headers())
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invalid_event", "event")
    assert refused_count(redis) == 1


def test_gzip_works_on_letter_routes_too(cors_server, redis):
    body = gzip.compress(browser_body(make_event()).encode())
    response = httpx.post(f"{cors_server.url}/v1/t", content=body, headers={**browser_headers(), "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert accepted_count(redis) == 1


# -- analytics.js's metrics ---------------------------------------------------------------


def test_the_metrics_route_is_answered_and_keeps_nothing(cors_server, redis):
    series = {"series": [{"type": "Counter", "metric": "analytics_js.invoke.error", "value": 1, "tags": {"library": "analytics.js"}}]}
    before = set(redis.keys("*"))
    response = httpx.post(f"{cors_server.url}/v1/m", content=json.dumps(series), headers={"Content-Type": "text/plain", "Origin": PAGE})
    assert (response.status_code, response.content) == (200, b'{"success":true}')
    assert response.headers["access-control-allow-origin"] == PAGE
    assert set(redis.keys("*")) == before
    assert accepted_count(redis) == 0


def test_the_metrics_route_answers_bad_input_with_4xx(cors_server):
    assert httpx.post(f"{cors_server.url}/v1/m", content=b"[1]").json()["code"] == "invalid_body"
    assert httpx.post(f"{cors_server.url}/v1/m", content=b"{").json()["code"] == "invalid_json"
    too_large = httpx.post(f"{cors_server.url}/v1/m", content=b" " * (MAX_REQUEST_BYTES + 1))
    assert too_large.status_code == 413


# -- CORS ------------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_allows_what_analytics_js_sends(cors_server):
    response = preflight(cors_server.url, "/v1/t", headers="authorization,content-type,x-retry-count")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PAGE
    assert response.headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-retry-count", "content-encoding"} <= allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in response.headers["vary"].lower()
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("path", [*(f"/v1/{letter}" for letter in SHORT_ROUTES), "/v1/b", "/v1/m", "/v1/track", "/v1/batch", "/v1/import"])
def test_every_ingestion_route_answers_preflights(cors_server, path):
    assert preflight(cors_server.url, path).status_code == 204


def test_a_preflight_from_another_origin_is_403_without_cors_headers(cors_server):
    response = preflight(cors_server.url, "/v1/t", origin=OTHER_PAGE)
    assert response.status_code == 403 and response.json()["code"] == "origin_not_allowed"
    assert OTHER_PAGE in response.json()["message"] and "CORS_ORIGINS" in response.json()["message"]
    assert not any(h.startswith("access-control-") for h in response.headers)


def test_a_preflight_for_another_method_or_header_is_refused(cors_server):
    put = preflight(cors_server.url, "/v1/t", method="PUT")
    assert put.status_code == 403 and put.json()["code"] == "preflight_refused" and "PUT" in put.json()["message"]
    cookie = preflight(cors_server.url, "/v1/t", headers="authorization,x-session-token")
    assert cookie.status_code == 403 and "x-session-token" in cookie.json()["message"]


def test_an_options_request_that_is_no_preflight_is_400(cors_server):
    response = httpx.options(f"{cors_server.url}/v1/t")
    assert response.status_code == 400 and response.json()["code"] == "invalid_preflight"


def test_a_simple_request_from_another_origin_is_refused_by_the_server(cors_server, redis):
    # An older analytics.js posts text/plain with the key in the body: no preflight, the
    # browser would deliver it and only hide the answer. The server must not accept it.
    response = httpx.post(
        f"{cors_server.url}/v1/t", content=browser_body(make_event()), headers=browser_headers(origin=OTHER_PAGE, key=None)
    )
    assert response.status_code == 403 and response.json()["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in response.headers
    assert accepted_count(redis) == 0 and queued_events(redis) == []


def test_origins_are_matched_exactly(cors_server, redis):
    for near_miss in ("http://app.example.com", "https://app.example.com:8443", "https://x.app.example.com", "null"):
        response = httpx.post(f"{cors_server.url}/v1/t", content=browser_body(make_event()), headers=browser_headers(origin=near_miss))
        assert response.status_code == 403, near_miss
    assert accepted_count(redis) == 0


def test_a_request_without_origin_is_a_server_clients_and_passes(cors_server, redis):
    response = httpx.post(f"{cors_server.url}/v1/track", json=make_event(), auth=(WRITE_KEY, ""))
    assert response.status_code == 200
    assert not any(h.startswith("access-control-") for h in response.headers)


def test_star_allows_every_origin_without_credentials(open_server, redis):
    response = httpx.post(f"{open_server.url}/v1/t", content=browser_body(make_event()), headers=browser_headers(origin=OTHER_PAGE))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert preflight(open_server.url, "/v1/b", origin="http://localhost:3000").headers["access-control-allow-origin"] == "*"


def test_without_cors_origins_no_cors_header_and_browsers_are_refused(live_server, redis):
    response = httpx.post(f"{live_server.url}/v1/t", content=browser_body(make_event()), headers=browser_headers())
    assert response.status_code == 403 and "CORS_ORIGINS" in response.json()["message"]
    refused = preflight(live_server.url, "/v1/t")
    assert refused.status_code == 403
    server_side = httpx.post(f"{live_server.url}/v1/t", content=browser_body(make_event()), headers=browser_headers(origin=None))
    assert server_side.status_code == 200
    for answer in (response, refused, server_side):
        assert not any(h.startswith("access-control-") for h in answer.headers)
    assert accepted_count(redis) == 1


def test_cors_headers_are_not_on_the_operations_routes(cors_server):
    response = httpx.get(f"{cors_server.url}/health", headers={"Origin": PAGE})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_openapi_describes_every_ingestion_route_and_its_preflight(cors_server):
    from starlette.routing import Route

    spec = httpx.get(f"{cors_server.url}/openapi.json").json()
    routes = cors_server.server.config.app.routes
    admin = {"/v1/deletions"}  # an operator's route, not one a browser sends events to
    posted = {r.path for r in routes if isinstance(r, Route) and r.methods and "POST" in r.methods} - admin
    assert posted == {p for p, ops in spec["paths"].items() if "post" in ops} - admin
    assert all("options" in spec["paths"][p] for p in posted)
    assert set(spec["paths"]["/v1/t"]["post"]["requestBody"]["content"]) == {"application/json", "text/plain"}


# -- the setting ---------------------------------------------------------------------------


def test_cors_origins_is_read_as_browsers_write_origins():
    env = {"CORS_ORIGINS": " https://App.Example.com/ , http://localhost:3000,,"}
    assert Settings.from_env(env).cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert Settings.from_env({"CORS_ORIGINS": "*"}).cors_origins == ("*",)
    assert Settings.from_env({}).cors_origins == ()


@pytest.mark.parametrize("value", ["app.example.com", "https://app.example.com/path", "ftp://x.example", "https://*.example.com"])
def test_a_malformed_cors_origin_names_the_setting(value):
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": value})
