# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, auto_pickle=False, autotestdict=False
"""Compute core of deconv3d: a 3-D transposed convolution, phase-decomposed.

The layer checks, the core trusts: the Python layer has already checked shapes,
dtypes and contiguity and computed every length and crop (`deconv3d.shapes`); the
core only asserts, in O(1), that the arrays it is handed match its plan.

Arrays are channels-last and C-contiguous: input x (N, D, H, W, C), output
out (N, OD, OH, OW, F), written completely and never read first.

Per axis, output o sits at position u = o + crop of the uncropped result, and
input i reaches u through tap t when u = i*stride + t*dilation.  Splitting u by
its phase r = u mod stride, each phase is reached by a fixed set of taps, and
input i = u div stride + delta(t): a dense correlation with no multiply by zero.

The pipeline, one file per job:
  PackedKernel (here)  once per set of weights: every phase's taps as contiguous
                       (taps x C x NR) panels, the bias padded to whole panels.
  Plan (here, _plan.pxd)  once per input shape, integers only, cached on the packed
                       kernel: the geometry, one PhasePlan per phase (its input-grid
                       range, taps, row/run split, tile count, weights and kernels),
                       the work items and the tuning constants behind them.
                       `Plan.explain()` shows every decision.
  execution (_execute.pxd, _tiles.pxd, _columns.pxd)  per work item (_run_item, here):
                       tile voxels -> tap masks -> indirection table -> reduction by a
                       micro-kernel -> finish; _columns.pxd for phase-column panels;
                       _lanes.pxd for the lanes path (its own loop over output planes).
  kernels (kernels/)   register-blocked micro-kernels, plain C functions named for
                       what they are, found in a table by (dtype, kind, NR, taps).

Tiles of MR = 12 output voxels of one phase run along the batch (many small
images) or along rows.  Along rows (`w_lines`), each row's interior (the voxels
every w tap reaches) is cut into runs and a tile takes one run from each of
several rows; the borders are taken column by column.  A phase's w taps that all
reach a tile over consecutive input voxels merge into one tap over their channels
laid end to end.  Where a phase has 2 or 3 evenly spaced w taps, tiles of two runs
of 6 go to the row kernels, which broadcast each input voxel once for every voxel
it feeds and keep the taps' weights in registers: half the loads per multiply-add.

When the kernel equals the stride and nothing is cropped (the U-Net up-sampling
layer), every input voxel owns its own block of outputs and `_disjoint_item` runs
the whole layer as one matrix product written into strided output positions.
With few filters or a thin input, every phase's filters go side by side as the
columns of one set of panels, reduced over the union of the phases' taps: one
stride-1 product per input-grid point gives its outputs of every phase
(`_phase_columns_item`), instead of one padded panel and one tile table per phase.
With 1-4 filters and overlapping taps, where such panels would still waste a fifth of
their multiply-adds or more, the lanes path (`_lanes.pxd`) turns the layout around:
input-grid points across the vector lanes, filters in separate sums, from a
channel-major copy of the input, so that every multiply-add is one of the layer's
(where the module's LANES switch allows it).
Stride-1 layers with 3^3 or 5^3 kernels and enough channels and filters take the
Winograd path (`_winograd.pxd`, transforms in kernels/winograd.h): per tile of 2x2x2
outputs, 64 (or 343) products of transformed values instead of 216 (or 1000) taps,
each a (tiles x C) @ (C x F) product through the same gemm kernels.
Outputs too large for the cache are written with non-temporal stores.  Threads take
whole work items (tile ranges), so no two ever write the same voxel: no atomics, no
races, and the summation order of every output does not depend on the thread count.
"""

from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free
from libc.stddef cimport ptrdiff_t
cimport numpy as cnp

import numpy as np

from _openmp_helpers cimport OPENMP_ENABLED, OPENMP_VERSION, omp_get_max_threads
from _types cimport floating
from _kernels cimport (dc3_kernel, dc3_find_kernel, dc3_wide_available, dc3_isa_name,
                       dc3_store_fence, DC3_MR, DC3_RUN, DC3_KIND_GEMM, DC3_KIND_ROW,
                       DC3_NR_F32, DC3_NR_F64, DC3_NR_SMALL_F32, DC3_NR_SMALL_F64,
                       DC3_NR_WIDE_F32, DC3_NR_WIDE_F64, dc3_lanes_kernel, dc3_find_lanes,
                       DC3_LANE_MAX_FILTERS, dc3_winograd_kernel, dc3_find_winograd,
                       DC3_WG_OUTPUTS)
from _activations cimport *
from _plan cimport *
from _execute cimport (Call, Workspace, _workspace_new, _workspace_ok, _workspace_free,
                       _phase_item, _disjoint_item)
from _columns cimport _phase_columns_item, _disjoint_columns_item
from _lanes cimport LanesCall, _lanes_run
from _winograd cimport WinogradCall, _wg_run

cnp.import_array()

openmp_enabled = bool(OPENMP_ENABLED)
openmp_version = OPENMP_VERSION
micro_kernel = dc3_isa_name().decode()
MR = DC3_MR
# the panel widths (filters per panel) of each dtype size: small, normal, wide
PANEL_WIDTHS = {4: (DC3_NR_SMALL_F32, DC3_NR_F32, DC3_NR_WIDE_F32),
                8: (DC3_NR_SMALL_F64, DC3_NR_F64, DC3_NR_WIDE_F64)}
# Whether plans may take the lanes path (_lanes.pxd) where it applies; tests turn it off
# to cover the panels on the same layers.  It was off while its input copy went to memory
# and back (bench.py had it 1.09-1.28 times the panels' time on a loaded machine); with
# each thread's ring of input planes the copy stays in cache.
LANES = True
# ... with a kernel of at least this many points per row (AVX-512's 32).  With AVX2's 8
# and the portable 4 the panels are faster: few filters (1,32^3,32)->4 k3 s2 on AVX2,
# lanes 4.3 against panels 3.6 ms, 1.08-1.63 times over six layers; portable 1.3-1.5 on
# two of three.  Tests set 1 to cover every lanes kernel.
LANES_MIN_POINTS = 16
# Whether plans may take the Winograd path (_winograd.pxd) where it applies; tests turn
# it off to cover the direct path on the same layers.
WINOGRAD = True
# the planner's tuning constants (_plan.pxd says why each has its value)
TUNING = {
    "W_LINES_MIN_REDUCTION": W_LINES_MIN_REDUCTION, "THIN_MAX_CHANNELS": THIN_MAX_CHANNELS,
    "THIN_COLUMN_COST": THIN_COLUMN_COST,
    "KC_F32": KC_F32, "KC_F64": KC_F64,
    "MAX_ITEM_TILES": MAX_ITEM_TILES, "MIN_ITEMS_PER_THREAD": MIN_ITEMS_PER_THREAD,
    "MAX_TABLE_BYTES": MAX_TABLE_BYTES,
    "ALL_PHASES_MAX_KERNEL_BYTES": ALL_PHASES_MAX_KERNEL_BYTES,
    "STREAM_MIN_BYTES": STREAM_MIN_BYTES, "DISJOINT_MAX_ITEM_TILES": DISJOINT_MAX_ITEM_TILES,
    "DISJOINT_MIN_ITEMS_PER_THREAD": DISJOINT_MIN_ITEMS_PER_THREAD,
    "MAX_COLUMN_PAIRS": MAX_COLUMN_PAIRS, "LANES_MIN_CHANNELS": LANES_MIN_CHANNELS,
    "LANES_MAX_SCRATCH_MIB": LANES_MAX_SCRATCH_MIB,
    "LANES_MIN_WASTE_QUARTERS": LANES_MIN_WASTE_QUARTERS,
    "WINOGRAD_MIN_CHANNELS": WINOGRAD_MIN_CHANNELS,
    "WINOGRAD_MIN_FILTERS": WINOGRAD_MIN_FILTERS,
    "WINOGRAD_MIN_PRODUCT": WINOGRAD_MIN_PRODUCT,
    "WINOGRAD_MAX_WEIGHTS_MIB": WINOGRAD_MAX_WEIGHTS_MIB,
    "WINOGRAD_BATCH_BYTES": WINOGRAD_BATCH_BYTES,
}

