"""``intercom-relay fake-intercom``: the fake Intercom server, for the demo and local runs."""

from __future__ import annotations

import sys

import click

from fake_intercom.__main__ import main as fake_main


@click.command("fake-intercom", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def fake_intercom(ctx: click.Context) -> None:
    """Run the fake Intercom server (see --help of python -m fake_intercom)."""
    sys.exit(fake_main(ctx.args))
