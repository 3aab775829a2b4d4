# What the core decides once per (packed kernel, input shape, crops, activation, threads):
# the layer's geometry, one PhasePlan per stride phase and the tuning constants behind
# those decisions.  Integers only, so a plan is computed once and reused by every call
# with the same shapes (deconv3d._core.Plan caches it on the packed kernel).
from _kernels cimport dc3_kernel, DC3_MR

# ---------------------------------------------------------------- tuning constants
# Every number the planner uses, with the measurement behind it where there is one.
cdef enum:
    # The w_lines tile order (row interiors in runs, borders by column) costs a few
    # divisions per tile; tiles whose reduction (taps x channels) is at least this long
    # pay for them easily.  w_lines measured 6% faster on overlap (stride 2) and 5% on
    # stride1 than plain tiles along w.
    W_LINES_MIN_REDUCTION = 96
    # Thin inputs (at most this many channels) take the w_lines order whatever their
    # reduction: their tiles are all table and little arithmetic, and in w_lines a run
    # tile reuses the table of the run before it on the same rows, shifted (thin,
    # (1,64^3,1)->8 k3 s2, two threads: 12.4-13.6 ms -> 6.9-7.0 ms, best of two rounds).
    THIN_MAX_CHANNELS = 4
    # ... and take the phase-column panels (PackedKernel._phase_columns) even where
    # those do up to this many times the multiply-adds of one panel per phase.
    THIN_COLUMN_COST = 4
    # Values of one reduction group (taps x channels): a group's input for the whole
    # work item stays in L2 while one filter block's weights sit in L1.
    KC_F32 = 512
    KC_F64 = 256
    # Tiles per work item: at most this many (the table of one item stays small) ...
    MAX_ITEM_TILES = 32
    # ... and at least this many items per thread, for dynamic scheduling to balance.
    MIN_ITEMS_PER_THREAD = 8
    # One work item's indirection table stays under this many bytes.
    MAX_TABLE_BYTES = 1 << 20
    # Above this size the packed kernel no longer stays in L2 while one work item sweeps
    # every phase, so items take one phase each.
    ALL_PHASES_MAX_KERNEL_BYTES = 1 << 20
    # Outputs at least this large are written with non-temporal stores: they cannot
    # stay in cache anyway, and a normal store first reads each line it writes
    # (measured: 17 GB/s with normal stores, 47 GB/s streaming, on two threads).
    # Smaller outputs stay in cache for whoever reads them next.
    STREAM_MIN_BYTES = 16 << 20
    # kernel == stride: items of up to this many tiles (one weight panel serves them
    # all), and at least this many items per thread.
    DISJOINT_MAX_ITEM_TILES = 64
    DISJOINT_MIN_ITEMS_PER_THREAD = 16
    # phase columns: the most (d, h) tap pairs a panel's bit mask of used pairs holds
    MAX_COLUMN_PAIRS = 62
    # Lanes path (_lanes.pxd): layers with at most DC3_LANE_MAX_FILTERS filters, at least
    # this many channels (fewer leave the kernel too short a reduction for its stores)
    # and taps that overlap (kernel > stride on some axis: where kernel <= stride the
    # phase-column panels waste nothing and read the input in place) ...
    LANES_MIN_CHANNELS = 8
    # ... whose channel-major copy of the input stays under this many MiB ...
    LANES_MAX_SCRATCH_MIB = 256
    # ... and whose panels (phase columns, else one per phase) would do at least this many
    # quarters of the taps' own multiply-adds.  Where the panels waste nothing the lanes
    # lose: (1,32^3,32)->2 k4 s2, 16 columns without zeros, 1.7 ms against 2.5 for the
    # lanes; few filters (1,32^3,32)->4 k3 s2, 192 against 108: 2.4 -> 1.8 ms (core
    # alone, a quiet machine).
    LANES_MIN_WASTE_QUARTERS = 5
    # Winograd path (_winograd.pxd): stride-1 layers with 3^3 or 5^3 kernels, at least
    # this many channels and filters and this many (channels x filters): below that the
    # transforms cost what the products save.  Two threads, Zen 4, Winograd over direct
    # time, best of three alternations (a noisy host: +-15%): 3^3 kernels on 32^3 inputs,
    # (C, F) = (32, 32) 0.63-0.68, (16, 32) 0.72, (32, 16) 0.78-0.83, (24, 24) 0.79-0.87,
    # (16, 16) 0.89-1.15, (8, 64) 0.89, (64, 8) 1.0, (16, 8) 1.5; 64 images of 8^3 at
    # (16, 16) 0.92-0.99, of 10^3 "valid" 1.06; 5^3 kernels on 24^3, (32, 32) 0.72,
    # (16, 32) 0.67-0.86, (16, 16) 0.79-0.94.
    WINOGRAD_MIN_CHANNELS = 16
    WINOGRAD_MIN_FILTERS = 16
    WINOGRAD_MIN_PRODUCT = 512
    # ... whose transformed weights stay under this many MiB (2.7 times the kernel for
    # 5^3, 2.4 for 3^3) ...
    WINOGRAD_MAX_WEIGHTS_MIB = 256
    # ... in batches of tiles whose transformed inputs and products (per thread) take
    # about this many bytes: they stay in L2 between the three steps.
    WINOGRAD_BATCH_BYTES = 512 << 10


