/* The table of every kernel compiled in, and the run-time choice among them. */

#include <stdlib.h>
#include <string.h>

/* One table row; its name is the function's without "dc3_". */
#define DC3_F32(fn, isa, nr, kind, taps, sp) {#fn + sizeof "dc3_" - 1, isa, 4, kind, nr, taps, sp, fn, NULL}
#define DC3_F64(fn, isa, nr, kind, taps, sp) {#fn + sizeof "dc3_" - 1, isa, 8, kind, nr, taps, sp, NULL, fn}

static const dc3_kernel dc3_kernels[] = {
    DC3_F32(dc3_f32_gemm_12x8_generic, "generic", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_gemm_12x16_generic, "generic", 16, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_gemm_12x32_generic, "generic", 32, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x4_generic, "generic", 4, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x8_generic, "generic", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x16_generic, "generic", 16, DC3_KIND_GEMM, 0, 0),
#if DC3_X86
    DC3_F32(dc3_f32_gemm_12x8_avx2, "avx2", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_gemm_12x16_avx2, "avx2", 16, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x4_avx2, "avx2", 4, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x8_avx2, "avx2", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_row_12x8_t2s1_avx2, "avx2", 8, DC3_KIND_ROW, 2, 1),
    DC3_F32(dc3_f32_row_12x8_t2s2_avx2, "avx2", 8, DC3_KIND_ROW, 2, 2),
    DC3_F32(dc3_f32_row_12x8_t3s1_avx2, "avx2", 8, DC3_KIND_ROW, 3, 1),
    DC3_F32(dc3_f32_row_12x8_t3s2_avx2, "avx2", 8, DC3_KIND_ROW, 3, 2),
    DC3_F64(dc3_f64_row_12x4_t2s1_avx2, "avx2", 4, DC3_KIND_ROW, 2, 1),
    DC3_F64(dc3_f64_row_12x4_t2s2_avx2, "avx2", 4, DC3_KIND_ROW, 2, 2),
    DC3_F64(dc3_f64_row_12x4_t3s1_avx2, "avx2", 4, DC3_KIND_ROW, 3, 1),
    DC3_F64(dc3_f64_row_12x4_t3s2_avx2, "avx2", 4, DC3_KIND_ROW, 3, 2),
    DC3_F32(dc3_f32_gemm_12x16_avx512f, "avx512f", 16, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_gemm_12x32_avx512f, "avx512f", 32, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x8_avx512f, "avx512f", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x16_avx512f, "avx512f", 16, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_row_12x16_t2s1_avx512f, "avx512f", 16, DC3_KIND_ROW, 2, 1),
    DC3_F32(dc3_f32_row_12x16_t2s2_avx512f, "avx512f", 16, DC3_KIND_ROW, 2, 2),
    DC3_F32(dc3_f32_row_12x16_t3s1_avx512f, "avx512f", 16, DC3_KIND_ROW, 3, 1),
    DC3_F32(dc3_f32_row_12x16_t3s2_avx512f, "avx512f", 16, DC3_KIND_ROW, 3, 2),
    DC3_F32(dc3_f32_row_12x32_t2s1_avx512f, "avx512f", 32, DC3_KIND_ROW, 2, 1),
    DC3_F32(dc3_f32_row_12x32_t2s2_avx512f, "avx512f", 32, DC3_KIND_ROW, 2, 2),
    DC3_F32(dc3_f32_row_12x32_t3s1_avx512f, "avx512f", 32, DC3_KIND_ROW, 3, 1),
    DC3_F32(dc3_f32_row_12x32_t3s2_avx512f, "avx512f", 32, DC3_KIND_ROW, 3, 2),
    DC3_F64(dc3_f64_row_12x8_t2s1_avx512f, "avx512f", 8, DC3_KIND_ROW, 2, 1),
    DC3_F64(dc3_f64_row_12x8_t2s2_avx512f, "avx512f", 8, DC3_KIND_ROW, 2, 2),
    DC3_F64(dc3_f64_row_12x8_t3s1_avx512f, "avx512f", 8, DC3_KIND_ROW, 3, 1),
    DC3_F64(dc3_f64_row_12x8_t3s2_avx512f, "avx512f", 8, DC3_KIND_ROW, 3, 2),
    DC3_F64(dc3_f64_row_12x16_t2s1_avx512f, "avx512f", 16, DC3_KIND_ROW, 2, 1),
    DC3_F64(dc3_f64_row_12x16_t2s2_avx512f, "avx512f", 16, DC3_KIND_ROW, 2, 2),
    DC3_F64(dc3_f64_row_12x16_t3s1_avx512f, "avx512f", 16, DC3_KIND_ROW, 3, 1),
    DC3_F64(dc3_f64_row_12x16_t3s2_avx512f, "avx512f", 16, DC3_KIND_ROW, 3, 2),
#endif
#if DC3_NEON
    DC3_F32(dc3_f32_gemm_12x8_neon, "neon", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_gemm_12x16_neon, "neon", 16, DC3_KIND_GEMM, 0, 0),
    DC3_F32(dc3_f32_row_12x8_t2s1_neon, "neon", 8, DC3_KIND_ROW, 2, 1),
    DC3_F32(dc3_f32_row_12x8_t2s2_neon, "neon", 8, DC3_KIND_ROW, 2, 2),
    DC3_F32(dc3_f32_row_12x8_t3s1_neon, "neon", 8, DC3_KIND_ROW, 3, 1),
    DC3_F32(dc3_f32_row_12x8_t3s2_neon, "neon", 8, DC3_KIND_ROW, 3, 2),
    DC3_F32(dc3_f32_row_12x16_t2s1_neon, "neon", 16, DC3_KIND_ROW, 2, 1),
    DC3_F32(dc3_f32_row_12x16_t2s2_neon, "neon", 16, DC3_KIND_ROW, 2, 2),
    DC3_F32(dc3_f32_row_12x16_t3s1_neon, "neon", 16, DC3_KIND_ROW, 3, 1),
    DC3_F32(dc3_f32_row_12x16_t3s2_neon, "neon", 16, DC3_KIND_ROW, 3, 2),
    DC3_F64(dc3_f64_gemm_12x4_neon, "neon", 4, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_gemm_12x8_neon, "neon", 8, DC3_KIND_GEMM, 0, 0),
    DC3_F64(dc3_f64_row_12x4_t2s1_neon, "neon", 4, DC3_KIND_ROW, 2, 1),
    DC3_F64(dc3_f64_row_12x4_t2s2_neon, "neon", 4, DC3_KIND_ROW, 2, 2),
    DC3_F64(dc3_f64_row_12x4_t3s1_neon, "neon", 4, DC3_KIND_ROW, 3, 1),
    DC3_F64(dc3_f64_row_12x4_t3s2_neon, "neon", 4, DC3_KIND_ROW, 3, 2),
    DC3_F64(dc3_f64_row_12x8_t2s1_neon, "neon", 8, DC3_KIND_ROW, 2, 1),
    DC3_F64(dc3_f64_row_12x8_t2s2_neon, "neon", 8, DC3_KIND_ROW, 2, 2),
    DC3_F64(dc3_f64_row_12x8_t3s1_neon, "neon", 8, DC3_KIND_ROW, 3, 1),
    DC3_F64(dc3_f64_row_12x8_t3s2_neon, "neon", 8, DC3_KIND_ROW, 3, 2),
#endif
};

