"""The classification table: every HTTP outcome lands in the right class."""

from __future__ import annotations

import pickle
import time

import httpx
import pytest

from worker.intercom import errors
from worker.intercom.errors import (
    Conflict,
    ContactNotFound,
    IntercomError,
    InvalidPayload,
    NotFound,
    PermanentError,
    RateLimited,
    RetryableError,
    SearchLagConflict,
    Unauthorized,
    classify,
    conflicting_contact_id,
    from_transport_error,
)

REQUEST = httpx.Request("POST", "https://api.intercom.io/contacts")


def error_list(code: str, message: str | None = None) -> dict:
    return {"type": "error.list", "request_id": "req-1", "errors": [{"code": code, "message": message}]}


def respond(status: int, body: object = None, headers: dict | None = None) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=REQUEST)
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize("status", [200, 202])
def test_a_2xx_is_no_error(status: int) -> None:
    assert classify(respond(status, {})) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, PermanentError),
        (401, Unauthorized),
        (403, PermanentError),
        (404, NotFound),
        (408, RetryableError),
        (409, Conflict),
        (410, NotFound),
        (422, PermanentError),
        (423, RetryableError),
        (429, RateLimited),
        (500, RetryableError),
        (501, PermanentError),
        (502, RetryableError),
        (503, RetryableError),
        (504, RetryableError),
    ],
)
def test_each_status_maps_to_its_class(status: int, expected: type[IntercomError]) -> None:
    error = classify(respond(status, error_list("some_code", "Something")))
    assert type(error) is expected
    assert error.status == status
    assert error.code == "some_code"
    assert error.body["errors"][0]["message"] == "Something"


@pytest.mark.parametrize("status", [400, 403, 404, 409, 410, 422, 501])
def test_permanent_statuses_are_not_retryable(status: int) -> None:
    error = classify(respond(status, error_list("x")))
    assert isinstance(error, PermanentError) and not isinstance(error, RetryableError)


def test_unauthorized_and_contact_not_found_are_neither_retryable_nor_permanent() -> None:
    for cls in (Unauthorized, ContactNotFound):
        assert not issubclass(cls, (RetryableError, PermanentError))


def test_429_waits_until_the_reset_header() -> None:
    error = classify(
        respond(
            429,
            error_list("rate_limit_exceeded", "Exceeded rate limit of 167 in 10_seconds"),
            {"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1487332520"},
        )
    )
    assert isinstance(error, RateLimited) and isinstance(error, RetryableError)
    assert error.reset_at == 1487332520
    assert error.code == "rate_limit_exceeded"


def test_429_without_reset_header_waits_one_window() -> None:
    error = classify(respond(429, error_list("rate_limit_exceeded")))
    assert isinstance(error, RateLimited)
    assert time.time() + 5 < error.reset_at <= time.time() + 10


def test_message_names_request_status_code_and_intercom_message() -> None:
    error = classify(respond(400, error_list("parameter_invalid", "User attribute 'plan' does not exist")))
    assert str(error) == "POST /contacts -> 400 parameter_invalid: User attribute 'plan' does not exist"


def test_a_body_that_is_not_json_is_kept_as_text() -> None:
    error = classify(respond(502, "<html>Bad gateway</html>"))
    assert isinstance(error, RetryableError)
    assert error.body == "<html>Bad gateway</html>"
    assert error.code is None
    assert "502" in str(error)


def test_an_empty_error_body_still_classifies() -> None:
    error = classify(httpx.Response(503, request=REQUEST))
    assert isinstance(error, RetryableError)
    assert str(error) == "POST /contacts -> 503 Service Unavailable"


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out", request=REQUEST),
        httpx.ReadTimeout("timed out", request=REQUEST),
        httpx.WriteTimeout("timed out", request=REQUEST),
        httpx.PoolTimeout("timed out", request=REQUEST),
        httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST),
        httpx.RemoteProtocolError("Server disconnected", request=REQUEST),
    ],
)
def test_timeouts_and_connection_errors_are_retryable(exc: httpx.TransportError) -> None:
    error = from_transport_error(exc)
    assert type(error) is RetryableError
    assert error.status is None
    assert str(error).startswith(f"POST /contacts: {type(exc).__name__}")


@pytest.mark.parametrize(
    "message",
    [
        "A contact matching those details already exists with id=6762f0dd1bb69f9f2193bb83",
        "An archived contact matching those details already exists with id=6762f0dd1bb69f9f2193bb83",
    ],
)
def test_the_existing_contact_id_is_read_from_a_409(message: str) -> None:
    error = classify(respond(409, error_list("conflict", message)))
    assert error is not None
    assert conflicting_contact_id(error) == "6762f0dd1bb69f9f2193bb83"


def test_a_409_without_an_id_gives_none() -> None:
    error = classify(respond(409, error_list("conflict", "Multiple existing users match this email address")))
    assert error is not None
    assert conflicting_contact_id(error) is None
    plain = classify(respond(409, "conflict"))
    assert plain is not None
    assert conflicting_contact_id(plain) is None


def test_invalid_payload_names_the_field_and_is_permanent() -> None:
    error = InvalidPayload("email", "a user needs an email when external_id is blank")
    assert isinstance(error, PermanentError)
    assert error.field == "email"
    assert str(error) == "email: a user needs an email when external_id is blank"


@pytest.mark.parametrize(
    "error",
    [
        InvalidPayload("created_at", "missing"),
        RateLimited("slow down", 429, {"errors": []}, "rate_limit_exceeded", reset_at=123.0),
        SearchLagConflict("lag", 409, {"errors": []}, "conflict"),
        classify(respond(404, error_list("not_found", "User Not Found"))),
    ],
)
def test_errors_survive_pickling_for_celery(error: IntercomError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (str(copy), copy.status, copy.body, copy.code) == (str(error), error.status, error.body, error.code)
    assert getattr(copy, "reset_at", None) == getattr(error, "reset_at", None)


def test_the_tree_in_the_module_docstring_names_every_error_class() -> None:
    tree = errors.__doc__ or ""
    classes = [name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, IntercomError)]
    assert [name for name in classes if f" {name} " not in tree] == []
