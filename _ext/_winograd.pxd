# Executing a plan on the Winograd path (stride 1, no dilation, 3^3 or 5^3 kernels;
# kernels/winograd.h has the algorithm).  The output is cut into tiles of 2x2x2 voxels;
# a thread takes a batch of tiles at a time and, with buffers that stay in L2:
#   _wg_inputs:   each tile's P^3 input points -> N^3 transformed rows of C values
#   _wg_products: per transform xi, (tiles x C) @ (C x F) with the gemm kernels, against
#                 the weights' transform xi (PackedKernel.winograd_weights)
#   _wg_outputs:  each tile's N^3 products -> its outputs (bias, activation)
# Tiles own their output voxels, so no two threads write the same one; every output's
# sum runs in the same order whatever the thread count.
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free
from libc.stddef cimport ptrdiff_t
from _types cimport floating
from _kernels cimport dc3_kernel, dc3_winograd_kernel, dc3_prefetch, DC3_MR, DC3_WG_OUTPUTS
from _activations cimport ACT_LINEAR, ACT_RELU, _activate
from _plan cimport Geometry, _ceil_div


cdef struct WinogradCall:
    # What one call on the Winograd path reads and writes.
    const void* x               # the input, channels-last
    void* out                   # the output, channels-last
    const void* weights         # per transform xi, per filter block, (C x nr) panels
    const void* bias            # (blocks * nr,) or NULL
    const void* zeros           # C zeros: what points outside the input read
    const Geometry* g
    const dc3_kernel* gemm
    const dc3_winograd_kernel* transforms
    Py_ssize_t taps             # r: 3 or 5
    Py_ssize_t tiles_d, tiles_h, tiles_w   # tiles along each axis of one image
    # tiles start at positions of the uncropped output (output + crop) of one parity, fixed
    # by the kernel, so that a window of the output (a larger crop) gets the same tiles,
    # bit for bit: the first tile starts `lead` (0 or 1) before output 0 on each axis
    Py_ssize_t lead_d, lead_h, lead_w
    Py_ssize_t batch            # tiles per batch, a multiple of DC3_MR
    Py_ssize_t nr, blocks       # the weights' panels: filters per panel, panels
    # values between two tiles' transformed inputs, and between their products: N^3 rows
    # and one cache line more, so that the rows a gemm kernel reads and writes for 12
    # tiles do not all fall in one set of the L1 cache (N^3 * C is often 2 or 4 KiB)
    Py_ssize_t tile_values, tile_products