#undef DC3_F32
#undef DC3_F64

/* ISAs by capability: each one's kernels run wherever the next one's do.  NEON is
 * aarch64's, never compiled beside the x86 ones: it ranks above the portable kernels. */
enum { DC3_ISA_GENERIC = 0, DC3_ISA_AVX2 = 1, DC3_ISA_AVX512F = 2, DC3_ISA_NEON = 1 };

static int dc3_isa_rank(const char *isa)
{
    if (strcmp(isa, "neon") == 0)
        return DC3_ISA_NEON;
    if (strcmp(isa, "avx512f") == 0)
        return DC3_ISA_AVX512F;
    return strcmp(isa, "avx2") == 0 ? DC3_ISA_AVX2 : DC3_ISA_GENERIC;
}

/* The most capable ISA this CPU runs, lowered by DECONV3D_KERNEL=generic (portable C
 * only) or =avx2 (no AVX-512), which test the other paths on a machine that has them
 * all.  AVX-512 also asks for AVX2+FMA so that its narrow panels have kernels too. */
static int dc3_detect_rank(void)
{
    const char *choice = getenv("DECONV3D_KERNEL");
    int rank = DC3_ISA_GENERIC;
#if DC3_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        rank = DC3_ISA_AVX2;
        if (__builtin_cpu_supports("avx512f"))
            rank = DC3_ISA_AVX512F;
    }
