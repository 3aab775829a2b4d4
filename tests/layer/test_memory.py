"""Memory, determinism and the GIL: resident memory over repeated calls, bit-identical
outputs (across calls and thread counts), and computation that lets other Python threads
run.

Resident memory is read from /proc/self/statm (Linux only; skipped elsewhere, and under
the sanitizers and valgrind, whose allocators make resident memory meaningless).  Every
bound is taken after a warm-up: the first calls legitimately grow the process (OpenMP's
thread pool, glibc's arenas and mmap threshold, deconv3d's pool of recycled output
buffers, NumPy's caches); what must not happen is growth that scales with the number of
calls.

No assertion here is on wall time (a project rule).  The GIL test counts the progress of
a pure-Python counter thread instead: while one call holding the GIL runs, the counter
cannot run at all, whereas a call that releases it lets the counter run about as fast as
while the main thread sleeps.  The parallel speed-up of two Python threads is measured
and reported, not asserted.
"""

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import deconv3d
import reference
from reference import ACTIVATIONS, conv3d_transpose, relative_error

MiB = 1 << 20
SANITIZED = bool(os.environ.get("DECONV3D_SANITIZER")) or any(
    name in os.environ.get("LD_PRELOAD", "") for name in ("asan", "valgrind", "vgpreload"))


def resident_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


needs_rss = pytest.mark.skipif(
    not sys.platform.startswith("linux") or SANITIZED,
    reason="resident memory is read from /proc/self/statm (Linux), and is meaningless "
           "under the sanitizers or valgrind")


def settled_rss():
    gc.collect()
    return resident_bytes()


# ---------------------------------------------------------------------- resident memory
@needs_rss
def test_resident_memory_flat_over_10000_small_calls():
    rng = np.random.default_rng(0)
    plain = deconv3d.Conv3DTranspose(8, 3, 2, padding="same")
    fancy = deconv3d.Conv3DTranspose(5, (2, 3, 1), (1, 2, 3), data_format="channels_first",
                                     activation="softmax", dtype="float64",
                                     output_padding=(0, 1, 2))
    half = deconv3d.Conv3DTranspose(3, 2, dilation_rate=2, activation="gelu",
                                    dtype="mixed_float16")
    x_plain = rng.standard_normal((1, 4, 4, 4, 4)).astype(np.float32)
    x_fancy = rng.standard_normal((2, 3, 3, 2, 4))
    x_half = rng.standard_normal((1, 3, 4, 3, 2)).astype(np.float16)
    bad = np.zeros((1, 4, 4, 4, 5), np.float32)          # wrong channel count, after build

    def one_round(i):
        plain(x_plain)
        fancy(x_fancy, num_threads=2)
        half(x_half)
        if i % 10 == 0:                                   # the error paths, too
            with pytest.raises(ValueError):
                plain(bad)
            with pytest.raises(TypeError):
                plain(x_plain.astype(complex))

    for i in range(500):
        one_round(i)
    before = settled_rss()
    for i in range(3334):                                 # 3 calls a round: 10,002 calls
        one_round(i)
    growth = settled_rss() - before
    print(f"\nresident memory growth over 10,000 small calls: {growth / MiB:+.2f} MiB")
    assert growth < 8 * MiB, f"{growth / MiB:.1f} MiB"


@needs_rss
def test_resident_memory_flat_over_100_large_calls():
    rng = np.random.default_rng(1)
    layer = deconv3d.Conv3DTranspose(16, 2, 2)                       # 32 MiB float32 outputs
    first = deconv3d.Conv3DTranspose(16, 2, 2, data_format="channels_first", activation="relu")
    x = rng.standard_normal((2, 32, 32, 32, 8)).astype(np.float32)
    x_first = np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))[:, :, :24]
    expected_bytes = 2 * 64 * 64 * 64 * 16 * 4

    def one_round(i):
        y = layer(x)
        assert y.nbytes == expected_bytes
        first(x_first)                                               # another size, a copy
        del y

    for i in range(8):
        one_round(i)
    before = settled_rss()
    for i in range(50):                                              # 2 calls a round
        one_round(i)
    growth = settled_rss() - before
    print(f"\nresident memory growth over 100 calls with 24-32 MiB outputs: "
          f"{growth / MiB:+.2f} MiB")
    assert growth < 16 * MiB, f"{growth / MiB:.1f} MiB (an output is 32 MiB)"


