"""Placeholder and short secrets are refused where they would guard something.

The door refuses a weak write key when it builds its app (a worker, which never
takes one, is not stopped by it); ADMIN_KEYS is refused when read; Flower's
launcher refuses a weak FLOWER_BASIC_AUTH before Flower starts.  No refusal
ever quotes the secret.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from typing import Any, cast

import pytest

from cli.flower import MIN_FLOWER_PASSWORD, FlowerAuthError, check_basic_auth, flower_argv, launch
from demo.embedded_redis import free_port
from producers.http import create_app
from tests.processes import ROOT, child_env
from worker.settings import MIN_ADMIN_PASSWORD, MIN_WRITE_KEY, Settings, SettingsError, check_write_keys


def env_example() -> dict[str, str]:
    """The assignments of .env.example, as `cp .env.example .env` would give them."""
    lines = (line for line in (ROOT / ".env.example").read_text().splitlines() if line.strip() and not line.startswith("#"))
    return dict(line.split("=", 1) for line in lines)


def good_secret() -> str:
    return secrets.token_urlsafe(32)


# -- write keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("replace-with-a-long-random-write-key", "entry 1 is a placeholder"),
        ("CHANGEME-CHANGEME-CHANGEME-CHANGEME", "entry 1 is a placeholder"),
        ("my-example-key-that-is-long-enough", "entry 1 is a placeholder"),
        ("wk_short_0123456789", f"entry 1 is shorter than {MIN_WRITE_KEY} characters"),
        ("x" * 40, "entry 1 is one character repeated"),
    ],
)
def test_a_weak_write_key_is_refused_by_position_never_echoed(key: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        check_write_keys((key,))
    text = str(caught.value)
    assert key not in text and key.lower() not in text.lower()
    assert text.startswith("WRITE_KEYS:") and f"at least {MIN_WRITE_KEY}" in text
    assert "secrets.token_urlsafe(32)" in text, "the refusal says how to make a real key"


def test_the_second_write_key_is_named_when_it_alone_is_weak() -> None:
    with pytest.raises(SettingsError, match="entry 2 is shorter"):
        check_write_keys((good_secret(), "abc123"))


def test_generated_write_keys_are_accepted() -> None:
    check_write_keys((good_secret(), "wk_" + secrets.token_hex(16)))
    check_write_keys(())  # none: the door's NoWriteKeys decides (producers/http.py)


def test_a_worker_reading_the_environment_is_not_stopped_by_a_write_key() -> None:
    settings = Settings.from_env({"WRITE_KEYS": "replace-with-a-long-random-write-key"})
    assert settings.write_keys == ("replace-with-a-long-random-write-key",)


def test_the_door_refuses_to_build_its_app_with_a_placeholder_key() -> None:
    settings = Settings(write_keys=("replace-with-a-long-random-write-key",))
    # The check comes before anything uses the enqueuer.
    with pytest.raises(SettingsError, match="WRITE_KEYS: entry 1 is a placeholder"):
        create_app(settings, cast(Any, None))
    with pytest.raises(SettingsError, match="WRITE_KEYS: entry 1 is a placeholder"):
        create_app(settings, cast(Any, None), allow_no_auth=True)


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], env=child_env(**env), cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("replace-with-a-long-random-write-key", "WRITE_KEYS: entry 1 is a placeholder"),
        ("wk_0123456789", f"WRITE_KEYS: entry 1 is shorter than {MIN_WRITE_KEY} characters"),
    ],
)
def test_serve_with_a_weak_write_key_exits_with_one_line(key: str, message: str) -> None:
    done = run_cli(["serve", "--host", "127.0.0.1", "--port", str(free_port())], WRITE_KEYS=key, REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert key not in done.stderr + done.stdout


def test_serve_with_several_processes_refuses_before_starting_them() -> None:
    key = "replace-with-a-long-random-write-key"
    done = run_cli(["serve", "--port", str(free_port()), "--workers", "2"], WRITE_KEYS=key, REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode != 0 and "WRITE_KEYS: entry 1 is a placeholder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- ADMIN_KEYS -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("replace-with-a-long-random-password", "is a placeholder"),
        ("Placeholder-Password-1", "is a placeholder"),
        ("z" * 20, "is one character repeated"),
        ("Tiny-Pw-1", f"is shorter than {MIN_ADMIN_PASSWORD} characters"),
    ],
)
def test_a_weak_admin_password_is_refused_never_echoed(password: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"ADMIN_KEYS: the password of entry 2 \\('audit'\\) {message}") as caught:
        Settings.from_env({"ADMIN_KEYS": f"ops:{good_secret()},audit:{password}"})
    assert password not in str(caught.value)


def test_the_env_example_values_are_all_refused() -> None:
    example = env_example()
    with pytest.raises(SettingsError, match="placeholder"):
        check_write_keys(tuple(example["WRITE_KEYS"].split(",")))
    with pytest.raises(SettingsError, match="placeholder"):
        Settings.from_env({"ADMIN_KEYS": example["ADMIN_KEYS"]})
    with pytest.raises(FlowerAuthError, match="placeholder"):
        check_basic_auth(example["FLOWER_BASIC_AUTH"])


# -- Flower ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "FLOWER_BASIC_AUTH is not set"),
        ("   ", "FLOWER_BASIC_AUTH is not set"),
        ("admin", "entry 1 must be user:password"),
        (":no-user-but-a-long-password", "entry 1 must be user:password"),
        ("admin:", "entry 1 must be user:password"),
        ("admin:replace-with-a-long-random-password", "entry 1 \\('admin'\\) is a placeholder"),
        ("admin:tiny-pass", f"entry 1 \\('admin'\\) is shorter than {MIN_FLOWER_PASSWORD} characters"),
        ("admin:" + "q" * 16, "is one character repeated"),
        ("admin:Correct-Horse-Battery-9, ops:Another-Long-Password-7", "entry 2 has spaces around it"),
        ("admin:Correct-Horse-Battery-9,", "entry 2 must be user:password"),
        ("admin:Correct-Horse-Battery-9,ops:short-one", "entry 2 \\('ops'\\) is shorter"),
    ],
)
def test_a_weak_flower_basic_auth_is_refused_never_echoed(value: str, message: str) -> None:
    with pytest.raises(FlowerAuthError, match=message) as caught:
        check_basic_auth(value)
    for password in ("replace-with-a-long", "tiny-pass", "q" * 16, "Correct-Horse", "Another-Long", "short-one", "no-user-but"):
        assert password not in str(caught.value)


def test_strong_flower_passwords_are_accepted() -> None:
    check_basic_auth(f"admin:{good_secret()},ops:{good_secret()}")
    check_basic_auth("ops:a:password:with:colons")  # Flower compares the whole entry


def test_the_launcher_becomes_celery_flower_with_the_remaining_arguments() -> None:
    calls: list[tuple[str, list[str]]] = []
    launch(
        ["--port=5555", "--url_prefix=flower"],
        {"FLOWER_BASIC_AUTH": f"admin:{good_secret()}"},
        lambda path, argv: calls.append((path, argv)),
    )
    assert calls == [(sys.executable, [sys.executable, "-m", "celery", "-A", "worker", "flower", "--port=5555", "--url_prefix=flower"])]


def test_the_launcher_starts_nothing_when_refused() -> None:
    calls: list[Any] = []
    with pytest.raises(FlowerAuthError):
        launch(["--port=5555"], {}, lambda path, argv: calls.append(argv))
    with pytest.raises(FlowerAuthError, match="in FLOWER_BASIC_AUTH, not --basic-auth"):
        launch(
            [f"--basic-auth=admin:{good_secret()}"], {"FLOWER_BASIC_AUTH": f"admin:{good_secret()}"}, lambda path, argv: calls.append(argv)
        )
    assert calls == []


def test_basic_auth_on_the_command_line_is_refused_in_either_spelling() -> None:
    for arg in ("--basic-auth=a:b", "--basic_auth", "--basic-auth"):
        with pytest.raises(FlowerAuthError):
            flower_argv(["--port=1", arg])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "FLOWER_BASIC_AUTH is not set"),
        ({"FLOWER_BASIC_AUTH": "admin:replace-with-a-long-random-password"}, "is a placeholder"),
    ],
)
def test_intercom_relay_flower_exits_with_one_line_when_refused(env: dict[str, str], message: str) -> None:
    base = child_env()
    base.pop("FLOWER_BASIC_AUTH", None)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "flower", f"--port={free_port()}"],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "replace-with-a-long-random-password" not in done.stderr


def test_a_placeholder_access_token_stops_every_process_with_a_message_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="INTERCOM_ACCESS_TOKEN is a placeholder") as refused:
        Settings.from_env({"INTERCOM_ACCESS_TOKEN": "replace-with-your-intercom-access-token"})
    assert "your-intercom" not in str(refused.value)
