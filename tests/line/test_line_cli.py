"""The factory line through the real CLI: full run, no-op rerun, changes, resume, the lock."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_credit, write_synthetic
from mlfactory.db import get_engine
from mlfactory.db._tables import LINE_STAGE_RECORDS
from mlfactory.line import stage_history
from mlfactory.line._records import line_lock
from mlfactory.settings import get_settings

LINE = """
name = "credit-test"

[dataset]
name = "credit"

[train.experiment]
preprocessing = "power"
model = "LogisticRegression"
seed = 0
test_size = 0.3

[train.experiment.cv]
folds = 2
scoring = ["roc_auc", "accuracy"]

[train.experiment.search]
kind = "grid"
param_grid = {{ clf__C = [1.0] }}

[gate]
resamples = 200

[promote]
model = "credit"
onnx = false
{extra}
"""


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400", **(env or {})})


def statuses(line: str = "credit-test") -> dict[str, str]:
    """Each stage's status in the newest invocation (by record), from the records table."""
    engine = get_engine(get_settings().database_url)
    return {r.stage: r.status for r in stage_history(engine, line)}


def ran_in_last(output: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"│ (\w+)\s+│ ran\s", output)}


def up_to_date(output: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"│ (\w+)\s+│ up to date\s", output)}


@pytest.fixture
def credit_line(tmp_path: Path) -> Path:
    write_synthetic("credit", 2_000, seed=3, settings=get_settings())
    path = tmp_path / "line.toml"
    path.write_text(LINE.format(extra=""))
    return path


def test_line_spec_errors_name_the_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(LINE.format(extra="[gate.more]\nx = 1\n").replace("resamples = 200", ""))
    result = invoke("run", str(path))
    assert result.exit_code == 2
    assert "gate.more" in result.output and "valid keys at [gate]" in result.output
    path.write_text(
        LINE.format(extra="").replace('name = "credit"\n\n[train', "colour = 1\n\n[train")
    )
    result = invoke("run", str(path))
    assert result.exit_code == 2 and "dataset" in result.output and "colour" in result.output
    path.write_text(LINE.format(extra="").replace('model = "credit"', 'model = "a b"'))
    result = invoke("run", str(path), "--dry-run")
    assert result.exit_code == 2 and "promote.model" in result.output
    path.write_text(LINE.format(extra='[batch]\ninput = "x.parquet"\n'))
    result = invoke("run", str(path), "--dry-run")
    assert result.exit_code == 2 and "'batch'" in result.output and "either output" in result.output
    result = invoke("run", str(tmp_path / "absent.toml"))
    assert result.exit_code == 2 and "line spec not found" in result.output


def test_full_run_noop_rerun_and_one_hyperparameter(credit_line):
    started = time.perf_counter()
    first = invoke("run", str(credit_line))
    full = time.perf_counter() - started
    assert first.exit_code == 0, first.output
    assert ran_in_last(first.output) == {"dataset", "train", "gate", "promote"}
    assert "credit v1 is now @champion" in first.output

    started = time.perf_counter()
    again = invoke("run", str(credit_line))
    noop = time.perf_counter() - started
    assert again.exit_code == 0, again.output
    assert up_to_date(again.output) == {"dataset", "train", "gate", "promote"}
    assert ran_in_last(again.output) == set()
    assert noop < 2.0 and noop < full / 5, (noop, full)

    dry = invoke("run", str(credit_line), "--dry-run", "--set", "train.experiment.seed=1")
    assert dry.exit_code == 0, dry.output
    assert "setting experiment.seed: 0 -> 1" in dry.output
    assert up_to_date(dry.output) == {"dataset"}
    assert "would run" in dry.output

    changed = invoke(
        "run", str(credit_line), "--set", "train.experiment.search.param_grid.clf__C=[0.01]"
    )
    assert changed.exit_code == 0, changed.output
    assert up_to_date(changed.output) == {"dataset"}
    assert ran_in_last(changed.output) == {"train", "gate", "promote"}
    engine = get_engine(get_settings().database_url)
    records = stage_history(engine, "credit-test")
    assert [r.stage for r in records if r.status == "finished"].count("dataset") == 1
    assert all(r.status == "finished" for r in records)
    # the records are on the line's MLflow run too
    from mlfactory.tracking import open_tracking

    client = open_tracking(get_settings())
    run = client.get_run(records[-1].line_run_id)
    assert run.data.tags["line.train.status"] == "ran"
    assert run.data.params["line.train.cache_key"] == records[-3].cache_key


