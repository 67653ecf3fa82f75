"""Delete Person: the person's contact and linked leads deleted, caches purged, an audit kept."""

from __future__ import annotations

import json

import pytest

from tests.actions.stubs import contact, error, found
from worker.actions import delete_person
from worker.intercom.errors import InvalidPayload
from worker.store import keys
from worker.store.deletions import Deletions


@pytest.fixture
def deletions(contacts) -> Deletions:
    return Deletions(contacts.redis)


def test_a_cached_user_and_its_cached_lead_are_deleted_and_forgotten(stub, make_ctx, contacts, deletions) -> None:
    deletions.request("d1")
    contacts.remember("c1", "user", external_id="u1")
    contacts.remember("l1", "lead", anonymous_id="a1")
    stub.expect("DELETE", "/contacts/c1", answer={"type": "contact", "id": "c1", "deleted": True})
    stub.expect("DELETE", "/contacts/l1", answer={"type": "contact", "id": "l1", "deleted": True})
    result = delete_person.ACTION.run(make_ctx(), {"deletion_id": "d1", "user_id": "u1", "anonymous_id": "a1"})
    assert result["deleted_contacts"] == ["c1", "l1"]
    assert contacts.get(external_id="u1") is None and contacts.get(anonymous_id="a1") is None
    record = deletions.get("d1")
    assert record is not None and (record["state"], record["contacts_deleted"]) == ("done", "2")
    assert "u1" not in str(record) and deletions.count_done() == 1  # the audit names nobody


def test_an_uncached_person_is_found_by_external_id_and_its_leads_by_email(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts/search", answer=found(contact("c1")))
    stub.expect("POST", "/contacts/search", answer=found(contact("c1"), contact("l1", "lead")))
    stub.expect("DELETE", "/contacts/c1", answer={"deleted": True})
    stub.expect("DELETE", "/contacts/l1", answer={"deleted": True})
    result = delete_person.ACTION.run(make_ctx(), {"deletion_id": "d1", "user_id": "u1", "email": "a@x.io"})
    assert result["deleted_contacts"] == ["c1", "l1"]


def test_the_persons_dead_letters_are_purged(stub, make_ctx, contacts) -> None:
    for person, letter_id in (("u1", "1:0I"), ("u2", "2:0I")):
        contacts.redis.hset(
            keys.DEAD,
            letter_id,
            json.dumps({"id": letter_id, "person": person, "reason": "400", "delivery": {"event": {"traits": {"email": "a@x.io"}}}}),
        )
        contacts.redis.zadd(keys.DEAD_INDEX, {letter_id: 1})
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("DELETE", "/contacts/c1", answer={"deleted": True})
    assert delete_person.ACTION.run(make_ctx(), {"deletion_id": "d5", "user_id": "u1"})["purged_dead_letters"] == 1
    assert contacts.redis.hkeys(keys.DEAD) == ["2:0I"]


def test_a_person_who_never_reached_intercom_is_done_with_nothing_deleted(stub, make_ctx, deletions) -> None:
    stub.expect("POST", "/contacts/search", answer=found())
    result = delete_person.ACTION.run(make_ctx(), {"deletion_id": "d2", "user_id": "ghost"})
    assert result["deleted_contacts"] == []
    assert (deletions.get("d2") or {}).get("state") == "done"


def test_a_contact_already_gone_counts_as_done(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("DELETE", "/contacts/c1", status=404, answer=error("not_found", "User Not Found"))
    assert delete_person.ACTION.run(make_ctx(), {"deletion_id": "d3", "user_id": "u1"})["deleted_contacts"] == []
    assert contacts.get(external_id="u1") is None


def test_a_deletion_naming_nobody_is_refused(make_ctx) -> None:
    with pytest.raises(InvalidPayload):
        delete_person.ACTION.run(make_ctx(), {"deletion_id": "d4"})
