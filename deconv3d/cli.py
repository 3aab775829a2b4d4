"""Command line: ``python -m deconv3d demo | apply | inspect`` (also ``deconv3d ...``).

``python -m deconv3d demo [--threads N] [--repeats R]``
    Runs the seed example on random data, timed and checked against NumPy.
``python -m deconv3d apply MODEL --input IN.npy --output OUT.npy [--layer NAME]``
    Runs one Conv3DTranspose layer of MODEL on an array (.npy or .npz) and
    writes the result (.npy, or .npz under the key ``output``).  A batch is
    processed in chunks of samples; when there is more than one chunk, progress
    lines go to stderr (at most one a second, and one at the end).  The output
    file is written only when everything has succeeded (through a temporary
    file in the same directory).
``python -m deconv3d inspect MODEL [--json]``
    Lists the Conv3DTranspose layers of MODEL with their configs and weight shapes.

MODEL is a Keras file (``.keras``, ``.h5``, ``.weights.h5``: needs h5py, ``pip install
"deconv3d[keras]"``; Keras is never imported) or an ONNX model (``.onnx``: its 3-D
ConvTranspose nodes, by node name; needs ``pip install "deconv3d[onnx]"``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from . import _threads, demo, keras_io, onnx_io, storage

# Automatic chunking: aim at about this many multiply-adds per call, and at most
# this many bytes of output per call.
_CHUNK_WORK = 2e9
_CHUNK_BYTES = 256 * 2 ** 20
_PROGRESS_EVERY = 1.0    # seconds between progress lines


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m deconv3d``; each command sets ``handler`` in the namespace."""
    parser = argparse.ArgumentParser(prog="python -m deconv3d",
                                     description="Keras-exact Conv3DTranspose for NumPy arrays.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_command = commands.add_parser("demo", help="run the seed example on random data, "
                                                    "timed and checked against a NumPy reference")
    demo_command.add_argument("--threads", type=int, default=None,
                              help="OpenMP threads (default: OpenMP's, i.e. OMP_NUM_THREADS or "
                                   "all cores)")
    demo_command.add_argument("--repeats", type=int, default=5, help="timed calls (default 5)")
    demo_command.set_defaults(handler=run_demo)

    apply = commands.add_parser(
        "apply", help="apply a Conv3DTranspose layer of a Keras or ONNX model to an array",
        description="Apply one Conv3DTranspose layer of a Keras file (.keras, .h5, or "
                    ".weights.h5 with --config), or one 3-D ConvTranspose node of an .onnx "
                    "model, to an array read from .npy/.npz, and save the result.")
    apply.add_argument("model", help="Keras file: .keras archive, legacy .h5 model, or a "
                                     "weights-only .weights.h5/.h5 (then --config is needed); "
                                     "or an .onnx model")
    apply.add_argument("--layer", default=None,
                       help="layer name or path such as 'decoder/up', or an ONNX node name "
                            "(default: the file's only Conv3DTranspose)")
    apply.add_argument("--input", "-i", required=True,
                       help="input array, .npy, .npz or .zarr (a zarr group needs --key)")
    apply.add_argument("--key", default=None,
                       help="array name inside an .npz or zarr group input (default: its only "
                            "array)")
    apply.add_argument("--output", "-o", required=True,
                       help="output file, .npy, .npz (stored under the key 'output') or .zarr")
    apply.add_argument("--data-format", choices=("channels_last", "channels_first"),
                       default=None,
                       help="layout of the input and output arrays (default: the layer's "
                            "data_format); arrays are transposed as needed")
    apply.add_argument("--threads", type=int, default=None,
                       help="OpenMP threads (default: OMP_NUM_THREADS or all cores)")
    apply.add_argument("--chunk", type=int, default=None,
                       help="samples per call (default: chosen from the work per sample)")
    apply.add_argument("--config", default=None,
                       help="for weights-only files: the layer or model config, as JSON text or "
                            "a .json file")
    apply.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    apply.add_argument("--scheduler", default=None,
                       help="run block by block on this dask.distributed scheduler address")
    apply.add_argument("--workers", type=int, default=None,
                       help="run block by block on a local dask cluster of N worker processes")
    apply.set_defaults(handler=run_apply)

    inspect = commands.add_parser(
        "inspect", help="list the Conv3DTranspose layers of a Keras or ONNX model file",
        description="List the Conv3DTranspose layers of a Keras file, or the 3-D "
                    "ConvTranspose nodes of an ONNX model, with their configs and weight "
                    "shapes.")
    inspect.add_argument("model", help="Keras file (.keras, .h5 or .weights.h5) or .onnx model")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(handler=run_inspect)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


