"""``intercom-relay``: the one command line of the project.

Every subcommand reads its settings from the environment (see README's
configuration table) and answers bad input with a message naming the problem
and a non-zero exit status.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import redis as redis_lib

from worker.settings import Settings, SettingsError
from worker.store.connect import connect


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _redis(settings: Settings) -> Any:
    client = connect(settings.redis_url, decode_responses=True, socket_connect_timeout=5)
    try:
        client.ping()
    except redis_lib.RedisError as exc:
        raise click.ClickException(f"Redis at REDIS_URL does not answer: {exc}") from None
    return client


def _enqueuer(settings: Settings) -> Any:
    from producers.enqueue import Enqueuer  # noqa: PLC0415 - keeps `--help` fast
    from worker.broker import publisher_app  # noqa: PLC0415

    return Enqueuer.from_settings(_redis(settings), publisher_app(settings), settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Intercom Relay: sync Segment-spec events into Intercom."""


@main.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate only; accept nothing.")
def replay(file: str, dry_run: bool) -> None:
    """Accept the Segment events of FILE (JSON Lines; '-' for stdin)."""
    from producers.replay import format_summary  # noqa: PLC0415
    from producers.replay import replay as run_replay

    if file != "-":
        try:
            open(file, "rb").close()
        except OSError as exc:
            raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    settings = _settings()
    enqueuer = None if dry_run else _enqueuer(settings)
    summary = run_replay(file, enqueuer, dry_run=dry_run)  # waits out back-pressure
    # A refused line is reported, not fatal: exit 0 means every valid line was accepted.
    click.echo(format_summary(summary), err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def status(as_json: bool) -> None:
    """Fleet-wide pipeline counts: accepted, delivered, filtered, parked, retrying, dead-lettered, backlog."""
    from worker.store.attributes import Attributes  # noqa: PLC0415
    from worker.store.counters import Counters  # noqa: PLC0415
    from worker.store.deletions import Deletions  # noqa: PLC0415
    from worker.store.dropped import DroppedFields  # noqa: PLC0415
    from worker.store.pause import Pause  # noqa: PLC0415

    settings = _settings()
    redis = _redis(settings)
    counts: dict[str, Any] = Counters(redis).snapshot()
    paused = Pause(redis, settings.token_id, settings.pause_probe_seconds).reason()
    counts["paused"] = paused
    # Fields left out of delivered events because their value could not be converted, by action.field.
    counts["dropped_fields"] = DroppedFields(redis).snapshot()
    counts["deletions"] = Deletions(redis).count_done()
    # Dead letters with reason unknown_attribute: contacts and companies whose attribute values are held.
    counts["unknown_attribute"] = Attributes(redis).count_letters()
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    for name, value in counts.items():
        if name not in ("paused", "dropped_fields"):
            click.echo(f"{name:>14}  {value}")
    for name, value in counts["dropped_fields"].items():
        click.echo(f"{'dropped':>14}  {value}  {name}")
    if paused:
        click.echo(f"\nPAUSED since {paused['since']}: {paused['reason']}", err=True)


@main.command()
def check() -> None:
    """Call GET /me with the configured token and region; say what is wrong, if anything."""
    from worker.intercom.client import IntercomClient  # noqa: PLC0415
    from worker.intercom.errors import IntercomError, Unauthorized  # noqa: PLC0415

    settings = _settings(require_token=True)
    with IntercomClient.from_settings(settings) as client:
        try:
            me = client.me()
        except Unauthorized:
            raise click.ClickException(
                f"Intercom at {settings.api_url} refuses the access token (401): check INTERCOM_ACCESS_TOKEN, "
                f"and INTERCOM_REGION if the workspace is hosted in the EU or Australia"
            ) from None
        except IntercomError as exc:
            raise click.ClickException(f"Intercom at {settings.api_url} answered: {exc}") from None
    app = me.get("app") or {}
    click.echo(
        f"ok: {me.get('name') or me.get('email')} on app {app.get('name')!r} "
        f"({app.get('id_code')}, region {app.get('region')}) via {settings.api_url}"
    )


@main.group("dead-letters")
def dead_letters() -> None:
    """List, replay or purge dead letters."""


def _letters(reason: str | None, person: str | None, ids: tuple[str, ...]) -> tuple[Any, list]:
    from worker.runtime import build_lanes  # noqa: PLC0415
    from worker.store.deadletters import DeadLetters  # noqa: PLC0415

    settings = _settings()
    redis = _redis(settings)
    store = DeadLetters(redis, build_lanes(redis, settings))
    return store, list(store.iter(reason=reason, person=person, ids=list(ids) or None))


def _chosen_letters(reason: str | None, person: str | None, ids: tuple[str, ...], everything: bool) -> tuple[Any, list]:
    """The letters a replay or purge acts on; it must be told which, or --all."""
    if not (reason or person or ids or everything):
        raise click.UsageError("say which letters: --reason, --person, --id, or --all")
    return _letters(reason, person, ids)


_filters = [
    click.option("--reason", help="Only letters whose reason contains this text."),
    click.option("--person", help="Only this person's letters (userId, else anonymousId)."),
    click.option("--id", "ids", multiple=True, help="Only these dead letter ids (repeatable)."),
]


def _with_filters(f: Any) -> Any:
    for option in reversed(_filters):
        f = option(f)
    return f


@dead_letters.command("list")
@_with_filters
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_dead_letters(reason: str | None, person: str | None, ids: tuple[str, ...], as_json: bool) -> None:
    """Show dead letters, oldest first."""
    _, letters = _letters(reason, person, ids)
    for dead in letters:
        if as_json:
            click.echo(json.dumps(dead.as_dict()))
        else:
            click.echo(f"{dead.id}  {dead.person}  {dead.action}  attempts={dead.attempts}  {dead.reason}")
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s)", err=True)


