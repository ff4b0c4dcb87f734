"""Batch scoring of a fleet on a Dask cluster: rows grouped by segment across partitions.

Each segment's model lives on one worker (models are loaded and verified here, once, then sent
to that worker); every partition is read and keyed by segment where Dask runs it, its rows are
cut by the worker that owns their segment's model, scored there, and put back in input order
into the partition's part file. The output is the local path's, file for file: each row is
scored by the same model, with the same rows beside it, as :func:`route_scores` does locally.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd

from mlfactory.exceptions import ConfigError
from mlfactory.fleet._plan import FALLBACK_KEY
from mlfactory.fleet._route import assemble, read_keyed, score_rows, take_rows, unique_keys
from mlfactory.logs import get_logger

__all__ = ["run_fleet_distributed"]

logger = get_logger(__name__)


def _client(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address} ({exc}); check "
            "MLFACTORY_DASK_SCHEDULER_ADDRESS or --scheduler"
        ) from None


class _Owners:
    """Which worker holds which segment's model (the fewest models first); ships each model
    once, when a partition first needs it."""

    def __init__(self, client: Any, fleet: Any) -> None:
        self.client, self.fleet = client, fleet
        self.workers = sorted(client.nthreads())
        self.owner: dict[str, str] = {}
        self.count: Counter[str] = Counter({w: 0 for w in self.workers})
        self.shipped: dict[str, Any] = {}  # target -> future of the model on its worker

    def target(self, key: str) -> str:
        return key if key in self.fleet.manifest["segments"] else FALLBACK_KEY

    def worker(self, key: str) -> str:
        target = self.target(key)
        if target not in self.owner:
            worker = min(self.workers, key=lambda w: (self.count[w], self.workers.index(w)))
            self.owner[target] = worker
            self.count[worker] += 1
            model = self.fleet.get(target)  # loaded and verified here, once
            if model is not None:  # no fallback: the worker refuses those rows by name
                self.shipped[target] = self.client.scatter(model, workers=[worker], hash=False)
        return self.owner[target]

    def models(self, keys: list[str]) -> dict[str, Any]:
        return {t: self.shipped[t] for t in {self.target(k) for k in keys} if t in self.shipped}


def run_fleet_distributed(
    parts: Iterable[Any], score: Callable[..., pd.DataFrame], fleet: Any, address: str,
    folder: str | None,
) -> Iterator[tuple[int, pd.DataFrame | int]]:  # fmt: skip
    """The fleet's runner for :func:`mlfactory.batch.batch_predict` on a cluster: yields
    ``(partition index, scored frame or rows written)`` as partitions finish.

    Partitions go in waves of twice the cluster's threads; within a wave each partition's rows
    are cut per owning worker and scored there, then reassembled (and written by a worker when
    every worker sees ``folder``).
    """
    from dask.delayed import Delayed
    from distributed import as_completed, wait

    client = _client(address)
    try:
        if folder is not None and not all(client.run(os.path.isdir, folder).values()):
            logger.info("workers do not see %s: scored partitions come back to be written", folder)
            folder = None
        owners = _Owners(client, fleet)
        window = 2 * max(1, sum(client.nthreads().values()))
        numbered = enumerate(parts)
        by, features, classes = list(fleet.by), list(fleet.features), list(fleet.classes_)
        while wave := list(itertools.islice(numbered, window)):
            splits = {
                i: client.submit(
                    read_keyed,
                    client.compute(part) if isinstance(part, Delayed) else part,
                    by,
                    pure=False,
                )
                for i, part in wave
            }
            seen = client.gather(
                [client.submit(unique_keys, s, pure=False) for s in splits.values()]
            )
            finals: dict[Any, int] = {}
            for (i, _), keys in zip(wave, seen, strict=True):
                by_worker: dict[str, list[str]] = {}
                for key in keys:
                    by_worker.setdefault(owners.worker(key), []).append(key)
                scored = [
                    client.submit(
                        score_rows,
                        client.submit(take_rows, splits[i], mine, pure=False),
                        by,
                        features,
                        classes,
                        owners.models(mine),
                        score,
                        workers=[worker],
                        allow_other_workers=True,
                        pure=False,
                    )
                    for worker, mine in by_worker.items()
                ]
                finals[client.submit(assemble, scored, i, folder, pure=False)] = i
            try:
                for future in as_completed(list(finals), loop=client.loop):
                    yield finals[future], future.result()
            except BaseException:
                # the wave's other partitions may still be writing into the staging folder
                with contextlib.suppress(Exception):
                    wait(list(finals), timeout=300)
                raise
    finally:
        client.close()
