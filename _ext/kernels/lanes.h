/* Lanes kernels: input-grid points rather than filters across the vector lanes, for
 * layers with 1-4 filters, where a panel of filters would be mostly padding.
 *
 * The core first copies the input to a channel-major scratch, one row (n, d, h) at a
 * time: channel c of the row at c * ldc, its w points one after the other.  Along w, the
 * points of one output phase read consecutive input points through each tap, so a vector
 * load gives the same tap's input for LW consecutive outputs of the phase.
 *
 * One call computes DC3_LANE_ROWS rows x LW lanes (LW = the kernel's `lanes`) of one
 * phase, for `filters` (1-4) filters:
 *     sums[(r * filters + f) * LW + j] = sum_u sum_c
 *         rows[u * DC3_LANE_ROWS + r][c * ldc + j] * w[(u * channels + c) * filters + f]
 * for r < DC3_LANE_ROWS, f < filters, j < LW, u < ntaps, c < channels.
 *   rows   per tap u and row r, the scratch row that tap reads for that output row, at
 *          the input point of lane 0 (a row of zeros where the tap falls outside the
 *          input); LW values are read at each channel
 *   w      the phase's weights, tap by tap, channel by channel, filter fastest
 *   sums   DC3_LANE_ROWS x filters x LW values
 * The sums stay in registers for the whole reduction; bias, activation and the
 * interleaving into the channels-last output are the core's.
 *
 * One template, written with GCC/Clang vector extensions, instantiated per ISA under a
 * target attribute (AVX-512: two 16-float vectors per row, 24 sums for 4 filters; AVX2
 * and the portable baseline: one vector per row); elsewhere (MSVC) plain loops, one
 * lane.  On aarch64 the portable instantiation is NEON with fused multiply-adds. */

#define DC3_LANE_ROWS 3
#if defined(__GNUC__) || defined(_MSC_VER)
#define DC3_RESTRICT __restrict
#else
#define DC3_RESTRICT
#endif
#define DC3_LANE_MAX_FILTERS 4

typedef void (*dc3_lanes_f32)(ptrdiff_t ntaps, ptrdiff_t channels, ptrdiff_t filters,
                              const float *const *rows, ptrdiff_t ldc, const float *w,
                              float *sums);
typedef void (*dc3_lanes_f64)(ptrdiff_t ntaps, ptrdiff_t channels, ptrdiff_t filters,
                              const double *const *rows, ptrdiff_t ldc, const double *w,
                              double *sums);

/* Sums to outputs, for lanes [j0, j1) of one row: every w phase's F values of a point
 * side by side, phase after phase, through the bias (NULL: none) and relu if asked:
 *     dst[(j * sw + rw) * F + f] = sums[rw * phase_stride + f * lanes + j] + bias[f]
 * (dst at lane 0's first output).  The compiler vectorizes the common (sw, F). */
typedef void (*dc3_lanes_out_f32)(float *dst, const float *sums, ptrdiff_t phase_stride,
                                  ptrdiff_t lanes, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t sw,
                                  ptrdiff_t filters, const float *bias, int relu);
typedef void (*dc3_lanes_out_f64)(double *dst, const double *sums, ptrdiff_t phase_stride,
                                  ptrdiff_t lanes, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t sw,
                                  ptrdiff_t filters, const double *bias, int relu);

typedef struct dc3_lanes_kernel {
    const char *name;   /* "f32_lanes_avx512f" (the function name without "dc3_") */
    const char *isa;
    int itemsize;
    int lanes;          /* LW: points per row and call */
    dc3_lanes_f32 f32;
    dc3_lanes_f64 f64;
    dc3_lanes_out_f32 out_f32;
    dc3_lanes_out_f64 out_f64;
} dc3_lanes_kernel;

/* The body for FF filters: T the element type, V its vector type (or T), L lanes per
 * vector, LV vectors per row.  Loads are memcpy (rows have any alignment). */
