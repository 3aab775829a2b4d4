#!/usr/bin/env bash
# Run a small but complete deconv3d workload under valgrind's memcheck.
#
#   tests/valgrind.sh                       # uses the deconv3d importable from the repo root
#   PYTHON=/path/to/venv/bin/python tests/valgrind.sh
#   KEEP=1 tests/valgrind.sh                # keep valgrind's text and XML logs
#
# The workload covers both dtypes, strides, dilation, output padding, channels_first,
# fused and NumPy activations, 1 and 2 OpenMP threads, the memcpy (C >= 16) and the
# split-reduction (C * taps > 512) paths of the core, empty outputs, non-contiguous
# inputs, set_weights and an error path, and checks every output against
# tests/reference.py (a memory error that changes a value fails too).
#
# memcheck runs with --error-exitcode=1 --track-origins=yes and also writes XML; every
# error it reports is then attributed, by the Python at the end of this script:
#  * deconv3d's: an error with any frame -- in its own stack or in the stack of the
#    allocation an uninitialised value came from -- in deconv3d's extension (_core*.so,
#    _core.c/.pyx, microkernels.h) or in libgomp; and anything not explained below.  Any
#    such error fails the script (exit 1).
#  * explained, not deconv3d's (listed with counts, exit 0):
#    - CPython 3.11 "int zero" reads: maybe_small_long() reads the unwritten first digit
#      of a zero built from digits (int("0"), int.from_bytes(b"\0\0\0\0") for every .pyc
#      it loads), so memcheck marks the cached small int 0 as undefined and reports many
#      later uses of it, anywhere in the interpreter.  Recognised by their origin: a heap
#      allocation in _PyLong_New.  (Not seen with CPython 3.12, whose ints differ.)
#    - ld.so's strncmp reading whole words past the end of a library path string
#      (is_dst / _dl_dst_count / _dl_dst_substitute): a classic memcheck false positive.
#    - "definitely lost" blocks whose allocation stack has no deconv3d frame: CPython's
#      and NumPy's objects kept until exit behind pointers memcheck cannot follow.  A leak
#      of deconv3d's would carry its frames (its Cython code calls into CPython); leaks
#      per call are measured separately by tests/layer/test_memory.py.
#  * PYTHONMALLOC=malloc: CPython's small-object allocator deliberately reads memory it
#    does not own; with the system allocator memcheck sees plain malloc/free instead.
#    That is what CPython's Misc/README.valgrind recommends in place of its suppression
#    file, which is therefore not used.  VALGRIND_SUPPRESSIONS=/path/file adds your own.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }

supp=()
if [[ -n "${VALGRIND_SUPPRESSIONS:-}" ]]; then
    supp=(--suppressions="$VALGRIND_SUPPRESSIONS")
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/deconv3d-valgrind.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "valgrind.sh: keeping $work"
fi

# the workload, run by the Python under valgrind
cat > "$work/workload.py" <<'EOF'
import os

import numpy as np

import deconv3d
from reference import ACTIVATIONS, conv3d_transpose, relative_error

rng = np.random.default_rng(0)
CASES = [
    # (constructor arguments, input shape, num_threads)
    (dict(filters=3, kernel_size=2, strides=2), (1, 2, 3, 2, 4), 1),
    (dict(filters=17, kernel_size=3, padding="same", activation="relu"), (2, 3, 2, 3, 5), 2),
    (dict(filters=5, kernel_size=(2, 3, 1), strides=(1, 2, 3), output_padding=(0, 1, 2),
          activation="gelu", dtype="float64"), (1, 3, 2, 2, 3), 2),
    (dict(filters=4, kernel_size=3, dilation_rate=(2, 1, 2), padding="same",
          data_format="channels_first", activation="softmax"), (2, 3, 3, 2, 3), 1),
    (dict(filters=9, kernel_size=2, strides=(2, 1, 1), activation="tanh",
          dtype="mixed_float16"), (1, 2, 2, 2, 20), 2),        # C >= 16: memcpy gather
    (dict(filters=8, kernel_size=3, padding="same"), (1, 3, 3, 3, 64), 2),   # split reduction
    (dict(filters=6, kernel_size=2, strides=3, use_bias=False), (0, 2, 2, 2, 2), 2),  # empty
    (dict(filters=2, kernel_size=3), (1, 0, 2, 2, 2), 1),      # empty axis: bias only
]
for kwargs, shape, threads in CASES:
    layer = deconv3d.Conv3DTranspose(**kwargs, bias_initializer="random_normal")
    x = rng.standard_normal(shape).astype(np.float32)
    for inputs in (x, x[:, ::-1]):                             # and a non-contiguous view
        output = layer(inputs, num_threads=threads)
        expected = conv3d_transpose(inputs, layer.kernel, layer.bias, layer.strides,
                                    layer.padding, layer.output_padding, layer.dilation_rate,
                                    layer.data_format)
        expected = ACTIVATIONS[layer.activation.name](expected)
        tolerance = 1e-2 if output.dtype == np.float16 else 1e-5
        assert relative_error(output, expected) < tolerance, (kwargs, shape)
    layer.set_weights([w * 2 for w in layer.get_weights()])
    layer(x, num_threads=threads)
    wrong = list(shape)
    wrong[4 if layer.data_format == "channels_last" else 1] += 1
    try:
        layer(np.zeros(wrong, np.float32))
    except ValueError:
        pass
    else:
        raise AssertionError("a channel mismatch was accepted")
