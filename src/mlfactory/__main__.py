"""``python -m mlfactory``: the same as the ``mlfactory`` command."""

from mlfactory.cli import main

main()
