"""Intercom Relay's worker: Redis lanes in, Intercom's REST API out.

``celery -A worker worker`` loads ``worker/celery.py``.
"""
