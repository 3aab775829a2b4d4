/* Every kernel of one x86 ISA, float32 then float64 (the ISA header defines ISA,
 * TARGET, VPREFIX, VTYPE, VBYTES, RELU, TWO_VECTOR_ROWS, ROW_KERNELS). */

#define DC3_BITS 32
#include "x86_kernels.h"
#undef DC3_BITS

#define DC3_BITS 64
#include "x86_kernels.h"
#undef DC3_BITS
