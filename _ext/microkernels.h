/* Register-blocked micro-kernels for deconv3d's core.
 *
 * One call computes a tile of MR output voxels x NR filters:
 *     out[m][f] = bias[f] + sum_u sum_c a[u * MR + m][c] * w[woff[u] + c * NR + f]
 * a is an indirection table: for each tap u and voxel m, a pointer to the
 * channels that tap reads for that voxel, straight into the input array, or to a
 * row of zeros where the tap falls outside the input.  Nothing is copied.  Tap
 * u's packed (channels x NR) weight panel starts woff[u] values into w.
 * The accumulators stay in registers for the whole reduction over the taps given;
 * with `accumulate` set the tile starts from the values already in `out` instead of
 * the bias, so that a long reduction can be split into cache-sized blocks.
 * `flags` (the last int): DC3_RELU applies relu on the way out; DC3_STREAM writes the
 * tile with non-temporal stores wherever a row of it is vector-aligned, for outputs too
 * large to stay in cache (a normal store first reads the line it writes).
 *
 * Three widths per dtype: NR = one AVX2 vector for layers with few filters (no
 * wasted columns), two AVX2 vectors or one AVX-512 vector, and two AVX-512 vectors
 * where the CPU has them.  A tile is MR = 12 voxels: with AVX-512 all 12 sit in
 * registers at once (24 of the 32 zmm), so every weight vector loaded feeds twelve
 * multiply-adds; the two-vector AVX2 kernel takes them as two passes of 6.
 * The AVX2+FMA and AVX-512 versions are compiled for those targets only and chosen
 * at run time, so the extension itself keeps the compiler's portable baseline (no
 * -march=native).
 */
#ifndef DECONV3D_MICROKERNELS_H
#define DECONV3D_MICROKERNELS_H

#include <stddef.h>

#define DC3_MR 12
#define DC3_RELU 1
#define DC3_STREAM 2
#define DC3_NR_F32 16
#define DC3_NR_F64 8
#define DC3_NR_SMALL_F32 8
#define DC3_NR_SMALL_F64 4
#define DC3_NR_WIDE_F32 32
#define DC3_NR_WIDE_F64 16

typedef void (*dc3_kernel_f32)(ptrdiff_t ntaps, ptrdiff_t channels, const float **a,
                               const float *w, const ptrdiff_t *woff, const float *bias,
                               float **out, int accumulate, int flags);
typedef void (*dc3_kernel_f64)(ptrdiff_t ntaps, ptrdiff_t channels, const double **a,
                               const double *w, const ptrdiff_t *woff, const double *bias,
                               double **out, int accumulate, int flags);

typedef void (*dc3_row_kernel_f32)(ptrdiff_t ntaps, ptrdiff_t channels, const float **a,
                                   const float *w, const ptrdiff_t *woff, const float *bias,
                                   float **out, int accumulate, int flags, ptrdiff_t ldx);
typedef void (*dc3_row_kernel_f64)(ptrdiff_t ntaps, ptrdiff_t channels, const double **a,
                                   const double *w, const ptrdiff_t *woff, const double *bias,
                                   double **out, int accumulate, int flags, ptrdiff_t ldx);

/* Portable versions: plain loops the compiler vectorises for the baseline ISA. */
#define DC3_GENERIC_KERNEL(NAME, T, NR)                                                   \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int flags)                                           \
    {                                                                                    \
        T acc[DC3_MR][NR];                                                               \
        for (int m = 0; m < DC3_MR; m++)                                                 \
            for (int f = 0; f < NR; f++)                                                 \
                acc[m][f] = accumulate ? out[m][f] : bias ? bias[f] : (T)0;              \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *wu = w + woff[u];                                                   \
            const T **au = a + u * DC3_MR;                                               \
            for (ptrdiff_t c = 0; c < channels; c++) {                                   \
                const T *wc = wu + c * NR;                                               \
                for (int m = 0; m < DC3_MR; m++) {                                       \
                    T am = au[m][c];                                                     \
                    for (int f = 0; f < NR; f++)                                         \
                        acc[m][f] += am * wc[f];                                         \
                }                                                                        \
            }                                                                            \
        }                                                                                \
        for (int m = 0; m < DC3_MR; m++)                                                 \
            for (int f = 0; f < NR; f++) {                                               \
                T v = acc[m][f];                                                         \
                out[m][f] = ((flags & DC3_RELU) && v < 0) ? (T)0 : v;                    \
            }                                                                            \
    }

