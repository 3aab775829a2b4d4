# Executing a plan: the steps of one work item, with stated inputs and outputs.
#   general path:  _build_tables (tile voxels, masks, table) -> _reduce_tiles -> _finish_tiles
#   kernel == stride, nothing cropped:  _disjoint_item (one matrix product into strided rows)
#   few filters or thin inputs:         _columns.pxd (every phase's filters side by side)
# with the per-call state (Call) and per-thread buffers (Workspace) they all share.
# Threads own whole work items (tile ranges of phases), so no two write the same voxel.
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy
from libc.stddef cimport ptrdiff_t
from _types cimport floating
from _kernels cimport dc3_kernel, DC3_MR, DC3_RUN, DC3_RELU, DC3_STREAM
from _activations cimport ACT_LINEAR, ACT_RELU, _activate
from _plan cimport Geometry, PhasePlan
from _tiles cimport (Coord, _unravel, _advance, _next_voxels, _w_line_voxels,
                     _voxel_addresses, _tile_masks, _merged_w_taps, _is_row_tile, _fill_table)


cdef struct Call:
    # What one call reads and writes (pointers in the call's dtype) and its plan.
    const void* x               # the input, channels-last; NULL when it is empty
    const void* weights         # PackedKernel.weights
    const void* bias            # PackedKernel.bias (whole panels), or NULL
    void* out                   # the output, channels-last
    const void* zeros           # a row of zeros: what taps outside the input read
    const Py_ssize_t* axis_delta    # PackedKernel.axis_delta, flat
    const Geometry* g
    const PhasePlan* phases
    const dc3_kernel* gemm      # the kernel for the packed panel width
    const Py_ssize_t* column_offset  # phase_columns: (4, columns), each column's output offset
                                     # from a point's block origin and its phase (rd, rh, rw);
                                     # weights and bias are then the column panels
    const Py_ssize_t* column_needs  # phase_columns: per panel, the (d, h) tap pairs it uses


cdef struct Workspace:
    # One thread's buffers, sized for a work item of g.chunk_tiles tiles.
    Py_ssize_t* woff            # (tiles, max_taps): each table entry's weight panel
    void** aptr                 # (tiles, max_taps, MR): the indirection tables
    Py_ssize_t* ntaps           # (tiles,): table entries per tile
    Py_ssize_t* channels        # (tiles,): channels per entry (C, more once w taps merge)
    Py_ssize_t* group_taps      # (tiles,): entries per reduction group
    unsigned char* by_rows      # (tiles,): the tile goes to its phase's row kernel
    void** vox                  # (tiles, MR): each voxel's output, NULL past the end
    void* scratch               # (tiles, MR, nr): partial filter blocks, missing voxels
    void** outp                 # (MR,): where one kernel call writes
    unsigned int* tap_masks     # (3, max_axis_taps): per axis and tap, voxels reached
    Py_ssize_t* obase           # (tiles, MR): kernel == stride path's output offsets
    void** panel_table          # (max_taps, MR): phase columns, the entries one panel uses
    Py_ssize_t* panel_woff      # (max_taps,): their weight offsets
    Py_ssize_t* entry_pair      # (max_taps,): each table entry's (d, h) tap pair


cdef inline Workspace _workspace_new(const Geometry* g, Py_ssize_t itemsize) noexcept nogil:
    """A thread's buffers; any of them NULL when memory ran out (see _workspace_ok).  The
    scratch tile starts zeroed: what it holds for voxels past the end is never read out."""
    cdef Workspace ws
    cdef Py_ssize_t tiles = g.chunk_tiles, entries = g.chunk_tiles * g.max_taps
    ws.woff = <Py_ssize_t*>malloc(entries * sizeof(Py_ssize_t))
    ws.aptr = <void**>malloc(max(entries, tiles) * DC3_MR * sizeof(void*))
    ws.ntaps = <Py_ssize_t*>malloc(tiles * sizeof(Py_ssize_t))
    ws.channels = <Py_ssize_t*>malloc(tiles * sizeof(Py_ssize_t))
    ws.group_taps = <Py_ssize_t*>malloc(tiles * sizeof(Py_ssize_t))
    ws.by_rows = <unsigned char*>malloc(tiles)
    ws.vox = <void**>malloc(tiles * DC3_MR * sizeof(void*))
    ws.scratch = calloc(tiles * DC3_MR * g.nr, itemsize)
    ws.outp = <void**>malloc(DC3_MR * sizeof(void*))
    ws.tap_masks = <unsigned int*>malloc(3 * g.max_axis_taps * sizeof(unsigned int))
    ws.obase = <Py_ssize_t*>malloc(tiles * DC3_MR * sizeof(Py_ssize_t))
    ws.panel_table = <void**>malloc(g.max_taps * DC3_MR * sizeof(void*))
    ws.panel_woff = <Py_ssize_t*>malloc(g.max_taps * sizeof(Py_ssize_t))
    ws.entry_pair = <Py_ssize_t*>malloc(g.max_taps * sizeof(Py_ssize_t))
    return ws


