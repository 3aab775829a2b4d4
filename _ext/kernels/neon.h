/* NEON kernels for aarch64 (q registers: 4 floats or 2 doubles, 32 of them), where NEON
 * is part of the baseline: gemm and row kernels for the small and normal panel widths
 * of both dtypes.  Gemm: two vectors per voxel keep all 12 voxels in
 * registers (24 sums), four vectors per voxel two passes of 6.  Row kernels (see
 * kernels.h): 2 or 3 w taps, 1 or 2 voxels apart, 12 voxels x 2 vectors per pass.
 * No wide panels: eight vectors per voxel leave room for too few voxels, so packing
 * keeps to the normal width here (dc3_wide_available). */

#if defined(__aarch64__) || defined(_M_ARM64)
#define DC3_NEON 1
#include <arm_neon.h>
#else
#define DC3_NEON 0
#endif

#if DC3_NEON

#define VZERO() VOP(vdupq_n_)(0)
#define VB V
#define VSPLAT(x) VOP(vdupq_n_)(x)
#define VLOAD(p) VOP(vld1q_)(p)
#define VSTORE(p, v) VOP(vst1q_)(p, v)
#define VFMA(acc, x, w) VOP(vfmaq_)(acc, x, w)
/* zero where v < 0; NaN compares false and stays, like Keras */
#define VRELU(v) VOP(vbslq_)(VOP(vcltzq_)(v), VZERO(), v)
#define L (16 / (int)sizeof(T))
#define DC3_NEON_GEMM_NAME(nr) DC3_CAT6(dc3_f, DC3_BITS, _gemm_12x, nr, _, neon)
#define DC3_NEON_ROW_NAME(taps, spacing) \
    DC3_CAT6(dc3_f, DC3_BITS, _row_12x, FAMILY_NR, DC3_CAT4(_t, taps, s, spacing), _neon)

#define DC3_BITS 32
#define T float
#define V float32x4_t
#define VOP(op) DC3_CAT(op, f32)
#include "neon_dtype.h"
#undef DC3_BITS
#undef T
#undef V
#undef VOP

#define DC3_BITS 64
#define T double
#define V float64x2_t
#define VOP(op) DC3_CAT(op, f64)
#include "neon_dtype.h"
#undef DC3_BITS
#undef T
#undef V
#undef VOP

#undef VZERO
#undef VSPLAT
#undef VB
#undef VLOAD
#undef VSTORE
#undef VFMA
#undef VRELU
#undef L
#undef DC3_NEON_GEMM_NAME
#undef DC3_NEON_ROW_NAME

#endif
