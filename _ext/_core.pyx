# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compute core of deconv3d: a 3-D transposed convolution, phase-decomposed.

The core trusts its arguments: the Python layer has already checked shapes,
dtypes and contiguity and computed every length and crop (`deconv3d.shapes`).

Arrays are channels-last and C-contiguous: input x (N, D, H, W, C), output
out (N, OD, OH, OW, F), written completely and never read first.

Per axis, output o sits at position u = o + crop of the uncropped result, and
input i reaches u through tap t when u = i*stride + t*dilation.  Splitting u by
its phase r = u mod stride, each phase is reached by a fixed set of taps, and
input i = u div stride + delta(t): a dense correlation with no multiply by
zero.  `PackedKernel` stores, once per set of weights, every phase's taps as
contiguous (taps x C x NR) panels; the driver groups the output voxels of one
phase into tiles of MR = 12 voxels, builds for each tile an indirection table
(per tap and voxel, where in the input its channels are, or a row of zeros),
and hands it to a register-blocked micro-kernel (`kernels/kernels.h`) that keeps
MR x NR sums in registers over all taps and channels.  The input is never
copied.

Tiles run along the batch (many small images) or along rows.  Along rows
(`w_lines`), each row's interior (the voxels every w tap reaches) is cut into
runs and a tile takes one run from each of several rows; the borders are taken
column by column.  A phase's w taps that all reach a tile over consecutive
input voxels merge into one tap over their channels laid end to end.  Where a
phase has 2 or 3 evenly spaced w taps, tiles of two runs of 6 go to the row
kernels, which broadcast each input voxel once for every voxel it feeds and
keep the taps' weights in registers: half the loads per multiply-add.