cdef struct Geometry:
    # input (N, D, H, W, C) and output (N, OD, OH, OW, F), channels-last
    Py_ssize_t N, D, H, W, C, OD, OH, OW, F
    # per axis (d, h, w): stride and front crop
    Py_ssize_t sd, sh, sw, pd, ph, pw
    # packed panels: filters per panel and panels; taps of the longest axis and phase
    Py_ssize_t nr, blocks, max_axis_taps, max_taps
    # tiles per work item and in all (over every phase); values per reduction group
    Py_ssize_t chunk_tiles, total_tiles, kc
    # tile order: batch index fastest (many images, small volumes) or w fastest; with
    # w fastest, w_lines puts each row's interior into whole tiles (see _row_split)
    bint batch_fastest, w_lines
    # kernel == stride with nothing cropped: _disjoint_item computes the layer
    bint disjoint
    # phase_columns: _phase_columns_item computes the layer from panels whose `columns`
    # columns are (phase, filter) (nr, blocks and max_taps are then those panels'); a
    # voxel's outputs of one (rd, rh) lie side by side, column_run (sw * F) of them,
    # and panels that divide that run go straight into the output (column_direct)
    bint phase_columns, column_direct
    Py_ssize_t columns, column_run
    # the union's (d, h) tap pairs: panels skip the pairs they lack (a bit mask each)
    # where there are at most MAX_COLUMN_PAIRS
    Py_ssize_t column_pairs
    # an activation code (_activations.pxd); write with non-temporal stores
    int activation
    bint stream


cdef struct PhasePlan:
    # the phase: stride residue per axis, and where its panels start in the weights
    Py_ssize_t rd, rh, rw, weights
    # taps per axis, and where their input offsets start in PackedKernel.axis_delta
    Py_ssize_t td_n, th_n, tw_n, dd, dh, dw
    # the input-grid points the phase covers: first and count per axis; rows = N*nqd*nqh
    Py_ssize_t q0d, q0h, q0w, nqd, nqh, nqw, rows
    # w_lines split of a row (_row_split) and the phase's tile count
    Py_ssize_t row_lo, row_k, row_r, row_run, tiles
    # the w taps read consecutive input voxels (always so with dilation 1)
    bint w_consecutive
    # the row kernel for the phase's run tiles, or NULL
    const dc3_kernel* row_kernel


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # b > 0; correct for negative a too
    return -((-a) // b) if a < 0 else (a + b - 1) // b


cdef inline Py_ssize_t _floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return -((-a + b - 1) // b) if a < 0 else a // b


cdef inline bint _inside(Py_ssize_t i, Py_ssize_t length) noexcept nogil:
    return 0 <= i < length


cdef inline bint _long_reduction(const Geometry* g) noexcept nogil:
    """A phase's reduction (taps x channels) long enough for the w_lines order and the
    row kernels (W_LINES_MIN_REDUCTION)."""
    return g.max_taps * g.C >= W_LINES_MIN_REDUCTION


cdef inline void _grid_range(Py_ssize_t length, Py_ssize_t crop, Py_ssize_t stride,
                             Py_ssize_t r, Py_ssize_t* q0, Py_ssize_t* nq) noexcept nogil:
    """The input-grid points q of phase r on one axis: output o = q*stride + r - crop
    for o in [0, length), so q runs over ceil((crop - r) / stride) ..
    floor((length - 1 + crop - r) / stride); nq may come out <= 0 (no such point)."""
    q0[0] = _ceil_div(crop - r, stride)
    nq[0] = _floor_div(length - 1 + crop - r, stride) - q0[0] + 1


cdef inline void _union_range(Py_ssize_t length, Py_ssize_t crop, Py_ssize_t stride,
                              Py_ssize_t* q0, Py_ssize_t* nq) noexcept nogil:
    """The input-grid points q of all phases of one axis together: those with some
    output q*stride + r - crop, r < stride, in [0, length)."""
    q0[0] = _ceil_div(crop - stride + 1, stride)
    nq[0] = max(0, _floor_div(length - 1 + crop, stride) - q0[0] + 1)


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
    cdef Py_ssize_t divisors[5]
    cdef int i
    divisors[0], divisors[1], divisors[2] = DC3_MR, DC3_MR // 2, DC3_MR // 3
    divisors[3], divisors[4] = DC3_MR // 4, DC3_MR // 6
    if tw_n > 0:        # taps are sorted by input offset
        first = min(max(-q0w - dw[0], 0), nqw)
        end = min(max(W - q0w - dw[tw_n - 1], first), nqw)
    length = end - first
    run[0] = DC3_MR
    for i in range(5):
        candidate = (length // divisors[i]) * divisors[i]
        if candidate > best:
            best = candidate
            run[0] = divisors[i]
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
