"""Time deconv3d's Conv3DTranspose against PyTorch, TensorFlow and ONNX Runtime.

Usage (from the root of a checkout where deconv3d is built or installed)::

    python benchmarks/bench.py                      # every case, 2 threads
    python benchmarks/bench.py --threads 1 --cases seed,unet-mid --repeats 20
    python benchmarks/bench.py --quick              # fewer, shorter repeats
    python benchmarks/bench.py --threads-scaling --cases unet-mid,gan
    python benchmarks/bench.py --isa avx2           # as on a CPU without AVX-512

Every implementation is timed the way a user calls it: an NDHWC float32 NumPy
array goes in, a NumPy array comes out, and whatever wraps the computation (the
layer, the traced tf.function, the ONNX Runtime session) is built beforehand.
Each (implementation, case) pair runs in its own fresh subprocess, so that
thread pools, allocator caches and OpenMP runtimes of one library never affect
another, and so that its peak memory can be read from its own RSS.

Every peer's output is compared with deconv3d's for the same input and weights
(Keras 3 semantics, including the asymmetric "same" crop), so the times compare
the same function.  Nothing here asserts anything about the results: it measures
and reports.  See benchmarks/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

PEERS = ("torch", "tensorflow", "onnxruntime")
IMPLEMENTATIONS = ("deconv3d",) + PEERS
# `--baseline DIR` adds an earlier build of deconv3d (a folder holding its built
# `deconv3d` package), timed in the same run; the child finds it through this variable.
BASELINE = "baseline"
BASELINE_ENV = "DECONV3D_BENCH_BASELINE"
# `--isa` simulates a CPU with fewer instructions for everyone: deconv3d's kernel choice
# and oneDNN's (PyTorch and TensorFlow both honour ONEDNN_MAX_CPU_ISA), set in every child.
ISA_ENVIRONMENT = {
    "avx2": {"DECONV3D_KERNEL": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "generic": {"DECONV3D_KERNEL": "generic", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
# Largest accepted |peer - deconv3d| / max|deconv3d| before a result is flagged.
TOLERANCE = 1e-4
CHILD_TIMEOUT_SECONDS = 1800
# Distributions whose versions go into the report header (first installed name wins).
VERSIONED_PACKAGES = (("numpy",), ("torch",), ("tensorflow", "tensorflow-cpu"), ("onnx",),
                      ("onnxruntime",), ("keras",), ("jax",), ("jaxlib",), ("matplotlib",),
                      ("psutil",), ("threadpoolctl",))


# ---------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One benchmark shape: NDHWC input, filters, cubic kernel, stride, padding, dilation."""

    name: str
    input_shape: tuple
    filters: int
    kernel: int
    stride: int
    padding: str
    dilation: int = 1

    @property
    def in_channels(self) -> int:
        return self.input_shape[-1]

    @property
    def gflop(self) -> float:
        """Multiply-adds of the scatter form counted as 2 FLOPs: 2·N·D·H·W·Cin·F·k³."""
        return 2 * math.prod(self.input_shape) * self.filters * self.kernel ** 3 / 1e9

    def describe(self) -> str:
        dilation = f" d{self.dilation}" if self.dilation != 1 else ""
        shape = "x".join(str(n) for n in self.input_shape)
        return (f"{shape} -> {self.filters}, k{self.kernel} s{self.stride} "
                f"{self.padding}{dilation}")


CASES = (
    Case("seed", (4, 10, 8, 12, 128), 32, 2, 2, "valid"),
    Case("unet-deep", (1, 16, 16, 16, 256), 128, 2, 2, "valid"),
    Case("unet-mid", (1, 32, 32, 32, 128), 64, 2, 2, "valid"),
    Case("unet-top", (1, 64, 64, 64, 64), 32, 2, 2, "valid"),
    Case("overlap", (1, 32, 32, 32, 64), 32, 3, 2, "same"),
    Case("gan", (8, 4, 4, 4, 512), 256, 4, 2, "same"),
    Case("stride1", (2, 32, 32, 32, 32), 32, 3, 1, "same"),
    Case("dilated", (1, 24, 24, 24, 32), 32, 3, 1, "same", dilation=2),
    Case("thin", (1, 64, 64, 64, 1), 8, 3, 2, "same"),
    Case("many-small", (64, 8, 8, 8, 16), 16, 3, 1, "valid"),
    # few filters, as in a decoder's last layers: panels of one vector
    Case("few-filters", (1, 32, 32, 32, 32), 4, 3, 2, "same"),
    Case("one-filter", (1, 64, 64, 64, 16), 1, 2, 2, "valid"),
    # a stride-1 refinement layer with kernel 5
    Case("stride1-k5", (1, 24, 24, 24, 32), 32, 5, 1, "same"),
)
CASES_BY_NAME = {case.name: case for case in CASES}


# ---------------------------------------------------------------------------- Keras geometry
def case_geometry(case: Case) -> list:
    """Per spatial axis, deconv3d's ``shapes.AxisWindow``: Keras's output as a window of the
    full (uncropped) scatter output, with ``back_crop < 0`` meaning zeros appended."""
    shapes = import_deconv3d().shapes
    return [shapes.axis_window(n, case.kernel, case.stride, case.padding, None, case.dilation)
            for n in case.input_shape[1:4]]


def output_shape(case: Case) -> tuple:
    return (case.input_shape[0], *(g.length for g in case_geometry(case)), case.filters)


