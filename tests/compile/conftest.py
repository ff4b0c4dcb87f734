"""Promoted models for the compiled-path tests: ``promoted`` trains every zoo family and every
recipe on ``mixed_frame`` through ``mlfactory train`` and promotes each cell, so the registry
compiles it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from _compile_data import CLASSIFIERS, FEATURES, REGRESSORS, mixed_frame
from threadpoolctl import threadpool_limits

from mlfactory.preprocessing import RECIPES
from mlfactory.registry import promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import train

SPEC = """
name = "{name}"
dataset = {{ path = "{path}", target = "{target}" }}
preprocessing = {recipes}
model = {models}
seed = 0
[cv]
folds = 2
scoring = ["{metric}"]
[search]
kind = "none"
"""


@dataclass
class Promoted:
    settings: Settings
    held_out: pd.DataFrame  # rows no model was trained on
    pipelines: dict[str, object]  # registered name -> the fitted pipeline, in process
    tags: dict[str, dict[str, str]]  # registered name -> the version's tags


def _train_matrix(settings, folder, name, target, recipes, models, metric):
    frame = mixed_frame(240, seed=1)[[*FEATURES, target]]
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    spec = folder / f"{name}.toml"
    spec.write_text(
        SPEC.format(
            name=name,
            path=path.as_posix(),
            target=target,
            recipes=_toml_list(recipes),
            models=_toml_list(models),
            metric=metric,
        )
    )
    return train(spec, settings)


def _toml_list(items) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


@pytest.fixture(scope="session")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Promoted:
    """Every zoo family (both tasks) on ``basic``, every recipe with LogisticRegression."""
    folder: Path = tmp_path_factory.mktemp("compile")
    settings = load_settings(home=folder / ".mlfactory")
    matrices = [
        ("cls", "target", ["basic"], CLASSIFIERS, "roc_auc"),
        ("reg", "value", ["basic"], REGRESSORS, "r2"),
        ("recipe", "target", list(RECIPES), ["LogisticRegression"], "roc_auc"),
    ]
    pipelines, tags = {}, {}
    for prefix, target, recipes, models, metric in matrices:
        # one BLAS/OpenMP thread: HistGradientBoosting's threads cost 6x on 2 shared cores
        with threadpool_limits(1):
            result = _train_matrix(settings, folder, prefix, target, recipes, models, metric)
        for cell in result.cells:
            recipe, model = cell.name.split("+")
            name = f"{prefix}-{model if prefix != 'recipe' else recipe}"
            info = promote(settings, name, run_id=cell.run_id)
            pipelines[name] = cell.outcome.best_estimator
            tags[name] = info.tags
    return Promoted(settings, mixed_frame(200, seed=7)[FEATURES], pipelines, tags)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread per test: HistGradientBoosting's threads, fighting over two shared
    cores, made a 30-iteration fit take 10 s instead of a fraction of one."""
    with threadpool_limits(1):
        yield
