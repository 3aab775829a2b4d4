/* The NEON row kernels of one panel width (FAMILY_NR filters, two vectors per pass):
 * 3 or 2 w taps, each 1 or 2 input voxels apart. */

#define NAME DC3_NEON_ROW_NAME(3, 1)
#define NR FAMILY_NR
#define COLS 2
#define TAPS 3
#define SPACING 1
#include "neon_row.template.h"

#define NAME DC3_NEON_ROW_NAME(3, 2)
#define NR FAMILY_NR
#define COLS 2
#define TAPS 3
#define SPACING 2
#include "neon_row.template.h"

#define NAME DC3_NEON_ROW_NAME(2, 1)
#define NR FAMILY_NR
#define COLS 2
#define TAPS 2
#define SPACING 1
#include "neon_row.template.h"

#define NAME DC3_NEON_ROW_NAME(2, 2)
#define NR FAMILY_NR
#define COLS 2
#define TAPS 2
#define SPACING 2
#include "neon_row.template.h"
