"""The Celery entry point: ``celery -A worker worker`` finds ``app`` here.

This is the one module that builds the application when imported, because
Celery's command line imports it to find the app.  Settings are validated
here, so a bad setting stops the worker at once with a message naming it.
"""

import sys

from celery.signals import worker_init

from worker import cpu
from worker.celery_app import create_app
from worker.logs import configure_logging
from worker.settings import Settings, SettingsError

try:
    settings = Settings.from_env()
    app = create_app(settings)
except SettingsError as exc:
    print(f"intercom-relay worker: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
configure_logging(settings)


@worker_init.connect
def _pin_worker(sender: object = None, **_: object) -> None:
    """A worker (not beat, not Flower) pins itself to one CPU when WORKER_CPU asks for it."""
    chosen = cpu.choose(settings.worker_cpu)
    if chosen is not None:
        cpu.pin(chosen)
