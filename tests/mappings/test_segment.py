"""Segment's languages as Segment reads them, and `intercom-relay mappings import/try/test`.

The tables under segment_cases/ are Segment's own published test cases
(segmentio/action-destinations: packages/core/src/mapping-kit/__tests__ and
packages/destination-subscriptions/src/__tests__), ported as data.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cli.main import main
from producers.sample import SampleStream
from worker.mappings import DEFAULT_MAPPINGS, load_mappings
from worker.mappings.cases import same
from worker.mappings.segment_import import ImportRefused, import_subscriptions
from worker.mappings.segment_triggers import SegmentTrigger, SegmentTriggerError, evaluate, parse, translate
from worker.mappings.triggers import Trigger

CASES = Path(__file__).parent / "segment_cases"


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ------------------------------------------------------------- Segment's published cases


@pytest.mark.parametrize("table", ["mapping_kit.json", "subscriptions_validate.json"])
def test_segments_published_cases_hold_through_mappings_test(table: str) -> None:
    result = _run("mappings", "test", str(CASES / table), "--json")
    failed = [case for case in json.loads(result.output) if not case["ok"]]
    assert failed == [], failed
    assert result.exit_code == 0


def test_segments_condition_trees_evaluate_as_segment_says() -> None:
    """The published cases whose condition tree no trigger text gives, run on the tree itself."""
    trees = json.loads((CASES / "subscriptions_validate.json").read_text())["trees"]
    for case in trees:
        ast, event = case["ast"], case["event"]
        got = False if "error" in ast or not isinstance(event, dict) else evaluate(ast, event)
        assert got is case["expect_match"], case["name"]


def test_segments_parser_reads_its_published_triggers_to_the_same_trees() -> None:
    for case in json.loads((CASES / "subscriptions_parse.json").read_text())["parses"]:
        if case.get("expect_error"):
            with pytest.raises(SegmentTriggerError):
                parse(case["segment_trigger"])
        else:
            assert same(parse(case["segment_trigger"]).tree, case["expect_tree"]), case["name"]


def test_every_translated_trigger_means_what_segment_means() -> None:
    """Each published trigger, in our language, matches exactly the events Segment's reading matches."""
    table = json.loads((CASES / "subscriptions_validate.json").read_text())["tests"]
    for case in table:
        if not isinstance(case["event"], dict):
            continue
        ours = Trigger.parse(translate(parse(case["segment_trigger"])))
        assert ours.matches(case["event"]) is case["expect_match"], (case["name"], str(ours))


def coverage() -> dict[str, int]:
    """How many of Segment's published cases the suite runs, per directive and per operator."""
    counts: Counter[str] = Counter()
    for case in json.loads((CASES / "mapping_kit.json").read_text())["tests"]:
        counts.update(set(_directives(case["segment_fields"])))
    validate = json.loads((CASES / "subscriptions_validate.json").read_text())
    trees = [parse(case["segment_trigger"]).tree for case in validate["tests"]] + [case["ast"] for case in validate["trees"]]
    trees += [
        case["expect_tree"] for case in json.loads((CASES / "subscriptions_parse.json").read_text())["parses"] if "expect_tree" in case
    ]
    for tree in trees:
        counts.update(set(_operators(tree)))
    return dict(counts)


