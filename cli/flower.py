"""``intercom-relay flower``: Flower, started only behind real credentials.

Flower reads FLOWER_BASIC_AUTH itself, and without it serves every task's
arguments (people's traits) to anyone who can reach its port; with a copied
placeholder it is open to anyone who read .env.example.  This launcher checks
FLOWER_BASIC_AUTH as Flower will use it, then replaces itself with
``python -m celery -A worker flower <args>`` (same pid: a supervisor's signals
reach Flower directly).  Flower itself is not imported here.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

import click

from worker.settings import GENERATE_HINT, MIN_ADMIN_PASSWORD, secret_weakness

#: The shortest Flower password accepted: Flower shows the people in every task's arguments.
MIN_FLOWER_PASSWORD = MIN_ADMIN_PASSWORD


class FlowerAuthError(ValueError):
    """FLOWER_BASIC_AUTH is missing or weak; the message names the entry by position, never its password."""


def check_basic_auth(value: str) -> None:
    """Refuse a FLOWER_BASIC_AUTH that Flower would accept but that protects nothing.

    Flower splits the value on commas and compares each ``user:password`` entry whole
    with what a browser sends, spaces included: an entry is checked exactly as it stands.
    """
    if not value.strip():
        raise FlowerAuthError(f"FLOWER_BASIC_AUTH is not set, so Flower would start without a password: set user:password; {GENERATE_HINT}")
    for n, entry in enumerate(value.split(","), start=1):
        user, sep, password = entry.partition(":")
        if not (sep and user and password):
            raise FlowerAuthError(f"FLOWER_BASIC_AUTH: entry {n} must be user:password")
        if entry != entry.strip():
            raise FlowerAuthError(f"FLOWER_BASIC_AUTH: entry {n} has spaces around it, which Flower would take as part of it")
        weakness = secret_weakness(password, MIN_FLOWER_PASSWORD)
        if weakness:
            raise FlowerAuthError(
                f"FLOWER_BASIC_AUTH: the password of entry {n} ({user!r}) {weakness}; "
                f"a password needs at least {MIN_FLOWER_PASSWORD} characters; {GENERATE_HINT}"
            )


def flower_argv(args: Sequence[str]) -> list[str]:
    """The command that runs Flower with ``args``, in this interpreter (so ``worker`` imports)."""
    for arg in args:
        if arg.startswith(("--basic-auth", "--basic_auth")):
            # A command line is readable by every user of the machine (ps); the environment is not.
            raise FlowerAuthError("pass Flower's credentials in FLOWER_BASIC_AUTH, not --basic-auth")
    return [sys.executable, "-m", "celery", "-A", "worker", "flower", *args]


def launch(args: Sequence[str], env: Mapping[str, str] | None = None, execv: Callable[[str, list[str]], object] = os.execv) -> None:
    """Check FLOWER_BASIC_AUTH, then become Flower (``execv`` does not return)."""
    env = os.environ if env is None else env
    check_basic_auth(env.get("FLOWER_BASIC_AUTH", ""))
    argv = flower_argv(args)
    execv(argv[0], argv)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Run Flower (celery flower, with these arguments) once FLOWER_BASIC_AUTH holds strong passwords."""
    try:
        launch(ctx.args)
    except FlowerAuthError as exc:
        raise click.ClickException(str(exc)) from None
