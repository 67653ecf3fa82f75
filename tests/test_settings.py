"""Settings are read once from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest

from worker.settings import REGIONS, Settings, SettingsError


def test_defaults_need_nothing_but_a_token_when_asked():
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.api_url == REGIONS["us"]
    with pytest.raises(SettingsError, match="INTERCOM_ACCESS_TOKEN is not set"):
        Settings.from_env({}, require_token=True)


@pytest.mark.parametrize("region", ["eu", "AU", " us "])
def test_region_picks_the_regional_url(region):
    assert Settings.from_env({"INTERCOM_REGION": region}).api_url == REGIONS[region.strip().lower()].rstrip("/")


def test_api_url_overrides_the_region():
    settings = Settings.from_env({"INTERCOM_REGION": "eu", "INTERCOM_API_URL": "http://127.0.0.1:9/"})
    assert settings.api_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTERCOM_REGION": "mars"}, "INTERCOM_REGION must be one of"),
        ({"INTERCOM_API_URL": "ftp://x"}, "INTERCOM_API_URL must be an http"),
        ({"REDIS_URL": "unix:///tmp/redis.sock"}, "REDIS_URL must start with redis:// or rediss://"),
        ({"MAPPINGS_FILE": "/nonexistent/mappings.yaml"}, "MAPPINGS_FILE names"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json"),
        ({"RATE_LIMIT_SHARE": "1.5"}, "RATE_LIMIT_SHARE must be between 0.01 and 1.0"),
        ({"RETRY_WINDOW_SECONDS": "soon"}, "RETRY_WINDOW_SECONDS must be a number"),
        ({"MAX_BACKLOG": "0"}, "MAX_BACKLOG must be at least 1"),
    ],
)
def test_a_bad_value_names_its_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_a_bad_redis_url_is_not_echoed_with_its_password():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "http://:s3cret@redis.internal:6379/0"})
    assert "s3cret" not in str(caught.value)
    assert "http://" in str(caught.value)


def test_write_keys_are_a_comma_separated_list():
    assert Settings.from_env({"WRITE_KEYS": " a, b ,,c "}).write_keys == ("a", "b", "c")


def test_admin_keys_are_user_password_pairs_hidden_from_repr():
    settings = Settings.from_env({"ADMIN_KEYS": " ops:correct-horse-battery , audit:another:colon-pass "})
    assert settings.admin_keys == (("ops", "correct-horse-battery"), ("audit", "another:colon-pass"))
    assert "correct-horse" not in repr(settings)
    assert Settings.from_env({}).admin_keys == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("just-a-key-without-user", "entry 1 must be user:password"),
        ("ops:ok-long-password,:no-user-given-here", "entry 2 must be user:password"),
        ("ops:tiny", "shorter than 12 characters"),
        ("ops:the-write-key-123", "is also a write key"),
    ],
)
def test_a_bad_admin_key_is_named_by_position_never_echoed(value, message):
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env({"ADMIN_KEYS": value, "WRITE_KEYS": "the-write-key-123"})
    for secret in ("tiny", "the-write-key-123", "no-user-given-here", "just-a-key"):
        assert secret not in str(caught.value)
