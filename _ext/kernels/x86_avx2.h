/* AVX2+FMA kernels (ymm: 8 floats or 4 doubles, 16 registers): two vectors per voxel
 * in two passes of 6 voxels (12 accumulators), or one vector per voxel for all 12 at
 * once (the narrow panels of layers with few filters).  Row kernels (see kernels.h)
 * for the one-vector panels: 12 accumulators, a broadcast and 2 taps' weights. */

#if DC3_X86

#define ISA avx2
#define TARGET "avx2,fma"
/* the row kernels fetch the next tap pair's input rows while this one computes */
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
/* 32-byte vectors: _mm256_<op>_ps and __m256 (pd and __m256d for doubles) */
#define VPREFIX _mm256_
#define VTYPE __m256
#define VBYTES 32
/* zero where v < 0; NaN compares false and stays, like Keras */
#define RELU(v, z) VOP(blendv_)(v, z, VOP(cmp_)(v, z, _CMP_LT_OQ))
/* two-vector panels: two passes of 6 rows keep 12 accumulators in 16 registers */
#define TWO_VECTOR_ROWS 6
/* row kernels for one-vector panels only: for two, 12 voxels do not fit 16 ymm, and
 * two passes of one vector measured 7% slower than the 6-row gemm kernel (87 against
 * 94 GFLOP/s on one core; stride1, overlap, dilated, many-small 1-4% slower) */
#define ROW_KERNELS 1

/* The row kernels' multiply-adds, pinned to the form that accumulates in place: with
 * all 16 ymm in use GCC otherwise writes sums into the broadcast's register and then
 * moves and spills them every iteration (75 against 100 GFLOP/s for one core). */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256
dc3_avx2_fmadd_ps(__m256 x, __m256 w, __m256 acc)
{
    __asm__("vfmadd231ps %1, %2, %0" : "+x"(acc) : "x"(x), "x"(w));
    return acc;
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256d
dc3_avx2_fmadd_pd(__m256d x, __m256d w, __m256d acc)
{
    __asm__("vfmadd231pd %1, %2, %0" : "+x"(acc) : "x"(x), "x"(w));
    return acc;
}
/* ... and from memory: with 3 taps, 12 sums, 2 weights and a broadcast leave GCC a
 * spare register, so the third tap's weights come straight from L1 */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256
dc3_avx2_fmadd_from_ps(__m256 x, const float *w, __m256 acc)
{
    __asm__("vfmadd231ps %2, %1, %0" : "+x"(acc) : "x"(x), "m"(*(const __m256 *)w));
    return acc;
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256d
dc3_avx2_fmadd_from_pd(__m256d x, const double *w, __m256d acc)
{
    __asm__("vfmadd231pd %2, %1, %0" : "+x"(acc) : "x"(x), "m"(*(const __m256d *)w));
    return acc;
}
#define ROW_FMADD_PREFIX dc3_avx2_fmadd_
#define ROW_WEIGHT_REGS_TAPS 2

#include "x86_dtypes.h"
#include "x86_isa_end.h"

#endif
