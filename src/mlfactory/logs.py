"""Logging: ``get_logger`` for modules, ``configure_logging`` once for programs.

Named ``logs`` so that it never shadows the standard library's ``logging``. Modules only call
:func:`get_logger`; handlers are attached by the CLI (or the user's program), never on import.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from mlfactory.settings import mask_urls_in_text

__all__ = ["LOG_FORMAT", "ROOT_LOGGER", "configure_logging", "get_logger"]

ROOT_LOGGER = "mlfactory"
LOG_FORMAT = "%(asctime)s %(name)s %(filename)s:%(lineno)d %(levelname)s %(message)s"
_HANDLER_TAG = "_mlfactory_handler"


class SecretMaskingFilter(logging.Filter):
    """Mask passwords of URLs in every record, whatever the caller passed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_urls_in_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``mlfactory`` hierarchy (``mlfactory.data.ingest`` for ``data.ingest``)."""
    if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT_LOGGER}.{name}")


def configure_logging(
    level: str | int = "INFO",
    log_dir: Path | str | None = None,
    *,
    console: Console | None = None,
) -> Path | None:
    """Attach a Rich console handler and a timestamped file handler to the ``mlfactory`` logger.

    Calling it again replaces the handlers it attached before, so records are never duplicated.
    Returns the path of the log file, or ``None`` when ``log_dir`` is ``None``.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_TAG, False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level if isinstance(level, int) else level.upper())
    logger.propagate = False
    masking = SecretMaskingFilter()

    console_handler = RichHandler(
        console=console or Console(stderr=True),
        show_path=False,
        rich_tracebacks=False,
        markup=False,
    )
    console_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    console_handler.addFilter(masking)
    setattr(console_handler, _HANDLER_TAG, True)
    logger.addHandler(console_handler)

    log_file: Path | None = None
    if log_dir is not None:
        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        log_file = folder / f"mlfactory-{stamp}.log"
        file_handler = logging.FileHandler(log_file, encoding="utf-8", delay=True)
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        file_handler.addFilter(masking)
        setattr(file_handler, _HANDLER_TAG, True)
        logger.addHandler(file_handler)
    return log_file
