/* Undefines what x86_ops.h defined, before the next dtype or ISA. */
#undef T
#undef SUFFIX
#undef V
#undef NR_ONE
#undef NR_TWO
#undef L
#undef VOP
#undef LOADU
#undef STOREU
#undef SETZERO
#undef SET1
#undef FMADD
#undef STREAM
#undef ROW_FMADD
#undef ROW_FMADD_FROM
#undef DC3_GEMM_NAME
#undef DC3_ROW_NAME
