"""A progress bar that appears only when the work lasts (as tqdm's ``delay``).

A run that ends within the delay (a no-op ingest: every ticker already up to date) draws no
bar and never imports ``rich.progress`` or starts Rich's refresh thread.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["DelayedProgress"]


class DelayedProgress:
    """A transient ``LABEL [bar] done/total description elapsed`` bar, drawn from the first
    step taken ``delay`` seconds or more after the start (with the steps already done)."""

    def __init__(self, label: str, total: int | None, console: Console, delay: float = 0.25):
        self.label, self.total, self.console, self.delay = label, total, console, delay
        self.done = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._started = time.perf_counter()

    def __enter__(self) -> DelayedProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, description: str = "", steps: int = 1) -> None:
        """Count ``steps`` more done; draw or update the bar once the delay has passed."""
        self.done += steps
        if self._bar is None and time.perf_counter() - self._started >= self.delay:
            self._start()
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, description=description)

    def _start(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns: list[Any] = [
            TextColumn(f"[bold]{self.label}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
        ]
        self._bar = Progress(*columns, console=self.console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task("", total=self.total, completed=self.done)
