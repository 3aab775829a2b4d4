/* TEMPORARY SHIM (not committed): the new kernel API over the old microkernels.h */
#ifndef SHIM_KERNELS_H
#define SHIM_KERNELS_H
#include "../microkernels.h"
typedef void (*dc3_fn_f32)(ptrdiff_t, ptrdiff_t, const float **, const float *, const ptrdiff_t *, const float *, float **, int, int, ptrdiff_t);
typedef void (*dc3_fn_f64)(ptrdiff_t, ptrdiff_t, const double **, const double *, const ptrdiff_t *, const double *, double **, int, int, ptrdiff_t);
enum { DC3_KIND_GEMM = 0, DC3_KIND_ROW = 1 };
typedef struct dc3_kernel { const char *name; const char *isa; int itemsize; int kind; int nr; int taps; int spacing; dc3_fn_f32 f32; dc3_fn_f64 f64; } dc3_kernel;
static dc3_kernel_f32 shim_g32[3]; static dc3_kernel_f64 shim_g64[3];
#define W32(i) static void shim_w32_##i(ptrdiff_t a, ptrdiff_t b, const float **c, const float *d, const ptrdiff_t *e, const float *f, float **g, int h, int k, ptrdiff_t l) { (void)l; shim_g32[i](a,b,c,d,e,f,g,h,k); }
#define W64(i) static void shim_w64_##i(ptrdiff_t a, ptrdiff_t b, const double **c, const double *d, const ptrdiff_t *e, const double *f, double **g, int h, int k, ptrdiff_t l) { (void)l; shim_g64[i](a,b,c,d,e,f,g,h,k); }
W32(0) W32(1) W32(2) W64(0) W64(1) W64(2)
static dc3_kernel shim_table[40]; static int shim_n = 0;
static const dc3_kernel *dc3_find_kernel(int itemsize, int kind, int nr, int taps, int spacing) {
    for (int i = 0; i < shim_n; i++) { const dc3_kernel *k = &shim_table[i];
        if (k->itemsize == itemsize && k->kind == kind && k->nr == nr && k->taps == taps && k->spacing == spacing) return k; }
    dc3_kernel k = {"shim", "shim", itemsize, kind, nr, taps, spacing, 0, 0};
    if (kind == DC3_KIND_GEMM) {
        int i = itemsize == 4 ? (nr == DC3_NR_SMALL_F32 ? 0 : nr == DC3_NR_F32 ? 1 : 2) : (nr == DC3_NR_SMALL_F64 ? 0 : nr == DC3_NR_F64 ? 1 : 2);
        if (itemsize == 4) { shim_g32[i] = dc3_select_f32(nr); k.f32 = i == 0 ? shim_w32_0 : i == 1 ? shim_w32_1 : shim_w32_2; k.name = i==0?"gemm_small":i==1?"gemm":"gemm_wide"; }
        else { shim_g64[i] = dc3_select_f64(nr); k.f64 = i == 0 ? shim_w64_0 : i == 1 ? shim_w64_1 : shim_w64_2; k.name = i==0?"gemm_small":i==1?"gemm":"gemm_wide"; }
    } else {
        if (itemsize == 4) { k.f32 = (dc3_fn_f32)dc3_select_row_f32(nr, taps, spacing); if (!k.f32) return 0; }
        else { k.f64 = (dc3_fn_f64)dc3_select_row_f64(nr, taps, spacing); if (!k.f64) return 0; }
        k.name = "row";
    }
    shim_table[shim_n] = k; return &shim_table[shim_n++];
}
static const char *dc3_isa_name(void) { return dc3_kernel_name(); }
#endif
