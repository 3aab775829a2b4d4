/* One portable gemm kernel (the contract is in kernels.h): plain loops the compiler
 * vectorises for the baseline ISA.  Define before including NAME, T (element type) and
 * NR (filters per panel); NAME and NR are undefined at the end, T stays. */

static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a, const T *w,
                 const ptrdiff_t *woff, const T *bias, T **out, int accumulate, int flags,
                 ptrdiff_t ldx)
{
    T acc[DC3_MR][NR];
    (void)ldx;      /* every voxel's input comes through the table */
    for (int m = 0; m < DC3_MR; m++)
        for (int f = 0; f < NR; f++)
            acc[m][f] = accumulate ? out[m][f] : bias ? bias[f] : (T)0;
    for (ptrdiff_t u = 0; u < ntaps; u++) {
        const T *wu = w + woff[u];
        const T **au = a + u * DC3_MR;
        for (ptrdiff_t c = 0; c < channels; c++) {
            const T *wc = wu + c * NR;
            for (int m = 0; m < DC3_MR; m++) {
                T am = au[m][c];
                for (int f = 0; f < NR; f++)
                    acc[m][f] += am * wc[f];
            }
        }
    }
    for (int m = 0; m < DC3_MR; m++)
        for (int f = 0; f < NR; f++) {
            T v = acc[m][f];
            /* zero where v < 0; NaN compares false and stays, like Keras */
            out[m][f] = ((flags & DC3_RELU) && v < 0) ? (T)0 : v;
        }
}

#undef NAME
#undef NR