@dead_letters.command("replay")
@_with_filters
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter (required without a filter).")
def replay_dead_letters(reason: str | None, person: str | None, ids: tuple[str, ...], everything: bool) -> None:
    """Put dead letters back at the end of their person's lane."""
    from worker.broker import publisher_app  # noqa: PLC0415
    from worker.delivery import dispatch  # noqa: PLC0415

    store, letters = _chosen_letters(reason, person, ids, everything)
    replayed, heads = store.replay(letters)
    app = publisher_app(_settings())
    for who, head in heads:
        dispatch(app, who, head)
    click.echo(f"replayed {replayed} dead letter(s)")
    unreadable = [dead for dead in letters if dead.message]
    if unreadable:
        click.echo(
            f"{len(unreadable)} dead letter(s) cannot be replayed: messages no worker could read, which hold no event "
            "to put in a lane; `dead-letters list --json` shows their raw body: fix what sent them, then purge them",
            err=True,
        )
    held = [dead.id for dead in letters if dead.held]  # unknown_attribute: their values are sent, not their event
    if held:
        from worker.actions.attribute_replay import replay_letters  # noqa: PLC0415

        settings = _settings(require_token=True)
        sent, still_held = replay_letters(_redis(settings), settings, held)
        click.echo(f"sent {sent} held attribute value(s); {still_held} still held (attribute missing or value of another type)")


@dead_letters.command("purge")
@_with_filters
@click.option("--all", "everything", is_flag=True, help="Purge every dead letter (required without a filter).")
def purge_dead_letters(reason: str | None, person: str | None, ids: tuple[str, ...], everything: bool) -> None:
    """Delete dead letters for good."""
    store, letters = _chosen_letters(reason, person, ids, everything)
    click.echo(f"purged {store.purge(letters)} dead letter(s)")


@main.group()
def attributes() -> None:
    """Custom attributes the workspace lacks: list those held (dead letters, reason unknown_attribute), create them."""


