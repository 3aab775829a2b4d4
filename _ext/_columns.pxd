# Executing a plan with phase-column panels (few filters or thin inputs): every phase's
# filters side by side as the columns of one set of panels, reduced over the union of the
# phases' taps (PackedKernel._phase_columns).  A tile is MR input-grid points:
#   _phase_columns_item:     _column_voxels -> _tile_table (as the general path) -> per
#                            panel, _panel_entries -> kernel -> _columns_out/_scatter_columns
#   kernel == stride:        _disjoint_columns_item (input voxels read in place, one tap)
# Threads own whole work items (tile ranges), so no two write the same voxel.
from libc.string cimport memcpy
from _types cimport floating
from _kernels cimport DC3_MR
from _activations cimport ACT_LINEAR, _activate
from _plan cimport Geometry, PhasePlan, MAX_COLUMN_PAIRS
from _tiles cimport Coord, _unravel, _next_voxels
from _execute cimport (Call, Workspace, _call_kernel, _finish_voxel, _block_bias,
                       _exit_flags, _unfused, _tile_table, _disjoint_rows)


cdef inline unsigned int _residues_inside(Py_ssize_t first, Py_ssize_t stride,
                                          Py_ssize_t length) noexcept nogil:
    """Bit r set where output first + r lies in [0, length), for r < stride."""
    cdef unsigned int bits = 0
    cdef Py_ssize_t r
    for r in range(stride):
        bits |= (<size_t>(first + r) < <size_t>length) << r
    return bits


cdef inline Py_ssize_t _column_voxels(const Call* call, const PhasePlan* pp, Coord* cursor,
                                      Py_ssize_t* v, Py_ssize_t (*nq)[4], Py_ssize_t* base,
                                      Py_ssize_t* origin, unsigned int (*inside)[3],
                                      bint* whole) noexcept nogil:
    """The next tile of input-grid points of the phase-column pseudo-phase.

    IN/OUT cursor, v: the next point, as a point and as its index.
    OUT nq (absolute points), base (their input offsets), origin (the output offset of
    their block's residue (0, 0, 0), which may lie outside the output), inside (per
    axis, the residues whose outputs exist) and whole (all of them exist).
    Returns how many points there are.
    """
    cdef const Geometry* g = call.g
    cdef Py_ssize_t m, od = 0, oh = 0, ow
    cdef bint row_whole = False
    cdef Py_ssize_t n_valid = _next_voxels(cursor, v, pp.rows * pp.nqw, pp, g.N, False, nq)
    for m in range(n_valid):
        nq[m][1] = nq[m][1] + pp.q0d
        nq[m][2] = nq[m][2] + pp.q0h
        nq[m][3] = nq[m][3] + pp.q0w
        ow = nq[m][3] * g.sw - g.pw
        if m > 0 and nq[m][3] == nq[m - 1][3] + 1:
            # the next point of a row: no multiplications
            base[m] = base[m - 1] + g.C
            origin[m] = origin[m - 1] + g.sw * g.F
        else:
            base[m] = (((nq[m][0] * g.D + nq[m][1]) * g.H + nq[m][2]) * g.W
                       + nq[m][3]) * g.C
            od, oh = nq[m][1] * g.sd - g.pd, nq[m][2] * g.sh - g.ph
            origin[m] = (((nq[m][0] * g.OD + od) * g.OH + oh) * g.OW + ow) * g.F
            row_whole = 0 <= od and od + g.sd <= g.OD and 0 <= oh and oh + g.sh <= g.OH
        whole[m] = row_whole and 0 <= ow and ow + g.sw <= g.OW
        if not whole[m]:
            inside[m][0] = _residues_inside(od, g.sd, g.OD)
            inside[m][1] = _residues_inside(oh, g.sh, g.OH)
            inside[m][2] = _residues_inside(ow, g.sw, g.OW)
    return n_valid


cdef inline void _columns_out(floating* dst, const Py_ssize_t* offset, const floating* src,
                              Py_ssize_t ncols, Py_ssize_t run) noexcept nogil:
    """A point's columns of one panel to their outputs, the point's block lying inside
    the output (dst: its origin; offset: the panel's first column's): four or two values
    side by side as one move where the runs allow, else a value at a time."""
    cdef Py_ssize_t c
    if run % 4 == 0 and ncols % 4 == 0:
        for c in range(0, ncols, 4):
            memcpy(dst + offset[c], src + c, 4 * sizeof(floating))
    elif run % 2 == 0 and ncols % 2 == 0:
        for c in range(0, ncols, 2):
            memcpy(dst + offset[c], src + c, 2 * sizeof(floating))
    else:
        for c in range(ncols):
            dst[offset[c]] = src[c]