print("valgrind.sh: workload done, all outputs match the reference")
with open(os.environ["DECONV3D_VALGRIND_DONE"], "w") as handle:
    handle.write("done")
EOF

# how the errors are attributed (run by the same Python, not under valgrind)
cat > "$work/attribute.py" <<'EOF'
"""Attribute every memcheck error: deconv3d's (fail) or explained noise (listed)."""
import collections
import re
import sys
import xml.etree.ElementTree as ET

path, status, done = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    open(done).close()
except OSError:
    sys.exit(f"valgrind.sh: the workload did not finish (exit status {status}; see above)")
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as error:
    sys.exit(f"valgrind.sh: no usable memcheck XML ({error}); valgrind exit status {status}")
OURS = re.compile(r"deconv3d.*_core|_core\.(c|pyx)$|microkernels\.h$|libgomp")


def frames(stack):
    for frame in stack.iter("frame"):
        yield (frame.findtext("fn") or "", frame.findtext("obj") or "",
               frame.findtext("file") or "")


explained, ours = collections.Counter(), []
kinds = collections.Counter()
for error in root.iter("error"):
    kind = error.findtext("kind") or "?"
    kinds[kind] += 1
    stacks = error.findall("stack")
    every = [f for stack in stacks for f in frames(stack)]
    text = error.findtext("what") or error.findtext("xwhat/text") or kind
    top = " <- ".join(fn for fn, _, _ in list(frames(stacks[0]))[:5]) if stacks else ""
    if any(OURS.search(obj) or OURS.search(file) for _, obj, file in every):
        ours.append(f"{kind}: {text}\n      at {top}")
    elif kind.startswith("Uninit") and len(stacks) > 1 and \
            any(fn == "_PyLong_New" for fn, _, _ in frames(stacks[1])):
        explained["CPython 3.11 int-zero digit read (origin: _PyLong_New)"] += 1
    elif kind.startswith("Invalid") and any(
            fn in ("is_dst", "_dl_dst_count", "_dl_dst_substitute") for fn, _, _ in every):
        explained["ld.so strncmp past the end of a path string"] += 1
    elif kind == "Leak_DefinitelyLost":
        explained["blocks lost at exit, allocated by CPython/NumPy only"] += 1
    else:
        ours.append(f"{kind} (unexplained): {text}\n      at {top}")
print(f"valgrind.sh: memcheck exit status {status}; error contexts: {sum(kinds.values())} "
      f"{dict(kinds)}")
for reason, n in explained.most_common():
    print(f"  explained, not deconv3d's: {n:4d} contexts  {reason}")
print(f"  deconv3d's (or unexplained): {len(ours)}")
for line in ours:
    print("   ", line)
sys.exit(1 if ours else 0)
EOF

cd "$root"
export PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} DECONV3D_VALGRIND_DONE="$work/done"
set +e
PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=1 --track-origins=yes \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --num-callers=40 --xml=yes --xml-file="$work/memcheck.xml" \
    --log-file="$work/memcheck.log" "${supp[@]}" "$python" "$work/workload.py"
status=$?
set -e
"$python" "$work/attribute.py" "$work/memcheck.xml" "$status" "$work/done"
