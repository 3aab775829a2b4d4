/* AVX2+FMA kernels (ymm: 8 floats or 4 doubles, 16 registers): two vectors per voxel
 * in two passes of 6 voxels (12 accumulators), or one vector per voxel for all 12 at
 * once (the narrow panels of layers with few filters).  Row kernels exist for AVX-512
 * only. */

#if DC3_X86

#define ISA avx2
#define TARGET "avx2,fma"
/* 32-byte vectors: _mm256_<op>_ps and __m256 (pd and __m256d for doubles) */
#define VPREFIX _mm256_
#define VTYPE __m256
#define VBYTES 32
/* zero where v < 0; NaN compares false and stays, like Keras */
#define RELU(v, z) VOP(blendv_)(v, z, VOP(cmp_)(v, z, _CMP_LT_OQ))
/* two-vector panels: two passes of 6 rows keep 12 accumulators in 16 registers */
#define TWO_VECTOR_ROWS 6
#define ROW_KERNELS 0

#include "x86_dtypes.h"
#include "x86_isa_end.h"

#endif
