"""``python -m cli``: the ``intercom-relay`` command, for an interpreter without the script installed."""

from cli.main import main

main()
