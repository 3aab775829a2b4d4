"""The fuzz worker: runs one batch of cases in its own process and prints a summary.

Every case must end in exactly one of

* success, every call's output matching the NumPy reference (oracle.py) --
  NaN positions exactly, for inputs holding NaN and infinities;
* ValueError or TypeError whose message names the offending argument ("input" for call
  inputs, "weight" for set_weights); for sizes, the allocation check's refusal ("... would
  have shape ..., more than this machine's memory") also counts;
* a known library bug (oracle.KNOWN_BUGS), recognised by the oracle and counted;

and never a crash, a hang, another exception class, or a warning.

A worker runs 1,000 cases in a subprocess of pytest (test_fuzz.py), so that a
segfault or an abort fails one test naming the case instead of killing pytest.
faulthandler kills a worker whose case runs for more than CASE_TIMEOUT seconds (a
hang), and the worker runs under an address-space limit, so that a runaway
allocation becomes a MemoryError (a failure) instead of exhausting the machine.
Cases with astronomically large sizes (outputs of petabytes) additionally run
under tracemalloc and must be refused before NumPy allocates more than
HUGE_BUDGET bytes.

Run one batch by hand:   python tests/fuzz/worker.py --worker 3 [--verbose]
Show one case:           python tests/fuzz/worker.py --show 3 417
"""

import argparse
import faulthandler
import json
import math
import numbers
import os
import sys
import tempfile
import time
import tracemalloc
import warnings

import numpy as np

from generator import CASES_PER_BATCH, make_case
from oracle import check_call

# seconds: a case this slow is a hang.  Nearly all take milliseconds, but the naive
# reference for a 10,000-tap kernel axis (batch 7, case 454) takes about 30 s on a
# 2-core machine, and more while the other worker shares the cores.
CASE_TIMEOUT = 300
HUGE_BUDGET = 64 << 20       # bytes NumPy may allocate while refusing a petabyte output
ADDRESS_SPACE_HEADROOM = 6 << 30
SANITIZER = os.environ.get("DECONV3D_SANITIZER", "")   # set by tests/sanitize.sh
# the folder holding reference.py, which the oracle imports
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


KEYWORDS = {
    "inputs": ("input",),
    "input_shape": ("input_shape", "input"),
    "weights": ("weight",),
    # the catalogues of Keras objects name the family (tests/test_keras_errors.py)
    "kernel_initializer": ("kernel_initializer", "initializer"),
    "bias_initializer": ("bias_initializer", "initializer"),
    "kernel_regularizer": ("kernel_regularizer", "regularizer"),
    "bias_regularizer": ("bias_regularizer", "regularizer"),
    "activity_regularizer": ("activity_regularizer", "regularizer"),
    "kernel_constraint": ("kernel_constraint", "constraint"),
    "bias_constraint": ("bias_constraint", "constraint"),
}
SIZE_ARGUMENTS = {"filters", "kernel_size", "strides", "dilation_rate", "output_padding",
                  "inputs", "input_shape"}
RESOURCE_PHRASE = "would have shape"       # the layer's allocation check


def names_a_suspect(message, suspects):
    text = message.lower()
    for suspect in suspects:
        if any(word.lower() in text for word in KEYWORDS.get(suspect, (suspect,))):
            return True
        if suspect in SIZE_ARGUMENTS and RESOURCE_PHRASE in text:
            return True
    return False


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def run_step(layer, step):
    kind = step[0]
    if kind == "build":
        layer.build(step[1])
        return None
    if kind == "set_weights":
        layer.set_weights(step[1])
        return None
    if kind == "compute_output_shape":
        shape = layer.compute_output_shape(step[1])
        concrete = tuple(step[1])
        if all(is_int(v) for v in concrete) and all(is_int(v) for v in shape) \
                and max(shape) < 64 and math.prod(shape) < 10 ** 6:
            # a concrete small shape: the call must give exactly that shape
            produced = layer(np.zeros(tuple(int(v) for v in concrete), np.float32)).shape
            assert list(produced) == list(shape), (produced, shape)
        return None
    x, kwargs = step[1], step[2]
    return layer(x, **kwargs)