def output_bytes(case: Case) -> int:
    return math.prod(output_shape(case)) * 4


# ---------------------------------------------------------------------------- inputs
def make_inputs(case: Case):
    """Input, Keras-layout kernel (kd, kh, kw, filters, in) and bias, the same in every process."""
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    x = rng.standard_normal(case.input_shape, dtype=np.float32)
    kernel_shape = (case.kernel,) * 3 + (case.filters, case.in_channels)
    # Scaled like a trained layer so outputs stay O(1) and relative errors mean something.
    scale = 1.0 / math.sqrt(case.in_channels * case.kernel ** 3)
    kernel = rng.standard_normal(kernel_shape, dtype=np.float32) * np.float32(scale)
    bias = rng.standard_normal(case.filters, dtype=np.float32) * np.float32(0.1)
    return x, kernel, bias


# ---------------------------------------------------------------------------- implementations
class PeerUnavailable(Exception):
    """The peer library is not importable, or cannot express this case."""


def optional_import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise PeerUnavailable(f"{module} is not importable ({error})") from None


def import_deconv3d():
    """deconv3d from the environment, else from this checkout (built in place)."""
    try:
        return importlib.import_module("deconv3d")
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))
        return optional_import("deconv3d")


def setup_deconv3d(case: Case, kernel, bias, threads: int) -> Callable:
    deconv3d = import_deconv3d()
    layer = deconv3d.Conv3DTranspose(case.filters, case.kernel, strides=case.stride,
                                     padding=case.padding, dilation_rate=case.dilation,
                                     num_threads=threads)
    layer.build(case.input_shape)
    layer.set_weights([kernel, bias])
    return layer


def torch_padding(case: Case):
    """(padding, output_padding, Keras window) that turn PyTorch's output into Keras's.

    PyTorch crops ``padding`` from both ends and appends ``output_padding``; Keras's
    "same" may crop one more element from the end than from the front, which
    PyTorch cannot express, so the window slices it off afterwards (None when
    PyTorch's output already is Keras's).
    """
    shapes = import_deconv3d().shapes
    padding, output_padding, window, exact = [], [], [slice(None)], True
    for axis in case_geometry(case):
        pad, extra, back_trim = shapes.torch_padding(case.kernel, case.stride, case.padding,
                                                     None, case.dilation)
        if extra >= max(case.stride, case.dilation):
            raise PeerUnavailable(f"PyTorch cannot append {extra} output elements")
        padding.append(pad)
        output_padding.append(extra)
        window.append(slice(0, axis.length))
        exact = exact and back_trim == 0
    return tuple(padding), tuple(output_padding), None if exact else tuple(window + [slice(None)])


def setup_baseline(case: Case, kernel, bias, threads: int) -> Callable:
    """The earlier build named by --baseline: its folder goes first on the path."""
    folder = os.environ.get(BASELINE_ENV)
    if not folder:
        raise PeerUnavailable("no --baseline folder given")
    sys.path.insert(0, folder)
    module = import_deconv3d()
    if not Path(module.__file__).resolve().is_relative_to(Path(folder).resolve()):
        raise PeerUnavailable(f"deconv3d came from {module.__file__}, not from {folder}")
    return setup_deconv3d(case, kernel, bias, threads)


def setup_torch(case: Case, kernel, bias, threads: int) -> Callable:
    import numpy as np

    torch = optional_import("torch")
    torch.set_num_threads(threads)
    padding, output_padding, keras_window = torch_padding(case)
    # PyTorch's transposed-conv weight is (in, out, kd, kh, kw).
    weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
    weight = weight.contiguous(memory_format=torch.channels_last_3d)
    bias_tensor = torch.from_numpy(bias.copy())
    conv_transpose3d = torch.nn.functional.conv_transpose3d

    def run(x):
        with torch.inference_mode():
            # An NDHWC array permuted to NCDHW is exactly channels_last_3d: no copy.
            inputs = torch.from_numpy(x).permute(0, 4, 1, 2, 3)
            y = conv_transpose3d(inputs, weight, bias_tensor, case.stride, padding,
                                 output_padding, 1, case.dilation)
            y = y.contiguous(memory_format=torch.channels_last_3d)  # no-op when already so
            out = y.permute(0, 2, 3, 4, 1).numpy()
        # The slice is a view: the peer is not charged for a copy deconv3d never makes.
        return out if keras_window is None else out[keras_window]

    return run


def setup_tensorflow(case: Case, kernel, bias, threads: int) -> Callable:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = optional_import("tensorflow")
    # Must precede the first TF op, or TF ignores it.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    # tf.nn.conv3d_transpose takes the Keras kernel layout as is; SAME/VALID with
    # Keras's output shape is what Keras's own TensorFlow backend does.
    kernel_tensor = tf.constant(kernel)
    bias_tensor = tf.constant(bias)
    shape = list(output_shape(case))

    @tf.function(input_signature=[tf.TensorSpec(case.input_shape, tf.float32)])
    def forward(inputs):
        y = tf.nn.conv3d_transpose(inputs, kernel_tensor, output_shape=shape,
                                   strides=case.stride, padding=case.padding.upper(),
                                   dilations=case.dilation)
        return tf.nn.bias_add(y, bias_tensor)

    forward.get_concrete_function()  # trace now, not inside the timed calls

    def run(x):
        return forward(tf.convert_to_tensor(x)).numpy()

    return run


