"""The code that wraps each fit on a Dask worker: light to import, NumPy-friendly malloc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PAGE_FAULTS = textwrap.dedent(
    """
    import json, resource
    import numpy as np
    from mlfactory._worker import fit_friendly_allocator

    def faults(repeat=200):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(repeat):
            np.ones(2**18).sum()  # 2 MiB allocated, touched and freed
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    outside = faults()
    with fit_friendly_allocator():
        faults(5)  # the first allocations grow the heap once
        inside = faults()
    after = faults()
    print(json.dumps({"outside": outside, "inside": inside, "after": after}))
    """
)


def _run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.update(env)
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True
    )
    return process.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_allocator_stops_mmap_churn_under_dask_malloc_settings_and_restores_them() -> None:
    # Dask's nanny starts workers with this variable: every 2 MiB array is then a fresh mmap
    counts = json.loads(_run(PAGE_FAULTS, MALLOC_TRIM_THRESHOLD_="65536"))
    assert counts["outside"] > 200 * 400, counts  # ~512 page faults per array
    assert counts["inside"] < counts["outside"] / 20, counts
    assert counts["after"] > 200 * 400, counts  # Dask's setting is back once the fit ends


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_allocator_leaves_glibc_dynamic_thresholds_alone_without_the_variable() -> None:
    counts = json.loads(_run(PAGE_FAULTS))
    # glibc's dynamic mmap threshold already reuses the memory: nothing to fix, nothing changed
    assert counts["outside"] < 200 * 400, counts
    assert counts["after"] < 200 * 400, counts


def test_worker_module_imports_neither_mlflow_nor_the_training_package() -> None:
    loaded = json.loads(
        _run(
            "import json, sys, mlfactory._worker; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('mlflow', 'sklearn', 'pandas') or m.startswith('mlfactory.training'))))"
        )
    )
    assert loaded == []


def test_in_place_task_runs_nested_joblib_sequentially_and_returns_the_result() -> None:
    import joblib

    from mlfactory._worker import InPlaceTask

    def nested_backend(x: int) -> tuple[int, str]:
        active = joblib.parallel.get_active_backend()[0]
        return x * 2, type(active).__name__

    task = InPlaceTask(nested_backend)
    assert task.__name__ == "nested_backend"
    with joblib.parallel_config(backend="threading", n_jobs=2):
        assert task(21) == (42, "SequentialBackend")
