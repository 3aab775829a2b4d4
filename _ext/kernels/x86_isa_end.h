/* Undefines what an ISA header (x86_avx2.h, x86_avx512.h) defined. */
#undef ISA
#undef TARGET
#undef PREFETCH
#undef VPREFIX
#undef VTYPE
#undef VBYTES
#undef RELU
#undef TWO_VECTOR_ROWS
#undef ROW_KERNELS
#undef ROW_FMADD_PREFIX
#undef ROW_WEIGHT_REGS_TAPS
