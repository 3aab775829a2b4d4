# Tiles: which output voxels a tile holds, which taps reach them, and the indirection
# table that tells a micro-kernel where each (tap, voxel) finds its input channels.
# Coordinates are input-grid points (n, qd, qh, qw) of one phase: output voxel
# o = q*stride + r - crop on each axis, and tap t reads input q + delta[t].
from _types cimport floating
from _kernels cimport DC3_MR, DC3_RUN
from _plan cimport Geometry, PhasePlan, _ceil_div, _inside


cdef struct Coord:
    Py_ssize_t n, d, h, w


cdef inline void _unravel(Py_ssize_t v, Py_ssize_t nd, Py_ssize_t nh, Py_ssize_t nw,
                          Py_ssize_t batch, bint batch_fastest, Coord* c) noexcept nogil:
    """Point v of a (batch, nd, nh, nw) grid walked w fastest (row-major), or with the
    batch index fastest and then w, h, d."""
    if batch_fastest:
        c.n = v % batch
        v = v // batch
    c.w = v % nw
    v = v // nw
    c.h = v % nh
    v = v // nh
    if batch_fastest:
        c.d = v
    else:
        c.d = v % nd
        c.n = v // nd


cdef inline void _advance(Coord* c, Py_ssize_t nd, Py_ssize_t nh, Py_ssize_t nw,
                          Py_ssize_t batch, bint batch_fastest) noexcept nogil:
    """The next point in _unravel's order: count up, carrying (no divisions)."""
    if batch_fastest:
        c.n = c.n + 1
        if c.n < batch:
            return
        c.n = 0
    c.w = c.w + 1
    if c.w < nw:
        return
    c.w = 0
    c.h = c.h + 1
    if c.h < nh:
        return
    c.h = 0
    c.d = c.d + 1
    if c.d < nd or batch_fastest:
        return
    c.d = 0
    c.n = c.n + 1


cdef inline void _set_voxel(Py_ssize_t (*nq)[4], Py_ssize_t m, Py_ssize_t n, Py_ssize_t d,
                            Py_ssize_t h, Py_ssize_t w) noexcept nogil:
    nq[m][0] = n
    nq[m][1] = d
    nq[m][2] = h
    nq[m][3] = w


cdef inline Py_ssize_t _next_voxels(Coord* cursor, Py_ssize_t* v, Py_ssize_t voxels,
                                    const PhasePlan* pp, Py_ssize_t batch,
                                    bint batch_fastest, Py_ssize_t (*nq)[4]) noexcept nogil:
    """The next tile's voxels in plain order (batch or w fastest), from the cursor on.

    IN/OUT cursor, v: the next voxel, as a point and as its index in the phase.
    OUT nq (MR, 4): grid points relative to the phase's first.
    Returns how many there are (fewer than MR past the phase's last voxel).
    """
    cdef Py_ssize_t m
    for m in range(DC3_MR):
        if v[0] >= voxels:
            return m
        _set_voxel(nq, m, cursor.n, cursor.d, cursor.h, cursor.w)
        v[0] = v[0] + 1
        _advance(cursor, pp.nqd, pp.nqh, pp.nqw, batch, batch_fastest)
    return DC3_MR


