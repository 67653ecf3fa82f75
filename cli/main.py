"""The ``intercom-relay`` group and its commands.

Every subcommand reads its settings from the environment (see README's
configuration table) and answers bad input with a message naming the problem
and a non-zero exit status.
"""

from __future__ import annotations

import importlib

import click

#: Every command of ``intercom-relay``: its name, and where it is defined (``module:function``).
#: A command's module is imported only when the command runs (or ``--help`` lists it), so that
#: ``intercom-relay status`` loads neither the ingestion server nor Celery nor the demo.
COMMANDS = {
    "attributes": "cli.attributes:attributes",
    "check": "cli.check:check",
    "dead-letters": "cli.dead_letters:dead_letters",
    "delete-person": "cli.deletions:delete_person",
    "demo": "cli.demo:demo",
    "fake-intercom": "cli.fake_intercom:fake_intercom",
    "flower": "cli.flower:flower",
    "mappings": "cli.mappings:mappings",
    "replay": "cli.replay:replay",
    "serve": "cli.serve:serve",
    "status": "cli.status:status",
}


class Commands(click.Group):
    """A group whose commands come from ``COMMANDS``, each imported when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command), COMMANDS[cmd_name]
        return command


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Intercom Relay: sync Segment-spec events into Intercom."""