When the kernel equals the stride and nothing is cropped (the U-Net
up-sampling layer), every input voxel owns its own block of outputs and
`_disjoint_item` runs the whole layer as one matrix product written into
strided output positions.  Outputs too large for the cache are written with
non-temporal stores.  Threads take whole work items (tile ranges), so no two
ever write the same voxel: no atomics, no races, and the summation order of
every output does not depend on the thread count.
"""

from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy
from libc.stddef cimport ptrdiff_t
from libc.math cimport exp, expm1, log1p, tanh, erf, sqrt, fabs

import numpy as np

from _openmp_helpers cimport OPENMP_ENABLED, OPENMP_VERSION, omp_get_max_threads

cdef extern from "kernels/kernels.h" nogil:
    int DC3_MR
    int DC3_RUN
    int DC3_RELU
    int DC3_STREAM
    int DC3_NR_SMALL_F32
    int DC3_NR_F32
    int DC3_NR_WIDE_F32
    int DC3_NR_SMALL_F64
    int DC3_NR_F64
    int DC3_NR_WIDE_F64
    int DC3_KIND_GEMM
    int DC3_KIND_ROW
    ctypedef void (*dc3_fn_f32)(ptrdiff_t, ptrdiff_t, const float**, const float*,
                                const ptrdiff_t*, const float*, float**, int, int,
                                ptrdiff_t) noexcept nogil
    ctypedef void (*dc3_fn_f64)(ptrdiff_t, ptrdiff_t, const double**, const double*,
                                const ptrdiff_t*, const double*, double**, int, int,
                                ptrdiff_t) noexcept nogil
    ctypedef struct dc3_kernel:
        const char* name
        const char* isa
        int itemsize
        int kind
        int nr
        int taps
        int spacing
        dc3_fn_f32 f32
        dc3_fn_f64 f64
    const dc3_kernel* dc3_find_kernel(int itemsize, int kind, int nr, int taps, int spacing)
    int dc3_wide_available()
    const char* dc3_isa_name()
    void dc3_store_fence()

# the first call fixes the kernels for the process (DECONV3D_KERNEL is read once)
cdef bint wide_panels = dc3_wide_available()

openmp_enabled = bool(OPENMP_ENABLED)
openmp_version = OPENMP_VERSION
micro_kernel = dc3_isa_name().decode()
MR = DC3_MR
# the tile size, as a compile-time constant for the driver's fixed-size arrays
cdef enum:
    TILE_VOXELS = 12
if TILE_VOXELS != DC3_MR:
    raise ImportError("deconv3d._core was built with mismatched tile sizes")


def default_thread_count():
    """Threads a parallel region uses by default (follows OMP_NUM_THREADS)."""
    return omp_get_max_threads()


ctypedef fused floating:
    float
    double

# Element-wise activations fused into the core.  The numbers are part of the
# interface with deconv3d.activations, which maps Keras names onto them.
cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_RELU6 = 2
    ACT_LEAKY_RELU = 3
    ACT_ELU = 4
    ACT_CELU = 5
    ACT_SELU = 6
    ACT_GELU = 7
    ACT_SIGMOID = 8
    ACT_TANH = 9
    ACT_HARD_SIGMOID = 10
    ACT_HARD_SILU = 11
    ACT_SILU = 12
    ACT_SOFTPLUS = 13
    ACT_SOFTSIGN = 14
    ACT_MISH = 15
    ACT_EXPONENTIAL = 16
    ACT_SQUAREPLUS = 17
    ACT_SPARSE_PLUS = 18
    ACT_SPARSE_SIGMOID = 19
    ACT_SOFT_SHRINK = 20
    ACT_HARD_SHRINK = 21
    ACT_HARD_TANH = 22
    ACT_TANH_SHRINK = 23
    ACT_LOG_SIGMOID = 24

ACTIVATION_CODES = {
    "linear": ACT_LINEAR, "relu": ACT_RELU, "relu6": ACT_RELU6,
    "leaky_relu": ACT_LEAKY_RELU, "elu": ACT_ELU, "celu": ACT_CELU, "selu": ACT_SELU,
    "gelu": ACT_GELU, "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH,
    "hard_sigmoid": ACT_HARD_SIGMOID, "hard_silu": ACT_HARD_SILU, "silu": ACT_SILU,
    "softplus": ACT_SOFTPLUS, "softsign": ACT_SOFTSIGN, "mish": ACT_MISH,
    "exponential": ACT_EXPONENTIAL, "squareplus": ACT_SQUAREPLUS,
    "sparse_plus": ACT_SPARSE_PLUS, "sparse_sigmoid": ACT_SPARSE_SIGMOID,
    "soft_shrink": ACT_SOFT_SHRINK, "hard_shrink": ACT_HARD_SHRINK,
    "hard_tanh": ACT_HARD_TANH, "tanh_shrink": ACT_TANH_SHRINK,
    "log_sigmoid": ACT_LOG_SIGMOID,
}

cdef inline double _softplus(double v) noexcept nogil:
    # log(1 + e^v) without overflow, as logaddexp(v, 0)
    return (v if v > 0 else 0.0) + log1p(exp(-fabs(v)))


cdef inline double _sigmoid(double v) noexcept nogil:
    if v >= 0:
        return 1.0 / (1.0 + exp(-v))
    cdef double e = exp(v)
    return e / (1.0 + e)


cdef inline double _relu6(double v) noexcept nogil:
    # comparisons written so that NaN passes through, as jnp.maximum/minimum do
    if v < 0:
        return 0.0
    if v > 6:
        return 6.0
    return v


cdef double _activate(double v, int code) noexcept nogil:
    """One element of a Keras activation, computed in double precision."""
    if code == ACT_RELU:
        return 0.0 if v < 0 else v
    elif code == ACT_RELU6:
        return _relu6(v)
    elif code == ACT_LEAKY_RELU:
        return v if v >= 0 else 0.2 * v
    elif code == ACT_ELU:
        return v if v > 0 else expm1(v)
    elif code == ACT_CELU:
        if v != v:
            return v        # NaN stays NaN, as in Keras
        return (v if v > 0 else 0.0) + expm1(v if v < 0 else 0.0)
    elif code == ACT_SELU:
        return 1.0507009873554804934193349852946 * (
            v if v > 0 else 1.6732632423543772848170429916717 * expm1(v))
    elif code == ACT_GELU:
        return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440))
    elif code == ACT_SIGMOID:
        return _sigmoid(v)
    elif code == ACT_TANH:
        return tanh(v)
    elif code == ACT_HARD_SIGMOID:
        return _relu6(v + 3.0) / 6.0
    elif code == ACT_HARD_SILU:
        return v * _relu6(v + 3.0) / 6.0
    elif code == ACT_SILU:
        return v * _sigmoid(v)
    elif code == ACT_SOFTPLUS:
        return _softplus(v)
    elif code == ACT_SOFTSIGN:
        return v / (1.0 + fabs(v))
    elif code == ACT_MISH:
        return v * tanh(_softplus(v))
    elif code == ACT_EXPONENTIAL:
        return exp(v)
    elif code == ACT_SQUAREPLUS:
        return (v + sqrt(v * v + 4.0)) / 2.0
    elif code == ACT_SPARSE_PLUS:
        if v <= -1:
            return 0.0
        if v >= 1:
            return v
        return (v + 1.0) * (v + 1.0) / 4.0
    elif code == ACT_SPARSE_SIGMOID:
        if v <= -1:
            return 0.0
        if v >= 1:
            return 1.0
        return 0.5 * (v + 1.0)
    elif code == ACT_SOFT_SHRINK:
        # like jnp.where(x > t, x - t, jnp.where(x < -t, x + t, 0)): NaN gives 0
        if v > 0.5:
            return v - 0.5
        if v < -0.5:
            return v + 0.5
        return 0.0
    elif code == ACT_HARD_SHRINK:
        return v if fabs(v) > 0.5 else 0.0
    elif code == ACT_HARD_TANH:
        if v > 1:
            return 1.0
        if v < -1:
            return -1.0
        return v
    elif code == ACT_TANH_SHRINK:
        return v - tanh(v)
    elif code == ACT_LOG_SIGMOID:
        return -_softplus(-v)
    return v


# ---------------------------------------------------------------- kernel packing
def _phase_taps(Py_ssize_t ksize, Py_ssize_t stride, Py_ssize_t dilation):
    """For each phase r of one axis: the taps t reaching it and their input offsets."""
    phases = []
    for r in range(stride):
        taps = [t for t in range(ksize) if (r - t * dilation) % stride == 0]
        # by input offset: with dilation 1 a phase's taps then read consecutive input
        # voxels in order, which lets the driver merge a row of them into one tap
        phases.append(sorted(((t, (r - t * dilation) // stride) for t in taps),
                             key=lambda pair: pair[1]))
    return phases


def _panel_width(filters, small, normal, wide):
    """Filters per packed panel: the widest kernel that pads the filters little.

    A layer with few filters gets one-vector panels (no padded columns); the wide
    AVX-512 panels are used where the CPU has them and they add at most 1/8 more
    padded columns than the normal ones.
    """
    if filters <= small:
        return small
    normal_cols = -(-filters // normal) * normal
    if wide_panels and -(-filters // wide) * wide * 8 <= normal_cols * 9:
        return wide
    return normal


def _aligned_copy(values):
    """A copy of a 1-D array starting on a 64-byte boundary.

    The micro-kernels load whole cache lines of weights; NumPy aligns its buffers to
    16 bytes only, and a vector load across two cache lines costs two.
    """
    raw = np.empty(values.nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    aligned = raw[start:start + values.nbytes].view(values.dtype)
    aligned[:] = values
    return aligned


cdef class PackedKernel:
    """A Keras kernel (kd, kh, kw, F, C) rearranged, once, for the micro-kernels.

    For each phase (rd, rh, rw) and each block of NR filters, the phase's taps
    follow one another, each a contiguous (C x NR) panel, filters zero-padded to
    a multiple of NR.  Independent of the input size and of the crops.
    """

    cdef readonly object weights            # 1-D array in the core dtype
    cdef readonly tuple kernel_size, strides, dilations
    cdef readonly Py_ssize_t channels, filters, nr, filter_blocks, max_axis_taps, max_taps
    cdef Py_ssize_t[:, ::1] axis_taps       # (3, max stride): taps per phase of each axis
    cdef Py_ssize_t[:, :, ::1] axis_delta   # (3, max stride, max taps): input offsets
    cdef Py_ssize_t[::1] phase_offset       # where each phase's panels start in weights

    def __init__(self, kernel, strides, dilations, dtype):
        kernel = np.asarray(kernel, dtype=dtype)
        kd, kh, kw, filters, channels = kernel.shape
        self.kernel_size = (kd, kh, kw)
        self.strides = tuple(int(s) for s in strides)
        self.dilations = tuple(int(d) for d in dilations)
        self.channels, self.filters = channels, filters
        if kernel.dtype == np.float32:
            self.nr = _panel_width(filters, DC3_NR_SMALL_F32, DC3_NR_F32, DC3_NR_WIDE_F32)
        else:
            self.nr = _panel_width(filters, DC3_NR_SMALL_F64, DC3_NR_F64, DC3_NR_WIDE_F64)
        self.filter_blocks = -(-filters // self.nr)
        axes = [_phase_taps(k, s, d) for k, s, d in zip(self.kernel_size, self.strides,
                                                         self.dilations)]
        smax = max(self.strides)
        self.max_axis_taps = max(1, max(len(p) for phases in axes for p in phases))
        # most taps any one phase has (what a tile's buffers must hold)
        self.max_taps = 1
        for phases in axes:
            self.max_taps *= max(1, max(len(p) for p in phases))
        taps = np.zeros((3, smax), dtype=np.intp)
        delta = np.zeros((3, smax, self.max_axis_taps), dtype=np.intp)
        for a, phases in enumerate(axes):
            for r, pairs in enumerate(phases):
                taps[a, r] = len(pairs)
                for j, (_, offset) in enumerate(pairs):
                    delta[a, r, j] = offset
        self.axis_taps, self.axis_delta = taps, delta

        padded = np.zeros((kd, kh, kw, channels, self.filter_blocks * self.nr), dtype=dtype)
        padded[..., :filters] = kernel.transpose(0, 1, 2, 4, 3)
        panels, offsets, position = [], [], 0
        for rd, dtaps in enumerate(axes[0]):
            for rh, htaps in enumerate(axes[1]):
                for rw, wtaps in enumerate(axes[2]):
                    offsets.append(position)
                    sub = padded[np.ix_([t for t, _ in dtaps], [t for t, _ in htaps],
                                        [t for t, _ in wtaps])]
                    n_taps = len(dtaps) * len(htaps) * len(wtaps)
                    # (taps, C, blocks, NR) -> (blocks, taps, C, NR)
                    sub = sub.reshape(n_taps, channels, self.filter_blocks, self.nr)
                    panel = sub.transpose(2, 0, 1, 3).ravel()
                    panels.append(panel)
                    position += panel.size
        self.phase_offset = np.asarray(offsets, dtype=np.intp)
        self.weights = _aligned_copy(np.concatenate(panels) if position
                                     else np.zeros(1, dtype=dtype))

    @property
    def dtype(self):
        return self.weights.dtype


# ---------------------------------------------------------------- the driver
# Above this size the packed kernel no longer stays in L2 while one work item sweeps
# every phase, so items take one phase each (see conv3d_transpose).
ALL_PHASES_MAX_KERNEL_BYTES = 1 << 20
# Outputs at least this large are written with non-temporal stores: they cannot stay
# in cache anyway, and a normal store first reads each line it writes (measured here:
# 17 GB/s with normal stores, 47 GB/s streaming, on two threads).  Smaller outputs
# stay in cache for whoever reads them next.
STREAM_MIN_BYTES = 16 << 20

cdef struct Geometry:
    # sizes
    Py_ssize_t N, D, H, W, C, OD, OH, OW, F
    Py_ssize_t nr, blocks, max_axis_taps, max_taps, chunk_tiles, kc
    # per axis (d, h, w): stride and crop
    Py_ssize_t sd, sh, sw, pd, ph, pw
    # tile order: batch index fastest (many images, small volumes) or w fastest; with
    # w fastest, w_lines puts each row's interior into whole tiles (see _row_split)
    bint batch_fastest, w_lines
    int activation
    # write finished output tiles with non-temporal stores (see STREAM_MIN_BYTES)
    bint stream


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # b > 0; correct for negative a too
    return -((-a) // b) if a < 0 else (a + b - 1) // b


cdef inline Py_ssize_t _floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return -((-a + b - 1) // b) if a < 0 else a // b


cdef inline bint _inside(Py_ssize_t i, Py_ssize_t length) noexcept nogil:
    return 0 <= i < length


cdef inline const dc3_kernel* _row_kernel(Py_ssize_t nr, Py_ssize_t tw_n,
                                          const Py_ssize_t* dw, int itemsize) noexcept nogil:
    """The row kernel that suits a phase's w taps, or NULL: the taps evenly spaced, and
    a kernel for their count, spacing and the panel width on this CPU (kernels.h)."""
    cdef Py_ssize_t t, spacing
    if tw_n < 2:
        return NULL
    spacing = dw[1] - dw[0]
    for t in range(2, tw_n):
        if dw[t] - dw[t - 1] != spacing:
            return NULL
    if spacing != <int>spacing:
        return NULL
    return dc3_find_kernel(itemsize, DC3_KIND_ROW, nr, tw_n, spacing)


cdef inline void _axis_masks(unsigned int* masks, Py_ssize_t n_taps, const Py_ssize_t* delta,
                             Py_ssize_t (*nq)[4], Py_ssize_t n_valid, int axis,
                             Py_ssize_t length) noexcept nogil:
    """masks[t]: bit m set when tap t of one axis reaches the input for voxel m."""
    cdef Py_ssize_t t, m
    cdef unsigned int bits
    for t in range(n_taps):
        bits = 0        # in a register: masks may alias nothing, but the compiler can't tell
        for m in range(n_valid):
            # one unsigned comparison for 0 <= i < length
            bits |= (<size_t>(nq[m][axis] + delta[t]) < <size_t>length) << m
        masks[t] = bits


cdef inline bint _line_masks(unsigned int* md, unsigned int* mh, unsigned int* mw,
                             Py_ssize_t td_n, Py_ssize_t th_n, Py_ssize_t tw_n,
                             const Py_ssize_t* dd, const Py_ssize_t* dh, const Py_ssize_t* dw,
                             Py_ssize_t (*nq)[4], Py_ssize_t n_valid, bint batch_fastest,
                             Py_ssize_t D, Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    """The tap masks of a full tile lying on one line of the input, cheaply.

    Along such a line only the fastest coordinate changes, by one per voxel, so
    each tap reaches all of the line (both ends) or none of it.  Returns False,
    leaving the masks to `_axis_masks`, when the tile is not such a line or some
    tap reaches only part of it.
    """
    cdef Py_ssize_t t, last = DC3_MR - 1
    cdef unsigned int everyone = (1u << DC3_MR) - 1
    if n_valid != DC3_MR:
        return False
    if batch_fastest:
        if nq[0][1] != nq[last][1] or nq[0][2] != nq[last][2] or nq[0][3] != nq[last][3]:
            return False
    elif (nq[0][0] != nq[last][0] or nq[0][1] != nq[last][1] or nq[0][2] != nq[last][2]
          or nq[last][3] - nq[0][3] != last):
        return False
    for t in range(tw_n):
        if _inside(nq[0][3] + dw[t], W) and _inside(nq[last][3] + dw[t], W):
            mw[t] = everyone
        elif nq[last][3] + dw[t] < 0 or nq[0][3] + dw[t] >= W:
            mw[t] = 0
        else:
            return False
    for t in range(td_n):
        md[t] = everyone if _inside(nq[0][1] + dd[t], D) else 0
    for t in range(th_n):
        mh[t] = everyone if _inside(nq[0][2] + dh[t], H) else 0
    return True


cdef inline unsigned int _rows_reaching(Py_ssize_t (*nq)[4], Py_ssize_t n_valid,
                                       Py_ssize_t per_row, int axis, Py_ssize_t delta,
                                       Py_ssize_t length) noexcept nogil:
    """The voxel bits of the rows (per_row voxels each, in order) whose coordinate on
    `axis`, moved by delta, lies inside the input."""
    cdef unsigned int bits = 0, row_bits = (1u << per_row) - 1
    cdef Py_ssize_t m = 0
    while m < n_valid:
        if _inside(nq[m][axis] + delta, length):
            bits |= row_bits << m
        m = m + per_row
    return bits


cdef inline void _w_line_masks(unsigned int* md, unsigned int* mh, unsigned int* mw,
                               Py_ssize_t td_n, Py_ssize_t th_n, Py_ssize_t tw_n,
                               const Py_ssize_t* dd, const Py_ssize_t* dh,
                               const Py_ssize_t* dw, Py_ssize_t (*nq)[4], Py_ssize_t n_valid,
                               Py_ssize_t per_row, bint is_run, Py_ssize_t D, Py_ssize_t H,
                               Py_ssize_t W) noexcept nogil:
    """The tap masks of a tile in the w_lines order, a row at a time.

    The tile's voxels come per_row to a row (n, d and h shared), rows in order; a
    run lies inside its row's interior, so every w tap reaches it, and a column's
    voxels share their w.
    """
    cdef Py_ssize_t t
    cdef unsigned int valid = (1u << n_valid) - 1
    for t in range(td_n):
        md[t] = _rows_reaching(nq, n_valid, per_row, 1, dd[t], D)
    for t in range(th_n):
        mh[t] = _rows_reaching(nq, n_valid, per_row, 2, dh[t], H)
    for t in range(tw_n):
        mw[t] = valid if is_run or (n_valid > 0 and _inside(nq[0][3] + dw[t], W)) else 0


cdef inline void _row_split(Py_ssize_t nqw, Py_ssize_t q0w, Py_ssize_t W,
                           const Py_ssize_t* dw, Py_ssize_t tw_n, Py_ssize_t forced_run,
                           Py_ssize_t* lo, Py_ssize_t* k, Py_ssize_t* r,
                           Py_ssize_t* run) noexcept nogil:
    """How the w_lines order splits one row of a phase (nqw voxels).

    Voxels [lo, lo + run * k) of a row are interior (every w tap reaches the input
    for them) and form k runs of `run` voxels; a tile takes one run from each of
    MR / run consecutive rows.  The run length is the divisor of MR that leaves the
    fewest interior voxels over (a row of 30 takes runs of 6, not 12).  The r other
    voxels of a row (its borders and the remainder) are taken column by column across
    a band of MR rows, so that a tile of them shares one set of w taps instead of
    mixing a row's two ends.  A phase served by row kernels takes forced_run = their
    run length instead.
    """
    cdef Py_ssize_t first = 0, end = nqw, length, best = -1, candidate
    cdef int i
    cdef Py_ssize_t runs[5]
    runs[0], runs[1], runs[2], runs[3], runs[4] = DC3_MR, DC3_MR // 2, DC3_MR // 3, \
        DC3_MR // 4, DC3_MR // 6
    if tw_n > 0:        # taps are sorted by input offset
        first = min(max(-q0w - dw[0], 0), nqw)
        end = min(max(W - q0w - dw[tw_n - 1], first), nqw)
    length = end - first
    run[0] = DC3_MR
    for i in range(5):
        candidate = (length // runs[i]) * runs[i]
        if candidate > best:
            best = candidate
            run[0] = runs[i]
    if forced_run > 0:
        run[0] = forced_run
    lo[0] = first
    k[0] = length // run[0]
    r[0] = nqw - k[0] * run[0]


cdef inline Py_ssize_t _w_line_tiles(Py_ssize_t rows, Py_ssize_t k, Py_ssize_t r,
                                     Py_ssize_t run) noexcept nogil:
    """Tiles of a phase in the w_lines order: bands of MR rows, each with run * k
    tiles of runs and r column tiles (a last, thinner band has partial tiles)."""
    cdef Py_ssize_t last_band = rows % DC3_MR, per_tile = DC3_MR // run
    return ((rows // DC3_MR) * (run * k + r)
            + (_ceil_div(last_band, per_tile) * k + r if last_band else 0))


cdef inline Py_ssize_t _w_line_tile(Py_ssize_t tile, Py_ssize_t rows, Py_ssize_t lo,
                                    Py_ssize_t k, Py_ssize_t r, Py_ssize_t run,
                                    Py_ssize_t nqd, Py_ssize_t nqh, Py_ssize_t (*nq)[4],
                                    bint* is_run) noexcept nogil:
    """The voxels of a tile in the w_lines order, as grid coordinates (n, qd, qh, qw)
    relative to the phase's first; returns how many there are (the rest are past the
    phase's last row), and sets is_run for a tile of runs (not a column).  A tile's
    rows are consecutive, so only its first row costs divisions."""
    cdef Py_ssize_t per_band = run * k + r, per_tile = DC3_MR // run
    cdef Py_ssize_t band = tile // per_band, u = tile - band * per_band
    cdef Py_ssize_t band_rows = min(DC3_MR, rows - band * DC3_MR)
    cdef Py_ssize_t groups = _ceil_div(band_rows, per_tile)
    cdef Py_ssize_t first_row, n_rows, w0, per_row, j, i, m = 0, n, qd, qh, row
    if u < groups * k:              # run u % k of per_tile consecutive rows
        first_row = band * DC3_MR + (u // k) * per_tile
        n_rows = min(per_tile, band * DC3_MR + band_rows - first_row)
        w0 = lo + run * (u % k)
        per_row = run
        is_run[0] = True
    else:                           # column j of the band's leftovers, one voxel per row
        first_row = band * DC3_MR
        n_rows = band_rows
        j = u - groups * k
        w0 = j if j < lo else j + run * k
        per_row = 1
        is_run[0] = False
    qh = first_row % nqh
    qd = (first_row // nqh) % nqd
    n = first_row // (nqh * nqd)
    for row in range(n_rows):
        for i in range(per_row):
            nq[m][0] = n
            nq[m][1] = qd
            nq[m][2] = qh
            nq[m][3] = w0 + i
            m = m + 1
        qh = qh + 1
        if qh == nqh:
            qh = 0
            qd = qd + 1
            if qd == nqd:
                qd = 0
                n = n + 1
    return m


cdef inline void _shift_row_tile(Py_ssize_t tile, Py_ssize_t max_taps, Py_ssize_t* ntaps,
                                 Py_ssize_t* channels, Py_ssize_t* group_taps,
                                 unsigned char* by_rows, Py_ssize_t* woff,
                                 const floating** aptr, floating** vox, const floating* zeros,
                                 Py_ssize_t in_shift, Py_ssize_t out_shift) noexcept nogil:
    """Tile `tile` as the row tile before it moved along its rows: in_shift values on
    in the input and out_shift in the output (rows of zeros stay)."""
    cdef Py_ssize_t e, r, m, count = ntaps[tile - 1]
    cdef const floating** src = aptr + (tile - 1) * max_taps * DC3_MR
    cdef const floating** dst = aptr + tile * max_taps * DC3_MR
    ntaps[tile] = count
    channels[tile] = channels[tile - 1]
    group_taps[tile] = group_taps[tile - 1]
    by_rows[tile] = 1
    for e in range(count):
        woff[tile * max_taps + e] = woff[(tile - 1) * max_taps + e]
        for r in range(2):      # the row kernels read each run's first voxel only
            m = e * DC3_MR + r * DC3_RUN
            dst[m] = src[m] if src[m] == zeros else src[m] + in_shift
    for m in range(DC3_MR):
        vox[tile * DC3_MR + m] = (NULL if vox[(tile - 1) * DC3_MR + m] == NULL
                                  else vox[(tile - 1) * DC3_MR + m] + out_shift)


cdef void _work_item(const floating* x, const floating* weights, const floating* bias,
                     floating* out, const floating* zeros, const Geometry* g,
                     const Py_ssize_t* axis_taps, const Py_ssize_t* axis_delta,
                     const Py_ssize_t* phase_offset, Py_ssize_t smax,
                     Py_ssize_t phase, Py_ssize_t first_tile, Py_ssize_t n_tiles,
                     Py_ssize_t* woff, const floating** aptr, Py_ssize_t* ntaps,
                     Py_ssize_t* channels, Py_ssize_t* group_taps, unsigned char* by_rows,
                     floating** vox, floating* scratch,
                     floating** outp, unsigned int* tap_masks,
                     const Py_ssize_t* phase_run) noexcept nogil:
    """Compute the output tiles [first_tile, first_tile + n_tiles) of one phase."""
    cdef Py_ssize_t MR_ = DC3_MR, nr = g.nr, C = g.C, mt = g.max_axis_taps
    cdef Py_ssize_t rw = phase % g.sw, rh = (phase // g.sw) % g.sh, rd = phase // (g.sw * g.sh)
    # number of taps per axis for this phase, and their input offsets
    cdef Py_ssize_t td_n = axis_taps[0 * smax + rd], th_n = axis_taps[1 * smax + rh]
    cdef Py_ssize_t tw_n = axis_taps[2 * smax + rw]
    cdef const Py_ssize_t* dd = axis_delta + (0 * smax + rd) * mt
    cdef const Py_ssize_t* dh = axis_delta + (1 * smax + rh) * mt
    cdef const Py_ssize_t* dw = axis_delta + (2 * smax + rw) * mt
    # range of q = u div stride covered by this phase on each axis
    cdef Py_ssize_t q0d = _ceil_div(g.pd - rd, g.sd), q0h = _ceil_div(g.ph - rh, g.sh)
    cdef Py_ssize_t q0w = _ceil_div(g.pw - rw, g.sw)
    cdef Py_ssize_t nqd = _floor_div(g.OD - 1 + g.pd - rd, g.sd) - q0d + 1
    cdef Py_ssize_t nqh = _floor_div(g.OH - 1 + g.ph - rh, g.sh) - q0h + 1
    cdef Py_ssize_t nqw = _floor_div(g.OW - 1 + g.pw - rw, g.sw) - q0w + 1
    cdef Py_ssize_t voxels = g.N * nqd * nqh * nqw
    cdef Py_ssize_t phase_taps = td_n * th_n * tw_n
    cdef Py_ssize_t tile, m, v, n, qd, qh, qw, ad, ah, aw, u, k, j, f, ncols, first, last
    cdef Py_ssize_t count, group, groups, per_group, w_first, w_last
    cdef Py_ssize_t n_valid, tap_offset
    cdef floating* o
    cdef floating** vp
    cdef const floating** ptrs
    cdef const floating* block_bias
    cdef const floating* block_weights
    # per axis and tap: which voxels of the tile it reaches (bit m for voxel m)
    cdef unsigned int* md = tap_masks
    cdef unsigned int* mh = tap_masks + mt
    cdef unsigned int* mw = tap_masks + 2 * mt
    cdef unsigned int mask_dh, mask, valid
    cdef Py_ssize_t nq[TILE_VOXELS][4]   # per voxel of the tile: n, input-grid d, h, w
    cdef Py_ssize_t base[TILE_VOXELS]    # per voxel: input offset of its grid point
    cdef bint full, merged
    # w taps reading consecutive input voxels (always so with dilation 1)
    cdef bint w_consecutive = True
    for aw in range(1, tw_n):
        w_consecutive = w_consecutive and dw[aw] == dw[aw - 1] + 1
    cdef int relu = g.activation == ACT_RELU, flags
    cdef int act = g.activation if not relu else ACT_LINEAR
    cdef Py_ssize_t rows = g.N * nqd * nqh, row_lo, row_k, row_r, row_run
    # the kernel for every tile, and the row kernel for this phase's run tiles if there
    # is one (_row_kernel)
    cdef const dc3_kernel* gemm = dc3_find_kernel(sizeof(floating), DC3_KIND_GEMM, nr, 0, 0)
    cdef const dc3_kernel* row_kernel = NULL
    cdef bint is_run = False, row_tile
    # the grid coordinates of the last row tile's first voxel, and its voxel count
    cdef Py_ssize_t last_run[4]
    cdef Py_ssize_t last_valid = -1
    if nqd <= 0 or nqh <= 0 or nqw <= 0:
        return
    if g.w_lines:
        row_kernel = _row_kernel(nr, tw_n, dw, sizeof(floating))
        _row_split(nqw, q0w, g.W, dw, tw_n, phase_run[phase], &row_lo, &row_k, &row_r,
                   &row_run)

    # the first voxel's coordinates; later voxels follow by counting (no divisions)
    v = first_tile * MR_
    if g.batch_fastest:
        n = v % g.N
        qw = (v // g.N) % nqw
        qh = (v // (g.N * nqw)) % nqh
        qd = v // (g.N * nqw * nqh)
    else:
        qw = v % nqw
        qh = (v // nqw) % nqh
        qd = (v // (nqw * nqh)) % nqd
        n = v // (nqw * nqh * nqd)

    # 1. per tile: the voxels' output addresses, and the indirection table: for every
    #    tap that reaches some voxel of the tile, each voxel's input channels (or the
    #    zero row where that tap falls outside the input for that voxel)
    for tile in range(n_tiles):
        vp = vox + tile * MR_
        if g.w_lines:
            n_valid = _w_line_tile(first_tile + tile, rows, row_lo, row_k, row_r, row_run,
                                   nqd, nqh, nq, &is_run)
            if (is_run and tile > 0 and by_rows[tile - 1] and n_valid == last_valid
                    and nq[0][0] == last_run[0] and nq[0][1] == last_run[1]
                    and nq[0][2] == last_run[2] and nq[0][3] == last_run[3] + row_run):
                # the next runs of the previous row tile's rows: the same taps reach
                # them, so its table shifted along the rows serves (no masks, no table)
                _shift_row_tile(tile, g.max_taps, ntaps, channels, group_taps, by_rows,
                                woff, aptr, vox, zeros, row_run * C, row_run * g.sw * g.F)
                last_run[3] = nq[0][3]
                continue
            last_valid = n_valid
            last_run[0], last_run[1], last_run[2], last_run[3] = nq[0][0], nq[0][1], nq[0][2], nq[0][3]
        else:
            n_valid = 0
            for m in range(MR_):
                if v >= voxels:
                    break
                nq[m][0] = n
                nq[m][1] = qd
                nq[m][2] = qh
                nq[m][3] = qw
                n_valid = n_valid + 1
                v = v + 1
                if g.batch_fastest:
                    n = n + 1
                    if n == g.N:
                        n = 0
                        qw = qw + 1
                        if qw == nqw:
                            qw = 0
                            qh = qh + 1
                            if qh == nqh:
                                qh = 0
                                qd = qd + 1
                else:
                    qw = qw + 1
                    if qw == nqw:
                        qw = 0
                        qh = qh + 1
                        if qh == nqh:
                            qh = 0
                            qd = qd + 1
                            if qd == nqd:
                                qd = 0
                                n = n + 1
        # present voxels come first; from grid coordinates to input-grid ones
        valid = (1u << n_valid) - 1
        for m in range(MR_):
            if m >= n_valid:
                vp[m] = NULL
                continue
            nq[m][1] = nq[m][1] + q0d
            nq[m][2] = nq[m][2] + q0h
            nq[m][3] = nq[m][3] + q0w
            if (m > 0 and nq[m][3] == nq[m - 1][3] + 1 and nq[m][2] == nq[m - 1][2]
                    and nq[m][1] == nq[m - 1][1] and nq[m][0] == nq[m - 1][0]):
                # the next voxel of a row: no multiplications
                base[m] = base[m - 1] + C
                vp[m] = vp[m - 1] + g.sw * g.F
                continue
            base[m] = (((nq[m][0] * g.D + nq[m][1]) * g.H + nq[m][2]) * g.W + nq[m][3]) * C
            vp[m] = out + (((nq[m][0] * g.OD + g.sd * nq[m][1] + rd - g.pd) * g.OH
                            + g.sh * nq[m][2] + rh - g.ph) * g.OW
                           + g.sw * nq[m][3] + rw - g.pw) * g.F
        count = 0
        merged = False
        row_tile = False
        w_first = 0
        w_last = 0
        if C > 0:
            if g.w_lines:
                _w_line_masks(md, mh, mw, td_n, th_n, tw_n, dd, dh, dw, nq, n_valid,
                              row_run if is_run else 1, is_run, g.D, g.H, g.W)
            elif not _line_masks(md, mh, mw, td_n, th_n, tw_n, dd, dh, dw, nq, n_valid,
                                 g.batch_fastest, g.D, g.H, g.W):
                _axis_masks(md, td_n, dd, nq, n_valid, 1, g.D)
                _axis_masks(mh, th_n, dh, nq, n_valid, 2, g.H)
                _axis_masks(mw, tw_n, dw, nq, n_valid, 3, g.W)
            # w taps over consecutive input voxels that each reach every voxel of the
            # tile (the others reaching none) are one tap over their channels laid end
            # to end, as are their weight panels
            if w_consecutive and tw_n > 1:
                merged = True
                w_first = -1
                for aw in range(tw_n):
                    mask = mw[aw] & valid
                    if mask == valid:
                        if w_first < 0:
                            w_first = aw
                        merged = merged and (w_first == aw or w_last == aw - 1)
                        w_last = aw
                    elif mask != 0:
                        merged = False
                merged = merged and w_first >= 0
            # a tile of two runs of DC3_RUN whose every w tap reaches every voxel goes to
            # the row kernel: one table entry per (d, h) tap pair, at w tap 0
            row_tile = is_run and row_kernel != NULL and row_run == DC3_RUN
            for aw in range(tw_n):
                row_tile = row_tile and (mw[aw] & valid) == valid
            if row_tile:
                merged = True
                w_first = 0
                w_last = tw_n - 1
            for ad in range(td_n):
                if md[ad] == 0:
                    continue
                for ah in range(th_n):
                    mask_dh = md[ad] & mh[ah]
                    if mask_dh == 0:
                        continue
                    for aw in range(tw_n):
                        mask = mask_dh & mw[aw]
                        if mask == 0 or (merged and aw != w_first):
                            continue
                        u = (ad * th_n + ah) * tw_n + aw
                        woff[tile * g.max_taps + count] = u * C * nr
                        tap_offset = ((dd[ad] * g.H + dh[ah]) * g.W + dw[aw]) * C
                        ptrs = aptr + (tile * g.max_taps + count) * MR_
                        if row_tile:        # the row kernels read each run's first only
                            for m in range(2):
                                ptrs[m * DC3_RUN] = (x + base[m * DC3_RUN] + tap_offset
                                                     if (mask >> (m * DC3_RUN)) & 1 else zeros)
                        else:
                            for m in range(MR_):
                                ptrs[m] = x + base[m] + tap_offset if (mask >> m) & 1 else zeros
                        count = count + 1
        ntaps[tile] = count
        channels[tile] = C * (w_last - w_first + 1) if merged else C
        group_taps[tile] = max(1, g.kc // max(channels[tile], 1))
        by_rows[tile] = row_tile

    # 2. The reduction over taps runs in groups of about KC values, and for each group
    #    filter block by filter block over every tile: a group's input stays in L2 and a
    #    block's weights in L1 while every tile of the item uses them.  Voxels past the
    #    end and filters past F go to a scratch tile (zeroed once per thread: what it
    #    holds for voxels past the end is never read out).
    # taps per group: a tile's taps have C channels each, or a multiple once merged
    groups = 1
    for tile in range(n_tiles):
        per_group = group_taps[tile]
        groups = max(groups, (ntaps[tile] + per_group - 1) // per_group)
    for group in range(groups):
        for j in range(g.blocks):
            full = g.F - j * nr >= nr
            block_bias = NULL if bias == NULL else bias + j * nr
            block_weights = weights + phase_offset[phase] + j * phase_taps * C * nr
            for tile in range(n_tiles):
                per_group = group_taps[tile]
                first = group * per_group
                if first >= ntaps[tile] and group > 0:
                    continue
                last = min(ntaps[tile], first + per_group)
                vp = vox + tile * MR_
                for m in range(MR_):
                    if vp[m] != NULL and full:
                        outp[m] = vp[m] + j * nr
                    else:
                        outp[m] = scratch + (tile * MR_ + m) * nr
                count = max(0, last - first)
                # relu and streaming only when this group finishes the tile
                flags = 0
                if last >= ntaps[tile]:
                    flags = ((DC3_RELU if relu else 0)
                             | (DC3_STREAM if g.stream and full else 0))
                if by_rows[tile] and floating is float:
                    row_kernel.f32(
                        count, C, <const float**>(aptr + (tile * g.max_taps + first) * MR_),
                        <const float*>block_weights,
                        <const ptrdiff_t*>(woff + tile * g.max_taps + first),
                        <const float*>block_bias, <float**>outp, group > 0, flags, C)
                elif by_rows[tile]:
                    row_kernel.f64(
                        count, C, <const double**>(aptr + (tile * g.max_taps + first) * MR_),
                        <const double*>block_weights,
                        <const ptrdiff_t*>(woff + tile * g.max_taps + first),
                        <const double*>block_bias, <double**>outp, group > 0, flags, C)
                elif floating is float:
                    gemm.f32(
                        count, channels[tile], <const float**>(aptr + (tile * g.max_taps + first) * MR_),
                        <const float*>block_weights,
                        <const ptrdiff_t*>(woff + tile * g.max_taps + first),
                        <const float*>block_bias,
                        <float**>outp, group > 0, flags, 0)
                else:
                    gemm.f64(
                        count, channels[tile], <const double**>(aptr + (tile * g.max_taps + first) * MR_),
                        <const double*>block_weights,
                        <const ptrdiff_t*>(woff + tile * g.max_taps + first),
                        <const double*>block_bias,
                        <double**>outp, group > 0, flags, 0)

    # 3. partial filter blocks out of the scratch tile, then non-fused activations
    for j in range(g.blocks):
        ncols = min(nr, g.F - j * nr)
        full = ncols == nr
        for tile in range(n_tiles):
            vp = vox + tile * MR_
            for m in range(MR_):
                if vp[m] == NULL:
                    continue
                o = vp[m] + j * nr
                if not full:
                    memcpy(o, scratch + (tile * MR_ + m) * nr, ncols * sizeof(floating))
                if act != ACT_LINEAR:
                    for f in range(ncols):
                        o[f] = <floating>_activate(o[f], act)


cdef void _disjoint_item(const floating* x, const floating* weights, const floating* bias,
                         floating* out, const floating* zeros, const Geometry* g,
                         const Py_ssize_t* phase_offset, Py_ssize_t first_tile,
                         Py_ssize_t n_tiles, const floating** aptr, Py_ssize_t* obase,
                         floating* scratch, floating** outp) noexcept nogil:
    """Tiles [first_tile, first_tile + n_tiles) when the kernel equals the stride.

    With kernel == stride and nothing cropped, every phase has exactly one tap and
    it reaches every input voxel: input voxel v writes its own block of stride^3
    outputs, once per phase, from its C channels alone.  That is one matrix product,
    (input voxels x C) times (C x phases * filters), written straight into strided
    output positions.  A tile is MR consecutive input voxels (contiguous in memory,
    read in place); the loops run phase and filter block outside, tiles inside, so
    each (C x NR) weight panel is loaded once per item and reused by all its tiles.
    """
    cdef Py_ssize_t MR_ = DC3_MR, nr = g.nr, C = g.C, F = g.F
    cdef Py_ssize_t total = g.N * g.D * g.H * g.W
    cdef Py_ssize_t tile, m, v, n, d, h, w, rd, rh, rw, p, j, f, ncols, phase_step
    cdef ptrdiff_t no_offset = 0
    cdef const dc3_kernel* gemm = dc3_find_kernel(sizeof(floating), DC3_KIND_GEMM, nr, 0, 0)
    cdef Py_ssize_t n_taps = 1 if C > 0 else 0
    cdef floating* o
    cdef Py_ssize_t* ob
    cdef const floating* block_bias
    cdef const floating* block_weights
    cdef int relu = g.activation == ACT_RELU, flags
    cdef int act = g.activation if not relu else ACT_LINEAR
    cdef bint full
    # every tile's input rows and output block origins (-1: past the end)
    v = first_tile * MR_
    w = v % g.W
    h = (v // g.W) % g.H
    d = (v // (g.W * g.H)) % g.D
    n = v // (g.W * g.H * g.D)
    for m in range(n_tiles * MR_):
        if v >= total:
            aptr[m] = zeros
            obase[m] = -1
            continue
        aptr[m] = x + v * C
        obase[m] = (((n * g.OD + d * g.sd) * g.OH + h * g.sh) * g.OW + w * g.sw) * F
        v = v + 1
        w = w + 1
        if w == g.W:
            w = 0
            h = h + 1
            if h == g.H:
                h = 0
                d = d + 1
                if d == g.D:
                    d = 0
                    n = n + 1
    for rd in range(g.sd):
        for rh in range(g.sh):
            for rw in range(g.sw):
                p = (rd * g.sh + rh) * g.sw + rw
                phase_step = ((rd * g.OH + rh) * g.OW + rw) * F
                for j in range(g.blocks):
                    ncols = min(nr, F - j * nr)
                    full = ncols == nr
                    block_bias = NULL if bias == NULL else bias + j * nr
                    block_weights = weights + phase_offset[p] + j * C * nr
                    flags = ((DC3_RELU if relu else 0)
                             | (DC3_STREAM if g.stream and full else 0))
                    for tile in range(n_tiles):
                        ob = obase + tile * MR_
                        for m in range(MR_):
                            if ob[m] >= 0 and full:
                                outp[m] = out + ob[m] + phase_step + j * nr
                            else:
                                outp[m] = scratch + m * nr
                        if floating is float:
                            gemm.f32(
                                n_taps, C, <const float**>(aptr + tile * MR_),
                                <const float*>block_weights, &no_offset,
                                <const float*>block_bias, <float**>outp, 0, flags, 0)
                        else:
                            gemm.f64(
                                n_taps, C, <const double**>(aptr + tile * MR_),
                                <const double*>block_weights, &no_offset,
                                <const double*>block_bias, <double**>outp, 0, flags, 0)
                        if full and act == ACT_LINEAR:
                            continue
                        for m in range(MR_):
                            if ob[m] < 0:
                                continue
                            o = out + ob[m] + phase_step + j * nr
                            if not full:
                                memcpy(o, scratch + m * nr, ncols * sizeof(floating))
                            if act != ACT_LINEAR:
                                for f in range(ncols):
                                    o[f] = <floating>_activate(o[f], act)


cdef _disjoint_taps(const floating[:, :, :, :, ::1] x, PackedKernel kernel,
                    const floating[::1] bias, floating[:, :, :, :, ::1] out,
                    Geometry* g, int threads):
    """conv3d_transpose when the kernel equals the stride (see `_disjoint_item`)."""
    cdef Py_ssize_t total_tiles = (g.N * g.D * g.H * g.W + DC3_MR - 1) // DC3_MR
    # items of up to 64 tiles (a weight panel serves them all), at least 16 per thread
    cdef Py_ssize_t chunk = max(1, min(64, total_tiles // (16 * threads)))
    cdef Py_ssize_t n_items = (total_tiles + chunk - 1) // chunk, item
    cdef const floating* xp = &x[0, 0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0, 0]
    cdef const floating* bp = NULL
    if bias is not None:
        bp = &bias[0]
    cdef np_weights = kernel.weights
    cdef const floating[::1] weights = np_weights
    cdef Py_ssize_t[::1] phase_offset = kernel.phase_offset
    cdef floating* zeros = <floating*>calloc(g.C + 1, sizeof(floating))
    if zeros == NULL:
        raise MemoryError()
    cdef const floating** aptr = NULL
    cdef Py_ssize_t* obase = NULL
    cdef floating* scratch = NULL
    cdef floating** outp = NULL
    cdef unsigned char[::1] done = np.zeros(n_items, dtype=np.uint8)
    with nogil, parallel(num_threads=threads):
        aptr = <const floating**>malloc(chunk * DC3_MR * sizeof(floating*))
        obase = <Py_ssize_t*>malloc(chunk * DC3_MR * sizeof(Py_ssize_t))
        scratch = <floating*>malloc(DC3_MR * g.nr * sizeof(floating))
        outp = <floating**>malloc(DC3_MR * sizeof(floating*))
        for item in prange(n_items, schedule="dynamic"):
            if aptr != NULL and obase != NULL and scratch != NULL and outp != NULL:
                _disjoint_item(xp, &weights[0], bp, op, zeros, g, &phase_offset[0],
                               item * chunk, min(chunk, total_tiles - item * chunk),
                               aptr, obase, scratch, outp)
                done[item] = 1
        dc3_store_fence()
        free(aptr)
        free(obase)
        free(scratch)
        free(outp)
    free(zeros)
    if n_items and min(done) == 0:
        raise MemoryError("deconv3d: could not allocate per-thread work buffers")


def conv3d_transpose(const floating[:, :, :, :, ::1] x, PackedKernel kernel,
                     const floating[::1] bias, floating[:, :, :, :, ::1] out,
                     tuple crops, int activation=ACT_LINEAR, int num_threads=0):
    """Write the transposed convolution of `x` into `out` (see the module docstring).

    `kernel` must have been packed in x's dtype; `bias` is None or holds
    `kernel.filter_blocks * kernel.nr` values (zero-padded); `crops` are the
    three front crops; `num_threads <= 0` means OpenMP's default.
    """
    cdef Geometry g
    g.N, g.D, g.H, g.W, g.C = x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    g.OD, g.OH, g.OW, g.F = out.shape[1], out.shape[2], out.shape[3], out.shape[4]
    g.sd, g.sh, g.sw = kernel.strides
    g.pd, g.ph, g.pw = crops
    g.nr, g.blocks = kernel.nr, kernel.filter_blocks
    g.max_axis_taps = kernel.max_axis_taps
    g.max_taps = kernel.max_taps
    g.activation = activation
    g.stream = (out.size * out.itemsize >= STREAM_MIN_BYTES
                and (activation == ACT_LINEAR or activation == ACT_RELU))
    if g.N == 0 or g.OD == 0 or g.OH == 0 or g.OW == 0 or g.F == 0:
        return
    cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
    if (kernel.kernel_size == kernel.strides and crops == (0, 0, 0)
            and (g.OD, g.OH, g.OW) == (g.D * g.sd, g.H * g.sh, g.W * g.sw)):
        _disjoint_taps(x, kernel, bias, out, &g, threads)
        return

    # tiles per phase (a phase covers the output voxels of one stride residue)
    cdef Py_ssize_t smax = max(kernel.strides), p, rd, rh, rw, tiles, first_tile
    cdef Py_ssize_t[::1] phase_tiles = np.zeros(g.sd * g.sh * g.sw, dtype=np.intp)
    cdef Py_ssize_t[:, ::1] axis_taps = kernel.axis_taps
    cdef Py_ssize_t[:, :, ::1] axis_delta = kernel.axis_delta
    cdef Py_ssize_t total_tiles = 0, nq_d, nq_h, nq_w, q0w, row_lo, row_k, row_r, rows
    cdef Py_ssize_t row_run
    # run length per phase: DC3_RUN where a row kernel serves the phase, else chosen
    cdef Py_ssize_t[::1] phase_run = np.zeros(g.sd * g.sh * g.sw, dtype=np.intp)
    # Tiles run along the longer of the batch and a phase's w range: fewer of them
    # straddle two lines, so a tile's voxels mostly share the taps that reach them.
    # Along w, tiles heavy enough to pay for a few divisions take the w_lines order
    # (_row_split: row interiors in runs, borders by column), which the row kernels
    # need; measured 6% faster on overlap (stride 2) and 5% on stride1.
    # Row kernels beat everything else where a phase's rows hold runs for them, however
    # many images there are (many-small: 13% faster than tiles along the batch).
    g.batch_fastest = g.N >= _ceil_div(g.OW, g.sw)
    heavy = g.max_taps * g.C >= 96
    for rw in range(g.sw):
        if (heavy and g.batch_fastest and _row_kernel(
                g.nr, axis_taps[2, rw], &axis_delta[2, rw, 0], x.itemsize) != NULL):
            nq_w = _floor_div(g.OW - 1 + g.pw - rw, g.sw) - _ceil_div(g.pw - rw, g.sw) + 1
            if nq_w > 0:
                _row_split(nq_w, _ceil_div(g.pw - rw, g.sw), g.W, &axis_delta[2, rw, 0],
                           axis_taps[2, rw], DC3_RUN, &row_lo, &row_k, &row_r, &row_run)
                if row_k > 0:
                    g.batch_fastest = False
    g.w_lines = not g.batch_fastest and heavy
    for p in range(g.sd * g.sh * g.sw):
        rw, rh, rd = p % g.sw, (p // g.sw) % g.sh, p // (g.sw * g.sh)
        # q runs over ceil((crop - r) / stride) .. floor((length - 1 + crop - r) / stride)
        nq_d = max(0, _floor_div(g.OD - 1 + g.pd - rd, g.sd) - _ceil_div(g.pd - rd, g.sd) + 1)
        nq_h = max(0, _floor_div(g.OH - 1 + g.ph - rh, g.sh) - _ceil_div(g.ph - rh, g.sh) + 1)
        nq_w = max(0, _floor_div(g.OW - 1 + g.pw - rw, g.sw) - _ceil_div(g.pw - rw, g.sw) + 1)
        rows = g.N * nq_d * nq_h
        if g.w_lines and nq_w > 0:
            q0w = _ceil_div(g.pw - rw, g.sw)
            if _row_kernel(g.nr, axis_taps[2, rw], &axis_delta[2, rw, 0],
                           x.itemsize) != NULL:
                phase_run[p] = DC3_RUN
            _row_split(nq_w, q0w, g.W, &axis_delta[2, rw, 0], axis_taps[2, rw],
                       phase_run[p], &row_lo, &row_k, &row_r, &row_run)
            phase_tiles[p] = _w_line_tiles(rows, row_k, row_r, row_run)
        else:
            phase_tiles[p] = _ceil_div(rows * nq_w, DC3_MR)
        total_tiles += phase_tiles[p]
    # Work items are (first phase, phase count, first tile) with up to chunk_tiles tiles
    # of each phase.  When the packed kernel is small, an item takes every phase of its
    # tile range in turn: the phases of one region read the same input (it stays in
    # cache) and write interleaved outputs (one thread completes each cache line).  A
    # large kernel is better kept in cache instead: one phase per item, items ordered
    # tile range first so that neighbouring phases still share their input.
    # A few items per thread at least; a chunk's indirection table within 1 MiB; the
    # reduction split in groups of about KC values (one group's input for the whole
    # chunk stays in L2 while the weights of one filter block sit in L1).
    g.kc = 512 if x.itemsize == 4 else 256
    tile_bytes = g.max_taps * DC3_MR * sizeof(void*)
    cdef Py_ssize_t n_phases = g.sd * g.sh * g.sw
    all_phases = kernel.weights.nbytes <= ALL_PHASES_MAX_KERNEL_BYTES
    spread = max(phase_tiles) if all_phases else total_tiles
    g.chunk_tiles = max(1, min(32, spread // (8 * threads), (1 << 20) // tile_bytes))
    if all_phases:
        items = [(0, n_phases, t) for t in range(0, max(phase_tiles), g.chunk_tiles)]
    else:
        items = sorted(((p, 1, t) for p in range(n_phases)
                        for t in range(0, phase_tiles[p], g.chunk_tiles)),
                       key=lambda item: (item[2], item[0]))
    cdef Py_ssize_t[:, ::1] work = np.asarray(items, dtype=np.intp).reshape(-1, 3)
    cdef Py_ssize_t n_items = work.shape[0], item

    cdef const floating* xp = &x[0, 0, 0, 0, 0] if x.size > 0 else NULL
    cdef floating* op = &out[0, 0, 0, 0, 0]
    cdef const floating* bp = NULL
    if bias is not None:
        bp = &bias[0]
    cdef np_weights = kernel.weights
    cdef const floating[::1] weights = np_weights
    cdef const floating* wp = &weights[0]
    cdef Py_ssize_t[::1] phase_offset = kernel.phase_offset
    cdef floating* zeros = <floating*>calloc(g.C * (g.max_axis_taps + 2 * DC3_RUN) + 1, sizeof(floating))
    if zeros == NULL:
        raise MemoryError()

    # per-thread scratch
    cdef Py_ssize_t* woff = NULL
    cdef const floating** aptr = NULL
    cdef Py_ssize_t* ntaps = NULL
    cdef Py_ssize_t* channels = NULL
    cdef Py_ssize_t* group_taps = NULL
    cdef unsigned char* by_rows = NULL
    cdef floating** vox = NULL
    cdef floating* scratch = NULL
    cdef floating** outp = NULL
    cdef unsigned int* tap_masks = NULL
    # each item marks itself done: a thread whose buffers could not be allocated
    # skips its items, and the caller gets a MemoryError instead of garbage
    cdef unsigned char[::1] done = np.zeros(n_items, dtype=np.uint8)
    cdef Py_ssize_t ct = g.chunk_tiles, mtaps = g.max_taps, mr = DC3_MR
    with nogil, parallel(num_threads=threads):
        woff = <Py_ssize_t*>malloc(ct * mtaps * sizeof(Py_ssize_t))
        aptr = <const floating**>malloc(ct * mtaps * mr * sizeof(floating*))
        ntaps = <Py_ssize_t*>malloc(ct * sizeof(Py_ssize_t))
        channels = <Py_ssize_t*>malloc(ct * sizeof(Py_ssize_t))
        group_taps = <Py_ssize_t*>malloc(ct * sizeof(Py_ssize_t))
        by_rows = <unsigned char*>malloc(ct)
        vox = <floating**>malloc(ct * mr * sizeof(floating*))
        scratch = <floating*>calloc(ct * mr * g.nr, sizeof(floating))
        outp = <floating**>malloc(mr * sizeof(floating*))
        tap_masks = <unsigned int*>malloc(3 * g.max_axis_taps * sizeof(unsigned int))
        for item in prange(n_items, schedule="dynamic"):
            if woff != NULL and aptr != NULL and ntaps != NULL and channels != NULL \
                    and group_taps != NULL and by_rows != NULL and vox != NULL \
                    and scratch != NULL and outp != NULL \
                    and tap_masks != NULL:
                first_tile = work[item, 2]
                for p in range(work[item, 0], work[item, 0] + work[item, 1]):
                    tiles = min(phase_tiles[p] - first_tile, g.chunk_tiles)
                    if tiles > 0:
                        _work_item(xp, wp, bp, op, zeros, &g, &axis_taps[0, 0],
                                   &axis_delta[0, 0, 0], &phase_offset[0], smax, p,
                                   first_tile, tiles, woff, aptr, ntaps, channels,
                                   group_taps, by_rows,
                                   vox, scratch, outp, tap_masks, &phase_run[0])
                done[item] = 1
        dc3_store_fence()
        free(woff)
        free(aptr)
        free(ntaps)
        free(channels)
        free(group_taps)
        free(by_rows)
        free(vox)
        free(scratch)
        free(outp)
        free(tap_masks)
    free(zeros)
    if n_items and min(done) == 0:
        raise MemoryError("deconv3d: could not allocate per-thread work buffers")


# ---------------------------------------------------------------- layout changes
# channels_first layers: the core works channels-last, so the input is transposed in
# and the output out, one (C x W) plane of a (n, d, h) line at a time, in blocks
# (layout.h), in parallel.  NumPy's copy of a transposed view walks one side with a
# large stride and is 3-5x slower on outputs of tens of MB.
cdef extern from "layout.h" nogil:
    void dc3_transpose_plane_f32(const float*, ptrdiff_t, ptrdiff_t, float*, ptrdiff_t,
                                 ptrdiff_t, ptrdiff_t, ptrdiff_t, int)
    void dc3_transpose_plane_f64(const double*, ptrdiff_t, ptrdiff_t, double*, ptrdiff_t,
                                 ptrdiff_t, ptrdiff_t, ptrdiff_t, int)


cdef inline void _transpose_plane(const floating* src, Py_ssize_t src_row,
                                  Py_ssize_t src_col, floating* dst, Py_ssize_t dst_row,
                                  Py_ssize_t dst_col, Py_ssize_t rows, Py_ssize_t cols,
                                  bint stream) noexcept nogil:
    if floating is float:
        dc3_transpose_plane_f32(src, src_row, src_col, dst, dst_row, dst_col, rows, cols,
                                stream)
    else:
        dc3_transpose_plane_f64(src, src_row, src_col, dst, dst_row, dst_col, rows, cols,
                                stream)


def to_channels_last(const floating[:, :, :, :, :] x, floating[:, :, :, :, ::1] out,
                     int num_threads=0):
    """out[n, d, h, w, c] = x[n, c, d, h, w], for x of any strides."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], D = x.shape[2], H = x.shape[3]
    cdef Py_ssize_t W = x.shape[4], plane, n, d, h, item = sizeof(floating)
    cdef Py_ssize_t s0 = x.strides[0] // item, s1 = x.strides[1] // item
    cdef Py_ssize_t s2 = x.strides[2] // item, s3 = x.strides[3] // item
    cdef Py_ssize_t s4 = x.strides[4] // item
    cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
    if N * C * D * H * W == 0:
        return
    cdef const floating* xp = &x[0, 0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0, 0]
    cdef bint stream = out.size * item >= STREAM_MIN_BYTES
    with nogil, parallel(num_threads=threads):
        for plane in prange(N * D * H, schedule="static"):
            h = plane % H
            d = (plane // H) % D
            n = plane // (H * D)
            # rows c of the source are columns of the destination's (W x C) plane
            _transpose_plane(xp + n * s0 + d * s2 + h * s3, s1, s4, op + plane * W * C, C,
                             1, C, W, stream)
        dc3_store_fence()


def to_channels_first(const floating[:, :, :, :, ::1] y, floating[:, :, :, :, ::1] out,
                      int num_threads=0):
    """out[n, f, d, h, w] = y[n, d, h, w, f]."""
    cdef Py_ssize_t N = y.shape[0], D = y.shape[1], H = y.shape[2], W = y.shape[3]
    cdef Py_ssize_t F = y.shape[4], plane, n, d, h
    cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
    if N * D * H * W * F == 0:
        return
    cdef const floating* yp = &y[0, 0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0, 0]
    cdef bint stream = out.size * sizeof(floating) >= STREAM_MIN_BYTES
    with nogil, parallel(num_threads=threads):
        for plane in prange(N * D * H, schedule="static"):
            h = plane % H
            d = (plane // H) % D
            n = plane // (H * D)
            # rows w of the source plane (W x F) are columns of the destination's (F x W)
            _transpose_plane(yp + plane * W * F, F, 1, op + ((n * F * D + d) * H + h) * W,
                             D * H * W, 1, W, F, stream)
        dc3_store_fence()