DC3_GENERIC_KERNEL(dc3_kernel_f32_generic, float, DC3_NR_F32)
DC3_GENERIC_KERNEL(dc3_kernel_f64_generic, double, DC3_NR_F64)
DC3_GENERIC_KERNEL(dc3_kernel_f32_small_generic, float, DC3_NR_SMALL_F32)
DC3_GENERIC_KERNEL(dc3_kernel_f64_small_generic, double, DC3_NR_SMALL_F64)
DC3_GENERIC_KERNEL(dc3_kernel_f32_wide_generic, float, DC3_NR_WIDE_F32)
DC3_GENERIC_KERNEL(dc3_kernel_f64_wide_generic, double, DC3_NR_WIDE_F64)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define DC3_HAVE_X86_DISPATCH 1
#include <immintrin.h>

/* A tile's sums start from the bias, or from what `o` holds when accumulating ... */
#define DC3_TILE_START(acc, ROWS, NV, o, bias, accumulate, V, L, LOADU, SETZERO)         \
    do {                                                                                 \
        V b_[NV];                                                                        \
        _Pragma("GCC unroll 4")                                                          \
        for (int v = 0; v < NV; v++)                                                     \
            b_[v] = (bias) ? LOADU((bias) + v * L) : SETZERO();                          \
        _Pragma("GCC unroll 16")                                                         \
        for (int m = 0; m < ROWS; m++) {                                                 \
            _Pragma("GCC unroll 4")                                                      \
            for (int v = 0; v < NV; v++)                                                 \
                acc[m][v] = (accumulate) ? LOADU((o)[m] + v * L) : b_[v];                \
        }                                                                                \
    } while (0)

/* ... and leave through relu (if asked), streamed or stored. */
#define DC3_TILE_END(acc, ROWS, NV, o, flags, T, V, L, STOREU, SETZERO, RELU, STREAM)    \
    do {                                                                                 \
        _Pragma("GCC unroll 16")                                                         \
        for (int m = 0; m < ROWS; m++) {                                                 \
            int streamed = ((flags) & DC3_STREAM)                                        \
                           && DC3_WHOLE_LINES((o)[m], NV * L * sizeof(T));               \
            _Pragma("GCC unroll 4")                                                      \
            for (int v = 0; v < NV; v++) {                                               \
                V s = acc[m][v];                                                         \
                /* zero where s < 0; NaN compares false and stays, like Keras */         \
                if ((flags) & DC3_RELU)                                                  \
                    s = RELU(s, SETZERO());                                              \
                if (streamed)                                                            \
                    STREAM((o)[m] + v * L, s);                                           \
                else                                                                     \
                    STOREU((o)[m] + v * L, s);                                           \
            }                                                                            \
        }                                                                                \
    } while (0)

/* A voxel's row of the tile covers whole 64-byte cache lines: only then does streaming
 * pay (a partly written line goes to memory as a slow partial write). */
#define DC3_WHOLE_LINES(p, bytes) ((bytes) % 64 == 0 && ((size_t)(p) & 63) == 0)

/* One vector kernel, written once for every ISA, dtype and width: TARGET is the
 * target attribute, V the vector type, L its lanes, NV the vectors per row of the
 * tile (NR = NV * L), ROWS the voxels whose sums stay in registers together, and the
 * remaining arguments the intrinsics.  The MR voxels of a tile run in MR / ROWS
 * passes: ROWS * NV accumulators, NV weight vectors and one broadcast must fit the
 * register file (16 ymm for AVX2, 32 zmm for AVX-512).  Each pass reads the weights
 * once, so fewer, fuller passes mean fewer weight loads per multiply-add. */
