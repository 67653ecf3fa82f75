"""``intercom-relay attributes list / create / replay``: custom attributes the workspace lacks."""

from __future__ import annotations

import json

import click

from cli.common import load_settings, open_redis
from worker.actions.attribute_replay import replay_held
from worker.intercom.client import IntercomClient
from worker.intercom.errors import IntercomError
from worker.store.attributes import Attributes


@click.group()
def attributes() -> None:
    """Custom attributes the workspace lacks: list those held (dead letters, reason unknown_attribute), create them."""


@attributes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
def list_attributes(as_json: bool) -> None:
    """Attributes whose values were held (UNKNOWN_ATTRIBUTES=hold): model, name, count, an example value."""
    unknown = Attributes(open_redis(load_settings())).unknown()
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
    settings = load_settings(require_token=True)
    store = Attributes(open_redis(settings))
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
    settings = load_settings(require_token=True)
    store = Attributes(open_redis(settings))
    with IntercomClient.from_settings(settings) as client:
        sent, still_held = replay_held(store, client, name)
    click.echo(f"sent {sent} held value(s); {still_held} still held (attribute missing or value of another type)")
