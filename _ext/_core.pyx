# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compute core of deconv3d: a 3-D transposed convolution in gather form.

The core trusts its arguments: the Python layer has already checked shapes,
dtypes and contiguity and computed every length and crop (`deconv3d.shapes`).

Arrays are channels-last and C-contiguous:
  x        (N, D, H, W, C)         input
  kernel   (kd, kh, kw, C, F)      the Keras kernel with its last two axes swapped,
                                   packed once per `set_weights`
  bias     (F,) or None
  out      (N, OD, OH, OW, F)      written completely (never read first)

Output voxel `o` (per axis) receives input `i` through tap `t` when
`o + crop == i*stride + t*dilation`.  Each OpenMP thread owns whole output rows
(n, od, oh, :, :), so no two threads ever write the same voxel.
"""

from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.math cimport exp, expm1, log1p, tanh, erf, sqrt, fabs

cimport cython

from _openmp_helpers cimport OPENMP_ENABLED, OPENMP_VERSION, omp_get_max_threads

ctypedef fused floating:
    float
    double

# Element-wise activations fused into the core.  The numbers are part of the
# interface with deconv3d.activations, which maps Keras names onto them.
cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_RELU6 = 2
    ACT_LEAKY_RELU = 3
    ACT_ELU = 4
    ACT_CELU = 5
    ACT_SELU = 6
    ACT_GELU = 7
    ACT_SIGMOID = 8
    ACT_TANH = 9
    ACT_HARD_SIGMOID = 10
    ACT_HARD_SILU = 11
    ACT_SILU = 12
    ACT_SOFTPLUS = 13
    ACT_SOFTSIGN = 14
    ACT_MISH = 15
    ACT_EXPONENTIAL = 16
    ACT_SQUAREPLUS = 17
    ACT_SPARSE_PLUS = 18
    ACT_SPARSE_SIGMOID = 19
    ACT_SOFT_SHRINK = 20
    ACT_HARD_SHRINK = 21
    ACT_HARD_TANH = 22
    ACT_TANH_SHRINK = 23
    ACT_LOG_SIGMOID = 24

ACTIVATION_CODES = {
    "linear": ACT_LINEAR, "relu": ACT_RELU, "relu6": ACT_RELU6,
    "leaky_relu": ACT_LEAKY_RELU, "elu": ACT_ELU, "celu": ACT_CELU, "selu": ACT_SELU,
    "gelu": ACT_GELU, "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH,
    "hard_sigmoid": ACT_HARD_SIGMOID, "hard_silu": ACT_HARD_SILU, "silu": ACT_SILU,
    "softplus": ACT_SOFTPLUS, "softsign": ACT_SOFTSIGN, "mish": ACT_MISH,
    "exponential": ACT_EXPONENTIAL, "squareplus": ACT_SQUAREPLUS,
    "sparse_plus": ACT_SPARSE_PLUS, "sparse_sigmoid": ACT_SPARSE_SIGMOID,
    "soft_shrink": ACT_SOFT_SHRINK, "hard_shrink": ACT_HARD_SHRINK,
    "hard_tanh": ACT_HARD_TANH, "tanh_shrink": ACT_TANH_SHRINK,
    "log_sigmoid": ACT_LOG_SIGMOID,
}

openmp_enabled = bool(OPENMP_ENABLED)
openmp_version = OPENMP_VERSION


def default_thread_count():
    """Threads a parallel region uses by default (follows OMP_NUM_THREADS)."""
    return omp_get_max_threads()


cdef inline double _softplus(double v) noexcept nogil:
    # log(1 + e^v) without overflow, as logaddexp(v, 0)
    return (v if v > 0 else 0.0) + log1p(exp(-fabs(v)))


cdef inline double _sigmoid(double v) noexcept nogil:
    if v >= 0:
        return 1.0 / (1.0 + exp(-v))
    cdef double e = exp(v)
    return e / (1.0 + e)


cdef inline double _relu6(double v) noexcept nogil:
    # comparisons written so that NaN passes through, as jnp.maximum/minimum do
    if v < 0:
        return 0.0
    if v > 6:
        return 6.0
    return v


cdef double _activate(double v, int code) noexcept nogil:
    """One element of a Keras activation, computed in double precision."""
    if code == ACT_RELU:
        return 0.0 if v < 0 else v
    elif code == ACT_RELU6:
        return _relu6(v)
    elif code == ACT_LEAKY_RELU:
        return v if v >= 0 else 0.2 * v
    elif code == ACT_ELU:
        return v if v > 0 else expm1(v)
    elif code == ACT_CELU:
        return (v if v > 0 else 0.0) + expm1(v if v < 0 else 0.0)
    elif code == ACT_SELU:
        return 1.0507009873554804934193349852946 * (
            v if v > 0 else 1.6732632423543772848170429916717 * expm1(v))
    elif code == ACT_GELU:
        return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440))
    elif code == ACT_SIGMOID:
        return _sigmoid(v)
    elif code == ACT_TANH:
        return tanh(v)
    elif code == ACT_HARD_SIGMOID:
        return _relu6(v + 3.0) / 6.0
    elif code == ACT_HARD_SILU:
        return v * _relu6(v + 3.0) / 6.0
    elif code == ACT_SILU:
        return v * _sigmoid(v)
    elif code == ACT_SOFTPLUS:
        return _softplus(v)
    elif code == ACT_SOFTSIGN:
        return v / (1.0 + fabs(v))
    elif code == ACT_MISH:
        return v * tanh(_softplus(v))
    elif code == ACT_EXPONENTIAL:
        return exp(v)
    elif code == ACT_SQUAREPLUS:
        return (v + sqrt(v * v + 4.0)) / 2.0
    elif code == ACT_SPARSE_PLUS:
        if v <= -1:
            return 0.0
        if v >= 1:
            return v
        return (v + 1.0) * (v + 1.0) / 4.0
    elif code == ACT_SPARSE_SIGMOID:
        if v <= -1:
            return 0.0
        if v >= 1:
            return 1.0
        return 0.5 * (v + 1.0)
    elif code == ACT_SOFT_SHRINK:
        # like jnp.where(x > t, x - t, jnp.where(x < -t, x + t, 0)): NaN gives 0
        if v > 0.5:
            return v - 0.5
        if v < -0.5:
            return v + 0.5
        return 0.0
    elif code == ACT_HARD_SHRINK:
        return v if fabs(v) > 0.5 else 0.0
    elif code == ACT_HARD_TANH:
        if v > 1:
            return 1.0
        if v < -1:
            return -1.0
        return v
    elif code == ACT_TANH_SHRINK:
        return v - tanh(v)
    elif code == ACT_LOG_SIGMOID:
        return -_softplus(-v)
    return v


cdef void _fill_taps(Py_ssize_t out_len, Py_ssize_t in_len, Py_ssize_t ksize,
                     Py_ssize_t stride, Py_ssize_t dilation, Py_ssize_t crop,
                     Py_ssize_t* count, Py_ssize_t* tap, Py_ssize_t* src) noexcept nogil:
    """For every output index of one axis, list the (tap, input index) pairs reaching it."""
    cdef Py_ssize_t o, t, q, c
    for o in range(out_len):
        c = 0
        for t in range(ksize):
            q = o + crop - t * dilation
            if q < 0:
                break           # q only decreases with t
            if q % stride == 0 and q // stride < in_len:
                tap[o * ksize + c] = t
                src[o * ksize + c] = q // stride
                c += 1
        count[o] = c


cdef void _output_row(const floating* x, const floating* kernel, const floating* bias,
                      floating* out, Py_ssize_t n, Py_ssize_t od, Py_ssize_t oh,
                      Py_ssize_t D, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                      Py_ssize_t F, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                      Py_ssize_t kd_max,
                      const Py_ssize_t* cnt_d, const Py_ssize_t* tap_d, const Py_ssize_t* src_d,
                      const Py_ssize_t* cnt_h, const Py_ssize_t* tap_h, const Py_ssize_t* src_h,
                      const Py_ssize_t* cnt_w, const Py_ssize_t* tap_w, const Py_ssize_t* src_w,
                      Py_ssize_t kh_max, Py_ssize_t kw_max, int activation) noexcept nogil:
    """Compute the output row out[n, od, oh, :, :] (OW * F values) completely."""
    cdef Py_ssize_t ow, f, c, jd, jh, jw, td, th, tw, ih
    cdef Py_ssize_t tap_size = C * F
    cdef floating* y
    cdef const floating* xrow
    cdef const floating* xv
    cdef const floating* wplane
    cdef const floating* wm
    cdef floating a
    for ow in range(OW):
        y = out + ow * F
        if bias != NULL:
            for f in range(F):
                y[f] = bias[f]
        else:
            for f in range(F):
                y[f] = 0
    # with no input channels there is nothing to accumulate (and x may be NULL)
    for jd in range(cnt_d[od] if C > 0 else 0):
        td = tap_d[od * kd_max + jd]
        for jh in range(cnt_h[oh]):
            th = tap_h[oh * kh_max + jh]
            ih = src_h[oh * kh_max + jh]
            xrow = x + (((n * D + src_d[od * kd_max + jd]) * H + ih) * W) * C
            wplane = kernel + (td * kh + th) * kw * tap_size
            for ow in range(OW):
                y = out + ow * F
                for jw in range(cnt_w[ow]):
                    tw = tap_w[ow * kw_max + jw]
                    xv = xrow + src_w[ow * kw_max + jw] * C
                    wm = wplane + tw * tap_size
                    for c in range(C):
                        a = xv[c]
                        for f in range(F):
                            y[f] += a * wm[c * F + f]
    if activation != ACT_LINEAR:
        for f in range(OW * F):
            out[f] = <floating>_activate(out[f], activation)


@cython.boundscheck(False)
def conv3d_transpose(const floating[:, :, :, :, ::1] x,
                     const floating[:, :, :, :, ::1] kernel,
                     const floating[::1] bias,
                     floating[:, :, :, :, ::1] out,
                     tuple strides, tuple dilations, tuple crops,
                     int activation=ACT_LINEAR, int num_threads=0):
    """Write the transposed convolution of `x` into `out` (see the module docstring).

    `strides`, `dilations` and `crops` are 3-tuples of ints (D, H, W order);
    `bias` may be None; `num_threads <= 0` means OpenMP's default.
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t C = x.shape[4]
    cdef Py_ssize_t kd = kernel.shape[0], kh = kernel.shape[1], kw = kernel.shape[2]
    cdef Py_ssize_t F = out.shape[4]
    cdef Py_ssize_t OD = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t sd = strides[0], sh = strides[1], sw = strides[2]
    cdef Py_ssize_t dd = dilations[0], dh = dilations[1], dw = dilations[2]
    cdef Py_ssize_t pd = crops[0], ph = crops[1], pw = crops[2]
    cdef Py_ssize_t rows = N * OD * OH, r, n, od, oh
    cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
    cdef const floating* xp = &x[0, 0, 0, 0, 0] if x.size > 0 else NULL
    cdef const floating* kp = &kernel[0, 0, 0, 0, 0] if kernel.size > 0 else NULL
    cdef const floating* bp = NULL
    cdef floating* op = &out[0, 0, 0, 0, 0] if out.size > 0 else NULL
    cdef Py_ssize_t row_len = OW * F
    if bias is not None and bias.shape[0] > 0:
        bp = &bias[0]
    if rows == 0 or row_len == 0:
        return
    # one allocation for the tap tables of all three axes
    cdef Py_ssize_t* tables = <Py_ssize_t*>malloc(
        sizeof(Py_ssize_t) * ((OD + OH + OW) + 2 * (OD * kd + OH * kh + OW * kw)))
    if tables == NULL:
        raise MemoryError("deconv3d: could not allocate the tap tables")
    cdef Py_ssize_t* cnt_d = tables
    cdef Py_ssize_t* tap_d = cnt_d + OD
    cdef Py_ssize_t* src_d = tap_d + OD * kd
    cdef Py_ssize_t* cnt_h = src_d + OD * kd
    cdef Py_ssize_t* tap_h = cnt_h + OH
    cdef Py_ssize_t* src_h = tap_h + OH * kh
    cdef Py_ssize_t* cnt_w = src_h + OH * kh
    cdef Py_ssize_t* tap_w = cnt_w + OW
    cdef Py_ssize_t* src_w = tap_w + OW * kw
    try:
        with nogil:
            _fill_taps(OD, D, kd, sd, dd, pd, cnt_d, tap_d, src_d)
            _fill_taps(OH, H, kh, sh, dh, ph, cnt_h, tap_h, src_h)
            _fill_taps(OW, W, kw, sw, dw, pw, cnt_w, tap_w, src_w)
            for r in prange(rows, num_threads=threads, schedule="static"):
                oh = r % OH
                od = (r // OH) % OD
                n = r // (OH * OD)
                _output_row(xp, kp, bp, op + r * row_len, n, od, oh, D, H, W, C, F,
                            OW, kh, kw, kd, cnt_d, tap_d, src_d, cnt_h, tap_h, src_h,
                            cnt_w, tap_w, src_w, kh, kw, activation)
    finally:
        free(tables)
