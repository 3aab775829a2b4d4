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
 *
 * Three widths per dtype: NR = two AVX2 vectors; one vector for layers with few
 * filters (no wasted columns); and two AVX-512 vectors where the CPU has them.
 * The AVX2+FMA and AVX-512 versions are compiled for those targets only and chosen
 * at run time, so the extension itself keeps the compiler's portable baseline (no
 * -march=native).
 */
#ifndef DECONV3D_MICROKERNELS_H
#define DECONV3D_MICROKERNELS_H

#include <stddef.h>

#define DC3_MR 6
#define DC3_NR_F32 16
#define DC3_NR_F64 8
#define DC3_NR_SMALL_F32 8
#define DC3_NR_SMALL_F64 4
#define DC3_NR_WIDE_F32 32
#define DC3_NR_WIDE_F64 16

typedef void (*dc3_kernel_f32)(ptrdiff_t ntaps, ptrdiff_t channels, const float **a,
                               const float *w, const ptrdiff_t *woff, const float *bias,
                               float **out, int accumulate, int relu);
typedef void (*dc3_kernel_f64)(ptrdiff_t ntaps, ptrdiff_t channels, const double **a,
                               const double *w, const ptrdiff_t *woff, const double *bias,
                               double **out, int accumulate, int relu);

/* Portable versions: plain loops the compiler vectorises for the baseline ISA. */
#define DC3_GENERIC_KERNEL(NAME, T, NR)                                                   \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int relu)                                            \
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
                out[m][f] = (relu && v < 0) ? (T)0 : v;                                  \
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

/* The AVX2 kernels, written once for both dtypes: V is the vector type, L the
 * lanes per vector, and the suffix S picks the _ps or _pd intrinsics. */
#define DC3_CAT3(a, b, c) a##b##c
#define DC3_OP(op, S) DC3_CAT3(_mm256_, op, S)

