"""shapes.input_window, halo and output_chunks against the scatter definition, exhaustively."""

import itertools

import pytest

from deconv3d import shapes


def axes():
    """Every small (kernel, stride, dilation, padding, output_padding) Keras accepts."""
    for k, s, d, padding in itertools.product(range(1, 6), range(1, 5), range(1, 4),
                                              ("valid", "same")):
        if s > 1 and d > 1:
            continue
        for op in [None] + list(range(s)):
            yield k, s, d, padding, op


def reads(n, k, s, d, crop, start, stop):
    """Inputs that reach outputs [start, stop): o = i*s + t*d - crop for some tap t."""
    return {i for i in range(n) for t in range(k) if start <= i * s + t * d - crop < stop}


@pytest.mark.parametrize("k, s, d, padding, op", list(axes()))
def test_input_window_holds_every_input_the_window_reads(k, s, d, padding, op):
    crop = shapes.front_crop(k, s, padding, op, d)
    for n in range(0, 7):
        length = shapes.output_length(n, k, s, padding, op, d)
        for start in range(length + 1):
            for stop in range(start, length + 1):
                first, end, window_crop = shapes.input_window(start, stop, n, k, s, d, crop)
                assert 0 <= first <= end <= n and window_crop >= 0
                assert window_crop == start + crop - first * s
                needed = reads(n, k, s, d, crop, start, stop)
                assert needed <= set(range(first, end))
                # the window is contiguous, so with dilation it also spans inputs that fall
                # between taps; those change nothing


@pytest.mark.parametrize("k, s, d, padding, op", list(axes()))
def test_halo_bounds_what_stride_times_chunks_read(k, s, d, padding, op):
    crop = shapes.front_crop(k, s, padding, op, d)
    before, after = shapes.halo(k, s, d, crop)
    assert before >= 0 and after >= 0
    for n in range(1, 9):
        length = shapes.output_length(n, k, s, padding, op, d)
        for size in range(1, n + 1):
            chunks = [size] * (n // size) + ([n % size] if n % size else [])
            out = shapes.output_chunks(chunks, length, s)
            assert sum(out) == length and all(c > 0 for c in out) or out == (0,)
            edge = 0
            for chunk in chunks[:-1]:      # the last chunk also takes the output's tail
                needed = reads(n, k, s, d, crop, edge * s, min((edge + chunk) * s, length))
                assert all(edge - before <= i < edge + chunk + after for i in needed)
                edge += chunk
