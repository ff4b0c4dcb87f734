"""A careless user's inputs: every one ends as one ``error:`` line naming the file and what was
expected, with a documented exit code, never a traceback nor an "unexpected error"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.exceptions import EXIT_USAGE

runner = CliRunner()

LATIN1 = "a,b,c\n" + "".join(f"{i},{i % 3},caf\xe9\n" for i in range(40))


def _error_line(result) -> str:
    """stderr, asserted to be one ``error:`` line (plus at most one ``hint:``); the error line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output, result.output
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) <= 2, result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    assert "unexpected error" not in lines[0], result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# TOML files: specs and line specs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfename = 'x'\n", "is not UTF-8"),
        (bytes(range(256)) * 4, "is not UTF-8"),
    ],
    ids=["utf16-bom", "binary"],
)
def test_a_spec_that_is_not_text_is_one_line(tmp_path: Path, content: bytes, words: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_bytes(content)
    for command in (["spec", "validate", str(spec)], ["spec", "show", str(spec)]):
        result = runner.invoke(app, command)
        assert result.exit_code == EXIT_USAGE, result.output
        line = _error_line(result)
        assert str(spec) in line and words in line, line


def test_a_line_spec_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    line_file = tmp_path / "line.toml"
    line_file.write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    result = runner.invoke(app, ["run", str(line_file)])
    assert result.exit_code == EXIT_USAGE, result.output
    line = _error_line(result)
    assert str(line_file) in line and "not UTF-8" in line, line


def test_a_line_whose_experiment_spec_is_not_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "exp.toml").write_bytes(b"name = '\xe9'\n")
    line_file = tmp_path / "line.toml"
    line_file.write_text(
        'name = "l"\n[dataset]\nname = "breast_cancer"\n[train]\nspec = "exp.toml"\n'
        '[promote]\nmodel = "l"\n'
    )
    result = runner.invoke(app, ["run", str(line_file)])
    assert result.exit_code == 1, result.output  # a stage that failed, as a malformed TOML
    line = _error_line(result)
    assert "exp.toml" in line and "not UTF-8" in line, line


# ---------------------------------------------------------------------------------------------
# configuration: mlfactory.toml, .env, MLFACTORY_HOME
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("mlfactory.toml", b"home = [\n", "malformed TOML"),
        ("mlfactory.toml", b"\xff\xfe\x00home", "not a text file"),
        (".env", b"MLFACTORY_HOME=\xff\xfe\n", "not a text file"),
    ],
    ids=["toml-syntax", "toml-binary", "env-binary"],
)
def test_a_broken_configuration_file_is_named(
    tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    (tmp_path / name).write_bytes(content)  # the working directory (isolated_home)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == EXIT_USAGE, result.output
    line = _error_line(result)
    assert str(tmp_path / name) in line and words in line, line


@pytest.mark.parametrize("where", ["home", "logs"])
def test_a_home_that_is_a_file_is_one_line(tmp_path: Path, monkeypatch, where: str) -> None:
    home = tmp_path / "home"
    if where == "home":
        home.write_text("not a folder")
    else:
        home.mkdir()
        (home / "logs").write_text("not a folder")
    monkeypatch.setenv("MLFACTORY_HOME", str(home))
    for command in (["info"], ["runs", "list"], ["spec", "models"]):
        result = runner.invoke(app, command)
        assert result.exit_code == EXIT_USAGE, (command, result.output)
        line = _error_line(result)
        assert "cannot create the log folder" in line and str(home) in line, line
        assert "MLFACTORY_HOME" in result.stderr


# ---------------------------------------------------------------------------------------------
# data files: the shared table reader (monitor drift, explain --data, user tables, csv source)
# ---------------------------------------------------------------------------------------------
def _write_inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    ok = folder / "ok.csv"
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.integers(0, 3, 60)}).to_csv(ok, index=False)
    files = {
        "ok": ok,
        "empty": folder / "empty.csv",
        "blank": folder / "blank.csv",
        "dup_csv": folder / "dup.csv",
        "dup_parquet": folder / "dup.parquet",
        "latin1": folder / "latin1.csv",
        "folder": folder / "folder.csv",
        "zero_rows": folder / "zero_rows.parquet",
    }
    files["empty"].write_text("")
    files["blank"].write_text("\n\n\n")
    files["dup_csv"].write_text("a,a,b\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(60)))
    twice = pa.Table.from_arrays([pa.array(np.arange(60.0))] * 2, names=["a", "a"])
    pq.write_table(twice, files["dup_parquet"])
    files["latin1"].write_bytes(LATIN1.encode("latin-1"))
    files["folder"].mkdir()
    pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=float)}).to_parquet(
        files["zero_rows"]
    )
    return files


