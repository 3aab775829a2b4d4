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
- what bounds these, measured beside them: the direct call on 1 thread (how
  far the core itself scales on this machine), the direct call with its output
  on fresh pages (deconv3d keeps freed outputs for the next call; a single call
  in a script pays the kernel's zeroing of every page), dask's final concatenation
  alone (``concatenate3`` of the persisted blocks: what ``compute`` adds to
  ``persist``, a fresh output-sized array and one single-threaded copy into
  it), and one copy of the output into a preallocated array (a memory pass);
- distributed: a LocalCluster of 1 worker x 1 thread, then 2 workers x 1 thread
  (processes, 127.0.0.1); the input is generated on the workers and the output
  blocks stay there (``persist``), so this times the computation, not transfers.
  Beside it, the same round trip with a graph that only renames the input
  blocks (the cluster's fixed cost per call), and the CPU time the scheduler and
  this client spend per call (on two cores, taken from the workers' cores).

Each measurement is the median of ``--repeats`` calls, in wall time and in
CPU time (this process, or the sum over the cluster's workers); a round
measures everything once, and the table shows the best median over
``--rounds`` rounds.  Run it on a quiet machine: the speed-ups need two idle cores.

    python benchmarks/dask_overhead.py --rounds 2 --repeats 5
"""

import argparse
import json
import os
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


def median_time(function, repeats, cpu=time.process_time):
    """Median wall time and median CPU time (``cpu()`` before and after) of ``function()``.

    CPU time is the load-independent half: on a shared machine the wall time
    also counts waiting for cores, the CPU time only the work done.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        cpu_start = cpu()
        start = time.perf_counter()
        function()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu() - cpu_start)
    return statistics.median(walls), statistics.median(cpus)


def measure_local(case, repeats):
    import dask.array as da

    import deconv3d
    from deconv3d import buffers

    layer = deconv3d.Conv3DTranspose(**case["layer"])
    x = np.random.default_rng(0).standard_normal(case["shape"], dtype=np.float32)
    layer.build(x.shape)
    lazy = layer(da.from_array(x, chunks=(1, BLOCK, BLOCK, BLOCK, x.shape[4])))
    out = np.empty(lazy.shape, lazy.dtype)
    # and warms both up; a block's edge tiles may sum in another order (AVX-512 row
    # kernels), so equal up to float32 rounding, not bit for bit
    expected = layer(x)
    np.testing.assert_allclose(lazy.compute(), expected, rtol=0,
                               atol=1e-6 * float(np.abs(expected).max()))
    times = {
        "direct 2 threads": median_time(lambda: layer(x, num_threads=2), repeats),
        "direct 1 thread": median_time(lambda: layer(x, num_threads=1), repeats),
        # a first call, as one call in a script is: its output on fresh pages
        "direct 2 threads fresh": median_time(
            lambda: (buffers.release_memory(), layer(x, num_threads=2)), repeats),
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
    # measured last: the blocks and the output held here take memory the calls above reuse
    blocks = _nested_blocks(lazy.persist(scheduler="threads", num_workers=2))
    times["dask final concatenate"] = median_time(lambda: da.core.concatenate3(blocks),
                                                  repeats)
    direct = layer(x)
    times["copy of the output"] = median_time(lambda: np.copyto(out, direct), repeats)
    return times


def _nested_blocks(persisted):
    """The NumPy blocks of a persisted array, nested as dask's final concatenation takes them."""
    graph = dict(persisted.__dask_graph__())

    def fill(keys):
        return [fill(k) for k in keys] if isinstance(keys, list) else graph[keys]
    return fill(persisted.__dask_keys__())


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

        def run(apply=layer):
            # a fresh name for the same input blocks, so nothing computed before is reused
            fresh = x.map_blocks(_same, token=f"run-{next(runs)}", dtype=x.dtype)
            y = client.persist(apply(fresh))
            wait(y)
            del y

        def cluster_cpu():
            # a LocalCluster's scheduler may run in this process: count each process once
            return sum(dict([client.run_on_scheduler(_process_cpu), _process_cpu()]).values())

        run()                                   # ships the layer, warms the workers up
        run(_same)
        times = {f"distributed {workers}x1 persist": median_time(
            run, repeats, cpu=lambda: sum(client.run(time.process_time).values()))}
        times[f"distributed {workers}x1 scheduler+client"] = median_time(
            run, repeats, cpu=cluster_cpu)
        times[f"distributed {workers}x1 empty graph"] = median_time(lambda: run(_same), repeats)
        return times


def _process_cpu():
    return os.getpid(), time.process_time()


def _same(block):
    return block


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the raw numbers here")
    parser.add_argument("--cases", default=None, help="a subset of the cases, by first word: stride1,unet")
    args = parser.parse_args()
    wanted = args.cases.split(",") if args.cases else [n.split()[0] for n in CASES]
    cases = {name: case for name, case in CASES.items() if name.split()[0] in wanted}
    best = {}
    raw = []
    for round_ in range(args.rounds):
        for name, case in cases.items():
            times = measure_local(case, args.repeats)
            for workers in (1, 2):
                times.update(measure_distributed(case, workers, args.repeats))
            raw.append({"round": round_, "case": name, "load": os.getloadavg()[0],
                        **{key: {"wall": wall, "cpu": cpu}
                           for key, (wall, cpu) in times.items()}})
            print(json.dumps(raw[-1]), flush=True)
            for key, (wall, cpu) in times.items():
                old_wall, old_cpu = best.get((name, key), (float("inf"), float("inf")))
                best[name, key] = (min(old_wall, wall), min(old_cpu, cpu))
    print()
    print("Best median over the rounds, wall ms (CPU ms); overhead = dask / direct - 1.")
    print()
    print("| case | direct, 2 threads | dask threads x2: compute / store / persist | "
          "overhead, wall | overhead, CPU | threads x2 over x1 | distributed 2x1 over 1x1 |")
    print("|---|---|---|---|---|---|---|")
    for name in cases:
        b = {key: value for (case, key), value in best.items() if case == name}
        direct = b["direct 2 threads"]
        dask_times = [b[f"dask threads x2 {k}"] for k in ("compute", "store", "persist")]

        def over(index):
            return " / ".join(f"{100 * (t[index] / direct[index] - 1):+.0f}%"
                              for t in dask_times)

        print(f"| {name} | {1e3 * direct[0]:.0f} ({1e3 * direct[1]:.0f}) "
              f"| {' / '.join(f'{1e3 * t[0]:.0f} ({1e3 * t[1]:.0f})' for t in dask_times)} "
              f"| {over(0)} | {over(1)} "
              f"| {b['dask threads x1 compute'][0] / dask_times[0][0]:.2f}x "
              f"| {b['distributed 1x1 persist'][0] / b['distributed 2x1 persist'][0]:.2f}x |")
    print()
    print("What bounds them, wall ms: the core's own scaling, dask's final concatenation "
          "(compute = persist + it), one memory pass over the output, the cluster's fixed "
          "cost per call (empty graph) and the scheduler's and client's CPU per call.")
    print()
    print("| case | direct 1 / 2 threads | direct 2 threads, fresh output | final concatenate (% of direct) | copy of the output "
          "| distributed 1x1 / 2x1 | empty graph 1x1 / 2x1 | scheduler+client CPU 2x1 "
          "| 2x1 over 1x1 without the fixed cost |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in cases:
        b = {key: value[0] * 1e3 for (case, key), value in best.items() if case == name}
        cpu_2x1 = best[name, "distributed 2x1 scheduler+client"][1] * 1e3
        one, two = b["distributed 1x1 persist"], b["distributed 2x1 persist"]
        empty_one, empty_two = b["distributed 1x1 empty graph"], b["distributed 2x1 empty graph"]
        print(f"| {name} | {b['direct 1 thread']:.0f} / {b['direct 2 threads']:.0f} "
              f"({b['direct 1 thread'] / b['direct 2 threads']:.2f}x) "
              f"| {b['direct 2 threads fresh']:.0f} "
              f"| {b['dask final concatenate']:.0f} "
              f"({100 * b['dask final concatenate'] / b['direct 2 threads']:.0f}%) "
              f"| {b['copy of the output']:.0f} | {one:.0f} / {two:.0f} "
              f"| {empty_one:.0f} / {empty_two:.0f} | {cpu_2x1:.0f} "
              f"| {(one - empty_one) / (two - empty_two):.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(raw, handle, indent=1)


if __name__ == "__main__":
    main()
