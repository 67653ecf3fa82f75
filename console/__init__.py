"""The pipeline console: where every event is, what Intercom answered, and the dead letters to act on.

Served by ``intercom-relay serve`` under ``/console`` (``console.app.mount``),
behind ADMIN_KEYS.  docs/monitoring.md describes the pages.
"""
