/* Portable kernels, one per panel width and dtype, so that every panel can be computed
 * on any CPU.  Streaming is only a hint: these store normally. */

#define T float

#define NAME dc3_f32_gemm_12x8_generic
#define NR 8
#include "generic_gemm.template.h"

#define NAME dc3_f32_gemm_12x16_generic
#define NR 16
#include "generic_gemm.template.h"

#define NAME dc3_f32_gemm_12x32_generic
#define NR 32
#include "generic_gemm.template.h"

#undef T
#define T double

#define NAME dc3_f64_gemm_12x4_generic
#define NR 4
#include "generic_gemm.template.h"

#define NAME dc3_f64_gemm_12x8_generic
#define NR 8
#include "generic_gemm.template.h"

#define NAME dc3_f64_gemm_12x16_generic
#define NR 16
#include "generic_gemm.template.h"

#undef T
