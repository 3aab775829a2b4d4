/* The NEON kernels of one dtype (neon.h defines DC3_BITS, T, V and the operations):
 * two-vector panels (8 floats or 4 doubles) and four-vector panels (16 or 8). */

/* all 12 voxels x 2 vectors: 24 sums, 2 weight vectors, a broadcast */
#define NAME DC3_NEON_GEMM_NAME(DC3_CAT(DC3_NR_SMALL_F, DC3_BITS))
#define NR (2 * L)
#define ROWS DC3_MR
#define COLS 2
#include "generic_gemm.template.h"

/* 6 voxels x 4 vectors: 24 sums, 4 weight vectors, a broadcast */
#define NAME DC3_NEON_GEMM_NAME(DC3_CAT(DC3_NR_F, DC3_BITS))
#define NR (4 * L)
#define ROWS 6
#define COLS 4
#include "generic_gemm.template.h"

#define FAMILY_NR DC3_CAT(DC3_NR_SMALL_F, DC3_BITS)
#include "neon_row_family.h"
#undef FAMILY_NR

#define FAMILY_NR DC3_CAT(DC3_NR_F, DC3_BITS)
#include "neon_row_family.h"
#undef FAMILY_NR
