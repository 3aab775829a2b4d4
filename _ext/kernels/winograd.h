/* Winograd transforms for stride-1 layers with 3x3x3 and 5x5x5 kernels.
 *
 * Along one axis, two consecutive outputs of a stride-1 correlation
 *     y[j] = sum_t d[j + t] * g[t]          (j < 2, t < taps, d: P = taps + 1 points)
 * come out of N products of transformed values instead of 2 * taps:
 *     y = AT @ ((G @ g) * (BT @ d))
 *   taps 3: F(2, 3) with the points 0, 1, -1 and infinity: N = 4 (6 multiplies -> 4);
 *   taps 5: F(2, 3) on taps 0-2 beside F(2, 2) (points 0, -1, infinity) on taps 3-4,
 *           N = 4 + 3 = 7 (10 -> 7).  The error stays that of F(2, 3): the single
 *           F(2, 5) with points up to +-2 measured 1.6e-5 of the largest output in
 *           float32, above the 1e-5 the layer promises; this one 4e-7.
 * Nested over the three axes, one tile of 2x2x2 outputs costs N^3 multiply-adds per
 * (channel, filter): 64 instead of 216 for taps 3, 343 instead of 1000 for taps 5.  For
 * one tile the core transforms the P^3 input points (every channel, dc3_wg_in), does N^3
 * products (transformed inputs x channels) @ (channels x filters) with the gemm kernels
 * (G applied to the weights once, when they are packed), and transforms those back
 * (dc3_wg_out).  The matrices below and the G of deconv3d's packing must agree.
 *
 * The transforms only add, subtract and halve, vectorized over the channels (filters),
 * which are contiguous: one template of GCC/Clang vector extensions, built under target
 * attributes for AVX-512 and AVX2 and at the build's baseline (NEON on aarch64); plain
 * loops elsewhere (MSVC).  Zero coefficients are skipped at compile time: the loops
 * over the constant matrices unroll. */

#define DC3_WG_OUTPUTS 2    /* outputs per tile along each axis */

/* Asks for the cache line at p ahead of its use (the next tile's input points) */
#if defined(__GNUC__)
#define dc3_prefetch(p) __builtin_prefetch((p), 0, 3)
#else
#define dc3_prefetch(p) ((void)(p))
#endif

/* taps 3: F(2, 3) */
static const double dc3_wg_bt3[4][4] = {
    {-1, 0, 1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}};
static const double dc3_wg_at3[2][4] = {{1, 1, 1, 0}, {0, 1, -1, 1}};
/* taps 5: F(2, 3) on points 0-3 beside F(2, 2) on points 3-5 */
static const double dc3_wg_bt5[7][6] = {
    {-1, 0, 1, 0, 0, 0}, {0, 1, 1, 0, 0, 0}, {0, -1, 1, 0, 0, 0}, {0, -1, 0, 1, 0, 0},
    {0, 0, 0, 1, 1, 0}, {0, 0, 0, 0, 1, 0}, {0, 0, 0, 0, 1, 1}};
static const double dc3_wg_at5[2][7] = {{1, 1, 1, 0, 1, 1, 0}, {0, 1, -1, 1, 0, -1, 1}};

/* One tile's input points to their transforms:
 *     dst[xi * ld + c] = (BT (x) BT (x) BT) applied to src over the P^3 points, xi < N^3
 * for c < channels; src[(a * P + b) * P + e] points at the channels of input point
 * (a, b, e) of the tile (d, h, w), or at zeros where it falls outside the input. */
typedef void (*dc3_wg_in_f32)(const float *const *src, ptrdiff_t channels, float *dst,
                              ptrdiff_t ld);
typedef void (*dc3_wg_in_f64)(const double *const *src, ptrdiff_t channels, double *dst,
                              ptrdiff_t ld);
/* One tile's products back to its 2x2x2 outputs, plus the bias (NULL: none), through relu
 * if asked (NaN stays NaN, like Keras):
 *     dst[v][f] = (AT (x) AT (x) AT) applied to src[xi * ld + f] over xi, + bias[f]
 * for f < filters and each output v = (a * 2 + b) * 2 + e whose dst[v] is not NULL. */
typedef void (*dc3_wg_out_f32)(const float *src, ptrdiff_t ld, ptrdiff_t filters,
                               const float *bias, float *const *dst, int relu);
typedef void (*dc3_wg_out_f64)(const double *src, ptrdiff_t ld, ptrdiff_t filters,
                               const double *bias, double *const *dst, int relu);

typedef struct dc3_winograd_kernel {
    const char *name;   /* "f32_wg3_avx512f" (the functions' names without "dc3_", "_in") */
    const char *isa;
    int itemsize;
    int taps;           /* 3 or 5 */
    int points;         /* P: input points per tile and axis */
    int transforms;     /* N: transformed values per tile and axis */
    dc3_wg_in_f32 in_f32;
    dc3_wg_in_f64 in_f64;
    dc3_wg_out_f32 out_f32;
    dc3_wg_out_f64 out_f64;
} dc3_winograd_kernel;

