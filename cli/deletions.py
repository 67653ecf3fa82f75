"""``intercom-relay delete-person``: a privacy request, sent through the person's lane."""

from __future__ import annotations

import json
import time
import uuid

import click

from cli.common import load_settings, open_enqueuer, open_redis
from worker.mappings import load_mappings
from worker.store.deletions import Deletions, deletion_event
from worker.store.lanes import person_of


@click.command("delete-person")
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
    if not (user_id or email or anonymous_id):
        raise click.UsageError("say whom: --user-id, --email or --anonymous-id")
    settings = load_settings()
    deletion_id = uuid.uuid4().hex
    event = deletion_event(deletion_id, user_id, email, anonymous_id)
    if not any(m.action == "delete_person" and m.matches(event) for m in load_mappings(settings.mappings_file)):
        raise click.ClickException("no mapping takes deletions: MAPPINGS_FILE needs `include_defaults: true` or a delete_person mapping")
    deletions = Deletions(open_redis(settings))
    deletions.request(deletion_id, audit_days=settings.deletion_audit_days)
    # What was accepted before is dropped unsent, in the anonymous lanes linked to the user too.
    deletions.mark(person_of(event), deletion_id, user_id=user_id, anonymous_id=anonymous_id)
    open_enqueuer(settings).accept([event])
    click.echo(deletion_id)
    if wait:
        _wait_for(deletions, deletion_id, timeout)


def _wait_for(deletions: Deletions, deletion_id: str, timeout: float) -> None:
    """Print the deletion's record once it is done; fail with why if it failed or is not done in time."""
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