cdef inline Py_ssize_t _w_line_voxels(Py_ssize_t tile, const PhasePlan* pp,
                                      Py_ssize_t (*nq)[4], bint* is_run,
                                      Py_ssize_t* runs_after) noexcept nogil:
    """The voxels of tile `tile` of a phase in the w_lines order (see _row_split).

    OUT nq (MR, 4): grid points relative to the phase's first; is_run: a tile of runs
    (else a column of border voxels, one per row); runs_after: how many of the next
    tiles are the following runs of the same rows (0 for a column).  Returns how many
    voxels there are (the rest lie past the phase's last row).  A tile's rows are consecutive, so only
    its first row costs divisions.
    """
    cdef Py_ssize_t run = pp.row_run, k = pp.row_k
    cdef Py_ssize_t per_band = run * k + pp.row_r, per_tile = DC3_MR // run
    cdef Py_ssize_t band = tile // per_band, u = tile - band * per_band
    cdef Py_ssize_t band_rows = min(DC3_MR, pp.rows - band * DC3_MR)
    cdef Py_ssize_t groups = _ceil_div(band_rows, per_tile)
    cdef Py_ssize_t first_row, n_rows, w0, per_row, j, i, m = 0, row
    cdef Coord c = Coord(0, 0, 0, 0)       # _unravel sets it; zeroed so compilers can tell
    if u < groups * k:              # run u % k of per_tile consecutive rows
        first_row = band * DC3_MR + (u // k) * per_tile
        n_rows = min(per_tile, band * DC3_MR + band_rows - first_row)
        w0 = pp.row_lo + run * (u % k)
        per_row = run
        is_run[0] = True
        runs_after[0] = k - 1 - u % k
    else:                           # column j of the band's leftovers, one voxel per row
        first_row = band * DC3_MR
        n_rows = band_rows
        j = u - groups * k
        w0 = j if j < pp.row_lo else j + run * k
        per_row = 1
        is_run[0] = False
        runs_after[0] = 0
    _unravel(first_row, pp.nqd, pp.nqh, 1, 1, False, &c)
    for row in range(n_rows):
        for i in range(per_row):
            _set_voxel(nq, m, c.n, c.d, c.h, w0 + i)
            m = m + 1
        _advance(&c, pp.nqd, pp.nqh, 1, 1, False)
    return m


cdef inline void _voxel_addresses(Py_ssize_t (*nq)[4], Py_ssize_t n_valid,
                                  const PhasePlan* pp, const Geometry* g, floating* out,
                                  Py_ssize_t* base, floating** vp) noexcept nogil:
    """Where a tile's voxels read and write.

    IN/OUT nq (MR, 4): points relative to the phase's first, made absolute.
    OUT base (MR,): each voxel's grid point as an offset into the input; vp (MR,): its
    output address (NULL for the MR - n_valid missing voxels).
    """
    cdef Py_ssize_t m
    for m in range(DC3_MR):
        if m >= n_valid:
            vp[m] = NULL
            continue
        nq[m][1] = nq[m][1] + pp.q0d
        nq[m][2] = nq[m][2] + pp.q0h
        nq[m][3] = nq[m][3] + pp.q0w
        if (m > 0 and nq[m][3] == nq[m - 1][3] + 1 and nq[m][2] == nq[m - 1][2]
                and nq[m][1] == nq[m - 1][1] and nq[m][0] == nq[m - 1][0]):
            # the next voxel of a row: no multiplications
            base[m] = base[m - 1] + g.C
            vp[m] = vp[m - 1] + g.sw * g.F
            continue
        base[m] = (((nq[m][0] * g.D + nq[m][1]) * g.H + nq[m][2]) * g.W + nq[m][3]) * g.C
        vp[m] = out + (((nq[m][0] * g.OD + g.sd * nq[m][1] + pp.rd - g.pd) * g.OH
                        + g.sh * nq[m][2] + pp.rh - g.ph) * g.OW
                       + g.sw * nq[m][3] + pp.rw - g.pw) * g.F


# ---------------------------------------------------------------- tap masks
# masks[t]: bit m set when tap t of one axis reaches the input for voxel m.

cdef inline void _axis_masks(unsigned int* masks, Py_ssize_t n_taps, const Py_ssize_t* delta,
                             Py_ssize_t (*nq)[4], Py_ssize_t n_valid, int axis,
                             Py_ssize_t length) noexcept nogil:
    """The masks of one axis, voxel by voxel (any tile)."""
    cdef Py_ssize_t t, m
    cdef unsigned int bits
    for t in range(n_taps):
        bits = 0        # in a register: masks may alias nothing, but the compiler can't tell
        for m in range(n_valid):
            # one unsigned comparison for 0 <= i < length
            bits |= (<size_t>(nq[m][axis] + delta[t]) < <size_t>length) << m
        masks[t] = bits


cdef inline bint _line_masks(unsigned int* md, unsigned int* mh, unsigned int* mw,
                             const PhasePlan* pp, const Py_ssize_t* dd,
                             const Py_ssize_t* dh, const Py_ssize_t* dw,
                             Py_ssize_t (*nq)[4], Py_ssize_t n_valid,
                             const Geometry* g) noexcept nogil:
    """The masks of a full tile lying on one line of the input, cheaply.

    Along such a line only the fastest coordinate changes, by one per voxel, so
    each tap reaches all of the line (both ends) or none of it.  Returns False,
    leaving the masks to `_axis_masks`, when the tile is not such a line or some
    tap reaches only part of it.
    """
    cdef Py_ssize_t t, last = DC3_MR - 1
    cdef unsigned int everyone = (1u << DC3_MR) - 1
    if n_valid != DC3_MR:
        return False
    if g.batch_fastest:
        if nq[0][1] != nq[last][1] or nq[0][2] != nq[last][2] or nq[0][3] != nq[last][3]:
            return False
    elif (nq[0][0] != nq[last][0] or nq[0][1] != nq[last][1] or nq[0][2] != nq[last][2]
          or nq[last][3] - nq[0][3] != last):
        return False
    for t in range(pp.tw_n):
        if _inside(nq[0][3] + dw[t], g.W) and _inside(nq[last][3] + dw[t], g.W):
            mw[t] = everyone
        elif nq[last][3] + dw[t] < 0 or nq[0][3] + dw[t] >= g.W:
            mw[t] = 0
        else:
            return False
    for t in range(pp.td_n):
        md[t] = everyone if _inside(nq[0][1] + dd[t], g.D) else 0
    for t in range(pp.th_n):
        mh[t] = everyone if _inside(nq[0][2] + dh[t], g.H) else 0
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
                               const PhasePlan* pp, const Py_ssize_t* dd,
                               const Py_ssize_t* dh, const Py_ssize_t* dw,
                               Py_ssize_t (*nq)[4], Py_ssize_t n_valid, bint is_run,
                               const Geometry* g) noexcept nogil:
    """The masks of a tile in the w_lines order, a row at a time.

    The tile's voxels come per_row to a row (n, d and h shared), rows in order; a
    run lies inside its row's interior, so every w tap reaches it, and a column's
    voxels share their w.
    """
    cdef Py_ssize_t t, per_row = pp.row_run if is_run else 1
    cdef unsigned int valid = (1u << n_valid) - 1
    for t in range(pp.td_n):
        md[t] = _rows_reaching(nq, n_valid, per_row, 1, dd[t], g.D)
    for t in range(pp.th_n):
        mh[t] = _rows_reaching(nq, n_valid, per_row, 2, dh[t], g.H)
    for t in range(pp.tw_n):
        mw[t] = valid if is_run or (n_valid > 0 and _inside(nq[0][3] + dw[t], g.W)) else 0


