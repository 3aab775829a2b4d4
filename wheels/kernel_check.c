/* Checks every vector kernel compiled for this target (NEON on aarch64, AVX2 and
 * AVX-512 on x86 where the CPU runs them) against the portable kernel of its dtype and
 * panel width and against a naive loop of the contract in _ext/kernels/kernels.h.
 * Built and run by wheels/check_aarch64.sh (cross-compiled, under qemu-aarch64); it
 * needs nothing but a C compiler and the kernel headers:
 *     cc -O2 -I_ext/kernels wheels/kernel_check.c -lm && ./a.out
 * The lanes kernels (kernels/lanes.h), their output step and the scratch packing are
 * checked against naive loops too, the portable ones included (they are aarch64's), and
 * so are the Winograd transforms (kernels/winograd.h), against sums over their matrices.
 * Exits non-zero on the first kind of mismatch it reports (and reports them all). */

#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { MAX_TAPS = 12, MAX_CHANNELS = 64, MAX_NR = 32, MAX_LDX = MAX_CHANNELS + 3 };
/* input rows: every voxel a tile may read, MR per gemm tap or a run's voxels */
enum { INPUT_VALUES = MAX_TAPS * DC3_MR * MAX_LDX * 2 };

static unsigned seed = 12345u;
static int reported = 0;    /* mismatches printed (the first few only) */

static double random_value(void)
{
    seed = seed * 1103515245u + 12345u;
    return (double)((seed >> 8) & 0xffff) / 32768.0 - 1.0;
}

static void put(void *buffer, int itemsize, ptrdiff_t i, double v)
{
    if (itemsize == 4)
        ((float *)buffer)[i] = (float)v;
    else
        ((double *)buffer)[i] = v;
}

static double get(const void *buffer, int itemsize, ptrdiff_t i)
{
    return itemsize == 4 ? ((const float *)buffer)[i] : ((const double *)buffer)[i];
}

/* what a tile computes, in the gemm form of the contract: tap g of voxel m reads
 * input + in[g][m] (or the zero row where in[g][m] < 0) through the panel at woff[g] */
typedef struct problem {
    const dc3_kernel *kernel;
    ptrdiff_t channels, gemm_taps;
    ptrdiff_t in[MAX_TAPS * 3][DC3_MR];
    ptrdiff_t woff[MAX_TAPS * 3];
    int accumulate, flags, has_bias;
} problem;

typedef struct buffers {
    void *input, *zeros, *weights, *bias, *start, *out;
} buffers;

static void call(const dc3_kernel *k, ptrdiff_t ntaps, ptrdiff_t channels, const void **a,
                 const void *w, const ptrdiff_t *woff, const void *bias, void *out,
                 int accumulate, int flags, ptrdiff_t ldx)
{
    void *rows[DC3_MR];
    for (int m = 0; m < DC3_MR; m++)
        rows[m] = (char *)out + (size_t)m * k->nr * k->itemsize;
    if (k->itemsize == 4)
        k->f32(ntaps, channels, (const float **)a, w, woff, bias, (float **)rows, accumulate,
               flags, ldx);
    else
        k->f64(ntaps, channels, (const double **)a, w, woff, bias, (double **)rows,
               accumulate, flags, ldx);
}

static const void *input_row(const problem *p, const buffers *b, ptrdiff_t offset)
{
    if (offset < 0)
        return b->zeros;
    return (const char *)b->input + offset * p->kernel->itemsize;
}

/* the naive loop: each sum in double, and the sum of the terms' magnitudes for the
 * tolerance */
static void naive(const problem *p, const buffers *b, double *sum, double *size)
{
    int isz = p->kernel->itemsize, nr = p->kernel->nr;
    for (int m = 0; m < DC3_MR; m++)
        for (int f = 0; f < nr; f++) {
            double s = p->accumulate ? get(b->start, isz, m * nr + f)
                       : p->has_bias ? get(b->bias, isz, f) : 0.0;
            double mag = fabs(s);
            for (ptrdiff_t g = 0; g < p->gemm_taps; g++) {
                if (p->in[g][m] < 0)
                    continue;
                for (ptrdiff_t c = 0; c < p->channels; c++) {
                    double t = get(b->input, isz, p->in[g][m] + c)
                               * get(b->weights, isz, p->woff[g] + c * nr + f);
                    s += t;
                    mag += fabs(t);
                }
            }
            if ((p->flags & DC3_RELU) && s < 0)
                s = 0.0;
            sum[m * nr + f] = s;
            size[m * nr + f] = mag;
        }
}

