/* Portable kernels, one per panel width and dtype, so that every panel can be computed
 * on any CPU of the target.  No target flags: with GCC or Clang they use the compiler's
 * vector extensions at the width of the build's baseline (16 bytes: SSE2 on x86_64,
 * NEON on aarch64; 32 when the whole build already targets AVX), which the compiler
 * keeps in registers; elsewhere (MSVC) they are plain loops over one element at a time.
 * (DC3_PLAIN_LOOPS forces the plain loops, to test them with GCC.)
 * Gemm kernels only: a portable row kernel would be chosen over a faster vector gemm
 * kernel of a CPU that has no row kernel of its own. */

#include <string.h>

#if defined(__GNUC__) && !defined(DC3_PLAIN_LOOPS)
#if defined(__AVX__)
#define DC3_GV_BYTES 32
#else
#define DC3_GV_BYTES 16
#endif
typedef float dc3_gv_f32 __attribute__((vector_size(DC3_GV_BYTES)));
typedef double dc3_gv_f64 __attribute__((vector_size(DC3_GV_BYTES)));

/* unaligned loads and stores (the output rows and inputs have any alignment) */
#define DC3_GV_MEMORY(V, T)                                                          \
    static inline V DC3_CAT(V, _load)(const T *p)                                    \
    {                                                                                \
        V v;                                                                         \
        memcpy(&v, p, sizeof v);                                                     \
        return v;                                                                    \
    }                                                                                \
    static inline void DC3_CAT(V, _store)(T *p, V v) { memcpy(p, &v, sizeof v); }   \
    /* zero where v < 0 (a lane mask); NaN compares false and stays, like Keras */  \
    static inline V DC3_CAT(V, _relu)(V v)                                           \
    {                                                                                \
        V zero = {0};                                                                \
        __typeof__(v < zero) negative = v < zero;                                    \
        return (V)((__typeof__(negative))v & ~negative);                             \
    }
DC3_GV_MEMORY(dc3_gv_f32, float)
DC3_GV_MEMORY(dc3_gv_f64, double)
#undef DC3_GV_MEMORY

#define L (DC3_GV_BYTES / (int)sizeof(T))
#define VLOAD(p) DC3_CAT(V, _load)(p)
#define VSTORE(p, v) DC3_CAT(V, _store)(p, v)
#define VZERO() ((V){0})
/* a scalar: the multiply by a vector broadcasts it (VZERO() + x would add, as
 * -0.0 + 0 is not -0.0, and a lane-by-lane vector is built lane by lane) */
#define VB T
#define VSPLAT(x) (x)
#define VRELU(v) DC3_CAT(V, _relu)(v)
/* 16 vector registers (SSE2, AVX): 3 voxels x 4 vectors of sums, 4 weight vectors, a
 * broadcast and a product (fewer broadcasts per multiply-add than 6 x 2, which SSE2's
 * register copies make the bound); 6 x 2 for two-vector panels */
#define DC3_GV_COLS(nr) ((nr) / L < 4 ? (nr) / L : 4)
#define DC3_GV_ROWS(nr) ((nr) / L < 4 ? 6 : 3)
#else
#define L 1
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VZERO() ((T)0)
#define VB T
#define VSPLAT(x) (x)
#define VRELU(v) ((v) < 0 ? (T)0 : (v))
/* 4 x 4 scalar sums */
#define DC3_GV_ROWS(nr) 4
#define DC3_GV_COLS(nr) 4
#endif
#define VFMA(acc, x, w) ((acc) + (w) * (x))

#define T float
#if defined(__GNUC__) && !defined(DC3_PLAIN_LOOPS)
#define V dc3_gv_f32
#else
#define V float
#endif

#define NAME dc3_f32_gemm_12x8_generic
#define NR 8
#define ROWS DC3_GV_ROWS(8)
#define COLS DC3_GV_COLS(8)
#include "generic_gemm.template.h"

#define NAME dc3_f32_gemm_12x16_generic
#define NR 16
#define ROWS DC3_GV_ROWS(16)
#define COLS DC3_GV_COLS(16)
#include "generic_gemm.template.h"

#define NAME dc3_f32_gemm_12x32_generic
#define NR 32
#define ROWS DC3_GV_ROWS(32)
#define COLS DC3_GV_COLS(32)
#include "generic_gemm.template.h"

#undef T
#undef V
#define T double
#if defined(__GNUC__) && !defined(DC3_PLAIN_LOOPS)
#define V dc3_gv_f64
#else
#define V double
#endif

#define NAME dc3_f64_gemm_12x4_generic
#define NR 4
#define ROWS DC3_GV_ROWS(4)
#define COLS DC3_GV_COLS(4)
#include "generic_gemm.template.h"

#define NAME dc3_f64_gemm_12x8_generic
#define NR 8
#define ROWS DC3_GV_ROWS(8)
#define COLS DC3_GV_COLS(8)
#include "generic_gemm.template.h"

#define NAME dc3_f64_gemm_12x16_generic
#define NR 16
#define ROWS DC3_GV_ROWS(16)
#define COLS DC3_GV_COLS(16)
#include "generic_gemm.template.h"

#undef T
#undef V
#undef L
#undef VLOAD
#undef VSTORE
#undef VZERO
#undef VSPLAT
#undef VB
#undef VRELU
#undef VFMA
#undef DC3_GV_ROWS
#undef DC3_GV_COLS
