/* Register-blocked micro-kernels for deconv3d's core.
 *
 * One call computes a tile of MR output voxels x NR filters:
 *     out[m][f] = bias[f] + sum_u sum_c a[u][m][c] * w[u][c][f]
 * where a is the tile's input, gathered by the caller into one contiguous panel
 * (for each contributing tap u and voxel m, its C channels: a plain copy, zeros
 * where the tap falls outside the input), and w[u] points at tap u's packed
 * (C x NR) weight panel.
 * The accumulators stay in registers for the whole reduction over the taps given;
 * with `accumulate` set the tile starts from the values already in `out` instead of
 * the bias, so that a long reduction can be split into cache-sized blocks.
 *
 * The AVX2+FMA versions are compiled for that target only and chosen at run time,
 * so the extension itself keeps the compiler's portable baseline (no -march=native).
 */
#ifndef DECONV3D_MICROKERNELS_H
#define DECONV3D_MICROKERNELS_H

#include <stddef.h>

#define DC3_MR 6
#define DC3_NR_F32 16
#define DC3_NR_F64 8

typedef void (*dc3_kernel_f32)(ptrdiff_t ntaps, ptrdiff_t channels, const float *a,
                               const float **w, const float *bias, float **out,
                               int accumulate, int relu);
typedef void (*dc3_kernel_f64)(ptrdiff_t ntaps, ptrdiff_t channels, const double *a,
                               const double **w, const double *bias, double **out,
                               int accumulate, int relu);

