"""``intercom-relay status`` shows the fields dropped from events, keyed action.field."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main
from worker.store.dropped import DroppedFields


def test_status_json_shows_dropped_fields_by_action_and_field(redis, redis_url, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "test-token")
    DroppedFields(redis).add("identify_contact", ["signed_up_at"])
    DroppedFields(redis).add("identify_company", ["size", "monthly_spend"])
    DroppedFields(redis).add("identify_contact", ["signed_up_at"])

    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dropped_fields"] == {
        "identify_company.monthly_spend": 1,
        "identify_company.size": 1,
        "identify_contact.signed_up_at": 2,
    }
    text = CliRunner().invoke(main, ["status"])
    assert "2  identify_contact.signed_up_at" in text.output
