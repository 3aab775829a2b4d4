/* One gemm kernel written with the names below rather than an ISA's intrinsics (the
 * contract is in kernels.h): the portable kernels (generic.h) and the NEON ones
 * (neon.h) are both made from it.  Define before including:
 *   NAME          the function's name
 *   NR            filters per panel
 *   ROWS          voxels whose sums stay in registers together (divides DC3_MR)
 *   COLS          vectors of those voxels' rows per pass (COLS * L divides NR)
 * and, for the target and dtype: T (element type), V (its vector type), L (lanes),
 * VLOAD(p), VSTORE(p, v), VZERO(), VSPLAT(x) (of type VB: a vector, or a scalar that
 * VFMA broadcasts), VFMA(acc, x, w) = acc + x * w and VRELU(v).  NAME, NR, ROWS and COLS are undefined at the end; the others stay.
 *
 * A tile runs in passes of ROWS voxels x COLS vectors: ROWS * COLS sums, COLS weight
 * vectors and a broadcast must fit the register file, so a wide panel takes several
 * passes (each rereads the tile's inputs, from cache) instead of spilling its sums.
 * Streaming is only a hint: these store normally. */

static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a, const T *w,
                 const ptrdiff_t *woff, const T *bias, T **out, int accumulate, int flags,
                 ptrdiff_t ldx)
{
    (void)ldx;      /* every voxel's input comes through the table */
    for (int first = 0; first < DC3_MR; first += ROWS) {
        for (int col = 0; col < NR; col += COLS * L) {
            V acc[ROWS][COLS];
#pragma GCC unroll 16
            for (int m = 0; m < ROWS; m++) {
#pragma GCC unroll 8
                for (int v = 0; v < COLS; v++)
                    acc[m][v] = accumulate ? VLOAD(out[first + m] + col + v * L)
                                : bias ? VLOAD(bias + col + v * L) : VZERO();
            }
            for (ptrdiff_t u = 0; u < ntaps; u++) {
                const T *wc = w + woff[u] + col;
                const T *ap[ROWS];
#pragma GCC unroll 16
                for (int m = 0; m < ROWS; m++)
                    ap[m] = a[u * DC3_MR + first + m];
                for (ptrdiff_t c = 0; c < channels; c++, wc += NR) {
                    V wv[COLS];
#pragma GCC unroll 8
                    for (int v = 0; v < COLS; v++)
                        wv[v] = VLOAD(wc + v * L);
#pragma GCC unroll 16
                    for (int m = 0; m < ROWS; m++) {
                        VB x = VSPLAT(ap[m][c]);
#pragma GCC unroll 8
                        for (int v = 0; v < COLS; v++)
                            acc[m][v] = VFMA(acc[m][v], x, wv[v]);
                    }
                }
            }
#pragma GCC unroll 16
            for (int m = 0; m < ROWS; m++) {
#pragma GCC unroll 8
                for (int v = 0; v < COLS; v++)
                    VSTORE(out[first + m] + col + v * L,
                           (flags & DC3_RELU) ? VRELU(acc[m][v]) : acc[m][v]);
            }
        }
    }
}

#undef NAME
#undef NR
#undef ROWS
#undef COLS