/* out[i * os] = sum_k MAT[i][k] * in[k * is], i < ROWS, k < COLS, skipping the zeros */
#define DC3_WG_APPLY(T, V, MAT, ROWS, COLS, in, is, out, os)                                \
    _Pragma("GCC unroll 8") for (int i_ = 0; i_ < (ROWS); i_++)                          \
    {                                                                                    \
        V s_ = (in)[0];                                                                  \
        int any_ = 0;                                                                    \
        _Pragma("GCC unroll 8") for (int k_ = 0; k_ < (COLS); k_++) if (MAT[i_][k_] != 0)\
        {                                                                                \
            V term_ = MAT[i_][k_] == 1 ? (in)[k_ * (is)]                                 \
                      : MAT[i_][k_] == -1 ? -(in)[k_ * (is)]                             \
                      : (in)[k_ * (is)] * (T)MAT[i_][k_];                               \
            s_ = any_ ? s_ + term_ : term_;                                              \
            any_ = 1;                                                                    \
        }                                                                                \
        (out)[i_ * (os)] = s_;                                                           \
    }

/* The input transform of channels [c0, c0 + LANES) as vectors V: along w straight
 * from the input, along h, then along d straight to dst.  u and s sit one vector apart
 * from whole 4 KiB steps, so a load from one never waits on a store to the other. */
#define DC3_WG_IN_BODY(T, V, BT, P, N)                                                   \
    {                                                                                    \
        V u[(P) * (P) * (N) + 1], s[(P) * (N) * (N)];                                    \
        for (int ab = 0; ab < (P) * (P); ab++) {                                         \
            V line[P];                                                                   \
            for (int e = 0; e < (P); e++)                                                \
                memcpy(&line[e], src[ab * (P) + e] + c0, sizeof(V));                     \
            DC3_WG_APPLY(T, V, BT, N, P, line, 1, u + ab * (N), 1)                       \
        }                                                                                \
        for (int a = 0; a < (P); a++)                                                    \
            for (int k = 0; k < (N); k++)                                                \
                DC3_WG_APPLY(T, V, BT, N, P, u + a * (P) * (N) + k, N,                   \
                             s + a * (N) * (N) + k, N)                                   \
        for (int jk = 0; jk < (N) * (N); jk++) {                                         \
            V z[N];                                                                      \
            DC3_WG_APPLY(T, V, BT, N, P, s + jk, (N) * (N), z, 1)                        \
            for (int i = 0; i < (N); i++)                                                \
                memcpy(dst + (i * (N) * (N) + jk) * ld + c0, &z[i], sizeof(V));          \
        }                                                                                \
    }

/* The output transform of filters [f0, f0 + LANES) as vectors V: along w straight from
 * the products, then along h and d */
#define DC3_WG_OUT_BODY(T, V, AT, N)                                                     \
    {                                                                                    \
        V u[(N) * (N) * 2], s[(N) * 4 + 1], z[8], b;                                     \
        for (int ab = 0; ab < (N) * (N); ab++) {                                         \
            V line[N];                                                                   \
            for (int e = 0; e < (N); e++)                                                \
                memcpy(&line[e], src + (ab * (N) + e) * ld + f0, sizeof(V));             \
            DC3_WG_APPLY(T, V, AT, 2, N, line, 1, u + ab * 2, 1)                         \
        }                                                                                \
        for (int a = 0; a < (N); a++)                                                    \
            for (int e = 0; e < 2; e++)                                                  \
                DC3_WG_APPLY(T, V, AT, 2, N, u + a * (N) * 2 + e, 2, s + a * 4 + e, 2)   \
        for (int be = 0; be < 4; be++)                                                   \
            DC3_WG_APPLY(T, V, AT, 2, N, s + be, 4, z + be, 4)                           \
        memset(&b, 0, sizeof b);                                                         \
        if (bias)                                                                        \
            memcpy(&b, bias + f0, sizeof b);                                             \
        for (int v = 0; v < 8; v++) {                                                    \
            V y = z[v] + b;                                                              \
            if (relu) {                                                                  \
                /* zero where y < 0; NaN compares false and stays */                    \
                T lane[sizeof(V) / sizeof(T)];                                           \
                memcpy(lane, &y, sizeof y);                                              \
                for (size_t l = 0; l < sizeof(V) / sizeof(T); l++)                       \
                    lane[l] = lane[l] < 0 ? (T)0 : lane[l];                              \
                memcpy(&y, lane, sizeof y);                                              \
            }                                                                            \
            if (dst[v])                                                                  \
                memcpy(dst[v] + f0, &y, sizeof y);                                       \
        }                                                                                \
    }