#define DC3_SIMD_KERNEL(NAME, TARGET, T, V, L, NV, ROWS, LOADU, STOREU, SETZERO, SET1,    \
                        FMADD, RELU, STREAM)                                              \
    __attribute__((target(TARGET)))                                                      \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int flags)                                           \
    {                                                                                    \
        for (int first = 0; first < DC3_MR; first += ROWS) {                             \
            V acc[ROWS][NV];                                                             \
            T **o = out + first;                                                         \
            DC3_TILE_START(acc, ROWS, NV, o, bias, accumulate, V, L, LOADU, SETZERO);    \
            for (ptrdiff_t u = 0; u < ntaps; u++) {                                      \
                const T *wc = w + woff[u];                                               \
                const T *const *au = a + u * DC3_MR + first;                             \
                const T *ap[ROWS];                                                       \
                _Pragma("GCC unroll 16")                                                 \
                for (int m = 0; m < ROWS; m++)                                           \
                    ap[m] = au[m];                                                       \
                for (ptrdiff_t c = 0; c < channels; c++, wc += NV * L) {                 \
                    V wv[NV];                                                            \
                    _Pragma("GCC unroll 4")                                              \
                    for (int v = 0; v < NV; v++)                                         \
                        wv[v] = LOADU(wc + v * L);                                       \
                    _Pragma("GCC unroll 16")                                             \
                    for (int m = 0; m < ROWS; m++) {                                     \
                        V t = SET1(ap[m][c]);                                            \
                        _Pragma("GCC unroll 4")                                          \
                        for (int v = 0; v < NV; v++)                                     \
                            acc[m][v] = FMADD(t, wv[v], acc[m][v]);                      \
                    }                                                                    \
                }                                                                        \
            }                                                                            \
            DC3_TILE_END(acc, ROWS, NV, o, flags, T, V, L, STOREU, SETZERO, RELU, STREAM); \
        }                                                                                \
    }

#define DC3_RELU_PS(v, z) _mm256_blendv_ps(v, z, _mm256_cmp_ps(v, z, _CMP_LT_OQ))
#define DC3_RELU_PD(v, z) _mm256_blendv_pd(v, z, _mm256_cmp_pd(v, z, _CMP_LT_OQ))
#define DC3_RELU_PS512(v, z) _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, z, _CMP_LT_OQ), z)
#define DC3_RELU_PD512(v, z) _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(v, z, _CMP_LT_OQ), z)

#define DC3_AVX2_PS "avx2,fma", float, __m256, 8
#define DC3_AVX2_PS_OPS _mm256_loadu_ps, _mm256_storeu_ps, _mm256_setzero_ps,               \
                        _mm256_set1_ps, _mm256_fmadd_ps, DC3_RELU_PS, _mm256_stream_ps
#define DC3_AVX2_PD "avx2,fma", double, __m256d, 4
#define DC3_AVX2_PD_OPS _mm256_loadu_pd, _mm256_storeu_pd, _mm256_setzero_pd,               \
                        _mm256_set1_pd, _mm256_fmadd_pd, DC3_RELU_PD, _mm256_stream_pd
#define DC3_AVX512_PS "avx512f", float, __m512, 16
#define DC3_AVX512_PS_OPS _mm512_loadu_ps, _mm512_storeu_ps, _mm512_setzero_ps,             \
                          _mm512_set1_ps, _mm512_fmadd_ps, DC3_RELU_PS512, _mm512_stream_ps
#define DC3_AVX512_PD "avx512f", double, __m512d, 8
#define DC3_AVX512_PD_OPS _mm512_loadu_pd, _mm512_storeu_pd, _mm512_setzero_pd,             \
                          _mm512_set1_pd, _mm512_fmadd_pd, DC3_RELU_PD512, _mm512_stream_pd
#define DC3_KERNEL(...) DC3_SIMD_KERNEL(__VA_ARGS__)

/* AVX2+FMA: two ymm per row in two passes of 6 rows (12 accumulators), or one ymm
 * per row for all 12 rows at once (the narrow panels of layers with few filters). */