def onnx_pads(case: Case):
    """ConvTranspose (pads, output_padding) equal to Keras: explicit, asymmetric."""
    geometry = case_geometry(case)
    begins = [axis.front_crop for axis in geometry]
    ends = [max(axis.back_crop, 0) for axis in geometry]
    output_padding = [max(-axis.back_crop, 0) for axis in geometry]
    return begins + ends, output_padding


def build_onnx_model(case: Case, kernel, bias):
    """NDHWC in, NDHWC out: Transpose -> ConvTranspose (NCDHW) -> Transpose."""
    import numpy as np

    onnx = optional_import("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    pads, output_padding = onnx_pads(case)
    weight = numpy_helper.from_array(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)), "W")
    bias_init = numpy_helper.from_array(bias, "B")
    nodes = [
        helper.make_node("Transpose", ["X"], ["X_ncdhw"], perm=[0, 4, 1, 2, 3]),
        helper.make_node("ConvTranspose", ["X_ncdhw", "W", "B"], ["Y_ncdhw"],
                         kernel_shape=[case.kernel] * 3, strides=[case.stride] * 3,
                         dilations=[case.dilation] * 3, pads=pads,
                         output_padding=output_padding),
        helper.make_node("Transpose", ["Y_ncdhw"], ["Y"], perm=[0, 2, 3, 4, 1]),
    ]
    float32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "conv3d_transpose_ndhwc",
        [helper.make_tensor_value_info("X", float32, list(case.input_shape))],
        [helper.make_tensor_value_info("Y", float32, list(output_shape(case)))],
        initializer=[weight, bias_init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any onnxruntime that knows opset 17
    onnx.checker.check_model(model)
    return model


def setup_onnxruntime(case: Case, kernel, bias, threads: int) -> Callable:
    ort = optional_import("onnxruntime")
    model = build_onnx_model(case, kernel, bias)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])

    def run(x):
        return session.run(["Y"], {"X": x})[0]

    return run


SETUPS: Dict[str, Callable] = {
    BASELINE: setup_baseline,
    "deconv3d": setup_deconv3d,
    "torch": setup_torch,
    "tensorflow": setup_tensorflow,
    "onnxruntime": setup_onnxruntime,
}


# ---------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class TimingPolicy:
    """How many calls to time: a fixed count, or enough to fill a time budget."""

    warmup_calls: int
    min_repeats: int
    max_repeats: int
    target_seconds: float
    fixed_repeats: Optional[int] = None

    def repeats_for(self, seconds_per_call: float) -> int:
        if self.fixed_repeats:
            return self.fixed_repeats
        wanted = math.ceil(self.target_seconds / max(seconds_per_call, 1e-9))
        return max(self.min_repeats, min(self.max_repeats, wanted))


def timing_policy(args) -> TimingPolicy:
    if args.quick:
        return TimingPolicy(1, 3, 100, 0.3, args.repeats)
    return TimingPolicy(2, 5, 400, 1.5, args.repeats)


def time_calls(run: Callable, x, policy: TimingPolicy) -> dict:
    """Median wall time of run(x) after warm-up; each result is dropped at once."""
    for _ in range(policy.warmup_calls):
        run(x)
    start = time.perf_counter()
    run(x)
    repeats = policy.repeats_for(time.perf_counter() - start)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        seconds.append(time.perf_counter() - start)
    ms = [s * 1e3 for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
            "repeats": repeats, "times_ms": [round(t, 5) for t in ms]}


def rss_reader() -> Optional[Callable[[], int]]:
    """A cheap function returning this process's resident set size in bytes."""
    try:
        import psutil

        process = psutil.Process()
        return lambda: process.memory_info().rss
    except ImportError:
        pass
    if os.path.exists("/proc/self/statm"):
        page = os.sysconf("SC_PAGE_SIZE")

        def from_statm() -> int:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * page
        return from_statm
    return None