def run_case(case):
    """-> (outcome, detail).  outcome: ok | ValueError | TypeError | known:<id> | FAIL:<why>."""
    import deconv3d  # here: the worker chooses which deconv3d (DECONV3D_FUZZ_PACKAGE) first
    caught = []
    results = []
    layer = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = deconv3d.Conv3DTranspose(**case.kwargs)
            for step in case.steps:
                output = run_step(layer, step)
                if step[0] == "call":
                    results.append((step[1], output))
    except (ValueError, TypeError) as error:
        message = safe_str(error, limit=None)
        if not case.suspects:
            return "FAIL:error-on-valid-case", f"{type(error).__name__}: {message}"
        if not names_a_suspect(message, case.suspects):
            return "FAIL:message-names-no-argument", f"{type(error).__name__}: {message[:500]}"
        return type(error).__name__, message[:200]
    except Exception as error:  # noqa: BLE001 -- any other class is a finding
        return "FAIL:other-exception", f"{type(error).__name__}: {safe_str(error)}"
    notes = []
    try:
        for inputs, output in results:
            notes += check_call(layer, inputs, output)
    except AssertionError as error:
        return "FAIL:wrong-result", safe_str(error)
    except Exception as error:  # noqa: BLE001 -- the oracle itself failed
        return "FAIL:oracle-error", f"{type(error).__name__}: {safe_str(error)}"
    if "K13" in notes:
        return "known:K13-nonfinite-weights", "values not compared"
    complex_warning = getattr(np, "exceptions", np).ComplexWarning
    if caught and case.family == "weights" and all(
            issubclass(w.category, complex_warning) for w in caught):
        # set_weights with complex values: the imaginary part is dropped with NumPy's
        # ComplexWarning, as Keras 3 (JAX) does too
        return "ok", ",".join(notes + ["complex-weights-warned-like-keras"])
    if caught:
        messages = [f"{w.category.__name__}: {w.message}" for w in caught]
        return "FAIL:warning", "; ".join(messages)[:300]
    return "ok", ",".join(notes)


def safe_str(error, limit=500):
    try:
        return str(error)[:limit]
    except Exception:  # noqa: BLE001
        return f"<str() of {type(error).__name__} fails>"


def limit_address_space():
    """Turn runaway allocations into MemoryError (skipped under sanitizers and valgrind)."""
    try:
        import resource
    except ImportError:
        return
    if SANITIZER or "valgrind" in os.environ.get("LD_PRELOAD", ""):
        return
    try:
        with open("/proc/self/statm") as handle:
            size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    limit = size + ADDRESS_SPACE_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def worker(batch, verbose=False):
    """Run one batch; print one JSON line per failure and a final summary line."""
    limit_address_space()
    counts = {}
    failures = []
    notes = {}
    started = time.perf_counter()
    for index in range(CASES_PER_BATCH):
        sys.stderr.write(f"@{index}\n")
        sys.stderr.flush()
        case = make_case(batch, index)
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        if case.huge:
            tracemalloc.start()
        try:
            outcome, detail = run_case(case)
        finally:
            peak = 0
            if case.huge:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            faulthandler.cancel_dump_traceback_later()
        if case.huge and peak > HUGE_BUDGET and not outcome.startswith("known:"):
            outcome, detail = "FAIL:allocated-too-much", f"peak {peak} bytes; {outcome} {detail}"
        if outcome == "ok" and detail:
            for note in detail.split(","):
                notes[note] = notes.get(note, 0) + 1
        key = f"{case.family}|{outcome}"
        counts[key] = counts.get(key, 0) + 1
        if outcome.startswith("FAIL") or verbose:
            record = {"case": case.describe(), "outcome": outcome, "detail": detail}
            if outcome.startswith("FAIL"):
                failures.append(record)
            if verbose:
                print(json.dumps(record), flush=True)
    summary = {"batch": batch, "cases": CASES_PER_BATCH, "counts": counts,
               "failures": failures[:50], "failure_count": len(failures), "notes": notes,
               "seconds": round(time.perf_counter() - started, 2)}
    print("SUMMARY " + json.dumps(summary), flush=True)


def main():
    """Command line: --worker BATCH or --show BATCH INDEX."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int, help="run one batch of cases")
    parser.add_argument("--show", type=int, nargs=2, metavar=("BATCH", "INDEX"),
                        help="describe one case and run it in this process")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args()
    package = os.environ.get("DECONV3D_FUZZ_PACKAGE")
    if package and package not in sys.path:
        sys.path.insert(1, package)
    if TESTS_DIR not in sys.path:
        sys.path.insert(1, TESTS_DIR)
    os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="deconv3d-fuzz-"))
    if arguments.show:
        case = make_case(*arguments.show)
        print(case.describe())
        print(run_case(case))
    elif arguments.worker is not None:
        worker(arguments.worker, arguments.verbose)
    else:
        parser.print_help()


if __name__ == "__main__":
    faulthandler.enable()
    main()