#endif
#if DC3_NEON
    rank = DC3_ISA_NEON;    /* part of every aarch64 CPU */
#endif
    if (choice && strcmp(choice, "generic") == 0)
        rank = DC3_ISA_GENERIC;
    else if (choice && strcmp(choice, "avx2") == 0 && rank > DC3_ISA_AVX2)
        rank = DC3_ISA_AVX2;
    return rank;
}

/* Read once, so every call of a process uses the same kernels.  The module's import
 * makes the first call, before any thread can race it (and a race would store the
 * same value). */
static int dc3_allowed_rank(void)
{
    static int rank = -1;
    if (rank < 0)
        rank = dc3_detect_rank();
    return rank;
}

DC3_API const dc3_kernel *dc3_kernel_table(ptrdiff_t *count)
{
    *count = (ptrdiff_t)(sizeof dc3_kernels / sizeof dc3_kernels[0]);
    return dc3_kernels;
}

DC3_API const dc3_kernel *dc3_find_kernel(int itemsize, int kind, int nr, int taps, int spacing)
{
    const dc3_kernel *best = NULL;
    int best_rank = -1, allowed = dc3_allowed_rank();
    ptrdiff_t count, i;
    const dc3_kernel *table = dc3_kernel_table(&count);
    for (i = 0; i < count; i++) {
        const dc3_kernel *k = &table[i];
        int rank;
        if (k->itemsize != itemsize || k->kind != kind || k->nr != nr)
            continue;
        if (kind == DC3_KIND_ROW && (k->taps != taps || k->spacing != spacing))
            continue;
        rank = dc3_isa_rank(k->isa);
        if (rank <= allowed && rank > best_rank) {
            best = k;
            best_rank = rank;
        }
    }
    return best;
}

DC3_API int dc3_wide_available(void)
{
    const dc3_kernel *f32 = dc3_find_kernel(4, DC3_KIND_GEMM, DC3_NR_WIDE_F32, 0, 0);
    const dc3_kernel *f64 = dc3_find_kernel(8, DC3_KIND_GEMM, DC3_NR_WIDE_F64, 0, 0);
    return dc3_isa_rank(f32->isa) > DC3_ISA_GENERIC && dc3_isa_rank(f64->isa) > DC3_ISA_GENERIC;
}

DC3_API const char *dc3_isa_name(void)
{
#if DC3_NEON
    return dc3_allowed_rank() == DC3_ISA_NEON ? "neon" : "generic";
#else
    switch (dc3_allowed_rank()) {
    case DC3_ISA_AVX512F:
        return "avx512f+avx2+fma";
    case DC3_ISA_AVX2:
        return "avx2+fma";
    default:
        return "generic";
    }
#endif
}

DC3_API void dc3_store_fence(void)
{
#if DC3_X86
    _mm_sfence();
#endif
}