def test_changed_data_reruns_from_dataset_and_touch_does_not(credit_line, monkeypatch):
    assert invoke("run", str(credit_line)).exit_code == 0
    import mlfactory

    with monkeypatch.context() as patched:  # a new mlfactory: every stage is out of date
        patched.setattr(mlfactory, "__version__", "99.0")
        code = invoke("run", str(credit_line), "--dry-run")
    assert "version of mlfactory:" in code.output and '-> "99.0"' in code.output, code.output
    assert up_to_date(code.output) == set()
    csv = get_settings().data_dir / "raw" / "credit" / "cs-training.csv"
    stat = csv.stat()
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # same bytes
    touched = invoke("run", str(credit_line), "--dry-run")
    assert up_to_date(touched.output) == {"dataset", "train", "gate", "promote"}, touched.output

    write_synthetic("credit", 2_000, seed=4, settings=get_settings())  # new rows
    dry = invoke("run", str(credit_line), "--dry-run")
    assert "input data:" in dry.output and up_to_date(dry.output) == set(), dry.output
    rerun = invoke("run", str(credit_line))
    assert rerun.exit_code == 0, rerun.output
    assert ran_in_last(rerun.output) == {"dataset", "train", "gate", "promote"}


def test_a_failed_stage_stops_the_line_and_the_next_run_resumes_there(credit_line, tmp_path):
    scores = tmp_path / "applicants.parquet"
    credit_line.write_text(
        LINE.format(extra=f'[batch]\ninput = "{scores.name}"\noutput = "scores"\n')
    )
    failed = invoke("run", str(credit_line))
    assert failed.exit_code == 1
    assert "stage 'batch' of line 'credit-test' failed" in failed.output
    assert "resumes at this stage" in failed.output
    errors = [line for line in failed.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in failed.output and "┃" not in failed.output
    assert statuses()["batch"] == "failed" and statuses()["promote"] == "finished"

    load_credit(settings=get_settings()).X.head(300).to_parquet(scores)
    dry = invoke("run", str(credit_line), "--dry-run")
    assert "its last run failed" in dry.output
    resumed = invoke("run", str(credit_line))
    assert resumed.exit_code == 0, resumed.output
    assert ran_in_last(resumed.output) == {"batch"}
    assert up_to_date(resumed.output) == {"dataset", "train", "gate", "promote"}
    assert len(pd.read_parquet(tmp_path / "scores")) == 300

    credit_line.write_text(
        LINE.format(extra=f'[batch]\ninput = "{scores.name}"\ntable = "line_scores"\n')
    )
    to_table = invoke("run", str(credit_line))
    assert ran_in_last(to_table.output) == {"batch"}, to_table.output
    with get_engine(get_settings().database_url).connect() as connection:
        count = connection.exec_driver_sql("select count(*) from line_scores").scalar()
    assert count == 300

    forced = invoke("run", str(credit_line), "--force", "batch")
    assert ran_in_last(forced.output) == {"batch"}, forced.output
    from_train = invoke("run", str(credit_line), "--from", "gate")
    assert ran_in_last(from_train.output) == {"gate", "promote", "batch"}, from_train.output
    bad = invoke("run", str(credit_line), "--from", "explain")
    assert bad.exit_code == 2 and "expected one of this line's stages" in bad.output


def test_a_second_run_of_the_same_line_exits_clearly(credit_line):
    engine = get_engine(get_settings().database_url)
    with line_lock(engine, "credit-test"):
        busy = invoke("run", str(credit_line))
        assert busy.exit_code == 75
        assert "is being run by" in busy.output and "--wait" in busy.output
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(LINE_STAGE_RECORDS))
        assert rows.scalar() == 0  # nothing ran while the line was held
    assert invoke("run", str(credit_line), "--dry-run").exit_code == 0