# ---------------------------------------------------------------------- determinism
def reference_output(layer, x):
    expected = conv3d_transpose(np.asarray(x, np.float64), layer.kernel, layer.bias,
                                layer.strides, layer.padding, layer.output_padding,
                                layer.dilation_rate, layer.data_format)
    return ACTIVATIONS[layer.activation.name](expected)


DETERMINISM_CASES = {
    "same-stride2": (dict(filters=8, kernel_size=3, strides=2, padding="same"), 5),
    "valid-mixed-strides": (dict(filters=5, kernel_size=(2, 3, 1), strides=(1, 2, 3),
                                 output_padding=(0, 1, 2)), 3),
    "dilation-gelu": (dict(filters=17, kernel_size=3, dilation_rate=2, padding="same",
                           activation="gelu"), 4),
    "float64-relu": (dict(filters=9, kernel_size=2, strides=2, dtype="float64",
                          activation="relu"), 6),
    "channels-first-softmax": (dict(filters=16, kernel_size=3, data_format="channels_first",
                                    activation="softmax"), 3),
    "mixed-float16-tanh": (dict(filters=3, kernel_size=3, strides=(2, 1, 2),
                                dtype="mixed_float16", activation="tanh"), 2),
    # 64 channels x 27 taps: the reduction is split into groups (accumulate mode)
    "long-reduction-relu": (dict(filters=32, kernel_size=3, padding="same", activation="relu"),
                            64),
    "float64-long-reduction": (dict(filters=12, kernel_size=(3, 3, 2), strides=(1, 1, 2),
                                    dtype="float64", activation="sigmoid"), 48),
}


@pytest.mark.parametrize("case", list(DETERMINISM_CASES))
def test_bit_identical_across_calls_and_thread_counts(case):
    kwargs, channels = DETERMINISM_CASES[case]
    rng = np.random.default_rng(len(case))
    layer = deconv3d.Conv3DTranspose(**kwargs, bias_initializer="random_normal")
    shape = (2, 5, 6, 7, channels)
    if layer.data_format == "channels_first":
        shape = (2, channels, 5, 6, 7)
    x = rng.standard_normal(shape).astype(np.float32)
    first = layer(x, num_threads=1)
    for threads in (1, 2, 3, 8, None):
        for _ in range(3):
            np.testing.assert_array_equal(layer(x, num_threads=threads), first,
                                          err_msg=f"num_threads={threads}")
    tolerance = 1e-9 if first.dtype == np.float64 else 1e-2 if first.dtype == np.float16 else 1e-5
    assert relative_error(first, reference_output(layer, x)) < tolerance


def test_portable_micro_kernel_is_deterministic_too():
    """DECONV3D_KERNEL=generic (read at import, hence a subprocess): the same guarantees."""
    code = textwrap.dedent("""
        import numpy as np, deconv3d
        from deconv3d import _core
        from reference import conv3d_transpose, relative_error
        assert _core.micro_kernel == "generic", _core.micro_kernel
        rng = np.random.default_rng(0)
        for dtype, channels in (("float32", 20), ("float64", 40)):
            layer = deconv3d.Conv3DTranspose(19, 3, 2, padding="same", dtype=dtype,
                                             bias_initializer="random_normal")
            x = rng.standard_normal((2, 4, 5, 3, channels))
            first = layer(x, num_threads=1)
            for threads in (2, 3, 8):
                assert np.array_equal(layer(x, num_threads=threads), first), threads
            expected = conv3d_transpose(x, layer.kernel, layer.bias, (2, 2, 2), "same")
            assert relative_error(first, expected) < (1e-5 if dtype == "float32" else 1e-12)
        print("deterministic")
    """)
    tests_dir = os.path.dirname(os.path.abspath(reference.__file__))
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    env = dict(os.environ, DECONV3D_KERNEL="generic",
               PYTHONPATH=os.pathsep.join([package_parent, tests_dir]))
    # run from tests/, not the checkout's root, whose unbuilt deconv3d/ would shadow the package
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tests_dir)
    assert done.returncode == 0 and "deterministic" in done.stdout, done.stdout + done.stderr