def max_rss_bytes() -> int:
    """Lifetime peak RSS (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakMemoryWatcher:
    """Peak RSS while a block runs, above the RSS when it started.

    A sampling thread catches peaks below the process's earlier high-water mark
    (imports often set one); ru_maxrss catches short spikes the sampler misses,
    whenever they rise above that mark.  One RSS read costs ~15 us, so sampling
    every 5 ms takes well under 1% of a core from the calls being timed.
    """

    def __init__(self, interval_seconds: float = 0.005):
        self.interval = interval_seconds
        self.read_rss = rss_reader()
        self.extra_bytes: Optional[int] = None

    def __enter__(self):
        gc.collect()
        self.baseline = self.read_rss() if self.read_rss else max_rss_bytes()
        self.peak = self.baseline
        self.max_rss_before = max_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if self.read_rss:
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.read_rss())

    def __exit__(self, *exc_info):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        max_rss_after = max_rss_bytes()
        if max_rss_after > self.max_rss_before:
            self.peak = max(self.peak, max_rss_after)
        self.extra_bytes = max(0, self.peak - self.baseline)
        return False


def compare_outputs(y, reference) -> dict:
    """max|y - ref| / max|ref|, the number every peer is judged by."""
    import numpy as np

    if tuple(y.shape) != tuple(reference.shape):
        return {"ok": False, "shape": list(y.shape), "reference_shape": list(reference.shape)}
    max_abs_diff = float(np.max(np.abs(y - reference)))
    max_abs_ref = float(np.max(np.abs(reference)))
    relative = max_abs_diff / max_abs_ref if max_abs_ref else max_abs_diff
    return {"ok": relative <= TOLERANCE, "max_abs_diff": max_abs_diff,
            "max_abs_ref": max_abs_ref, "relative": relative}


def measure_implementation(impl: str, case: Case, threads: int, policy: TimingPolicy,
                           save: Callable[[dict], None]) -> dict:
    """Setup, time (watching memory), then check the output against deconv3d's.

    The timing is saved before the check, so that a reference that crashes the
    process still leaves the peer's numbers behind.
    """
    x, kernel, bias = make_inputs(case)
    run = SETUPS[impl](case, kernel, bias, threads)
    with PeakMemoryWatcher() as memory:
        timing = time_calls(run, x, policy)
    result = {"status": "ok", **timing, "peak_extra_mib": memory.extra_bytes / 2 ** 20}
    y = run(x)
    result["output_c_contiguous"] = bool(y.flags.c_contiguous)
    if impl not in ("deconv3d", BASELINE):
        save({**result, "check": {"ok": False, "error": "deconv3d reference did not finish"}})
        reference = setup_deconv3d(case, kernel, bias, threads)(x)
        result["check"] = compare_outputs(y, reference)
    return result


def measure_matmul_peak(threads: int, size: int) -> dict:
    """float32 GEMM GFLOP/s of NumPy's BLAS with this many threads: the compute roof."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    with BlasThreadLimit(threads) as blas:
        np.matmul(a, b, out=out)
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            seconds.append(time.perf_counter() - start)
    best = statistics.median(seconds)
    return {"gflops": 2 * size ** 3 / best / 1e9, "size": size, "blas": blas}


class BlasThreadLimit:
    """threadpoolctl's limit when it is installed; the env vars set by the parent otherwise."""

    def __init__(self, threads: int):
        self.threads = threads
        self._limits = None

    def __enter__(self) -> str:
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:
            return "unknown (threadpoolctl missing)"
        self._limits = threadpool_limits(limits=self.threads, user_api="blas")
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        return ", ".join(f"{p['internal_api']} {p.get('version')}" for p in blas) or "none"

    def __exit__(self, *exc_info):
        if self._limits is not None:
            self._limits.restore_original_limits()
        return False


