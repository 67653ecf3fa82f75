"""Latency, injected faults and outages, admins, routing, and the /_fake/ control surface."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from fake_intercom import FakeConfig, start_in_subprocess
from fake_intercom.__main__ import build_parser, config_from_args
from tests.fixtures_fake import api_client


def test_latency_is_added_to_every_api_answer_but_not_to_control_calls(fake_intercom_factory):
    # A latency far above a local call's cost keeps the control call's bound
    # clear of a busy machine's scheduling delays.
    fake = fake_intercom_factory(latency_ms=600)
    with api_client(fake) as client:
        started = time.perf_counter()
        assert client.get("/me").status_code == 200
        assert time.perf_counter() - started >= 0.6
        started = time.perf_counter()
        httpx.get(f"{fake.url}/admins")  # a 401 is an API answer too
        assert time.perf_counter() - started >= 0.6
        fake.stats()  # the first call builds the control client (an SSL context: slow)
        started = time.perf_counter()
        fake.stats()
        assert time.perf_counter() - started < 0.6


def test_latency_does_not_serialise_concurrent_calls(fake_intercom_factory):
    fake = fake_intercom_factory(latency_ms=200)
    with api_client(fake) as client, concurrent.futures.ThreadPoolExecutor(20) as pool:
        started = time.perf_counter()
        statuses = list(pool.map(lambda _: client.get("/me").status_code, range(20)))
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 20
    assert elapsed < 2.0  # 20 × 200 ms in series would be 4 s


def test_queued_faults_answer_the_next_calls_then_stop(fake_intercom, fake_intercom_client):
    fake_intercom.queue_faults(503, count=2)
    responses = [fake_intercom_client.get("/me") for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].json()["type"] == "error.list"
    assert "x-ratelimit-remaining" not in responses[0].headers  # in front of the API
    assert fake_intercom.stats()["faults"]["queued"] == 2


def test_fault_rate_answers_that_fraction_with_the_fault_status(fake_intercom_factory):
    fake = fake_intercom_factory(fault_rate=0.5, fault_status=500, seed=7)
    with api_client(fake) as client:
        statuses = [client.get("/me").status_code for _ in range(200)]
    assert set(statuses) == {200, 500}
    assert 60 <= statuses.count(500) <= 140
    fake.configure(fault_rate=0.0)
    with api_client(fake) as client:
        assert client.get("/me").status_code == 200


def test_an_outage_answers_503_for_its_duration_then_recovers(fake_intercom, fake_intercom_client):
    fake_intercom.configure(outage_in=0, outage_seconds=0.3)
    assert fake_intercom_client.get("/me").status_code == 503
    assert httpx.get(f"{fake_intercom.url}/me").status_code == 503  # even before authentication
    time.sleep(0.35)
    assert fake_intercom_client.get("/me").status_code == 200
    assert fake_intercom.stats()["faults"]["outage"] == 2


def test_an_outage_in_drop_mode_closes_connections_without_an_answer(fake_intercom, fake_intercom_client):
    fake_intercom.configure(outage_in=0, outage_seconds=0.3, outage_mode="drop")
    with pytest.raises(httpx.TransportError):
        fake_intercom_client.get("/me")
    time.sleep(0.35)
    assert fake_intercom_client.get("/me").status_code == 200
    assert fake_intercom.requests()[0]["status"] == "drop"
    assert fake_intercom.stats()["faults"]["dropped_connections"] == 1


def test_me_and_admins(fake_intercom_client):
    me = fake_intercom_client.get("/me").json()
    assert me["type"] == "admin" and me["app"]["type"] == "app" and me["app"]["region"] == "US"
    admins = fake_intercom_client.get("/admins").json()
    assert admins["type"] == "admin.list" and admins["admins"][0]["type"] == "admin"


def test_unknown_paths_and_unsupported_methods_are_404(fake_intercom_client):
    assert fake_intercom_client.get("/tickets").status_code == 404
    response = fake_intercom_client.patch("/contacts/abc", json={})  # "also returned for an unsupported HTTP method"
    assert response.status_code == 404
    assert response.json()["type"] == "error.list"


def test_the_request_log_is_bounded_but_counters_keep_counting(fake_intercom_factory):
    fake = fake_intercom_factory(request_log_size=5)
    with api_client(fake) as client:
        for _ in range(8):
            client.get("/me")
    logged = fake.requests()
    assert len(logged) == 5 and [e["seq"] for e in logged] == [4, 5, 6, 7, 8]
    stats = fake.stats()
    assert stats["total"] == 8 and stats["by_status"] == {"200": 8} and stats["by_route"] == {"GET /me": 8}
    assert stats["requests_logged"] == 5 and stats["requests_total"] == 8


def test_request_log_filters(fake_intercom, fake_intercom_client):
    fake_intercom_client.post("/contacts", json={"external_id": "u1"})
    fake_intercom_client.post("/contacts", json={"external_id": "u1"})
    fake_intercom_client.get("/me")
    assert [e["status"] for e in fake_intercom.requests(path="/contacts")] == [200, 409]
    assert len(fake_intercom.requests(method="GET")) == 1
    assert len(fake_intercom.requests(status=409)) == 1
    assert len(fake_intercom.requests(since=2)) == 1
    assert len(fake_intercom.requests(route="POST /contacts")) == 2


def test_configure_changes_behaviour_at_runtime_and_refuses_nonsense(fake_intercom, fake_intercom_client):
    fake_intercom.configure(rate_limit=1, tokens=["other"])
    with api_client(fake_intercom, token="other") as client:
        assert client.get("/me").headers["x-ratelimit-limit"] == "1"
    assert fake_intercom_client.get("/me").status_code == 401
    with pytest.raises(ValueError):
        fake_intercom.configure(rate_limit=0)
    with pytest.raises(ValueError):
        fake_intercom.configure(no_such_setting=1)
    assert fake_intercom.config()["rate_limit"] == 1


def test_reset_empties_state_log_and_counters(fake_intercom, fake_intercom_client):
    fake_intercom.configure(latency_ms=1)
    fake_intercom_client.post("/contacts", json={"external_id": "u1"})
    fake_intercom.reset()
    assert fake_intercom.state()["contacts"] == [] and fake_intercom.requests() == []
    assert fake_intercom.stats()["total"] == 0
    assert fake_intercom.config()["latency_ms"] == 1  # config survives a plain reset…
    fake_intercom.reset(config=True)
    assert fake_intercom.config()["latency_ms"] == 0  # …and is restored on request
    assert fake_intercom_client.post("/contacts", json={"external_id": "u1"}).status_code == 200


def test_state_document_shape(fake_intercom, fake_intercom_client):
    contact = fake_intercom_client.post("/contacts", json={"external_id": "u1", "email": "a@b.c"}).json()
    state = fake_intercom.state()
    assert set(state) == {"contacts", "events", "companies", "attachments", "merges", "custom_attributes", "counts"}
    entry = state["contacts"][0]
    assert entry["id"] == contact["id"] and entry["external_id"] == "u1" and entry["role"] == "user"
    assert entry["merged"] is False and entry["deleted"] is False and entry["company_ids"] == []


def test_subprocess_handle_serves_and_stops_by_pid():
    handle = start_in_subprocess(FakeConfig(tokens=("sub-token",), rate_limit=10))
    try:
        with api_client(handle, token="sub-token") as client:
            assert client.get("/me").headers["x-ratelimit-limit"] == "10"
        assert handle.stats()["total"] == 1
        assert handle.pid > 0
    finally:
        handle.stop()
    assert handle.process.poll() is not None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{handle.url}/_fake/health", timeout=1)


def test_command_line_options_build_the_config():
    args = build_parser().parse_args(
        [
            "--port",
            "8181",
            "--token",
            "T",
            "--latency-ms",
            "150",
            "--search-lag",
            "3",
            "--rate-limit",
            "1666",
            "--contact-attribute",
            "plan",
            "--outage-in",
            "5",
            "--outage-seconds",
            "2",
        ]
    )
    config = config_from_args(args)
    assert (config.port, config.tokens, config.latency_ms, config.search_lag, config.rate_limit) == (8181, ("T",), 150, 3, 1666)
    assert config.contact_attributes == ("plan",)
    assert config.outage_start is not None and config.outage_start > time.time()
