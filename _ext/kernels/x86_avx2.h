/* AVX2+FMA kernels (ymm: 8 floats or 4 doubles, 16 registers): two vectors per voxel
 * in two passes of 6 voxels (12 accumulators), or one vector per voxel for all 12 at
 * once (the narrow panels of layers with few filters).  Row kernels exist for AVX-512
 * only. */

#if DC3_X86

#define TARGET "avx2,fma"

#define T float
#define V __m256
#define L 8
#define LOADU _mm256_loadu_ps
#define STOREU _mm256_storeu_ps
#define SETZERO _mm256_setzero_ps
#define SET1 _mm256_set1_ps
#define FMADD _mm256_fmadd_ps
#define RELU(v, z) _mm256_blendv_ps(v, z, _mm256_cmp_ps(v, z, _CMP_LT_OQ))
#define STREAM _mm256_stream_ps

#define NAME dc3_f32_gemm_12x16_avx2
#define NV 2
#define ROWS 6
#include "gemm.template.h"

#define NAME dc3_f32_gemm_12x8_avx2
#define NV 1
#define ROWS 12
#include "gemm.template.h"

#undef T
#undef V
#undef L
#undef LOADU
#undef STOREU
#undef SETZERO
#undef SET1
#undef FMADD
#undef RELU
#undef STREAM

#define T double
#define V __m256d
#define L 4
#define LOADU _mm256_loadu_pd
#define STOREU _mm256_storeu_pd
#define SETZERO _mm256_setzero_pd
#define SET1 _mm256_set1_pd
#define FMADD _mm256_fmadd_pd
#define RELU(v, z) _mm256_blendv_pd(v, z, _mm256_cmp_pd(v, z, _CMP_LT_OQ))
#define STREAM _mm256_stream_pd

#define NAME dc3_f64_gemm_12x8_avx2
#define NV 2
#define ROWS 6
#include "gemm.template.h"

#define NAME dc3_f64_gemm_12x4_avx2
#define NV 1
#define ROWS 12
#include "gemm.template.h"

#undef T
#undef V
#undef L
#undef LOADU
#undef STOREU
#undef SETZERO
#undef SET1
#undef FMADD
#undef RELU
#undef STREAM

#undef TARGET

#endif