static void reset_out(const problem *p, const buffers *b)
{
    memcpy(b->out, b->start, (size_t)DC3_MR * p->kernel->nr * p->kernel->itemsize);
}

/* how many values of the tile differ from the expected sums by more than rounding */
static int mismatches(const problem *p, const buffers *b, const double *sum,
                      const double *size, const char *against)
{
    int isz = p->kernel->itemsize, nr = p->kernel->nr, bad = 0;
    double tolerance = isz == 4 ? 1e-5 : 1e-13;
    for (int i = 0; i < DC3_MR * nr; i++) {
        double got = get(b->out, isz, i);
        if (fabs(got - sum[i]) > tolerance * (size[i] + 1.0)) {
            if (bad == 0 && reported++ < 10)
                fprintf(stderr, "%s: channels %d taps %d acc %d flags %d bias %d: value %d "
                        "is %.17g, %s gives %.17g\n", p->kernel->name, (int)p->channels,
                        (int)p->gemm_taps, p->accumulate, p->flags, p->has_bias, i, got,
                        against, sum[i]);
            bad++;
        }
    }
    return bad;
}

/* the portable kernel's result for the problem, as doubles */
static void portable(const problem *p, const buffers *b, const dc3_kernel *generic,
                     double *sum)
{
    const void *table[MAX_TAPS * 3 * DC3_MR];
    for (ptrdiff_t g = 0; g < p->gemm_taps; g++)
        for (int m = 0; m < DC3_MR; m++)
            table[g * DC3_MR + m] = input_row(p, b, p->in[g][m]);
    reset_out(p, b);
    call(generic, p->gemm_taps, p->channels, table, b->weights, p->woff,
         p->has_bias ? b->bias : NULL, b->out, p->accumulate, p->flags, 0);
    for (int i = 0; i < DC3_MR * p->kernel->nr; i++)
        sum[i] = get(b->out, p->kernel->itemsize, i);
}

/* the kernel under test against the naive loop and the portable kernel */
static int check(const problem *p, const buffers *b, const dc3_kernel *generic,
                 const void **table, const ptrdiff_t *woff, ptrdiff_t ntaps, ptrdiff_t ldx)
{
    double sum[DC3_MR * MAX_NR], size[DC3_MR * MAX_NR], other[DC3_MR * MAX_NR];
    int bad;
    naive(p, b, sum, size);
    portable(p, b, generic, other);
    reset_out(p, b);
    call(p->kernel, ntaps, p->channels, table, b->weights, woff,
         p->has_bias ? b->bias : NULL, b->out, p->accumulate, p->flags, ldx);
    bad = mismatches(p, b, sum, size, "the naive loop");
    return bad + mismatches(p, b, other, size, generic->name);
}

static void fill(const problem *p, const buffers *b, ptrdiff_t weight_values)
{
    int isz = p->kernel->itemsize;
    for (ptrdiff_t i = 0; i < INPUT_VALUES; i++)
        put(b->input, isz, i, random_value());
    for (ptrdiff_t i = 0; i < weight_values; i++)
        put(b->weights, isz, i, random_value());
    for (ptrdiff_t i = 0; i < MAX_NR; i++)
        put(b->bias, isz, i, random_value());
    for (ptrdiff_t i = 0; i < DC3_MR * MAX_NR; i++)
        put(b->start, isz, i, random_value());
}

/* a gemm tile: ntaps taps, each voxel's input anywhere in the buffer, some voxels
 * (a partial tile's missing ones, or taps outside the input) reading the zero row */
static int check_gemm(problem *p, const buffers *b, const dc3_kernel *generic,
                      ptrdiff_t ntaps, int missing)
{
    const void *table[MAX_TAPS * DC3_MR];
    p->gemm_taps = ntaps;
    for (ptrdiff_t g = 0; g < ntaps; g++) {
        p->woff[g] = (ntaps - 1 - g) * p->channels * p->kernel->nr;  /* any order */
        for (int m = 0; m < DC3_MR; m++) {
            int zero = m >= DC3_MR - missing || (missing && (g + m) % 5 == 0);
            p->in[g][m] = zero ? -1 : (g * DC3_MR + m) * MAX_LDX + (m % 3);
            table[g * DC3_MR + m] = input_row(p, b, p->in[g][m]);
        }
    }
    fill(p, b, ntaps * p->channels * p->kernel->nr);
    return check(p, b, generic, table, p->woff, ntaps, 0);
}