/* MR x 2 vectors: 12 accumulators, 2 registers of weights, 1 broadcast. */
#define DC3_AVX2_KERNEL_WIDE(NAME, T, V, L, S, BCAST)                                     \
    __attribute__((target("avx2,fma")))                                                   \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int relu)                                            \
    {                                                                                    \
        V b0 = bias ? DC3_OP(loadu_, S)(bias) : DC3_OP(setzero_, S)();                    \
        V b1 = bias ? DC3_OP(loadu_, S)(bias + L) : DC3_OP(setzero_, S)();                \
        V c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;                     \
        V c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;                     \
        if (accumulate) {                                                                \
            c00 = DC3_OP(loadu_, S)(out[0]); c01 = DC3_OP(loadu_, S)(out[0] + L);         \
            c10 = DC3_OP(loadu_, S)(out[1]); c11 = DC3_OP(loadu_, S)(out[1] + L);         \
            c20 = DC3_OP(loadu_, S)(out[2]); c21 = DC3_OP(loadu_, S)(out[2] + L);         \
            c30 = DC3_OP(loadu_, S)(out[3]); c31 = DC3_OP(loadu_, S)(out[3] + L);         \
            c40 = DC3_OP(loadu_, S)(out[4]); c41 = DC3_OP(loadu_, S)(out[4] + L);         \
            c50 = DC3_OP(loadu_, S)(out[5]); c51 = DC3_OP(loadu_, S)(out[5] + L);         \
        }                                                                                \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *wc = w + woff[u];                                                   \
            const T **au = a + u * DC3_MR;                                               \
            const T *a0 = au[0], *a1 = au[1], *a2 = au[2];                               \
            const T *a3 = au[3], *a4 = au[4], *a5 = au[5];                               \
            for (ptrdiff_t c = 0; c < channels; c++, wc += 2 * L) {                      \
                V w0 = DC3_OP(loadu_, S)(wc), w1 = DC3_OP(loadu_, S)(wc + L), t;         \
                t = BCAST(a0 + c);                                                       \
                c00 = DC3_OP(fmadd_, S)(t, w0, c00); c01 = DC3_OP(fmadd_, S)(t, w1, c01); \
                t = BCAST(a1 + c);                                                       \
                c10 = DC3_OP(fmadd_, S)(t, w0, c10); c11 = DC3_OP(fmadd_, S)(t, w1, c11); \
                t = BCAST(a2 + c);                                                       \
                c20 = DC3_OP(fmadd_, S)(t, w0, c20); c21 = DC3_OP(fmadd_, S)(t, w1, c21); \
                t = BCAST(a3 + c);                                                       \
                c30 = DC3_OP(fmadd_, S)(t, w0, c30); c31 = DC3_OP(fmadd_, S)(t, w1, c31); \
                t = BCAST(a4 + c);                                                       \
                c40 = DC3_OP(fmadd_, S)(t, w0, c40); c41 = DC3_OP(fmadd_, S)(t, w1, c41); \
                t = BCAST(a5 + c);                                                       \
                c50 = DC3_OP(fmadd_, S)(t, w0, c50); c51 = DC3_OP(fmadd_, S)(t, w1, c51); \
            }                                                                            \
        }                                                                                \
        if (relu) {                                                                      \
            /* a blend on v < 0 keeps NaN (max(v, 0) would drop it), like Keras */       \
            V z = DC3_OP(setzero_, S)();                                                 \
            c00 = DC3_RELU(S, c00, z); c01 = DC3_RELU(S, c01, z);                        \
            c10 = DC3_RELU(S, c10, z); c11 = DC3_RELU(S, c11, z);                        \
            c20 = DC3_RELU(S, c20, z); c21 = DC3_RELU(S, c21, z);                        \
            c30 = DC3_RELU(S, c30, z); c31 = DC3_RELU(S, c31, z);                        \
            c40 = DC3_RELU(S, c40, z); c41 = DC3_RELU(S, c41, z);                        \
            c50 = DC3_RELU(S, c50, z); c51 = DC3_RELU(S, c51, z);                        \
        }                                                                                \
        DC3_OP(storeu_, S)(out[0], c00); DC3_OP(storeu_, S)(out[0] + L, c01);             \
        DC3_OP(storeu_, S)(out[1], c10); DC3_OP(storeu_, S)(out[1] + L, c11);             \
        DC3_OP(storeu_, S)(out[2], c20); DC3_OP(storeu_, S)(out[2] + L, c21);             \
        DC3_OP(storeu_, S)(out[3], c30); DC3_OP(storeu_, S)(out[3] + L, c31);             \
        DC3_OP(storeu_, S)(out[4], c40); DC3_OP(storeu_, S)(out[4] + L, c41);             \
        DC3_OP(storeu_, S)(out[5], c50); DC3_OP(storeu_, S)(out[5] + L, c51);             \
    }