DC3_KERNEL(dc3_kernel_f32_avx2, DC3_AVX2_PS, 2, 6, DC3_AVX2_PS_OPS)
DC3_KERNEL(dc3_kernel_f64_avx2, DC3_AVX2_PD, 2, 6, DC3_AVX2_PD_OPS)
DC3_KERNEL(dc3_kernel_f32_small_avx2, DC3_AVX2_PS, 1, 12, DC3_AVX2_PS_OPS)
DC3_KERNEL(dc3_kernel_f64_small_avx2, DC3_AVX2_PD, 1, 12, DC3_AVX2_PD_OPS)
/* AVX-512F: all 12 rows in one pass, two zmm per row (24 accumulators: each broadcast
 * feeds two multiply-adds and each weight vector twelve) or one zmm per row. */
DC3_KERNEL(dc3_kernel_f32_avx512, DC3_AVX512_PS, 2, 12, DC3_AVX512_PS_OPS)
DC3_KERNEL(dc3_kernel_f64_avx512, DC3_AVX512_PD, 2, 12, DC3_AVX512_PD_OPS)
DC3_KERNEL(dc3_kernel_f32_normal_avx512, DC3_AVX512_PS, 1, 12, DC3_AVX512_PS_OPS)
DC3_KERNEL(dc3_kernel_f64_normal_avx512, DC3_AVX512_PD, 1, 12, DC3_AVX512_PD_OPS)

/* Row kernels for tiles of two runs of 6 consecutive voxels (two rows of a phase),
 * when every one of the phase's TW w taps (TW = 2 or 3, S input voxels apart) reaches
 * all of them.  Voxel m of a run and its tap t read input voxel m + S*t of the row,
 * so input voxel e of the row feeds every voxel m = e - S*t: it is broadcast once
 * for up to TW voxels, with the TW taps' weights held in registers (24 accumulators,
 * 6 weight vectors and one broadcast at most: 31 zmm).  That halves the loads per
 * multiply-add of the plain kernel, which is what bounds it.
 * a[u * MR + 6 * r] points at the input read by voxel 0 of run r through w tap 0 of
 * (d, h) tap pair u (or at zeros); consecutive input voxels are ldx values apart; the
 * TW weight panels of pair u lie back to back from woff[u]. */
#define DC3_RUN 6
#define DC3_ROW_KERNEL(NAME, TARGET, T, V, L, NV, TW, S, LOADU, STOREU, SETZERO, SET1,      \
                       FMADD, RELU, STREAM)                                               \
    __attribute__((target(TARGET)))                                                      \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int flags, ptrdiff_t ldx)                            \
    {                                                                                    \
        enum { ELEMENTS = DC3_RUN + S * (TW - 1), BASES = (ELEMENTS + 2) / 3 };          \
        V acc[DC3_MR][NV];                                                               \
        DC3_TILE_START(acc, DC3_MR, NV, out, bias, accumulate, V, L, LOADU, SETZERO);    \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *wc = w + woff[u];                                                   \
            /* every third input voxel of a row: the others are one or two ldx on, */    \
            /* which x86 addressing adds for free */                                      \
            const T *q[2][BASES];                                                        \
            _Pragma("GCC unroll 2")                                                      \
            for (int r = 0; r < 2; r++) {                                                \
                _Pragma("GCC unroll 8")                                                  \
                for (int i = 0; i < BASES; i++)                                          \
                    q[r][i] = a[u * DC3_MR + DC3_RUN * r] + 3 * i * ldx;                 \
            }                                                                            \
            if (u + 1 < ntaps) {                                                         \
                /* the next pair's two input rows, while this one computes */            \
                const char *n0 = (const char *)a[(u + 1) * DC3_MR];                      \
                const char *n1 = (const char *)a[(u + 1) * DC3_MR + DC3_RUN];             \
                ptrdiff_t bytes = ((ELEMENTS - 1) * ldx + channels) * (ptrdiff_t)sizeof(T); \
                for (ptrdiff_t k = 0; k < bytes; k += 64) {                              \
                    _mm_prefetch(n0 + k, _MM_HINT_T0);                                   \
                    _mm_prefetch(n1 + k, _MM_HINT_T0);                                   \
                }                                                                        \
            }                                                                            \
            _Pragma("GCC unroll 2")                                                      \
            for (ptrdiff_t c = 0; c < channels; c++, wc += NV * L) {                     \
                V wv[TW][NV];                                                            \
                _Pragma("GCC unroll 4")                                                  \
                for (int t = 0; t < TW; t++) {                                           \
                    _Pragma("GCC unroll 4")                                              \
                    for (int v = 0; v < NV; v++)                                         \
                        wv[t][v] = LOADU(wc + t * channels * NV * L + v * L);            \
                }                                                                        \
                _Pragma("GCC unroll 2")                                                  \
                for (int r = 0; r < 2; r++) {                                            \
                    _Pragma("GCC unroll 16")                                             \
                    for (int e = 0; e < ELEMENTS; e++) {                                 \
                        V x = SET1(q[r][e / 3][(e % 3) * ldx]);                          \
                        _Pragma("GCC unroll 4")                                          \
                        for (int t = 0; t < TW; t++) {                                   \
                            const int m = e - S * t;                                     \
                            if (m >= 0 && m < DC3_RUN) {                                 \
                                _Pragma("GCC unroll 4")                                  \
                                for (int v = 0; v < NV; v++)                             \
                                    acc[DC3_RUN * r + m][v] =                            \
                                        FMADD(x, wv[t][v], acc[DC3_RUN * r + m][v]);     \
                            }                                                            \
                        }                                                                \
                    }                                                                    \
                    _Pragma("GCC unroll 8")                                              \
                    for (int i = 0; i < BASES; i++)                                      \
                        q[r][i]++;                                                       \
                }                                                                        \
            }                                                                            \
        }                                                                                \
        DC3_TILE_END(acc, DC3_MR, NV, out, flags, T, V, L, STOREU, SETZERO, RELU, STREAM); \
    }