def test_a_spec_file_and_its_grid_file_are_inputs_of_train(credit_line, tmp_path):
    (tmp_path / "grid.json").write_text('{"clf__C": [1.0]}')
    (tmp_path / "exp.toml").write_text(
        'name = "by-path"\ndataset = "ignored"\npreprocessing = "basic"\n'
        'model = "LogisticRegression"\nseed = 0\n[cv]\nfolds = 2\nscoring = ["roc_auc"]\n'
        '[search]\nkind = "grid"\nparam_grid = "grid.json"\n'
    )
    text = credit_line.read_text()
    start, end = text.index("[train.experiment]"), text.index("[gate]")
    credit_line.write_text(text[:start] + '[train]\nspec = "exp.toml"\n\n' + text[end:])
    first = invoke("run", str(credit_line))
    assert first.exit_code == 0, first.output
    assert ran_in_last(first.output) == {"dataset", "train", "gate", "promote"}
    (tmp_path / "grid.json").write_text('{"clf__C": [0.5]}')
    dry = invoke("run", str(credit_line), "--dry-run")
    assert "input search_files:" in dry.output and up_to_date(dry.output) == {"dataset"}
    (tmp_path / "grid.json").write_text('{"clf__C": [1.0]}')
    (tmp_path / "exp.toml").write_text(
        (tmp_path / "exp.toml").read_text().replace('"basic"', '"power"')
    )
    dry = invoke("run", str(credit_line), "--dry-run")
    assert 'setting experiment.preprocessing: "basic" -> "power"' in dry.output, dry.output


def test_a_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path):
    from datetime import UTC, datetime, timedelta

    from mlfactory.db import ensure_schema
    from mlfactory.db._tables import LINE_LOCKS

    line = tmp_path / "line.toml"  # no credit file: the dataset stage fails once the lock is held
    line.write_text(LINE.format(extra=""))
    engine = get_engine(get_settings().database_url)
    ensure_schema(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            LINE_LOCKS.insert().values(line="credit-test", owner="far:1", acquired_at=now)
        )
    busy = invoke("run", str(line))
    assert busy.exit_code == 75 and "far:1" in busy.output
    with engine.begin() as connection:
        connection.execute(LINE_LOCKS.update().values(acquired_at=now - timedelta(hours=1)))
    taken = invoke("run", str(line))
    assert taken.exit_code == 1 and "stage 'dataset'" in taken.output, taken.output
    with engine.connect() as connection:
        assert connection.execute(sa.select(LINE_LOCKS)).first() is None  # released after


@pytest.mark.slow
def test_the_gate_refuses_rows_that_changed_behind_an_unchanged_stat(credit_line):
    assert invoke("run", str(credit_line)).exit_code == 0
    csv = get_settings().data_dir / "raw" / "credit" / "cs-training.csv"
    stat = csv.stat()
    text = csv.read_text()
    cells = text.splitlines()[1:]
    edited = "\n".join(
        [text.splitlines()[0], *[re.sub(r",(\d)(\d),", r",\2\1,", c, count=1) for c in cells]]
    )
    csv.write_text(edited + ("\n" if text.endswith("\n") else ""))
    assert csv.stat().st_size == stat.st_size
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: trusted
    dry = invoke("run", str(credit_line), "--dry-run")
    assert up_to_date(dry.output) == {"dataset", "train", "gate", "promote"}
    refused = invoke("run", str(credit_line), "--force", "gate")
    assert refused.exit_code == 1
    assert "are not the challenger's test rows" in refused.output, refused.output
    rerun = invoke("run", str(credit_line), "--from", "dataset")  # hashes the file again
    assert rerun.exit_code == 0, rerun.output
    assert ran_in_last(rerun.output) == {"dataset", "train", "gate", "promote"}
    assert "input data:" in rerun.output  # forced: the file was hashed again, and it changed


