/* The row kernels of one width and tap count: taps 1, then 2 input voxels apart. */

#define SPACING 1
#define NAME DC3_ROW_NAME(NR, TAPS, SPACING)
#include "row.template.h"

#define SPACING 2
#define NAME DC3_ROW_NAME(NR, TAPS, SPACING)
#include "row.template.h"
