"""Batch scoring equals in-process scoring (parquet, SQLite, PostgreSQL); bad input: no output."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from distributed import LocalCluster

from mlfactory.batch import batch_predict
from mlfactory.exceptions import ConfigError, DataError


def _write_parts(X: pd.DataFrame, folder: Path, parts: int, row_group_size: int = 100) -> Path:
    """The frame as ``parts`` parquet files of 100-row row groups in one folder."""
    folder.mkdir(parents=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(X)), parts)):
        path = folder / f"part-{i}.parquet"
        X.iloc[chunk].to_parquet(path, index=False, row_group_size=row_group_size)
    return folder


def _assert_matches(out: pd.DataFrame, registered, keys: str = "id") -> None:
    """Row for row: predictions and probabilities equal the registered pipeline's in process."""
    X = registered.X
    out = out.sort_values(keys).reset_index(drop=True)
    assert out[keys].tolist() == X[keys].tolist()
    features = X.drop(columns=[keys])
    expected = registered.model.predict_proba(features)
    classes = list(registered.model.classes_)
    assert out["prediction"].tolist() == registered.model.predict(features).tolist()
    for position, label in enumerate(classes):
        np.testing.assert_allclose(out[f"proba_{label}"], expected[:, position], rtol=0, atol=1e-12)
    assert set(out["model_version"].astype(str)) == {"1"}
    assert out["scored_at"].nunique() == 1


