"""A table with planted per-segment signal: each segment's label follows its own feature sign.

Segment ``s00`` … ``sNN``: ``y = 1`` when ``sign_s * x1 + 0.5 * x2 + noise > 0`` with ``sign_s``
+1 for even and -1 for odd segments, so one global model cannot learn ``x1`` (the signs cancel)
while each segment's own model can. ``tiny0``, ``tiny1`` have too few rows for a model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPEC = """
name = "{name}"
dataset = {{ path = "{path}", target = "y" }}
model = "LogisticRegression"
seed = 0

[cv]
folds = 3
scoring = ["roc_auc", "accuracy"]

[search]
kind = "grid"
param_grid = {{ clf__C = [0.1, 1.0] }}

[segments]
by = ["region"]
min_rows = 100
fallback = "global"
pack_rows = {pack_rows}
"""


def sign(segment: str) -> float:
    return 1.0 if int(segment[1:]) % 2 == 0 else -1.0


def fleet_frame(
    segments: int = 6,
    rows: int = 240,
    tiny: int = 30,
    seed: int = 0,
    mono: bool = False,
    scrambled: tuple[str, ...] = (),
    flipped: tuple[str, ...] = (),
    shuffled: tuple[str, ...] = (),
) -> pd.DataFrame:
    """``mono``: a segment ``mono`` whose label is always 0 (its training fails); ``scrambled``:
    segments whose labels are noise (their models lose their signal); ``flipped``: segments whose
    signal has the other sign; ``shuffled``: segments whose ``x1`` is permuted after the labels
    were drawn (same labels, so the same split; the signal is gone)."""
    rng = np.random.default_rng(seed)
    parts = []
    names = [f"s{i:02d}" for i in range(segments)] + ["tiny0", "tiny1"] + (["mono"] if mono else [])
    for name in names:
        n = tiny if name.startswith("tiny") else rows
        x1, x2, x3 = rng.normal(size=(3, n))
        s = sign(name) if name.startswith("s") else 1.0
        s = -s if name in flipped else s
        y = (s * 2.0 * x1 + 0.5 * x2 + rng.normal(scale=0.5, size=n) > 0).astype(int)
        if name == "mono":
            y = np.zeros(n, dtype=int)
        if name in scrambled:  # its own generator: the other segments' rows stay the same
            y = np.random.default_rng([seed, 99]).integers(0, 2, size=n)
        if name in shuffled:
            x1 = np.random.default_rng([seed, 7]).permutation(x1)
        parts.append(pd.DataFrame({"region": name, "x1": x1, "x2": x2, "x3": x3, "y": y}))
    return (
        pd.concat(parts, ignore_index=True)
        .sample(frac=1.0, random_state=seed)
        .reset_index(drop=True)
    )


def write_fleet(folder: Path, name: str = "fleet", pack_rows: int = 1_000, **kwargs) -> Path:
    """The data file and its spec in ``folder``; returns the spec's path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.parquet"
    fleet_frame(**kwargs).to_parquet(data)
    spec = folder / f"{name}.toml"
    spec.write_text(SPEC.format(name=name, path=data.as_posix(), pack_rows=pack_rows))
    return spec
