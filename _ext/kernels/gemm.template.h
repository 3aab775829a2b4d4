/* One vector gemm kernel (the contract is in kernels.h).  Define before including:
 *   NAME          the function's name
 *   NV            vectors per voxel row of the tile: NR = NV * L
 *   ROWS          voxels whose sums stay in registers together; the MR voxels of a
 *                 tile run in MR / ROWS passes
 * and, for the ISA and dtype: TARGET (the target attribute), T (element type), V (its
 * vector type), L (lanes per vector), LOADU, STOREU, SETZERO, SET1, FMADD, RELU(v, zero)
 * and STREAM.  NAME, NV and ROWS are undefined at the end; the others stay.
 *
 * ROWS * NV accumulators, NV weight vectors and one broadcast must fit the register
 * file (16 ymm for AVX2, 32 zmm for AVX-512).  Each pass reads the weights once, so
 * fewer, fuller passes mean fewer weight loads per multiply-add.
 *
 * The tile's start and end are tile_start.template.h and tile_end.template.h, shared
 * with row.template.h. */

__attribute__((target(TARGET)))
static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a, const T *w,
                 const ptrdiff_t *woff, const T *bias, T **out, int accumulate, int flags,
                 ptrdiff_t ldx)
{
    (void)ldx;      /* every voxel's input comes through the table */
#define TILE_ROWS ROWS
#define TILE_OUT o
    for (int first = 0; first < DC3_MR; first += ROWS) {
        V acc[ROWS][NV];
        T **o = out + first;
#include "tile_start.template.h"
        for (ptrdiff_t u = 0; u < ntaps; u++) {
            const T *wc = w + woff[u];
            const T *const *au = a + u * DC3_MR + first;
            const T *ap[ROWS];
#pragma GCC unroll 16
            for (int m = 0; m < ROWS; m++)
                ap[m] = au[m];
            for (ptrdiff_t c = 0; c < channels; c++, wc += NV * L) {
                V wv[NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    wv[v] = LOADU(wc + v * L);
#pragma GCC unroll 16
                for (int m = 0; m < ROWS; m++) {
                    V t = SET1(ap[m][c]);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; v++)
                        acc[m][v] = FMADD(t, wv[v], acc[m][v]);
                }
            }
        }
#include "tile_end.template.h"
    }
}

#undef NAME
#undef NV
#undef ROWS
#undef TILE_ROWS
#undef TILE_OUT
