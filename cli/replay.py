"""``intercom-relay replay``: accept a file of Segment events, as the ingestion door would."""

from __future__ import annotations

import click

from cli.common import load_settings, open_enqueuer
from producers.replay import format_summary
from producers.replay import replay as run_replay


@click.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate only; accept nothing.")
def replay(file: str, dry_run: bool) -> None:
    """Accept the Segment events of FILE (JSON Lines; '-' for stdin)."""
    if file != "-":
        try:
            open(file, "rb").close()
        except OSError as exc:
            raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    settings = load_settings()
    enqueuer = None if dry_run else open_enqueuer(settings)
    summary = run_replay(file, enqueuer, dry_run=dry_run)  # waits out back-pressure
    # A refused line is reported, not fatal: exit 0 means every valid line was accepted.
    click.echo(format_summary(summary), err=True)