def measure_write_bandwidth(nbytes: int) -> dict:
    """GB/s of ndarray.fill (one thread, streaming writes): the memory roof for outputs."""
    import numpy as np

    buffer = np.empty(nbytes // 4, dtype=np.float32)
    buffer.fill(0.0)  # fault every page in before timing
    seconds = []
    for value in range(5):
        start = time.perf_counter()
        buffer.fill(float(value))
        seconds.append(time.perf_counter() - start)
    return {"gbps": nbytes / statistics.median(seconds) / 1e9, "bytes": nbytes}


def measure_machine_limits(threads: int, quick: bool) -> dict:
    return {"matmul": measure_matmul_peak(threads, 2048 if quick else 4096),
            "write": measure_write_bandwidth(2 ** 28 if quick else 2 ** 30)}


# ---------------------------------------------------------------------------- child process
def run_child(args) -> int:
    """Entry point of `--child IMPL CASE` and `--child machine`: write a JSON result file."""
    what = args.child[0]

    def save(result: dict) -> None:
        Path(args.result_file).write_text(json.dumps(result))

    try:
        if what == "machine":
            result = {"status": "ok", **measure_machine_limits(args.threads, args.quick)}
        else:
            result = measure_implementation(what, CASES_BY_NAME[args.child[1]], args.threads,
                                            timing_policy(args), save)
    except PeerUnavailable as error:
        result = {"status": "skipped", "reason": str(error)}
    except Exception as error:  # a peer failing is a result to report, not a crash
        traceback.print_exc()
        # relative paths: a report names nothing of the machine it ran on
        reason = f"{type(error).__name__}: {error}".replace(f"{REPO_ROOT}{os.sep}", "")
        result = {"status": "failed", "reason": reason}
    save(result)
    return 0


def child_environment(threads: int, baseline: Optional[str] = None,
                      isa: Optional[str] = None) -> dict:
    """Every runtime pinned to the same thread count (and instruction set, with --isa);
    TF's startup chatter silenced."""
    env = dict(os.environ)
    if baseline:
        env[BASELINE_ENV] = str(Path(baseline).resolve())
    env.update(ISA_ENVIRONMENT.get(isa, {}))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_in_subprocess(child_args: Sequence[str], threads: int, args) -> dict:
    """Run this script as `--child ...` in a fresh interpreter; return its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--child", *child_args,
                   "--threads", str(threads), "--result-file", str(result_file)]
        if args.repeats:
            command += ["--repeats", str(args.repeats)]
        if args.quick:
            command.append("--quick")
        try:
            env = child_environment(threads, args.baseline, args.isa)
            process = subprocess.run(command, env=env,
                                     timeout=CHILD_TIMEOUT_SECONDS, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {CHILD_TIMEOUT_SECONDS} s"}
        if result_file.exists():
            return json.loads(result_file.read_text())
        return {"status": "failed", "reason": describe_exit(process)}


def describe_exit(process: subprocess.CompletedProcess) -> str:
    """Exit code (or signal, e.g. SIGSEGV) and the last lines of stderr of a dead child."""
    code = process.returncode
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    tail = " | ".join(process.stderr.strip().splitlines()[-3:])
    return f"{how}: {tail}" if tail else how


# ---------------------------------------------------------------------------- analysis
def best_peer(results: dict) -> Optional[str]:
    """Fastest peer whose output matched deconv3d's (a mismatching peer computes something else)."""
    usable = [p for p in PEERS if results.get(p, {}).get("status") == "ok"
              and results[p].get("check", {}).get("ok")]
    return min(usable, key=lambda p: results[p]["median_ms"]) if usable else None


def useful_gflop(case: Case) -> float:
    """Multiply-adds (2 FLOPs each) of taps that reach a kept output voxel: per axis, the
    (input, tap) pairs landing inside Keras's window of the uncropped output."""
    pairs = 1
    for n, window in zip(case.input_shape[1:4], case_geometry(case)):
        end = window.front_crop + window.length
        pairs *= sum(1 for i in range(n) for t in range(case.kernel)
                     if window.front_crop <= i * case.stride + t * case.dilation < end)
    return 2 * case.input_shape[0] * pairs * case.in_channels * case.filters / 1e9


def bytes_moved(case: Case) -> int:
    """The least memory traffic: input and kernel read once, output written once."""
    weights = case.kernel ** 3 * case.in_channels * case.filters
    return (math.prod(case.input_shape) + weights) * 4 + output_bytes(case)


def roofline_limits_ms(case: Case, limits: dict) -> dict:
    """Least time any implementation could take under each roof: the useful multiply-adds
    at the GEMM rate, and the bytes moved at the write bandwidth of the same run."""
    return {"compute": useful_gflop(case) / limits["matmul_gflops"] * 1e3,
            "memory": bytes_moved(case) / 1e9 / limits["write_gbps"] * 1e3}


def summarize_case(case: Case, results: dict, limits: dict) -> dict:
    ours = results.get("deconv3d", {})
    peer = best_peer(results)
    roofs = roofline_limits_ms(case, limits)
    bound = max(roofs, key=roofs.get)
    summary = {"case": case.name, "spec": case.describe(), "gflop": case.gflop,
               "useful_gflop": useful_gflop(case), "bytes_moved": bytes_moved(case),
               "output_shape": list(output_shape(case)), "output_bytes": output_bytes(case),
               "results": results, "best_peer": peer, "ratio": None, "roofline_ms": roofs,
               "bound": bound, "roofline_limit_ms": roofs[bound], "roofline_fraction": None}
    if ours.get("status") == "ok":
        summary["roofline_fraction"] = summary["roofline_limit_ms"] / ours["median_ms"]
        if peer:
            summary["ratio"] = ours["median_ms"] / results[peer]["median_ms"]
    return summary


def geometric_mean(values: Sequence[float]) -> Optional[float]:
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def best_limits(measurements: Sequence[dict]) -> dict:
    """The highest roofs seen: on a shared machine a low reading means interference."""
    ok = [m for m in measurements if m.get("status") == "ok"]
    if not ok:
        return {"matmul_gflops": float("nan"), "write_gbps": float("nan")}
    return {"matmul_gflops": max(m["matmul"]["gflops"] for m in ok),
            "write_gbps": max(m["write"]["gbps"] for m in ok),
            "blas": ok[0]["matmul"]["blas"], "matmul_size": ok[0]["matmul"]["size"],
            "write_bytes": ok[0]["write"]["bytes"]}


# ---------------------------------------------------------------------------- run metadata
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for names in VERSIONED_PACKAGES:
        versions[names[0]] = next((v for v in map(distribution_version, names) if v), None)
    try:
        versions["deconv3d"] = import_deconv3d().__version__
    except (PeerUnavailable, AttributeError):
        versions["deconv3d"] = None
    return versions


def distribution_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_revision() -> Optional[str]:
    """Commit of the checkout deconv3d is imported from, '+dirty' with local changes.

    Asked of the imported package, not of this script: the two may differ.
    """
    try:
        source = Path(import_deconv3d().__file__).resolve().parent.parent

        def git(*words):
            return subprocess.run(["git", "-C", str(source), *words], capture_output=True,
                                  text=True, check=True).stdout.strip()
        dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
        return git("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.CalledProcessError, PeerUnavailable):
        return None


def run_metadata(threads: int) -> dict:
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu_model": cpu_model(), "logical_cpus": os.cpu_count(),
            "usable_cpus": usable_cpus(), "threads": threads,
            "platform": platform.platform(), "git_revision": git_revision(),
            "versions": library_versions(), "load_average_start": load_average()}


def describe_baseline(folder: Optional[str]) -> Optional[str]:
    """The baseline build by its commit (or folder name): the report names no local path."""
    if not folder:
        return None
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"commit {commit}" if commit else Path(folder).name


def load_average() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------------------- report
def format_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.0f}"
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}" if ms >= 1 else f"{ms:.3f}"


def format_rate(gflops: float) -> str:
    return f"{gflops:.0f}" if gflops >= 10 else f"{gflops:.1f}" if gflops >= 1 else f"{gflops:.2f}"


def result_cells(result: dict, gflop: float) -> List[str]:
    """(ms, GFLOP/s, MiB) cells of one implementation on one case."""
    if result.get("status") != "ok":
        return [result.get("status", "missing"), "", ""]
    flag = "" if result.get("check", {"ok": True}).get("ok") else " ⚠"
    return [format_ms(result["median_ms"]) + flag,
            format_rate(gflop / (result["median_ms"] / 1e3)),
            f"{result['peak_extra_mib']:.0f}"]