def _directives(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [key for key in value if key.startswith("@")] + [name for item in value.values() for name in _directives(item)]
    if isinstance(value, list):
        return [name for item in value for name in _directives(item)]
    return []


def _operators(node: Any) -> list[str]:
    if not isinstance(node, dict) or "type" not in node:
        return []
    if node["type"] == "group":
        own = [node["operator"]] if len(node["children"]) > 1 else []
        return own + [name for child in node["children"] for name in _operators(child)]
    return [node["operator"]]


def test_every_directive_and_operator_is_covered_by_segments_cases() -> None:
    counts = coverage()
    directives = "@path @template @literal @if @case @replace @arrayPath @json @flatten @merge @transform @excludeWhenNull".split()
    operators = "= != < <= > >= number_equals number_not_equals contains not_contains starts_with not_starts_with ends_with"
    operators += " not_ends_with exists not_exists is_true is_false and or"
    missing = [name for name in directives + operators.split() if counts.get(name, 0) == 0]
    assert missing == []


# ---------------------------------------------------------------------------- import

#: The Intercom destination's actions as Segment ships them: defaultSubscription and each
#: field's default (packages/destination-actions/src/destinations/intercom).  Role has no
#: default there (the user picks it): here it is what our built-in mapping does.
SEGMENT_DEFAULTS = [
    {
        "id": "s-identify",
        "name": "Identify Contact",
        "actionSlug": "identifyContact",
        "enabled": True,
        "trigger": 'type = "identify"',
        "settings": {
            "role": {"@if": {"exists": {"@path": "$.userId"}, "then": "user", "else": "lead"}},
            "external_id": {"@path": "$.userId"},
            "email": {"@path": "$.traits.email"},
            "phone": {"@path": "$.traits.phone"},
            "name": {"@path": "$.traits.name"},
            "avatar": {"@path": "$.traits.avatar"},
            "last_seen_at": {"@path": "$.timestamp"},
        },
    },
    {
        "id": "s-track",
        "name": "Track Event",
        "actionSlug": "trackEvent",
        "enabled": True,
        "trigger": 'type = "track"',
        "settings": {
            "event_name": {"@path": "$.event"},
            "created_at": {"@path": "$.timestamp"},
            "user_id": {"@path": "$.userId"},
            "email": {"@path": "$.properties.email"},
            "revenue": {"@path": "$.properties.revenue"},
            "currency": {"@path": "$.properties.currency"},
            "metadata": {"@path": "$.properties"},
        },
    },
    {
        "id": "s-group",
        "name": "Identify Company",
        "actionSlug": "groupIdentifyContact",
        "enabled": True,
        "trigger": 'type = "group"',
        "settings": {
            "remote_created_at": {"@path": "$.traits.createdAt"},
            "external_id": {"@path": "$.userId"},
            "email": {"@path": "$.traits.email"},
            "company_id": {"@path": "$.groupId"},
            "name": {"@path": "$.traits.name"},
            "monthly_spend": {"@path": "$.traits.monthly_spend"},
            "plan": {"@path": "$.traits.plan"},
            "size": {"@path": "$.traits.employees"},
            "website": {"@path": "$.traits.website"},
            "industry": {"@path": "$.traits.industry"},
        },
    },
]


def _imported(tmp_path: Path, subscriptions: list[dict]) -> Path:
    target = tmp_path / "mappings.yaml"
    target.write_text(import_subscriptions({"data": {"subscriptions": subscriptions}}).text)
    return target


def test_segments_default_subscriptions_give_our_built_in_fields_on_the_sample_stream(tmp_path: Path) -> None:
    imported = {mapping.name: mapping for mapping in load_mappings(_imported(tmp_path, SEGMENT_DEFAULTS))}
    built_in = {mapping.name: mapping for mapping in DEFAULT_MAPPINGS}
    events = SampleStream(people=30).events
    compared = 0
    for event in events:
        for name, ours in imported.items():
            assert ours.matches(event) is built_in[name].matches(event)
            if not ours.matches(event):
                continue
            expected = built_in[name].apply(event)
            # Segment's Identify Contact has no default for signed_up_at; ours reads traits.createdAt.
            expected.pop("signed_up_at", None) if name == "Identify Contact" else None
            assert ours.apply(event) == expected, (name, event)
            compared += 1
    assert compared == len([e for e in events if e["type"] in ("identify", "track", "group")])


def test_a_trigger_mixing_and_and_or_imports_with_segments_meaning_and_says_so(tmp_path: Path) -> None:
    subscription = dict(SEGMENT_DEFAULTS[1], trigger='type = "track" and event = "Order Completed" or event = "Signed Up"')
    imported = import_subscriptions([subscription])
    document = yaml.safe_load(imported.text)
    assert document["mappings"][0]["trigger"] == '(type = "track" or event = "Order Completed" or event = "Signed Up")'
    assert "no precedence" in imported.text  # a comment in the file
    assert any("'Track Event'" in note and "no precedence" in note for note in imported.notes)
    mapping = load_mappings(_imported(tmp_path, [subscription]))[0]
    # Segment's reading: a page named "Signed Up" matches too; an identify does not.
    assert mapping.matches({"type": "page", "event": "Signed Up"})
    assert mapping.matches({"type": "track", "event": "Anything"})
    assert not mapping.matches({"type": "identify"})


def test_import_keeps_segments_literals_literal_and_leaves_disabled_subscriptions_out(tmp_path: Path) -> None:
    settings: dict[str, Any] = dict(SEGMENT_DEFAULTS[1]["settings"])  # type: ignore[call-overload]
    track = dict(SEGMENT_DEFAULTS[1], settings={**settings, "event_name": "$discount {{applied}}"})
    disabled = dict(SEGMENT_DEFAULTS[0], enabled=False)
    imported = import_subscriptions([track, disabled])
    assert any("disabled" in note for note in imported.notes)
    (tmp_path / "m.yaml").write_text(imported.text)
    (mapping,) = load_mappings(tmp_path / "m.yaml")
    assert mapping.apply({"type": "track", "timestamp": "2026-01-01T00:00:00Z"})["event_name"] == "$discount {{applied}}"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"actionSlug": "deleteContact"}, ["'Track Event'", "actionSlug", "deleteContact"]),
        ({"trigger": '(type = "track"'}, ["'Track Event'", "trigger", "without a matching ')'"]),
        ({"trigger": "typo"}, ["'Track Event'", "trigger", "no condition"]),
        ({"trigger": "properties.list.length > 2"}, ["'Track Event'", "trigger", "'length'"]),
        ({"settings": {"event_name": {"@nope": 1}, "created_at": {"@path": "$.timestamp"}}}, ["'Track Event'", "event_name", "@nope"]),
        ({"settings": {"created_at": {"@path": "$.timestamp"}}}, ["'Track Event'", "event_name", "requires"]),
    ],
)
def test_import_refuses_what_it_cannot_carry_over_naming_the_subscription(change: dict, words: list[str], tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"data": {"subscriptions": [dict(SEGMENT_DEFAULTS[1], **change)]}}))
    result = _run("mappings", "import", str(export))
    assert result.exit_code != 0
    for word in words:
        assert word in result.output


