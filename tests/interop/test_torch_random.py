"""Every groups=1, zeros-padded torch ConvTranspose3d converts exactly (random modules).

The expected values are torch's own outputs; the modules cover kernel 1-5, stride 1-3,
dilation 1-3, every padding torch accepts for the input, output_padding < max(stride,
dilation), 1-33 channels and odd input lengths.
"""

import numpy as np
import pytest

import deconv3d
from deconv3d.frameworks import layer_from_torch, layer_to_torch

torch = pytest.importorskip("torch")

CASES = 520


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def random_axis(rng):
    """(kernel, stride, dilation, padding, output_padding, input length) torch accepts."""
    while True:
        k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        n = int(rng.choice([1, 3, 5]))
        op = int(rng.integers(0, max(s, d)))
        span = (k - 1) * d + 1
        full = (n - 1) * s + span
        p = int(rng.integers(0, (full + op) // 2 + 1))
        if full - 2 * p + op > 0:
            return k, s, d, p, op, n


def random_module(rng):
    axes = [random_axis(rng) for _ in range(3)]
    k, s, d, p, op, n = (tuple(a[i] for a in axes) for i in range(6))
    channels_in, channels_out = (int(c) for c in rng.integers(1, 34, size=2))
    dtype = torch.float64 if rng.random() < 0.5 else torch.float32
    module = torch.nn.ConvTranspose3d(channels_in, channels_out, k, stride=s, padding=p,
                                      output_padding=op, dilation=d,
                                      bias=bool(rng.random() < 0.7)).to(dtype)
    return module, (1, channels_in, *n)


def run(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("block", range(4))
def test_random_modules_match_torch(block):
    rng = np.random.default_rng(1300 + block)
    torch.manual_seed(block)
    for case in range(CASES // 4):
        module, shape = random_module(rng)
        dtype = np.float64 if module.weight.dtype == torch.float64 else np.float32
        x = rng.standard_normal(shape).astype(dtype)
        layer = layer_from_torch(module)
        expected = run(module, x)
        tolerance = 1e-12 if dtype == np.float64 else 1e-5
        label = (module, case)
        assert relative_error(layer(x), expected) < tolerance, label
        try:
            back = layer_to_torch(layer)
        except ValueError as error:
            # only a window torch itself could not hold (it never is for torch's own)
            pytest.fail(f"{label}: {error}")
        assert relative_error(run(back, x), expected) < tolerance, label


def test_crops_torch_cannot_hold_are_refused_by_to_torch():
    # 3 zeros appended with stride 2 and dilation 1: output_padding would be 3 >= 2
    layer = deconv3d.Conv3DTranspose(2, 3, strides=2, crops=((0, -3), (0, 0), (0, 0)),
                                     data_format="channels_first")
    layer.build((None, 2, None, None, None))
    with pytest.raises(ValueError, match=r"appends 3 positions .* axis 0 .* output_padding < "
                                         r"max\(stride, dilation\) = 2"):
        layer_to_torch(layer)


def test_crops_torch_can_hold_round_trip():
    # more cropped at the back than in front on one axis: ConvTranspose3d + ZeroPad3d
    rng = np.random.default_rng(8)
    layer = deconv3d.Conv3DTranspose(3, 3, strides=2, dilation_rate=2, dtype="float64",
                                     crops=((0, 2), (1, 0), (2, 1)), data_format="channels_first")
    x = rng.standard_normal((2, 2, 3, 4, 5))
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
    assert relative_error(run(layer_to_torch(layer), x), layer(x)) < 1e-12
