/* Plane transposes for channels_first layers (the core itself works channels-last).
 *
 *     dst[j * dst_row + i * dst_col] = src[i * src_row + j * src_col]
 *
 * for i < rows, j < cols, in 16 x 16 blocks read into a small tile first, so that each
 * destination row of a block is then written in one contiguous run.  Where dst_col is
 * 1, the block full and its row on a 64-byte boundary, and `stream` is set (outputs too
 * large for the cache), the row goes out with non-temporal stores: a normal store would
 * first read every line it writes.  SSE2 streaming stores are part of x86-64's
 * baseline, so no run-time dispatch is needed; elsewhere plain stores are used.
 */
#ifndef DECONV3D_LAYOUT_H
#define DECONV3D_LAYOUT_H

#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#define DC3_LAYOUT_SSE2 1
#else
#define DC3_LAYOUT_SSE2 0
#endif

#define DC3_BLOCK 16

#if DC3_LAYOUT_SSE2
#define DC3_STREAM_ROW_float(d, t)                                                        \
    do {                                                                                 \
        for (int k = 0; k < DC3_BLOCK; k += 4)                                           \
            _mm_stream_ps((d) + k, _mm_loadu_ps((t) + k));                                \
    } while (0)
#define DC3_STREAM_ROW_double(d, t)                                                       \
    do {                                                                                 \
        for (int k = 0; k < DC3_BLOCK; k += 2)                                           \
            _mm_stream_pd((d) + k, _mm_loadu_pd((t) + k));                                \
    } while (0)
#endif

#define DC3_TRANSPOSE_PLANE(NAME, T)                                                      \
    static void NAME(const T *src, ptrdiff_t src_row, ptrdiff_t src_col, T *dst,           \
                     ptrdiff_t dst_row, ptrdiff_t dst_col, ptrdiff_t rows,                \
                     ptrdiff_t cols, int stream)                                          \
    {                                                                                    \
        T tile[DC3_BLOCK][DC3_BLOCK];                                                    \
        for (ptrdiff_t i0 = 0; i0 < rows; i0 += DC3_BLOCK) {                              \
            ptrdiff_t ni = rows - i0 < DC3_BLOCK ? rows - i0 : DC3_BLOCK;                \
            for (ptrdiff_t j0 = 0; j0 < cols; j0 += DC3_BLOCK) {                          \
                ptrdiff_t nj = cols - j0 < DC3_BLOCK ? cols - j0 : DC3_BLOCK;            \
                for (ptrdiff_t i = 0; i < ni; i++) {                                     \
                    const T *s = src + (i0 + i) * src_row + j0 * src_col;                \
                    for (ptrdiff_t j = 0; j < nj; j++)                                   \
                        tile[j][i] = s[j * src_col];                                     \
                }                                                                        \
                for (ptrdiff_t j = 0; j < nj; j++) {                                     \
                    T *d = dst + (j0 + j) * dst_row + i0 * dst_col;                      \
                    DC3_WRITE_ROW(T, d, tile[j], ni, dst_col, stream);                   \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    }

#if DC3_LAYOUT_SSE2
#define DC3_WRITE_ROW(T, d, t, n, step, stream)                                           \
    if ((stream) && (step) == 1 && (n) == DC3_BLOCK && ((size_t)(d) & 63) == 0)           \
        DC3_STREAM_ROW_##T(d, t);                                                        \
    else                                                                                 \
        for (ptrdiff_t k = 0; k < (n); k++)                                              \
            (d)[k * (step)] = (t)[k]
#else
#define DC3_WRITE_ROW(T, d, t, n, step, stream)                                           \
    for (ptrdiff_t k = 0; k < (n); k++)                                                  \
        (d)[k * (step)] = (t)[k]
#endif

DC3_TRANSPOSE_PLANE(dc3_transpose_plane_f32, float)
DC3_TRANSPOSE_PLANE(dc3_transpose_plane_f64, double)

#endif