def test_import_of_malformed_json_fails_clearly(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text('{"data": ')
    result = _run("mappings", "import", str(export))
    assert result.exit_code != 0 and "not valid JSON" in result.output
    with pytest.raises(ImportRefused, match="Public API"):
        import_subscriptions({"data": {}})


# ------------------------------------------------------------------------- try / test


def test_try_shows_matches_fields_and_body_without_sending(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [
        {"type": "track", "event": "Order Completed", "userId": "u1", "timestamp": "2026-01-01T00:00:00Z", "properties": {"revenue": 5}},
        {"type": "page", "name": "Home", "anonymousId": "a1"},
        {"type": "identify", "anonymousId": "a1", "timestamp": "2026-01-01T00:00:00Z", "traits": {"email": "a@example.com"}},
    ]
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = _run("mappings", "try", str(events), "--json")
    assert result.exit_code == 0
    tried = json.loads(result.output)
    assert [entry["filtered"] for entry in tried] == [False, True, False]
    assert [entry["line"] for entry in tried] == [1, 2, 3] and not any(entry["refused"] for entry in tried)
    (track,) = tried[0]["matched"]
    assert track["mapping"] == "Track Event" and track["error"] is None
    assert track["fields"]["revenue"] == 5 and track["body"]["created_at"] == 1767225600
    (identify,) = tried[2]["matched"]
    assert identify["fields"] == {"role": "lead", "email": "a@example.com", "last_seen_at": "2026-01-01T00:00:00.000Z"}


def test_try_refuses_a_line_that_is_not_json(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "track"}\n{nope\n')
    result = _run("mappings", "try", str(events))
    assert result.exit_code != 0 and "line 2" in result.output


def test_try_shows_what_the_door_would_refuse_and_tries_the_rest(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = ["5", json.dumps({"type": "bogus", "userId": "u1"}), json.dumps({"type": "track", "event": "Signed Up", "userId": "u1"})]
    events.write_text("\n".join(lines) + "\n")
    result = _run("mappings", "try", str(events), "--json")
    assert result.exit_code == 1
    tried = json.loads(result.output)
    assert [bool(entry["refused"]) for entry in tried] == [True, True, False]
    assert "JSON object" in tried[0]["refused"] and "type" in tried[1]["refused"]
    (track,) = tried[2]["matched"]
    assert track["error"] is None and track["body"]["event_name"] == "Signed Up"  # the door gave it a timestamp


def test_mappings_test_reports_each_case_and_fails_on_one(tmp_path: Path) -> None:
    cases = {
        "tests": [
            {"name": "ours", "event": {"type": "track"}, "trigger": 'type = "track"', "expect_match": True},
            {"name": "theirs", "event": {"properties": {"n": 1}}, "segment_trigger": "properties.n = true", "expect_match": True},
            {"name": "mapping", "event": {"type": "group", "groupId": "g"}, "mapping": "Identify Company", "expect": {"company_id": "g"}},
            {"name": "body", "event": {"type": "group", "groupId": "g"}, "mapping": "Identify Company", "expect_body": {"company_id": "g"}},
            {"name": "refused", "event": {}, "segment_trigger": "type", "expect_error": True},
            {"name": "nothing", "event": {}, "segment_fields": {"@path": "$.x"}, "expect_nothing": True},
            {"name": "number is not boolean", "event": {"a": True}, "segment_fields": {"@path": "$.a"}, "expect": 1},
        ]
    }
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump(cases))
    result = _run("mappings", "test", str(path), "--json")
    assert result.exit_code == 1
    outcome = {case["name"]: case["ok"] for case in json.loads(result.output)}
    assert outcome == {
        "ours": True,
        "theirs": False,
        "mapping": True,
        "body": True,
        "refused": True,
        "nothing": True,
        "number is not boolean": False,
    }


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("tests: [", "not valid YAML"),
        ("tests: [{name: a, event: {}}]", "exactly one of trigger"),
        ("nope: 1", '"tests" list'),
    ],
)
def test_mappings_test_refuses_a_malformed_file(content: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(content)
    result = _run("mappings", "test", str(path))
    assert result.exit_code != 0 and words in result.output


def test_our_file_takes_segments_directives_with_segments_rules() -> None:
    from worker.mappings import Mapping

    fields = {
        "event_name": {"@case": {"operator": "lower", "value": {"@path": "$.event"}}},
        "created_at": "$.timestamp",
        "metadata": {"@excludeWhenNull": {"@path": "$.properties"}},
        "currency": {"@if": {"blank": {"@path": "$.properties.currency"}, "then": {"@path": "$.properties.currency"}, "else": "USD"}},
    }
    mapping = Mapping.from_spec(name="m", action="track_event", trigger='type = "track"', fields=fields)
    event = {"type": "track", "event": "Order DONE", "timestamp": "t", "properties": {"a": None, "b": 1, "currency": ""}}
    assert mapping.apply(event) == {"event_name": "order done", "created_at": "t", "metadata": {"b": 1, "currency": ""}, "currency": "USD"}
    assert event["properties"] == {"a": None, "b": 1, "currency": ""}  # the event is not changed


def test_a_directive_segment_refuses_is_refused_at_load_naming_the_field() -> None:
    from worker.mappings import Mapping, MappingError

    with pytest.raises(MappingError, match="event_name.*@replace.*pattern"):
        Mapping.from_spec(
            name="m",
            action="track_event",
            trigger='type = "track"',
            fields={"event_name": {"@replace": {"value": "x"}}, "created_at": "$.timestamp"},
        )


# ------------------------------------------------------------ translation, beyond the published cases

_VALUES: list[Any] = [None, 0, 1, 1.5, -2, "", "x", "abc", "5", "true", True, False, [], ["x"], {}, {"b": 0}, {"b": "x"}, {"b": None}]
_VALUES += [{"b": 5}, {"b": True}, {"b": "abcx"}]
_FIELDS = ["properties.a", "properties.a.b", "traits.a.b", "context.a", "event", "type", "name", "userId"]
_COMPARISONS = ['= "x"', '!= "x"', '= ""', "= 0", "!= 0", "= 5", "!= 5", "< 2", ">= 0", "= true", "= false", "!= true"]
_COMPARISONS += ["= null", "!= null", '< "3"', '= "5"', "> -1"]


def _triggers() -> list[str]:
    triggers = [f"{field} {comparison}" for field in _FIELDS for comparison in _COMPARISONS]
    for field in _FIELDS[:5]:
        for function in ('contains({}, "b")', 'match({}, "ab*")', 'match({}, "*x")'):
            triggers += [function.format(field), "!" + function.format(field)]
    return triggers


def test_translated_triggers_match_exactly_the_events_segment_matches() -> None:
    """Every operator on every kind of value (0, "", false at a middle step too), both readings compared."""
    rng = random.Random(20)
    for text in _triggers():
        parsed = parse(text)
        ours = Trigger.parse(translate(parsed))
        for _ in range(60):
            event = {key: rng.choice(_VALUES) for key in ("type", "event", "name", "userId")}
            event.update({key: {"a": rng.choice(_VALUES)} for key in ("properties", "traits", "context")})
            event = {key: value for key, value in event.items() if rng.random() > 0.2}
            assert ours.matches(event) is SegmentTrigger(parsed).matches(event), (text, translate(parsed), event)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no condition"),
        ("type", "Value token is missing"),
        ('type = "track" and (event = "a" or (event = "b"))', "without a matching ')'"),
        ('properties.a!="x"', "expected '='"),
        ('event = "a', "unterminated string"),
        ("properties.price = 1..2", "multiple decimal points"),
        ('event = "a" & type = "b"', "invalid character"),
        ("contains(", "missing a 2nd argument"),
        ('type = "track" and ()', "no condition inside"),
    ],
)
def test_what_segments_parser_refuses_is_refused_saying_why(text: str, words: str) -> None:
    with pytest.raises(SegmentTriggerError, match=re.escape(words)):
        parse(text)


