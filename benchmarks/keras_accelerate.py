"""Time ``model.predict`` before and after ``deconv3d.keras.accelerate`` on each Keras backend.

Usage (from the root of a checkout, with deconv3d, Keras and the backends installed)::

    python benchmarks/keras_accelerate.py                       # JAX, TensorFlow, PyTorch
    python benchmarks/keras_accelerate.py --backends jax --cases unet-mid --repeats 5

Two tables are printed (Markdown):

* per layer: a model made of one Conv3DTranspose for each case of ``bench.py``
  (``CASES``), timed through ``model.predict_on_batch`` with the stock layer
  and with the accelerated one.  The predict overhead is inside both times, so
  the speedup shown understates the layer's own;
* a small 3-D U-Net (three levels, Conv3D + MaxPooling3D encoder, Conv3DTranspose
  decoder with skip connections), whole ``model.predict``.

Each (backend, model, stock or accelerated) measurement runs in its own fresh
process.  Each time is the median of timed calls after two untimed ones (which
compile).  The accelerated output is compared with the stock one (``max rel``:
largest difference over the largest stock value).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from bench import CASES, CASES_BY_NAME  # noqa: E402  (one list of shapes for both scripts)

BACKENDS = ("jax", "tensorflow", "torch")
UNET_INPUT = (1, 64, 64, 64, 1)


# ---------------------------------------------------------------------------- child side
def build_model(what):
    """The Keras model measured for ``what`` (a case name or "unet")."""
    import keras
    layers = keras.layers
    if what == "unet":
        inputs = keras.Input(UNET_INPUT[1:])
        skips, h = [], inputs
        for width in (16, 32):
            h = layers.Conv3D(width, 3, padding="same", activation="relu")(h)
            skips.append(h)
            h = layers.MaxPooling3D(2)(h)
        h = layers.Conv3D(64, 3, padding="same", activation="relu")(h)
        for width, skip in zip((32, 16), reversed(skips)):
            h = layers.Conv3DTranspose(width, 2, 2, activation="relu")(h)
            h = layers.Concatenate()([h, skip])
            h = layers.Conv3D(width, 3, padding="same", activation="relu")(h)
        outputs = layers.Conv3D(2, 1, activation="softmax")(h)
        return keras.Model(inputs, outputs), UNET_INPUT
    case = CASES_BY_NAME[what]
    model = keras.Sequential([
        keras.Input(case.input_shape[1:]),
        layers.Conv3DTranspose(case.filters, case.kernel, case.stride, padding=case.padding,
                               dilation_rate=case.dilation),
    ])
    return model, case.input_shape


def measure(what, accelerated, repeats, budget, out_path):
    """Time one model in this process; save its output next to the timings."""
    import numpy as np
    model, shape = build_model(what)
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.1
                       for w in model.get_weights()])
    if accelerated:
        import deconv3d.keras
        deconv3d.keras.accelerate(model)
    x = rng.standard_normal(shape).astype("float32")
    if what == "unet":
        run = lambda: model.predict(x, batch_size=shape[0], verbose=0)  # noqa: E731
    else:
        run = lambda: model.predict_on_batch(x)  # noqa: E731
    for _ in range(2):                          # compile, warm the caches
        y = run()
    times, start = [], time.perf_counter()
    while len(times) < (repeats or 1000):
        begin = time.perf_counter()
        y = run()
        times.append(time.perf_counter() - begin)
        if not repeats and len(times) >= 3 and time.perf_counter() - start > budget:
            break
    np.save(out_path, np.asarray(y))
    return {"median_ms": 1e3 * statistics.median(times), "calls": len(times)}


# ---------------------------------------------------------------------------- parent side
def run_child(backend, what, accelerated, args, tmp):
    out = Path(tmp) / f"{backend}-{what}-{int(accelerated)}.npy"
    home = Path(tmp) / f"keras-home-{backend}"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=str(home), JAX_PLATFORMS="cpu",
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, __file__, "--child", backend, what, str(int(accelerated)),
               str(out), "--repeats", str(args.repeats), "--budget", str(args.budget)]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        # the last unindented line is the error message (TF appends indented node names)
        lines = [line for line in run.stderr.splitlines() if line.strip()
                 and not line[0].isspace()]
        return {"error": (lines or ["failed"])[-1]}, None
    return json.loads(run.stdout.strip().splitlines()[-1]), out


def compare(stock_path, fast_path):
    import numpy as np
    if stock_path is None or fast_path is None:
        return float("nan")
    a, b = np.load(fast_path).astype("float64"), np.load(stock_path).astype("float64")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def describe(what):
    if what == "unet":
        return "U-Net (1,64³,1), 16-32-64 ch., 2 up-convs"
    case = CASES_BY_NAME[what]
    dilation = f" d{case.dilation}" if case.dilation != 1 else ""
    return (f"{what} {tuple(case.input_shape)}→{case.filters} k{case.kernel} s{case.stride}"
            f" {case.padding}{dilation}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--cases", default=",".join(case.name for case in CASES),
                        help="per-layer cases from bench.py (comma-separated; '' for none)")
    parser.add_argument("--no-unet", action="store_true", help="skip the U-Net table")
    parser.add_argument("--repeats", type=int, default=0,
                        help="a fixed number of timed calls (default: at least 3, ~--budget s)")
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, what, accelerated, out = args.child
        print(json.dumps(measure(what, accelerated == "1", args.repeats, args.budget, out)))
        return

    backends = [b for b in args.backends.split(",") if b]
    cases = [c for c in args.cases.split(",") if c]
    for name in cases:
        if name not in CASES_BY_NAME:
            parser.error(f"unknown case {name!r}; known: {', '.join(CASES_BY_NAME)}")
    sections = [("Per layer (`predict_on_batch` of a one-layer model)", cases)]
    if not args.no_unet:
        sections.append(("Whole model (`model.predict`)", ["unet"]))
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs; median ms\n")
    with tempfile.TemporaryDirectory() as tmp:
        for title, whats in sections:
            if not whats:
                continue
            print(f"### {title}\n")
            print("| backend | model | stock | accelerated | speedup | max rel |")
            print("|---|---|---|---|---|---|")
            for backend in backends:
                for what in whats:
                    stock, stock_out = run_child(backend, what, False, args, tmp)
                    fast, fast_out = run_child(backend, what, True, args, tmp)
                    cells = []
                    for result in (stock, fast):
                        cells.append(f"{result['median_ms']:.1f}" if "median_ms" in result
                                     else f"failed: {result['error'][:80]}")
                    speedup = (f"{stock['median_ms'] / fast['median_ms']:.1f}×"
                               if "median_ms" in stock and "median_ms" in fast else "–")
                    print(f"| {backend} | {describe(what)} | {cells[0]} | {cells[1]} | "
                          f"{speedup} | {compare(stock_out, fast_out):.1e} |", flush=True)
            print()


if __name__ == "__main__":
    main()
