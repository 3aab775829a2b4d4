/* AVX-512F kernels (zmm: 16 floats or 8 doubles, 32 registers).  All 12 voxels of a
 * tile in one pass: two vectors per voxel (24 accumulators: each broadcast feeds two
 * multiply-adds and each weight vector twelve) or one.  The row kernels (see kernels.h)
 * exist for both widths, 2 or 3 w taps, 1 or 2 voxels apart. */

#if DC3_X86

#define TARGET "avx512f"
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

#define T float
#define V __m512
#define L 16
#define LOADU _mm512_loadu_ps
#define STOREU _mm512_storeu_ps
#define SETZERO _mm512_setzero_ps
#define SET1 _mm512_set1_ps
#define FMADD _mm512_fmadd_ps
#define RELU(v, z) _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, z, _CMP_LT_OQ), z)
#define STREAM _mm512_stream_ps

#define NAME dc3_f32_gemm_12x32_avx512f
#define NV 2
#define ROWS 12
#include "gemm.template.h"

#define NAME dc3_f32_gemm_12x16_avx512f
#define NV 1
#define ROWS 12
#include "gemm.template.h"

#define NAME dc3_f32_row_12x32_t3s1_avx512f
#define NV 2
#define TAPS 3
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f32_row_12x32_t3s2_avx512f
#define NV 2
#define TAPS 3
#define SPACING 2
#include "row.template.h"

#define NAME dc3_f32_row_12x32_t2s1_avx512f
#define NV 2
#define TAPS 2
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f32_row_12x32_t2s2_avx512f
#define NV 2
#define TAPS 2
#define SPACING 2
#include "row.template.h"

#define NAME dc3_f32_row_12x16_t3s1_avx512f
#define NV 1
#define TAPS 3
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f32_row_12x16_t3s2_avx512f
#define NV 1
#define TAPS 3
#define SPACING 2
#include "row.template.h"

#define NAME dc3_f32_row_12x16_t2s1_avx512f
#define NV 1
#define TAPS 2
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f32_row_12x16_t2s2_avx512f
#define NV 1
#define TAPS 2
#define SPACING 2
#include "row.template.h"

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
#define V __m512d
#define L 8
#define LOADU _mm512_loadu_pd
#define STOREU _mm512_storeu_pd
#define SETZERO _mm512_setzero_pd
#define SET1 _mm512_set1_pd
#define FMADD _mm512_fmadd_pd
#define RELU(v, z) _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(v, z, _CMP_LT_OQ), z)
#define STREAM _mm512_stream_pd

#define NAME dc3_f64_gemm_12x16_avx512f
#define NV 2
#define ROWS 12
#include "gemm.template.h"

#define NAME dc3_f64_gemm_12x8_avx512f
#define NV 1
#define ROWS 12
#include "gemm.template.h"

#define NAME dc3_f64_row_12x16_t3s1_avx512f
#define NV 2
#define TAPS 3
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f64_row_12x16_t3s2_avx512f
#define NV 2
#define TAPS 3
#define SPACING 2
#include "row.template.h"

#define NAME dc3_f64_row_12x16_t2s1_avx512f
#define NV 2
#define TAPS 2
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f64_row_12x16_t2s2_avx512f
#define NV 2
#define TAPS 2
#define SPACING 2
#include "row.template.h"

#define NAME dc3_f64_row_12x8_t3s1_avx512f
#define NV 1
#define TAPS 3
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f64_row_12x8_t3s2_avx512f
#define NV 1
#define TAPS 3
#define SPACING 2
#include "row.template.h"

#define NAME dc3_f64_row_12x8_t2s1_avx512f
#define NV 1
#define TAPS 2
#define SPACING 1
#include "row.template.h"

#define NAME dc3_f64_row_12x8_t2s2_avx512f
#define NV 1
#define TAPS 2
#define SPACING 2
#include "row.template.h"

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

#undef PREFETCH
#undef TARGET

#endif