def run_demo(args) -> int:
    """Handler of ``demo``: returns 0 when the output matches the reference."""
    return demo.main(args.threads, max(1, args.repeats))




# ---------------------------------------------------------------------- apply
def run_apply(args) -> int:
    """Handler of ``apply``: returns 0 on success, 1 after printing an error to stderr."""
    try:
        apply_model(args.model, args.input, args.output, layer=args.layer, key=args.key,
                    data_format=args.data_format, threads=args.threads, chunk=args.chunk,
                    config=_read_config_argument(args.config),
                    progress=None if args.quiet else sys.stderr,
                    scheduler=args.scheduler, workers=args.workers)
    except (ValueError, TypeError, OSError, ImportError) as error:
        print(f"deconv3d apply: error: {error}", file=sys.stderr)
        return 1
    return 0


def apply_model(model, input_path, output_path, layer=None, key=None, data_format=None,
                threads=None, chunk=None, config=None, progress=None, scheduler=None,
                workers=None) -> tuple:
    """Apply a Conv3DTranspose layer of a Keras file to an array file; save the result.

    Parameters
    ----------
    model : str or os.PathLike
        The Keras file.
    input_path, output_path : str or os.PathLike
        ``.npy`` or ``.npz`` files.  An ``.npz`` output stores the result as ``output``.
    layer : str, optional
        Layer name or path; optional when the file has one Conv3DTranspose.
    key : str, optional
        Array name inside an ``.npz`` input; optional when it holds one array.
    data_format : {"channels_last", "channels_first"}, optional
        Layout of the arrays in the files; default: the layer's.
    threads : int, optional
        OpenMP threads per call.
    chunk : int, optional
        Samples per call; default: chosen so that a call does about 2e9
        multiply-adds and writes at most 256 MiB.
    config : dict, optional
        Layer or model config for weights-only files.
    progress : file-like, optional
        Where progress lines go (e.g. ``sys.stderr``); None for silence.
    scheduler, workers : optional
        A dask.distributed scheduler address, or a number of local worker
        processes.  With either, or a ``.zarr`` input or output, the layer runs
        block by block (:func:`deconv3d.storage.apply_to_storage`).

    Returns
    -------
    tuple
        The shape of the saved output.
    """
    if scheduler is not None or workers is not None or any(
            os.fspath(p).rstrip("/").lower().endswith(".zarr") for p in (input_path, output_path)):
        net = _model_layer(model, layer, config)
        return storage.apply_to_storage(
            net, input_path, output_path, key=key, data_format=data_format, scheduler=scheduler,
            workers=workers, num_threads=threads,
            progress=None if progress is None else storage.ProgressBar(progress))
    output_path = os.fspath(output_path)
    output_kind = _array_file_kind(output_path, "--output")
    try:
        _threads.validate(threads)
    except (TypeError, ValueError):
        if isinstance(threads, int) and threads > _threads.MAX_THREADS:
            raise                    # in the words the layer uses
        raise ValueError(f"--threads must be a positive integer, got {threads!r}") from None
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"--chunk must be a positive integer, got {chunk!r}")
    x = _load_array(input_path, key)
    net = _model_layer(model, layer, config)
    if x.ndim != 5:
        raise ValueError(f"{input_path}: the input has shape {x.shape}; Conv3DTranspose needs a "
                         f"5-D array (batch, 3 spatial axes, channels) or (batch, channels, 3 "
                         f"spatial axes)")
    layout = data_format or net.data_format
    swap = layout != net.data_format
    if swap:
        x = storage.to_format(x, layout, net.data_format)
    channel_axis = 4 if net.data_format == "channels_last" else 1
    in_channels = net.kernel.shape[4]
    if x.shape[channel_axis] != in_channels:
        shown = storage.to_format(x, net.data_format, layout).shape
        raise ValueError(f"{input_path}: the input of shape {shown} ({layout}) has "
                         f"{x.shape[channel_axis]} channels, but layer {net.name!r} expects "
                         f"{in_channels}")
    batch = x.shape[0]
    out_shape = tuple(net.compute_output_shape(x.shape))
    if batch == 0 or min(out_shape) == 0:
        result = np.zeros(out_shape, dtype=net.compute_dtype)
    else:
        per_sample = out_shape[1:]
        size = chunk or _auto_chunk(per_sample, net, np.dtype(net.compute_dtype).itemsize)
        size = min(size, batch)
        result = np.empty(out_shape, dtype=net.compute_dtype)
        steps = math.ceil(batch / size)
        start_time = time.perf_counter()
        if progress is not None and steps > 1:
            print(f"apply: layer {net.name!r}, {batch} samples in {steps} chunks of up to "
                  f"{size}", file=progress, flush=True)
        last_line = start_time
        for begin in range(0, batch, size):
            end = min(begin + size, batch)
            result[begin:end] = net(np.asarray(x[begin:end]), num_threads=threads)
            now = time.perf_counter()
            if progress is not None and steps > 1 and (now - last_line >= _PROGRESS_EVERY
                                                       or end == batch):
                last_line = now
                elapsed = now - start_time
                remaining = elapsed / end * (batch - end)
                print(f"apply: {end}/{batch} samples ({100 * end / batch:.0f}%), "
                      f"{elapsed:.1f} s elapsed, ~{remaining:.1f} s left",
                      file=progress, flush=True)
    if swap:
        result = storage.to_format(result, net.data_format, layout)
    _save_atomically(output_path, output_kind, result)
    if progress is not None:
        print(f"apply: wrote {output_path} {result.shape} {result.dtype}", file=progress,
              flush=True)
    return result.shape


