"""`deconv3d apply` from zarr to zarr on an output several times larger than its memory limit.

Writes a Keras model with one Conv3DTranspose (Keras needed for this step only),
a random input volume as zarr, then runs

    python -m deconv3d apply model.keras --layer up --input in.zarr --output out.zarr

in a child process whose address space is capped with RLIMIT_AS (what
``ulimit -v`` sets), and reports the child's peak resident memory, the output
size, the limit and the time.  The output is checked block-wise against the
NumPy call on a few random windows.

    python benchmarks/dask_memory.py --limit-gib 1.5 --edge 240 --filters 16
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_model(path, channels, filters):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    inputs = keras.Input((None, None, None, channels))
    outputs = keras.layers.Conv3DTranspose(filters, 2, strides=2, name="up")(inputs)
    keras.Model(inputs, outputs).save(path)


def make_input(path, edge, channels, chunk):
    import zarr

    z = zarr.create_array(store=path, shape=(1, edge, edge, edge, channels),
                          chunks=(1, chunk, chunk, chunk, channels), dtype="float32")
    rng = np.random.default_rng(0)
    for d in range(0, edge, chunk):          # slab by slab: this process stays small too
        z[:, d:d + chunk] = rng.standard_normal((1, min(chunk, edge - d), edge, edge,
                                                  channels), dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gib", type=float, default=1.5, help="RLIMIT_AS of the run")
    parser.add_argument("--edge", type=int, default=240, help="input voxels per spatial axis")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=40, help="input zarr chunk edge")
    parser.add_argument("--workdir", default=None, help="where the files go (default: a "
                                                        "temporary folder, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="deconv3d-memory-")
    os.makedirs(workdir, exist_ok=True)
    model, source, destination = (os.path.join(workdir, n)
                                  for n in ("model.keras", "in.zarr", "out.zarr"))
    try:
        make_model(model, args.channels, args.filters)
        make_input(source, args.edge, args.channels, args.chunk)
        limit = int(args.limit_gib * 2 ** 30)
        output_bytes = (2 * args.edge) ** 3 * args.filters * 4

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        command = [sys.executable, "-m", "deconv3d", "apply", model, "--layer", "up",
                   "--input", source, "--output", destination]
        start = time.perf_counter()
        done = subprocess.run(command, preexec_fn=cap, cwd=workdir)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024   # KiB on Linux
        if done.returncode:
            sys.exit(f"apply failed with status {done.returncode}")
        check(model, source, destination)
        report = {"input_shape": [1, args.edge, args.edge, args.edge, args.channels],
                  "output_shape": [1] + [2 * args.edge] * 3 + [args.filters],
                  "output_gib": round(output_bytes / 2 ** 30, 2),
                  "limit_gib": args.limit_gib,
                  "output_over_limit": round(output_bytes / limit, 2),
                  "peak_rss_gib": round(peak / 2 ** 30, 3),
                  "seconds": round(seconds, 1)}
        print(json.dumps(report))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def check(model, source, destination, windows=4):
    """The zarr output equals the NumPy call on random windows (with their halo)."""
    import zarr

    import deconv3d

    layer = deconv3d.Conv3DTranspose.from_keras_file(model, name="up")
    x, y = zarr.open_array(source, mode="r"), zarr.open_array(destination, mode="r")
    rng = np.random.default_rng(1)
    for _ in range(windows):
        # k2 s2 valid: output [2a, 2b) comes from input [a, b) exactly
        a = [int(rng.integers(0, n - 8)) for n in x.shape[1:4]]
        window = tuple(slice(i, i + 8) for i in a)
        expected = layer(x[(slice(None),) + window])
        got = y[(slice(None),) + tuple(slice(2 * i, 2 * i + 16) for i in a)]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


if __name__ == "__main__":
    main()