# The Winograd weight transforms G (transformed values x taps), one per kernel length:
# kernels/winograd.h has the input and output transforms they pair with.  F(2, 3) with
# the points 0, 1, -1 and infinity; for 5 taps, F(2, 3) on taps 0-2 beside F(2, 2)
# (points 0, -1, infinity) on taps 3-4.
WINOGRAD_G = {
    3: np.array([[-1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
    5: np.array([[-1, 0, 0, 0, 0], [0.5, 0.5, 0.5, 0, 0], [0.5, -0.5, 0.5, 0, 0],
                 [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, -1, 1], [0, 0, 0, 0, 1]]),
}


def default_thread_count():
    """Threads a parallel region uses by default (follows OMP_NUM_THREADS)."""
    return omp_get_max_threads()


def find_kernel(int itemsize, str kind, int nr, int taps=0, int spacing=0):
    """The name of the micro-kernel this CPU (and DECONV3D_KERNEL) would run for a
    (dtype size, "gemm" or "row", panel width, w taps, spacing), or None."""
    cdef const dc3_kernel* found = dc3_find_kernel(
        itemsize, DC3_KIND_ROW if kind == "row" else DC3_KIND_GEMM, nr, taps, spacing)
    return None if found == NULL else found.name.decode()


def data_address(cnp.ndarray array):
    """Where an array's data starts in memory."""
    return <size_t>cnp.PyArray_DATA(array)


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


def _phase_taps_of(kernel, axes):
    """Each phase's taps of a kernel-shaped array (its first three axes the taps of d, h
    and w), phase after phase in (rd, rh, rw) order."""
    for dtaps in axes[0]:
        for htaps in axes[1]:
            for wtaps in axes[2]:
                yield kernel[np.ix_([t for t, _ in dtaps], [t for t, _ in htaps],
                                    [t for t, _ in wtaps])]


def _panel_width(filters, itemsize):
    """Filters per packed panel: the widest kernel that pads the filters little.

    A layer with few filters gets one-vector panels (no padded columns); the wide
    AVX-512 panels are used where the CPU has them and they add at most 1/8 more
    padded columns than the normal ones.
    """
    small, normal, wide = ((DC3_NR_SMALL_F32, DC3_NR_F32, DC3_NR_WIDE_F32) if itemsize == 4
                           else (DC3_NR_SMALL_F64, DC3_NR_F64, DC3_NR_WIDE_F64))
    if filters <= small:
        return small
    normal_cols = -(-filters // normal) * normal
    if dc3_wide_available() and -(-filters // wide) * wide * 8 <= normal_cols * 9:
        return wide
    return normal


def _union_offsets(phases):
    """One axis's input offsets over all of its phases, in order."""
    return sorted({offset for pairs in phases for _, offset in pairs})


def _column_width(columns, run, per_rd, itemsize):
    """The panel width of the phase-column panels.

    A voxel's outputs of one (rd, rh) lie side by side in the output, `run` values
    (stride_w * filters); a width that divides that run, at least one full-width
    vector, lets the kernel write whole panels straight into the output (with
    streaming stores), and each panel skips the (d, h) taps its phases lack.  Next
    best, a width that divides the `per_rd` columns of one rd: a panel then skips the
    d taps its rd lacks.  Otherwise the usual choice (_panel_width).
    """
    small, normal, wide = PANEL_WIDTHS[itemsize]
    for values in (run, per_rd):
        for width in ((wide, normal) if dc3_wide_available() else (normal, small)):
            if values % width == 0:
                return width
    return _panel_width(columns, itemsize)


def _column_needs(axes, unions, strides, filters, nr, blocks):
    """Per panel of phase columns, the union's (d, h) tap pairs some column of it uses:
    bit ud * len(h union) + uh; None where there are more pairs than MAX_COLUMN_PAIRS
    (every panel then takes every table entry)."""
    pairs = len(unions[0]) * len(unions[1])
    if pairs > MAX_COLUMN_PAIRS:
        return None
    index = [{offset: i for i, offset in enumerate(u)} for u in unions[:2]]
    needs = [0] * blocks
    columns = strides[0] * strides[1] * strides[2] * filters
    for column in range(columns):
        phase = column // filters
        rd, rh = phase // (strides[1] * strides[2]), (phase // strides[2]) % strides[1]
        for _, od in axes[0][rd]:
            for _, oh in axes[1][rh]:
                needs[column // nr] |= 1 << (index[0][od] * len(unions[1]) + index[1][oh])
    return needs


def _worth_phase_columns(phase_cost, column_cost, few_filters, one_vector, channels):
    """Whether the phase-column panels beat one panel per phase, by the multiply-adds
    both do per input channel (padding and the zeros between phases included).

    Few filters (half a panel or less): up to 5/4 as many, for the wider kernel and no
    per-phase tile overhead (few filters, (1,32^3,32)->4 k3 s2 same, two threads on a
    Zen 4: 3.4-4.8 -> 2.3-3.0 ms).  Thin inputs with one-vector panels: up to
    THIN_COLUMN_COST times as many; their cost is the tiles, not the arithmetic (thin,
    (1,64^3,1)->8 k3 s2: 6.5-9.8 -> 3.8-4.3 ms), which stops being so from 16 filters
    on ((1,48^3,4)->16 k3 s2: 4.1-4.9 -> 6.4-6.6 ms, so not taken).
    """
    if few_filters and 4 * column_cost <= 5 * phase_cost:
        return True
    return (channels <= THIN_MAX_CHANNELS and one_vector
            and column_cost <= THIN_COLUMN_COST * phase_cost)


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


# plans kept per packed kernel (input shapes seen most recently)
cdef enum:
    PLANS_KEPT = 16


cdef class PackedKernel:
    """A Keras kernel (kd, kh, kw, F, C) and bias (F,) rearranged, once, for the core.

    For each phase (rd, rh, rw) and each block of NR filters, the phase's taps
    follow one another, each a contiguous (C x NR) panel, filters zero-padded to
    a multiple of NR; the bias is zero-padded to match.  Independent of the input
    size and of the crops.  Plans for the input shapes it meets are cached here.
    """

    cdef readonly object weights            # 1-D array in the core dtype
    cdef readonly object bias               # (filter_blocks * nr,) or None
    cdef readonly tuple kernel_size, strides, dilations
    cdef readonly Py_ssize_t channels, filters, nr, filter_blocks, max_axis_taps, max_taps
    cdef readonly object axis_taps          # (3, max stride): taps per phase of each axis
    cdef readonly object axis_delta         # (3, max stride, max taps): input offsets
    cdef readonly object phase_offset       # where each phase's panels start in weights
    # kernel == stride with few filters: every phase's filters side by side as the columns
    # of one set of panels, (column_blocks, C, column_nr), and the bias repeated to match;
    # None where that would not save at least half the padded columns (_phase_columns)
    cdef readonly object column_weights, column_bias
    cdef readonly Py_ssize_t column_nr, column_blocks
    # multiply-adds per input channel and point of the phase-column panels (0 when none)
    cdef readonly Py_ssize_t column_cost
    # some phase lacks a tap at some offset of the union: its weight there is zero
    cdef readonly bint column_zeros
    # per panel, the union's (d, h) tap pairs its columns use, bit d * h_taps + h (the
    # others are zero in it and its tiles skip them)
    cdef readonly object column_needs
    # 1-4 filters: per phase, its taps' (C x F) weights one after the other (the lanes
    # kernels' layout), and where each phase's start; None for more filters
    cdef readonly object lanes_weights, lanes_offset
    # stride 1, no dilation, a 3^3 or 5^3 kernel and enough channels and filters: per
    # Winograd transform xi, per filter block, the transformed weights as a (C x nr)
    # panel; None for other layers.  winograd_taps: the kernel's length (0 when None).
    cdef readonly object winograd_weights
    cdef readonly Py_ssize_t winograd_taps
    # the front crops of the layer's whole output: its Winograd tiles start at this parity
    # of the uncropped output on each axis, and so do those of every window of it (whose
    # crops add the window's start), so a window is computed bit for bit as the whole
    cdef readonly tuple origin
    cdef dict _plans

    def __init__(self, kernel, bias, strides, dilations, dtype, origin=None):
        kernel = np.asarray(kernel, dtype=dtype)
        kd, kh, kw, filters, channels = kernel.shape
        self.kernel_size = (kd, kh, kw)
        # without the layer's crops, those of "same" padding at stride 1
        self.origin = (tuple(int(c) for c in origin) if origin is not None
                       else tuple((k - 1) // 2 for k in self.kernel_size))
        self.strides = tuple(int(s) for s in strides)
        self.dilations = tuple(int(d) for d in dilations)
        self.channels, self.filters = channels, filters
        self.nr = _panel_width(filters, kernel.dtype.itemsize)
        self.filter_blocks = -(-filters // self.nr)
        self._plans = {}
        axes = [_phase_taps(k, s, d) for k, s, d in zip(self.kernel_size, self.strides,
                                                         self.dilations)]
        self._index_taps(axes)
        self.weights = _aligned_copy(self._panels(kernel, axes))
        self.bias = None
        if bias is not None:
            padded = np.zeros(self.filter_blocks * self.nr, dtype=dtype)
            padded[:filters] = bias
            self.bias = _aligned_copy(padded)
        self._phase_columns(kernel, bias, axes)
        self._lanes_weights(kernel, axes)
        self._winograd_weights(kernel)

    def _winograd_weights(self, kernel):
        """winograd_weights and winograd_taps, where the Winograd path applies."""
        self.winograd_weights, self.winograd_taps = None, 0
        taps = self.kernel_size[0]
        if (self.kernel_size != (taps,) * 3 or taps not in WINOGRAD_G
                or self.strides != (1, 1, 1) or self.dilations != (1, 1, 1)
                or self.channels < WINOGRAD_MIN_CHANNELS
                or self.filters < WINOGRAD_MIN_FILTERS
                or self.channels * self.filters < WINOGRAD_MIN_PRODUCT):
            return
        G = WINOGRAD_G[taps]
        n, width = G.shape[0], self.filter_blocks * self.nr
        if (n ** 3 * self.channels * width * kernel.dtype.itemsize
                > (<Py_ssize_t>WINOGRAD_MAX_WEIGHTS_MIB) << 20):
            return
        # the core correlates: tap t of a tile's correlation is the kernel's taps - 1 - t
        flipped = np.asarray(kernel, dtype=np.float64)[::-1, ::-1, ::-1]
        # G on each spatial axis: (n, n, n, F, C), in double precision
        transformed = np.einsum("ai,bj,ek,ijkfc->abefc",
                                G, G, G, flipped, optimize=True)
        padded = np.zeros((n ** 3, width, self.channels))
        padded[:, :self.filters] = transformed.reshape(n ** 3, self.filters, self.channels)
        # (xi, blocks, nr, C) -> (xi, blocks, C, nr)
        panels = padded.reshape(n ** 3, self.filter_blocks, self.nr, self.channels)
        self.winograd_weights = _aligned_copy(
            panels.transpose(0, 1, 3, 2).astype(kernel.dtype).ravel())
        self.winograd_taps = taps

    def _lanes_weights(self, kernel, axes):
        """lanes_weights and lanes_offset, for layers with 1-4 filters."""
        self.lanes_weights = self.lanes_offset = None
        if not 0 < self.filters <= DC3_LANE_MAX_FILTERS or self.channels == 0:
            return
        # multiply-adds per input channel and point: the taps' own, and those of the
        # panels the lanes would replace (phase columns where taken, else per phase)
        taps = sum(len(pd) * len(ph) * len(pw) for pd in axes[0] for ph in axes[1]
                   for pw in axes[2])
        panels = self.column_cost or self.filter_blocks * self.nr * taps
        if 4 * panels < LANES_MIN_WASTE_QUARTERS * self.filters * taps:
            return
        blocks, offsets, position = [], [], 0
        for sub in _phase_taps_of(kernel, axes):
            offsets.append(position)
            # (taps_d, taps_h, taps_w, F, C) -> (taps, C, F)
            block = sub.reshape(int(np.prod(sub.shape[:3])), self.filters,
                                self.channels).transpose(0, 2, 1)
            blocks.append(block.ravel())
            position += block.size
        self.lanes_offset = np.asarray(offsets, dtype=np.intp)
        self.lanes_weights = _aligned_copy(np.concatenate(blocks) if position
                                           else np.zeros(1, dtype=kernel.dtype))

    def _index_taps(self, axes):
        """axis_taps, axis_delta and the tap counts, from each axis's phases.

        Slot `max stride` of each axis holds the union of its phases' input offsets
        (what the phase-column panels reduce over)."""
        smax = max(self.strides)
        unions = [_union_offsets(phases) for phases in axes]
        self.max_axis_taps = max(1, max(len(p) for phases in axes for p in phases),
                                 max(len(u) for u in unions))
        # most taps any one phase has (what a tile's buffers must hold)
        self.max_taps = 1
        for phases in axes:
            self.max_taps *= max(1, max(len(p) for p in phases))
        taps = np.zeros((3, smax + 1), dtype=np.intp)
        delta = np.zeros((3, smax + 1, self.max_axis_taps), dtype=np.intp)
        for a, phases in enumerate(axes):
            for r, pairs in enumerate(phases):
                taps[a, r] = len(pairs)
                for j, (_, offset) in enumerate(pairs):
                    delta[a, r, j] = offset
            taps[a, smax] = len(unions[a])
            delta[a, smax, :len(unions[a])] = unions[a]
        self.axis_taps, self.axis_delta = taps, delta

    def _phase_columns(self, kernel, bias, axes):
        """column_weights and column_bias: every phase's filters side by side.

        Per axis, the input offsets of all the phases together (the union) reach one
        block of stride^3 outputs from each input-grid point: a stride-1 correlation
        whose columns are (phase, filter), with zeros where a phase has no tap at an
        offset.  A layer with few filters pads each phase's panel to 8 or 16 columns,
        side by side they fill the panels (one-filter k2 s2: 8x fewer multiply-adds,
        few filters k3 s2: the 32-wide kernel instead of the 8-wide); a thin input
        (at most THIN_MAX_CHANNELS channels) gets 8x fewer, larger tiles for its few
        multiply-adds.
        Taken where _worth_phase_columns says so.
        """
        self.column_weights = self.column_bias = self.column_needs = None
        self.column_nr = self.column_blocks = self.column_cost = 0
        self.column_zeros = False
        phases = self.strides[0] * self.strides[1] * self.strides[2]
        columns = phases * self.filters
        # (a point's residues per axis are bits of an unsigned int in _columns.pxd)
        if phases == 1 or columns == 0 or self.channels == 0 or max(self.strides) > 16:
            return
        unions = [_union_offsets(p) for p in axes]
        itemsize = kernel.dtype.itemsize
        per_rd = self.strides[1] * self.strides[2] * self.filters
        nr = _column_width(columns, self.strides[2] * self.filters, per_rd, itemsize)
        blocks = -(-columns // nr)
        needs = _column_needs(axes, unions, self.strides, self.filters, nr, blocks)
        if needs is None:
            needs = [-1] * blocks
            column_cost = nr * len(unions[2]) * len(unions[0]) * len(unions[1]) * blocks
        else:
            column_cost = nr * len(unions[2]) * sum(bin(mask).count("1") for mask in needs)
        phase_cost = self.filter_blocks * self.nr * sum(
            len(pd) * len(ph) * len(pw) for pd in axes[0] for ph in axes[1] for pw in axes[2])
        if not _worth_phase_columns(phase_cost, column_cost, 2 * self.filters <= self.nr,
                                    self.filters <= PANEL_WIDTHS[itemsize][0],
                                    self.channels):
            return
        # column ((rd * sh + rh) * sw + rw) * F + f: phase (rd, rh, rw), filter f
        F, C = self.filters, self.channels
        sh, sw = self.strides[1], self.strides[2]
        index = [{offset: i for i, offset in enumerate(u)} for u in unions]
        dense = np.zeros((len(unions[0]), len(unions[1]), len(unions[2]), C, blocks * nr),
                         dtype=kernel.dtype)
        for rd, dtaps in enumerate(axes[0]):
            for rh, htaps in enumerate(axes[1]):
                for rw, wtaps in enumerate(axes[2]):
                    first = ((rd * sh + rh) * sw + rw) * F
                    for td, od in dtaps:
                        for th, oh in htaps:
                            for tw, ow in wtaps:
                                dense[index[0][od], index[1][oh], index[2][ow], :,
                                      first:first + F] = kernel[td, th, tw].T
        # (taps..., C, blocks, nr) -> (blocks, taps..., C, nr)
        dense = dense.reshape(dense.shape[:4] + (blocks, nr))
        self.column_weights = _aligned_copy(dense.transpose(4, 0, 1, 2, 3, 5).ravel())
        if bias is not None:
            repeated = np.zeros(blocks * nr, dtype=kernel.dtype)
            repeated[:columns] = np.tile(np.asarray(bias, dtype=kernel.dtype), phases)
            self.column_bias = _aligned_copy(repeated)
        self.column_nr, self.column_blocks = nr, blocks
        self.column_cost = column_cost
        self.column_needs = np.asarray(needs, dtype=np.intp)
        self.column_zeros = any(len(pairs) != len(u) for phases, u in zip(axes, unions)
                                for pairs in phases)

    def _panels(self, kernel, axes):
        """The packed weights, phase after phase; sets phase_offset."""
        channels, nr, blocks = self.channels, self.nr, self.filter_blocks
        padded = np.zeros(self.kernel_size + (channels, blocks * nr), dtype=kernel.dtype)
        padded[..., :self.filters] = kernel.transpose(0, 1, 2, 4, 3)
        panels, offsets, position = [], [], 0
        for sub in _phase_taps_of(padded, axes):
            offsets.append(position)
            # (taps, C, blocks, NR) -> (blocks, taps, C, NR)
            sub = sub.reshape(int(np.prod(sub.shape[:3])), channels, blocks, nr)
            panel = sub.transpose(2, 0, 1, 3).ravel()
            panels.append(panel)
            position += panel.size
        self.phase_offset = np.asarray(offsets, dtype=np.intp)
        return np.concatenate(panels) if position else np.zeros(1, dtype=kernel.dtype)

    @staticmethod
    def nbytes_for(kernel_size, Py_ssize_t filters, Py_ssize_t channels, dtype):
        """Bytes the packed weights of such a kernel take (before building it)."""
        itemsize = np.dtype(dtype).itemsize
        nr = _panel_width(filters, itemsize)
        count = (-(-filters // nr)) * nr * max(channels, 1)
        for k in kernel_size:
            count *= k
        return count * itemsize

    @property
    def dtype(self):
        return self.weights.dtype

    def plan(self, input_shape, output_shape, crops, int activation=ACT_LINEAR,
             int num_threads=0):
        """The Plan for these shapes (computed on first use, then cached)."""
        cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
        key = (input_shape, output_shape, crops, activation, threads, LANES, LANES_MIN_POINTS,
               WINOGRAD)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            plan = self._plans[key] = Plan(self, tuple(input_shape), tuple(output_shape),
                                           tuple(crops), activation, threads, True, LANES,
                                           WINOGRAD)
        return plan


# ---------------------------------------------------------------- planning
cdef const dc3_kernel* _row_kernel_for(Py_ssize_t itemsize, Py_ssize_t nr, Py_ssize_t tw_n,
                                       const Py_ssize_t* dw):
    """The row kernel for a phase's w taps, or NULL: 2 or 3 of them, evenly spaced 1 or
    2 input voxels apart, where the kernel table has one for the panel width."""
    cdef Py_ssize_t spacing
    if tw_n < 2 or tw_n > 3:
        return NULL
    spacing = dw[1] - dw[0]
    if spacing < 1 or spacing > 2 or (tw_n == 3 and dw[2] - dw[1] != spacing):
        return NULL
    return dc3_find_kernel(itemsize, DC3_KIND_ROW, nr, tw_n, spacing)


cdef class Plan:
    """How the core computes one layer on inputs of one shape, decided once.

    Integers only (and the packed kernel it was made for): the geometry, one
    PhasePlan per stride phase, the work items and a zero row.  `run` executes it;
    `explain` says what it decided.  Read-only once made, so threads may share it.
    """

    cdef Geometry g
    cdef PhasePlan* phases
    cdef Py_ssize_t* items              # (n_items, 3): first phase, phases, first tile
    cdef Py_ssize_t n_items, itemsize
    cdef Py_ssize_t shape[10]           # input and output shapes, for the O(1) checks
    cdef void* zeros
    cdef const dc3_kernel* gemm
    cdef bint empty, all_phases
    # phase_columns: per column, its output offset from a voxel's block origin and its
    # phase (rd, rh, rw), as rows of one (4, columns) array
    cdef object column_offset
    cdef object column_needs            # per panel, the (d, h) tap pairs it uses
    cdef bint columns_allowed
    cdef object fallback                # the same layer without phase columns, on demand
    # the lanes path (_lanes.pxd) and its scratch layout, or NULL
    cdef const dc3_lanes_kernel* lanes
    cdef Py_ssize_t lanes_pad, lanes_row, lanes_ring
    cdef bint lanes_allowed
    # the lanes path's scratch, kept for the next call: its zeros (between rows' values,
    # and the zero row) are written once.  A call takes it while holding the GIL, and a
    # call meeting it taken (another thread's) makes its own.
    cdef void* lanes_scratch
    cdef bint lanes_scratch_taken
    # the Winograd path (_winograd.pxd), or NULL: its transforms and gemm kernel, tiles
    # along (d, h, w) and tiles per batch; `direct`: the same layer without it, for
    # inputs that are not all finite (made on first use)
    cdef const dc3_winograd_kernel* winograd
    cdef const dc3_kernel* winograd_gemm
    cdef Py_ssize_t winograd_tiles[3], winograd_lead[3]
    cdef Py_ssize_t winograd_batch
    cdef bint winograd_allowed
    cdef object direct
    cdef readonly PackedKernel kernel
    cdef readonly tuple input_shape, output_shape, crops
    cdef readonly int threads, activation

    def __cinit__(self, PackedKernel kernel, tuple input_shape, tuple output_shape,
                  tuple crops, int activation, int threads, bint phase_columns=True,
                  bint lanes=True, bint winograd=True):
        if (len(input_shape) != 5 or len(output_shape) != 5 or len(crops) != 3
                or input_shape[4] != kernel.channels or output_shape[4] != kernel.filters
                or input_shape[0] != output_shape[0] or min(input_shape + output_shape) < 0):
            raise ValueError(f"no plan for input {input_shape} and output {output_shape} "
                             f"(crops {crops}) with a kernel of {kernel.channels} channels "
                             f"and {kernel.filters} filters")
        self.kernel, self.input_shape, self.output_shape = kernel, input_shape, output_shape
        self.crops, self.activation, self.threads = crops, activation, threads
        self.columns_allowed, self.fallback = phase_columns, None
        self.lanes_allowed, self.lanes = lanes, NULL
        self.lanes_scratch, self.lanes_scratch_taken = NULL, False
        self.winograd_allowed, self.winograd, self.direct = winograd, NULL, None
        self.itemsize = kernel.weights.dtype.itemsize
        for a in range(5):
            self.shape[a], self.shape[5 + a] = input_shape[a], output_shape[a]
        self._geometry()
        self.gemm = dc3_find_kernel(self.itemsize, DC3_KIND_GEMM, self.g.nr, 0, 0)
        self.empty = (self.g.N == 0 or self.g.OD == 0 or self.g.OH == 0 or self.g.OW == 0
                      or self.g.F == 0)
        # one PhasePlan per phase, then the phase-column panels' (every phase at once)
        self.phases = <PhasePlan*>calloc(self.g.sd * self.g.sh * self.g.sw + 1,
                                         sizeof(PhasePlan))
        # the zero row: merged w taps read up to max_axis_taps * C values from it, a
        # row kernel's run up to (DC3_RUN + 2 * 2) * C
        self.zeros = calloc(self.g.C * (self.g.max_axis_taps + 2 * DC3_RUN) + 1,
                            self.itemsize)
        if self.phases == NULL or self.zeros == NULL:
            raise MemoryError()
        self._phases()
        if not self.empty:
            self._choose_winograd()
            if self.winograd == NULL:
                self._choose_lanes()
            self._order()
            self._tiles()
            self._work_items()

    def __dealloc__(self):
        free(self.lanes_scratch)
        free(self.phases)
        free(self.items)
        free(self.zeros)

    cdef void _geometry(self):
        cdef Geometry* g = &self.g
        cdef PackedKernel k = self.kernel
        g.N, g.D, g.H, g.W, g.C = self.input_shape
        g.OD, g.OH, g.OW, g.F = self.output_shape[1:]
        g.sd, g.sh, g.sw = k.strides
        g.pd, g.ph, g.pw = self.crops
        g.nr, g.blocks = k.nr, k.filter_blocks
        g.max_axis_taps, g.max_taps = k.max_axis_taps, k.max_taps
        g.activation = self.activation
        g.stream = (self.itemsize * g.N * g.OD * g.OH * g.OW * g.F >= STREAM_MIN_BYTES
                    and (self.activation == ACT_LINEAR or self.activation == ACT_RELU))
        g.kc = KC_F32 if self.itemsize == 4 else KC_F64
        g.disjoint = (k.kernel_size == k.strides and self.crops == (0, 0, 0)
                      and (g.OD, g.OH, g.OW) == (g.D * g.sd, g.H * g.sh, g.W * g.sw))
        g.phase_columns = self.columns_allowed and k.column_weights is not None
        if g.phase_columns:
            g.nr, g.blocks = k.column_nr, k.column_blocks
            g.max_taps = int(np.prod(k.axis_taps[:, max(k.strides)]))
            g.columns = g.sd * g.sh * g.sw * g.F
            g.column_run = g.sw * g.F
            g.column_direct = g.column_run % g.nr == 0
            # only whole panels written in place can stream
            g.stream = g.stream and g.column_direct
            # column ((rd * sh + rh) * sw + rw) * F + f: phase (rd, rh, rw), filter f
            rd, rh, rw, f = np.meshgrid(np.arange(g.sd), np.arange(g.sh), np.arange(g.sw),
                                        np.arange(g.F), indexing="ij")
            self.column_needs = np.ascontiguousarray(k.column_needs, dtype=np.intp)
            g.column_pairs = k.axis_taps[0, max(k.strides)] * k.axis_taps[1, max(k.strides)]
            self.column_offset = np.ascontiguousarray(np.stack(
                [(((rd * g.OH + rh) * g.OW + rw) * g.F + f).ravel(), rd.ravel(), rh.ravel(),
                 rw.ravel()]), dtype=np.intp)

    cdef void _choose_winograd(self):
        """The Winograd path where the packed kernel has its weights (_plan.pxd:
        WINOGRAD_*), and batches of tiles that stay in L2 and give every thread several."""
        cdef Geometry* g = &self.g
        cdef PackedKernel k = self.kernel
        cdef Py_ssize_t n, per_tile, batch, tiles, a
        if not self.winograd_allowed or k.winograd_weights is None:
            return
        self.winograd = dc3_find_winograd(self.itemsize, k.winograd_taps)
        self.winograd_gemm = dc3_find_kernel(self.itemsize, DC3_KIND_GEMM, k.nr, 0, 0)
        if self.winograd == NULL or self.winograd_gemm == NULL:
            self.winograd = NULL
            return
        for a, (length, crop) in enumerate(zip((g.OD, g.OH, g.OW), self.crops)):
            # tiles at fixed positions of the uncropped output (_winograd.pxd: lead), from
            # where the layer's whole output starts, so that it fills whole tiles (Python's
            # modulo: 0 or 1)
            self.winograd_lead[a] = (crop - k.origin[a]) % DC3_WG_OUTPUTS
            self.winograd_tiles[a] = _ceil_div(length + self.winograd_lead[a],
                                               DC3_WG_OUTPUTS)
        tiles = g.N * self.winograd_tiles[0] * self.winograd_tiles[1] * self.winograd_tiles[2]
        n = self.winograd.transforms
        per_tile = n * n * n * (g.C + k.filter_blocks * k.nr) * self.itemsize
        # every batch reads all the transformed weights once: batches whose buffers are at
        # least twice the weights' size keep that reading to a third of the traffic
        # (5^3 kernels, 32 channels and filters: 1.4 MiB of weights, 88 KiB per tile)
        batch = max(1, max(WINOGRAD_BATCH_BYTES, 2 * k.winograd_weights.nbytes)
                    // per_tile // DC3_MR)
        # at least four batches per thread where the layer has the tiles, for balance
        batch = min(batch, max(1, _ceil_div(tiles, 4 * self.threads * DC3_MR)))
        self.winograd_batch = batch * DC3_MR

    cdef void _choose_lanes(self):
        """The lanes path where it applies (_plan.pxd: LANES_*), and its scratch layout.

        Blocks of lanes run over groups of sw consecutive outputs along w, from output 0:
        lane j of a block at group b reads w phase rw's grid point b + j + lead(rw)
        (_lanes.pxd).  Each channel of a scratch row holds `pad` zeros, the W input
        points and zeros up to `row` values, enough for every block through every w tap
        of every phase."""
        cdef Geometry* g = &self.g
        cdef PhasePlan* pp
        cdef const Py_ssize_t* dw
        cdef const dc3_lanes_kernel* found = dc3_find_lanes(self.itemsize)
        cdef Py_ssize_t p, rw, lead, lo = 0, hi = g.W, end, pad, row, ring
        cdef const Py_ssize_t* dd
        cdef Py_ssize_t align = 64 // self.itemsize
        if (not self.lanes_allowed or found == NULL or self.kernel.lanes_weights is None
                or found.lanes < LANES_MIN_POINTS
                or g.C < LANES_MIN_CHANNELS or self.kernel.max_taps < 2):
            return
        end = _ceil_div(_ceil_div(g.OW, g.sw), found.lanes) * found.lanes
        for p in range(g.sd * g.sh * g.sw):
            pp = self.phases + p
            if pp.tw_n > 0:
                rw = p % g.sw
                lead = (((rw - g.pw) % g.sw + g.sw) % g.sw + g.pw - rw) // g.sw
                dw = self._delta(pp.dw)         # sorted by offset
                lo = min(lo, lead + dw[0])
                hi = max(hi, lead + end + dw[pp.tw_n - 1])
        pad = _ceil_div(-lo, align) * align
        row = _ceil_div(pad + hi, align) * align
        if (row // align) % 2 == 0:
            # channels a power of two of cache lines apart would share L1 sets
            row += align
        # the ring: as many input planes as the d taps of one output plane span
        ring = 1
        for p in range(g.sd):
            pp = self.phases + p * g.sh * g.sw
            if pp.td_n > 0:
                dd = self._delta(pp.dd)
                ring = max(ring, dd[pp.td_n - 1] - dd[0] + 1)
        ring = min(ring, g.D)
        if ((1 + self.threads * ring * g.H) * g.C * row * self.itemsize
                > (<Py_ssize_t>LANES_MAX_SCRATCH_MIB) << 20):
            return
        self.lanes, self.lanes_pad, self.lanes_row = found, pad, row
        self.lanes_ring = ring

    cdef void _phases(self):
        """Each phase's taps, input-grid range and weights; then the phase-column
        panels' pseudo-phase: the union of every phase's taps and grid points."""
        cdef Geometry* g = &self.g
        cdef PhasePlan* pp
        cdef PhasePlan* every = self.phases + g.sd * g.sh * g.sw
        cdef Py_ssize_t p, smax = max(self.kernel.strides), mt = g.max_axis_taps
        cdef Py_ssize_t[:, ::1] axis_taps = self.kernel.axis_taps
        cdef Py_ssize_t[::1] offsets = self.kernel.phase_offset
        for p in range(g.sd * g.sh * g.sw):
            pp = self.phases + p
            pp.rw, pp.rh, pp.rd = p % g.sw, (p // g.sw) % g.sh, p // (g.sw * g.sh)
            pp.weights = offsets[p]
            self._phase_taps(pp, pp.rd, pp.rh, pp.rw, smax, mt, axis_taps)
            _grid_range(g.OD, g.pd, g.sd, pp.rd, &pp.q0d, &pp.nqd)
            _grid_range(g.OH, g.ph, g.sh, pp.rh, &pp.q0h, &pp.nqh)
            _grid_range(g.OW, g.pw, g.sw, pp.rw, &pp.q0w, &pp.nqw)
            pp.nqd, pp.nqh, pp.nqw = max(0, pp.nqd), max(0, pp.nqh), max(0, pp.nqw)
            pp.rows = g.N * pp.nqd * pp.nqh
        # the pseudo-phase sits at residue 0 of every axis: its columns add the rest
        self._phase_taps(every, smax, smax, smax, smax, mt, axis_taps)
        _union_range(g.OD, g.pd, g.sd, &every.q0d, &every.nqd)
        _union_range(g.OH, g.ph, g.sh, &every.q0h, &every.nqh)
        _union_range(g.OW, g.pw, g.sw, &every.q0w, &every.nqw)
        every.rows = g.N * every.nqd * every.nqh

    cdef void _phase_taps(self, PhasePlan* pp, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t smax, Py_ssize_t mt, Py_ssize_t[:, ::1] axis_taps):
        """A phase's tap counts and where its offsets start in axis_delta (3, smax + 1,
        mt), from its slot on each axis (its residue, or smax for the union)."""
        cdef Py_ssize_t t
        cdef const Py_ssize_t* dw
        pp.td_n, pp.th_n, pp.tw_n = axis_taps[0, sd], axis_taps[1, sh], axis_taps[2, sw]
        pp.dd, pp.dh, pp.dw = sd * mt, (smax + 1 + sh) * mt, (2 * (smax + 1) + sw) * mt
        dw = self._delta(pp.dw)
        pp.w_consecutive = True
        for t in range(1, pp.tw_n):
            pp.w_consecutive = pp.w_consecutive and dw[t] == dw[t - 1] + 1

    cdef const Py_ssize_t* _delta(self, Py_ssize_t offset):
        return <const Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>self.kernel.axis_delta) + offset

    cdef void _order(self):
        """Tiles along the batch or along rows, and whether rows go in w_lines order.

        Tiles run along the longer of the batch and a phase's w range: fewer of them
        straddle two lines, so a tile's voxels mostly share the taps that reach them.
        Along w, tiles with a long enough reduction take the w_lines order, which the
        row kernels need.  Row kernels beat everything else where a phase's rows hold
        runs for them, however many images there are (many-small: 13% faster than
        tiles along the batch).
        """
        cdef Geometry* g = &self.g
        cdef PhasePlan* pp
        cdef Py_ssize_t p, lo, k, r, run
        cdef bint heavy = _long_reduction(g)
        g.batch_fastest = g.N >= _ceil_div(g.OW, g.sw)
        for p in range(g.sw):       # the phases (0, 0, rw) hold every w residue
            pp = self.phases + p
            if (heavy and g.batch_fastest and pp.nqw > 0 and _row_kernel_for(
                    self.itemsize, g.nr, pp.tw_n, self._delta(pp.dw)) != NULL):
                _row_split(pp.nqw, pp.q0w, g.W, self._delta(pp.dw), pp.tw_n, DC3_RUN,
                           &lo, &k, &r, &run)
                if k > 0:
                    g.batch_fastest = False
        g.w_lines = (not g.batch_fastest and (heavy or g.C <= THIN_MAX_CHANNELS)
                     and not g.disjoint and not g.phase_columns)

    cdef void _tiles(self):
        """Each phase's tiles (and row split and row kernel, in w_lines order)."""
        cdef Geometry* g = &self.g
        cdef PhasePlan* pp
        cdef Py_ssize_t p
        g.total_tiles = 0
        for p in range(g.sd * g.sh * g.sw):
            pp = self.phases + p
            pp.row_kernel = NULL
            if g.disjoint or g.phase_columns:
                pp.tiles = 0
                continue
            if g.w_lines and pp.nqw > 0:
                # thin inputs take w_lines for the shifted tables only: their few
                # multiply-adds stay with the gemm kernel, whose summation order does not
                # depend on a voxel's place in its row (a dask block sums as the whole call)
                if _long_reduction(g):
                    pp.row_kernel = _row_kernel_for(self.itemsize, g.nr, pp.tw_n,
                                                    self._delta(pp.dw))
                _row_split(pp.nqw, pp.q0w, g.W, self._delta(pp.dw), pp.tw_n,
                           DC3_RUN if pp.row_kernel != NULL else 0,
                           &pp.row_lo, &pp.row_k, &pp.row_r, &pp.row_run)
                pp.tiles = _w_line_tiles(pp.rows, pp.row_k, pp.row_r, pp.row_run)
            else:
                pp.tiles = _ceil_div(pp.rows * pp.nqw, DC3_MR)
            g.total_tiles += pp.tiles
        if g.phase_columns:
            pp = self.phases + g.sd * g.sh * g.sw
            g.total_tiles = _ceil_div(pp.rows * pp.nqw, DC3_MR)
        elif g.disjoint:
            g.total_tiles = _ceil_div(g.N * g.D * g.H * g.W, DC3_MR)

    cdef void _work_items(self):
        """Work items (first phase, phase count, first tile) of up to chunk_tiles tiles.

        When the packed kernel is small, an item takes every phase of its tile range in
        turn: the phases of one region read the same input (it stays in cache) and
        write interleaved outputs (one thread completes each cache line).  A large
        kernel is better kept in cache instead: one phase per item, items ordered tile
        range first so that neighbouring phases still share their input.
        """
        cdef Geometry* g = &self.g
        cdef Py_ssize_t n_phases = g.sd * g.sh * g.sw, p, most = 0, i = 0, t
        for p in range(n_phases):
            most = max(most, self.phases[p].tiles)
        self.all_phases = self.kernel.weights.nbytes <= ALL_PHASES_MAX_KERNEL_BYTES
        if g.disjoint or g.phase_columns:
            g.chunk_tiles = max(1, min(DISJOINT_MAX_ITEM_TILES, g.total_tiles
                                       // (DISJOINT_MIN_ITEMS_PER_THREAD * self.threads)))
            self._allocate_items(_ceil_div(g.total_tiles, g.chunk_tiles))
            for t in range(self.n_items):
                self._set_item(t, 0, 1, t * g.chunk_tiles)
            return
        spread = most if self.all_phases else g.total_tiles
        g.chunk_tiles = max(1, min(MAX_ITEM_TILES, spread // (MIN_ITEMS_PER_THREAD * self.threads),
                                   MAX_TABLE_BYTES // (g.max_taps * DC3_MR * sizeof(void*))))
        if self.all_phases:
            self._allocate_items(_ceil_div(most, g.chunk_tiles))
            for t in range(self.n_items):
                self._set_item(t, 0, n_phases, t * g.chunk_tiles)
            return
        for p in range(n_phases):
            i += _ceil_div(self.phases[p].tiles, g.chunk_tiles)
        self._allocate_items(i)
        i = 0
        for t in range(0, most, g.chunk_tiles):
            for p in range(n_phases):
                if t < self.phases[p].tiles:
                    self._set_item(i, p, 1, t)
                    i += 1

    cdef void _allocate_items(self, Py_ssize_t count) except *:
        self.n_items = count
        self.items = <Py_ssize_t*>malloc(max(1, 3 * count) * sizeof(Py_ssize_t))
        if self.items == NULL:
            raise MemoryError()

    cdef inline void _set_item(self, Py_ssize_t i, Py_ssize_t phase, Py_ssize_t phases,
                               Py_ssize_t first_tile):
        self.items[3 * i], self.items[3 * i + 1], self.items[3 * i + 2] = phase, phases, first_tile

    # ------------------------------------------------------------ what it decided
    def explain(self):
        """The plan's decisions, for tests and for curious users.

        Returns a dict: `paths` (a frozenset naming every path the call takes:
        "disjoint", "batch_tiles", "line_tiles", "w_lines", "row_kernel", "columns",
        "stream", "all_phases", "phase_per_item", "phase_columns", or "lanes" alone), the
        kernel names (the lanes kernel's on that path), the
        work split, the phase-column panels' taps per axis (or None), and one dict per
        phase.
        """
        cdef Geometry* g = &self.g
        cdef PhasePlan* pp
        cdef Py_ssize_t p
        phases, paths = [], set()
        for p in range(g.sd * g.sh * g.sw):
            pp = self.phases + p
            row = pp.row_kernel.name.decode() if pp.row_kernel != NULL else None
            phases.append({"phase": (pp.rd, pp.rh, pp.rw), "taps": (pp.td_n, pp.th_n, pp.tw_n),
                           "tiles": pp.tiles, "row_kernel": row,
                           "runs": (pp.row_k, pp.row_run) if g.w_lines else None,
                           "columns": pp.row_r if g.w_lines else None})
            if row is not None and pp.row_k > 0 and pp.rows > 0:
                paths.add("row_kernel")
            if g.w_lines and pp.row_r > 0 and pp.rows > 0:
                paths.add("columns")
        if not self.empty:
            paths.add("phase_columns" if g.phase_columns else "disjoint" if g.disjoint
                      else "w_lines" if g.w_lines
                      else "batch_tiles" if g.batch_fastest else "line_tiles")
            paths.add("all_phases" if self.all_phases or g.disjoint or g.phase_columns
                      else "phase_per_item")
            if g.stream:
                paths.add("stream")
            if self.lanes != NULL:      # the tile plan stays, unused
                paths = {"lanes"}
            if self.winograd != NULL:
                paths = {"winograd"}
        every = self.phases + g.sd * g.sh * g.sw
        return {"paths": frozenset(paths),
                "kernel": (self.lanes.name if self.lanes != NULL
                           else self.winograd_gemm.name if self.winograd != NULL
                           else self.gemm.name).decode(),
                "column_taps": ((every.td_n, every.th_n, every.tw_n) if g.phase_columns
                                else None),
                "isa": (self.lanes.isa if self.lanes != NULL
                        else self.winograd.isa if self.winograd != NULL
                        else self.gemm.isa).decode(),
                "nr": g.nr, "threads": self.threads,
                # the lanes path: points per kernel call and row, the scratch row layout
                # (zeros before a row's first point, values per channel) and the input
                # planes each thread's ring holds
                "lanes": ((self.lanes.lanes, self.lanes_pad, self.lanes_row, self.lanes_ring)
                          if self.lanes != NULL else None),
                # the Winograd path: its transforms, tiles per axis and tiles per batch
                "winograd": ((self.winograd.name.decode(), tuple(self.winograd_tiles),
                              self.winograd_batch) if self.winograd != NULL else None),
                "items": self.n_items if not self.empty else 0,
                "tiles_per_item": g.chunk_tiles if not self.empty else 0, "phases": phases}

    # ------------------------------------------------------------ running it
    cdef void _check(self, object array, Py_ssize_t first, str name) except *:
        """The O(1) contract: an aligned, C-contiguous array of the plan's dtype and shape."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
        cdef cnp.ndarray a = array
        cdef int axis
        cdef bint ok = (cnp.PyArray_NDIM(a) == 5 and cnp.PyArray_ITEMSIZE(a) == self.itemsize
                        and cnp.PyArray_ISFLOAT(a) and cnp.PyArray_IS_C_CONTIGUOUS(a)
                        and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a))
        if ok:
            for axis in range(5):
                ok = ok and cnp.PyArray_DIMS(a)[axis] == self.shape[first + axis]
        if not ok:
            raise ValueError(f"{name} must be an aligned C-contiguous {self.kernel.dtype} array "
                             f"of shape {self.shape_of(first)}, got {array.dtype} "
                             f"{array.shape} (flags {array.flags.c_contiguous=}, "
                             f"{array.flags.aligned=})")

    def _without_columns(self):
        """The same plan with one panel per phase (made on first use)."""
        if self.fallback is None:
            self.fallback = Plan(self.kernel, self.input_shape, self.output_shape, self.crops,
                                 self.activation, self.threads, False, self.lanes_allowed,
                                 self.winograd_allowed)
        return self.fallback

    def _direct(self):
        """The same plan without the Winograd path (made on first use)."""
        if self.direct is None:
            self.direct = Plan(self.kernel, self.input_shape, self.output_shape, self.crops,
                               self.activation, self.threads, self.columns_allowed,
                               self.lanes_allowed, False)
        return self.direct

    def shape_of(self, Py_ssize_t first):
        return tuple(self.shape[first + a] for a in range(5))

    def run(self, x, out):
        """Write the layer's output for x into out (see the module docstring)."""
        self._check(x, 0, "x")
        self._check(out, 5, "out")
        if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            raise ValueError("out must be writeable")
        if self.empty:
            return
        if self.lanes != NULL:
            self._run_lanes(x, out)
            return
        if self.winograd != NULL:
            if _all_finite(x, self.threads):
                self._run_winograd(x, out)
            else:
                # the transforms subtract inputs: an infinite one would put NaN where
                # the direct sums give +-inf, and spread it to its tile's neighbours
                self._direct().run(x, out)
            return
        if (self.g.phase_columns and self.kernel.column_zeros
                and not _all_finite(x, self.threads)):
            # a phase's zero weight at another phase's offset times an infinite input
            # would put NaN where no tap of the layer reaches: per-phase panels instead
            self._without_columns().run(x, out)
            return
        cdef Call call
        call.x = cnp.PyArray_DATA(<cnp.ndarray>x) if cnp.PyArray_SIZE(<cnp.ndarray>x) else NULL
        call.out = cnp.PyArray_DATA(<cnp.ndarray>out)
        call.weights = cnp.PyArray_DATA(<cnp.ndarray>self.kernel.weights)
        call.bias = (NULL if self.kernel.bias is None
                     else cnp.PyArray_DATA(<cnp.ndarray>self.kernel.bias))
        call.zeros, call.g, call.phases, call.gemm = self.zeros, &self.g, self.phases, self.gemm
        call.column_offset = call.column_needs = NULL
        if self.g.phase_columns:
            call.weights = cnp.PyArray_DATA(<cnp.ndarray>self.kernel.column_weights)
            call.bias = (NULL if self.kernel.column_bias is None
                         else cnp.PyArray_DATA(<cnp.ndarray>self.kernel.column_bias))
            call.column_offset = <const Py_ssize_t*>cnp.PyArray_DATA(
                <cnp.ndarray>self.column_offset)
            call.column_needs = <const Py_ssize_t*>cnp.PyArray_DATA(
                <cnp.ndarray>self.column_needs)
        call.axis_delta = self._delta(0)
        cdef Py_ssize_t done
        with nogil:
            if self.itemsize == 4:
                done = _execute(&call, self.items, self.n_items, self.threads, <float*>call.out)
            else:
                done = _execute(&call, self.items, self.n_items, self.threads, <double*>call.out)
        if done != self.n_items:
            raise MemoryError("deconv3d: could not allocate per-thread work buffers")


    cdef void _run_winograd(self, x, out) except *:
        """run() on the Winograd path."""
        cdef WinogradCall wc
        cdef bint ok
        wc.x = cnp.PyArray_DATA(<cnp.ndarray>x)
        wc.out = cnp.PyArray_DATA(<cnp.ndarray>out)
        wc.weights = cnp.PyArray_DATA(<cnp.ndarray>self.kernel.winograd_weights)
        wc.bias = (NULL if self.kernel.bias is None
                   else cnp.PyArray_DATA(<cnp.ndarray>self.kernel.bias))
        wc.zeros, wc.g = self.zeros, &self.g
        wc.gemm, wc.transforms = self.winograd_gemm, self.winograd
        wc.taps = self.kernel.winograd_taps
        wc.tiles_d, wc.tiles_h, wc.tiles_w = self.winograd_tiles
        wc.lead_d, wc.lead_h, wc.lead_w = self.winograd_lead
        wc.batch, wc.nr, wc.blocks = self.winograd_batch, self.kernel.nr, self.kernel.filter_blocks
        cdef Py_ssize_t n3 = self.winograd.transforms ** 3, line = 64 // self.itemsize
        wc.tile_values = n3 * self.g.C + line
        wc.tile_products = n3 * wc.blocks * wc.nr + line
        with nogil:
            if self.itemsize == 4:
                ok = _wg_run(&wc, self.threads, <float*>wc.out)
            else:
                ok = _wg_run(&wc, self.threads, <double*>wc.out)
        if not ok:
            raise MemoryError("deconv3d: could not allocate per-thread work buffers")

    cdef void _run_lanes(self, x, out) except *:
        """run() on the lanes path."""
        cdef LanesCall lc
        cdef Geometry* g = &self.g
        cdef size_t nbytes = ((1 + self.threads * self.lanes_ring * g.H) * g.C * self.lanes_row
                              * self.itemsize)
        cdef void* raw
        cdef bint ok, own = self.lanes_scratch_taken
        if own or self.lanes_scratch == NULL:
            # zeroed: rows' values go in by call, the zeros between them stay
            raw = calloc(nbytes + 64, 1)
            if raw == NULL:
                raise MemoryError(f"deconv3d: could not allocate {nbytes} bytes of scratch")
            if not own:
                self.lanes_scratch = raw
        else:
            raw = self.lanes_scratch
        self.lanes_scratch_taken = self.lanes_scratch_taken or not own
        lc.scratch = <void*>((<size_t>raw + 63) & ~(<size_t>63))
        lc.x = cnp.PyArray_DATA(<cnp.ndarray>x)
        lc.out = cnp.PyArray_DATA(<cnp.ndarray>out)
        lc.weights = cnp.PyArray_DATA(<cnp.ndarray>self.kernel.lanes_weights)
        lc.weight_offset = <const Py_ssize_t*>cnp.PyArray_DATA(
            <cnp.ndarray>self.kernel.lanes_offset)
        lc.bias = (NULL if self.kernel.bias is None
                   else cnp.PyArray_DATA(<cnp.ndarray>self.kernel.bias))
        lc.axis_delta = self._delta(0)
        lc.g, lc.phases, lc.kernel = &self.g, self.phases, self.lanes
        lc.pad, lc.row, lc.max_taps = self.lanes_pad, self.lanes_row, self.kernel.max_taps
        lc.ring = self.lanes_ring
        with nogil:
            if self.itemsize == 4:
                ok = _lanes_run(&lc, self.threads, <float*>lc.out)
            else:
                ok = _lanes_run(&lc, self.threads, <double*>lc.out)
        if own:
            free(raw)
        else:
            self.lanes_scratch_taken = False
        if not ok:
            raise MemoryError("deconv3d: could not allocate per-thread work buffers")


cdef inline void _run_item(const Call* call, const Py_ssize_t* item,
                           Workspace* ws, floating* out) noexcept nogil:
    """One work item (first phase, phase count, first tile): up to g.chunk_tiles tiles
    of each of its phases."""
    cdef const Geometry* g = call.g
    cdef Py_ssize_t p, tiles
    if g.phase_columns and g.disjoint:
        _disjoint_columns_item(call, item[2], min(g.total_tiles - item[2], g.chunk_tiles),
                               ws, out)
        return
    if g.phase_columns:
        _phase_columns_item(call, item[2], min(g.total_tiles - item[2], g.chunk_tiles), ws,
                            out)
        return
    if g.disjoint:
        _disjoint_item(call, item[2], min(g.total_tiles - item[2], g.chunk_tiles), ws, out)
        return
    for p in range(item[0], item[0] + item[1]):
        tiles = min(call.phases[p].tiles - item[2], g.chunk_tiles)
        if tiles > 0:
            _phase_item(call, p, item[2], tiles, ws, out)


cdef enum:
    FINITE_CHUNK = 1 << 16      # values per piece of the finiteness check


cdef inline Py_ssize_t _non_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """How many of n values are infinite or NaN (all exponent bits set); integer
    compares, which the compiler vectorizes."""
    cdef Py_ssize_t i
    cdef unsigned int count32 = 0
    cdef unsigned long long count64 = 0
    cdef const unsigned int* b32 = <const unsigned int*>x
    cdef const unsigned long long* b64 = <const unsigned long long*>x
    if floating is float:
        for i in range(n):
            count32 += (b32[i] & 0x7f800000u) == 0x7f800000u
    else:
        for i in range(n):
            count64 += (b64[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull
    return count32 + count64


def _all_finite(cnp.ndarray x, int threads):
    """Whether every value of a C-contiguous float array is finite."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), piece, pieces = _ceil_div(n, FINITE_CHUNK)
    cdef Py_ssize_t found = 0, itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef void* data = cnp.PyArray_DATA(x)
    with nogil:
        for piece in prange(pieces, num_threads=max(1, min(threads, pieces)),
                            schedule="static"):
            if itemsize == 4:
                found += _non_finite(<const float*>data + piece * FINITE_CHUNK,
                                     min(FINITE_CHUNK, n - piece * FINITE_CHUNK))
            else:
                found += _non_finite(<const double*>data + piece * FINITE_CHUNK,
                                     min(FINITE_CHUNK, n - piece * FINITE_CHUNK))
    return found == 0


cdef Py_ssize_t _execute(const Call* call, const Py_ssize_t* items, Py_ssize_t n_items,
                         int threads, floating* out) noexcept nogil:
    """Every work item, on `threads` threads; returns how many were done (a thread that
    could not allocate its workspace skips its items, and the caller raises)."""
    cdef Workspace ws
    cdef Py_ssize_t item, done = 0
    if threads == 1 or n_items == 1:
        ws = _workspace_new(call.g, sizeof(floating))
        if _workspace_ok(&ws):
            for item in range(n_items):
                _run_item(call, items + 3 * item, &ws, out)
            done = n_items
        dc3_store_fence()
        _workspace_free(&ws)
        return done
    with parallel(num_threads=threads):
        ws = _workspace_new(call.g, sizeof(floating))
        for item in prange(n_items, schedule="dynamic"):
            if _workspace_ok(&ws):
                _run_item(call, items + 3 * item, &ws, out)
                done += 1
        dc3_store_fence()
        _workspace_free(&ws)
    return done


def conv3d_transpose(x, PackedKernel kernel, out, tuple crops, int activation=ACT_LINEAR,
                     int num_threads=0):
    """Write the transposed convolution of `x` into `out` (see the module docstring).

    x and out: aligned, C-contiguous, channels-last arrays in the packed kernel's dtype;
    `crops` the three front crops; `num_threads <= 0` means OpenMP's default.  The plan
    for these shapes is cached on the packed kernel.
    """
    kernel.plan(x.shape, out.shape, crops, activation, num_threads).run(x, out)


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
