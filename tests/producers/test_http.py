"""The HTTP door under a real uvicorn, with a real Redis and Celery queue behind it."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from producers.enqueue import Enqueuer
from producers.events import EVENT_TYPES
from producers.http import (
    MAX_BATCH_EVENTS,
    MAX_REQUEST_BYTES,
    HttpError,
    NoWriteKeys,
    create_app,
    gunzip_capped,
)
from tests.producers import (
    OTHER_WRITE_KEY,
    WRITE_KEY,
    LiveServer,
    accepted_count,
    make_event,
    queued_envelopes,
    queued_events,
    refused_count,
)
from worker.settings import Settings


@pytest.fixture
def client(live_server):
    with httpx.Client(base_url=live_server.url, auth=(WRITE_KEY, ""), timeout=10) as c:
        yield c


def assert_error(response, status, code, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    for word in words:
        assert word in body["message"], body
    return body


# -- success --------------------------------------------------------------------


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_each_single_event_endpoint_accepts_into_the_queue(client, redis, kind):
    raw = make_event(kind)
    del raw["type"]  # the path says the type
    response = client.post(f"/v1/{kind}", json=raw)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    [event] = queued_events(redis)
    assert event["type"] == kind and event["userId"] == "user-1"
    assert accepted_count(redis) == 1


def test_success_is_exactly_200_with_success_true(client):
    response = client.post("/v1/track", json=make_event("track"))
    assert (response.status_code, response.content) == (200, b'{"success":true}')


def test_a_batch_lands_in_the_queue_in_order_with_sequence_numbers(client, redis):
    batch = [make_event("identify", userId=f"u{i}") for i in range(250)]
    response = client.post("/v1/batch", json={"batch": batch})
    assert response.json() == {"success": True}
    envelopes = queued_envelopes(redis)
    assert [e["event"]["userId"] for e in sorted(envelopes, key=lambda e: e["seq"])] == [f"u{i}" for i in range(250)]
    assert sorted(e["seq"] for e in envelopes) == list(range(1, 251))
    assert len(redis.lrange("celery", 0, -1)) == 3  # intercom.ingest messages of up to 100 events
    assert accepted_count(redis) == 250


def test_import_is_an_alias_of_batch(client, redis):
    assert client.post("/v1/import", json={"batch": [make_event()]}).json() == {"success": True}
    assert accepted_count(redis) == 1


def test_batch_context_integrations_and_sent_at_reach_each_event(client, redis):
    body = {
        "batch": [make_event("track", context={"ip": "2.2.2.2"}), make_event("page")],
        "context": {"ip": "1.1.1.1", "library": {"name": "x"}},
        "integrations": {"All": False},
    }
    client.post("/v1/batch", json=body)
    first, second = queued_events(redis)
    assert first["context"] == {"ip": "2.2.2.2", "library": {"name": "x"}}
    assert second["context"] == {"ip": "1.1.1.1", "library": {"name": "x"}}
    assert first["integrations"] == second["integrations"] == {"All": False}


def test_gzip_bodies_are_accepted(client, redis):
    body = gzip.compress(json.dumps({"batch": [make_event() for _ in range(10)]}).encode())
    response = client.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.json() == {"success": True}
    assert accepted_count(redis) == 10


def test_multi_member_gzip_is_read_whole():
    text = json.dumps({"batch": [make_event()]}).encode()
    assert gunzip_capped(gzip.compress(text[:10]) + gzip.compress(text[10:]), MAX_REQUEST_BYTES) == text


def test_the_write_key_in_the_body_authenticates(live_server, redis):
    response = httpx.post(f"{live_server.url}/v1/track", json={**make_event(), "writeKey": WRITE_KEY})
    assert response.json() == {"success": True}


def test_the_write_key_never_reaches_the_queue(client, redis):
    client.post("/v1/batch", json={"batch": [{**make_event(), "writeKey": WRITE_KEY}], "writeKey": WRITE_KEY})
    client.post("/v1/identify", json={**make_event("identify"), "writeKey": WRITE_KEY})
    assert len(queued_events(redis)) == 2
    assert WRITE_KEY not in json.dumps(redis.lrange("celery", 0, -1))


def test_a_repeated_message_id_is_simply_accepted(client, redis):
    event = make_event("track", messageId="same-id")
    assert client.post("/v1/batch", json={"batch": [event, event]}).json() == {"success": True}
    assert client.post("/v1/track", json=event).json() == {"success": True}
    assert [e["messageId"] for e in queued_events(redis)] == ["same-id"] * 3


def test_received_at_and_message_id_are_stamped(client, redis):
    client.post("/v1/track", json=make_event())
    [event] = queued_events(redis)
    assert event["receivedAt"].endswith("Z") and event["messageId"]


# -- bad input --------------------------------------------------------------------


def test_malformed_json_is_400_saying_where(client):
    response = client.post("/v1/batch", content=b'{"batch": [', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json", "not valid JSON", "line 1")


def test_a_body_that_is_not_an_object_is_400(client):
    assert_error(client.post("/v1/track", json=[make_event()]), 400, "invalid_body", "JSON object")


def test_a_batch_that_is_not_an_array_is_400(client):
    assert_error(client.post("/v1/batch", json={"batch": {"a": 1}}), 400, "invalid_batch", "batch")


def test_wrong_types_are_400_naming_the_field(client, redis):
    body = assert_error(
        client.post("/v1/identify", json=make_event("identify", traits=["x"])), 400, "invalid_event", "traits", "must be an object"
    )
    assert body["field"] == "traits"
    assert refused_count(redis) == 1 and accepted_count(redis) == 0


def test_a_missing_user_is_400_naming_userid(client):
    body = assert_error(client.post("/v1/track", json=make_event(userId=None)), 400, "invalid_event", "userId or anonymousId")
    assert body["field"] == "userId"


def test_an_unknown_type_in_a_batch_is_refused_naming_it(client):
    body = assert_error(client.post("/v1/batch", json={"batch": [make_event("purchase")]}), 400, "invalid_events", "all 1 events")
    assert body["refused"] == [{"index": 0, "field": "type", "message": body["refused"][0]["message"]}]
    assert "'purchase'" in body["refused"][0]["message"]


def test_an_event_over_32_kb_is_refused(client):
    big = make_event(properties={"blob": "x" * 33_000})
    body = assert_error(client.post("/v1/track", json=big), 400, "invalid_event", "32 KB")
    assert body["field"] == "(event)"


def test_a_request_over_500_kb_is_413(client, redis):
    batch = [make_event(properties={"blob": "x" * 30_000}) for _ in range(18)]  # ~540 KB
    assert_error(client.post("/v1/batch", json={"batch": batch}), 413, "request_too_large", "500 KB")
    assert accepted_count(redis) == 0


def test_a_chunked_request_over_500_kb_is_413(client):
    def chunks():
        for _ in range(100):
            yield b" " * 10_000

    response = client.post("/v1/batch", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "request_too_large")


def test_a_gzip_bomb_is_413_without_inflating_it(client):
    bomb = gzip.compress(b"\0" * 10_000_000, compresslevel=9)  # 10 MB of zeros
    assert len(bomb) < 20_000
    response = client.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert_error(response, 413, "request_too_large", "inflates")


def test_gunzip_stops_at_the_cap(monkeypatch):
    inflated = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args):
            self.inner = real(*args)

        def decompress(self, data, max_length=0):
            assert 0 < max_length <= MAX_REQUEST_BYTES + 1
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Spy)
    with pytest.raises(HttpError) as caught:
        gunzip_capped(gzip.compress(b"\0" * 10_000_000), MAX_REQUEST_BYTES)
    assert caught.value.status == 413
    assert sum(inflated) <= MAX_REQUEST_BYTES + 1


def test_bad_gzip_is_400(client):
    response = client.post("/v1/batch", content=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert_error(response, 400, "invalid_gzip", "gzip")


def test_truncated_gzip_is_400(client):
    body = gzip.compress(json.dumps({"batch": [make_event()]}).encode())[:-12]
    assert_error(client.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip"}), 400, "invalid_gzip", "truncated")


def test_an_unsupported_encoding_is_415(client):
    response = client.post("/v1/batch", content=b"{}", headers={"Content-Encoding": "br"})
    assert_error(response, 415, "unsupported_encoding", "'br'")


def test_a_wrong_write_key_is_401_and_never_echoed(live_server, redis):
    response = httpx.post(f"{live_server.url}/v1/track", json=make_event(), auth=("wk_guess_secret", ""))
    assert_error(response, 401, "unauthorized", "not valid")
    assert "wk_guess_secret" not in response.text
    body_key = httpx.post(f"{live_server.url}/v1/track", json={**make_event(), "writeKey": "wk_guess_secret"})
    assert_error(body_key, 401, "unauthorized")
    assert "wk_guess_secret" not in body_key.text
    assert accepted_count(redis) == 0


def test_missing_auth_is_401(live_server):
    response = httpx.post(f"{live_server.url}/v1/batch", json={"batch": [make_event()]})
    assert_error(response, 401, "unauthorized", "no write key")


def test_every_configured_key_is_accepted(live_server):
    response = httpx.post(f"{live_server.url}/v1/track", json=make_event(), auth=(OTHER_WRITE_KEY, ""))
    assert response.status_code == 200


def test_a_batch_of_2501_is_413(client, redis):
    batch = [{"type": "track", "userId": "u", "event": "e"}] * (MAX_BATCH_EVENTS + 1)
    assert_error(client.post("/v1/batch", json={"batch": batch}), 413, "batch_too_large", "2501", "2500")
    assert accepted_count(redis) == 0


def test_a_batch_of_2500_is_accepted(client, redis):
    batch = [{"type": "track", "userId": "u", "event": "e"}] * MAX_BATCH_EVENTS
    assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
    assert accepted_count(redis) == MAX_BATCH_EVENTS


def test_a_partly_invalid_batch_accepts_the_valid_and_lists_the_refused(client, redis):
    batch = [
        make_event(userId="a"),
        make_event(userId=None),
        make_event(userId="b"),
        make_event("group", groupId=None),
        "not an object",
        make_event(userId="c"),
    ]
    response = client.post("/v1/batch", json={"batch": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert [(r["index"], r["field"]) for r in body["refused"]] == [(1, "userId"), (3, "groupId"), (4, "(event)")]
    assert all(r["message"] for r in body["refused"])
    assert [e["userId"] for e in queued_events(redis)] == ["a", "b", "c"]
    assert (accepted_count(redis), refused_count(redis)) == (3, 3)


def test_back_pressure_is_503_with_retry_after(live_server, redis, enqueuer):
    enqueuer.max_backlog = 5
    redis.hset("relay:counters", "accepted", 5)
    response = httpx.post(f"{live_server.url}/v1/batch", json={"batch": [make_event()]}, auth=(WRITE_KEY, ""))
    assert_error(response, 503, "backpressure", "backlog")
    assert int(response.headers["Retry-After"]) > 0
    assert queued_envelopes(redis) == []


def test_unknown_paths_and_methods_answer_json(client):
    assert_error(client.post("/v1/purchase", json={}), 404, "not_found")
    assert_error(client.get("/v1/track"), 405, "method_not_allowed")


# -- operations -------------------------------------------------------------------


def test_health_and_ready(client):
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


def test_ready_is_503_when_redis_does_not_answer(settings, celery_app):
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis_lib.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    server = LiveServer(create_app(settings, Enqueuer(dead, celery_app, max_backlog=10))).start()
    try:
        assert httpx.get(f"{server.url}/health").status_code == 200
        assert_error(httpx.get(f"{server.url}/ready"), 503, "not_ready", "Redis")
        response = httpx.post(f"{server.url}/v1/track", json=make_event(), auth=(WRITE_KEY, ""))
        assert_error(response, 503, "unavailable", "nothing was accepted")
        assert "Retry-After" in response.headers
    finally:
        server.stop()


def test_metrics_are_prometheus_text_with_the_fleet_counters(client, redis):
    client.post("/v1/batch", json={"batch": [make_event(), make_event(userId=None)]})
    redis.hset("relay:counters", mapping={"parked": 4, "delivered": 0})
    text = client.get("/metrics").text
    assert "# TYPE intercom_relay_accepted counter\nintercom_relay_accepted 1\n" in text
    assert "intercom_relay_refused 1\n" in text
    assert "# TYPE intercom_relay_parked gauge\nintercom_relay_parked 4\n" in text
    assert "# TYPE intercom_relay_backlog gauge\nintercom_relay_backlog 1\n" in text
    for name in ("duplicate", "filtered", "delivered", "retrying", "dead_lettered", "rate_limited", "api_calls"):
        assert f"\nintercom_relay_{name} " in text


def test_openapi_describes_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {f"/v1/{k}" for k in EVENT_TYPES} | {"/v1/batch", "/v1/import"} <= set(spec["paths"])
    assert set(spec["paths"]["/v1/batch"]["post"]["responses"]) >= {"200", "400", "401", "413", "415", "503"}


def test_the_app_refuses_to_start_without_write_keys(redis_url, enqueuer):
    with pytest.raises(NoWriteKeys, match="WRITE_KEYS"):
        create_app(Settings(redis_url=redis_url), enqueuer)


def test_no_auth_must_be_asked_for_explicitly(redis_url, enqueuer, redis):
    server = LiveServer(create_app(Settings(redis_url=redis_url), enqueuer, allow_no_auth=True)).start()
    try:
        assert httpx.post(f"{server.url}/v1/track", json=make_event()).status_code == 200
    finally:
        server.stop()


def test_write_keys_never_reach_the_logs(live_server, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    httpx.post(f"{live_server.url}/v1/track", json=make_event(), auth=("wk_wrong_secret", ""))
    httpx.post(f"{live_server.url}/v1/track", json={**make_event(), "writeKey": "wk_wrong_secret"})
    httpx.post(f"{live_server.url}/v1/track", json=make_event(), auth=(WRITE_KEY, ""))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "wk_wrong_secret" not in logged and WRITE_KEY not in logged


def test_the_server_mounts_the_pipeline_console_behind_its_own_keys(redis_url, enqueuer):
    admin = Settings(redis_url=redis_url, write_keys=(WRITE_KEY,), admin_keys=(("ops", "a-long-admin-password"),))
    server = LiveServer(create_app(admin, enqueuer)).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/console/", auth=(WRITE_KEY, "")).status_code == 401  # a write key never opens it
            assert http.get("/console/", auth=("ops", "a-long-admin-password")).status_code == 200
    finally:
        server.stop()


def test_the_server_takes_deletion_requests_from_admins_only(redis_url, enqueuer):
    admin = Settings(redis_url=redis_url, write_keys=(WRITE_KEY,), admin_keys=(("ops", "a-long-admin-password"),))
    server = LiveServer(create_app(admin, enqueuer)).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.post("/v1/deletions", json={"userId": "u1"}, auth=(WRITE_KEY, "")).status_code == 401
            accepted = http.post("/v1/deletions", json={"userId": "u1"}, auth=("ops", "a-long-admin-password"))
            assert accepted.status_code == 202
            state = http.get(f"/v1/deletions/{accepted.json()['id']}", auth=("ops", "a-long-admin-password"))
            assert state.status_code == 200 and state.json()["state"] == "pending"
    finally:
        server.stop()
