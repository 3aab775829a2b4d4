"""Regression tests for the bugs the fuzzer found, each a minimal reproducer.

All are fixed except those in oracle.KNOWN_BUGS, whose tests are strict xfails:
when such a bug is fixed its test XPASSes, which fails, as a reminder to delete
the entry.  Some run in a fresh interpreter, because the bug crashed or hung.
"""

import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest

import deconv3d
from generator import ACTIVATION_POOL
from oracle import KNOWN_BUGS, check_call
from reference import conv3d_transpose
from worker import HUGE_BUDGET


def package_parent():
    return os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))


def test_nan_positions_match_the_reference_for_every_activation():
    """A direct, in-process check: every fused and whole-axis activation propagates NaN/inf."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 3, 3)).astype(np.float32)
    x[0, 1, 2, 1, 0] = np.nan
    x[1, 0, 0, 0, 1] = np.inf
    x[1, 2, 3, 2, 2] = -np.inf
    for name in ACTIVATION_POOL:
        if name in ("celu", "softmax", "log_softmax"):
            continue          # each has its own test below (test_celu_propagates_nan, ...)
        layer = deconv3d.Conv3DTranspose(4, 3, strides=(2, 1, 2), padding="same",
                                         activation=name, bias_initializer="random_normal")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = layer(x)
        check_call(layer, x, y)      # NaN positions exactly those of the reference


def test_huge_output_is_refused_before_allocating():
    """An input needing no memory whose output would need petabytes: a ValueError, with
    NumPy never asked for more than a few MiB, and the process's memory unchanged."""
    x = np.broadcast_to(np.float32(1.0), (1, 2 ** 14, 2 ** 14, 2 ** 14, 2))   # 16 TiB view
    layer = deconv3d.Conv3DTranspose(4, 3, strides=2)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="would have shape"):
            layer(x)
        empty = np.empty((1, 0, 2 ** 30, 2 ** 30, 2), np.uint8)
        with pytest.raises(ValueError, match="output"):
            layer(empty)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < HUGE_BUDGET, peak


def run_python(code, timeout=60):
    """Run code in a fresh interpreter importing the same deconv3d; -> (status, output)."""
    env = dict(os.environ, DECONV3D_FUZZ_PACKAGE=package_parent())
    prelude = ("import os, sys; sys.path.insert(0, os.environ['DECONV3D_FUZZ_PACKAGE']); "
               "import numpy as np, deconv3d\n")
    try:
        done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def bug(key):
    return pytest.mark.xfail(strict=True, reason=f"{key}: {KNOWN_BUGS[key]}")


def test_long_kernel_axis():
    status, output = run_python("""
        layer = deconv3d.Conv3DTranspose(1, (1, 1, 150), kernel_initializer="ones")
        y = layer(np.ones((1, 1, 1, 1, 1)), num_threads=1)
        assert y.shape == (1, 1, 1, 150, 1) and np.all(y == 1), y
        print("fine")
    """)
    assert status == 0 and "fine" in output, (status, output)


def test_huge_thread_count_is_refused():
    layer = deconv3d.Conv3DTranspose(1, 2)
    with pytest.raises(ValueError, match="num_threads"):
        layer(np.ones((1, 2, 2, 2, 1)), num_threads=2 ** 31)
    status, output = run_python("""
        try:
            deconv3d.Conv3DTranspose(1, 2)(np.ones((1, 2, 2, 2, 1)), num_threads=10 ** 6)
        except ValueError:
            print("refused")
    """)
    assert status == 0 and "refused" in output, (status, output)


def test_huge_strides_are_refused_quickly():
    status, output = run_python("""
        try:
            deconv3d.Conv3DTranspose(1, 1, strides=10_000)(np.ones((1, 1, 1, 1, 1)))
        except ValueError as error:
            print("refused:", error)
    """, timeout=10)
    assert status == 0 and "refused" in output, (status, output)


