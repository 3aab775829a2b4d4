/* AVX-512F kernels (zmm: 16 floats or 8 doubles, 32 registers).  All 12 voxels of a
 * tile in one pass: two vectors per voxel (24 accumulators: each broadcast feeds two
 * multiply-adds and each weight vector twelve) or one.  The row kernels (see kernels.h)
 * exist for both widths, 2 or 3 w taps, 1 or 2 voxels apart. */

#if DC3_X86

#define ISA avx512f
#define TARGET "avx512f"
/* the row kernels fetch the next tap pair's input rows while this one computes */
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
/* 64-byte vectors: _mm512_<op>_ps and __m512 (pd and __m512d for doubles) */
#define VPREFIX _mm512_
#define VTYPE __m512
#define VBYTES 64
/* zero where v < 0; NaN compares false and stays, like Keras */
#define RELU(v, z) VOP(mask_mov_)(v, DC3_CAT(VOP(cmp_), _mask)(v, z, _CMP_LT_OQ), z)
/* all 12 rows in one pass, whatever the panel width */
#define TWO_VECTOR_ROWS 12
#define ROW_KERNELS 2

#include "x86_dtypes.h"
#include "x86_isa_end.h"

#endif
