"""The explicit table of actions: what every definition must hold, and what is derived from them.

These are properties of the table, not a copy of it: adding an action that keeps
them needs no change here (docs/architecture.md, "Adding an action").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from marshmallow import Schema

from worker.actions import ACTIONS, IDENTIFY, LANE_CODES, action_of
from worker.actions.common import schema_instance
from worker.mappings import ACTION_FIELDS, DEFAULT_MAPPINGS, REQUIRED_FIELDS
from worker.store.deletions import DELETE_ACTION

ROOT = Path(__file__).parents[2]
MAPPINGS_DOC = (ROOT / "docs" / "mappings.md").read_text()


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_is_one_definition(name: str) -> None:
    action = ACTIONS[name]
    assert action.name == name
    assert action.task_name == f"intercom.{name}"
    assert issubclass(action.fields, Schema)
    assert callable(action.build_body) and callable(action.perform)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_contact_is_needed_by_what_an_identify_must_come_before(name: str) -> None:
    action = ACTIONS[name]
    # The identify makes the contact, and a deletion runs whether Intercom knows the person or not.
    if action.identifies or action.deletes_person:
        assert not action.needs_contact
    # A 404 parks a delivery until the person's identify: only one that needs the contact waits for it.
    assert action.parks_on_404 is action.needs_contact


def test_exactly_one_action_identifies_and_a_lane_sends_it_first() -> None:
    assert [a.name for a in ACTIONS.values() if a.identifies] == [IDENTIFY.name]
    assert IDENTIFY is ACTIONS[IDENTIFY.name]


def test_exactly_one_action_deletes_a_person_under_the_name_the_deletions_use() -> None:
    assert [a.name for a in ACTIONS.values() if a.deletes_person] == [DELETE_ACTION]


def test_lane_codes_are_one_letter_each_unique_and_name_their_action_back() -> None:
    assert set(LANE_CODES) == set(ACTIONS)
    assert len(set(LANE_CODES.values())) == len(LANE_CODES)
    for name, code in LANE_CODES.items():
        assert len(code) == 1 and code.isalpha()
        assert action_of(f"12:0{code}") is ACTIONS[name]


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_field_is_declared_with_its_meaning(name: str) -> None:
    for field_name, declared in schema_instance(ACTIONS[name].fields).fields.items():
        assert declared.metadata.get("doc"), f"{name}.{field_name} has no doc: declare it with worker.actions.action.field"


def test_the_mapping_tables_and_defaults_are_derived_from_the_schemas() -> None:
    assert ACTION_FIELDS == {name: action.field_names for name, action in ACTIONS.items()}
    assert REQUIRED_FIELDS == {name: action.required_fields for name, action in ACTIONS.items()}
    assert [m.name for m in DEFAULT_MAPPINGS] == [spec["name"] for a in ACTIONS.values() for spec in a.default_mappings]
    assert [a.default_mappings[0]["name"] for a in ACTIONS.values()] == [a.title for a in ACTIONS.values()]
    assert {m.action for m in DEFAULT_MAPPINGS} == set(ACTIONS)


def test_docs_mappings_lists_each_action_with_its_fields_and_required_ones() -> None:
    rows = re.findall(r"^\| `(\w+)` \| ([\w, ]+) \| ([\w, ]+) \|$", MAPPINGS_DOC, re.MULTILINE)
    documented = {name: (fields.split(", "), set(required.split(", "))) for name, fields, required in rows}
    declared = {name: (list(schema_instance(a.fields).fields), set(a.required_fields)) for name, a in ACTIONS.items()}
    assert documented == declared


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_has_a_test_module(name: str) -> None:
    assert (ROOT / "tests" / "actions" / f"test_{name}.py").is_file()


def test_docs_mappings_names_each_action_a_mapping_may_use() -> None:
    row = next(line for line in MAPPINGS_DOC.splitlines() if line.startswith("| `action` |"))
    assert set(re.findall(r"`(\w+)`", row)) - {"action"} == set(ACTIONS)
