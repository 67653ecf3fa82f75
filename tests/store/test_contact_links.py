"""The anonymous-id link that keeps a converted lead one contact whatever the lane interleaving."""

import fakeredis

from worker.store.contacts import CachedContact, ContactCache


def cache():
    return ContactCache(fakeredis.FakeRedis(decode_responses=True))


def test_a_lead_links_a_free_anonymous_id():
    c = cache()
    assert c.link_anonymous("anon-1", "L", "lead") is None
    assert c.get(anonymous_id="anon-1") == CachedContact("L", "lead")


def test_a_lead_never_takes_the_anonymous_id_of_a_user_and_learns_who_holds_it():
    c = cache()
    c.link_anonymous("anon-1", "U", "user")
    assert c.link_anonymous("anon-1", "L", "lead") == CachedContact("U", "user")
    assert c.get(anonymous_id="anon-1") == CachedContact("U", "user")


def test_a_user_takes_the_anonymous_id_of_a_lead_and_learns_which_lead_to_merge():
    c = cache()
    c.link_anonymous("anon-1", "L", "lead")
    assert c.link_anonymous("anon-1", "U", "user") == CachedContact("L", "lead")
    assert c.get(anonymous_id="anon-1") == CachedContact("U", "user")


def test_linking_the_same_contact_again_reports_nobody_else():
    c = cache()
    c.link_anonymous("anon-1", "U", "user")
    assert c.link_anonymous("anon-1", "U", "user") is None
