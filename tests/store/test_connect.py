"""REDIS_URL's forms: one Redis, or a Sentinel group, for redis-py and for Celery alike."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from worker.broker import SENTINEL_TRANSPORT, TRANSPORT, SentinelChannel, SentinelTransport, broker_config
from worker.settings import Settings, SettingsError
from worker.store.connect import MasterConnection, RedisUrlError, SentinelGroup, celery_broker_url, connect, parse_sentinel

PASSWORD = "s3cr%40t-pw"  # "s3cr@t-pw", percent-encoded as a URL carries it


def test_a_sentinel_url_names_its_sentinels_master_database_and_password():
    group = parse_sentinel(f"sentinel://:{PASSWORD}@10.0.0.1:26380,sentinel-b,[::1]:26381/3?master=relay")
    assert group == SentinelGroup(
        sentinels=(("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381)),
        master="relay",
        db=3,
        username=None,
        password="s3cr@t-pw",
    )


def test_the_sentinels_own_password_is_an_option_and_goes_to_redis_py_and_kombu_alike():
    group = parse_sentinel(f"sentinel://:{PASSWORD}@h1/0?master=m&sentinel_password=sentinel%26pw")
    assert (group.password, group.sentinel_password) == ("s3cr@t-pw", "sentinel&pw")
    assert group.sentinel_kwargs()["password"] == "sentinel&pw"
    options = broker_config(Settings(redis_url="sentinel://h1/0?master=m&sentinel_password=sentinel%26pw"))["broker_transport_options"]
    assert options["sentinel_kwargs"]["password"] == "sentinel&pw"
    assert "password" not in parse_sentinel("sentinel://h1/0?master=m").sentinel_kwargs()


def test_the_database_and_the_credentials_may_be_left_out():
    assert parse_sentinel("sentinel://h1,h2?master=m") == SentinelGroup(sentinels=(("h1", 26379), ("h2", 26379)), master="m")
    assert parse_sentinel("sentinel://relay:pw@h1/?master=m").username == "relay"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sentinel://h1:26379/0", "must name its master"),
        ("sentinel://h1:26379/0?master=", "must name its master"),
        ("sentinel://h1:26379/0?master=m&service=x", "takes only the options master= and sentinel_password="),
        ("sentinel://h1:port/0?master=m", "is not host\\[:port\\]"),
        ("sentinel://h1:26379,,h2/0?master=m", "is not host\\[:port\\]"),
        ("sentinel://h1:70000/0?master=m", "is not host\\[:port\\]"),
        ("sentinel://h1/zero?master=m", "must be a number"),
    ],
)
def test_a_malformed_sentinel_url_says_what_is_wrong(url, message):
    with pytest.raises(RedisUrlError, match=message):
        parse_sentinel(url)


@pytest.mark.parametrize(
    "url",
    [
        f"sentinel://:{PASSWORD}@h1:26379/0",
        f"sentinel://:{PASSWORD}@h1:bad/0?master=m",
        f"sentinel://:{PASSWORD}@h1/x?master=m",
        f"unix://:{PASSWORD}@/tmp/redis.sock",
        "sentinel://:s3cr/t-pw@h1/0?master=m",  # an unencoded / or ? moves the password into another part
        "sentinel://:s3cr?t-pw@h1/0?master=m",
        "sentinel://:s3cr/t-pw,x@h1/0?master=m",
    ],
)
def test_settings_refuse_a_malformed_url_naming_redis_url_and_never_the_password(url):
    with pytest.raises(SettingsError, match="^REDIS_URL ") as raised:
        Settings.from_env({"REDIS_URL": url, "INTERCOM_ACCESS_TOKEN": "t"})
    assert "s3cr" not in str(raised.value)


def test_settings_take_a_sentinel_url_as_it_is():
    url = "sentinel://h1:26379,h2:26379/0?master=mymaster"
    assert Settings.from_env({"REDIS_URL": url, "INTERCOM_ACCESS_TOKEN": "t"}).redis_url == url


def test_celery_is_given_one_sentinel_url_and_the_group_in_transport_options():
    # One URL, not kombu's "a;b" list: kombu would leave the relay's transport for its own on switching to "b".
    config = broker_config(Settings(redis_url=f"sentinel://:{PASSWORD}@h1,h2:26380/2?master=relay"))
    assert config["broker_url"] == "sentinel://:s3cr%40t-pw@h1:26379/2"
    assert config["broker_transport"] == SENTINEL_TRANSPORT
    options = config["broker_transport_options"]
    assert (options["master_name"], options["sentinels"], options["visibility_timeout"]) == ("relay", [["h1", 26379], ["h2", 26380]], 600)


def test_the_broker_transport_lets_go_of_a_master_without_replicas_as_the_stores_do():
    assert SentinelTransport.Channel is SentinelChannel
    assert SentinelChannel.connection_class is MasterConnection
    assert "sentinels" in SentinelChannel.from_transport_options


def test_one_redis_keeps_its_url_and_transport():
    url = "redis://127.0.0.1:6379/4"
    assert celery_broker_url(url) == url
    config = broker_config(Settings(redis_url=url))
    assert (config["broker_url"], config["broker_transport"]) == (url, TRANSPORT)
    assert "master_name" not in config["broker_transport_options"]


def test_connect_builds_a_client_on_the_master_the_sentinels_name_without_connecting():
    client = connect(f"sentinel://:{PASSWORD}@127.0.0.1:1/5?master=relay", decode_responses=True)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.is_master, pool.connection_class) == ("relay", True, MasterConnection)
    assert pool.connection_kwargs["db"] == 5
    assert pool.connection_kwargs["password"] == "s3cr@t-pw"
    assert pool.connection_kwargs["decode_responses"] is True


def test_connect_reports_no_master_when_no_sentinel_answers():
    client = connect("sentinel://127.0.0.1:1/0?master=relay", socket_connect_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_connect_to_one_redis(redis_url):
    assert connect(redis_url, decode_responses=True).ping() is True
