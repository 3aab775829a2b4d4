"""Explicit per-axis crops (the deconv3d extension beside Keras's padding).

The reference is the naive NumPy loop of tests/reference.py: its uncropped output
(``'valid'``, no output padding), cut by hand, with the bias past the uncropped end.
"""

import numpy as np
import pytest

import deconv3d
from reference import conv3d_transpose, relative_error


def cropped_reference(x, kernel, bias, strides, dilation, crops):
    full = conv3d_transpose(x, kernel, bias, strides, "valid", (0, 0, 0), dilation)
    for axis, (front, back) in enumerate(crops, start=1):
        if back < 0:     # appended positions hold the bias only
            extra = list(full.shape)
            extra[axis] = -back
            full = np.concatenate([full, np.broadcast_to(bias, extra)], axis=axis)
            back = 0
        full = np.take(full, range(front, full.shape[axis] - back), axis=axis)
    return full


CASES = [
    # kernel, strides, dilation, crops, spatial
    (3, 2, 1, ((1, 0), (1, 0), (1, 0)), (3, 4, 5)),          # torch's usual x2 up-sampling
    (3, 2, 2, ((0, 0), (2, 1), (1, -1)), (3, 2, 4)),         # strides and dilations together
    ((2, 3, 4), (1, 3, 2), (3, 1, 2), ((2, 2), (0, -2), (3, 0)), (4, 3, 2)),
    (1, 3, 1, ((0, -2), (0, 0), (0, -1)), (2, 3, 1)),        # zeros appended only
    (5, 1, 1, ((4, 4), (0, 4), (4, 0)), (5, 5, 5)),          # heavy crops
]


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_crops_match_the_reference(case, dtype):
    k, s, d, crops, spatial = case
    rng = np.random.default_rng(11)
    layer = deconv3d.Conv3DTranspose(5, k, s, dilation_rate=d, crops=crops, dtype=dtype)
    x = rng.standard_normal((2, *spatial, 3)).astype(dtype)
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
    expected = cropped_reference(x, layer.kernel, layer.bias, layer.strides,
                                 layer.dilation_rate, crops)
    out = layer(x)
    assert out.shape == tuple(layer.compute_output_shape(x.shape))
    assert relative_error(out, expected) < (1e-12 if dtype == "float64" else 1e-5)


def test_keras_paddings_equal_their_crops():
    # 'same' with kernel 3, stride 2 crops 0 in front and 1 at the back (Keras's odd element)
    rng = np.random.default_rng(12)
    keras_like = deconv3d.Conv3DTranspose(4, 3, 2, padding="same")
    cropped = deconv3d.Conv3DTranspose(4, 3, 2, crops=((0, 1),) * 3)
    x = rng.standard_normal((1, 3, 4, 5, 2)).astype("float32")
    keras_like.build(x.shape)
    cropped.build(x.shape)
    cropped.set_weights(keras_like.get_weights())
    np.testing.assert_array_equal(cropped(x), keras_like(x))


def test_the_keras_constructor_still_refuses_strides_with_dilation():
    with pytest.raises(ValueError, match=r"`strides > 1` not supported in conjunction with "
                                         r"`dilation_rate > 1`"):
        deconv3d.Conv3DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(TypeError, match="dilation_rate > 1"):
        deconv3d.Conv3DTranspose.from_config({"filters": 2, "kernel_size": 3, "strides": 2,
                                              "dilation_rate": 2})


def test_keras_layers_have_no_crops_in_their_config():
    layer = deconv3d.Conv3DTranspose(2, 3, padding="same")
    assert layer.crops is None and "crops" not in layer.get_config()


def test_a_crops_config_round_trips():
    layer = deconv3d.Conv3DTranspose(2, 3, strides=2, dilation_rate=2, crops=((1, 0),) * 3)
    config = layer.get_config()
    assert config["crops"] == [[1, 0]] * 3 and config["padding"] == "valid"
    assert deconv3d.Conv3DTranspose.from_config(config).crops == ((1, 0),) * 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(crops=((1, 0),) * 3, padding="same"), r"`crops` replaces `padding`"),
    (dict(crops=((1, 0),) * 3, output_padding=0), r"`crops` replaces .*output_padding=\(0"),
    (dict(crops=((1, 0),) * 2), r"3 pairs \(front, back\).* crops=\(\(1, 0\), \(1, 0\)\)"),
    (dict(crops=((-1, 0),) * 3), r"axis 0 needs 0 <= front"),
    (dict(crops=((1.5, 0),) * 3), r"3 pairs \(front, back\) of integers"),
    (dict(crops=3), r"Received crops=3"),
])
def test_bad_crops(kwargs, match):
    with pytest.raises(ValueError, match=match):
        deconv3d.Conv3DTranspose(2, 3, **kwargs)


def test_crops_longer_than_the_output_are_refused_at_call():
    layer = deconv3d.Conv3DTranspose(2, 3, crops=((2, 2), (0, 0), (0, 0)))
    with pytest.raises(ValueError, match=r"crops .* remove more than the transposed "
                                         r"convolution of input shape \(1, 1, 3, 3, 2\)"):
        layer(np.ones((1, 1, 3, 3, 2), np.float32))
    assert layer(np.ones((1, 2, 3, 3, 2), np.float32)).shape == (1, 0, 5, 5, 2)


def test_crops_chunked_equal_whole():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(13)
    layer = deconv3d.Conv3DTranspose(3, 3, 2, dilation_rate=2, crops=((1, 0), (2, -1), (0, 3)),
                                     dtype="float64")
    x = rng.standard_normal((1, 9, 8, 7, 2))
    whole = layer(x)
    chunked = layer(da.from_array(x, chunks=(1, 4, 3, 5, 2))).compute()
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)
