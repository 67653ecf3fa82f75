"""``intercom-relay dead-letters list / replay / purge``."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.common import load_settings, open_redis
from worker.actions.attribute_replay import replay_letters
from worker.broker import publisher_app
from worker.delivery import dispatch
from worker.runtime import build_lanes
from worker.store.deadletters import DeadLetters


@click.group("dead-letters")
def dead_letters() -> None:
    """List, replay or purge dead letters."""


def _letters(reason: str | None, person: str | None, ids: tuple[str, ...]) -> tuple[Any, list]:
    settings = load_settings()
    redis = open_redis(settings)
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
    store, letters = _chosen_letters(reason, person, ids, everything)
    replayed, heads = store.replay(letters)
    app = publisher_app(load_settings())
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
        settings = load_settings(require_token=True)
        sent, still_held = replay_letters(open_redis(settings), settings, held)
        click.echo(f"sent {sent} held attribute value(s); {still_held} still held (attribute missing or value of another type)")


@dead_letters.command("purge")
@_with_filters
@click.option("--all", "everything", is_flag=True, help="Purge every dead letter (required without a filter).")
def purge_dead_letters(reason: str | None, person: str | None, ids: tuple[str, ...], everything: bool) -> None:
    """Delete dead letters for good."""
    store, letters = _chosen_letters(reason, person, ids, everything)
    click.echo(f"purged {store.purge(letters)} dead letter(s)")