def test_parquet_partitions_equal_in_process_scoring(registered, tmp_path: Path) -> None:
    source = _write_parts(registered.X, tmp_path / "in", parts=3)
    seen: list[tuple[int, int | None, int]] = []
    report = batch_predict(
        registered.settings,
        "credit@champion",
        input_path=source,
        output_path=tmp_path / "out",
        key_columns=["id"],
        partition_rows=250,
        progress=lambda done, total, rows: seen.append((done, total, rows)),
    )
    assert report.rows == len(registered.X)
    assert report.partitions == 6  # 3 files x 4 row groups of 100 rows, 2 per partition (<= 250)
    assert seen[-1] == (6, 6, len(registered.X))
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["_MLFACTORY_PREDICT", *(f"part-{i:05d}.parquet" for i in range(6))]
    out = pd.read_parquet(tmp_path / "out")
    assert list(out.columns) == report.columns
    expected = ["id", "prediction", "proba_0", "proba_1", "model_version", "scored_at"]
    assert report.columns == expected
    _assert_matches(out, registered)
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_csv_input_and_overwrite(registered, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    registered.X.to_csv(source, index=False)
    target = tmp_path / "out"
    batch_predict(registered.settings, "credit", input_path=source, output_path=target)
    with pytest.raises(DataError, match="already exists"):
        batch_predict(registered.settings, "credit", input_path=source, output_path=target)
    batch_predict(
        registered.settings,
        "credit",
        input_path=source,
        output_path=target,
        key_columns=["id"],
        partition_rows=300,
        overwrite=True,
    )
    _assert_matches(pd.read_parquet(target), registered)


def test_dask_cluster_scores_the_same(registered, tmp_path: Path) -> None:
    source = _write_parts(registered.X, tmp_path / "in", parts=4)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        report = batch_predict(
            registered.settings,
            "credit",
            input_path=source,
            output_path=tmp_path / "out",
            key_columns=["id"],
            scheduler=cluster.scheduler_address,
        )
    assert report.partitions == 12  # one per row group by default
    _assert_matches(pd.read_parquet(tmp_path / "out"), registered)


@pytest.mark.parametrize("workers_see_folder", [True, False])
def test_cluster_workers_write_their_parts_when_they_see_the_folder(
    registered, tmp_path: Path, workers_see_folder: bool
) -> None:
    """Workers write part files themselves (only row counts come back) when the staging folder
    is visible to them, and send the scored partitions back to be written when it is not."""
    from mlfactory._batch_tasks import score_checked
    from mlfactory.batch._batch import _run_distributed
    from mlfactory.registry import load_model

    loaded = load_model(registered.settings, "credit")
    parts = [registered.X.iloc[i : i + 50] for i in range(0, 200, 50)]
    score = functools.partial(
        score_checked,
        inputs=loaded.inputs,
        key_columns=["id"],
        classes=[0, 1],
        model_version="1",
        scored_at=pd.Timestamp("2026-01-01", tz="UTC"),
    )
    folder = tmp_path / "staging"
    folder.mkdir()
    target = str(folder if workers_see_folder else tmp_path / "not-there")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        results = dict(
            _run_distributed(parts, score, loaded.model, cluster.scheduler_address, target)
        )
    assert sorted(results) == [0, 1, 2, 3]
    if workers_see_folder:
        assert all(results[i] == 50 for i in range(4))
        written = pd.concat(pd.read_parquet(folder / f"part-{i:05d}.parquet") for i in range(4))
    else:
        assert not list(folder.iterdir())
        written = pd.concat(results[i] for i in range(4))
    expected = loaded.model.predict_proba(registered.X.head(200).drop(columns=["id"]))
    np.testing.assert_allclose(written["proba_1"], expected[:, 1], rtol=0, atol=1e-12)
    assert written["id"].tolist() == registered.X["id"].head(200).tolist()


def test_sqlite_table_from_sql_query(registered, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'score.db'}"
    engine = sa.create_engine(url)
    registered.X.to_sql("applicants", engine, index=False)
    engine.dispose()
    report = batch_predict(
        registered.settings,
        "credit",
        sql="select * from applicants",
        table="credit_scores",
        key_columns=["id"],
        db_url=url,
        partition_rows=500,
    )
    assert report.partitions == 3
    engine = sa.create_engine(url)
    out = pd.read_sql_table("credit_scores", engine)
    engine.dispose()
    _assert_matches(out, registered)


def test_postgres_table_appends(registered, tmp_path: Path, postgres_url: str) -> None:
    source = _write_parts(registered.X, tmp_path / "in", parts=2)
    for _ in range(2):  # a second run appends its own rows
        batch_predict(
            registered.settings,
            "credit",
            input_path=source,
            table="credit_scores",
            key_columns=["id"],
            db_url=postgres_url,
        )
    engine = sa.create_engine(postgres_url)
    out = pd.read_sql_table("credit_scores", engine)
    engine.dispose()
    assert len(out) == 2 * len(registered.X)
    assert out["scored_at"].nunique() == 2
    first = out[out["scored_at"] == out["scored_at"].min()]
    _assert_matches(first, registered)


def test_missing_model_column_writes_nothing(registered, tmp_path: Path) -> None:
    source = _write_parts(registered.X.drop(columns=["age"]), tmp_path / "in", parts=2)
    with pytest.raises(DataError, match=r"lacks the model input column\(s\) 'age'"):
        batch_predict(
            registered.settings, "credit", input_path=source, output_path=tmp_path / "out"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no output, no temp folder
    url = f"sqlite:///{tmp_path / 'score.db'}"
    with pytest.raises(DataError, match="'age'"):
        batch_predict(registered.settings, "credit", input_path=source, table="scores", db_url=url)
    assert not sa.inspect(sa.create_engine(url)).has_table("scores")


@pytest.mark.parametrize("on_cluster", [False, True])
def test_unscorable_values_abort_without_output(
    registered, tmp_path: Path, on_cluster: bool
) -> None:
    """A bad partition stops the run; partitions still being written in parallel finish first,
    so the staging folder is removed whole: no output, no temp folder."""
    bad = registered.X.astype({"age": object})
    bad.loc[700, "age"] = "old"
    bad["age"] = bad["age"].astype(str)
    source = _write_parts(bad, tmp_path / "in", parts=2)
    with contextlib.ExitStack() as stack:
        scheduler = None
        if on_cluster:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
                )
            )
            scheduler = cluster.scheduler_address
        with pytest.raises(DataError, match="column 'age' holds 'old' where the model expects a"):
            batch_predict(
                registered.settings,
                "credit",
                input_path=source,
                output_path=tmp_path / "out",
                scheduler=scheduler,
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_argument_errors(registered, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either --input"):
        batch_predict(registered.settings, "credit", output_path=tmp_path / "o")
    with pytest.raises(ConfigError, match="invalid Dask scheduler 'fast'"):
        batch_predict(
            registered.settings,
            "credit",
            input_path=tmp_path,
            output_path=tmp_path / "o",
            scheduler="fast",
        )
    with pytest.raises(DataError, match="--key-columns nope"):
        batch_predict(
            registered.settings,
            "credit",
            input_path=_write_parts(registered.X, tmp_path / "in", parts=1),
            output_path=tmp_path / "o",
            key_columns=["nope"],
        )


def test_a_pickled_task_unpickles_without_mlflow(registered, tmp_path: Path) -> None:
    """What a worker receives with each task (the scoring function, the model's input schema,
    a parquet loader) must not make it import MLflow: that cost each worker ~2.5 s."""
    import pickle
    import subprocess
    import sys

    from mlfactory._batch_tasks import read_row_groups, score_checked, score_into_folder
    from mlfactory.registry import load_model

    loaded = load_model(registered.settings, "credit")
    score = functools.partial(
        score_checked,
        inputs=loaded.inputs,
        key_columns=["id"],
        classes=[0, 1],
        model_version="1",
        scored_at=pd.Timestamp("2026-01-01", tz="UTC"),
    )
    task = functools.partial(score_into_folder, score=score, folder=str(tmp_path))
    loader = functools.partial(read_row_groups, "part.parquet", [0], ["id"])
    payload = tmp_path / "task.pickle"
    payload.write_bytes(pickle.dumps((task, loader)))
    code = (
        "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read()); "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('mlflow')} | "
        "{m for m in sys.modules if m.startswith(('mlfactory.registry', 'mlfactory.batch'))}))"
    )
    loaded_modules = subprocess.run(
        [sys.executable, "-c", code, str(payload)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded_modules == "[]"