#define DC3_ROW_KERNEL_(...) DC3_ROW_KERNEL(__VA_ARGS__)
/* name suffix: dtype, vectors per voxel, taps, spacing */
#define DC3_ROW_KERNELS(ISA, OPS, SUFFIX)                                             \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_1_2_1, ISA, 1, 2, 1, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_1_2_2, ISA, 1, 2, 2, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_1_3_1, ISA, 1, 3, 1, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_1_3_2, ISA, 1, 3, 2, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_2_2_1, ISA, 2, 2, 1, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_2_2_2, ISA, 2, 2, 2, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_2_3_1, ISA, 2, 3, 1, OPS)                          \
    DC3_ROW_KERNEL_(dc3_row_##SUFFIX##_2_3_2, ISA, 2, 3, 2, OPS)
DC3_ROW_KERNELS(DC3_AVX512_PS, DC3_AVX512_PS_OPS, f32)
DC3_ROW_KERNELS(DC3_AVX512_PD, DC3_AVX512_PD_OPS, f64)

static int dc3_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

static int dc3_cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define DC3_HAVE_X86_DISPATCH 0
static int dc3_cpu_has_avx2_fma(void) { return 0; }
static int dc3_cpu_has_avx512(void) { return 0; }
#endif

/* Makes a thread's non-temporal stores visible to the others: each thread that may
 * have streamed calls it once at the end of its share of the work. */
static void dc3_store_fence(void)
{
#if DC3_HAVE_X86_DISPATCH
    _mm_sfence();
#endif
}

/* Environment overrides for testing the other paths on a machine that has them all:
 * DECONV3D_KERNEL=generic (portable C only) or =avx2 (no AVX-512). */
#include <stdlib.h>
#include <string.h>

static int dc3_kernel_choice_is(const char *name)
{
    const char *choice = getenv("DECONV3D_KERNEL");
    return choice && strcmp(choice, name) == 0;
}

static int dc3_use_avx2(void)
{
    return !dc3_kernel_choice_is("generic") && dc3_cpu_has_avx2_fma();
}

/* AVX-512F for the wide kernels; checked with AVX2+FMA so both kinds come together */
static int dc3_use_avx512(void)
{
    return dc3_use_avx2() && !dc3_kernel_choice_is("avx2") && dc3_cpu_has_avx512();
}

/* The kernel for a packed width nr (DC3_NR_SMALL_*, DC3_NR_* or DC3_NR_WIDE_*). */
static dc3_kernel_f32 dc3_select_f32(int nr)
{
#if DC3_HAVE_X86_DISPATCH
    if (dc3_use_avx512() && nr != DC3_NR_SMALL_F32)
        return nr == DC3_NR_WIDE_F32 ? dc3_kernel_f32_avx512 : dc3_kernel_f32_normal_avx512;
    if (nr != DC3_NR_WIDE_F32 && dc3_use_avx2())
        return nr == DC3_NR_SMALL_F32 ? dc3_kernel_f32_small_avx2 : dc3_kernel_f32_avx2;
#endif
    if (nr == DC3_NR_WIDE_F32)
        return dc3_kernel_f32_wide_generic;
    return nr == DC3_NR_SMALL_F32 ? dc3_kernel_f32_small_generic : dc3_kernel_f32_generic;
}

static dc3_kernel_f64 dc3_select_f64(int nr)
{
#if DC3_HAVE_X86_DISPATCH
    if (dc3_use_avx512() && nr != DC3_NR_SMALL_F64)
        return nr == DC3_NR_WIDE_F64 ? dc3_kernel_f64_avx512 : dc3_kernel_f64_normal_avx512;
    if (nr != DC3_NR_WIDE_F64 && dc3_use_avx2())
        return nr == DC3_NR_SMALL_F64 ? dc3_kernel_f64_small_avx2 : dc3_kernel_f64_avx2;
#endif
    if (nr == DC3_NR_WIDE_F64)
        return dc3_kernel_f64_wide_generic;
    return nr == DC3_NR_SMALL_F64 ? dc3_kernel_f64_small_generic : dc3_kernel_f64_generic;
}

/* The row kernel for panels of nr values, taps w taps spacing input voxels apart, or
 * NULL where there is none (no AVX-512, or a width, tap count or spacing without one). */
#define DC3_SELECT_ROW(T, SUFFIX, LANES)                                                 \
    static dc3_row_kernel_##SUFFIX dc3_select_row_##SUFFIX(int nr, int taps, int spacing) \
    {                                                                                    \
        DC3_SELECT_ROW_BODY(SUFFIX, LANES)                                               \
        return NULL;                                                                     \
    }
#if DC3_HAVE_X86_DISPATCH
#define DC3_SELECT_ROW_BODY(SUFFIX, LANES)                                               \
        if (!dc3_use_avx512() || (nr != LANES && nr != 2 * LANES)                         \
                || taps < 2 || taps > 3 || spacing < 1 || spacing > 2)                    \
            return NULL;                                                                 \
        if (nr == LANES)                                                                 \
            return taps == 2 ? (spacing == 1 ? dc3_row_##SUFFIX##_1_2_1 : dc3_row_##SUFFIX##_1_2_2) \
                             : (spacing == 1 ? dc3_row_##SUFFIX##_1_3_1 : dc3_row_##SUFFIX##_1_3_2); \
        return taps == 2 ? (spacing == 1 ? dc3_row_##SUFFIX##_2_2_1 : dc3_row_##SUFFIX##_2_2_2)     \
                         : (spacing == 1 ? dc3_row_##SUFFIX##_2_3_1 : dc3_row_##SUFFIX##_2_3_2);
#else
#define DC3_SELECT_ROW_BODY(SUFFIX, LANES) (void)nr; (void)taps; (void)spacing;
#endif
DC3_SELECT_ROW(float, f32, 16)
DC3_SELECT_ROW(double, f64, 8)

/* Whether the wide panels have a vector kernel here (else packing avoids them). */
static int dc3_wide_available(void)
{
#if DC3_HAVE_X86_DISPATCH
    return dc3_use_avx512();
#else
    return 0;
#endif
}

static const char *dc3_kernel_name(void)
{
#if DC3_HAVE_X86_DISPATCH
    if (dc3_use_avx512())
        return "avx512f+avx2+fma";
    if (dc3_use_avx2())
        return "avx2+fma";
#endif
    return "generic";
}

#endif
