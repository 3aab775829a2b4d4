# Executing a plan on the lanes path (layers with 1-4 filters and overlapping taps):
# input-grid points across the vector lanes instead of filters (kernels/lanes.h).
#   _lanes_run: per output plane (n, od), each thread taking one run of consecutive
#   planes: the input planes the plane's d taps read, copied channel-major to the
#   thread's ring of planes unless there already (_lanes_ensure, _lanes_transpose); then
#   per group of DC3_LANE_ROWS rows of one h phase and block of lanes: per w phase,
#   _lanes_rows (each tap's scratch row) -> kernel; then _lanes_out (bias, activation,
#   every w phase's outputs in output order).  The ring holds a few input planes, so
#   the copy stays in the cache between its writing and its reading.
# Every multiply-add is one a tap of the layer makes (a panel of filters would pad 1-4
# filters to 8 or 16 columns).  Threads own whole output planes, so no two write the
# same voxel, and each output's sum runs in the same order whatever the thread count.
from cython.parallel cimport prange, parallel, threadid
from libc.stdlib cimport malloc, free
from libc.stddef cimport ptrdiff_t
from _types cimport floating
from _kernels cimport (dc3_lanes_kernel, dc3_lanes_pack_f32, dc3_lanes_pack_f64,
                       DC3_LANE_ROWS, DC3_LANE_MAX_FILTERS)
from _activations cimport ACT_LINEAR, ACT_RELU, _activate
from _plan cimport Geometry, PhasePlan, _floor_div, _ceil_div


cdef struct LanesCall:
    # What one call on the lanes path reads and writes, and how its scratch is laid out.
    const void* x               # the input, channels-last
    void* out                   # the output, channels-last
    const void* weights         # PackedKernel.lanes_weights: per phase, (taps, C, F)
    const Py_ssize_t* weight_offset  # where each phase's weights start
    const void* bias            # (F,) or NULL
    const Py_ssize_t* axis_delta    # PackedKernel.axis_delta, flat
    const Geometry* g
    const PhasePlan* phases
    const dc3_lanes_kernel* kernel
    void* scratch               # one row of zeros (C x row values: what taps outside the
                                # input read), then per thread a ring of `ring` input
                                # planes, each (H rows, C, row) values, channel-major;
                                # zero wherever no input value goes (the caller's part)
    Py_ssize_t pad, row         # a row's first input point sits `pad` values in; `row`
                                # values per channel
    Py_ssize_t ring             # planes per ring: input plane d sits in slot d % ring
    Py_ssize_t max_taps         # most taps a phase has (the per-thread table)


cdef inline void _lanes_transpose(const LanesCall* lc, Py_ssize_t n, Py_ssize_t d,
                                  floating* ring) noexcept nogil:
    """Input plane (n, d) to its slot of the ring, channel-major, row by row (the zeros
    before and after each row's W points are already there)."""
    cdef const Geometry* g = lc.g
    cdef const floating* src = <const floating*>lc.x + (n * g.D + d) * g.H * g.W * g.C
    cdef floating* dst = ring + (d % lc.ring) * g.H * g.C * lc.row + lc.pad
    cdef Py_ssize_t h
    for h in range(g.H):
        if floating is float:
            dc3_lanes_pack_f32(src + h * g.W * g.C, g.C, g.W, dst + h * g.C * lc.row, lc.row)
        else:
            dc3_lanes_pack_f64(src + h * g.W * g.C, g.C, g.W, dst + h * g.C * lc.row, lc.row)


cdef inline void _lanes_ensure(const LanesCall* lc, const PhasePlan* pp, Py_ssize_t n,
                               Py_ssize_t qd, floating* ring, Py_ssize_t* held) noexcept nogil:
    """The input planes the d taps of phase pp read for grid point qd, in the ring
    (held[slot]: the plane n * D + d a slot holds, or -1)."""
    cdef const Geometry* g = lc.g
    cdef const Py_ssize_t* dd = lc.axis_delta + pp.dd
    cdef Py_ssize_t jd, d
    for jd in range(pp.td_n):
        d = qd + dd[jd]
        if 0 <= d < g.D and held[d % lc.ring] != n * g.D + d:
            _lanes_transpose(lc, n, d, ring)
            held[d % lc.ring] = n * g.D + d