_EXPECTED = {
    "empty": "is empty; expected a header row",
    "blank": "is empty; expected a header row",
    "dup_csv": "'a' appear more than once",
    "dup_parquet": "'a' appear more than once",
    "latin1": "not UTF-8 text (it holds byte 0xe9)",
    "folder": "is a folder, expected a .csv or .parquet file",
}


@pytest.mark.parametrize("bad", sorted(_EXPECTED))
def test_monitor_drift_names_the_bad_file(tmp_path: Path, bad: str) -> None:
    files = _write_inputs(tmp_path)
    result = runner.invoke(
        app,
        ["monitor", "drift", "--reference", str(files["ok"]), "--current", str(files[bad])],
    )
    assert result.exit_code == 2, result.output  # an input error, never "drift" (1)
    line = _error_line(result)
    assert str(files[bad]) in line and _EXPECTED[bad] in line, line


def _table_spec(folder: Path, data: Path) -> Path:
    spec = folder / "table.toml"
    spec.write_text(
        'name = "table"\nmodel = "LogisticRegression"\npreprocessing = "basic"\n'
        f"[dataset]\npath = '{data}'\ntarget = 'b'\n"
        '[cv]\nfolds = 2\nscoring = ["accuracy"]\n[search]\nkind = "none"\n'
    )
    return spec


@pytest.mark.parametrize("bad", [*sorted(_EXPECTED), "zero_rows"])
def test_train_on_a_bad_user_table_names_the_file(tmp_path: Path, bad: str) -> None:
    files = _write_inputs(tmp_path)
    result = runner.invoke(app, ["train", str(_table_spec(tmp_path, files[bad]))])
    assert result.exit_code in (1, 2), result.output
    line = _error_line(result)
    expected = _EXPECTED.get(bad, "has no rows: nothing to train on")
    assert str(files[bad]) in line and expected in line, line


def test_ingest_where_every_ticker_fails_ends_with_an_error_line(tmp_path: Path) -> None:
    """Exit 1 came with only a log warning on stderr: now the one ``error:`` line says why."""
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "AAPL.csv").write_text("")
    tickers = tmp_path / "tickers.csv"
    tickers.write_text("ticker,sector,subsector\nAAPL,Tech,Hardware\n")
    result = runner.invoke(
        app,
        ["data", "ingest", "--tickers", str(tickers), "--source", "csv", "--csv-dir", str(csv_dir)],
    )
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output and len(errors) == 1, result.stderr
    assert "every ticker failed (1)" in errors[0] and "AAPL.csv is empty" in errors[0], errors


