/* Register-blocked micro-kernels for deconv3d's core: the contract, the table, and
 * the run-time choice among them.
 *
 * What a kernel computes
 * ----------------------
 * One call computes a tile of MR = DC3_MR output voxels x NR filters:
 *     out[m][f] = bias[f] + sum_u sum_c a[u * MR + m][c] * w[woff[u] + c * NR + f]
 * for m < MR, f < NR, u < ntaps, c < channels.
 *   a      the indirection table: for each tap u and voxel m, a pointer to the channels
 *          that tap reads for that voxel, straight into the input array, or to a row of
 *          zeros where the tap falls outside the input.  Nothing is copied.
 *   w      packed weights: tap u's (channels x NR) panel starts woff[u] values into w.
 *   bias   NR values, or NULL for zeros.
 *   out    MR row pointers, each to NR writable values.
 * The MR x NR sums stay in registers for the whole reduction over the taps given.
 * With `accumulate` set, the tile starts from the values already in out instead of the
 * bias, so that a long reduction can be split into cache-sized blocks.
 * `flags`: DC3_RELU applies relu on the way out (NaN stays NaN, like Keras);
 * DC3_STREAM writes the tile with non-temporal stores wherever a voxel's row of it
 * covers whole 64-byte lines, for outputs too large to stay in cache (a normal store
 * first reads the line it writes).  Streamed stores become visible to other threads
 * after dc3_store_fence().
 *
 * Row kernels
 * -----------
 * A row kernel takes a tile of two runs of DC3_RUN consecutive voxels (two rows of a
 * phase) when every one of the phase's `taps` w taps (2 or 3, `spacing` input voxels
 * apart) reaches all of them.  Voxel m of a run and its tap t read input voxel
 * m + spacing * t of the row, so input voxel e feeds every voxel m = e - spacing * t:
 * it is broadcast once for up to `taps` voxels, with the taps' weights held in
 * registers.  That halves the loads per multiply-add of the gemm kernel, which is what
 * bounds it.  Their table holds one entry per (d, h) tap pair u:
 *   a[u * MR + DC3_RUN * r]  the input read by voxel 0 of run r (r = 0, 1) through w
 *                            tap 0 of pair u, or a zero row long enough for all a run
 *                            reads, (DC3_RUN - 1 + spacing * (taps - 1)) * ldx + channels
 *                            values; the other entries are not read;
 *   ldx                      values between consecutive input voxels of a row;
 *   w + woff[u]              the `taps` (channels x NR) panels of pair u, back to back.
 * So for voxel j of run r (j < DC3_RUN, r < 2), with x = a[u * MR + DC3_RUN * r]:
 *     out[DC3_RUN * r + j][f] = bias[f] + sum_u sum_t sum_c
 *         x[(j + spacing * t) * ldx + c] * w[woff[u] + (t * channels + c) * NR + f]
 *
 * Lanes kernels (lanes.h) turn the layout around for layers with 1-4 filters: input
 * points across the vector lanes, one sum per filter, with their own signature and table.
 * winograd.h holds the Winograd transforms of stride-1 layers with 3^3 and 5^3 kernels,
 * whose products go through the gemm kernels.
 *
 * All kernels of a dtype share one signature (dc3_fn_f32 / dc3_fn_f64); gemm kernels
 * ignore ldx.  They are plain functions named for what they are:
 *     dc3_<dtype>_gemm_<MR>x<NR>_<isa>                     dc3_f32_gemm_12x32_avx512f
 *     dc3_<dtype>_row_<MR>x<NR>_t<taps>s<spacing>_<isa>    dc3_f32_row_12x32_t3s1_avx512f
 * generic.h, x86_avx2.h, x86_avx512.h and neon.h instantiate them from the templates
 * (gemm.template.h, row.template.h, generic_gemm.template.h, neon_row.template.h);
 * dispatch.h lists them
 * in one table and picks, per (dtype, kind, width, taps, spacing), the most capable
 * one the CPU runs.
 *
 * Widths: three per dtype.  NR = one AVX2 vector for layers with few filters (no wasted
 * columns), two AVX2 vectors or one AVX-512 vector, and two AVX-512 vectors where the
 * CPU has them.  A tile is MR = 12 voxels: with AVX-512 all 12 sit in registers at once
 * (24 of the 32 zmm for the widest), so every weight vector loaded feeds twelve
 * multiply-adds; the two-vector AVX2 kernel takes them as two passes of 6.  Every
 * width has a portable kernel, so any panel can be computed anywhere.
 * The AVX2+FMA and AVX-512 versions are compiled for those targets only (a target
 * attribute per function) and chosen at run time, so the extension itself keeps the
 * compiler's portable baseline (no -march=native).
 */
