/* A tile's sums leave through relu (if asked), streamed or stored.  Included at the end
 * of a kernel's body, like tile_start.template.h. */
#pragma GCC unroll 16
for (int m = 0; m < TILE_ROWS; m++) {
    int streamed = (flags & DC3_STREAM) && dc3_whole_lines(TILE_OUT[m], NV * L * sizeof(T));
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        V s = acc[m][v];
        /* zero where s < 0; NaN compares false and stays, like Keras */
        if (flags & DC3_RELU)
            s = RELU(s, SETZERO());
        if (streamed)
            STREAM(TILE_OUT[m] + v * L, s);
        else
            STOREU(TILE_OUT[m] + v * L, s);
    }
}
