"""Which path the core takes, asserted from its plan, and each path against the reference.

Every case names the paths it exists to cover (`Plan.explain()["paths"]`); a retuned
threshold or a CPU without some kernels then fails here instead of silently covering
less.  Paths that need a kernel this CPU lacks (the wide panels and two-vector row
kernels are AVX-512 only) are expected only where `_core.find_kernel` finds one.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import deconv3d
from deconv3d import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import conv3d_transpose, relative_error  # noqa: E402

HAS_ROW_KERNELS = _core.find_kernel(4, "row", 32, 3, 1) is not None
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

# filters, kernel, strides, padding, dilation, spatial, channels, batch, claimed paths
CASES = [
    (10, 3, 1, "valid", 1, (3, 3, 7), 16, 10, {"batch_tiles"}),
    (7, 3, 1, "same", 1, (4, 4, 4), 3, 12, {"batch_tiles"}),
    (7, 3, 1, "same", 1, (2, 2, 3), 3, 30, {"batch_tiles"}),
    (10, (2, 2, 3), 1, "valid", 1, (2, 2, 2), 9, 13, {"batch_tiles"}),
    (3, (1, 1, 4), 1, "valid", (1, 1, 3), (4, 3, 1), 5, 1, {"line_tiles"}),
    (9, 3, 2, "valid", 1, (2, 3, 14), 5, 1, {"line_tiles"}),
    # thin inputs (at most THIN_MAX_CHANNELS channels) take w_lines whatever their reduction
    (5, 2, 1, "valid", 1, (2, 3, 27), 3, 1, {"w_lines", "columns"}),
    (4, 3, 1, "same", 1, (2, 3, 50), 2, 2, {"w_lines", "columns"}),
    (16, 3, 1, "same", 1, (3, 4, 8), 5, 2, {"w_lines", "columns"}),
    (5, 3, 1, "same", 1, (2, 3, 20), 4, 1, {"w_lines", "columns"}),
    (4, 3, 1, "same", (1, 1, 2), (2, 5, 9), 6, 1, {"w_lines", "columns"}),
    (8, 3, 1, "valid", 1, (1, 3, 40), 4, 1, {"w_lines"}),
    (19, (1, 2, 3), (1, 2, 3), "valid", 1, (3, 5, 2), 7, 3, {"disjoint"}),
    (64, 2, 2, "valid", 1, (2, 2, 2), 33, 1, {"disjoint"}),
    (4, 1, 1, "valid", (2, 1, 3), (2, 3, 4), 5, 2, {"disjoint"}),
    # few filters or thin inputs with strides: every phase's filters side by side
    (1, 2, 2, "valid", 1, (3, 4, 5), 16, 2, {"phase_columns"}),
    (2, 3, 2, "same", 1, (3, 4, 9), 6, 2, {"phase_columns"}),
    (8, 3, 2, "same", 1, (3, 4, 30), 1, 1, {"phase_columns"}),
    # 1-4 filters, at least LANES_MIN_CHANNELS channels and overlapping taps: points
    # across the vector lanes (rows of several w phases, crops, dilation, many images)
    (4, 3, 2, "same", 1, (3, 4, 9), 16, 2, {"lanes"}),
    (1, 3, 1, "same", 1, (2, 5, 37), 8, 1, {"lanes"}),
    (3, (2, 3, 4), (1, 2, 3), "valid", 1, (3, 2, 5), 11, 3, {"lanes"}),
    (2, 3, 1, "same", (2, 1, 3), (4, 3, 6), 9, 2, {"lanes"}),
    (4, 5, 3, "same", 1, (2, 3, 4), 12, 5, {"lanes"}),
    # row kernels: 2 or 3 w taps, 1 or 2 apart, one- and two-vector panels (each with a
    # reduction of at least W_LINES_MIN_REDUCTION = 96 taps x channels, or no w_lines)
    (32, 3, 1, "same", 1, (3, 5, 20), 8, 1, {"w_lines", "row_kernel", "columns"}),
    (16, 3, 1, "valid", 1, (2, 3, 17), 5, 2, {"w_lines", "row_kernel", "columns"}),
    (32, 3, 2, "same", 1, (3, 3, 14), 12, 1, {"w_lines", "row_kernel"}),
    (32, 4, 2, "same", 1, (2, 3, 13), 12, 1, {"w_lines", "row_kernel"}),
    (32, 2, 1, "same", 2, (3, 2, 16), 12, 1, {"w_lines", "row_kernel"}),
    (16, 3, 1, "same", 2, (2, 4, 19), 4, 1, {"w_lines", "row_kernel"}),
    (16, 3, 1, "valid", 1, (2, 3, 8), 16, 20, {"w_lines", "row_kernel"}),
    # a packed kernel too large to sweep every phase per item (> 1 MiB)
    (64, 3, 2, "same", 1, (2, 2, 3), 256, 1, {"phase_per_item"}),
    (8, 3, 2, "same", 1, (3, 4, 5), 6, 2, {"all_phases"}),
    # outputs of 16 MiB and more go out with non-temporal stores
    (32, 2, 2, "valid", 1, (16, 32, 32), 4, 1, {"disjoint", "stream"}),
    (32, 3, 2, "same", 1, (16, 32, 32), 3, 1, {"stream"}),
    (8, 3, 2, "same", 1, (32, 32, 64), 1, 1, {"phase_columns", "stream"}),
]


def expected_paths(claimed, filters, dtype):
    """The claim, less what this CPU cannot do: without row kernels a phase's rows are
    plain w_lines tiles, and a many-image layer tiles along the batch instead."""
    if HAS_ROW_KERNELS or "row_kernel" not in claimed:
        return claimed
    return claimed - {"row_kernel", "w_lines", "columns"}


def make_layer(case, dtype, num_threads=None, activation=None):
    filters, k, s, padding, d, spatial, channels, batch, _ = case
    rng = np.random.default_rng(sum(spatial) + channels + filters)
    layer = deconv3d.Conv3DTranspose(filters, k, s, padding, dilation_rate=d, dtype=dtype,
                                     num_threads=num_threads, activation=activation)
    x = rng.standard_normal((batch, *spatial, channels)).astype(dtype)
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(layer.kernel.shape), rng.standard_normal(filters)])
    return layer, x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[f"plan{i}" for i in range(len(CASES))])
def test_case_takes_its_paths_and_matches_reference(case, dtype, monkeypatch):
    if "lanes" in case[-1]:
        monkeypatch.setattr(_core, "LANES", True)     # whatever the default, and for
        monkeypatch.setattr(_core, "LANES_MIN_POINTS", 1)   # every lanes kernel
    filters = case[0] if dtype == "float32" else max(1, case[0] // 2)
    case = (filters, *case[1:])
    layer, x = make_layer(case, dtype, num_threads=2)
    plan = layer._core_plan(x.shape)
    paths = plan.explain()["paths"]
    claimed = expected_paths(case[-1], filters, dtype)
    assert claimed <= paths, (claimed, paths)
    expected = conv3d_transpose(x, layer.kernel, layer.bias, layer.strides, layer.padding,
                                None, layer.dilation_rate)
    assert relative_error(layer(x), expected) <= TOLERANCE[dtype]


def test_every_path_is_claimed_by_some_case():
    """The vocabulary of explain() and the cases above cover each other."""
    claimed = set().union(*(case[-1] for case in CASES))
    assert claimed == {"batch_tiles", "line_tiles", "w_lines", "columns", "disjoint",
                       "row_kernel", "phase_per_item", "all_phases", "stream", "phase_columns",
                       "lanes"}


def test_exactly_one_tile_order_per_plan():
    orders = {"batch_tiles", "line_tiles", "w_lines", "disjoint", "phase_columns", "lanes"}
    for case in CASES:
        layer, x = make_layer(case, "float32")
        paths = layer._core_plan(x.shape).explain()["paths"]
        assert len(paths & orders) == 1, (case, paths)


def test_plan_is_computed_once_per_input_shape():
    layer, x = make_layer(CASES[0], "float32", num_threads=1)
    first = layer._core_plan(x.shape)
    layer(x)
    assert layer._core_plan(x.shape) is first
    other = layer._core_plan((x.shape[0] + 1, *x.shape[1:]))
    assert other is not first and other.input_shape[0] == x.shape[0] + 1
    layer.set_weights(layer.get_weights())      # new weights, new packing, new plans
    assert layer._core_plan(x.shape) is not first


def test_explain_names_kernels_and_phases():
    case = next(c for c in CASES if c[-1] == {"w_lines", "row_kernel", "columns"})
    layer, x = make_layer(case, "float32", num_threads=2)
    info = layer._core_plan(x.shape).explain()
    assert info["kernel"] == _core.find_kernel(4, "gemm", info["nr"])
    assert info["threads"] == 2 and info["items"] >= 1 and info["tiles_per_item"] >= 1
    assert len(info["phases"]) == 1 and info["phases"][0]["taps"] == (3, 3, 3)
    row = info["phases"][0]["row_kernel"]
    assert row == _core.find_kernel(4, "row", info["nr"], 3, 1)
    if row is not None:
        assert info["phases"][0]["runs"][1] == 6