#define DC3_LANES_BODY(T, V, L, LV, FF)                                                  \
    {                                                                                    \
        V acc[DC3_LANE_ROWS][LV][FF], zero;                                              \
        memset(&zero, 0, sizeof zero);                                                   \
        for (int r = 0; r < DC3_LANE_ROWS; r++)                                          \
            for (int v = 0; v < LV; v++)                                                 \
                for (int f = 0; f < FF; f++)                                             \
                    acc[r][v][f] = zero;                                                 \
        for (ptrdiff_t u = 0; u < ntaps; u++) {                                          \
            const T *p0 = rows[u * DC3_LANE_ROWS], *p1 = rows[u * DC3_LANE_ROWS + 1];    \
            const T *p2 = rows[u * DC3_LANE_ROWS + 2];                                   \
            const T *wu = w + u * channels * FF;                                         \
            for (ptrdiff_t c = 0; c < channels; c++) {                                   \
                const T *p[DC3_LANE_ROWS] = {p0 + c * ldc, p1 + c * ldc, p2 + c * ldc};  \
                T wv[FF];                                                                \
                for (int f = 0; f < FF; f++)                                             \
                    wv[f] = wu[c * FF + f];                                              \
                for (int r = 0; r < DC3_LANE_ROWS; r++)                                  \
                    for (int v = 0; v < LV; v++) {                                       \
                        V x;                                                             \
                        memcpy(&x, p[r] + v * L, sizeof x);                              \
                        for (int f = 0; f < FF; f++)                                     \
                            acc[r][v][f] += x * wv[f];                                   \
                    }                                                                    \
            }                                                                            \
        }                                                                                \
        for (int r = 0; r < DC3_LANE_ROWS; r++)                                          \
            for (int f = 0; f < FF; f++)                                                 \
                for (int v = 0; v < LV; v++)                                             \
                    memcpy(sums + ((r * FF + f) * LV + v) * L, &acc[r][v][f],            \
                           sizeof acc[r][v][f]);                                         \
    }

#define DC3_LANES_KERNEL(NAME, ATTR, T, V, L, LV)                                        \
    ATTR static void NAME(ptrdiff_t ntaps, ptrdiff_t channels, ptrdiff_t filters,        \
                          const T *const *rows, ptrdiff_t ldc, const T *w, T *sums)      \
    {                                                                                    \
        switch (filters) {                                                               \
        case 1: DC3_LANES_BODY(T, V, L, LV, 1) break;                                    \
        case 2: DC3_LANES_BODY(T, V, L, LV, 2) break;                                    \
        case 3: DC3_LANES_BODY(T, V, L, LV, 3) break;                                    \
        default: DC3_LANES_BODY(T, V, L, LV, 4) break;                                   \
        }                                                                                \
    }


/* The sums-to-outputs step (dc3_lanes_out_f32), with (sw, F) known to the compiler in
 * the common cases. */
#define DC3_LANES_OUT_LOOP(T, SW, FF)                                                    \
    if (relu) {                                                                          \
        for (ptrdiff_t j = j0; j < j1; j++)                                              \
            for (ptrdiff_t rw = 0; rw < (SW); rw++)                                      \
                for (ptrdiff_t f = 0; f < (FF); f++) {                                   \
                    T v = sums[rw * phase_stride + f * lanes + j] + b[f];                \
                    /* zero where v < 0; NaN compares false and stays, like Keras */   \
                    dst[(j * (SW) + rw) * (FF) + f] = v < 0 ? (T)0 : v;                  \
                }                                                                        \
    } else {                                                                             \
        for (ptrdiff_t j = j0; j < j1; j++)                                              \
            for (ptrdiff_t rw = 0; rw < (SW); rw++)                                      \
                for (ptrdiff_t f = 0; f < (FF); f++)                                     \
                    dst[(j * (SW) + rw) * (FF) + f] =                                    \
                        sums[rw * phase_stride + f * lanes + j] + b[f];                  \
    }
#define DC3_LANES_OUT_SW(T, SW)                                                          \
    switch (filters) {                                                                   \
    case 1: DC3_LANES_OUT_LOOP(T, SW, 1) break;                                          \
    case 2: DC3_LANES_OUT_LOOP(T, SW, 2) break;                                          \
    case 3: DC3_LANES_OUT_LOOP(T, SW, 3) break;                                          \
    default: DC3_LANES_OUT_LOOP(T, SW, 4) break;                                         \
    }
