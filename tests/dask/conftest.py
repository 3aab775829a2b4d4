"""A dask.distributed cluster for the dask tests, started once and always shut down.

This folder deliberately has no __init__.py: as a package it would be named
``dask`` and could shadow the real one.
"""

import pytest


@pytest.fixture(scope="session")
def cluster_client():
    """A client of a LocalCluster: 2 single-threaded worker processes on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                       timeout=120)
    client = distributed.Client(cluster, set_as_default=False, timeout=120)
    try:
        yield client
    finally:
        client.close(timeout=60)
        cluster.close(timeout=60)
