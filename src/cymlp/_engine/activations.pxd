# Activations and their derivatives: the elementwise kernels of a layer.
#
# Inline, nogil and fused over float/double; they trust their arguments
# (shapes and codes were validated in Python before any call). Arrays are
# row-major blocks of `rows` x `cols` with no padding. Each kernel names
# every activation code it handles (vocabulary.pxd); a code without a row,
# which no Network holds, gives NaN rather than another activation's values.
#
# scikit-learn's order of operations throughout: the bias added after the
# product, the derivatives taken from the activated values.
from cython cimport floating
from libc.math cimport exp, expf, expm1, tanh, tanhf, log1p, erfc, fabs, M_SQRT1_2, NAN

from .vocabulary cimport (
    IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP, LEAKY_RELU, ELU, GELU, SILU, SOFTPLUS,
)

# The streaming loops written in C, compiled for several instruction sets
# and picked when the module loads (csrc/vector_loops.h).
cdef extern from "vector_loops.h" nogil:
    void cymlp_bias_relu_f(float* z, const float* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_bias_relu_d(double* z, const double* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_add_bias_f(float* z, const float* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_add_bias_d(double* z, const double* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_derivative_f(const float* a, float* delta, Py_ssize_t n, int act)
    void cymlp_derivative_d(const double* a, double* delta, Py_ssize_t n, int act)


# A vectorised elementwise function: the inner loop of a numpy (or scipy)
# ufunc for one dtype, called on a contiguous block, in place. Using the very
# loops scikit-learn's numpy calls gives bit-identical activations and SIMD
# speed; activations.pyx looks them up (resolve_loop). When fn is NULL the
# kernels fall back to libm.
ctypedef void (*ufunc_loop)(char** args, const Py_ssize_t* dims,
                            const Py_ssize_t* steps, void* data) noexcept nogil

cdef struct UnaryLoop:
    ufunc_loop fn
    void* data


# The inner loop of the ufunc that computes activation `act` in dtype
# `typecode` (numpy's type character), as numpy would pick it; fn NULL if none.
cdef UnaryLoop resolve_loop(int act, char typecode)


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline void unary_inplace(const UnaryLoop* loop, floating* x, Py_ssize_t n) noexcept nogil:
    """x = f(x) over n contiguous values through a ufunc inner loop."""
    cdef char* args[2]
    cdef Py_ssize_t steps[2]
    args[0] = <char*> x
    args[1] = <char*> x
    steps[0] = sizeof(floating)
    steps[1] = sizeof(floating)
    loop.fn(args, &n, steps, loop.data)


cdef inline void add_bias(floating* z, const floating* bias,
                          Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        cymlp_add_bias_f(z, bias, rows, cols)
    else:
        cymlp_add_bias_d(z, bias, rows, cols)


cdef inline double _sigmoid(double z) noexcept nogil:
    return 1 / (1 + exp(-z))


cdef inline void fill_nan(floating* x, Py_ssize_t n) noexcept nogil:
    """What a kernel writes for a code it has no row for (never a network's)."""
    cdef Py_ssize_t i
    for i in range(n):
        x[i] = <floating> NAN


cdef inline bint is_extra_activation(int act) noexcept nogil:
    """The activations scikit-learn does not have, computed by activate_extra."""
    return (act == LEAKY_RELU or act == ELU or act == GELU or act == SILU
            or act == SOFTPLUS)


cdef inline void activate_extra(floating* z, Py_ssize_t n, int act, double slope) noexcept nogil:
    """The activations scikit-learn does not have, elementwise in place."""
    cdef Py_ssize_t i
    cdef double v
    for i in range(n):
        v = z[i]
        if act == LEAKY_RELU:
            z[i] = <floating> (v if v > 0 else slope * v)
        elif act == ELU:
            z[i] = <floating> (v if v > 0 else expm1(v))
        elif act == GELU:
            # z * Phi(z), with Phi through erfc: exact in the left tail too
            z[i] = <floating> (0.5 * v * erfc(-v * M_SQRT1_2))
        elif act == SILU:
            z[i] = <floating> (v * _sigmoid(v))
        elif act == SOFTPLUS:
            # log(1 + e^v) without overflow
            z[i] = <floating> ((v if v > 0 else 0) + log1p(exp(-fabs(v))))


cdef inline void bias_activate(
    floating* z,              # INOUT rows x cols: X @ W on entry, f(X @ W + b) on exit
    const floating* bias,     # IN    cols
    Py_ssize_t rows, Py_ssize_t cols, int act,
    const UnaryLoop* vec,     # IN    ufunc loop for tanh / logistic / exp, or fn NULL
    floating* pre,            # OUT   X @ W + b before the activation, or NULL
    double slope,             # IN    negative slope of leaky_relu
) noexcept nogil:
    """Add the bias and apply the activation (softmax: row-wise)."""
    cdef Py_ssize_t i, j, n = rows * cols
    cdef floating* row
    cdef floating vmax, total
    # ReLU as numpy's maximum(z, 0), which scikit-learn calls: `not v < 0`
    # keeps a NaN (and a -0.0), where `v > 0` would turn a NaN into 0
    if act == RELU and pre == NULL:
        if floating is float:
            cymlp_bias_relu_f(z, bias, rows, cols)
        else:
            cymlp_bias_relu_d(z, bias, rows, cols)
        return
    add_bias(z, bias, rows, cols)
    if pre != NULL:
        for i in range(n):
            pre[i] = z[i]
    if act == IDENTITY:
        return
    if act == RELU:
        for i in range(n):
            z[i] = z[i] if not z[i] < 0 else 0
        return
    if is_extra_activation(act):
        activate_extra(z, n, act, slope)
        return
    if not (act == TANH or act == LOGISTIC or act == EXP or act == SOFTMAX):
        fill_nan(z, n)
        return
    if act == SOFTMAX:
        # as sklearn: exp(z - rowmax) / rowsum, with exp over the whole block
        for i in range(rows):
            row = z + i * cols
            vmax = row[0]
            for j in range(1, cols):
                if row[j] > vmax:
                    vmax = row[j]
            for j in range(cols):
                row[j] = row[j] - vmax
    if n == 0:
        return
    if vec.fn != NULL:
        unary_inplace(vec, z, n)
    elif act == TANH:
        for i in range(n):
            if floating is float:
                z[i] = tanhf(z[i])
            else:
                z[i] = tanh(z[i])
    elif act == LOGISTIC:
        for i in range(n):
            z[i] = 1 / (1 + _exp(-z[i]))
    else:  # EXP, SOFTMAX (the four codes are checked above)
        for i in range(n):
            z[i] = _exp(z[i])
    if act == SOFTMAX:
        for i in range(rows):
            row = z + i * cols
            total = 0
            for j in range(cols):
                total = total + row[j]
            for j in range(cols):
                row[j] = row[j] / total


cdef inline void multiply_derivative(
    const floating* a,        # IN    activated values f(z) of the layer
    const floating* z,        # IN    pre-activations (GELU, SILU only; else unused)
    floating* delta,          # INOUT backpropagated error, times f'(z) on exit
    Py_ssize_t size, int act, double slope,
) noexcept nogil:
    """delta *= f'(z), written in terms of a = f(z) where the activation
    allows (a hidden activation's: the output layer's delta comes from its
    loss)."""
    cdef Py_ssize_t i
    cdef double s, v
    if act == IDENTITY:
        return
    elif act == LEAKY_RELU:
        # slope >= 0, so a > 0 exactly when z > 0
        for i in range(size):
            delta[i] = delta[i] if a[i] > 0 else <floating> (slope * delta[i])
    elif act == ELU:
        for i in range(size):
            delta[i] = delta[i] if a[i] > 0 else delta[i] * (a[i] + 1)
    elif act == SOFTPLUS:
        # f' = sigmoid(z) = 1 - exp(-f(z))
        for i in range(size):
            delta[i] = <floating> (delta[i] * -expm1(-<double> a[i]))
    elif act == GELU:
        # Phi(z) + z phi(z)
        for i in range(size):
            v = z[i]
            s = 0.5 * erfc(-v * M_SQRT1_2) + v * exp(-0.5 * v * v) * 0.3989422804014327
            delta[i] = <floating> (delta[i] * s)
    elif act == SILU:
        for i in range(size):
            v = z[i]
            s = _sigmoid(v)
            delta[i] = <floating> (delta[i] * s * (1 + v * (1 - s)))
    elif act == RELU or act == TANH or act == LOGISTIC:
        # ReLU: a select, not a branch (0 where a == 0), which vectorises and
        # which the sign pattern of a layer cannot mispredict; tanh: times
        # 1 - a^2; logistic: times a, then times 1 - a
        if floating is float:
            cymlp_derivative_f(a, delta, size, act)
        else:
            cymlp_derivative_d(a, delta, size, act)
    else:
        fill_nan(delta, size)
