"""``intercom-relay status``: the fleet's pipeline counts, read from Redis."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.common import load_settings, open_redis
from worker.store.attributes import Attributes
from worker.store.counters import Counters
from worker.store.deletions import Deletions
from worker.store.dropped import DroppedFields
from worker.store.pause import Pause


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def status(as_json: bool) -> None:
    """Fleet-wide pipeline counts: accepted, delivered, filtered, parked, retrying, dead-lettered, backlog."""
    settings = load_settings()
    redis = open_redis(settings)
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