def _is_onnx(model) -> bool:
    return os.fspath(model).lower().endswith(".onnx")


def _model_layer(model, layer, config):
    """The layer `apply` runs: from a Keras file, or a node of an ONNX model."""
    if not _is_onnx(model):
        return keras_io.layer_from_keras_file(model, name=layer, config=config)
    if config is not None:
        raise ValueError("--config is for weights-only Keras files; an .onnx model holds its "
                         "own attributes")
    try:
        return onnx_io.layer_from_onnx(model, name=layer)
    except KeyError as error:
        raise ValueError(error.args[0]) from None


def _read_config_argument(text):
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        source, raw = "--config", text
    else:
        source = text
        try:
            with open(text, encoding="utf-8") as handle:
                raw = handle.read()
        except OSError as error:
            raise ValueError(f"--config: cannot read {text!r} (expected JSON text or a .json "
                             f"file): {error}") from None
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError(f"{source}: nests too deeply to be a Keras config") from None
    except ValueError as error:
        raise ValueError(f"{source}: not valid JSON: {error}") from None


def _array_file_kind(path: str, argument: str) -> str:
    lowered = path.lower()
    for kind in (".npy", ".npz"):
        if lowered.endswith(kind):
            return kind
    raise ValueError(f"{argument} {path!r}: expected a .npy or .npz file")