/* MR x 1 vector, for layers with at most L filters. */
#define DC3_AVX2_KERNEL_NARROW(NAME, T, V, L, S, BCAST)                                   \
    __attribute__((target("avx2,fma")))                                                   \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int relu)                                            \
    {                                                                                    \
        V b0 = bias ? DC3_OP(loadu_, S)(bias) : DC3_OP(setzero_, S)();                    \
        V c0 = b0, c1 = b0, c2 = b0, c3 = b0, c4 = b0, c5 = b0;                           \
        if (accumulate) {                                                                \
            c0 = DC3_OP(loadu_, S)(out[0]); c1 = DC3_OP(loadu_, S)(out[1]);               \
            c2 = DC3_OP(loadu_, S)(out[2]); c3 = DC3_OP(loadu_, S)(out[3]);               \
            c4 = DC3_OP(loadu_, S)(out[4]); c5 = DC3_OP(loadu_, S)(out[5]);               \
        }                                                                                \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *wc = w + woff[u];                                                   \
            const T **au = a + u * DC3_MR;                                               \
            const T *a0 = au[0], *a1 = au[1], *a2 = au[2];                               \
            const T *a3 = au[3], *a4 = au[4], *a5 = au[5];                               \
            for (ptrdiff_t c = 0; c < channels; c++, wc += L) {                          \
                V w0 = DC3_OP(loadu_, S)(wc);                                            \
                c0 = DC3_OP(fmadd_, S)(BCAST(a0 + c), w0, c0);                           \
                c1 = DC3_OP(fmadd_, S)(BCAST(a1 + c), w0, c1);                           \
                c2 = DC3_OP(fmadd_, S)(BCAST(a2 + c), w0, c2);                           \
                c3 = DC3_OP(fmadd_, S)(BCAST(a3 + c), w0, c3);                           \
                c4 = DC3_OP(fmadd_, S)(BCAST(a4 + c), w0, c4);                           \
                c5 = DC3_OP(fmadd_, S)(BCAST(a5 + c), w0, c5);                           \
            }                                                                            \
        }                                                                                \
        if (relu) {                                                                      \
            V z = DC3_OP(setzero_, S)();                                                 \
            c0 = DC3_RELU(S, c0, z); c1 = DC3_RELU(S, c1, z); c2 = DC3_RELU(S, c2, z);   \
            c3 = DC3_RELU(S, c3, z); c4 = DC3_RELU(S, c4, z); c5 = DC3_RELU(S, c5, z);   \
        }                                                                                \
        DC3_OP(storeu_, S)(out[0], c0); DC3_OP(storeu_, S)(out[1], c1);                   \
        DC3_OP(storeu_, S)(out[2], c2); DC3_OP(storeu_, S)(out[3], c3);                   \
        DC3_OP(storeu_, S)(out[4], c4); DC3_OP(storeu_, S)(out[5], c5);                   \
    }

#define DC3_RELU(S, v, z) DC3_OP(blendv_, S)(v, z, DC3_OP(cmp_, S)(v, z, _CMP_LT_OQ))

DC3_AVX2_KERNEL_WIDE(dc3_kernel_f32_avx2, float, __m256, 8, ps, _mm256_broadcast_ss)
DC3_AVX2_KERNEL_WIDE(dc3_kernel_f64_avx2, double, __m256d, 4, pd, _mm256_broadcast_sd)
DC3_AVX2_KERNEL_NARROW(dc3_kernel_f32_small_avx2, float, __m256, 8, ps, _mm256_broadcast_ss)
DC3_AVX2_KERNEL_NARROW(dc3_kernel_f64_small_avx2, double, __m256d, 4, pd, _mm256_broadcast_sd)

/* MR x 2 zmm vectors (AVX-512F): the same shape twice as wide, so each voxel's input
 * is read once for 32 floats' (16 doubles') worth of filters and every load feeds
 * twice the arithmetic. */