cdef inline Py_ssize_t _lanes_rows(const LanesCall* lc, const PhasePlan* pp, Py_ssize_t n,
                                   Py_ssize_t qd, Py_ssize_t qh, Py_ssize_t rows,
                                   Py_ssize_t qw, const floating* ring,
                                   const floating** table, Py_ssize_t* first_tap) noexcept nogil:
    """The table of one kernel call: per tap of the phase (those of its d taps that reach
    the input) and row r < DC3_LANE_ROWS (grid point qh + r), the scratch row it reads
    at the input point of lane 0 (grid point qw); rows past `rows` and taps outside the
    input read the zero row.  Returns the tap count; first_tap: the first tap's index in
    the phase's weights."""
    cdef const Geometry* g = lc.g
    cdef const Py_ssize_t* dd = lc.axis_delta + pp.dd
    cdef const Py_ssize_t* dh = lc.axis_delta + pp.dh
    cdef const Py_ssize_t* dw = lc.axis_delta + pp.dw
    cdef const floating* zero_row = <const floating*>lc.scratch
    cdef Py_ssize_t jd, jh, jw, r, d, h, u = 0, jd0 = -1
    cdef Py_ssize_t at = lc.pad + qw
    for jd in range(pp.td_n):
        d = qd + dd[jd]
        if d < 0 or d >= g.D:
            continue        # d taps are sorted by offset: the kept ones are consecutive
        if jd0 < 0:
            jd0 = jd
        for jh in range(pp.th_n):
            for jw in range(pp.tw_n):
                for r in range(DC3_LANE_ROWS):
                    h = qh + r + dh[jh]
                    if r < rows and 0 <= h < g.H:
                        table[u * DC3_LANE_ROWS + r] = (
                            ring + ((d % lc.ring) * g.H + h) * g.C * lc.row + at + dw[jw])
                    else:
                        table[u * DC3_LANE_ROWS + r] = zero_row + at + dw[jw]
                u = u + 1
    first_tap[0] = jd0 * pp.th_n * pp.tw_n if jd0 >= 0 else 0
    return u


cdef inline Py_ssize_t _slot(const Geometry* g, Py_ssize_t rw) noexcept nogil:
    """Where w phase rw's output lies in each group of sw consecutive outputs (groups
    start at output 0 of the window): output j * sw + slot is phase rw's grid point
    j + _lead(g, rw)."""
    return ((rw - g.pw) % g.sw + g.sw) % g.sw


cdef inline Py_ssize_t _lead(const Geometry* g, Py_ssize_t rw) noexcept nogil:
    return (_slot(g, rw) + g.pw - rw) // g.sw


cdef inline void _lanes_out(const LanesCall* lc, const PhasePlan* first_phase,
                            Py_ssize_t n, Py_ssize_t od, Py_ssize_t qh, Py_ssize_t rows,
                            Py_ssize_t group, Py_ssize_t lanes, const floating* sums,
                            floating* out) noexcept nogil:
    """The sums of every w phase of one (rd, rh) for one block of lanes (rows x F x
    lanes per phase, in slot order) to their outputs: lane j of row r and slot k is
    output (od, (qh + r) * sh + rh - ph, (group + j) * sw + k), its F values side by
    side (first_phase: the phase (rd, rh, 0)).  The lanes whose every phase has its
    point go through the kernel's vectorized step; the others (the ends of a row), and
    activations other than relu, one value at a time."""
    cdef const Geometry* g = lc.g
    cdef const floating* bias = <const floating*>lc.bias
    cdef const PhasePlan* pp
    cdef Py_ssize_t r, f, j, rw, oh, q, k, F = g.F, per_phase = DC3_LANE_ROWS * F * lanes
    cdef Py_ssize_t j0 = 0, j1 = lanes, lead
    cdef floating* line
    cdef floating* dst
    cdef const floating* src
    cdef floating b
    cdef int activation = g.activation
    for rw in range(g.sw):
        pp = first_phase + rw
        lead = _lead(g, rw)
        j0 = max(j0, pp.q0w - lead - group)
        j1 = min(j1, pp.q0w + pp.nqw - lead - group)
    if not (activation == ACT_LINEAR or activation == ACT_RELU) or j1 <= j0:
        j0 = j1 = 0
    for r in range(rows):
        oh = (qh + r) * g.sh + first_phase.rh - g.ph
        line = out + ((n * g.OD + od) * g.OH + oh) * g.OW * F
        if j1 > j0:
            if floating is float:
                lc.kernel.out_f32(line + group * g.sw * F, sums + r * F * lanes,
                                  per_phase, lanes, j0, j1, g.sw, F, bias,
                                  activation == ACT_RELU)
            else:
                lc.kernel.out_f64(line + group * g.sw * F, sums + r * F * lanes,
                                  per_phase, lanes, j0, j1, g.sw, F, bias,
                                  activation == ACT_RELU)
        for j in range(lanes):
            if j0 <= j < j1:
                continue
            for rw in range(g.sw):
                pp = first_phase + rw
                q = group + j + _lead(g, rw)
                if q < pp.q0w or q >= pp.q0w + pp.nqw:
                    continue
                k = _slot(g, rw)
                dst = line + ((group + j) * g.sw + k) * F
                src = sums + k * per_phase + r * F * lanes + j
                for f in range(F):
                    b = bias[f] if bias != NULL else 0
                    dst[f] = (src[f * lanes] + b if activation == ACT_LINEAR
                              else <floating>_activate(src[f * lanes] + b, activation))


