# The one place that talks to the OpenMP runtime.  When the extension is built
# without OpenMP the stubs below keep the core compiling and running serially,
# and `OPENMP_ENABLED` lets Python (and a test) see which build it got.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define DECONV3D_OPENMP_ENABLED 1
    #define DECONV3D_OPENMP_VERSION _OPENMP
    #else
    #define DECONV3D_OPENMP_ENABLED 0
    #define DECONV3D_OPENMP_VERSION 0
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    bint OPENMP_ENABLED "DECONV3D_OPENMP_ENABLED"
    int OPENMP_VERSION "DECONV3D_OPENMP_VERSION"
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