cdef inline void _scatter_columns(floating* out, Py_ssize_t origin, const floating* src,
                                  const Call* call, Py_ssize_t first, Py_ssize_t ncols,
                                  const unsigned int* inside, bint whole,
                                  int activation) noexcept nogil:
    """Columns [first, first + ncols) of one point's sums, from the scratch tile to those
    of their outputs that exist, through the activation (the general case of
    _columns_out: a block cut by the output's edges, or an unfused activation)."""
    cdef const Geometry* g = call.g
    cdef const Py_ssize_t* offset = call.column_offset + first
    cdef const Py_ssize_t* rd = offset + g.columns
    cdef const Py_ssize_t* rh = offset + 2 * g.columns
    cdef const Py_ssize_t* rw = offset + 3 * g.columns
    cdef Py_ssize_t c
    for c in range(ncols):
        if whole or (inside[0] >> rd[c]) & (inside[1] >> rh[c]) & (inside[2] >> rw[c]) & 1:
            out[origin + offset[c]] = (src[c] if activation == ACT_LINEAR
                                       else <floating>_activate(src[c], activation))


cdef inline unsigned long long _entry_pairs(Workspace* ws, const Geometry* g,
                                          const PhasePlan* pp) noexcept nogil:
    """The (d, h) tap pair of each entry of the table in tile slot 0 (ws.entry_pair),
    and the mask of the pairs present; none where there are more pairs than mask bits
    (no panel then skips any)."""
    cdef Py_ssize_t e, per_pair = pp.tw_n * g.C * g.nr
    cdef unsigned long long present = 0
    if g.column_pairs > MAX_COLUMN_PAIRS:
        return 0
    for e in range(ws.ntaps[0]):
        # entries go (d, h, w): a pair's w taps share it
        ws.entry_pair[e] = ws.woff[e] // per_pair
        present = present | (1ull << ws.entry_pair[e])
    return present


cdef inline Py_ssize_t _panel_entries(Workspace* ws, const floating** table, Py_ssize_t count,
                                      unsigned long long needs, unsigned long long present,
                                      const floating*** panel_table,
                                      const Py_ssize_t** panel_woff) noexcept nogil:
    """The table entries one panel of phase columns uses: all of them, or a copy of
    those whose (d, h) tap pair the panel's phases have (the others meet zero weights
    in it).  Returns how many."""
    cdef Py_ssize_t e, used = 0
    if present & ~needs == 0:
        panel_table[0], panel_woff[0] = table, ws.woff
        return count
    for e in range(count):
        if (needs >> ws.entry_pair[e]) & 1:
            memcpy(ws.panel_table + used * DC3_MR, table + e * DC3_MR, DC3_MR * sizeof(void*))
            ws.panel_woff[used] = ws.woff[e]
            used = used + 1
    panel_table[0] = <const floating**>ws.panel_table
    panel_woff[0] = ws.panel_woff
    return used


cdef inline void _disjoint_columns_item(const Call* call, Py_ssize_t first_tile,
                                        Py_ssize_t n_tiles, Workspace* ws,
                                        floating* out) noexcept nogil:
    """Tiles [first_tile, first_tile + n_tiles) from the phase-column panels when the
    kernel equals the stride and nothing is cropped.

    As _disjoint_item, but one product gives every phase at once: one tap at offset
    0, so a tile is MR consecutive input voxels read in place, and every voxel's
    block of outputs lies inside the output.  The sums land in the scratch tile and
    go out column by column (a few values per output line).
    """
    cdef const Geometry* g = call.g
    cdef Py_ssize_t j, tile, m, c, ncols, nr = g.nr, no_offset = 0
    cdef int activation = _unfused(g)
    cdef floating** outp = <floating**>ws.outp
    cdef floating* scratch = <floating*>ws.scratch
    cdef floating* dst
    cdef const floating* src
    cdef const floating* bias = <const floating*>call.bias
    _disjoint_rows(call, first_tile, n_tiles, ws, <const floating*>call.x)
    for m in range(DC3_MR):
        outp[m] = scratch + m * nr
    for j in range(g.blocks):
        ncols = min(nr, g.columns - j * nr)
        for tile in range(n_tiles):
            _call_kernel(call.gemm, 1, g.C, <const floating**>ws.aptr + tile * DC3_MR,
                         <const floating*>call.weights + j * g.C * nr, &no_offset,
                         _block_bias(bias, j, nr), outp, False, _exit_flags(g, False), g.C)
            for m in range(DC3_MR):
                if ws.obase[tile * DC3_MR + m] < 0:
                    break
                dst = out + ws.obase[tile * DC3_MR + m]
                src = scratch + m * nr
                if activation == ACT_LINEAR:
                    _columns_out(dst, call.column_offset + j * nr, src, ncols, g.column_run)
                else:
                    for c in range(ncols):
                        dst[call.column_offset[j * nr + c]] = <floating>_activate(
                            src[c], activation)


