/* A tile's sums start from the bias, or from what the output rows hold when
 * accumulating.  Included inside a kernel's body (gemm.template.h, row.template.h),
 * where acc[TILE_ROWS][NV] are the sums and TILE_OUT[m] the output rows: written once,
 * and included rather than called because an inline helper changed the compiler's
 * register allocation. */
{
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        b[v] = bias ? LOADU(bias + v * L) : SETZERO();
#pragma GCC unroll 16
    for (int m = 0; m < TILE_ROWS; m++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[m][v] = accumulate ? LOADU(TILE_OUT[m] + v * L) : b[v];
    }
}
