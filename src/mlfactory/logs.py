"""Logging: ``get_logger`` for modules, ``configure_logging`` once for programs.

Named ``logs`` so that it never shadows the standard library's ``logging``. Modules only call
:func:`get_logger`; handlers are attached by the CLI (or the user's program), never on import.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from mlfactory.settings import mask_urls_in_text

__all__ = [
    "LOG_BACKUPS",
    "LOG_FILE_NAME",
    "LOG_FORMAT",
    "LOG_MAX_BYTES",
    "ROOT_LOGGER",
    "configure_logging",
    "current_log_file",
    "get_logger",
    "log_exception_to_file",
]

ROOT_LOGGER = "mlfactory"
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(filename)s:%(lineno)d %(levelname)s %(message)s"
LOG_FILE_NAME = "mlfactory.log"
LOG_MAX_BYTES = 5 * 1024 * 1024  # then mlfactory.log becomes mlfactory.log.1, .1 becomes .2...
LOG_BACKUPS = 5  # at most 6 files (30 MB) in the logs folder, however many commands run
_HANDLER_TAG = "_mlfactory_handler"
_FILE_TAG = "_mlfactory_file_handler"


class _MaskingFormatter(logging.Formatter):
    """Masks the whole formatted record, tracebacks included (an exception may quote a URL)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls_in_text(super().format(record))


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
    """Attach a Rich console handler and a rotating file handler to the ``mlfactory`` logger.

    Every invocation appends to ``LOG_DIR/mlfactory.log`` (lines carry the process id); at
    :data:`LOG_MAX_BYTES` it rotates to ``mlfactory.log.1`` ... ``.5``, so the folder stays
    bounded. Calling it again replaces the handlers it attached before, so records are never
    duplicated. Returns the path of the log file, or ``None`` when ``log_dir`` is ``None``.
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
        log_file = folder / LOG_FILE_NAME
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8", delay=True
        )
        file_handler.setFormatter(_MaskingFormatter(LOG_FORMAT))
        file_handler.addFilter(masking)
        setattr(file_handler, _HANDLER_TAG, True)
        setattr(file_handler, _FILE_TAG, True)
        logger.addHandler(file_handler)
    return log_file


def _file_handler() -> logging.handlers.RotatingFileHandler | None:
    for handler in logging.getLogger(ROOT_LOGGER).handlers:
        if getattr(handler, _FILE_TAG, False):
            return handler  # type: ignore[return-value]
    return None


def current_log_file() -> Path | None:
    """The file :func:`configure_logging` writes to in this process, if any."""
    handler = _file_handler()
    return Path(handler.baseFilename) if handler is not None else None


def log_exception_to_file(message: str, exc: BaseException, name: str = "cli") -> Path | None:
    """Write ``message`` and the traceback of ``exc`` to the log file only (not the console).

    Returns the file's path, or ``None`` when no log file is configured.
    """
    handler = _file_handler()
    if handler is None:
        return None
    logger = get_logger(name)
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 0, message, None, (type(exc), exc, exc.__traceback__)
    )
    handler.handle(record)
    handler.flush()
    return Path(handler.baseFilename)
