"""The ``mlfactory`` command line: thin commands over the library API."""

from mlfactory._gc import gc_paused

# A command's start-up creates tens of thousands of objects that live as long as the process
# (Typer, Rich, the command tree): collecting garbage while they are imported finds none and
# costs ~7% of a no-op command (issue #21). ``main`` keeps collection off until the command's
# own work starts; importing this package alone restores it at once.
with gc_paused():
    from mlfactory.cli._main import app, main

__all__ = ["app", "main"]
