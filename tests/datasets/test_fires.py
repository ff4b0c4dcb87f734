"""Fires: the UCI CSV format, renaming, and an area a model can partly learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score

from mlfactory.datasets import Task, load_dataset, load_fires, synth_fires, write_synthetic
from mlfactory.exceptions import DataError

HEADER = "X,Y,month,day,FFMC,DMC,DC,ISI,temp,RH,wind,rain,area"


def test_written_file_has_the_uci_header_and_ranges() -> None:
    (path,) = write_synthetic("fires", 1000, seed=3)
    assert path.parts[-4:] == ("data", "raw", "fires", "forestfires.csv")
    assert path.read_text().splitlines()[0] == HEADER
    frame = synth_fires(1000, 3)
    assert frame["X"].between(1, 9).all() and frame["Y"].between(2, 9).all()
    assert set(frame["month"]) <= {
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
    }  # fmt: skip
    assert 0.35 <= (frame["area"] == 0).mean() <= 0.65
    assert frame["area"].max() > 10 * frame["area"].median() + 1  # heavy right tail


def test_loader_renames_and_sets_roles() -> None:
    write_synthetic("fires", 500, seed=0)
    data = load_dataset("fires")
    assert data.task is Task.REGRESSION
    assert set(data.X.columns) == {
        "coord_x", "coord_y", "month", "day", "ffmc", "dmc", "dc", "isi", "temp", "rh",
        "wind", "rain",
    }  # fmt: skip
    assert data.roles.categorical == ("month", "day")
    assert data.y.name == "area" and (data.y >= 0).all()
    assert set(data.roles.all) == set(data.X.columns)


def test_area_is_learnable_from_weather(tmp_path: Path) -> None:
    path = tmp_path / "ff.csv"
    write_synthetic("fires", 3000, path, seed=1)
    data = load_fires(path)
    scores = cross_val_score(
        LinearRegression(), data.X[["temp", "rh", "wind"]], np.log1p(data.y), cv=5, scoring="r2"
    )
    assert scores.mean() > 0.25
    # and month alone (a proxy of temperature) carries less than the weather itself
    assert np.corrcoef(data.X["temp"], np.log1p(data.y))[0, 1] > 0.3


def test_hand_written_file_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "ff.csv"
    path.write_text(HEADER + "\n7,5,mar,fri,86.2,26.2,94.3,5.1,8.2,51,6.7,0,0\n")
    data = load_fires(path)
    assert data.X.loc[0, "coord_x"] == 7 and data.X.loc[0, "month"] == "mar"
    assert data.X.loc[0, "rh"] == 51 and data.y.tolist() == [0.0]
    path.write_text("X,Y,month,day,temp\n1,2,mar,fri,3\n")
    with pytest.raises(DataError) as info:
        load_fires(path)
    assert str(path) in str(info.value) and "FFMC" in str(info.value)


def test_unknown_month_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ff.csv"
    path.write_text(HEADER + "\n7,5,mars,fri,86.2,26.2,94.3,5.1,8.2,51,6.7,0,0\n")
    with pytest.raises(DataError, match="mars"):
        load_fires(path)