@attributes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
def list_attributes(as_json: bool) -> None:
    """Attributes whose values were held (UNKNOWN_ATTRIBUTES=hold): model, name, count, an example value."""
    from worker.store.attributes import Attributes  # noqa: PLC0415

    unknown = Attributes(_redis(_settings())).unknown()
    if as_json:
        click.echo(json.dumps([vars(a) for a in unknown], indent=2))
        return
    if not unknown:
        click.echo("no attribute values are held", err=True)
    for a in unknown:
        click.echo(f"{a.model:<8} {a.name:<30} held={a.count:<6} waiting={a.held:<6} example={json.dumps(a.example)}")


@attributes.command("create")
@click.argument("name")
@click.option("--type", "data_type", required=True, type=click.Choice(["string", "integer", "float", "boolean", "date"]))
@click.option("--model", default="contact", show_default=True, type=click.Choice(["contact", "company"]))
def create_attribute(name: str, data_type: str, model: str) -> None:
    """Create a custom attribute in the workspace (POST /data_attributes); every worker knows it at once."""
    from worker.intercom.client import IntercomClient  # noqa: PLC0415
    from worker.intercom.errors import IntercomError  # noqa: PLC0415
    from worker.store.attributes import Attributes  # noqa: PLC0415

    settings = _settings(require_token=True)
    store = Attributes(_redis(settings))
    with IntercomClient.from_settings(settings) as client:
        try:
            client.create_data_attribute(name, model, data_type)
        except IntercomError as exc:
            raise click.ClickException(f"Intercom did not create {model} attribute {name!r}: {exc}") from None
    store.add(model, name, data_type)
    click.echo(
        f"created {model} attribute {name!r} ({data_type}); "
        "`intercom-relay dead-letters replay --reason unknown_attribute` sends the values held for it"
    )


@attributes.command("replay")
@click.option("--name", help="Only this attribute.")
def replay_attributes(name: str | None) -> None:
    """Send the held values of the attributes the workspace defines now; the rest stay held.

    The same as `dead-letters replay --reason unknown_attribute`, narrowed to one attribute with --name.
    """
    from worker.actions.attribute_replay import replay_held  # noqa: PLC0415
    from worker.intercom.client import IntercomClient  # noqa: PLC0415
    from worker.store.attributes import Attributes  # noqa: PLC0415

    settings = _settings(require_token=True)
    store = Attributes(_redis(settings))
    with IntercomClient.from_settings(settings) as client:
        sent, still_held = replay_held(store, client, name)
    click.echo(f"sent {sent} held value(s); {still_held} still held (attribute missing or value of another type)")


@main.command("delete-person")
@click.option("--user-id", help="The person's userId (Intercom's external_id).")
@click.option("--email", help="The person's email.")
@click.option("--anonymous-id", help="The person's anonymousId.")
@click.option("--wait", is_flag=True, help="Wait until the deletion is done (or failed: non-zero exit, and why), and print its record.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds --wait waits.")
def delete_person(user_id: str | None, email: str | None, anonymous_id: str | None, wait: bool, timeout: float) -> None:
    """Delete a person from Intercom (a privacy request), through the person's lane; prints the deletion's id.

    Their events accepted before and not yet delivered are dropped unsent (counted as deleted);
    those accepted after are delivered as usual.
    """
    import time  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    from worker.mappings import load_mappings  # noqa: PLC0415
    from worker.store.deletions import Deletions, deletion_event  # noqa: PLC0415
    from worker.store.lanes import person_of  # noqa: PLC0415

    if not (user_id or email or anonymous_id):
        raise click.UsageError("say whom: --user-id, --email or --anonymous-id")
    settings = _settings()
    deletion_id = uuid.uuid4().hex
    event = deletion_event(deletion_id, user_id, email, anonymous_id)
    if not any(m.action == "delete_person" and m.matches(event) for m in load_mappings(settings.mappings_file)):
        raise click.ClickException("no mapping takes deletions: MAPPINGS_FILE needs `include_defaults: true` or a delete_person mapping")
    deletions = Deletions(_redis(settings))
    deletions.request(deletion_id, audit_days=settings.deletion_audit_days)
    # What was accepted before is dropped unsent, in the anonymous lanes linked to the user too.
    deletions.mark(person_of(event), deletion_id, user_id=user_id, anonymous_id=anonymous_id)
    _enqueuer(settings).accept([event])
    click.echo(deletion_id)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while (record := deletions.get(deletion_id) or {}).get("state") not in ("done", "failed"):
        if time.monotonic() > deadline:
            raise click.ClickException(f"deletion {deletion_id} is still {record.get('state', 'unknown')} after {timeout:g} s")
        time.sleep(0.5)
    click.echo(json.dumps(record, indent=2))
    if record["state"] == "failed":
        raise click.ClickException(
            f"deletion {deletion_id} failed: {record.get('reason')}; once the cause is fixed, "
            f"`intercom-relay dead-letters replay --id {record.get('dead_letter')}` runs it again"
        )