cdef inline void _phase_columns_item(const Call* call, Py_ssize_t first_tile,
                                     Py_ssize_t n_tiles, Workspace* ws,
                                     floating* out) noexcept nogil:
    """Tiles [first_tile, first_tile + n_tiles) from the phase-column panels.

    A tile is MR input-grid points; a point's columns are every phase's filters side
    by side (PackedKernel._phase_columns), reduced over the union of the phases' taps,
    so one kernel call per panel gives up to stride^3 outputs per point.  A panel that
    covers whole runs of outputs side by side goes straight into the output (streamed
    when large, as the general path); the rest lands in the scratch tile and goes out
    a few values per move (_columns_out), or column by column at the output's edges.
    """
    cdef const Geometry* g = call.g
    cdef const PhasePlan* pp = call.phases + g.sd * g.sh * g.sw
    cdef Py_ssize_t nq[DC3_MR][4]
    cdef Py_ssize_t base[DC3_MR]
    cdef Py_ssize_t origin[DC3_MR]
    cdef unsigned int inside[DC3_MR][3]
    cdef bint whole[DC3_MR]
    cdef bint in_place[DC3_MR]
    cdef Py_ssize_t tile, m, j, n_valid, placed, ncols, used, nr = g.nr
    cdef Py_ssize_t v = first_tile * DC3_MR
    cdef Py_ssize_t block_values = pp.td_n * pp.th_n * pp.tw_n * g.C * nr
    cdef unsigned long long present
    cdef const floating** panel_table
    cdef const Py_ssize_t* panel_woff
    cdef const Py_ssize_t* offset
    cdef int activation = _unfused(g)
    cdef Coord cursor = Coord(0, 0, 0, 0)
    cdef floating** outp = <floating**>ws.outp
    cdef floating* scratch = <floating*>ws.scratch
    cdef const floating** table = <const floating**>ws.aptr
    cdef const floating* bias = <const floating*>call.bias
    _unravel(v, pp.nqd, pp.nqh, pp.nqw, g.N, False, &cursor)
    for tile in range(n_tiles):
        n_valid = _column_voxels(call, pp, &cursor, &v, nq, base, origin, inside, whole)
        # the table in tile slot 0, as the general path builds one (no runs, no row kernel)
        _tile_table(call, pp, 0, nq, base, n_valid, False, ws, <const floating*>call.x)
        present = _entry_pairs(ws, g, pp)
        placed = 0
        for m in range(DC3_MR):
            in_place[m] = m < n_valid and whole[m] and g.column_direct
            placed = placed + in_place[m]
        for j in range(g.blocks):
            ncols = min(nr, g.columns - j * nr)
            for m in range(DC3_MR):
                outp[m] = (out + origin[m] + call.column_offset[j * nr] if in_place[m]
                           else scratch + m * nr)
            used = _panel_entries(ws, table, ws.ntaps[0], call.column_needs[j], present,
                                  &panel_table, &panel_woff)
            _call_kernel(call.gemm, used, ws.channels[0],
                         panel_table, <const floating*>call.weights + j * block_values,
                         panel_woff, _block_bias(bias, j, nr), outp, False,
                         _exit_flags(g, placed == DC3_MR), g.C)
            offset = call.column_offset + j * nr
            for m in range(n_valid):
                if in_place[m]:
                    if activation != ACT_LINEAR:
                        _finish_voxel(outp[m], outp[m], nr, True, activation)
                elif whole[m] and activation == ACT_LINEAR:
                    _columns_out(out + origin[m], offset, scratch + m * nr, ncols,
                                 g.column_run)
                else:
                    _scatter_columns(out, origin[m], scratch + m * nr, call, j * nr, ncols,
                                     inside[m], whole[m], activation)