# ---------------------------------------------------------------------------------------------
# ports: serve (tests/serving/test_server.py), dashboard, ui
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["dashboard"], ["ui"]])
def test_a_port_that_cannot_be_listened_on_is_one_line_exit_2(command: list[str]) -> None:
    """uvicorn (dashboard) printed its own ``ERROR:`` line and exited 3, the code of an
    unreachable database; ``ui`` printed its banner and MLflow's log, then exited 0."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        for port, words in ((str(busy), "Address already in use"), ("70000", "expected 1-65535")):
            result = runner.invoke(app, [*command, "--port", port])
            assert result.exit_code == EXIT_USAGE, result.output
            line = _error_line(result)
            assert f"{port}" in line and words in line, line
            assert " on http" not in result.output  # no banner


# ---------------------------------------------------------------------------------------------
# the SQLite file: a folder or another kind of file where the database should be
# ---------------------------------------------------------------------------------------------
def _spoil_database(home: Path, kind: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "mlfactory.db"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"these are notes, not a database\n" * 8)
    return path


@pytest.mark.parametrize("kind", ["folder", "text"])
@pytest.mark.parametrize(
    "command",
    [["runs", "list"], ["models", "list"], ["db", "status"], ["db", "upgrade"]],
    ids=" ".join,
)
def test_a_database_path_that_is_not_a_database_is_named(
    isolated_home: Path, kind: str, command: list[str]
) -> None:
    path = _spoil_database(isolated_home, kind)
    before = sorted(p.name for p in path.iterdir()) if path.is_dir() else path.read_bytes()
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output  # a setting to fix, not an outage (3)
    line = _error_line(result)
    assert str(path.resolve()) in line, line
    assert ("is a folder" if kind == "folder" else "is not an SQLite database") in line, line
    after = sorted(p.name for p in path.iterdir()) if path.is_dir() else path.read_bytes()
    assert after == before  # nothing written into it


def test_monitor_drift_checks_the_database_file_before_reading(
    isolated_home: Path, tmp_path: Path
) -> None:
    path = _spoil_database(isolated_home, "text")
    sample = tmp_path / "a.parquet"
    pd.DataFrame({"x": np.arange(100.0)}).to_parquet(sample)
    result = runner.invoke(
        app, ["monitor", "drift", "--reference", str(sample), "--current", str(sample)]
    )
    assert result.exit_code == 2, result.output
    assert str(path.resolve()) in _error_line(result)
    assert not (isolated_home / "reports").exists()


def test_an_empty_database_file_is_still_a_new_database(isolated_home: Path) -> None:
    isolated_home.mkdir(parents=True)
    (isolated_home / "mlfactory.db").touch()  # SQLite treats an empty file as a new database
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (isolated_home / "mlfactory.db").read_bytes()[:16] == b"SQLite format 3\x00"


# ---------------------------------------------------------------------------------------------
# monitor drift where nothing could be tested is not "no drift"
# ---------------------------------------------------------------------------------------------
def test_monitor_drift_with_no_testable_column_is_an_error_not_a_clean_verdict(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    reference, current = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)}).to_parquet(reference)
    pd.DataFrame({"x": ["abc"] * 300, "y": [np.nan] * 300}).to_parquet(current)
    result = runner.invoke(
        app, ["monitor", "drift", "--reference", str(reference), "--current", str(current)]
    )
    assert result.exit_code == 2, result.output  # neither 0 (clean) nor 1 (drift)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr  # stderr also holds the run's INFO log lines
    line = errors[0]
    assert "no column could be tested (2)" in line, line
    assert "x: the current sample holds text, not numbers (300 of 300 values, e.g. 'abc')" in line
    assert "y: no non-null values in the current sample" in line
    assert "report 1:" in result.stdout  # the report that says why is still written


def test_monitor_windows_refuses_a_month_that_does_not_exist(tmp_path: Path) -> None:
    data = tmp_path / "d.parquet"
    dates = pd.date_range("2020-01-01", periods=800, freq="D")
    pd.DataFrame({"date": dates, "x": np.arange(800.0)}).to_parquet(data)
    result = runner.invoke(
        app, ["monitor", "windows", "--data", str(data), "--column", "x", "--anchor-month", "13"]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert "--anchor-month" in result.output


# ---------------------------------------------------------------------------------------------
# the global option and .env lines python-dotenv cannot parse
# ---------------------------------------------------------------------------------------------
def test_a_wrong_log_level_option_names_the_option_not_the_variable() -> None:
    result = runner.invoke(app, ["--log-level", "LOUD", "data", "status"])
    assert result.exit_code == 2, result.output
    line = _error_line(result)
    assert line.startswith("error: --log-level 'LOUD': expected one of DEBUG, INFO"), line
    assert "MLFACTORY_LOG_LEVEL" not in line
    assert runner.invoke(app, ["--log-level", "debug", "data", "status"]).exit_code == 0


def test_unparsable_env_lines_are_named_by_file_and_line_never_by_their_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text(
        "MLFACTORY_LOG_LEVEL=WARNING\nMLFACTORY_DB_URL postgresql://u:s3cr3t-pw@h/db\n"
        "# a comment\nnot a line either\n"
    )
    result = runner.invoke(app, ["data", "status"])
    assert result.exit_code == 0, result.output  # skipped lines, as python-dotenv does
    said = [r.getMessage() for r in caplog.records if ".env" in r.getMessage()]
    assert said == [f"{tmp_path / '.env'}: line(s) 2, 4 are not NAME=value and were skipped"]
    everything = result.output + caplog.text
    assert "s3cr3t" not in everything
    assert "python-dotenv" not in everything  # its own warning names no file