# ---------------------------------------------------------------------- the GIL
def long_call_setup(target_seconds=0.3):
    """A layer and input whose single-threaded call takes about target_seconds (or more)."""
    rng = np.random.default_rng(2)
    layer = deconv3d.Conv3DTranspose(48, 3, padding="same")
    batch = 1
    x = rng.standard_normal((batch, 16, 16, 16, 48)).astype(np.float32)
    layer(x, num_threads=1)
    for _ in range(8):
        started = time.perf_counter()
        layer(x, num_threads=1)
        if time.perf_counter() - started >= target_seconds:
            break
        batch *= 2
        x = rng.standard_normal((batch, 16, 16, 16, 48)).astype(np.float32)
    return layer, x


class Counter(threading.Thread):
    """Counts as fast as pure Python can, until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.count += 1


def counter_progress(counter, function):
    """(counter increments during function(), during a 10-switch-interval sleep, seconds)."""
    c0 = counter.count
    time.sleep(10 * sys.getswitchinterval())
    during_sleep = counter.count - c0
    c0 = counter.count
    started = time.perf_counter()
    function()
    seconds = time.perf_counter() - started
    return counter.count - c0, during_sleep, seconds


def test_the_gil_is_released_during_the_computation():
    """A counter thread keeps counting during a long call, as it does during a sleep.

    If the core held the GIL, the counter could run only in the call's short Python
    prologue and epilogue (a switch interval or two); released, it runs for the whole
    call.  The yardstick is the counter's progress while the main thread sleeps for ten
    switch intervals, which needs no assumption about the machine's speed.  A control
    shows the measurement's sensitivity: a C call that holds the GIL (builtin sum over a
    range) of similar length lets the counter advance less than the sleep does.
    """
    layer, x = long_call_setup()
    counter = Counter()
    counter.start()
    try:
        calls, controls = [], []
        for _ in range(3):                      # best of three, against noisy neighbours
            calls.append(counter_progress(counter, lambda: layer(x, num_threads=1)))
            if calls[-1][0] > calls[-1][1]:
                break
        gil_enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
        if gil_enabled:
            n = int(3e7 * min(calls[-1][2], 1.0))
            for _ in range(3):
                controls.append(counter_progress(counter, lambda: sum(range(n))))
                if controls[-1][0] < controls[-1][1]:
                    break
    finally:
        counter.stop = True
        counter.join()
    call, sleep, seconds = calls[-1]
    print(f"\ncounter progress during a {seconds:.2f} s call: {call}; during a "
          f"{10 * sys.getswitchinterval() * 1e3:.0f} ms sleep: {sleep}"
          + (f"; during a {controls[-1][2]:.2f} s GIL-holding sum(): {controls[-1][0]}"
             if controls else ""))
    assert any(c > s for c, s, _ in calls), calls
    assert not controls or any(c < s for c, s, _ in controls), controls


def test_two_threads_compute_in_parallel_and_agree_with_serial_calls(capsys):
    """Two Python threads, one OpenMP thread each: identical results; speed-up reported."""
    layer, x = long_call_setup(target_seconds=0.15)
    x2 = x[::-1].copy()
    expected = [layer(x, num_threads=1), layer(x2, num_threads=1)]
    serial_times, parallel_times = [], []
    for _ in range(3):
        started = time.perf_counter()
        layer(x, num_threads=1)
        layer(x2, num_threads=1)
        serial_times.append(time.perf_counter() - started)
        results = [None, None]
        barrier = threading.Barrier(2)

        def work(i, source):
            barrier.wait()
            results[i] = layer(source, num_threads=1)

        threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate((x, x2))]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        parallel_times.append(time.perf_counter() - started)
        for result, want in zip(results, expected):
            np.testing.assert_array_equal(result, want)
    with capsys.disabled():
        print(f"\ntwo calls, one thread each, on {os.cpu_count()} CPUs: serial "
              f"{min(serial_times):.3f} s, two Python threads {min(parallel_times):.3f} s "
              f"(x{min(serial_times) / min(parallel_times):.2f})")
