# The micro-kernels (kernels/kernels.h documents their contract): what the core may call.
from libc.stddef cimport ptrdiff_t

cdef extern from "kernels/kernels.h" nogil:
    ctypedef void (*dc3_fn_f32)(ptrdiff_t, ptrdiff_t, const float**, const float*,
                                const ptrdiff_t*, const float*, float**, int, int,
                                ptrdiff_t) noexcept nogil
    ctypedef void (*dc3_fn_f64)(ptrdiff_t, ptrdiff_t, const double**, const double*,
                                const ptrdiff_t*, const double*, double**, int, int,
                                ptrdiff_t) noexcept nogil
    ctypedef struct dc3_kernel:
        const char* name
        const char* isa
        int itemsize
        int kind
        int nr
        int taps
        int spacing
        dc3_fn_f32 f32
        dc3_fn_f64 f64
    enum:
        DC3_MR
        DC3_RUN
        DC3_RELU
        DC3_STREAM
        DC3_NR_F32
        DC3_NR_F64
        DC3_NR_SMALL_F32
        DC3_NR_SMALL_F64
        DC3_NR_WIDE_F32
        DC3_NR_WIDE_F64
        DC3_KIND_GEMM
        DC3_KIND_ROW
    const dc3_kernel* dc3_find_kernel(int itemsize, int kind, int nr, int taps, int spacing)
    int dc3_wide_available()
    const char* dc3_isa_name()
    void dc3_store_fence()
