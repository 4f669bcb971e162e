"""gvfuse.scheduling: a computation inside gvfuse never runs on a scheduler that cannot run it."""

from __future__ import annotations

import dask
import pytest

from gvfuse.scheduling import configured_scheduler, tile_scheduler


def test_tiles_run_on_threads_outside_a_dask_worker():
    assert tile_scheduler() == "threads"


def test_tiles_run_one_after_another_on_a_dask_worker():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        assert client.submit(tile_scheduler, pure=False).result() == "sync"
    assert tile_scheduler() == "threads"  # dask.distributed imported, but not on a worker


def test_no_configured_scheduler_means_threads():
    with dask.config.set(scheduler=None):
        assert configured_scheduler() == "threads"


@pytest.mark.parametrize("name", ["dask.distributed", "distributed"])
def test_a_distributed_scheduler_without_a_client_falls_back_to_threads(name):
    # what a dask.distributed client that failed to connect, or closed after another, leaves behind
    with dask.config.set(scheduler=name):
        assert configured_scheduler() == "threads"
        with pytest.raises(RuntimeError, match="no Client active"):
            dask.compute(dask.delayed(sum)([1, 2]))  # dask's own default would fail here


def test_a_closed_client_falls_back_to_threads_and_a_running_one_is_used():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        with dask.config.set(scheduler=client):
            assert configured_scheduler() is client
    with dask.config.set(scheduler=client):
        assert configured_scheduler() == "threads"


def test_a_named_local_scheduler_is_kept():
    with dask.config.set(scheduler="sync"):
        assert configured_scheduler() == "sync"
