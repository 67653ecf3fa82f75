"""``intercom-relay``: the one command line of the project, above everything it starts.

``cli/main.py`` holds the click group and the table of commands; each command
group is a module of its own (``serve.py``, ``replay.py``, ``status.py``, ...),
and ``common.py`` what they share.  Nothing below imports this package: the
worker, the producers and the fake Intercom know nothing of the command line.
"""