def test_the_line_knows_where_the_loaders_read(tmp_path):
    from mlfactory.datasets._registry import (
        adult_default_dir,
        credit_default_path,
        fires_default_path,
    )
    from mlfactory.line._run import _Context, _dataset_file
    from mlfactory.line._spec import line_from_dict

    settings = get_settings()
    expected = {
        "credit": credit_default_path(settings),
        "fires": fires_default_path(settings),
        "adult": adult_default_dir(settings),
    }
    for name, path in expected.items():
        raw = {"name": "x", "dataset": {"name": name}, "promote": {"model": "m"}}
        line = line_from_dict({**raw, "train": {"experiment": {}}})
        ctx = _Context(line, settings, get_engine(settings.database_url), False, None)
        assert _dataset_file(ctx) == path


@pytest.mark.slow
def test_a_stage_whose_output_was_edited_or_removed_runs_again(tmp_path: Path):
    """The data stage's key is unchanged, but the raw file it wrote was replaced, then removed:
    the stage remakes it, and the stages after it find their input as before (up to date)."""
    path = tmp_path / "line.toml"
    data = '[data]\nsynthetic = "credit"\nrows = 1500\nseed = 3\n'
    path.write_text(LINE.format(extra=data))
    first = invoke("run", str(path))
    assert first.exit_code == 0, first.output
    csv = get_settings().data_dir / "raw" / "credit" / "cs-training.csv"
    original = csv.read_bytes()

    write_synthetic("credit", 1_500, seed=4, settings=get_settings())  # behind the line's back
    dry = invoke("run", str(path), "--dry-run")
    assert f"output {csv} changed since this stage wrote it" in dry.output.replace("\n", ""), (
        dry.output
    )
    rerun = invoke("run", str(path))
    assert rerun.exit_code == 0, rerun.output
    assert ran_in_last(rerun.output) == {"data"}, rerun.output
    assert up_to_date(rerun.output) == {"dataset", "train", "gate", "promote"}
    assert csv.read_bytes() == original  # remade from the line's own settings

    csv.unlink()
    again = invoke("run", str(path))
    assert again.exit_code == 0, again.output
    assert ran_in_last(again.output) == {"data"} and csv.read_bytes() == original
    assert up_to_date(invoke("run", str(path)).output) == {
        "data",
        "dataset",
        "train",
        "gate",
        "promote",
    }


def test_a_run_with_nothing_to_do_imports_no_modelling_stack(credit_line, isolated_home):
    """The no-op check is the line's everyday path (cron): it must not pay for MLflow,
    scikit-learn or pandas, which take seconds to import, nor for SQLAlchemy (its records are
    read with sqlite3: the same records, the same champion, and the lock still respected)."""
    import subprocess
    import sys

    from mlfactory.line._records import SqlRecords
    from mlfactory.line._sqlite import open_records

    assert invoke("run", str(credit_line)).exit_code == 0
    code = (
        "import sys\n"
        "from mlfactory.cli import main\n"
        f"sys.argv = ['mlfactory', 'run', {str(credit_line)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = ('mlflow', 'sklearn', 'pandas', 'sqlalchemy')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "MLFACTORY_HOME": str(isolated_home), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "0 stage(s) ran" in done.stdout, done.stdout
    assert "HEAVY []" in done.stdout, done.stdout

    url = get_settings().database_url
    light, full = open_records(url, "credit-test"), SqlRecords(get_engine(url))
    assert light is not None
    for stage in ("dataset", "train", "gate", "promote", "explain"):
        assert light.latest("credit-test", stage) == full.latest("credit-test", stage)
    assert light.champion("credit", "champion") == full.champion("credit", "champion")
    assert light.champion("credit", "champion") is not None
    light.close()
    with line_lock(get_engine(url), "credit-test"):  # held: the read-only path steps aside
        busy = invoke("run", str(credit_line))
    assert busy.exit_code == 75 and "is being run by" in busy.output, busy.output