/* One (ISA, dtype, taps) set: vector chunks of LANES channels, then one at a time */
#define DC3_WG_FUNCS(NAME_IN, NAME_OUT, ATTR, T, V, LANES, BT, AT, P, N)                 \
    ATTR static void NAME_IN(const T *const *src, ptrdiff_t channels, T *dst, ptrdiff_t ld) \
    {                                                                                    \
        ptrdiff_t c0 = 0;                                                                \
        for (; c0 + (LANES) <= channels; c0 += (LANES))                                  \
            DC3_WG_IN_BODY(T, V, BT, P, N)                                               \
        for (; c0 < channels; c0++)                                                      \
            DC3_WG_IN_BODY(T, T, BT, P, N)                                               \
    }                                                                                    \
    ATTR static void NAME_OUT(const T *src, ptrdiff_t ld, ptrdiff_t filters,             \
                              const T *bias, T *const *dst, int relu)                    \
    {                                                                                    \
        ptrdiff_t f0 = 0;                                                                \
        for (; f0 + (LANES) <= filters; f0 += (LANES))                                   \
            DC3_WG_OUT_BODY(T, V, AT, N)                                                 \
        for (; f0 < filters; f0++)                                                       \
            DC3_WG_OUT_BODY(T, T, AT, N)                                                 \
    }

/* Both taps of one ISA and dtype */
#define DC3_WG_ISA(PREFIX, ATTR, T, V, LANES)                                            \
    DC3_WG_FUNCS(DC3_CAT3(PREFIX, wg3_in_, ISA_SUFFIX), DC3_CAT3(PREFIX, wg3_out_, ISA_SUFFIX), \
                 ATTR, T, V, LANES, dc3_wg_bt3, dc3_wg_at3, 4, 4)                        \
    DC3_WG_FUNCS(DC3_CAT3(PREFIX, wg5_in_, ISA_SUFFIX), DC3_CAT3(PREFIX, wg5_out_, ISA_SUFFIX), \
                 ATTR, T, V, LANES, dc3_wg_bt5, dc3_wg_at5, 6, 7)

#if defined(__GNUC__) && !defined(DC3_PLAIN_LOOPS)
#define ISA_SUFFIX generic
DC3_WG_ISA(dc3_f32_, __attribute__((unused)), float, dc3_gv_f32, DC3_GV_BYTES / 4)
DC3_WG_ISA(dc3_f64_, __attribute__((unused)), double, dc3_gv_f64, DC3_GV_BYTES / 8)
#undef ISA_SUFFIX
#else
/* MSVC has no vector extensions: plain loops, one channel at a time */
#define ISA_SUFFIX generic
DC3_WG_ISA(dc3_f32_, , float, float, 1)
DC3_WG_ISA(dc3_f64_, , double, double, 1)
#undef ISA_SUFFIX
#endif

#if DC3_X86
#define ISA_SUFFIX avx2
DC3_WG_ISA(dc3_f32_, __attribute__((target("avx2,fma"))), float, dc3_lv8_f32, 8)
DC3_WG_ISA(dc3_f64_, __attribute__((target("avx2,fma"))), double, dc3_lv4_f64, 4)
#undef ISA_SUFFIX
#define ISA_SUFFIX avx512f
DC3_WG_ISA(dc3_f32_, __attribute__((target("avx512f,fma"))), float, dc3_lv16_f32, 16)
DC3_WG_ISA(dc3_f64_, __attribute__((target("avx512f,fma"))), double, dc3_lv8_f64, 8)
#undef ISA_SUFFIX
#endif

#define DC3_WG_ENTRY(ISA, TAPS, P, N)                                                    \
    {"f32_wg" #TAPS "_" #ISA, #ISA, 4, TAPS, P, N, dc3_f32_wg##TAPS##_in_##ISA, NULL,      \
     dc3_f32_wg##TAPS##_out_##ISA, NULL},                                                \
    {"f64_wg" #TAPS "_" #ISA, #ISA, 8, TAPS, P, N, NULL, dc3_f64_wg##TAPS##_in_##ISA,      \
     NULL, dc3_f64_wg##TAPS##_out_##ISA}

static const dc3_winograd_kernel dc3_winograd_kernels[] = {
    DC3_WG_ENTRY(generic, 3, 4, 4), DC3_WG_ENTRY(generic, 5, 6, 7),
#if DC3_X86
    DC3_WG_ENTRY(avx2, 3, 4, 4), DC3_WG_ENTRY(avx2, 5, 6, 7),
    DC3_WG_ENTRY(avx512f, 3, 4, 4), DC3_WG_ENTRY(avx512f, 5, 6, 7),
#endif
};

/* The transforms for the dtype and taps among those the CPU (and DECONV3D_KERNEL)
 * allows, or NULL for other taps. */
DC3_API const dc3_winograd_kernel *dc3_find_winograd(int itemsize, int taps)
{
    const dc3_winograd_kernel *best = NULL;
    int best_rank = -1, allowed = dc3_allowed_rank();
    size_t i;
    for (i = 0; i < sizeof dc3_winograd_kernels / sizeof dc3_winograd_kernels[0]; i++) {
        const dc3_winograd_kernel *k = &dc3_winograd_kernels[i];
        int rank = dc3_isa_rank(k->isa);
        if (k->itemsize == itemsize && k->taps == taps && rank <= allowed
                && rank > best_rank) {
            best = k;
            best_rank = rank;
        }
    }
    return best;
}
