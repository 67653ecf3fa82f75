"""``intercom-relay demo``: the whole pipeline on a sample stream."""

from __future__ import annotations

import sys
from typing import Any

import click

from demo import DemoError, DemoOptions, run


@click.command()
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
    try:
        sys.exit(run(DemoOptions(**options), say=click.echo))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
