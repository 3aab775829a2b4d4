"""The seed example: a 3D U-Net up-sampling step on random data, checked and timed."""

from __future__ import annotations

import time

import numpy as np

from . import _core
from .info import show_config
from .layer import Conv3DTranspose

SEED_INPUT_SHAPE = (4, 10, 8, 12, 128)
SEED_FILTERS, SEED_KERNEL, SEED_STRIDES = 32, 2, 2


def stride_equals_kernel_reference(x, kernel, bias):
    """Independent NumPy form of a 'valid' transposed conv whose stride equals its kernel.

    Every input voxel paints its own (kd, kh, kw) block of the output, so the
    result is one tensor contraction followed by interleaving the blocks.
    """
    n, d, h, w, _ = x.shape
    kd, kh, kw, filters, _ = kernel.shape
    blocks = np.einsum("ndhwc,abefc->ndahbwef", x.astype(np.float64), kernel.astype(np.float64))
    return blocks.reshape(n, d * kd, h * kh, w * kw, filters) + bias


def run(num_threads=None, repeats=5, seed=0) -> dict:
    """Build the seed layer, run it, and compare it with the NumPy reference."""
    rng = np.random.default_rng(seed)
    x = rng.random(SEED_INPUT_SHAPE, dtype=np.float32)
    layer = Conv3DTranspose(SEED_FILTERS, SEED_KERNEL, SEED_STRIDES, activation="relu",
                            bias_initializer={"class_name": "RandomNormal",
                                              "config": {"seed": seed}},
                            kernel_initializer={"class_name": "GlorotUniform",
                                                "config": {"seed": seed}},
                            num_threads=num_threads)
    y = layer(x)                        # first call builds the layer
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        y = layer(x)
        times.append(time.perf_counter() - start)
    expected = np.maximum(stride_equals_kernel_reference(x, layer.kernel, layer.bias), 0)
    return {"input_shape": x.shape, "output_shape": y.shape, "dtype": str(y.dtype),
            "median_ms": 1e3 * float(np.median(times)),
            "threads": num_threads or _core.default_thread_count(),
            "max_abs_diff": float(np.max(np.abs(y - expected))),
            "max_abs_output": float(np.max(np.abs(expected)))}


def main(num_threads=None, repeats=5) -> int:
    show_config()
    print()
    result = run(num_threads, repeats)
    print("deconv3d demo: Conv3DTranspose(32, kernel_size=2, strides=2, activation='relu')")
    print(f"input shape:  {result['input_shape']}")
    print(f"output shape: {result['output_shape']}  ({result['dtype']})")
    print(f"time:         {result['median_ms']:.2f} ms per call (median of {repeats}, "
          f"{result['threads']} threads)")
    relative = result["max_abs_diff"] / result["max_abs_output"]
    print(f"max |difference| from the NumPy reference: {result['max_abs_diff']:.3g} "
          f"({relative:.2g} relative)")
    if relative > 1e-5:
        print("FAILED: the output does not match the reference")
        return 1
    return 0