/* a row tile: ntaps (d, h) tap pairs, each two runs of DC3_RUN voxels reading a row
 * ldx values per voxel; a run whose row is missing reads the zero row */
static int check_row(problem *p, const buffers *b, const dc3_kernel *generic,
                     ptrdiff_t ntaps, ptrdiff_t ldx, int missing)
{
    const void *table[MAX_TAPS * DC3_MR];
    ptrdiff_t woff[MAX_TAPS];
    int taps = p->kernel->taps, spacing = p->kernel->spacing, nr = p->kernel->nr;
    ptrdiff_t row_values = (DC3_RUN + spacing * (taps - 1)) * ldx;
    p->gemm_taps = ntaps * taps;
    for (ptrdiff_t u = 0; u < ntaps; u++) {
        woff[u] = u * taps * p->channels * nr;
        for (int m = 0; m < DC3_MR; m++)
            table[u * DC3_MR + m] = NULL;  /* not read */
        for (int r = 0; r < 2; r++) {
            int zero = missing && (u + r) % 2 == 1;
            ptrdiff_t start = (u * 2 + r) * row_values;
            table[u * DC3_MR + DC3_RUN * r] = input_row(p, b, zero ? -1 : start);
            for (int t = 0; t < taps; t++) {
                ptrdiff_t g = u * taps + t;
                p->woff[g] = woff[u] + t * p->channels * nr;
                for (int j = 0; j < DC3_RUN; j++)
                    p->in[g][DC3_RUN * r + j] = zero ? -1 : start + (j + spacing * t) * ldx;
            }
        }
    }
    fill(p, b, ntaps * taps * p->channels * nr);
    return check(p, b, generic, table, woff, ntaps, ldx);
}

static const dc3_kernel *portable_kernel(const dc3_kernel *k)
{
    ptrdiff_t count;
    const dc3_kernel *table = dc3_kernel_table(&count);
    for (ptrdiff_t i = 0; i < count; i++)
        if (table[i].itemsize == k->itemsize && table[i].nr == k->nr
                && table[i].kind == DC3_KIND_GEMM && strcmp(table[i].isa, "generic") == 0)
            return &table[i];
    return NULL;
}


/* One lanes kernel call (kernels/lanes.h) and its output step against naive loops in
 * double: `ntaps` taps, each row reading LW values per channel from anywhere in a
 * buffer `ldc` values per channel apart; returns the mismatching values. */
static int check_lanes(const dc3_lanes_kernel *k, ptrdiff_t ntaps, ptrdiff_t channels,
                       ptrdiff_t filters, ptrdiff_t sw, int relu)
{
    enum { ROWS = DC3_LANE_ROWS, MAX_LW = 32, MAX_LANE_TAPS = 5, LDC = MAX_LW + 7 };
    static double input[MAX_LANE_TAPS * ROWS][MAX_CHANNELS * LDC];
    static unsigned char raw[MAX_LANE_TAPS * ROWS * MAX_CHANNELS * LDC * 8];
    static unsigned char weights[MAX_LANE_TAPS * MAX_CHANNELS * 4 * 8];
    static unsigned char sums[4 * ROWS * 4 * MAX_LW * 8], out[4 * MAX_LW * 4 * 8];
    static unsigned char bias[4 * 8];
    const void *rows[MAX_LANE_TAPS * ROWS];
    ptrdiff_t lw = k->lanes, u, r, c, f, j, rw, bad = 0;
    int is = k->itemsize;
    for (u = 0; u < ntaps * ROWS; u++) {
        ptrdiff_t shift = u % 5;    /* rows start anywhere */
        for (c = 0; c < channels * LDC; c++) {
            input[u][c] = random_value();
            put(raw, is, u * MAX_CHANNELS * LDC + c, input[u][c]);
        }
        rows[u] = raw + (size_t)(u * MAX_CHANNELS * LDC + shift) * is;
    }
    for (u = 0; u < ntaps * channels * filters; u++)
        put(weights, is, u, random_value());
    for (f = 0; f < filters; f++)
        put(bias, is, f, random_value());
    /* every w phase's sums, then out */
    for (rw = 0; rw < sw; rw++) {
        if (is == 4)
            k->f32(ntaps, channels, filters, (const float *const *)rows, LDC,
                   (const float *)weights, (float *)sums + rw * ROWS * filters * lw);
        else
            k->f64(ntaps, channels, filters, (const double *const *)rows, LDC,
                   (const double *)weights, (double *)sums + rw * ROWS * filters * lw);
    }
    for (r = 0; r < ROWS; r++)
        for (f = 0; f < filters; f++)
            for (j = 0; j < lw; j++) {
                double expected = 0, size = 0, got;
                for (u = 0; u < ntaps; u++)
                    for (c = 0; c < channels; c++) {
                        double term = input[u * ROWS + r][c * LDC + j + (u * ROWS + r) % 5]
                                      * get(weights, is, (u * channels + c) * filters + f);
                        expected += term;
                        size += fabs(term);
                    }
                got = get(sums, is, (r * filters + f) * lw + j);
                if (fabs(got - expected) > (is == 4 ? 1e-5 : 1e-13) * (size + 1))
                    bad++;
            }
    /* row 1 of the sums out, lanes [1, lw - 1) */
    if (is == 4)
        k->out_f32((float *)out, (const float *)sums + filters * lw, ROWS * filters * lw, lw,
                   1, lw - 1, sw, filters, (const float *)bias, relu);
    else
        k->out_f64((double *)out, (const double *)sums + filters * lw, ROWS * filters * lw,
                   lw, 1, lw - 1, sw, filters, (const double *)bias, relu);
    for (j = 1; j < lw - 1; j++)
        for (rw = 0; rw < sw; rw++)
            for (f = 0; f < filters; f++) {
                double v = get(sums, is, rw * ROWS * filters * lw + (filters + f) * lw + j)
                           + get(bias, is, f);
                if (relu && v < 0)
                    v = 0;
                if (get(out, is, (j * sw + rw) * filters + f) != (is == 4 ? (double)(float)v : v))
                    bad++;
            }
    return (int)bad;
}

