"""What the dask path costs over the direct call, and how it scales with workers.

For each case (a volume that fits in memory, cut into input blocks of 64^3
voxels with all channels), times:

- direct: ``layer(x, num_threads=2)`` on the NumPy array;
- dask, 2 threads: ``layer(dask_x).compute(scheduler="threads", num_workers=2)``
  (each block on one OpenMP thread), and the same storing every block into a
  preallocated array (``da.store``), which skips dask's final concatenation;
- the same keeping the output in blocks (``persist``), as a pipeline that writes
  blocks to a store does;
- dask, 1 thread: the same with ``num_workers=1``, for the threaded speed-up;
- distributed: a LocalCluster of 1 worker x 1 thread, then 2 workers x 1 thread
  (processes, 127.0.0.1); the input is generated on the workers and the output
  blocks stay there (``persist``), so this times the computation, not transfers.

Each measurement is the median of ``--repeats`` calls; a round measures
everything once, and the table shows the best median over ``--rounds`` rounds.

    python benchmarks/dask_overhead.py --rounds 2 --repeats 5
"""

import argparse
import json
import statistics
import time

import numpy as np

CASES = {
    # compute-bound: every output voxel sums 27 taps x 32 channels
    "stride1 (1,128^3,32)->32 k3 s1 same": dict(
        shape=(1, 128, 128, 128, 32), layer=dict(filters=32, kernel_size=3, padding="same")),
    # memory-bound U-Net up-sampling: 512 MiB of output for little arithmetic
    "unet (1,128^2x64,32)->16 k2 s2": dict(
        shape=(1, 128, 128, 64, 32), layer=dict(filters=16, kernel_size=2, strides=2)),
}
BLOCK = 64


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_local(case, repeats):
    import dask.array as da

    import deconv3d

    layer = deconv3d.Conv3DTranspose(**case["layer"])
    x = np.random.default_rng(0).standard_normal(case["shape"], dtype=np.float32)
    layer.build(x.shape)
    lazy = layer(da.from_array(x, chunks=(1, BLOCK, BLOCK, BLOCK, x.shape[4])))
    out = np.empty(lazy.shape, lazy.dtype)
    np.testing.assert_array_equal(lazy.compute(), layer(x))     # and warms both up
    return {
        "direct 2 threads": median_time(lambda: layer(x, num_threads=2), repeats),
        "dask threads x2 compute": median_time(
            lambda: lazy.compute(scheduler="threads", num_workers=2), repeats),
        "dask threads x2 store": median_time(
            lambda: da.store(lazy, out, lock=False, scheduler="threads", num_workers=2),
            repeats),
        "dask threads x2 persist": median_time(
            lambda: lazy.persist(scheduler="threads", num_workers=2), repeats),
        "dask threads x1 compute": median_time(
            lambda: lazy.compute(scheduler="threads", num_workers=1), repeats),
    }


def measure_distributed(case, workers, repeats):
    import itertools

    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import deconv3d

    layer = deconv3d.Conv3DTranspose(**case["layer"])
    layer.build(case["shape"])
    runs = itertools.count()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        x = da.random.default_rng(0).standard_normal(
            case["shape"], chunks=(1, BLOCK, BLOCK, BLOCK, case["shape"][4]), dtype=np.float32)
        x = client.persist(x)
        wait(x)

        def run():
            # a fresh name for the same input blocks, so nothing computed before is reused
            fresh = x.map_blocks(_same, token=f"run-{next(runs)}", dtype=x.dtype)
            y = client.persist(layer(fresh))
            wait(y)
            del y

        run()                                   # ships the layer, warms the workers up
        return median_time(run, repeats)


def _same(block):
    return block


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the raw numbers here")
    args = parser.parse_args()
    best = {}
    raw = []
    for round_ in range(args.rounds):
        for name, case in CASES.items():
            times = measure_local(case, args.repeats)
            for workers in (1, 2):
                times[f"distributed {workers}x1 persist"] = measure_distributed(
                    case, workers, args.repeats)
            raw.append({"round": round_, "case": name, **times})
            print(json.dumps(raw[-1]), flush=True)
            for key, value in times.items():
                best[name, key] = min(best.get((name, key), float("inf")), value)
    print()
    print("| case | direct, 2 threads | dask threads x2: compute / store / persist | "
          "overhead: compute / store / persist | threads x2 over x1 | distributed 2x1 over 1x1 |")
    print("|---|---|---|---|---|---|")
    for name in CASES:
        b = {key: value for (case, key), value in best.items() if case == name}
        direct = b["direct 2 threads"]
        dask_times = [b[f"dask threads x2 {k}"] for k in ("compute", "store", "persist")]
        print(f"| {name} | {1e3 * direct:.0f} ms "
              f"| {' / '.join(f'{1e3 * t:.0f}' for t in dask_times)} ms "
              f"| {' / '.join(f'{100 * (t / direct - 1):+.0f}%' for t in dask_times)} "
              f"| {b['dask threads x1 compute'] / dask_times[0]:.2f}x "
              f"| {b['distributed 1x1 persist'] / b['distributed 2x1 persist']:.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(raw, handle, indent=1)


if __name__ == "__main__":
    main()
