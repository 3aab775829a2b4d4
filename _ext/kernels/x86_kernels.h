/* The kernels of one x86 ISA and one dtype (DC3_BITS 32 or 64), instantiated from the
 * templates: the gemm kernels for one- and two-vector panels, and the row kernels for
 * the panel widths the ISA has them (ROW_KERNELS: 2 for both, 1 for one-vector panels). */

#include "x86_ops.h"

/* one vector per voxel: all 12 voxels in one pass */
#define NV 1
#define ROWS DC3_MR
#define NAME DC3_GEMM_NAME(NR_ONE)
#include "gemm.template.h"

/* two vectors per voxel, in passes of TWO_VECTOR_ROWS voxels */
#define NV 2
#define ROWS TWO_VECTOR_ROWS
#define NAME DC3_GEMM_NAME(NR_TWO)
#include "gemm.template.h"

#if ROW_KERNELS == 2
#define NV 2
#define NR NR_TWO
#include "x86_row_kernels.h"
#undef NR
#endif

#if ROW_KERNELS >= 1
#define NV 1
#define NR NR_ONE
#include "x86_row_kernels.h"
#undef NR
#endif

#include "x86_ops_end.h"
