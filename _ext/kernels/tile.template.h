/* How a vector kernel's tile starts and ends, for gemm.template.h and row.template.h
 * (one copy per kernel, always inlined).  Expects, besides the ISA's T, V, L, TARGET
 * and intrinsics: NV (vectors per voxel row), TILE_ROWS (voxels held at once), and the
 * names TILE_START and TILE_END to give the two helpers. */

/* The sums start from the bias, or from what o holds when accumulating ... */
__attribute__((target(TARGET), always_inline))
static inline void TILE_START(V acc[][NV], T *const *o, const T *bias, int accumulate)
{
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        b[v] = bias ? LOADU(bias + v * L) : SETZERO();
#pragma GCC unroll 16
    for (int m = 0; m < TILE_ROWS; m++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[m][v] = accumulate ? LOADU(o[m] + v * L) : b[v];
    }
}

/* ... and leave through relu (if asked), streamed or stored. */
__attribute__((target(TARGET), always_inline))
static inline void TILE_END(V acc[][NV], T *const *o, int flags)
{
#pragma GCC unroll 16
    for (int m = 0; m < TILE_ROWS; m++) {
        int streamed = (flags & DC3_STREAM) && dc3_whole_lines(o[m], NV * L * sizeof(T));
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            V s = acc[m][v];
            /* zero where s < 0; NaN compares false and stays, like Keras */
            if (flags & DC3_RELU)
                s = RELU(s, SETZERO());
            if (streamed)
                STREAM(o[m] + v * L, s);
            else
                STOREU(o[m] + v * L, s);
        }
    }
}
