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
    # lanes kernels (kernels/lanes.h): points across the lanes, for 1-4 filters
    ctypedef void (*dc3_lanes_f32)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const float* const*,
                                   ptrdiff_t, const float*, float*) noexcept nogil
    ctypedef void (*dc3_lanes_f64)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double* const*,
                                   ptrdiff_t, const double*, double*) noexcept nogil
    ctypedef void (*dc3_lanes_out_f32)(float*, const float*, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                       ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*,
                                       int) noexcept nogil
    ctypedef void (*dc3_lanes_out_f64)(double*, const double*, ptrdiff_t, ptrdiff_t,
                                       ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                       const double*, int) noexcept nogil
    ctypedef struct dc3_lanes_kernel:
        const char* name
        const char* isa
        int itemsize
        int lanes
        dc3_lanes_f32 f32
        dc3_lanes_f64 f64
        dc3_lanes_out_f32 out_f32
        dc3_lanes_out_f64 out_f64
    enum:
        DC3_LANE_ROWS
        DC3_LANE_MAX_FILTERS
    const dc3_lanes_kernel* dc3_find_lanes(int itemsize)
    void dc3_lanes_pack_f32(const float*, ptrdiff_t, ptrdiff_t, float*, ptrdiff_t)
    void dc3_lanes_pack_f64(const double*, ptrdiff_t, ptrdiff_t, double*, ptrdiff_t)
    int dc3_wide_available()
    const char* dc3_isa_name()
    void dc3_store_fence()
    # Winograd transforms (kernels/winograd.h): stride-1 layers with 3^3 and 5^3 kernels
    ctypedef void (*dc3_wg_in_f32)(const float* const*, ptrdiff_t, float*, ptrdiff_t) noexcept nogil
    ctypedef void (*dc3_wg_in_f64)(const double* const*, ptrdiff_t, double*,
                                   ptrdiff_t) noexcept nogil
    ctypedef void (*dc3_wg_out_f32)(const float*, ptrdiff_t, ptrdiff_t, const float*,
                                    float* const*, int) noexcept nogil
    ctypedef void (*dc3_wg_out_f64)(const double*, ptrdiff_t, ptrdiff_t, const double*,
                                    double* const*, int) noexcept nogil
    ctypedef struct dc3_winograd_kernel:
        const char* name
        const char* isa
        int itemsize
        int taps
        int points
        int transforms
        dc3_wg_in_f32 in_f32
        dc3_wg_in_f64 in_f64
        dc3_wg_out_f32 out_f32
        dc3_wg_out_f64 out_f64
    enum:
        DC3_WG_OUTPUTS
    const dc3_winograd_kernel* dc3_find_winograd(int itemsize, int taps)
    void dc3_prefetch(const void* p)