#define DC3_LANES_OUT(NAME, ATTR, T)                                                     \
    ATTR static void NAME(T *DC3_RESTRICT dst, const T *DC3_RESTRICT sums,                 \
                          ptrdiff_t phase_stride, ptrdiff_t lanes,                       \
                          ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t sw, ptrdiff_t filters,   \
                          const T *bias, int relu)                                       \
    {                                                                                    \
        T b[DC3_LANE_MAX_FILTERS] = {0};                                                 \
        for (ptrdiff_t f = 0; f < filters && bias; f++)                                  \
            b[f] = bias[f];                                                              \
        if (sw == 1) {                                                                   \
            DC3_LANES_OUT_SW(T, 1)                                                       \
        } else if (sw == 2) {                                                            \
            DC3_LANES_OUT_SW(T, 2)                                                       \
        } else {                                                                         \
            DC3_LANES_OUT_SW(T, sw)                                                      \
        }                                                                                \
    }

#if defined(__GNUC__) && !defined(DC3_PLAIN_LOOPS)
#define DC3_LANES_ATTR_GENERIC __attribute__((unused))
DC3_LANES_KERNEL(dc3_f32_lanes_generic, DC3_LANES_ATTR_GENERIC, float, dc3_gv_f32,
                 DC3_GV_BYTES / 4, 1)
DC3_LANES_KERNEL(dc3_f64_lanes_generic, DC3_LANES_ATTR_GENERIC, double, dc3_gv_f64,
                 DC3_GV_BYTES / 8, 1)
DC3_LANES_OUT(dc3_f32_lanes_out_generic, DC3_LANES_ATTR_GENERIC, float)
DC3_LANES_OUT(dc3_f64_lanes_out_generic, DC3_LANES_ATTR_GENERIC, double)
#define DC3_LANES_GENERIC_F32 (DC3_GV_BYTES / 4)
#define DC3_LANES_GENERIC_F64 (DC3_GV_BYTES / 8)
#else
/* MSVC has no vector extensions: a plain loop, one lane */
#define DC3_LANES_ATTR_GENERIC
DC3_LANES_KERNEL(dc3_f32_lanes_generic, DC3_LANES_ATTR_GENERIC, float, float, 1, 1)
DC3_LANES_KERNEL(dc3_f64_lanes_generic, DC3_LANES_ATTR_GENERIC, double, double, 1, 1)
DC3_LANES_OUT(dc3_f32_lanes_out_generic, DC3_LANES_ATTR_GENERIC, float)
DC3_LANES_OUT(dc3_f64_lanes_out_generic, DC3_LANES_ATTR_GENERIC, double)
#define DC3_LANES_GENERIC_F32 1
#define DC3_LANES_GENERIC_F64 1
#endif

#if DC3_X86
typedef float dc3_lv8_f32 __attribute__((vector_size(32)));
typedef double dc3_lv4_f64 __attribute__((vector_size(32)));
typedef float dc3_lv16_f32 __attribute__((vector_size(64)));
typedef double dc3_lv8_f64 __attribute__((vector_size(64)));
DC3_LANES_KERNEL(dc3_f32_lanes_avx2, __attribute__((target("avx2,fma"))), float,
                 dc3_lv8_f32, 8, 1)
DC3_LANES_KERNEL(dc3_f64_lanes_avx2, __attribute__((target("avx2,fma"))), double,
                 dc3_lv4_f64, 4, 1)
DC3_LANES_KERNEL(dc3_f32_lanes_avx512f, __attribute__((target("avx512f,fma"))), float,
                 dc3_lv16_f32, 16, 2)
DC3_LANES_KERNEL(dc3_f64_lanes_avx512f, __attribute__((target("avx512f,fma"))), double,
                 dc3_lv8_f64, 8, 2)
DC3_LANES_OUT(dc3_f32_lanes_out_avx2, __attribute__((target("avx2,fma"))), float)
DC3_LANES_OUT(dc3_f64_lanes_out_avx2, __attribute__((target("avx2,fma"))), double)
DC3_LANES_OUT(dc3_f32_lanes_out_avx512f, __attribute__((target("avx512f,fma"))), float)
DC3_LANES_OUT(dc3_f64_lanes_out_avx512f, __attribute__((target("avx512f,fma"))), double)
#endif