def test_dilation_beyond_int64_is_a_value_error():
    with pytest.raises(ValueError):
        deconv3d.Conv3DTranspose(1, 2, dilation_rate=2 ** 64)(np.ones((1, 1, 1, 1, 1)))


def test_zero_channels_do_not_bypass_the_size_check():
    with pytest.raises(ValueError):
        deconv3d.Conv3DTranspose(2 ** 40, 1)(np.ones((1, 1, 1, 1, 0)))     # bias: 8 TiB


def test_celu_propagates_nan():
    layer = deconv3d.Conv3DTranspose(1, 1, activation="celu", use_bias=False,
                                     kernel_initializer="ones")
    assert np.isnan(layer(np.full((1, 1, 1, 1, 1), np.nan))).all()


def test_non_finite_values_raise_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deconv3d.Conv3DTranspose(2, 1)(np.full((1, 1, 1, 1, 1), 1e300))       # -> inf
        x = np.ones((1, 1, 1, 1, 1), np.float32)
        x[0, 0, 0, 0, 0] = np.inf
        deconv3d.Conv3DTranspose(2, 1, activation="softmax", kernel_initializer="ones")(x)


def test_huge_broadcast_input_is_refused_with_a_value_error():
    x = np.broadcast_to(np.float32(0), (1, 1000, 1000, 100, 10_000))    # a 4 TB view
    with pytest.raises(ValueError):
        deconv3d.Conv3DTranspose(1, 1)(x)


def test_use_bias_array_error_names_the_argument():
    with pytest.raises((ValueError, TypeError), match="use_bias"):
        deconv3d.Conv3DTranspose(1, 1, use_bias=np.array([1, 2]))(np.ones((1, 1, 1, 1, 1)))


def test_initializer_config_errors_are_value_or_type_errors_naming_the_argument():
    bad = {"class_name": "GlorotUniform", "config": {"input_axes": [9], "output_axes": [0]}}
    with pytest.raises((ValueError, TypeError), match="kernel_initializer"):
        deconv3d.Conv3DTranspose(1, 1, kernel_initializer=bad)(np.ones((1, 1, 1, 1, 1)))


def test_softmax_of_an_empty_last_axis():
    layer = deconv3d.Conv3DTranspose(2, 2, padding="same", output_padding=0, activation="softmax",
                                     data_format="channels_first")
    assert layer(np.ones((1, 1, 1, 1, 1))).shape == (1, 2, 0, 0, 0)       # as Keras


def test_empty_output_with_enormous_axes_names_the_output():
    x = np.empty((0, 2 ** 30, 2 ** 30, 1, 1), np.uint8)
    with pytest.raises(ValueError, match="output|input"):
        deconv3d.Conv3DTranspose(8, 1)(x)


@bug("K13-nonfinite-weights")
def test_infinite_weights_meet_the_zeros_like_keras():
    layer = deconv3d.Conv3DTranspose(1, (3, 1, 1), strides=(2, 1, 1), use_bias=False)
    x = np.ones((1, 4, 1, 1, 1), np.float32)
    layer.build(x.shape)
    kernel = np.ones((3, 1, 1, 1, 1))
    kernel[0] = np.inf
    layer.set_weights([kernel])
    with np.errstate(invalid="ignore"):
        expected = conv3d_transpose(x, kernel, None, (2, 1, 1))    # [inf nan inf nan ... nan]
    np.testing.assert_array_equal(np.isnan(layer(x)), np.isnan(expected))


def test_unaligned_input():
    """Right on x86; under UBSan (tests/sanitize.sh) the misaligned loads abort the run."""
    status, output = run_python("""
        layer = deconv3d.Conv3DTranspose(2, 2, kernel_initializer="ones")
        raw = np.zeros(4 * 2 * 2 * 2 * 3 + 1, np.uint8)
        x = np.frombuffer(raw.data, np.float32, count=24, offset=1).reshape(1, 2, 2, 2, 3)
        x[...] = 1
        assert not x.flags.aligned
        y = layer(x)
        assert y.max() == 24, y
        print("fine")
    """)
    assert status == 0 and "fine" in output, (status, output)