#define DC3_Z(op, S) DC3_CAT3(_mm512_, op, S)
#define DC3_AVX512_KERNEL_WIDE(NAME, T, V, L, S, SET1)                                        \
    __attribute__((target("avx512f")))                                                    \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T **a,                    \
                     const T *w, const ptrdiff_t *woff, const T *bias, T **out,           \
                     int accumulate, int relu)                                            \
    {                                                                                    \
        V c0[DC3_MR], c1[DC3_MR];                                                        \
        V b0 = bias ? DC3_Z(loadu_, S)(bias) : DC3_Z(setzero_, S)(); \
        V b1 = bias ? DC3_Z(loadu_, S)(bias + L) : DC3_Z(setzero_, S)(); \
        _Pragma("GCC unroll 6")                                                          \
        for (int m = 0; m < DC3_MR; m++) {                                               \
            c0[m] = accumulate ? DC3_Z(loadu_, S)(out[m]) : b0;               \
            c1[m] = accumulate ? DC3_Z(loadu_, S)(out[m] + L) : b1;           \
        }                                                                                \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *wc = w + woff[u];                                                   \
            const T **au = a + u * DC3_MR;                                               \
            const T *a0 = au[0], *a1 = au[1], *a2 = au[2];                               \
            const T *a3 = au[3], *a4 = au[4], *a5 = au[5];                               \
            for (ptrdiff_t c = 0; c < channels; c++, wc += 2 * L) {                      \
                V w0 = DC3_Z(loadu_, S)(wc), w1 = DC3_Z(loadu_, S)(wc + L), t; \
                t = SET1(a0[c]); c0[0] = DC3_Z(fmadd_, S)(t, w0, c0[0]);          \
                c1[0] = DC3_Z(fmadd_, S)(t, w1, c1[0]);                           \
                t = SET1(a1[c]); c0[1] = DC3_Z(fmadd_, S)(t, w0, c0[1]);          \
                c1[1] = DC3_Z(fmadd_, S)(t, w1, c1[1]);                           \
                t = SET1(a2[c]); c0[2] = DC3_Z(fmadd_, S)(t, w0, c0[2]);          \
                c1[2] = DC3_Z(fmadd_, S)(t, w1, c1[2]);                           \
                t = SET1(a3[c]); c0[3] = DC3_Z(fmadd_, S)(t, w0, c0[3]);          \
                c1[3] = DC3_Z(fmadd_, S)(t, w1, c1[3]);                           \
                t = SET1(a4[c]); c0[4] = DC3_Z(fmadd_, S)(t, w0, c0[4]);          \
                c1[4] = DC3_Z(fmadd_, S)(t, w1, c1[4]);                           \
                t = SET1(a5[c]); c0[5] = DC3_Z(fmadd_, S)(t, w0, c0[5]);          \
                c1[5] = DC3_Z(fmadd_, S)(t, w1, c1[5]);                           \
            }                                                                            \
        }                                                                                \
        _Pragma("GCC unroll 6")                                                          \
        for (int m = 0; m < DC3_MR; m++) {                                               \
            if (relu) {                                                                  \
                /* zero where v < 0; NaN compares false and stays, like Keras */         \
                V z = DC3_Z(setzero_, S)();                                  \
                c0[m] = DC3_Z(mask_mov_, S)(c0[m],                           \
                    DC3_CAT3(_mm512_cmp_, S, _mask)(c0[m], z, _CMP_LT_OQ), z);           \
                c1[m] = DC3_Z(mask_mov_, S)(c1[m],                           \
                    DC3_CAT3(_mm512_cmp_, S, _mask)(c1[m], z, _CMP_LT_OQ), z);           \
            }                                                                            \
            DC3_Z(storeu_, S)(out[m], c0[m]);                                \
            DC3_Z(storeu_, S)(out[m] + L, c1[m]);                            \
        }                                                                                \
    }

DC3_AVX512_KERNEL_WIDE(dc3_kernel_f32_avx512, float, __m512, 16, ps, _mm512_set1_ps)
DC3_AVX512_KERNEL_WIDE(dc3_kernel_f64_avx512, double, __m512d, 8, pd, _mm512_set1_pd)

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
    if (nr == DC3_NR_WIDE_F32 && dc3_use_avx512())
        return dc3_kernel_f32_avx512;
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
    if (nr == DC3_NR_WIDE_F64 && dc3_use_avx512())
        return dc3_kernel_f64_avx512;
    if (nr != DC3_NR_WIDE_F64 && dc3_use_avx2())
        return nr == DC3_NR_SMALL_F64 ? dc3_kernel_f64_small_avx2 : dc3_kernel_f64_avx2;
#endif
    if (nr == DC3_NR_WIDE_F64)
        return dc3_kernel_f64_wide_generic;
    return nr == DC3_NR_SMALL_F64 ? dc3_kernel_f64_small_generic : dc3_kernel_f64_generic;
}

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
