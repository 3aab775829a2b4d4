/* The row kernels of one panel width (NV vectors, NR filters): 3 or 2 w taps, each
 * 1 or 2 input voxels apart.  NV is undefined at the end. */

#define TAPS 3
#include "x86_row_spacings.h"
#undef TAPS

#define TAPS 2
#include "x86_row_spacings.h"
#undef TAPS

#undef NV
