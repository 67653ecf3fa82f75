"""``intercom-relay check``: whether Intercom takes the configured token and region."""

from __future__ import annotations

import click

from cli.common import load_settings
from worker.intercom.client import IntercomClient
from worker.intercom.errors import IntercomError, Unauthorized


@click.command()
def check() -> None:
    """Call GET /me with the configured token and region; say what is wrong, if anything."""
    settings = load_settings(require_token=True)
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