cdef inline bint _workspace_ok(const Workspace* ws) noexcept nogil:
    return (ws.woff != NULL and ws.aptr != NULL and ws.ntaps != NULL
            and ws.channels != NULL and ws.group_taps != NULL and ws.by_rows != NULL
            and ws.vox != NULL and ws.scratch != NULL and ws.outp != NULL
            and ws.tap_masks != NULL and ws.obase != NULL and ws.panel_table != NULL
            and ws.panel_woff != NULL and ws.entry_pair != NULL)


cdef inline void _workspace_free(Workspace* ws) noexcept nogil:
    free(ws.woff)
    free(ws.aptr)
    free(ws.ntaps)
    free(ws.channels)
    free(ws.group_taps)
    free(ws.by_rows)
    free(ws.vox)
    free(ws.scratch)
    free(ws.outp)
    free(ws.tap_masks)
    free(ws.obase)
    free(ws.panel_table)
    free(ws.panel_woff)
    free(ws.entry_pair)


cdef inline void _call_kernel(const dc3_kernel* kernel, Py_ssize_t ntaps, Py_ssize_t channels,
                              const floating** a, const floating* w, const Py_ssize_t* woff,
                              const floating* bias, floating** out, bint accumulate,
                              int flags, Py_ssize_t ldx) noexcept nogil:
    """One micro-kernel call (kernels/kernels.h has the contract)."""
    if floating is float:
        kernel.f32(ntaps, channels, a, w, <const ptrdiff_t*>woff, bias, out, accumulate,
                   flags, ldx)
    else:
        kernel.f64(ntaps, channels, a, w, <const ptrdiff_t*>woff, bias, out, accumulate,
                   flags, ldx)


cdef inline void _finish_voxel(floating* o, const floating* partial, Py_ssize_t ncols,
                               bint full, int activation) noexcept nogil:
    """A voxel's block of filters finished: a partial block copied out of the scratch
    tile, then an activation the kernels do not fuse (they fuse only relu)."""
    cdef Py_ssize_t f
    if not full:
        memcpy(o, partial, ncols * sizeof(floating))
    if activation != ACT_LINEAR:
        for f in range(ncols):
            o[f] = <floating>_activate(o[f], activation)


cdef inline const floating* _block_bias(const floating* bias, Py_ssize_t j,
                                        Py_ssize_t nr) noexcept nogil:
    """Filter block j's part of the padded bias, or NULL without a bias."""
    return bias + j * nr if bias != NULL else <const floating*>NULL


cdef inline int _exit_flags(const Geometry* g, bint full) noexcept nogil:
    """Flags for the kernel call that finishes a tile: relu fused, and streamed stores
    for large outputs (only into whole filter blocks of the output itself)."""
    return ((DC3_RELU if g.activation == ACT_RELU else 0)
            | (DC3_STREAM if g.stream and full else 0))


cdef inline int _unfused(const Geometry* g) noexcept nogil:
    """The activation left for _finish_voxel."""
    return ACT_LINEAR if g.activation == ACT_RELU else g.activation


