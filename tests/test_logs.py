import io
import logging

from rich.console import Console

from mlfactory.logs import ROOT_LOGGER, configure_logging, get_logger


def _our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger(ROOT_LOGGER).handlers if hasattr(h, "_mlfactory_handler")]


def test_logger_writes_to_file_and_console_once(tmp_path):
    buffer = io.StringIO()
    configure_logging("INFO", tmp_path / "logs", console=Console(file=buffer, width=200))
    log_file = configure_logging(
        "INFO", tmp_path / "logs", console=Console(file=buffer, width=200)
    )  # second call replaces, never duplicates

    get_logger("data.ingest").info("ingested %d rows", 42)
    for handler in _our_handlers():
        handler.flush()

    assert len(_our_handlers()) == 2
    assert buffer.getvalue().count("ingested 42 rows") == 1
    content = log_file.read_text()
    assert content.count("ingested 42 rows") == 1
    # time, logger name, file, line, level, message
    assert "mlfactory.data.ingest test_logs.py:" in content
    assert " INFO ingested 42 rows" in content
    assert content[:4].isdigit()


def test_level_filters_records(tmp_path):
    buffer = io.StringIO()
    log_file = configure_logging("WARNING", tmp_path, console=Console(file=buffer))
    get_logger("x").info("quiet")
    get_logger("x").warning("loud")
    for handler in _our_handlers():
        handler.flush()
    assert "quiet" not in log_file.read_text()
    assert "loud" in log_file.read_text()


def test_passwords_in_urls_are_masked_in_logs(tmp_path):
    buffer = io.StringIO()
    log_file = configure_logging("INFO", tmp_path, console=Console(file=buffer, width=200))
    get_logger("db").info("connecting to %s", "postgresql+psycopg://bob:s3cr3t@host/db")
    for handler in _our_handlers():
        handler.flush()
    assert "s3cr3t" not in log_file.read_text()
    assert "s3cr3t" not in buffer.getvalue()
    assert "bob:***@host" in log_file.read_text()


def test_get_logger_names_sit_under_the_package():
    assert get_logger("serving").name == "mlfactory.serving"
    assert get_logger("mlfactory.tracking").name == "mlfactory.tracking"
