"""``intercom-relay serve``: the Segment-compatible ingestion API."""

from __future__ import annotations

import click

from cli.common import load_settings
from producers.http import NoWriteKeys
from producers.http import serve as run_server
from worker.settings import SettingsError


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, envvar="PORT", type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--no-auth", is_flag=True, help="Accept events without a write key (local demos only).")
def serve(host: str, port: int, workers: int, no_auth: bool) -> None:
    """Run the Segment-compatible ingestion API."""
    try:
        run_server(load_settings(), host=host, port=port, workers=workers, allow_no_auth=no_auth)
    except (NoWriteKeys, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
