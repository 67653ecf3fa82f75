"""The explicit table of actions and the contract every module keeps."""

from __future__ import annotations

import pytest
from marshmallow import Schema

from worker.actions import ACTIONS


def test_the_table_names_the_three_actions() -> None:
    assert list(ACTIONS) == ["identify_contact", "track_event", "identify_company"]


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_module_keeps_the_contract(name: str) -> None:
    module = ACTIONS[name]
    assert module.NAME == name
    assert module.TASK_NAME == f"intercom.{name}"
    assert module.NEEDS_CONTACT is (name != "identify_contact")
    assert issubclass(module.Fields, Schema)
    assert callable(module.build_body) and callable(module.perform)