# ---------------------------------------------------------------- general path
cdef inline void _shift_run_tile(Workspace* ws, Py_ssize_t tile, Py_ssize_t max_taps,
                                 const floating* zeros, Py_ssize_t in_shift,
                                 Py_ssize_t out_shift) noexcept nogil:
    """Tile `tile` as the run tile before it moved along its rows: in_shift values on
    in the input and out_shift in the output (rows of zeros stay)."""
    cdef Py_ssize_t e, r, m, count = ws.ntaps[tile - 1]
    cdef bint by_rows = ws.by_rows[tile - 1]
    cdef const floating** src = <const floating**>ws.aptr + (tile - 1) * max_taps * DC3_MR
    cdef const floating** dst = <const floating**>ws.aptr + tile * max_taps * DC3_MR
    cdef floating** vox = <floating**>ws.vox
    ws.ntaps[tile] = count
    ws.channels[tile] = ws.channels[tile - 1]
    ws.group_taps[tile] = ws.group_taps[tile - 1]
    ws.by_rows[tile] = by_rows
    for e in range(count):
        ws.woff[tile * max_taps + e] = ws.woff[(tile - 1) * max_taps + e]
        if by_rows:
            for r in range(2):      # the row kernels read each run's first voxel only
                m = e * DC3_MR + r * DC3_RUN
                dst[m] = src[m] if src[m] == zeros else src[m] + in_shift
        else:
            for m in range(e * DC3_MR, (e + 1) * DC3_MR):
                dst[m] = src[m] if src[m] == zeros else src[m] + in_shift
    for m in range(DC3_MR):
        vox[tile * DC3_MR + m] = (NULL if vox[(tile - 1) * DC3_MR + m] == NULL
                                  else vox[(tile - 1) * DC3_MR + m] + out_shift)


