"""The dask tests again on a dask.distributed LocalCluster of 2 worker processes."""

import os

import numpy as np
import pytest

from chunk_cases import cases, check_case

import deconv3d
from deconv3d import storage

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from test_arrays import NAMED  # noqa: E402
from test_storage import make_zarr, read, run_cli, expected, needs_h5py, DATA  # noqa: E402


def on(client):
    return lambda lazy: client.compute(lazy).result(timeout=120)


def test_the_cluster_is_two_local_worker_processes(cluster_client):
    pids = cluster_client.run(os.getpid)
    assert len(pids) == 2 and len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert all(address.startswith("tcp://127.0.0.1:") for address in pids)
    threads = cluster_client.nthreads()
    assert sorted(threads.values()) == [1, 1]


def test_every_server_listens_on_127_0_0_1_only(cluster_client):
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    listening = [c.laddr.ip for p in [me] + me.children(recursive=True)
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert len(listening) >= 3 and set(listening) == {"127.0.0.1"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_random_layers_and_chunkings(cluster_client, case):
    check_case(*case, on(cluster_client))


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_cases(cluster_client, name):
    config, shape, chunks = NAMED[name]
    check_case(config, shape, chunks, on(cluster_client))


@pytest.mark.parametrize("destination", ["out.zarr", "out.npy"])
def test_storage_on_a_scheduler_address(cluster_client, tmp_path, destination):
    layer = deconv3d.Conv3DTranspose(3, 3, 2, padding="same", data_format="channels_first")
    volume = np.random.default_rng(0).standard_normal((2, 2, 7, 6, 5)).astype(np.float32)
    source = make_zarr(tmp_path / "in.zarr", volume, (1, 2, 3, 3, 3))
    calls = []
    storage.apply_to_storage(layer, source, tmp_path / destination,
                             scheduler=cluster_client.scheduler.address,
                             progress=lambda done, total: calls.append(done))
    np.testing.assert_array_equal(read(tmp_path / destination), layer(volume))
    assert calls == list(range(len(calls))) and len(calls) == 3 * 2 * 2 * 2 + 1


def test_an_npy_source_is_read_by_the_workers(cluster_client, tmp_path):
    layer = deconv3d.Conv3DTranspose(2, 4, 2, padding="same")
    volume = np.random.default_rng(1).standard_normal((1, 6, 5, 7, 2)).astype(np.float32)
    np.save(tmp_path / "in.npy", volume)
    storage.apply_to_storage(layer, tmp_path / "in.npy", tmp_path / "out.npy", block=2,
                             scheduler=cluster_client.scheduler.address)
    np.testing.assert_array_equal(read(tmp_path / "out.npy"), layer(volume))


@needs_h5py
def test_cli_scheduler(cluster_client, tmp_path, capsys):
    x, reference = expected("up")
    source = make_zarr(tmp_path / "in.zarr", x, (1, 2, 2, 2, 2))
    assert run_cli("apply", os.path.join(DATA, "functional.keras"), "--layer", "up",
                   "--input", source, "--output", tmp_path / "out.zarr",
                   "--scheduler", cluster_client.scheduler.address) == 0
    actual = read(tmp_path / "out.zarr")
    assert np.abs(actual - reference).max() / np.abs(reference).max() < 1e-5
    assert "blocks (100%)" in capsys.readouterr().err


@needs_h5py
def test_cli_workers_starts_and_stops_a_local_cluster(tmp_path, capsys):
    x, reference = expected("up_cf")
    np.save(tmp_path / "in.npy", x)
    assert run_cli("apply", os.path.join(DATA, "functional.keras"), "--layer", "up_cf",
                   "--input", tmp_path / "in.npy", "--output", tmp_path / "out.npy",
                   "--workers", 2, "--quiet") == 0
    actual = read(tmp_path / "out.npy")
    assert np.abs(actual - reference).max() / np.abs(reference).max() < 1e-5
    assert capsys.readouterr().err == ""
