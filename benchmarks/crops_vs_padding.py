"""Explicit crops cost what Keras's padding costs: the same work, timed both ways.

Each case compares a Keras ``padding="same"`` layer (kernel 3, stride 2: it crops 0 in
front and 1 at the back) with the explicit-crop layer torch's ``padding=1,
output_padding=1`` becomes (1 in front, 0 at the back): same output shape, same taps.
Prints the best median over interleaved rounds for each, and their ratio.

    python benchmarks/crops_vs_padding.py [--rounds 3] [--repeats 15]
"""

import argparse
import time

import numpy as np

import deconv3d

CASES = {
    "monai-up (1,32³,32)->16 k3 s2": ((1, 32, 32, 32, 32), 16),
    "unet-mid (1,32³,64)->32 k3 s2": ((1, 32, 32, 32, 64), 32),
    "small (8,12³,16)->16 k3 s2": ((8, 12, 12, 12, 16), 16),
}


def median_seconds(layer, x, repeats: int) -> float:
    layer(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        layer(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| case | padding='same' (ms) | crops=((1, 0),)*3 (ms) | ratio |")
    print("|---|---|---|---|")
    for name, (shape, filters) in CASES.items():
        x = rng.standard_normal(shape).astype(np.float32)
        keras_like = deconv3d.Conv3DTranspose(filters, 3, 2, padding="same")
        cropped = deconv3d.Conv3DTranspose(filters, 3, 2, crops=((1, 0),) * 3)
        keras_like.build(shape)
        cropped.build(shape)
        cropped.set_weights(keras_like.get_weights())
        assert keras_like(x).shape == cropped(x).shape
        best = [float("inf"), float("inf")]
        for _ in range(args.rounds):        # interleaved, so drift hits both alike
            best[0] = min(best[0], median_seconds(keras_like, x, args.repeats))
            best[1] = min(best[1], median_seconds(cropped, x, args.repeats))
        print(f"| {name} | {best[0] * 1e3:.2f} | {best[1] * 1e3:.2f} | "
              f"{best[1] / best[0]:.3f} |")


if __name__ == "__main__":
    main()