cdef inline Py_ssize_t _wg_tile_start(const WinogradCall* wc, Py_ssize_t tile,
                                      Py_ssize_t* start) noexcept nogil:
    """The tile's image (returned) and its first output along d, h, w (start; those
    before output 0 or past the end are cropped away)."""
    start[2] = (tile % wc.tiles_w) * DC3_WG_OUTPUTS - wc.lead_w
    start[1] = ((tile // wc.tiles_w) % wc.tiles_h) * DC3_WG_OUTPUTS - wc.lead_h
    start[0] = ((tile // (wc.tiles_w * wc.tiles_h)) % wc.tiles_d) * DC3_WG_OUTPUTS - wc.lead_d
    return tile // (wc.tiles_w * wc.tiles_h * wc.tiles_d)


cdef inline void _wg_points(const WinogradCall* wc, Py_ssize_t tile,
                            const floating** points) noexcept nogil:
    """points[(a * P + b) * P + e]: where the channels of the tile's input point (a, b, e)
    are, or the zero row where it falls outside the input."""
    cdef const Geometry* g = wc.g
    cdef const floating* x = <const floating*>wc.x
    cdef Py_ssize_t P = wc.transforms.points, back = wc.taps - 1, n, a, b, e, d, h, w
    cdef Py_ssize_t start[3]
    n = _wg_tile_start(wc, tile, start)
    # output o reads input o + crop - t through tap t: the tile's first input point is
    # its first output + crop - (taps - 1)
    for a in range(P):
        d = start[0] + g.pd - back + a
        for b in range(P):
            h = start[1] + g.ph - back + b
            for e in range(P):
                w = start[2] + g.pw - back + e
                if 0 <= d < g.D and 0 <= h < g.H and 0 <= w < g.W:
                    points[(a * P + b) * P + e] = x + (((n * g.D + d) * g.H + h) * g.W
                                                       + w) * g.C
                else:
                    points[(a * P + b) * P + e] = <const floating*>wc.zeros


cdef inline void _wg_inputs(const WinogradCall* wc, Py_ssize_t first, Py_ssize_t count,
                            const floating** points, floating* values) noexcept nogil:
    """Tiles first .. first + count - 1 to their transformed inputs: transform xi of the
    batch's tile s at values[s * tile_values + xi * C] (a tile's values together: the
    stores stream through one run of memory).  points: room for two tiles' points; the
    next tile's input is asked for while this one's is transformed (its loads would
    otherwise wait on memory: half the time of the transform)."""
    cdef const Geometry* g = wc.g
    cdef Py_ssize_t P3 = wc.transforms.points ** 3, s, i, line
    cdef Py_ssize_t lines = (g.C * sizeof(floating) + 63) // 64
    cdef const floating** here = points
    cdef const floating** ahead = points + P3
    cdef const floating** swap
    _wg_points(wc, first, here)
    for s in range(count):
        if s + 1 < count:
            _wg_points(wc, first + s + 1, ahead)
            for i in range(P3):
                for line in range(lines):
                    dc3_prefetch(<const char*>ahead[i] + 64 * line)
        if floating is float:
            wc.transforms.in_f32(here, g.C, values + s * wc.tile_values, g.C)
        else:
            wc.transforms.in_f64(here, g.C, values + s * wc.tile_values, g.C)
        swap = here
        here = ahead
        ahead = swap


cdef inline void _wg_products(const WinogradCall* wc, Py_ssize_t count,
                              const floating* values, floating* products,
                              const floating** rows, floating** sums) noexcept nogil:
    """Per transform xi: products[s * tile_products + xi * blocks * nr + f] = sum over c
    of values[s * tile_values + xi * C + c] * weights[xi][c][f], for the batch's first `count`
    tiles (rounded up to whole gemm tiles: the rest of the buffers is scratch)."""
    cdef const Geometry* g = wc.g
    cdef Py_ssize_t N = wc.transforms.transforms
    cdef Py_ssize_t N3 = N * N * N, xi, group, m, block, s
    cdef Py_ssize_t width = wc.blocks * wc.nr, panel = g.C * wc.nr
    cdef ptrdiff_t no_offset = 0
    cdef const floating* weights = <const floating*>wc.weights
    for xi in range(N3):
        for group in range(_ceil_div(count, DC3_MR)):
            for m in range(DC3_MR):
                s = group * DC3_MR + m
                rows[m] = values + s * wc.tile_values + xi * g.C
            for block in range(wc.blocks):
                for m in range(DC3_MR):
                    s = group * DC3_MR + m
                    sums[m] = products + s * wc.tile_products + xi * width + block * wc.nr
                if floating is float:
                    wc.gemm.f32(1, g.C, rows, weights + (xi * wc.blocks + block) * panel,
                                &no_offset, NULL, sums, 0, 0, 0)
                else:
                    wc.gemm.f64(1, g.C, rows, weights + (xi * wc.blocks + block) * panel,
                                &no_offset, NULL, sums, 0, 0, 0)


cdef inline void _wg_outputs(const WinogradCall* wc, Py_ssize_t first, Py_ssize_t count,
                             const floating* products, floating** voxels,
                             floating* out) noexcept nogil:
    """Tiles first .. first + count - 1 from their products to the output."""
    cdef const Geometry* g = wc.g
    cdef Py_ssize_t width = wc.blocks * wc.nr, s, n, a, b, e, d, h, w, f, v
    cdef Py_ssize_t start[3]
    cdef int activation = g.activation
    cdef floating* o
    for s in range(count):
        n = _wg_tile_start(wc, first + s, start)
        for a in range(DC3_WG_OUTPUTS):
            d = start[0] + a
            for b in range(DC3_WG_OUTPUTS):
                h = start[1] + b
                for e in range(DC3_WG_OUTPUTS):
                    w = start[2] + e
                    v = (a * DC3_WG_OUTPUTS + b) * DC3_WG_OUTPUTS + e
                    voxels[v] = NULL
                    if 0 <= d < g.OD and 0 <= h < g.OH and 0 <= w < g.OW:
                        voxels[v] = out + (((n * g.OD + d) * g.OH + h) * g.OW + w) * g.F
        if floating is float:
            wc.transforms.out_f32(products + s * wc.tile_products, width, g.F,
                                  <const float*>wc.bias, voxels, activation == ACT_RELU)
        else:
            wc.transforms.out_f64(products + s * wc.tile_products, width, g.F,
                                  <const double*>wc.bias, voxels, activation == ACT_RELU)
        if activation != ACT_LINEAR and activation != ACT_RELU:
            for v in range(8):
                o = voxels[v]
                if o != NULL:
                    for f in range(g.F):
                        o[f] = <floating>_activate(o[f], activation)


cdef inline bint _wg_run(const WinogradCall* wc, int threads, floating* out) noexcept nogil:
    """The whole layer on the Winograd path; False when a buffer could not be allocated."""
    cdef const Geometry* g = wc.g
    cdef Py_ssize_t P = wc.transforms.points
    cdef Py_ssize_t tiles = g.N * wc.tiles_d * wc.tiles_h * wc.tiles_w
    cdef Py_ssize_t batches = _ceil_div(tiles, wc.batch), batch, first, count
    cdef floating* values
    cdef floating* products
    cdef const floating** points
    cdef floating** sums
    cdef Py_ssize_t failed = 0
    with parallel(num_threads=threads):
        # zeroed: the gemm tiles past a batch's last tile read them
        values = <floating*>calloc(wc.batch * wc.tile_values, sizeof(floating))
        products = <floating*>malloc(wc.batch * wc.tile_products * sizeof(floating))
        points = <const floating**>malloc((2 * P * P * P + DC3_MR) * sizeof(void*))
        sums = <floating**>malloc((DC3_MR + 8) * sizeof(void*))
        for batch in prange(batches, schedule="dynamic"):
            if values != NULL and products != NULL and points != NULL and sums != NULL:
                first = batch * wc.batch
                count = min(wc.batch, tiles - first)
                _wg_inputs(wc, first, count, points, values)
                _wg_products(wc, count, values, products, points + 2 * P * P * P, sums)
                _wg_outputs(wc, first, count, products, sums + DC3_MR, out)
            else:
                failed += 1
        free(values)
        free(products)
        free(<void*>points)
        free(sums)
    return failed == 0
