"""``intercom-relay mappings import / try / test``: Segment's subscriptions carried over, mappings tried and tested.

None of these touches Redis or Intercom: they read files and print (docs/mappings.md,
"Coming from Segment").
"""

from __future__ import annotations

import json
import sys

import click

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
    """For each event of a JSON Lines file: the mappings that match, their fields and the body Intercom would get."""
    loaded = _mappings_of(mappings_file)
    results = [try_event(loaded, event) for event in _read_events(events)]
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
        return
    for number, result in enumerate(results, start=1):
        if result["filtered"]:
            click.echo(f"event {number}: filtered (no mapping matches)")
        for entry in result["matched"]:
            click.echo(f"event {number}: {entry['mapping']} ({entry['action']})")
            click.echo(f"  fields: {json.dumps(entry['fields'], default=str)}")
            click.echo(f"  body:   {json.dumps(entry['body'], default=str)}" if entry["error"] is None else f"  error:  {entry['error']}")


def _read_events(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as file:
            lines = [(number, line) for number, line in enumerate(file, start=1) if line.strip()]
    except OSError as exc:
        raise click.ClickException(f"{path}: can't read it: {exc.strerror}") from None
    events = []
    for number, line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"{path}, line {number}: not valid JSON: {exc}") from None
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
