"""Per-call time of small layers, deconv3d against PyTorch's conv_transpose3d.

Small calls are where fixed costs show: argument checks, planning, allocation and
thread start-up rather than arithmetic.  Both libraries run in this one process on the
same input (NDHWC for deconv3d, NCDHW for torch, made contiguous beforehand), each call
timed on its own; the report is the median over many calls, best of a few rounds.

    python benchmarks/small_calls.py                 # default cases, 10,000 calls each
    python benchmarks/small_calls.py --calls 2000 --rounds 3
"""

import argparse
import statistics
import time

import numpy as np

import deconv3d

# (input N, D, H, W, C), filters, kernel, stride: Keras "valid" padding
CASES = [((1, 2, 2, 2, 8), 8, 2, 2), ((1, 8, 8, 8, 64), 32, 2, 2), ((1, 4, 4, 4, 16), 16, 3, 2)]


def median_us(call, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def torch_call(x, layer):
    import torch     # optional: only this comparison needs it
    kernel, bias = layer.get_weights()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3)))
    wt = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
    bt = torch.from_numpy(bias)
    stride = layer.strides

    def call():
        with torch.no_grad():
            return torch.nn.functional.conv_transpose3d(xt, wt, bt, stride=stride)

    expected = layer(x).transpose(0, 4, 1, 2, 3)
    np.testing.assert_allclose(call().numpy(), expected, rtol=1e-5, atol=1e-5)
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| input -> filters, k, s | deconv3d µs | torch µs | torch / deconv3d |")
    print("|---|---|---|---|")
    for shape, filters, k, s in CASES:
        x = rng.standard_normal(shape).astype("float32")
        layer = deconv3d.Conv3DTranspose(filters, k, s)
        layer(x)
        calls = args.calls if np.prod(shape) < 4096 else max(100, args.calls // 30)
        ours = min(median_us(lambda: layer(x), calls) for _ in range(args.rounds))
        try:
            peer = torch_call(x, layer)
            theirs = min(median_us(peer, calls) for _ in range(args.rounds))
            cells = f"{theirs:.1f} | {theirs / ours:.2f}"
        except ImportError:
            cells = "not installed | –"
        print(f"| {shape} -> {filters}, {k}, {s} | {ours:.1f} | {cells} |")


if __name__ == "__main__":
    main()
