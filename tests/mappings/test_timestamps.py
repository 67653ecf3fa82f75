import pytest

from worker.timestamps import InvalidTimestamp, to_unix_seconds

# 2024-03-01T12:00:00Z
NOON = 1709294400


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01T12:00:00+00:00",
        "2024-03-01T14:00:00+02:00",
        "2024-03-01T17:30:00+0530",
        "2024-03-01T06:30:00-0530",
        "2024-03-01T06:30:00-05:30",
        "2024-03-01 12:00:00Z",
        "2024-03-01T12:00:00",  # no offset: UTC, as Segment reads it
    ],
)
def test_iso_8601_with_any_offset(text):
    assert to_unix_seconds(text, "t") == NOON


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00.999Z",
        "2024-03-01T12:00:00.5+00:00",
        "2024-03-01T12:00:00.123456789Z",
    ],
)
def test_fractions_are_floored(text):
    assert to_unix_seconds(text, "t") == NOON


def test_date_only_is_midnight_utc():
    assert to_unix_seconds("2024-03-01", "t") == NOON - 12 * 3600


@pytest.mark.parametrize("value", [NOON, float(NOON), NOON + 0.9, str(NOON), f"{NOON}.9", f" {NOON} "])
def test_unix_seconds_as_int_float_or_string(value):
    assert to_unix_seconds(value, "t") == NOON


@pytest.mark.parametrize("value", [NOON * 1000, NOON * 1000 + 999, float(NOON * 1000), str(NOON * 1000)])
def test_milliseconds_are_recognised(value):
    assert to_unix_seconds(value, "t") == NOON


def test_the_result_is_an_int():
    assert type(to_unix_seconds("2024-03-01T12:00:00.5Z", "t")) is int
    assert type(to_unix_seconds(1.5, "t")) is int


def test_before_1970_floors_towards_the_past():
    assert to_unix_seconds("1969-12-31T23:59:59.5Z", "t") == -1
    assert to_unix_seconds(-0.5, "t") == -1


@pytest.mark.parametrize("value", [True, False])
def test_bools_are_not_numbers(value):
    with pytest.raises(InvalidTimestamp):
        to_unix_seconds(value, "t")


@pytest.mark.parametrize("value", ["yesterday", "", "2024-13-01", "12:00", "1e", None, [], {}, float("nan"), float("inf")])
def test_garbage_is_refused(value):
    with pytest.raises(InvalidTimestamp):
        to_unix_seconds(value, "t")


def test_the_message_names_the_field():
    with pytest.raises(InvalidTimestamp) as caught:
        to_unix_seconds("yesterday", "signed_up_at")
    assert str(caught.value) == "signed_up_at: 'yesterday' is not an ISO 8601 date or Unix seconds"
    assert caught.value.field == "signed_up_at"
    assert isinstance(caught.value, ValueError)
