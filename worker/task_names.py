"""The names of the relay's Celery tasks that are sent by name from outside the worker.

Plain constants, so that a producer can name the ingest task without importing
Celery, kombu or anything of the worker (``import producers`` stays light).
Each action's task is ``intercom.<action name>`` (worker/actions/action.py).
"""

#: Moves accepted events into their people's lanes; producers send it.
INGEST_TASK = "intercom.ingest"

#: The periodic housekeeping task that celery beat sends.
SWEEP_TASK = "intercom.sweep"
