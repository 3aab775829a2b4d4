/* The names the templates use, for one x86 ISA and dtype: element and vector types,
 * lanes, panel widths, intrinsics (_mm512_loadu_ps, ...) and kernel names
 * (dc3_f32_gemm_12x32_avx512f, ...), pasted together from the ISA's VPREFIX, VTYPE
 * and VBYTES and from DC3_BITS.  x86_ops_end.h undefines them. */

#if DC3_BITS == 32
#define T float
#define SUFFIX ps
#define V VTYPE
#define L (VBYTES / 4)
#else
#define T double
#define SUFFIX pd
#define V DC3_CAT(VTYPE, d)
#define L (VBYTES / 8)
#endif

/* panel widths of one and two vectors, among the dtype's three (kernels.h) */
#if VBYTES == 32
#define NR_ONE DC3_CAT(DC3_NR_SMALL_F, DC3_BITS)
#define NR_TWO DC3_CAT(DC3_NR_F, DC3_BITS)
#else
#define NR_ONE DC3_CAT(DC3_NR_F, DC3_BITS)
#define NR_TWO DC3_CAT(DC3_NR_WIDE_F, DC3_BITS)
#endif

#define VOP(op) DC3_CAT3(VPREFIX, op, SUFFIX)
#define LOADU VOP(loadu_)
#define STOREU VOP(storeu_)
#define SETZERO VOP(setzero_)
#define SET1 VOP(set1_)
#define FMADD VOP(fmadd_)
#define STREAM VOP(stream_)
/* the row kernels' multiply-add: the ISA's own where it defines one */
#ifdef ROW_FMADD_PREFIX
#define ROW_FMADD DC3_CAT(ROW_FMADD_PREFIX, SUFFIX)
#define ROW_FMADD_FROM DC3_CAT3(ROW_FMADD_PREFIX, from_, SUFFIX)
#else
#define ROW_FMADD FMADD
#define ROW_FMADD_FROM(x, p, acc) FMADD(x, LOADU(p), acc)
#endif

/* dc3_<dtype>_gemm_12x<NR>_<isa> and dc3_<dtype>_row_12x<NR>_t<taps>s<spacing>_<isa> */
#define DC3_GEMM_NAME(nr) DC3_CAT6(dc3_f, DC3_BITS, _gemm_12x, nr, _, ISA)
#define DC3_ROW_NAME(nr, taps, spacing) \
    DC3_CAT6(dc3_f, DC3_BITS, _row_12x, nr, DC3_CAT4(_t, taps, s, spacing), DC3_CAT(_, ISA))
