"""``intercom-relay mappings import / try / test``: Segment's subscriptions carried over, mappings tried and tested.

None of these touches Redis or Intercom: they read files and print (docs/mappings.md,
"Coming from Segment").
"""

from __future__ import annotations

import json
import sys

import click

from producers.events import InvalidEvent, validate_event
from worker.mappings import MappingError, load_mappings
from worker.mappings.cases import CaseError, read_cases, run_case
from worker.mappings.segment_import import ImportRefused, import_subscriptions, read_export
from worker.mappings.tryout import try_event


def _mappings_of(path: str | None) -> list:
    try:
        return load_mappings(path)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def mappings() -> None:
    """Import Segment's subscriptions, try events on mappings, test mappings."""


@mappings.command("import")
@click.argument("export", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the mappings file here (default: standard output).")
def import_mappings(export: str, output: str | None) -> None:
    """Write our mappings file from Segment's subscriptions of the Intercom destination (Public API JSON)."""
    try:
        imported = import_subscriptions(read_export(export))
    except ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    for note in imported.notes:
        click.echo(f"note: {note}", err=True)
    if output is None:
        click.echo(imported.text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(imported.text)
        click.echo(f"wrote {output}", err=True)


@mappings.command("try")
@click.argument("events", type=click.Path(dir_okay=False))
@click.option(
    "--mappings", "mappings_file", envvar="MAPPINGS_FILE", help="The mappings file (default: MAPPINGS_FILE, else the built-in mappings)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per event.")
def try_mappings(events: str, mappings_file: str | None, as_json: bool) -> None:
    """For each event of a JSON Lines file: the mappings that match, their fields and the body Intercom would get.

    Each event is first checked and normalised as the door would (a missing
    timestamp is the time it arrives, say); one the door would refuse is shown
    with the reason, the others are tried, and the exit status is 1.
    """
    loaded = _mappings_of(mappings_file)
    results = []
    for line, event, refused in _read_events(events):
        tried = try_event(loaded, event) if refused is None else {"matched": [], "filtered": False}
        results.append({"line": line, **tried, "refused": refused})
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
    else:
        for number, result in enumerate(results, start=1):
            _print_tried(number, result)
    if any(result["refused"] for result in results):
        sys.exit(1)


def _print_tried(number: int, result: dict) -> None:
    where = f"event {number} (line {result['line']})"
    if result["refused"]:
        click.echo(f"{where}: the door refuses it: {result['refused']}")
    elif result["filtered"]:
        click.echo(f"{where}: filtered (no mapping matches)")
    for entry in result["matched"]:
        click.echo(f"{where}: {entry['mapping']} ({entry['action']})")
        click.echo(f"  fields: {json.dumps(entry['fields'], default=str)}")
        click.echo(f"  body:   {json.dumps(entry['body'], default=str)}" if entry["error"] is None else f"  error:  {entry['error']}")


def _read_events(path: str) -> list[tuple[int, dict | None, str | None]]:
    """Each non-blank line's number, and the event as the door would accept it or why the door refuses it."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = [(number, line) for number, line in enumerate(file, start=1) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: can't read it: {getattr(exc, 'strerror', None) or exc}") from None
    events: list[tuple[int, dict | None, str | None]] = []
    for number, line in lines:
        try:
            events.append((number, validate_event(json.loads(line)), None))
        except json.JSONDecodeError as exc:
            events.append((number, None, f"not valid JSON: {exc}"))
        except InvalidEvent as exc:
            events.append((number, None, exc.message))
    return events


@mappings.command("test")
@click.argument("tests", type=click.Path(dir_okay=False))
@click.option(
    "--mappings", "mappings_file", envvar="MAPPINGS_FILE", help="The mappings file (default: MAPPINGS_FILE, else the built-in mappings)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per case in file order.")
def test_mappings(tests: str, mappings_file: str | None, as_json: bool) -> None:
    """Run a file of test cases (JSON or YAML) against triggers, fields and mappings; exit 1 if one fails."""
    try:
        cases = read_cases(tests)
    except CaseError as exc:
        raise click.ClickException(str(exc)) from None
    loaded = _mappings_of(mappings_file) if any("mapping" in case for case in cases) else []
    results = [run_case(case, loaded) for case in cases]
    failed = [result for result in results if not result["ok"]]
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
    else:
        for result in failed:
            detail = f"error: {result['error']}" if result["error"] else f"got {json.dumps(result['got'], default=str)}"
            click.echo(f"FAIL {result['name']}: {detail}")
        click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)
