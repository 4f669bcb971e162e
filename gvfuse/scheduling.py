"""Which dask scheduler a computation inside gvfuse runs on.

A run names its scheduler for every computation (:mod:`gvfuse.pipeline.run`); these two functions
decide for the computations that run inside one task or one library call.
"""

from __future__ import annotations

import sys
from typing import Any

DISTRIBUTED_NAMES = ("dask.distributed", "distributed")


def tile_scheduler() -> str:
    """dask's scheduler for the tiles of one pair.

    On a dask.distributed worker, pairs are already spread over the cores (one
    worker process per core), so a pair's tiles run one after another there
    ("sync"); anywhere else they run on dask's thread pool, one thread per core
    (the matchers spend their time in numpy, scipy and OpenCV, which release the GIL).
    """
    distributed = sys.modules.get("distributed")  # a worker has imported it; importing it here costs ~0.5 s
    if distributed is None:
        return "threads"
    try:
        distributed.get_worker()
    except ValueError:
        return "threads"
    return "sync"


def configured_scheduler() -> Any:
    """dask's configured scheduler when it can still run a computation, else dask's threads.

    A dask.distributed client that failed to connect, or that closed after another one, can leave
    ``scheduler="dask.distributed"`` (or the closed client itself) in dask's configuration; a computation
    left to that default then fails ("no Client active") or waits for ever on the closed client.
    """
    import dask

    chosen = dask.config.get("scheduler", None)
    if chosen is None:
        return "threads"
    if isinstance(chosen, str) and chosen.lower() in DISTRIBUTED_NAMES:
        try:
            from distributed import default_client

            chosen = default_client()
        except (ImportError, ValueError):
            return "threads"
    if "Client" in type(chosen).__name__:
        return chosen if getattr(chosen, "status", None) == "running" else "threads"
    return chosen