cdef inline void _tile_masks(unsigned int* md, unsigned int* mh, unsigned int* mw,
                             const PhasePlan* pp, const Py_ssize_t* dd, const Py_ssize_t* dh,
                             const Py_ssize_t* dw, Py_ssize_t (*nq)[4], Py_ssize_t n_valid,
                             bint is_run, const Geometry* g) noexcept nogil:
    """Every tap's mask per axis, by the cheapest method the tile's order allows."""
    if g.w_lines:
        _w_line_masks(md, mh, mw, pp, dd, dh, dw, nq, n_valid, is_run, g)
    elif not _line_masks(md, mh, mw, pp, dd, dh, dw, nq, n_valid, g):
        _axis_masks(md, pp.td_n, dd, nq, n_valid, 1, g.D)
        _axis_masks(mh, pp.th_n, dh, nq, n_valid, 2, g.H)
        _axis_masks(mw, pp.tw_n, dw, nq, n_valid, 3, g.W)


cdef inline bint _merged_w_taps(const unsigned int* mw, const PhasePlan* pp,
                                unsigned int valid, Py_ssize_t* w_first,
                                Py_ssize_t* w_last) noexcept nogil:
    """Whether the tile's w taps merge into one: consecutive taps over consecutive
    input voxels that each reach every voxel of the tile (the others reaching none)
    are one tap over their channels laid end to end, as are their weight panels.
    OUT w_first, w_last: the taps merged."""
    cdef Py_ssize_t aw
    cdef unsigned int mask
    cdef bint merged = True
    w_first[0] = 0
    w_last[0] = 0
    if not pp.w_consecutive or pp.tw_n <= 1:
        return False
    w_first[0] = -1
    for aw in range(pp.tw_n):
        mask = mw[aw] & valid
        if mask == valid:
            if w_first[0] < 0:
                w_first[0] = aw
            merged = merged and (w_first[0] == aw or w_last[0] == aw - 1)
            w_last[0] = aw
        elif mask != 0:
            merged = False
    return merged and w_first[0] >= 0


