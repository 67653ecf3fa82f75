"""Logging: readable text by default, JSON lines with LOG_FORMAT=json.

A delivery outcome is one line carrying person, action, status and attempts
(``extra={"delivery": {...}}`` in delivery.py); the JSON format puts those
keys at the top level for log pipelines.  No secret is ever logged: the
access token lives only in the HTTP client's headers.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from worker.settings import Settings
from worker.task_names import SWEEP_TASK


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in (getattr(record, "delivery", None) or {}).items() if v is not None})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Send the relay's own loggers to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("worker", "producers"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # httpx logs every request line at INFO; that is noise at our volume.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Celery logs "received" and "succeeded" for every task; for the once-a-second
    # sweep that is two lines a second saying nothing (it logs what it did itself).
    for name in ("celery.worker.strategy", "celery.app.trace", "celery.beat"):
        logging.getLogger(name).addFilter(_not_the_sweep)


def _not_the_sweep(record: logging.LogRecord) -> bool:
    return SWEEP_TASK not in str(record.args) and SWEEP_TASK not in str(record.msg)
