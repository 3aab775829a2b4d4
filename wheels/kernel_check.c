/* Checks every vector kernel compiled for this target (NEON on aarch64, AVX2 and
 * AVX-512 on x86 where the CPU runs them) against the portable kernel of its dtype and
 * panel width and against a naive loop of the contract in _ext/kernels/kernels.h.
 * Built and run by wheels/check_aarch64.sh (cross-compiled, under qemu-aarch64); it
 * needs nothing but a C compiler and the kernel headers:
 *     cc -O2 -I_ext/kernels wheels/kernel_check.c -lm && ./a.out
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
    return bad || kernels == 0 ? 1 : 0;
}
