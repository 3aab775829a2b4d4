"""Every row kernel this CPU runs (kernels.h: 2 or 3 w taps, 1 or 2 input voxels apart,
one- and two-vector panels, both dtypes), each through a layer whose plan gives it
the phase's runs, against the naive reference.

The kernel in use follows the CPU and DECONV3D_KERNEL: run the suite under
DECONV3D_KERNEL=avx2 to test the AVX2 row kernels on an AVX-512 machine.  Where no row
kernel exists for a width (the portable build), the plan must not claim one.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import deconv3d
from deconv3d import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import conv3d_transpose, relative_error  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

# (w taps, spacing): kernel, stride, dilation of a layer whose phases have them
TAP_LAYOUTS = {
    (3, 1): (3, 1, 1),
    (2, 1): (4, 2, 1),      # each of the two w phases has 2 consecutive taps
    (3, 2): (3, 1, 2),
    (2, 2): (2, 1, 2),
}
@pytest.fixture(autouse=True)
def without_lanes(monkeypatch):
    """Layers of 1-4 filters would take the lanes path instead (test_lanes.py)."""
    monkeypatch.setattr(_core, "LANES", False)


# filters giving the one- and two-vector panels of each dtype (without wide panels)
FILTERS = {"float32": (5, 13), "float64": (3, 7)}


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("width", [0, 1], ids=["one_vector", "two_vectors"])
@pytest.mark.parametrize("layout", list(TAP_LAYOUTS), ids=lambda t: f"t{t[0]}s{t[1]}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_kernel_matches_reference(dtype, layout, width, relu):
    taps, spacing = layout
    k, s, d = TAP_LAYOUTS[layout]
    filters = FILTERS[dtype][width]
    rng = np.random.default_rng(taps * 10 + spacing + width)
    layer = deconv3d.Conv3DTranspose(filters, k, s, "same", dilation_rate=d, dtype=dtype,
                                     activation="relu" if relu else None, num_threads=2)
    # enough channels for the w_lines order, rows long enough for several runs of 6
    x = rng.standard_normal((1, 3, 4, 23, 13)).astype(dtype)
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(layer.kernel.shape),
                       rng.standard_normal(filters)])
    info = layer._core_plan(x.shape).explain()
    expected_kernel = _core.find_kernel(np.dtype(dtype).itemsize, "row", info["nr"], taps,
                                        spacing)
    used = {p["row_kernel"] for p in info["phases"] if p["taps"][2] == taps}
    assert used == {expected_kernel}, (used, expected_kernel)
    assert ("row_kernel" in info["paths"]) == (expected_kernel is not None)
    expected = conv3d_transpose(x, layer.kernel, layer.bias, layer.strides, layer.padding,
                                None, layer.dilation_rate)
    if relu:
        expected = np.maximum(expected, 0)
    assert relative_error(layer(x), expected) <= TOLERANCE[dtype]


def test_narrow_panels_have_row_kernels_wherever_they_have_vector_gemm_kernels():
    """AVX2 has row kernels too, for the one-vector panels of layers with few filters."""
    for itemsize, nr in ((4, 8), (8, 4)):
        gemm = _core.find_kernel(itemsize, "gemm", nr)
        if gemm.endswith("_generic"):
            continue
        for taps in (2, 3):
            for spacing in (1, 2):
                row = _core.find_kernel(itemsize, "row", nr, taps, spacing)
                assert row == f"f{itemsize * 8}_row_12x{nr}_t{taps}s{spacing}_avx2"