cdef inline bint _is_row_tile(const unsigned int* mw, const PhasePlan* pp, unsigned int valid,
                              bint is_run) noexcept nogil:
    """A tile of two runs of DC3_RUN whose every w tap reaches every voxel: it goes to
    the phase's row kernel, with one table entry per (d, h) tap pair, at w tap 0."""
    cdef Py_ssize_t aw
    if not is_run or pp.row_kernel == NULL or pp.row_run != DC3_RUN:
        return False
    for aw in range(pp.tw_n):
        if (mw[aw] & valid) != valid:
            return False
    return True


cdef inline Py_ssize_t _fill_table(const floating* x, const floating* zeros,
                                   const Py_ssize_t* base, const unsigned int* md,
                                   const unsigned int* mh, const unsigned int* mw,
                                   const PhasePlan* pp, const Py_ssize_t* dd,
                                   const Py_ssize_t* dh, const Py_ssize_t* dw,
                                   const Geometry* g, bint merged, Py_ssize_t w_first,
                                   bint row_tile, const floating** ptrs,
                                   Py_ssize_t* woff) noexcept nogil:
    """The tile's indirection table: for every tap that reaches some voxel, each
    voxel's input channels, or the zero row where the tap misses that voxel.

    OUT ptrs (entries, MR): the table; woff (entries,): each entry's weight panel,
    relative to the phase's.  Returns the number of entries.  Merged w taps take one
    entry (at the first of them); a row tile's entries hold each run's first voxel
    only (what the row kernels read).
    """
    cdef Py_ssize_t ad, ah, aw, m, count = 0, tap_offset, C = g.C
    cdef unsigned int mask_dh, mask
    cdef const floating** entry
    for ad in range(pp.td_n):
        if md[ad] == 0:
            continue
        for ah in range(pp.th_n):
            mask_dh = md[ad] & mh[ah]
            if mask_dh == 0:
                continue
            for aw in range(pp.tw_n):
                mask = mask_dh & mw[aw]
                if mask == 0 or (merged and aw != w_first):
                    continue
                woff[count] = ((ad * pp.th_n + ah) * pp.tw_n + aw) * C * g.nr
                tap_offset = ((dd[ad] * g.H + dh[ah]) * g.W + dw[aw]) * C
                entry = ptrs + count * DC3_MR
                if row_tile:
                    for m in range(2):
                        entry[m * DC3_RUN] = (x + base[m * DC3_RUN] + tap_offset
                                              if (mask >> (m * DC3_RUN)) & 1 else zeros)
                else:
                    for m in range(DC3_MR):
                        entry[m] = x + base[m] + tap_offset if (mask >> m) & 1 else zeros
                count = count + 1
    return count