/* the scratch packing: a (points x channels) plane to channel-major runs */
static int check_pack(int itemsize, ptrdiff_t points, ptrdiff_t channels, ptrdiff_t row)
{
    static unsigned char src[40 * 40 * 8], dst[40 * 48 * 8];
    ptrdiff_t i, w, c, bad = 0;
    for (i = 0; i < points * channels; i++)
        put(src, itemsize, i, random_value());
    if (itemsize == 4)
        dc3_lanes_pack_f32((const float *)src, channels, points, (float *)dst, row);
    else
        dc3_lanes_pack_f64((const double *)src, channels, points, (double *)dst, row);
    for (w = 0; w < points; w++)
        for (c = 0; c < channels; c++)
            bad += get(dst, itemsize, c * row + w) != get(src, itemsize, w * channels + c);
    return (int)bad;
}

/* One tile through a Winograd kernel's input and output transforms, against naive sums
 * over the matrices of kernels/winograd.h; channels (and filters) that leave a tail. */
static int check_winograd(const dc3_winograd_kernel *k, ptrdiff_t channels, int relu,
                          int with_bias)
{
    enum { MAX_P = 6, MAX_N = 7, MAX_C = 40 };
    static double points[MAX_P * MAX_P * MAX_P * MAX_C], bias[MAX_C];
    static unsigned char src[MAX_P * MAX_P * MAX_P * MAX_C * 8];
    static unsigned char dst[MAX_N * MAX_N * MAX_N * (MAX_C + 1) * 8];
    static unsigned char out[8 * MAX_C * 8], bias_t[MAX_C * 8];
    const void *rows[MAX_P * MAX_P * MAX_P];
    void *voxels[8];
    ptrdiff_t P = k->points, N = k->transforms, is = k->itemsize, i, j, l, a, b, e, c;
    ptrdiff_t bad = 0, ld = channels + 1;
    const double *bt = k->taps == 3 ? &dc3_wg_bt3[0][0] : &dc3_wg_bt5[0][0];
    const double *at = k->taps == 3 ? &dc3_wg_at3[0][0] : &dc3_wg_at5[0][0];
    for (i = 0; i < P * P * P * channels; i++) {
        points[i] = random_value();
        put(src, (int)is, i, points[i]);
        points[i] = get(src, (int)is, i);
    }
    for (i = 0; i < P * P * P; i++)
        rows[i] = src + i * channels * is;
    if (is == 4)
        k->in_f32((const float *const *)rows, channels, (float *)dst, ld);
    else
        k->in_f64((const double *const *)rows, channels, (double *)dst, ld);
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++)
            for (l = 0; l < N; l++)
                for (c = 0; c < channels; c++) {
                    double sum = 0;
                    for (a = 0; a < P; a++)
                        for (b = 0; b < P; b++)
                            for (e = 0; e < P; e++)
                                sum += bt[i * P + a] * bt[j * P + b] * bt[l * P + e]
                                       * points[((a * P + b) * P + e) * channels + c];
                    if (fabs(get(dst, (int)is, ((i * N + j) * N + l) * ld + c) - sum)
                            > (is == 4 ? 1e-5 : 1e-13) * 64)
                        bad++;
                }
    /* the transformed values back, as if they were products */
    for (c = 0; c < channels; c++) {
        bias[c] = with_bias ? random_value() : 0;
        put(bias_t, (int)is, c, bias[c]);
    }
    for (i = 0; i < 8; i++)
        voxels[i] = i == 5 ? NULL : out + i * channels * is;
    memset(out, 0, sizeof out);
    if (is == 4)
        k->out_f32((const float *)dst, ld, channels, with_bias ? (const float *)bias_t : NULL,
                   (float *const *)voxels, relu);
    else
        k->out_f64((const double *)dst, ld, channels, with_bias ? (const double *)bias_t : NULL,
                   (double *const *)voxels, relu);
    for (a = 0; a < 2; a++)
        for (b = 0; b < 2; b++)
            for (e = 0; e < 2; e++)
                for (c = 0; c < channels; c++) {
                    ptrdiff_t v = (a * 2 + b) * 2 + e;
                    double sum = bias[c];
                    for (i = 0; i < N; i++)
                        for (j = 0; j < N; j++)
                            for (l = 0; l < N; l++)
                                sum += at[a * N + i] * at[b * N + j] * at[e * N + l]
                                       * get(dst, (int)is, ((i * N + j) * N + l) * ld + c);
                    if (relu && sum < 0)
                        sum = 0;
                    if (v == 5)
                        bad += get(out, (int)is, v * channels + c) != 0;   /* skipped */
                    else if (fabs(get(out, (int)is, v * channels + c) - sum)
                             > (is == 4 ? 1e-5 : 1e-13) * 64)
                        bad++;
                }
    return (int)bad;
}

