/* One vector row kernel (the contract and the table layout are in kernels.h).  Define
 * before including:
 *   NAME          the function's name
 *   NV            vectors per voxel row of the tile: NR = NV * L
 *   TAPS          w taps of a (d, h) tap pair: 2 or 3
 *   SPACING       input voxels between consecutive w taps: 1 or 2
 * and, for the ISA and dtype, what gemm.template.h needs plus PREFETCH(address),
 * ROW_FMADD and ROW_FMADD_FROM (x86_ops.h) and optionally ROW_WEIGHT_REGS_TAPS.  NAME
 * and SPACING are undefined at the end; the others stay (x86_row_kernels.h sets NV and
 * TAPS once for a family of kernels).
 *
 * All MR voxels stay in registers: with AVX-512, NV = 2 and 3 taps that is 24
 * accumulators, 6 weight vectors and one broadcast, 31 of the 32 zmm; with AVX2 and
 * NV = 1, 12 accumulators, a broadcast and the weights of 2 taps (KEPT_TAPS), while a
 * third tap's multiply-adds read their weights from L1.  The tile's start and end are
 * tile_start.template.h and tile_end.template.h, as in gemm.template.h. */

__attribute__((target(TARGET)))
static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a, const T *w,
                 const ptrdiff_t *woff, const T *bias, T **out, int accumulate, int flags,
                 ptrdiff_t ldx)
{
    /* input voxels a run reads, and every third of them (see q below) */
    enum { ELEMENTS = DC3_RUN + SPACING * (TAPS - 1), BASES = (ELEMENTS + 2) / 3 };
    /* taps whose weights stay in registers; the others' come from memory */
#ifdef ROW_WEIGHT_REGS_TAPS
    enum { KEPT_TAPS = TAPS < ROW_WEIGHT_REGS_TAPS ? TAPS : ROW_WEIGHT_REGS_TAPS };
#else
    enum { KEPT_TAPS = TAPS };
#endif
    V acc[DC3_MR][NV];
#define TILE_ROWS DC3_MR
#define TILE_OUT out
#include "tile_start.template.h"
    for (ptrdiff_t u = 0; u < ntaps; u++) {
        const T *wc = w + woff[u];
        /* every third input voxel of a row: the others are one or two ldx on, which
         * x86 addressing adds for free */
        const T *q[2][BASES];
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++) {
#pragma GCC unroll 8
            for (int i = 0; i < BASES; i++)
                q[r][i] = a[u * DC3_MR + DC3_RUN * r] + 3 * i * ldx;
        }
        if (u + 1 < ntaps) {
            /* the next pair's two input rows, while this one computes */
            const char *n0 = (const char *)a[(u + 1) * DC3_MR];
            const char *n1 = (const char *)a[(u + 1) * DC3_MR + DC3_RUN];
            ptrdiff_t bytes = ((ELEMENTS - 1) * ldx + channels) * (ptrdiff_t)sizeof(T);
            for (ptrdiff_t k = 0; k < bytes; k += 64) {
                PREFETCH(n0 + k);
                PREFETCH(n1 + k);
            }
        }
#pragma GCC unroll 2
        for (ptrdiff_t c = 0; c < channels; c++, wc += NV * L) {
            V wv[TAPS][NV];
#pragma GCC unroll 4
            for (int t = 0; t < KEPT_TAPS; t++) {
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    wv[t][v] = LOADU(wc + t * channels * NV * L + v * L);
            }
#pragma GCC unroll 2
            for (int r = 0; r < 2; r++) {
#pragma GCC unroll 16
                for (int e = 0; e < ELEMENTS; e++) {
                    V x = SET1(q[r][e / 3][(e % 3) * ldx]);
#pragma GCC unroll 4
                    for (int t = 0; t < TAPS; t++) {
                        const int m = e - SPACING * t;
                        if (m >= 0 && m < DC3_RUN) {
#pragma GCC unroll 4
                            for (int v = 0; v < NV; v++) {
                                V *s = &acc[DC3_RUN * r + m][v];
                                if (t < KEPT_TAPS)
                                    *s = ROW_FMADD(x, wv[t][v], *s);
                                else
                                    *s = ROW_FMADD_FROM(x, wc + t * channels * NV * L + v * L, *s);
                            }
                        }
                    }
                }
#pragma GCC unroll 8
                for (int i = 0; i < BASES; i++)
                    q[r][i]++;
            }
        }
    }
#include "tile_end.template.h"
}

#undef NAME
#undef SPACING
#undef TILE_ROWS
#undef TILE_OUT