def _load_array(path, key):
    path = os.fspath(path)
    kind = _array_file_kind(path, "--input")
    if not os.path.exists(path):
        raise FileNotFoundError(f"--input: no such file: {path!r}")
    try:
        if kind == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if key is not None:
                raise ValueError(f"--key is only for .npz inputs; {path} is a .npy file")
            return array
        with np.load(path, allow_pickle=False) as archive:
            return archive[storage.choose_array(path, list(archive.files), key, "--key")]
    except (OSError, EOFError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith(path):
            raise
        raise ValueError(f"--input: cannot read {path}: {error}") from None


def _auto_chunk(per_sample_shape, net, itemsize: int) -> int:
    out_elements = math.prod(per_sample_shape)
    taps = math.prod(net.kernel_size) * int(net.kernel.shape[4])
    work = max(1, out_elements * taps)
    by_work = int(_CHUNK_WORK // work)
    by_memory = int(_CHUNK_BYTES // max(1, out_elements * itemsize))
    return max(1, min(by_work, by_memory))


def _save_atomically(path: str, kind: str, array) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".deconv3d-", suffix=kind, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if kind == ".npy":
                np.save(handle, array, allow_pickle=False)
            else:
                np.savez(handle, output=array)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------- inspect
def run_inspect(args) -> int:
    """Handler of ``inspect``: returns 0 on success, 1 after printing an error to stderr."""
    try:
        if _is_onnx(args.model):
            summary = describe_onnx(args.model)
            print(json.dumps(summary, indent=2) if args.json else format_onnx(summary))
            return 0
        contents = keras_io.read_keras_file(args.model)
    except (ValueError, TypeError, OSError, ImportError) as error:
        print(f"deconv3d inspect: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(describe(contents), indent=2))
    else:
        print(format_contents(contents))
    return 0


def describe(contents) -> dict:
    """A JSON-ready summary of :class:`deconv3d.keras_io.KerasFileContents`."""
    return {
        "file": contents.path, "format": contents.format, "keras_version": contents.keras_version,
        "has_config": contents.has_config,
        "layers": [{"path": e.path, "name": e.name, "config": e.config,
                    "kernel_shape": list(e.kernel_shape),
                    "bias_shape": list(e.weights[1].shape) if len(e.weights) > 1 else None,
                    "location": e.location} for e in contents.layers],
        "other_layers": dict(contents.other_layers),
    }


_SHOWN = ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
          "dilation_rate", "activation", "use_bias", "dtype")


def format_contents(contents) -> str:
    """The text ``inspect`` prints."""
    version = f", Keras {contents.keras_version}" if contents.keras_version else ""
    count = len(contents.layers)
    lines = [f"{contents.path}: {contents.description}{version}; {count} Conv3DTranspose "
             f"layer{'s' if count != 1 else ''}"]
    if not contents.has_config and contents.format == keras_io.FORMAT_LEGACY_WEIGHTS:
        lines.append("  (no config in this file: the layers below are those whose weights look "
                     "like a 3-D convolution kernel; Conv3D layers look the same)")
    for entry in contents.layers:
        lines.append(f"  {entry.path}")
        if entry.config is not None:
            shown = [f"{key}={_show(entry.config[key])}" for key in _SHOWN
                     if key in entry.config]
            lines.append("    " + " ".join(shown))
        else:
            lines.append("    config: none in the file (weights only; pass --config to apply)")
        bias = f", bias {tuple(entry.weights[1].shape)}" if len(entry.weights) > 1 else ", no bias"
        lines.append(f"    kernel {entry.kernel_shape}{bias}; weights at {entry.location}")
    if contents.other_layers:
        others = ", ".join(f"{p} ({c})" for p, c in contents.other_layers.items())
        lines.append(f"  other layers: {others}")
    return "\n".join(lines)


def describe_onnx(path) -> dict:
    """A JSON-ready summary of the 3-D ConvTranspose nodes of an ONNX model."""
    layers = onnx_io.load_onnx(path)
    proto, _, _ = onnx_io.read_model(path)
    others = [name for name, node in onnx_io.conv_transpose_nodes(proto.graph)
              if name not in layers]
    summary = {"file": os.fspath(path), "format": "onnx", "layers": [],
               "other_conv_transpose_nodes": others}
    for name, layer in layers.items():
        config = layer.get_config()
        summary["layers"].append({
            "name": name, "dtype": layer.dtype, "kernel_shape": list(layer.kernel.shape),
            "config": {key: config[key] for key in (*_SHOWN[:-1], "crops") if key in config},
            "bias_shape": None if layer.bias is None else list(layer.bias.shape)})
    return summary


def format_onnx(summary: dict) -> str:
    """The text ``inspect`` prints for an ONNX model."""
    count = len(summary["layers"])
    lines = [f"{summary['file']}: ONNX model; {count} 3-D ConvTranspose node"
             f"{'s' if count != 1 else ''} (layers are channels_first)"]
    for entry in summary["layers"]:
        lines.append(f"  {entry['name']}")
        shown = [f"{key}={_show(value)}" for key, value in entry["config"].items()]
        lines.append("    " + " ".join(shown + [f"dtype={entry['dtype']!r}"]))
        bias = f", bias {tuple(entry['bias_shape'])}" if entry["bias_shape"] else ", no bias"
        lines.append(f"    kernel {tuple(entry['kernel_shape'])}{bias}")
    if summary["other_conv_transpose_nodes"]:
        lines.append("  other ConvTranspose nodes (not 3-D): "
                     + ", ".join(summary["other_conv_transpose_nodes"]))
    return "\n".join(lines)


def _show(value) -> str:
    if isinstance(value, list):
        return repr(tuple(value))
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]          # a dtype policy
        return value.get("class_name", json.dumps(value))
    return repr(value)