static const dc3_lanes_kernel dc3_lanes_kernels[] = {
    {"f32_lanes_generic", "generic", 4, DC3_LANES_GENERIC_F32, dc3_f32_lanes_generic, NULL,
     dc3_f32_lanes_out_generic, NULL},
    {"f64_lanes_generic", "generic", 8, DC3_LANES_GENERIC_F64, NULL, dc3_f64_lanes_generic,
     NULL, dc3_f64_lanes_out_generic},
#if DC3_X86
    {"f32_lanes_avx2", "avx2", 4, 8, dc3_f32_lanes_avx2, NULL, dc3_f32_lanes_out_avx2, NULL},
    {"f64_lanes_avx2", "avx2", 8, 4, NULL, dc3_f64_lanes_avx2, NULL, dc3_f64_lanes_out_avx2},
    {"f32_lanes_avx512f", "avx512f", 4, 32, dc3_f32_lanes_avx512f, NULL,
     dc3_f32_lanes_out_avx512f, NULL},
    {"f64_lanes_avx512f", "avx512f", 8, 16, NULL, dc3_f64_lanes_avx512f, NULL,
     dc3_f64_lanes_out_avx512f},
#endif
};

/* The input to the lanes kernels' scratch: one row's (W points x C channels) plane as
 * C runs of W values, `row` values apart:  dst[c * row + w] = src[w * C + c].
 * x86-64: 4 x 4 blocks through SSE2 registers (part of its baseline); elsewhere one
 * value at a time. */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define DC3_LANES_PACK_SSE2 1
#else
#define DC3_LANES_PACK_SSE2 0
#endif

DC3_API void dc3_lanes_pack_f32(const float *src, ptrdiff_t channels, ptrdiff_t points,
                                float *dst, ptrdiff_t row)
{
    ptrdiff_t w = 0, c;
#if DC3_LANES_PACK_SSE2
    for (; w + 4 <= points; w += 4) {
        for (c = 0; c + 4 <= channels; c += 4) {
            __m128 a = _mm_loadu_ps(src + w * channels + c);
            __m128 b = _mm_loadu_ps(src + (w + 1) * channels + c);
            __m128 e = _mm_loadu_ps(src + (w + 2) * channels + c);
            __m128 d = _mm_loadu_ps(src + (w + 3) * channels + c);
            _MM_TRANSPOSE4_PS(a, b, e, d);
            _mm_storeu_ps(dst + c * row + w, a);
            _mm_storeu_ps(dst + (c + 1) * row + w, b);
            _mm_storeu_ps(dst + (c + 2) * row + w, e);
            _mm_storeu_ps(dst + (c + 3) * row + w, d);
        }
        for (; c < channels; c++)
            for (ptrdiff_t k = 0; k < 4; k++)
                dst[c * row + w + k] = src[(w + k) * channels + c];
    }
#endif
    for (; w < points; w++)
        for (c = 0; c < channels; c++)
            dst[c * row + w] = src[w * channels + c];
}

DC3_API void dc3_lanes_pack_f64(const double *src, ptrdiff_t channels, ptrdiff_t points,
                                double *dst, ptrdiff_t row)
{
    ptrdiff_t w = 0, c;
#if DC3_LANES_PACK_SSE2
    for (; w + 2 <= points; w += 2) {
        for (c = 0; c + 2 <= channels; c += 2) {
            __m128d a = _mm_loadu_pd(src + w * channels + c);
            __m128d b = _mm_loadu_pd(src + (w + 1) * channels + c);
            _mm_storeu_pd(dst + c * row + w, _mm_unpacklo_pd(a, b));
            _mm_storeu_pd(dst + (c + 1) * row + w, _mm_unpackhi_pd(a, b));
        }
        for (; c < channels; c++)
            for (ptrdiff_t k = 0; k < 2; k++)
                dst[c * row + w + k] = src[(w + k) * channels + c];
    }
#endif
    for (; w < points; w++)
        for (c = 0; c < channels; c++)
            dst[c * row + w] = src[w * channels + c];
}

/* The lanes kernel for the dtype among those the CPU (and DECONV3D_KERNEL) allows. */
DC3_API const dc3_lanes_kernel *dc3_find_lanes(int itemsize)
{
    const dc3_lanes_kernel *best = NULL;
    int best_rank = -1, allowed = dc3_allowed_rank();
    size_t i;
    for (i = 0; i < sizeof dc3_lanes_kernels / sizeof dc3_lanes_kernels[0]; i++) {
        const dc3_lanes_kernel *k = &dc3_lanes_kernels[i];
        int rank = dc3_isa_rank(k->isa);
        if (k->itemsize == itemsize && rank <= allowed && rank > best_rank) {
            best = k;
            best_rank = rank;
        }
    }
    return best;
}