cdef inline void _lanes_plane(const LanesCall* lc, Py_ssize_t plane, const floating** table,
                              floating* sums, floating* ring, Py_ssize_t* held,
                              floating* out) noexcept nogil:
    """Output plane (n, od): its input planes into the ring, then DC3_LANE_ROWS rows of
    one h phase and one block of lanes (groups of sw outputs) at a time, every w phase
    of them, then out in output order."""
    cdef const Geometry* g = lc.g
    cdef const PhasePlan* first
    cdef const PhasePlan* pp
    cdef Py_ssize_t n = plane // g.OD, od = plane % g.OD
    cdef Py_ssize_t rd = (od + g.pd) % g.sd, qd = _floor_div(od + g.pd, g.sd)
    cdef Py_ssize_t rh, rw, q, qw, group, row_group, block, ntaps, first_tap, rows
    cdef Py_ssize_t lanes = lc.kernel.lanes, per_phase = DC3_LANE_ROWS * g.F * lanes
    cdef floating* phase_sums
    # the d taps are those of the d phase, whatever the h and w phases
    _lanes_ensure(lc, lc.phases + rd * g.sh * g.sw, n, qd, ring, held)
    for rh in range(g.sh):
        first = lc.phases + (rd * g.sh + rh) * g.sw
        if first.nqh <= 0:
            continue
        for row_group in range(_ceil_div(first.nqh, DC3_LANE_ROWS)):
            q = first.q0h + row_group * DC3_LANE_ROWS
            rows = min(<Py_ssize_t>DC3_LANE_ROWS, first.q0h + first.nqh - q)
            for block in range(_ceil_div(_ceil_div(g.OW, g.sw), lanes)):
                group = block * lanes
                for rw in range(g.sw):
                    pp = first + rw
                    qw = group + _lead(g, rw)
                    if pp.nqw <= 0 or qw >= pp.q0w + pp.nqw or qw + lanes <= pp.q0w:
                        continue
                    ntaps = _lanes_rows(lc, pp, n, qd, q, rows, qw, ring, table,
                                        &first_tap)
                    phase_sums = sums + _slot(g, rw) * per_phase
                    if floating is float:
                        lc.kernel.f32(ntaps, g.C, g.F, table, lc.row,
                                      <const float*>lc.weights + lc.weight_offset[pp - lc.phases]
                                      + first_tap * g.C * g.F, phase_sums)
                    else:
                        lc.kernel.f64(ntaps, g.C, g.F, table, lc.row,
                                      <const double*>lc.weights + lc.weight_offset[pp - lc.phases]
                                      + first_tap * g.C * g.F, phase_sums)
                _lanes_out(lc, first, n, od, q, rows, group, lanes, sums, out)


cdef inline bint _lanes_run(const LanesCall* lc, int threads, floating* out) noexcept nogil:
    """The whole layer on the lanes path; False when a buffer could not be allocated."""
    cdef const Geometry* g = lc.g
    cdef Py_ssize_t plane, planes = g.N * g.OD, slot
    cdef Py_ssize_t plane_values = g.H * g.C * lc.row
    cdef const floating** table
    cdef floating* sums
    cdef floating* ring
    cdef Py_ssize_t* held
    cdef Py_ssize_t failed = 0
    with parallel(num_threads=threads):
        # this thread's ring (threads take one run of consecutive planes each: static)
        ring = (<floating*>lc.scratch + g.C * lc.row
                + threadid() * lc.ring * plane_values)
        held = <Py_ssize_t*>malloc(lc.ring * sizeof(Py_ssize_t))
        table = <const floating**>malloc(max(lc.max_taps, 1) * DC3_LANE_ROWS * sizeof(void*))
        sums = <floating*>malloc(g.sw * DC3_LANE_ROWS * DC3_LANE_MAX_FILTERS
                                 * lc.kernel.lanes * sizeof(floating))
        if held != NULL:
            for slot in range(lc.ring):
                held[slot] = -1
        for plane in prange(planes, schedule="static"):
            if table != NULL and sums != NULL and held != NULL:
                _lanes_plane(lc, plane, table, sums, ring, held, out)
            else:
                failed += 1
        free(held)
        free(table)
        free(sums)
    return failed == 0
