"""The prediction schema comes from the whole training table, not the first test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import Model

from mlfactory.registry._load import download_model_dir
from mlfactory.settings import load_settings
from mlfactory.tracking import open_tracking
from mlfactory.training import train

SPEC = """
name = "nullable"
model = "LogisticRegression"
preprocessing = "basic"
seed = 0
[dataset]
path = "{path}"
target = "y"
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


def test_a_column_missing_in_a_few_training_rows_is_optional(tmp_path, isolated_home):
    rng = np.random.default_rng(0)
    rows = 1000
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["y"] = (frame["a"] + rng.normal(size=rows) > 0).astype(int)
    frame.loc[rng.choice(rows, 8, replace=False), "b"] = np.nan  # < 1%: rarely in 50 test rows
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(path=path.as_posix()))
    settings = load_settings()
    result = train(spec, settings)
    run = open_tracking(settings).get_run(result.best.run_id)
    folder = download_model_dir(settings, run.data.tags["mlfactory.model_uri"], tmp_path / "m")
    inputs = {c.name: c.required for c in Model.load(str(folder)).get_input_schema().inputs}
    assert inputs == {"a": True, "b": False}