cdef inline void _tile_table(const Call* call, const PhasePlan* pp, Py_ssize_t tile,
                             Py_ssize_t (*nq)[4], const Py_ssize_t* base, Py_ssize_t n_valid,
                             bint is_run, Workspace* ws, const floating* x) noexcept nogil:
    """Tile `tile`'s indirection table and how to reduce it.

    IN nq, base: its voxels (absolute grid points, input offsets), n_valid of them.
    OUT ws.aptr, ws.woff (the table), ws.ntaps, ws.channels, ws.group_taps, ws.by_rows.
    """
    cdef const Geometry* g = call.g
    cdef const Py_ssize_t* dd = call.axis_delta + pp.dd
    cdef const Py_ssize_t* dh = call.axis_delta + pp.dh
    cdef const Py_ssize_t* dw = call.axis_delta + pp.dw
    cdef unsigned int* md = ws.tap_masks
    cdef unsigned int* mh = md + g.max_axis_taps
    cdef unsigned int* mw = md + 2 * g.max_axis_taps
    cdef unsigned int valid = (1u << n_valid) - 1
    cdef Py_ssize_t w_first = 0, w_last = 0, count = 0, entries = tile * g.max_taps
    cdef bint merged = False, row_tile = False
    if g.C > 0:
        _tile_masks(md, mh, mw, pp, dd, dh, dw, nq, n_valid, is_run, g)
        merged = _merged_w_taps(mw, pp, valid, &w_first, &w_last)
        row_tile = _is_row_tile(mw, pp, valid, is_run)
        if row_tile:
            merged, w_first, w_last = True, 0, pp.tw_n - 1
        count = _fill_table(x, <const floating*>call.zeros, base, md, mh, mw, pp, dd, dh, dw,
                            g, merged, w_first, row_tile,
                            <const floating**>ws.aptr + entries * DC3_MR, ws.woff + entries)
    ws.ntaps[tile] = count
    ws.channels[tile] = g.C * (w_last - w_first + 1) if merged else g.C
    ws.group_taps[tile] = max(1, g.kc // max(ws.channels[tile], 1))
    ws.by_rows[tile] = row_tile


cdef inline void _build_tables(const Call* call, const PhasePlan* pp, Py_ssize_t first_tile,
                               Py_ssize_t n_tiles, Workspace* ws, floating* out) noexcept nogil:
    """Step 1: tiles [first_tile, first_tile + n_tiles) of a phase, as indirection tables.

    OUT ws.vox (each voxel's output) and everything _tile_table writes, per tile.  A
    run tile that follows another along the same rows reuses its table, shifted.
    """
    cdef const Geometry* g = call.g
    cdef Py_ssize_t nq[DC3_MR][4]       # per voxel: n, then input-grid d, h, w
    cdef Py_ssize_t base[DC3_MR]        # per voxel: input offset of its grid point
    cdef Py_ssize_t tile, n_valid, v = first_tile * DC3_MR
    cdef Py_ssize_t voxels = g.N * pp.nqd * pp.nqh * pp.nqw
    cdef Py_ssize_t runs_after = 0      # w_lines: runs of the last tile's rows still to come
    cdef Coord cursor = Coord(0, 0, 0, 0)
    cdef bint is_run = False
    if not g.w_lines:
        _unravel(v, pp.nqd, pp.nqh, pp.nqw, g.N, g.batch_fastest, &cursor)
    for tile in range(n_tiles):
        if not g.w_lines:
            n_valid = _next_voxels(&cursor, &v, voxels, pp, g.N, g.batch_fastest, nq)
        elif tile > 0 and runs_after > 0:
            # the next run along the last tile's rows: same taps, one run further on
            _shift_run_tile(ws, tile, g.max_taps, <const floating*>call.zeros,
                            pp.row_run * g.C, pp.row_run * g.sw * g.F)
            runs_after = runs_after - 1
            continue
        else:
            n_valid = _w_line_voxels(first_tile + tile, pp, nq, &is_run, &runs_after)
        _voxel_addresses(nq, n_valid, pp, g, out, base,
                         <floating**>ws.vox + tile * DC3_MR)
        _tile_table(call, pp, tile, nq, base, n_valid, is_run, ws, <const floating*>call.x)


cdef inline void _reduce_tiles(const Call* call, const PhasePlan* pp, Py_ssize_t n_tiles,
                               Workspace* ws, floating* out) noexcept nogil:
    """Step 2: every tile's sums, written to the output (or the scratch tile).

    The reduction over a tile's table entries runs in groups of about KC values and,
    for each group, filter block by filter block over every tile: a group's input
    stays in L2 and a block's weights in L1 while every tile of the item uses them.
    """
    cdef const Geometry* g = call.g
    cdef Py_ssize_t group, groups = 1, j, tile, first, last, nr = g.nr, m
    cdef Py_ssize_t max_taps = g.max_taps, entry
    cdef bint full
    cdef floating** vp
    cdef floating** outp = <floating**>ws.outp
    cdef floating* scratch = <floating*>ws.scratch
    cdef const floating* bias = <const floating*>call.bias
    cdef const floating* block_bias
    cdef const floating* block_weights
    for tile in range(n_tiles):
        groups = max(groups, (ws.ntaps[tile] + ws.group_taps[tile] - 1) // ws.group_taps[tile])
    for group in range(groups):
        for j in range(g.blocks):
            full = g.F - j * nr >= nr
            block_bias = _block_bias(bias, j, nr)
            block_weights = (<const floating*>call.weights + pp.weights
                             + j * pp.td_n * pp.th_n * pp.tw_n * g.C * nr)
            for tile in range(n_tiles):
                first = group * ws.group_taps[tile]
                if first >= ws.ntaps[tile] and group > 0:
                    continue
                last = min(ws.ntaps[tile], first + ws.group_taps[tile])
                vp = <floating**>ws.vox + tile * DC3_MR
                for m in range(DC3_MR):
                    outp[m] = (vp[m] + j * nr if vp[m] != NULL and full
                               else scratch + (tile * DC3_MR + m) * nr)
                entry = tile * max_taps + first
                _call_kernel(pp.row_kernel if ws.by_rows[tile] else call.gemm,
                             max(0, last - first), g.C if ws.by_rows[tile] else ws.channels[tile],
                             <const floating**>ws.aptr + entry * DC3_MR, block_weights,
                             ws.woff + entry, block_bias, outp, group > 0,
                             _exit_flags(g, full) if last >= ws.ntaps[tile] else 0, g.C)


cdef inline void _finish_tiles(const Call* call, Py_ssize_t n_tiles, Workspace* ws,
                               floating* out) noexcept nogil:
    """Step 3: partial filter blocks out of the scratch tile, then unfused activations."""
    cdef const Geometry* g = call.g
    cdef Py_ssize_t j, tile, m, nr = g.nr, ncols
    cdef int activation = _unfused(g)
    cdef floating** vp
    cdef floating* scratch = <floating*>ws.scratch
    for j in range(g.blocks):
        ncols = min(nr, g.F - j * nr)
        if ncols == nr and activation == ACT_LINEAR:
            continue
        for tile in range(n_tiles):
            vp = <floating**>ws.vox + tile * DC3_MR
            for m in range(DC3_MR):
                if vp[m] != NULL:
                    _finish_voxel(vp[m] + j * nr, scratch + (tile * DC3_MR + m) * nr, ncols,
                                  ncols == nr, activation)


cdef inline void _phase_item(const Call* call, Py_ssize_t phase, Py_ssize_t first_tile,
                             Py_ssize_t n_tiles, Workspace* ws, floating* out) noexcept nogil:
    """Output tiles [first_tile, first_tile + n_tiles) of one phase, complete."""
    cdef const PhasePlan* pp = call.phases + phase
    _build_tables(call, pp, first_tile, n_tiles, ws, out)
    _reduce_tiles(call, pp, n_tiles, ws, out)
    _finish_tiles(call, n_tiles, ws, out)


# ---------------------------------------------------------------- kernel == stride
cdef inline void _disjoint_rows(const Call* call, Py_ssize_t first_tile, Py_ssize_t n_tiles,
                                Workspace* ws, const floating* x) noexcept nogil:
    """The tiles' input voxels, read in place (ws.aptr, the zero row past the end), and
    the origins of their blocks of outputs (ws.obase, -1 past the end)."""
    cdef const Geometry* g = call.g
    cdef Py_ssize_t m, v = first_tile * DC3_MR, total = g.N * g.D * g.H * g.W
    cdef const floating** aptr = <const floating**>ws.aptr
    cdef Coord c
    _unravel(v, g.D, g.H, g.W, g.N, False, &c)
    for m in range(n_tiles * DC3_MR):
        if v >= total:
            aptr[m] = <const floating*>call.zeros
            ws.obase[m] = -1
            continue
        aptr[m] = x + v * g.C
        ws.obase[m] = (((c.n * g.OD + c.d * g.sd) * g.OH + c.h * g.sh) * g.OW
                       + c.w * g.sw) * g.F
        v = v + 1
        _advance(&c, g.D, g.H, g.W, g.N, False)


cdef inline void _disjoint_item(const Call* call, Py_ssize_t first_tile, Py_ssize_t n_tiles,
                                Workspace* ws, floating* out) noexcept nogil:
    """Tiles [first_tile, first_tile + n_tiles) when the kernel equals the stride.

    With kernel == stride and nothing cropped, every phase has exactly one tap and
    it reaches every input voxel: input voxel v writes its own block of stride^3
    outputs, once per phase, from its C channels alone.  That is one matrix product,
    (input voxels x C) times (C x phases * filters), written straight into strided
    output positions.  A tile is MR consecutive input voxels (contiguous in memory,
    read in place); the loops run phase and filter block outside, tiles inside, so
    each (C x NR) weight panel is loaded once per item and reused by all its tiles.
    """
    cdef const Geometry* g = call.g
    cdef Py_ssize_t p, j, tile, m, nr = g.nr, ncols, step, no_offset = 0
    cdef int activation = _unfused(g)
    cdef floating** outp = <floating**>ws.outp
    cdef floating* scratch = <floating*>ws.scratch
    cdef const floating* bias = <const floating*>call.bias
    cdef const PhasePlan* pp
    _disjoint_rows(call, first_tile, n_tiles, ws, <const floating*>call.x)
    for p in range(g.sd * g.sh * g.sw):
        pp = call.phases + p
        step = ((pp.rd * g.OH + pp.rh) * g.OW + pp.rw) * g.F
        for j in range(g.blocks):
            ncols = min(nr, g.F - j * nr)
            for tile in range(n_tiles):
                for m in range(DC3_MR):
                    outp[m] = (out + ws.obase[tile * DC3_MR + m] + step + j * nr
                               if ws.obase[tile * DC3_MR + m] >= 0 and ncols == nr
                               else scratch + m * nr)
                _call_kernel(call.gemm, 1 if g.C > 0 else 0, g.C,
                             <const floating**>ws.aptr + tile * DC3_MR,
                             <const floating*>call.weights + pp.weights + j * g.C * nr,
                             &no_offset, _block_bias(bias, j, nr), outp,
                             False, _exit_flags(g, ncols == nr), g.C)
                if ncols == nr and activation == ACT_LINEAR:
                    continue
                for m in range(DC3_MR):
                    if ws.obase[tile * DC3_MR + m] >= 0:
                        _finish_voxel(out + ws.obase[tile * DC3_MR + m] + step + j * nr,
                                      scratch + m * nr, ncols, ncols == nr, activation)