def test_segments_quirks_are_kept() -> None:
    def matches(text: str, event: dict) -> bool:
        return SegmentTrigger.parse(text).matches(event)

    assert matches('type = "track" and event = "A" or event = "B"', {"type": "page", "event": "B"})  # the last keyword
    assert matches('event != "A"', {})  # != on a missing field
    assert not matches("properties.n = 1", {"properties": {"n": True}})  # typed numbers
    assert not matches('properties.n = "1"', {"properties": {"n": 1}})
    assert matches('match(event, "abc")', {"event": "xbc"})  # "ends with" the pattern minus its first character
    assert matches('!(event = "A")', {"event": "A"})  # a '!' before a group is ignored
    assert matches("properties.a.b = 0", {"properties": {"a": 0}})  # JavaScript's a && a.b


def test_a_compiled_field_renders_what_segments_transform_gives() -> None:
    """Fields are compiled once at load: on every published case, the compiled form agrees with transform."""
    from worker.mappings.fields import MISSING
    from worker.mappings.segment_directives import SegmentMappingError, compile_mapping

    compared = 0
    for case in json.loads((CASES / "mapping_kit.json").read_text())["tests"]:
        if "expect_error" in case or not isinstance(case["event"], dict):
            continue
        try:
            got = compile_mapping(case["segment_fields"]).render(case["event"])
        except SegmentMappingError:
            raise AssertionError(case["name"]) from None
        if case.get("expect_nothing"):
            assert got is MISSING, case["name"]
        else:
            assert same(got, case["expect"]), case["name"]
        compared += 1
    assert compared > 100
