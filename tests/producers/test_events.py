"""validate_event: the Segment spec at the door, one rule per test."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from producers.events import MAX_EVENT_BYTES, WHOLE_EVENT, InvalidEvent, validate_event
from tests.producers import make_event

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def refusal(raw, **kwargs) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(raw, received_at=NOW, **kwargs)
    assert caught.value.field in str(caught.value) or caught.value.field == WHOLE_EVENT
    return caught.value


@pytest.mark.parametrize("kind", ["identify", "track", "group", "page", "screen", "alias"])
def test_each_segment_type_is_accepted(kind):
    assert validate_event(make_event(kind), received_at=NOW)["type"] == kind


def test_an_unknown_type_is_refused_naming_it():
    error = refusal(make_event("purchase"))
    assert error.field == "type"
    assert "'purchase'" in str(error) and "identify" in str(error)


def test_a_missing_type_is_refused():
    assert refusal(make_event(type=None)).field == "type"


def test_userid_or_anonymousid_is_required():
    error = refusal(make_event("identify", userId=None))
    assert error.field == "userId"
    assert "userId or anonymousId is required" in str(error)


def test_an_empty_userid_counts_as_none():
    assert refusal(make_event("track", userId="")).field == "userId"


def test_anonymousid_alone_is_enough():
    event = validate_event(make_event("track", userId=None, anonymousId="anon-9"), received_at=NOW)
    assert event["anonymousId"] == "anon-9" and "userId" not in event


def test_numeric_ids_become_strings_as_segment_does():
    event = validate_event(make_event("group", userId=42, groupId=7.0, anonymousId=1.5), received_at=NOW)
    assert (event["userId"], event["groupId"], event["anonymousId"]) == ("42", "7", "1.5")


@pytest.mark.parametrize("bad", [True, [], {"id": 1}])
def test_an_id_of_another_type_is_refused(bad):
    error = refusal(make_event("track", userId=bad))
    assert error.field == "userId" and "must be a string or a number" in str(error)


def test_a_message_id_is_made_when_missing():
    event = validate_event(make_event("track"), received_at=NOW)
    assert uuid.UUID(event["messageId"]).version == 4


def test_a_message_id_sent_is_kept():
    assert validate_event(make_event("track", messageId="m-1"), received_at=NOW)["messageId"] == "m-1"


def test_track_needs_an_event_name():
    assert refusal(make_event("track", event=None)).field == "event"
    assert refusal(make_event("track", event="")).field == "event"
    assert "must be a string" in str(refusal(make_event("track", event=12)))


def test_group_needs_a_group_id():
    error = refusal(make_event("group", groupId=None))
    assert error.field == "groupId" and "group" in str(error)


def test_alias_needs_a_previous_id():
    assert refusal(make_event("alias", previousId=None)).field == "previousId"


@pytest.mark.parametrize("name", ["traits", "properties", "context", "integrations"])
@pytest.mark.parametrize("bad", [[], "x", 3])
def test_objects_must_be_objects(name, bad):
    error = refusal(make_event("track", **{name: bad}))
    assert error.field == name and "must be an object" in str(error)


def test_context_traits_must_be_an_object():
    assert refusal(make_event("identify", context={"traits": "x"})).field == "context.traits"


def test_an_event_that_is_not_an_object_is_refused():
    error = refusal([make_event()])
    assert error.field == WHOLE_EVENT and "JSON object" in str(error)


def test_identify_traits_only_in_context_are_kept_as_sent():
    raw = make_event("identify", traits=None, context={"traits": {"email": "a@b.c"}})
    event = validate_event(raw, received_at=NOW)
    assert "traits" not in event
    assert event["context"]["traits"] == {"email": "a@b.c"}


def test_unknown_fields_are_kept():
    event = validate_event(make_event("page", name="Home", channel="server", version=2), received_at=NOW)
    assert (event["name"], event["channel"], event["version"]) == ("Home", "server", 2)


def test_the_write_key_is_never_kept():
    assert "writeKey" not in validate_event(make_event("track", writeKey="secret"), received_at=NOW)


# -- timestamps ---------------------------------------------------------------


def test_timestamps_are_normalised_to_utc_z():
    event = validate_event(make_event("track", timestamp="2024-05-01T14:00:00.123456+02:00"), received_at=NOW)
    assert event["timestamp"] == "2024-05-01T12:00:00.123Z"
    assert event["receivedAt"] == "2024-05-01T12:00:00.000Z"


def test_a_timestamp_without_offset_is_utc():
    event = validate_event(make_event("track", timestamp="2024-04-30T08:00:00"), received_at=NOW)
    assert event["timestamp"] == "2024-04-30T08:00:00.000Z"


def test_a_missing_timestamp_is_the_time_received():
    assert validate_event(make_event("track"), received_at=NOW)["timestamp"] == "2024-05-01T12:00:00.000Z"


def test_received_at_defaults_to_now():
    before = datetime.now(timezone.utc)
    event = validate_event(make_event("track"))
    received = datetime.fromisoformat(event["receivedAt"])
    assert before - timedelta(seconds=1) <= received <= datetime.now(timezone.utc)


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00Z", 1714564800, True])
def test_a_timestamp_that_is_not_iso_8601_is_refused(bad):
    error = refusal(make_event("track", timestamp=bad))
    assert error.field == "timestamp" and "ISO 8601" in str(error)


def test_a_bad_sent_at_is_refused():
    assert refusal(make_event("track", sentAt="soon")).field == "sentAt"


def test_clock_skew_is_corrected_from_sent_at():
    # The device's clock is 1 hour fast: it says the event happened at 13:00:00
    # and was sent 5 s later at 13:00:05; we received it at 12:00:00 (our clock).
    raw = make_event("track", timestamp="2024-05-01T13:00:00Z", sentAt="2024-05-01T13:00:05Z")
    event = validate_event(raw, received_at=NOW)
    # receivedAt - (sentAt - originalTimestamp) = 12:00:00 - 5 s
    assert event["timestamp"] == "2024-05-01T11:59:55.000Z"
    assert event["sentAt"] == "2024-05-01T13:00:05.000Z"


def test_skew_correction_prefers_original_timestamp():
    raw = make_event("track", originalTimestamp="2024-05-01T09:59:00Z", timestamp="2020-01-01T00:00:00Z", sentAt="2024-05-01T10:00:00Z")
    event = validate_event(raw, received_at=NOW)
    assert event["timestamp"] == "2024-05-01T11:59:00.000Z"
    assert event["originalTimestamp"] == "2024-05-01T09:59:00.000Z"


def test_skew_correction_handles_offsets_and_milliseconds():
    raw = make_event("track", timestamp="2024-05-01T07:00:00.250-05:00", sentAt="2024-05-01T12:00:01.000Z")
    assert validate_event(raw, received_at=NOW)["timestamp"] == "2024-05-01T11:59:59.250Z"


def test_without_sent_at_the_timestamp_is_kept():
    raw = make_event("track", timestamp="2023-01-01T00:00:00Z")
    assert validate_event(raw, received_at=NOW)["timestamp"] == "2023-01-01T00:00:00.000Z"


# -- batches --------------------------------------------------------------------


def test_batch_context_and_integrations_are_merged_the_event_winning():
    raw = make_event("track", context={"ip": "10.0.0.9", "locale": "fr"}, integrations={"Intercom": False})
    shared = {"context": {"ip": "1.1.1.1", "library": {"name": "lib"}}, "integrations": {"All": True}}
    event = validate_event(raw, received_at=NOW, batch_context=shared)
    assert event["context"] == {"ip": "10.0.0.9", "locale": "fr", "library": {"name": "lib"}}
    assert event["integrations"] == {"All": True, "Intercom": False}


def test_batch_context_fills_an_event_without_one():
    event = validate_event(make_event("track"), received_at=NOW, batch_context={"context": {"ip": "1.1.1.1"}})
    assert event["context"] == {"ip": "1.1.1.1"}


def test_batch_sent_at_corrects_skew_of_each_event():
    shared = {"sentAt": "2024-05-01T12:30:00Z"}
    raw = make_event("track", timestamp="2024-05-01T12:29:00Z")
    assert validate_event(raw, received_at=NOW, batch_context=shared)["timestamp"] == "2024-05-01T11:59:00.000Z"


def test_merging_does_not_change_the_raw_event():
    raw = make_event("track", context={"a": 1})
    validate_event(raw, received_at=NOW, batch_context={"context": {"b": 2}})
    assert raw["context"] == {"a": 1}


# -- size -----------------------------------------------------------------------


def test_an_event_just_under_32_kb_is_accepted():
    event = make_event("track", properties={"blob": ""})
    overhead = len(str(event).replace("'", '"').replace(": ", ":").replace(", ", ","))
    event["properties"]["blob"] = "x" * (MAX_EVENT_BYTES - overhead)
    validate_event(event, received_at=NOW)


def test_an_event_over_32_kb_is_refused():
    error = refusal(make_event("track", properties={"blob": "x" * MAX_EVENT_BYTES}))
    assert error.field == WHOLE_EVENT and "32 KB" in str(error)


def test_size_counts_utf8_bytes():
    # 11,000 three-byte characters: 33,000 bytes though only 11,000 characters.
    error = refusal(make_event("track", properties={"text": "€" * 11_000}))
    assert "32 KB" in str(error)
