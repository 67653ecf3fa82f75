"""The contact-id cache in Redis."""

from __future__ import annotations

import fakeredis

from worker.store.contacts import DEFAULT_TTL_SECONDS, CachedContact, ContactCache


def make_cache() -> ContactCache:
    return ContactCache(fakeredis.FakeRedis(decode_responses=True))


def test_an_unknown_person_is_a_miss() -> None:
    cache = make_cache()
    assert cache.get(external_id="u1", email="a@x.io", anonymous_id="anon") is None
    assert cache.get() is None


def test_lookup_takes_the_first_hit_in_order_external_id_email_anonymous_id() -> None:
    cache = make_cache()
    cache.remember("c-anon", "lead", anonymous_id="anon")
    cache.remember("c-mail", "user", email="a@x.io")
    assert cache.get(email="a@x.io", anonymous_id="anon") == CachedContact("c-mail", "user")
    cache.remember("c-ext", "user", external_id="u1")
    assert cache.get(external_id="u1", email="a@x.io", anonymous_id="anon") == CachedContact("c-ext", "user")
    assert cache.get(external_id="nobody", anonymous_id="anon") == CachedContact("c-anon", "lead")


def test_emails_match_case_insensitively() -> None:
    cache = make_cache()
    cache.remember("c1", "user", email="Ann@Example.COM")
    assert cache.get(email="ann@example.com") == CachedContact("c1", "user")


def test_keys_live_under_the_prefix_with_a_ttl() -> None:
    cache = make_cache()
    cache.remember("c1", "user", external_id="u1", email="a@x.io", anonymous_id="anon")
    cache.remember_membership("c1", "co1")
    keys = [str(key) for key in cache.redis.keys("*")]
    assert keys and all(key.startswith("relay:contact:") for key in keys)
    assert all(0 < cache.redis.ttl(key) <= DEFAULT_TTL_SECONDS for key in keys)


def test_forget_drops_every_key_pointing_at_the_contact_and_its_memberships() -> None:
    cache = make_cache()
    cache.remember("c1", "user", external_id="u1", email="a@x.io", anonymous_id="anon")
    cache.remember("c2", "user", external_id="u2")
    cache.remember_membership("c1", "co1")
    cache.forget("c1")
    assert cache.get(external_id="u1") is None
    assert cache.get(email="a@x.io") is None
    assert cache.get(anonymous_id="anon") is None
    assert not cache.is_member("c1", "co1")
    assert cache.get(external_id="u2") == CachedContact("c2", "user")
    assert not any("c1" in key for key in cache.redis.keys("*"))


def test_forget_leaves_a_key_that_now_points_at_another_contact() -> None:
    # A lead's anonymous id re-pointed at the user it was merged into.
    cache = make_cache()
    cache.remember("lead1", "lead", anonymous_id="anon")
    cache.remember("user1", "user", anonymous_id="anon")
    cache.forget("lead1")
    assert cache.get(anonymous_id="anon") == CachedContact("user1", "user")


def test_a_lead_does_not_take_over_the_email_of_a_user() -> None:
    cache = make_cache()
    cache.remember("user1", "user", email="a@x.io")
    cache.remember("lead1", "lead", email="a@x.io", anonymous_id="anon")
    assert cache.get(email="a@x.io") == CachedContact("user1", "user")
    assert cache.get(anonymous_id="anon") == CachedContact("lead1", "lead")


def test_a_user_takes_over_the_email_of_a_lead() -> None:
    cache = make_cache()
    cache.remember("lead1", "lead", email="a@x.io")
    cache.remember("user1", "user", email="a@x.io")
    assert cache.get(email="a@x.io") == CachedContact("user1", "user")


def test_memberships_are_remembered_per_contact_and_company() -> None:
    cache = make_cache()
    assert not cache.is_member("c1", "co1")
    cache.remember_membership("c1", "co1")
    assert cache.is_member("c1", "co1")
    assert not cache.is_member("c1", "co2")
    assert not cache.is_member("c2", "co1")


def test_move_repoints_a_merged_leads_keys_and_memberships_at_the_user() -> None:
    cache = make_cache()
    cache.remember("lead1", "lead", email="a@x.io", anonymous_id="anon")
    cache.remember_membership("lead1", "co1")
    cache.remember("user1", "user", external_id="u1")
    cache.move("lead1", "user1", "user")
    assert cache.get(anonymous_id="anon") == CachedContact("user1", "user")
    assert cache.get(email="a@x.io") == CachedContact("user1", "user")
    assert cache.is_member("user1", "co1")
    assert not any("lead1" in key for key in cache.redis.keys("*"))
    cache.forget("user1")
    assert cache.get(external_id="u1") is None and cache.get(anonymous_id="anon") is None