/* Portable versions: plain loops the compiler vectorises for the baseline ISA. */
#define DC3_GENERIC_KERNEL(NAME, T, NR)                                                   \
    static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, const T *a,                   \
                     const T **w, const T *bias, T **out, int accumulate, int relu) \
    {                                                                                    \
        T acc[DC3_MR][NR];                                                               \
        for (int m = 0; m < DC3_MR; m++)                                                 \
            for (int f = 0; f < NR; f++)                                                 \
                acc[m][f] = accumulate ? out[m][f] : bias ? bias[f] : (T)0;              \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *wu = w[u];                                                          \
            const T *au = a + u * DC3_MR * channels;                                     \
            for (ptrdiff_t c = 0; c < channels; c++) {                                   \
                const T *wc = wu + c * NR;                                               \
                for (int m = 0; m < DC3_MR; m++) {                                       \
                    T am = au[m * channels + c];                                         \
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

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define DC3_HAVE_X86_DISPATCH 1
#include <immintrin.h>

/* 6 voxels x 16 floats: 12 ymm accumulators, 2 for weights, 1 for the broadcast. */
__attribute__((target("avx2,fma")))
static void dc3_kernel_f32_avx2(ptrdiff_t ntaps, ptrdiff_t channels, const float *a,
                                const float **w, const float *bias, float **out,
                                int accumulate, int relu)
{
    __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    __m256 b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
    __m256 c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;
    __m256 c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
    if (accumulate) {
        c00 = _mm256_loadu_ps(out[0]); c01 = _mm256_loadu_ps(out[0] + 8);
        c10 = _mm256_loadu_ps(out[1]); c11 = _mm256_loadu_ps(out[1] + 8);
        c20 = _mm256_loadu_ps(out[2]); c21 = _mm256_loadu_ps(out[2] + 8);
        c30 = _mm256_loadu_ps(out[3]); c31 = _mm256_loadu_ps(out[3] + 8);
        c40 = _mm256_loadu_ps(out[4]); c41 = _mm256_loadu_ps(out[4] + 8);
        c50 = _mm256_loadu_ps(out[5]); c51 = _mm256_loadu_ps(out[5] + 8);
    }
    for (ptrdiff_t u = 0; u < ntaps; u++) {
        const float *wc = w[u];
        const float *a0 = a + u * DC3_MR * channels, *a1 = a0 + channels, *a2 = a1 + channels;
        const float *a3 = a2 + channels, *a4 = a3 + channels, *a5 = a4 + channels;
        for (ptrdiff_t c = 0; c < channels; c++, wc += 16) {
            __m256 w0 = _mm256_loadu_ps(wc), w1 = _mm256_loadu_ps(wc + 8), t;
            t = _mm256_broadcast_ss(a0 + c);
            c00 = _mm256_fmadd_ps(t, w0, c00); c01 = _mm256_fmadd_ps(t, w1, c01);
            t = _mm256_broadcast_ss(a1 + c);
            c10 = _mm256_fmadd_ps(t, w0, c10); c11 = _mm256_fmadd_ps(t, w1, c11);
            t = _mm256_broadcast_ss(a2 + c);
            c20 = _mm256_fmadd_ps(t, w0, c20); c21 = _mm256_fmadd_ps(t, w1, c21);
            t = _mm256_broadcast_ss(a3 + c);
            c30 = _mm256_fmadd_ps(t, w0, c30); c31 = _mm256_fmadd_ps(t, w1, c31);
            t = _mm256_broadcast_ss(a4 + c);
            c40 = _mm256_fmadd_ps(t, w0, c40); c41 = _mm256_fmadd_ps(t, w1, c41);
            t = _mm256_broadcast_ss(a5 + c);
            c50 = _mm256_fmadd_ps(t, w0, c50); c51 = _mm256_fmadd_ps(t, w1, c51);
        }
    }
    if (relu) {
        /* max(v, 0) with v as the second operand would drop NaN; keep NaN like Keras */
        __m256 z = _mm256_setzero_ps();
#define DC3_RELU_PS(v) v = _mm256_blendv_ps(v, z, _mm256_cmp_ps(v, z, _CMP_LT_OQ))
        DC3_RELU_PS(c00); DC3_RELU_PS(c01); DC3_RELU_PS(c10); DC3_RELU_PS(c11);
        DC3_RELU_PS(c20); DC3_RELU_PS(c21); DC3_RELU_PS(c30); DC3_RELU_PS(c31);
        DC3_RELU_PS(c40); DC3_RELU_PS(c41); DC3_RELU_PS(c50); DC3_RELU_PS(c51);
#undef DC3_RELU_PS
    }
    _mm256_storeu_ps(out[0], c00); _mm256_storeu_ps(out[0] + 8, c01);
    _mm256_storeu_ps(out[1], c10); _mm256_storeu_ps(out[1] + 8, c11);
    _mm256_storeu_ps(out[2], c20); _mm256_storeu_ps(out[2] + 8, c21);
    _mm256_storeu_ps(out[3], c30); _mm256_storeu_ps(out[3] + 8, c31);
    _mm256_storeu_ps(out[4], c40); _mm256_storeu_ps(out[4] + 8, c41);
    _mm256_storeu_ps(out[5], c50); _mm256_storeu_ps(out[5] + 8, c51);
}

/* 6 voxels x 8 doubles. */
__attribute__((target("avx2,fma")))
static void dc3_kernel_f64_avx2(ptrdiff_t ntaps, ptrdiff_t channels, const double *a,
                                const double **w, const double *bias, double **out,
                                int accumulate, int relu)
{
    __m256d b0 = bias ? _mm256_loadu_pd(bias) : _mm256_setzero_pd();
    __m256d b1 = bias ? _mm256_loadu_pd(bias + 4) : _mm256_setzero_pd();
    __m256d c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;
    __m256d c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
    if (accumulate) {
        c00 = _mm256_loadu_pd(out[0]); c01 = _mm256_loadu_pd(out[0] + 4);
        c10 = _mm256_loadu_pd(out[1]); c11 = _mm256_loadu_pd(out[1] + 4);
        c20 = _mm256_loadu_pd(out[2]); c21 = _mm256_loadu_pd(out[2] + 4);
        c30 = _mm256_loadu_pd(out[3]); c31 = _mm256_loadu_pd(out[3] + 4);
        c40 = _mm256_loadu_pd(out[4]); c41 = _mm256_loadu_pd(out[4] + 4);
        c50 = _mm256_loadu_pd(out[5]); c51 = _mm256_loadu_pd(out[5] + 4);
    }
    for (ptrdiff_t u = 0; u < ntaps; u++) {
        const double *wc = w[u];
        const double *a0 = a + u * DC3_MR * channels, *a1 = a0 + channels, *a2 = a1 + channels;
        const double *a3 = a2 + channels, *a4 = a3 + channels, *a5 = a4 + channels;
        for (ptrdiff_t c = 0; c < channels; c++, wc += 8) {
            __m256d w0 = _mm256_loadu_pd(wc), w1 = _mm256_loadu_pd(wc + 4), t;
            t = _mm256_broadcast_sd(a0 + c);
            c00 = _mm256_fmadd_pd(t, w0, c00); c01 = _mm256_fmadd_pd(t, w1, c01);
            t = _mm256_broadcast_sd(a1 + c);
            c10 = _mm256_fmadd_pd(t, w0, c10); c11 = _mm256_fmadd_pd(t, w1, c11);
            t = _mm256_broadcast_sd(a2 + c);
            c20 = _mm256_fmadd_pd(t, w0, c20); c21 = _mm256_fmadd_pd(t, w1, c21);
            t = _mm256_broadcast_sd(a3 + c);
            c30 = _mm256_fmadd_pd(t, w0, c30); c31 = _mm256_fmadd_pd(t, w1, c31);
            t = _mm256_broadcast_sd(a4 + c);
            c40 = _mm256_fmadd_pd(t, w0, c40); c41 = _mm256_fmadd_pd(t, w1, c41);
            t = _mm256_broadcast_sd(a5 + c);
            c50 = _mm256_fmadd_pd(t, w0, c50); c51 = _mm256_fmadd_pd(t, w1, c51);
        }
    }
    if (relu) {
        __m256d z = _mm256_setzero_pd();
#define DC3_RELU_PD(v) v = _mm256_blendv_pd(v, z, _mm256_cmp_pd(v, z, _CMP_LT_OQ))
        DC3_RELU_PD(c00); DC3_RELU_PD(c01); DC3_RELU_PD(c10); DC3_RELU_PD(c11);
        DC3_RELU_PD(c20); DC3_RELU_PD(c21); DC3_RELU_PD(c30); DC3_RELU_PD(c31);
        DC3_RELU_PD(c40); DC3_RELU_PD(c41); DC3_RELU_PD(c50); DC3_RELU_PD(c51);
#undef DC3_RELU_PD
    }
    _mm256_storeu_pd(out[0], c00); _mm256_storeu_pd(out[0] + 4, c01);
    _mm256_storeu_pd(out[1], c10); _mm256_storeu_pd(out[1] + 4, c11);
    _mm256_storeu_pd(out[2], c20); _mm256_storeu_pd(out[2] + 4, c21);
    _mm256_storeu_pd(out[3], c30); _mm256_storeu_pd(out[3] + 4, c31);
    _mm256_storeu_pd(out[4], c40); _mm256_storeu_pd(out[4] + 4, c41);
    _mm256_storeu_pd(out[5], c50); _mm256_storeu_pd(out[5] + 4, c51);
}

static int dc3_cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define DC3_HAVE_X86_DISPATCH 0
static int dc3_cpu_has_avx2_fma(void) { return 0; }
#endif

/* Environment override for testing the portable path: DECONV3D_KERNEL=generic. */
#include <stdlib.h>
#include <string.h>

static int dc3_use_avx2(void)
{
    const char *choice = getenv("DECONV3D_KERNEL");
    if (choice && strcmp(choice, "generic") == 0)
        return 0;
    return dc3_cpu_has_avx2_fma();
}

static dc3_kernel_f32 dc3_select_f32(void)
{
#if DC3_HAVE_X86_DISPATCH
    if (dc3_use_avx2())
        return dc3_kernel_f32_avx2;
#endif
    return dc3_kernel_f32_generic;
}

static dc3_kernel_f64 dc3_select_f64(void)
{
#if DC3_HAVE_X86_DISPATCH
    if (dc3_use_avx2())
        return dc3_kernel_f64_avx2;
#endif
    return dc3_kernel_f64_generic;
}

static const char *dc3_kernel_name(void)
{
#if DC3_HAVE_X86_DISPATCH
    if (dc3_use_avx2())
        return "avx2+fma";
#endif
    return "generic";
}

#endif