@main.command("fake-intercom", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def fake_intercom(ctx: click.Context) -> None:
    """Run the fake Intercom server (see --help of python -m fake_intercom)."""
    from fake_intercom.__main__ import main as fake_main  # noqa: PLC0415

    sys.exit(fake_main(ctx.args))


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, envvar="PORT", type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--no-auth", is_flag=True, help="Accept events without a write key (local demos only).")
def serve(host: str, port: int, workers: int, no_auth: bool) -> None:
    """Run the Segment-compatible ingestion API."""
    from producers.http import NoWriteKeys  # noqa: PLC0415
    from producers.http import serve as run_server

    try:
        run_server(_settings(), host=host, port=port, workers=workers, allow_no_auth=no_auth)
    except (NoWriteKeys, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Run Flower (celery flower, with these arguments) once FLOWER_BASIC_AUTH holds strong passwords."""
    from worker.flower import FlowerAuthError, launch  # noqa: PLC0415

    try:
        launch(ctx.args)
    except FlowerAuthError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option(
    "--people", default=40, show_default=True, type=click.IntRange(1, 10_000), help="People in the sample stream (~9 events each)."
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for delivery.")
@click.option("--yes-send-to-intercom", is_flag=True, help="With INTERCOM_ACCESS_TOKEN set: really send the sample to that workspace.")
@click.option("--ingest-url", help="Start nothing: send to this running relay (e.g. http://web:8000).")
@click.option("--fake-url", help="With --ingest-url: the fake Intercom to read the result from.")
@click.option("--write-key", help="With --ingest-url: the write key (default: the first of WRITE_KEYS).")
def demo(**options: Any) -> None:
    """Run the whole pipeline locally on a sample stream and show what Intercom ends up holding."""
    from demo import DemoError, DemoOptions, run  # noqa: PLC0415 - keeps `--help` fast

    try:
        sys.exit(run(DemoOptions(**options), say=click.echo))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


# ---------------------------------------------------------------------------------------------------
# mappings: import Segment's subscriptions, try events, test mappings (docs/mappings.md).
# Kept as one block so that it moves as a whole into the command-line package.


def _mappings_of(path: str | None) -> list:
    from worker.mappings import MappingError, load_mappings  # noqa: PLC0415 - keeps `--help` fast

    try:
        return load_mappings(path)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def mappings() -> None:
    """Import Segment's subscriptions, try events on mappings, test mappings."""


@mappings.command("import")
@click.argument("export", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the mappings file here (default: standard output).")
def import_mappings(export: str, output: str | None) -> None:
    """Write our mappings file from Segment's subscriptions of the Intercom destination (Public API JSON)."""
    from worker.mappings.segment_import import ImportRefused, import_subscriptions, read_export  # noqa: PLC0415

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
    from worker.mappings.tryout import try_event  # noqa: PLC0415

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
    from worker.mappings.cases import CaseError, read_cases, run_case  # noqa: PLC0415

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


if __name__ == "__main__":
    main()