def implementations(baseline, peers: Sequence[str] = PEERS) -> tuple:
    """deconv3d, the baseline build when there is one, then the peers asked for."""
    return ("deconv3d",) + ((BASELINE,) if baseline else ()) + tuple(peers)


def measured_implementations(summaries: Sequence[dict]) -> tuple:
    """The implementations a run measured, in the usual order."""
    return tuple(impl for impl in ("deconv3d", BASELINE) + PEERS
                 if any(impl in s["results"] for s in summaries))


def baseline_ratio(summary: dict) -> Optional[float]:
    """deconv3d ms / baseline ms on one case (below 1: this build is faster)."""
    ours, theirs = (summary["results"].get(impl, {}) for impl in ("deconv3d", BASELINE))
    if ours.get("status") == "ok" and theirs.get("status") == "ok":
        return ours["median_ms"] / theirs["median_ms"]
    return None


def results_table(summaries: Sequence[dict]) -> List[str]:
    impls = measured_implementations(summaries)
    with_baseline = BASELINE in impls
    header = ["case", "GFLOP"]
    for impl in impls:
        header += [f"{impl} ms", f"{impl} GFLOP/s", f"{impl} MiB"]
    header += ["best peer", "ratio", "useful GFLOP", "bound", "roofline"]
    header += ["vs baseline"] if with_baseline else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        row = [s["case"], f"{s['gflop']:.3g}"]
        for impl in impls:
            row += result_cells(s["results"].get(impl, {}), s["gflop"])
        row += [s["best_peer"] or "–",
                f"{s['ratio']:.2f}" if s["ratio"] else "–",
                f"{s['useful_gflop']:.3g}", s["bound"],
                f"{s['roofline_fraction']:.0%}" if s["roofline_fraction"] else "–"]
        if with_baseline:
            ratio = baseline_ratio(s)
            row.append(f"{ratio:.3f}" if ratio else "–")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def check_table(summaries: Sequence[dict]) -> List[str]:
    """max|peer - deconv3d| / max|deconv3d| per case and peer."""
    lines = ["| case | " + " | ".join(PEERS) + " |", "|---|" + "---|" * len(PEERS)]
    for s in summaries:
        cells = []
        for peer in PEERS:
            result = s["results"].get(peer, {})
            check = result.get("check")
            if result.get("status") != "ok" or check is None:
                cells.append(result.get("status", "–"))
            elif "error" in check:
                cells.append(f"not checked ({check['error']}) ⚠")
            elif "relative" not in check:
                cells.append(f"shape {check['shape']} ≠ {check['reference_shape']} ⚠")
            else:
                cells.append(f"{check['relative']:.1e}" + ("" if check["ok"] else " ⚠"))
        lines.append(f"| {s['case']} | " + " | ".join(cells) + " |")
    return lines


def case_table(summaries: Sequence[dict]) -> List[str]:
    lines = ["| case | input -> filters, kernel, stride, padding | output shape |", "|---|---|---|"]
    lines += [f"| {s['case']} | {s['spec']} | {'x'.join(map(str, s['output_shape']))} |"
              for s in summaries]
    return lines


def skipped_notes(summaries: Sequence[dict]) -> List[str]:
    """One line per implementation that did not run, with the reason it gave."""
    reasons = {}
    for s in summaries:
        for impl, result in s["results"].items():
            if result.get("status") in ("skipped", "failed"):
                key = (impl, result["status"], result.get("reason", ""))
                reasons.setdefault(key, []).append(s["case"])
    return [f"- {impl} {status} on {', '.join(cases)}: {reason}"
            for (impl, status, reason), cases in reasons.items()]


def busy_machine_note(meta: dict) -> List[str]:
    """A warning line when other work competed for the cores during the run.

    The reading at the end includes the benchmark's own threads (each case keeps
    `threads` cores busy for minutes), so only the load beyond them counts as other work.
    """
    start, end = meta.get("load_average_start"), meta.get("load_average_end")
    others = []
    if start:
        others.append(start[0])
    if end:
        others.append(max(0.0, end[0] - meta.get("threads", 0)))
    if not others or max(others) <= 0.5 * meta["usable_cpus"]:
        return []
    return [f"- ⚠ Busy machine: besides the benchmark's own {meta.get('threads')} thread(s), "
            f"the 1-minute load average reached {max(others):.2f} on {meta['usable_cpus']} "
            "usable CPUs, so other work shared the cores: times are slower and noisier than "
            "on an idle machine, and the roofs read low (a roofline fraction may then exceed "
            "100%)."]


def baseline_note(report: dict) -> List[str]:
    """The baseline comparison's summary line, when the run had one."""
    ratios = [baseline_ratio(s) for s in report["cases"]]
    if not any(ratios):
        return []
    worst = max(r for r in ratios if r)
    return [f"**This build against the baseline ({report['meta'].get('baseline')}): "
            f"geometric mean {geometric_mean(ratios):.3f}, slowest case {worst:.3f}** "
            "(deconv3d ms / baseline ms)", ""]