#ifndef DECONV3D_KERNELS_H
#define DECONV3D_KERNELS_H

#include <stddef.h>

#define DC3_MR 12      /* voxels per tile */
#define DC3_RUN 6      /* voxels per run; a row kernel's tile is two runs */
#define DC3_RELU 1
#define DC3_STREAM 2
#define DC3_NR_SMALL_F32 8
#define DC3_NR_F32 16
#define DC3_NR_WIDE_F32 32
#define DC3_NR_SMALL_F64 4
#define DC3_NR_F64 8
#define DC3_NR_WIDE_F64 16

typedef void (*dc3_fn_f32)(ptrdiff_t ntaps, ptrdiff_t channels, const float **a, const float *w,
                           const ptrdiff_t *woff, const float *bias, float **out,
                           int accumulate, int flags, ptrdiff_t ldx);
typedef void (*dc3_fn_f64)(ptrdiff_t ntaps, ptrdiff_t channels, const double **a,
                           const double *w, const ptrdiff_t *woff, const double *bias,
                           double **out, int accumulate, int flags, ptrdiff_t ldx);

enum { DC3_KIND_GEMM = 0, DC3_KIND_ROW = 1 };

typedef struct dc3_kernel {
    const char *name;   /* "f32_gemm_12x32_avx512f" (the function name without "dc3_") */
    const char *isa;    /* "avx512f", "avx2", "neon", "generic" */
    int itemsize;       /* 4 or 8 */
    int kind;           /* DC3_KIND_GEMM or DC3_KIND_ROW */
    int nr;             /* filters per panel */
    int taps;           /* row kernels: w taps (2 or 3); 0 for gemm */
    int spacing;        /* row kernels: input voxels between taps (1 or 2); 0 for gemm */
    dc3_fn_f32 f32;     /* set when itemsize == 4, else NULL */
    dc3_fn_f64 f64;     /* set when itemsize == 8, else NULL */
} dc3_kernel;

/* The API is static (one translation unit includes it); not every user calls all of it. */
#if defined(__GNUC__)
#define DC3_API static __attribute__((unused))
#else
#define DC3_API static
#endif

/* The best kernel this CPU (and DECONV3D_KERNEL) allows, or NULL.  A gemm kernel exists
 * for every nr among the three widths of the dtype (generic fallback); row kernels may
 * be NULL.  taps and spacing only narrow the search for row kernels. */
DC3_API const dc3_kernel *dc3_find_kernel(int itemsize, int kind, int nr, int taps, int spacing);
/* Every kernel compiled in (whether or not this CPU can run it), for listings. */
DC3_API const dc3_kernel *dc3_kernel_table(ptrdiff_t *count);
/* The wide panels have a vector kernel here (else packing avoids them). */
DC3_API int dc3_wide_available(void);
/* "avx512f+avx2+fma", "avx2+fma", "neon" or "generic": the most capable kernels in use. */
DC3_API const char *dc3_isa_name(void);
/* Makes a thread's non-temporal stores visible to the others: each thread that may have
 * streamed calls it once at the end of its share of the work. */
DC3_API void dc3_store_fence(void);

/* Token pasting after expansion, for the kernel and intrinsic names the ISA headers
 * build from their parts (x86_ops.h). */
#define DC3_CAT_(a, b) a##b
#define DC3_CAT(a, b) DC3_CAT_(a, b)
#define DC3_CAT3(a, b, c) DC3_CAT(DC3_CAT(a, b), c)
#define DC3_CAT4(a, b, c, d) DC3_CAT(DC3_CAT3(a, b, c), d)
#define DC3_CAT6(a, b, c, d, e, f) DC3_CAT(DC3_CAT4(a, b, c, d), DC3_CAT(e, f))

/* x86 with a compiler that has target attributes and __builtin_cpu_supports */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define DC3_X86 1
#include <immintrin.h>
#else
#define DC3_X86 0
#endif

/* A voxel's row of the tile covers whole 64-byte cache lines: only then does streaming
 * pay (a partly written line goes to memory as a slow partial write). */
static inline int dc3_whole_lines(const void *p, size_t bytes)
{
    return bytes % 64 == 0 && ((size_t)p & 63) == 0;
}

#include "generic.h"
#include "x86_avx2.h"
#include "x86_avx512.h"
#include "neon.h"
#include "dispatch.h"
#include "lanes.h"
#include "winograd.h"

#endif
