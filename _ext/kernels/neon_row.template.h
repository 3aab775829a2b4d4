/* One row kernel written with the names generic_gemm.template.h uses (the contract and
 * the table layout are in kernels.h), for a target with 32 vector registers.  Define
 * before including:
 *   NAME          the function's name
 *   NR            filters per panel
 *   COLS          vectors of each voxel's row per pass (COLS * L divides NR)
 *   TAPS          w taps of a (d, h) tap pair: 2 or 3
 *   SPACING       input voxels between consecutive w taps: 1 or 2
 * and T, V, VB, L, VLOAD, VSTORE, VZERO, VSPLAT, VFMA, VRELU.  NAME, NR, COLS, TAPS and
 * SPACING are undefined at the end.
 *
 * All 12 voxels stay in registers, COLS vectors each: with COLS = 2 and 3 taps that is
 * 24 sums, 6 weight vectors and one broadcast, 31 of the 32.  Each input voxel loaded
 * feeds up to TAPS voxels; a wider panel takes several passes over the tile's inputs. */

static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a, const T *w,
                 const ptrdiff_t *woff, const T *bias, T **out, int accumulate, int flags,
                 ptrdiff_t ldx)
{
    /* input voxels a run reads */
    enum { ELEMENTS = DC3_RUN + SPACING * (TAPS - 1) };
    for (int col = 0; col < NR; col += COLS * L) {
        V acc[DC3_MR][COLS];
#pragma GCC unroll 16
        for (int m = 0; m < DC3_MR; m++) {
#pragma GCC unroll 8
            for (int v = 0; v < COLS; v++)
                acc[m][v] = accumulate ? VLOAD(out[m] + col + v * L)
                            : bias ? VLOAD(bias + col + v * L) : VZERO();
        }
        for (ptrdiff_t u = 0; u < ntaps; u++) {
            const T *wc = w + woff[u] + col;
            const T *x[2] = {a[u * DC3_MR], a[u * DC3_MR + DC3_RUN]};
            for (ptrdiff_t c = 0; c < channels; c++, wc += NR) {
                V wv[TAPS][COLS];
#pragma GCC unroll 4
                for (int t = 0; t < TAPS; t++) {
#pragma GCC unroll 8
                    for (int v = 0; v < COLS; v++)
                        wv[t][v] = VLOAD(wc + t * channels * NR + v * L);
                }
#pragma GCC unroll 2
                for (int r = 0; r < 2; r++) {
#pragma GCC unroll 16
                    for (int e = 0; e < ELEMENTS; e++) {
                        VB xe = VSPLAT(x[r][e * ldx + c]);
#pragma GCC unroll 4
                        for (int t = 0; t < TAPS; t++) {
                            const int m = e - SPACING * t;
                            if (m >= 0 && m < DC3_RUN) {
#pragma GCC unroll 8
                                for (int v = 0; v < COLS; v++)
                                    acc[DC3_RUN * r + m][v] =
                                        VFMA(acc[DC3_RUN * r + m][v], xe, wv[t][v]);
                            }
                        }
                    }
                }
            }
        }
#pragma GCC unroll 16
        for (int m = 0; m < DC3_MR; m++) {
#pragma GCC unroll 8
            for (int v = 0; v < COLS; v++)
                VSTORE(out[m] + col + v * L,
                       (flags & DC3_RELU) ? VRELU(acc[m][v]) : acc[m][v]);
        }
    }
}

#undef NAME
#undef NR
#undef COLS
#undef TAPS
#undef SPACING
