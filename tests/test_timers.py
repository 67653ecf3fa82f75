"""The timers that depend on each other (worker/timers.py): one test per relation, and the check at start."""

from __future__ import annotations

import pytest

from worker.celery_app import create_app
from worker.settings import Settings, SettingsError
from worker.timers import (
    CHAIN_SECONDS,
    MAX_COUNTDOWN_SECONDS,
    SILENCE_SECONDS,
    TICK_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    check_silence_and_tick,
    check_silence_and_visibility,
    check_timers,
    check_visibility_timeout,
    longest_task_seconds,
)


def test_the_timers_as_shipped_pass_every_check() -> None:
    check_timers(Settings())


def test_a_task_must_not_outlive_the_visibility_timeout() -> None:
    check_visibility_timeout(Settings(), visibility_timeout=600, chain_seconds=5)  # the defaults fit
    with pytest.raises(SettingsError, match="INTERCOM_TIMEOUT_SECONDS=120 is too long"):
        check_visibility_timeout(Settings(http_timeout=120), visibility_timeout=600, chain_seconds=5)
    # The longest countdown counts too, not only the task.
    fits = VISIBILITY_TIMEOUT_SECONDS - longest_task_seconds(Settings(), CHAIN_SECONDS) - 1
    check_visibility_timeout(Settings(), max_countdown=fits)
    with pytest.raises(SettingsError, match="MAX_COUNTDOWN_SECONDS"):
        check_visibility_timeout(Settings(), max_countdown=fits + 1)
    assert MAX_COUNTDOWN_SECONDS < VISIBILITY_TIMEOUT_SECONDS


def test_a_worker_is_taken_for_dead_only_after_three_missed_beats() -> None:
    check_silence_and_tick(silence=SILENCE_SECONDS, tick=TICK_SECONDS)
    with pytest.raises(SettingsError, match="SILENCE_SECONDS=9 .* 3 x TICK_SECONDS=3"):
        check_silence_and_tick(silence=9, tick=3)


def test_the_sweep_frees_a_dead_workers_messages_before_the_broker_hands_them_out() -> None:
    check_silence_and_visibility(silence=SILENCE_SECONDS, visibility_timeout=VISIBILITY_TIMEOUT_SECONDS)
    with pytest.raises(SettingsError, match="SILENCE_SECONDS=600 is not shorter than VISIBILITY_TIMEOUT_SECONDS=600"):
        check_silence_and_visibility(silence=600, visibility_timeout=600)


def test_a_worker_checks_its_timers_when_its_app_is_built() -> None:
    with pytest.raises(SettingsError, match="INTERCOM_TIMEOUT_SECONDS"):
        create_app(Settings(http_timeout=300))
