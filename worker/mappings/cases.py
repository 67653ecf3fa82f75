"""Test cases a user keeps beside their mappings: ``intercom-relay mappings test TESTS.json|yaml``.

The file holds ``{"tests": [case, ...]}``; each case has a ``name``, an ``event`` (any
JSON object, taken as it is) and one of:

- ``trigger`` (ours) or ``segment_trigger`` (Segment's language) with ``expect_match``;
- ``fields`` (ours) or ``segment_fields`` (Segment's directives) with ``expect`` (the
  rendered value) or ``expect_nothing: true`` (it renders to nothing: the field is left out);
- ``mapping: NAME`` (a mapping of the file) with ``expect_match``, ``expect`` (its
  fields) or ``expect_body`` (the body the action would send);
- any of the above with ``expect_error: true``: the trigger or fields must be refused
  (for Segment's fields, also when rendering fails, as Segment's transform throws).

Values compare exactly: a boolean is never a number, ``1`` equals ``1.0``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from worker.mappings.fields import MISSING, SourceError, parse_source
from worker.mappings.mapping import Mapping, MappingError
from worker.mappings.segment_directives import finish, transform
from worker.mappings.segment_triggers import SegmentTrigger
from worker.mappings.triggers import Trigger, TriggerSyntaxError
from worker.mappings.tryout import body_of

_SUBJECTS = ("trigger", "segment_trigger", "fields", "segment_fields", "mapping")
_EXPECTATIONS = ("expect_match", "expect", "expect_nothing", "expect_body", "expect_error")


class CaseError(ValueError):
    """A test file or case is malformed (not a failing case: a broken one)."""


def read_cases(path: str) -> list[dict]:
    """The cases of a JSON (``.json``) or YAML file; raise :class:`CaseError` saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file) if path.lower().endswith(".json") else yaml.safe_load(file)
    except OSError as error:
        raise CaseError(f"{path}: can't read it: {error.strerror}") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise CaseError(
            f"{path}: not valid {'JSON' if path.lower().endswith('.json') else 'YAML'}: {' '.join(str(error).split())}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("tests"), list):
        raise CaseError(f'{path}: the file must hold an object with a "tests" list')
    for number, case in enumerate(document["tests"], start=1):
        _check_case(path, number, case)
    return document["tests"]


def _check_case(path: str, number: int, case: Any) -> None:
    label = f"{path}: case #{number}"
    if not isinstance(case, dict):
        raise CaseError(f"{label}: a case is an object")
    label = f"{path}: case {case.get('name', '#' + str(number))!r}"
    if not isinstance(case.get("name"), str):
        raise CaseError(f"{label}: a case needs a 'name'")
    subjects = [key for key in _SUBJECTS if key in case]
    if len(subjects) != 1:
        raise CaseError(f"{label}: give exactly one of {', '.join(_SUBJECTS)}")
    expectations = [key for key in _EXPECTATIONS if key in case]
    if len(expectations) != 1:
        raise CaseError(f"{label}: give exactly one of {', '.join(_EXPECTATIONS)}")
    if "event" not in case:
        raise CaseError(f"{label}: a case needs an 'event'")


def same(got: Any, expected: Any) -> bool:
    """Exact JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``, key order does not matter."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, (int, float)) or isinstance(expected, (int, float)):
        return isinstance(got, (int, float)) and isinstance(expected, (int, float)) and got == expected
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[key], expected[key]) for key in got)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(same(a, b) for a, b in zip(got, expected))
    return type(got) is type(expected) and got == expected


def run_case(case: dict, mappings: list[Mapping]) -> dict[str, Any]:
    """``{"name", "ok", "got", "error"}``: ``got`` is the match (a boolean) or the rendered value."""
    try:
        got = _evaluate(case, mappings)
    except (MappingError, SourceError, TriggerSyntaxError, ValueError) as error:
        return {"name": case["name"], "ok": case.get("expect_error") is True, "got": None, "error": str(error)}
    if "expect_error" in case:
        return {"name": case["name"], "ok": case["expect_error"] is False, "got": _shown(got), "error": None}
    if "expect_nothing" in case:
        ok = (got is MISSING) == bool(case["expect_nothing"])
    else:
        expected = next(case[key] for key in ("expect_match", "expect", "expect_body") if key in case)
        ok = got is not MISSING and same(got, expected)
    return {"name": case["name"], "ok": ok, "got": _shown(got), "error": None}


def _shown(value: Any) -> Any:
    return None if value is MISSING else value


def _evaluate(case: dict, mappings: list[Mapping]) -> Any:
    event = case["event"]
    if "trigger" in case:
        return Trigger.parse(case["trigger"]).matches(event)
    if "segment_trigger" in case:
        return SegmentTrigger.parse(case["segment_trigger"]).matches(event)
    if "fields" in case:
        return parse_source(case["fields"], "fields").pick(event)
    if "segment_fields" in case:
        # Segment's transform: undefined keys dropped, a mapping resolving to nothing is nothing.
        return _segment_fields(case["segment_fields"], event)
    return _mapping_case(case, mappings, event)


def _segment_fields(spec: Any, event: Any) -> Any:
    return finish(transform(spec, event))


def _mapping_case(case: dict, mappings: list[Mapping], event: Any) -> Any:
    mapping = next((mapping for mapping in mappings if mapping.name == case["mapping"]), None)
    if mapping is None:
        raise CaseError(f"there is no mapping {case['mapping']!r}; there are {', '.join(repr(m.name) for m in mappings)}")
    if "expect_match" in case:
        return isinstance(event, dict) and mapping.matches(event)
    fields = mapping.apply(event)
    if "expect_body" not in case:
        return fields
    body, error = body_of(mapping, fields)
    if error is not None:
        raise CaseError(error)
    return body
