"""POST /v1/deletions and GET /v1/deletions/{id} (producers/deletions.py): admins only, bad input named."""

from __future__ import annotations

import base64

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from producers.deletions import deletion_routes
from producers.enqueue import Enqueuer
from worker.broker import publisher_app
from worker.settings import Settings
from worker.store.counters import Counters

ADMIN = ("ops", "a-long-admin-password")
WRITE_KEY = "write-key-1-for-the-deletion-tests"


def basic(user: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def client(redis, redis_url):
    settings = Settings(redis_url=redis_url, admin_keys=(ADMIN,), write_keys=(WRITE_KEY,))
    enqueuer = Enqueuer(redis, publisher_app(settings), max_backlog=10**6)
    with TestClient(Starlette(routes=deletion_routes(settings, enqueuer))) as test_client:
        yield test_client


def test_an_admin_requests_a_deletion_and_reads_its_state(client, redis) -> None:
    accepted = client.post("/v1/deletions", json={"userId": "u-42"}, headers=basic(*ADMIN))
    assert accepted.status_code == 202
    deletion_id = accepted.json()["id"]
    state = client.get(f"/v1/deletions/{deletion_id}", headers=basic(*ADMIN))
    assert state.status_code == 200 and state.json()["state"] == "pending"
    assert "u-42" not in state.text  # the record names nobody
    assert Counters(redis).snapshot()["accepted"] == 1  # durable and queued for u-42's lane


@pytest.mark.parametrize("headers", [basic(WRITE_KEY), basic(WRITE_KEY, "x"), basic("ops", "wrong"), {}])
def test_a_write_key_or_a_wrong_password_never_authorises_a_deletion(client, redis, headers) -> None:
    refused = client.post("/v1/deletions", json={"userId": "u-42"}, headers=headers)
    assert refused.status_code == 401
    assert Counters(redis).snapshot()["accepted"] == 0
    assert client.get("/v1/deletions/whatever", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "must be an object"),
        (b"{}", "say whom"),
        (b'{"userId": ""}', "userId must be a non-empty string"),
        (b'{"userId": {"a": 1}}', "userId must be a non-empty string"),
        (b'{"user_id": "42"}', "unknown field(s) user_id"),
    ],
)
def test_bad_input_is_a_400_that_names_the_problem_and_stores_nothing(client, redis, body, says) -> None:
    refused = client.post("/v1/deletions", content=body, headers=basic(*ADMIN))
    assert refused.status_code == 400 and says in refused.json()["error"]["message"]
    assert Counters(redis).snapshot()["accepted"] == 0


def test_an_unknown_deletion_is_404(client) -> None:
    assert client.get("/v1/deletions/nope", headers=basic(*ADMIN)).status_code == 404
