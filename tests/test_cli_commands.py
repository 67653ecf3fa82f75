"""``intercom-relay``'s table of commands: each entry is a command of that name, and --help lists them all."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cli.main import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_of_the_table_is_a_command_of_its_name(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command) and command.name == name


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1].split()
    assert set(COMMANDS) <= set(listed)


def test_an_unknown_command_is_refused_by_name() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code != 0 and "no-such-command" in result.output