/* whether this CPU runs the lanes kernel */
static int lanes_run_here(const dc3_lanes_kernel *k)
{
    const dc3_lanes_kernel *best = dc3_find_lanes(k->itemsize);
    return best != NULL && dc3_isa_rank(best->isa) >= dc3_isa_rank(k->isa);
}

/* whether this CPU runs the kernel (x86 builds list kernels for ISAs it may lack) */
static int runs_here(const dc3_kernel *k)
{
    const dc3_kernel *best = dc3_find_kernel(k->itemsize, k->kind, k->nr, k->taps, k->spacing);
    return best != NULL && dc3_isa_rank(best->isa) >= dc3_isa_rank(k->isa);
}

int main(void)
{
    static const ptrdiff_t channel_counts[] = {1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64};
    ptrdiff_t count, cases = 0, kernels = 0;
    int bad = 0;
    const dc3_kernel *table = dc3_kernel_table(&count);
    buffers b;
    size_t bytes = (size_t)INPUT_VALUES * sizeof(double);
    b.input = malloc(bytes);
    b.zeros = calloc((size_t)MAX_LDX * (DC3_RUN + 4), sizeof(double));
    b.weights = malloc((size_t)MAX_TAPS * 3 * MAX_CHANNELS * MAX_NR * sizeof(double));
    b.bias = malloc(MAX_NR * sizeof(double));
    b.start = malloc((size_t)DC3_MR * MAX_NR * sizeof(double));
    b.out = aligned_alloc(64, (size_t)DC3_MR * MAX_NR * sizeof(double));
    if (!b.input || !b.zeros || !b.weights || !b.bias || !b.start || !b.out)
        return 2;
    for (ptrdiff_t i = 0; i < count; i++) {
        const dc3_kernel *k = &table[i], *generic = portable_kernel(k);
        if (strcmp(k->isa, "generic") == 0 || !runs_here(k))
            continue;
        if (generic == NULL) {
            fprintf(stderr, "%s: no portable kernel of its width\n", k->name);
            return 1;
        }
        kernels++;
        for (size_t ci = 0; ci < sizeof channel_counts / sizeof channel_counts[0]; ci++)
            for (ptrdiff_t ntaps = 1; ntaps <= 4; ntaps++)
                for (int variant = 0; variant < 16; variant++) {
                    problem p = {k, channel_counts[ci], 0, {{0}}, {0}, variant & 1,
                                 (variant & 2 ? DC3_RELU : 0) | (variant & 4 ? DC3_STREAM : 0),
                                 (variant & 8) != 0};
                    int missing = variant % 3 == 0 ? 0 : variant % 5 + 1;
                    if (k->kind == DC3_KIND_GEMM) {
                        bad += check_gemm(&p, &b, generic, ntaps * 3, missing) != 0;
                    } else {
                        ptrdiff_t ldx = p.channels + (variant & 1 ? 3 : 0);
                        bad += check_row(&p, &b, generic, ntaps, ldx, missing) != 0;
                    }
                    cases++;
                }
    }
    printf("%s: %d kernels, %d cases, %d mismatching\n", dc3_isa_name(), (int)kernels,
           (int)cases, bad);
    {
        int lanes_kernels = 0, lanes_cases = 0, lanes_bad = 0;
        static const ptrdiff_t lane_channels[] = {1, 3, 8, 17, 33};
        for (size_t i = 0; i < sizeof dc3_lanes_kernels / sizeof dc3_lanes_kernels[0]; i++) {
            const dc3_lanes_kernel *k = &dc3_lanes_kernels[i];
            if (!lanes_run_here(k))
                continue;
            lanes_kernels++;
            for (size_t ci = 0; ci < sizeof lane_channels / sizeof lane_channels[0]; ci++)
                for (ptrdiff_t ntaps = 0; ntaps <= 5; ntaps++)
                    for (ptrdiff_t filters = 1; filters <= 4; filters++)
                        for (ptrdiff_t sw = 1; sw <= 3; sw++) {
                            int wrong = check_lanes(k, ntaps, lane_channels[ci], filters, sw,
                                                    (int)((ntaps + filters) & 1));
                            lanes_bad += wrong != 0;
                            if (wrong && reported++ < 5)
                                fprintf(stderr, "%s: %d of channels %d, taps %d, filters %d, "
                                        "sw %d\n", k->name, wrong, (int)lane_channels[ci],
                                        (int)ntaps, (int)filters, (int)sw);
                            lanes_cases++;
                        }
        }
        for (int itemsize = 4; itemsize <= 8; itemsize += 4)
            for (ptrdiff_t points = 1; points <= 37; points += 6)
                for (ptrdiff_t channels = 1; channels <= 37; channels += 4) {
                    lanes_bad += check_pack(itemsize, points, channels, points + 5) != 0;
                    lanes_cases++;
                }
        printf("%s: %d lanes kernels, %d lanes and packing cases, %d mismatching\n",
               dc3_isa_name(), lanes_kernels, lanes_cases, lanes_bad);
        bad += lanes_bad;
        if (lanes_kernels == 0)
            return 1;
    }
    {
        int wg_kernels = 0, wg_cases = 0, wg_bad = 0;
        static const ptrdiff_t wg_channels[] = {1, 3, 4, 8, 17, 33, 40};
        for (size_t i = 0; i < sizeof dc3_winograd_kernels / sizeof dc3_winograd_kernels[0]; i++) {
            const dc3_winograd_kernel *k = &dc3_winograd_kernels[i];
            const dc3_winograd_kernel *best = dc3_find_winograd(k->itemsize, k->taps);
            if (best == NULL || dc3_isa_rank(best->isa) < dc3_isa_rank(k->isa))
                continue;
            wg_kernels++;
            for (size_t ci = 0; ci < sizeof wg_channels / sizeof wg_channels[0]; ci++)
                for (int variant = 0; variant < 4; variant++) {
                    int wrong = check_winograd(k, wg_channels[ci], variant & 1, variant >> 1);
                    wg_bad += wrong != 0;
                    if (wrong && reported++ < 5)
                        fprintf(stderr, "%s: %d of channels %d, variant %d\n", k->name, wrong,
                                (int)wg_channels[ci], variant);
                    wg_cases++;
                }
        }
        printf("%s: %d Winograd transforms, %d cases, %d mismatching\n", dc3_isa_name(),
               wg_kernels, wg_cases, wg_bad);
        bad += wg_bad;
        if (wg_kernels == 0)
            return 1;
    }
    return bad || kernels == 0 ? 1 : 0;
}