def isa_note(meta: dict) -> List[str]:
    """The --isa simulation, in the header: every number below depends on it."""
    isa = meta.get("isa")
    if not isa:
        return []
    settings = ", ".join(f"{k}={v}" for k, v in ISA_ENVIRONMENT[isa].items())
    return [f"- Instruction set: {isa} simulated for every implementation ({settings})"]


def markdown_report(report: dict) -> str:
    meta, limits, summaries = report["meta"], report["limits"], report["cases"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    missing = ", ".join(k for k, v in meta["versions"].items() if not v)
    geomean = report["geomean_ratio"]
    lines = [
        f"# deconv3d benchmark: {meta['date'][:10]}, {meta['threads']} thread(s)", "",
        f"- Machine: {meta['cpu_model']}, {meta['logical_cpus']} logical CPUs "
        f"({meta['usable_cpus']} usable), {meta['platform']}",
        f"- Threads: {meta['threads']} for every implementation and for the GEMM peak",
        *isa_note(meta),
        f"- Date: {meta['date']}; load average at start {meta['load_average_start']}, "
        f"at end {meta.get('load_average_end')}",
        f"- deconv3d {meta['versions'].get('deconv3d')}, "
        + (f"commit {meta['git_revision']}" if meta["git_revision"] else "not from a git checkout"),
        f"- Versions: {versions}" + (f" (not installed: {missing})" if missing else ""),
        f"- Roofs: float32 GEMM {limits['matmul_gflops']:.1f} GFLOP/s "
        f"({limits.get('matmul_size')}², {limits.get('blas')}), memory write "
        f"{limits['write_gbps']:.1f} GB/s "
        f"(ndarray.fill on {limits.get('write_bytes', 0) / 2**30:g} GiB, 1 thread)",
        f"- Timing: {report['timing']}",
        f"- Total run time: {report['total_seconds']:.0f} s",
        *busy_machine_note(meta), "",
        "Median ms per call and GFLOP/s per implementation, peak extra memory (MiB) during "
        "the calls; ratio = deconv3d ms / best peer ms (below 1: deconv3d is faster); "
        "useful GFLOP counts only taps that reach a kept output voxel; bound = the binding "
        "roof, compute (useful GFLOP at the GEMM rate) or memory (input and kernel read and "
        "output written once, at the write bandwidth); roofline = fraction of that limit "
        "deconv3d reaches. "
        "⚠ marks an output that differs from deconv3d's.", "",
        *results_table(summaries), "",
        f"**Geometric mean of the ratios: {geomean:.2f}**" if geomean else
        "**Geometric mean of the ratios: – (no peer ran)**", "",
        *baseline_note(report),
        "## Output check", "",
        f"max |peer − deconv3d| / max |deconv3d|, flagged ⚠ above {TOLERANCE:g}.", "",
        *check_table(summaries), "",
        "## Cases", "", *case_table(summaries), "",
    ]
    notes = skipped_notes(summaries)
    if notes:
        lines += ["## Skipped or failed", "", *notes, ""]
    return "\n".join(lines)


def save_plot(summaries: Sequence[dict], limits: dict, title: str, path: Path) -> bool:
    """Grouped bars of GFLOP/s per case and implementation; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    impls = measured_implementations(summaries)
    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(summaries)), 5))
    rates = []
    for i, impl in enumerate(impls):
        heights = []
        for s in summaries:
            result = s["results"].get(impl, {})
            ok = result.get("status") == "ok"
            heights.append(s["gflop"] / (result["median_ms"] / 1e3) if ok else 0.0)
        rates += [h for h in heights if h > 0]
        ax.bar([c + (i - (len(impls) - 1) / 2) * width for c in range(len(summaries))],
               heights, width, label=impl)
    if math.isfinite(limits["matmul_gflops"]):
        ax.axhline(limits["matmul_gflops"], color="grey", linestyle="--", linewidth=1,
                   label="float32 GEMM peak")
    if rates and max(rates) / min(rates) > 30:
        ax.set_yscale("log")
    ax.set_xticks(range(len(summaries)), [s["case"] for s in summaries], rotation=30)
    ax.set_ylabel("GFLOP/s (higher is better)")
    ax.set_title(title)
    # Below the axes, so that no bar hides behind it.
    ax.legend(fontsize="small", ncol=len(impls) + 1, loc="upper center",
              bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------- parent runs
def selected_cases(spec: Optional[str]) -> List[Case]:
    if not spec:
        return list(CASES)
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [n for n in names if n not in CASES_BY_NAME]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {list(CASES_BY_NAME)}")
    return [CASES_BY_NAME[n] for n in names]


def describe_timing(args) -> str:
    policy = timing_policy(args)
    if policy.fixed_repeats:
        count = f"{policy.fixed_repeats} timed calls"
    else:
        count = (f"as many calls as fill {policy.target_seconds:g} s "
                 f"(at least {policy.min_repeats}, at most {policy.max_repeats})")
    return (f"median of {count} after {policy.warmup_calls + 1} warm-up call(s); "
            "each implementation and case in a fresh process")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_limits_in_child(args) -> dict:
    limits = run_in_subprocess(["machine"], args.threads, args)
    if limits.get("status") == "ok":
        log(f"roofs: GEMM {limits['matmul']['gflops']:.1f} GFLOP/s, "
            f"write {limits['write']['gbps']:.1f} GB/s")
    else:
        log(f"roof measurement {limits.get('status')}: {limits.get('reason')}")
    return limits


def measure_all(cases: Sequence[Case], args) -> Dict[str, dict]:
    """{case: {impl: child result}}, one subprocess per pair."""
    results = {}
    impls = implementations(args.baseline, args.peers)
    total, done = len(cases) * len(impls), 0
    for case in cases:
        results[case.name] = {}
        for impl in impls:
            done += 1
            result = run_in_subprocess([impl, case.name], args.threads, args)
            results[case.name][impl] = result
            log(f"[{done}/{total}] {case.name:<10} {impl:<12} {progress_text(result)}")
    return results


def progress_text(result: dict) -> str:
    if result.get("status") != "ok":
        return f"{result.get('status')}: {result.get('reason')}"
    text = (f"{result['median_ms']:.3f} ms ({result['repeats']} calls), "
            f"+{result['peak_extra_mib']:.0f} MiB")
    check = result.get("check")
    if check is not None:
        text += f", check {check.get('relative', check.get('error', 'shape mismatch'))}"
    return text


def run_full(args) -> None:
    started = time.perf_counter()
    cases = selected_cases(args.cases)
    meta = run_metadata(args.threads)
    meta["baseline"] = describe_baseline(args.baseline)
    meta["isa"] = args.isa
    limit_runs = [measure_limits_in_child(args)]
    measured = measure_all(cases, args)
    if not args.quick:  # a second reading, in case the first met a busy neighbour
        limit_runs.append(measure_limits_in_child(args))
    limits = best_limits(limit_runs)
    summaries = [summarize_case(case, measured[case.name], limits) for case in cases]
    meta["load_average_end"] = load_average()
    report = {"meta": meta, "timing": describe_timing(args), "limits": limits,
              "limit_measurements": limit_runs, "tolerance": TOLERANCE, "cases": summaries,
              "geomean_ratio": geometric_mean([s["ratio"] for s in summaries]),
              "total_seconds": time.perf_counter() - started}
    write_report(report, Path(args.out), args.threads, args.isa)


def write_report(report: dict, out_dir: Path, threads: int, isa: Optional[str] = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report['meta']['date'][:10]}-{threads}t" + (f"-{isa}" if isa else "")
    markdown = markdown_report(report)
    (out_dir / f"{stem}.md").write_text(markdown)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    written = [f"{stem}.md", f"{stem}.json"]
    title = f"Conv3DTranspose, {threads} thread(s), {report['meta']['cpu_model']}"
    if save_plot(report["cases"], report["limits"], title, out_dir / f"{stem}.png"):
        written.append(f"{stem}.png")
    else:
        log("matplotlib is not importable: no plot")
    print(markdown)
    log(f"wrote {', '.join(written)} in {out_dir}")


def run_threads_scaling(args) -> None:
    """deconv3d alone at 1 and 2 threads (and --threads, if more): time and speedup."""
    counts = sorted({1, 2, args.threads})
    header = "| case | " + " | ".join(f"{n}t ms" for n in counts) + " | " + \
        " | ".join(f"speedup {n}t" for n in counts[1:]) + " |"
    lines = [header, "|---|" + "---|" * (2 * len(counts) - 1)]
    for case in selected_cases(args.cases):
        ms = {}
        for n in counts:
            result = run_in_subprocess(["deconv3d", case.name], n, args)
            ms[n] = result["median_ms"] if result.get("status") == "ok" else None
            log(f"{case.name:<10} {n} thread(s): {progress_text(result)}")
        times = [format_ms(ms[n]) if ms[n] else "failed" for n in counts]
        speedups = [f"{ms[1] / ms[n]:.2f}x" if ms[1] and ms[n] else "–" for n in counts[1:]]
        lines.append(f"| {case.name} | " + " | ".join(times + speedups) + " |")
    print("\n".join(lines))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for every implementation (default 2)")
    parser.add_argument("--cases", help=f"comma-separated subset of {', '.join(CASES_BY_NAME)}")
    parser.add_argument("--repeats", type=int,
                        help="fixed number of timed calls (default: adaptive, about 1.5 s)")
    parser.add_argument("--quick", action="store_true",
                        help="shorter budget (0.3 s, at least 3 calls), smaller roof measurements")
    parser.add_argument("--out", default=str(BENCH_DIR / "results"),
                        help="folder for the .md, .json and .png (default benchmarks/results)")
    parser.add_argument("--threads-scaling", action="store_true",
                        help="time deconv3d alone at 1 and 2 threads and print the speedup")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also time the deconv3d built in DIR (a folder holding its "
                             "`deconv3d` package), e.g. a worktree of an earlier commit built "
                             "in place, and report this build's time against it")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated peers to time (default {','.join(PEERS)}; "
                             "'none' for deconv3d alone, e.g. against --baseline)")
    parser.add_argument("--isa", choices=sorted(ISA_ENVIRONMENT),
                        help="simulate a CPU with only this instruction set for every "
                             "implementation (DECONV3D_KERNEL for deconv3d, ONEDNN_MAX_CPU_ISA "
                             "for PyTorch and TensorFlow); named in the report and its file name")
    parser.add_argument("--child", nargs="+", metavar="IMPL CASE", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.peers = [] if args.peers == "none" else args.peers.split(",")
    if set(args.peers) - set(PEERS):
        parser.error(f"--peers takes names among {', '.join(PEERS)}, or none")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    if args.threads_scaling:
        run_threads_scaling(args)
    else:
        run_full(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
