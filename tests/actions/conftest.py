"""Fixtures of the action tests: an Intercom stub behind a real client, a fakeredis cache."""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import fakeredis
import httpx
import pytest

from tests.actions.stubs import TOKEN, StubIntercom
from worker.actions import ActionContext
from worker.actions.common import WorkspacePolicy
from worker.intercom.client import IntercomClient
from worker.store.contacts import ContactCache

#: The cache's own behaviour, which most tests here pin down call by call; the searches
#: for contacts made before the relay (on in production) have tests of their own,
#: tests/actions/test_existing_contacts.py.
CACHE_ONLY = WorkspacePolicy(find_leads_by_email=False, merge_leads_by_email=False)


@pytest.fixture
def stub() -> Iterator[StubIntercom]:
    intercom = StubIntercom()
    yield intercom
    intercom.verify()


@pytest.fixture
def contacts() -> ContactCache:
    return ContactCache(fakeredis.FakeRedis(decode_responses=True))


@pytest.fixture
def make_ctx(stub: StubIntercom, contacts: ContactCache) -> Iterator[Callable[..., ActionContext]]:
    client = IntercomClient("https://api.intercom.io", TOKEN, transport=httpx.MockTransport(stub))

    def make(
        *, user_id: str | None = None, anonymous_id: str | None = None, workspace: WorkspacePolicy = CACHE_ONLY, strict_fields: bool = False
    ) -> ActionContext:
        return ActionContext(
            client=client,
            contacts=contacts,
            user_id=user_id,
            anonymous_id=anonymous_id,
            log=logging.getLogger("tests.actions"),
            workspace=workspace,
            strict_fields=strict_fields,
        )

    yield make
    client.close()
