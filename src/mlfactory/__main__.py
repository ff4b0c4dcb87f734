"""The ``mlfactory`` command (its console script) and ``python -m mlfactory``."""

from mlfactory._gc import pause_for_start_up


def main() -> None:
    """Run the command line, with the garbage collector paused while it starts (the root
    callback resumes it before the command's work: :func:`mlfactory._gc.end_start_up`)."""
    pause_for_start_up()
    from mlfactory.cli import main as run_command_line

    run_command_line()


if __name__ == "__main__":
    main()
