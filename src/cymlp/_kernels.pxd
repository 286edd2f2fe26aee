# Elementwise kernels of the network: activations and their derivatives,
# the output layer's loss together with its delta, and the optimizer steps.
#
# All are inline, nogil and fused over float/double. They trust their
# arguments: shapes and codes were validated in Python before any call.
# Arrays are row-major blocks of `rows` x `cols` with no padding.
#
# The arithmetic follows scikit-learn's order of operations (bias added after
# the product, derivatives taken from the activated values, gradients formed
# as (A^T delta + alpha W) / sw_sum), so that the same seed gives the same
# weights to rounding.
from cython cimport floating
from libc.math cimport exp, expf, expm1, tanh, tanhf, log, logf, log1p, erfc, sqrt, fabs, M_SQRT1_2
from libc.stdint cimport uint64_t
from libc.float cimport DBL_EPSILON, FLT_EPSILON

# Activation codes; the estimator maps names to these (see _engine.ACTIVATIONS).
cdef enum:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4
    EXP = 5
    # beyond scikit-learn (hidden layers only)
    LEAKY_RELU = 6
    ELU = 7
    GELU = 8          # exact: z * Phi(z)
    SILU = 9
    SOFTPLUS = 10

# Loss codes.
cdef enum:
    SQUARED_ERROR = 0
    LOG_LOSS = 1          # softmax outputs, one-hot targets
    BINARY_LOG_LOSS = 2   # logistic outputs, one column per label
    POISSON = 3           # exp outputs, half Poisson deviance
    # beyond scikit-learn (identity outputs; robust and quantile regression)
    ABSOLUTE_ERROR = 4
    HUBER = 5             # loss_param: the threshold delta
    QUANTILE = 6          # pinball loss; loss_param: the quantile in (0, 1)

# Optimizer codes.
cdef enum:
    SGD = 0
    ADAM = 1

# The streaming loops written in C, compiled for several instruction sets
# (AVX-512, AVX2, baseline) and picked when the module loads: see
# _vector_loops.h. The kernels below call them for the passes they cover.
cdef extern from "vector_loops.h" nogil:
    void cymlp_bias_relu_f(float* z, const float* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_bias_relu_d(double* z, const double* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_add_bias_f(float* z, const float* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_add_bias_d(double* z, const double* bias, Py_ssize_t rows, Py_ssize_t cols)
    void cymlp_derivative_f(const float* a, float* delta, Py_ssize_t n, int kind)
    void cymlp_derivative_d(const double* a, double* delta, Py_ssize_t n, int kind)
    void cymlp_column_sums_f(const float* a, float* out, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t ld)
    void cymlp_column_sums_d(const double* a, double* out, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t ld)


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _clip_prob(floating p) noexcept nogil:
    # sklearn clips probabilities to [eps, 1 - eps] of the working dtype
    # before taking logs.
    cdef floating eps
    if floating is float:
        eps = FLT_EPSILON
    else:
        eps = DBL_EPSILON
    if p < eps:
        return eps
    if p > 1 - eps:
        return 1 - eps
    return p


# A vectorised elementwise function: the inner loop of a numpy (or scipy)
# ufunc for one dtype, called on a contiguous block, in place. Using the very
# loops scikit-learn's numpy calls gives bit-identical activations and SIMD
# speed; the engine looks them up at import (see _engine.resolve_loop). When
# fn is NULL the kernels fall back to libm.
ctypedef void (*ufunc_loop)(char** args, const Py_ssize_t* dims,
                            const Py_ssize_t* steps, void* data) noexcept nogil

cdef struct UnaryLoop:
    ufunc_loop fn
    void* data


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


cdef inline bint needs_preactivation(int act) noexcept nogil:
    """Whether f'(z) cannot be written in terms of f(z), so z must be kept."""
    return act == GELU or act == SILU


cdef inline bint is_extra_activation(int act) noexcept nogil:
    """The activations scikit-learn does not have, named one by one (the
    codes' order means nothing)."""
    return (act == LEAKY_RELU or act == ELU or act == GELU or act == SILU
            or act == SOFTPLUS)


cdef inline double _sigmoid(double z) noexcept nogil:
    return 1 / (1 + exp(-z))


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
    if act == RELU:
        for i in range(n):
            z[i] = z[i] if not z[i] < 0 else 0
        return
    if is_extra_activation(act):
        activate_extra(z, n, act, slope)
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
    if act == IDENTITY or n == 0:
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
    else:  # EXP, SOFTMAX
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
    """delta *= f'(z), written in terms of a = f(z) where the activation allows."""
    cdef Py_ssize_t i
    cdef double s, v
    if act == LEAKY_RELU:
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
            cymlp_derivative_f(a, delta, size, 0 if act == RELU else 1 if act == TANH else 2)
        else:
            cymlp_derivative_d(a, delta, size, 0 if act == RELU else 1 if act == TANH else 2)
    # IDENTITY: nothing to do


cdef inline bint is_mean_over_outputs(int loss) noexcept nogil:
    """Losses reported as a mean over the outputs (squared error, as
    scikit-learn does, and cymlp's robust losses), not a sum."""
    return (loss == SQUARED_ERROR or loss == ABSOLUTE_ERROR or loss == HUBER
            or loss == QUANTILE)


cdef inline double robust_loss(double r, int loss, double param) noexcept nogil:
    """Loss of the residual r = y - p for the robust losses (as sklearn._loss
    defines them: AbsoluteError, HuberLoss with a fixed delta, PinballLoss)."""
    cdef double a = fabs(r)
    if loss == ABSOLUTE_ERROR:
        return a
    if loss == HUBER:
        return 0.5 * a * a if a <= param else param * (a - 0.5 * param)
    # QUANTILE
    return param * r if r >= 0 else (param - 1) * r


cdef inline double robust_gradient(double r, int loss, double param) noexcept nogil:
    """d loss / d p for the residual r = y - p. At the kinks (r == 0; for
    Huber |r| == delta, where it is continuous) the value sklearn's
    gradient-boosting losses give: absolute error -1, pinball -quantile."""
    if loss == ABSOLUTE_ERROR:
        return -1.0 if r >= 0 else 1.0
    if loss == HUBER:
        if fabs(r) <= param:
            return -r
        return -param if r >= 0 else param
    # QUANTILE
    return -param if r >= 0 else 1 - param


cdef inline double loss_and_delta(
    const floating* out,       # IN  rows x cols, activated outputs
    const floating* y,         # IN  targets, row r at y + rowidx[r] * cols (or r * cols)
    const Py_ssize_t* rowidx,  # IN  rows (or NULL: rows are consecutive)
    const floating* sw,        # IN  sample weights indexed like y (or NULL)
    floating* delta,           # OUT rows x cols: d loss / d z_out, times sw
    double* row_loss,          # OUT sw_i * loss_i of every row, or NULL
    Py_ssize_t rows, Py_ssize_t cols, int loss,
    double loss_param,         # IN  Huber's delta or the quantile (else unused)
) noexcept nogil:
    """Return sum_i sw_i * loss_i over the rows, and fill the output delta.

    row_loss lets the engine split the rows among threads and still add the
    rows' losses in one order, whatever the split.

    With a canonical link (softmax/log-loss, logistic/binary log-loss,
    identity/squared error, exp/Poisson) the delta is simply out - y.
    The caller divides the sum by sw_sum (and by cols for squared error).

    The robust losses (identity output) report the mean over the outputs,
    as squared error does, and their delta is the exact gradient of that
    mean: g(y - p) * sw / cols. (Squared error keeps scikit-learn's out - y,
    the gradient of the sum over outputs, for parity.)
    """
    cdef Py_ssize_t i, j, src
    cdef const floating* yi
    cdef const floating* oi
    cdef floating* di
    cdef floating w, p, t
    cdef double r, row_loss_i, total = 0.0
    cdef double inv_cols = 1.0 / cols
    for i in range(rows):
        src = rowidx[i] if rowidx != NULL else i
        yi = y + src * cols
        oi = out + i * cols
        di = delta + i * cols
        w = sw[src] if sw != NULL else 1
        row_loss_i = 0.0
        for j in range(cols):
            p = oi[j]
            t = yi[j]
            if loss == ABSOLUTE_ERROR or loss == HUBER or loss == QUANTILE:
                r = <double> t - p
                row_loss_i += robust_loss(r, loss, loss_param)
                di[j] = <floating> (robust_gradient(r, loss, loss_param) * w * inv_cols)
                continue
            if loss == SQUARED_ERROR:
                row_loss_i += (<double> t - p) * (<double> t - p)
            elif loss == LOG_LOSS:
                if t != 0:
                    row_loss_i -= t * <double> _log(_clip_prob(p))
            elif loss == BINARY_LOG_LOSS:
                if t != 0:
                    row_loss_i -= t * <double> _log(_clip_prob(p))
                if t != 1:
                    row_loss_i -= (1 - t) * <double> _log(1 - _clip_prob(p))
            elif loss == POISSON:
                # xlogy(t, t / p) - t + p; the log of the ratio as a difference
                # in double, so that a tiny float32 p does not overflow t / p
                row_loss_i += p - <double> t
                if t != 0:
                    row_loss_i += t * (log(<double> t) - log(<double> p))
            if sw != NULL:
                di[j] = (p - t) * w
            else:
                di[j] = p - t
        if row_loss != NULL:
            row_loss[i] = w * row_loss_i
        total += w * row_loss_i
    return total


cdef inline void column_sums(
    const floating* a,         # IN  rows x cols, rows ld apart
    floating* out,             # OUT cols
    Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld,
) noexcept nogil:
    """out = a.sum(axis=0), accumulated row after row as numpy does (ld > cols:
    a block of columns of a wider matrix, for a split among threads)."""
    if floating is float:
        cymlp_column_sums_f(a, out, rows, cols, ld)
    else:
        cymlp_column_sums_d(a, out, rows, cols, ld)


cdef extern from "optimizer_steps.h" nogil:
    void cymlp_sgd_step_f(float* w, const float* g_raw, float* velocity, Py_ssize_t size,
                          float alpha, float inv_n, float lr, float mu, int nesterov, double* sq)
    void cymlp_sgd_step_d(double* w, const double* g_raw, double* velocity, Py_ssize_t size,
                          double alpha, double inv_n, double lr, double mu, int nesterov,
                          double* sq)

cdef extern from "adam_path.h" nogil:
    # path: CYMLP_PATH_AUTO (the one chosen on first use), _DIVIDER, _FMA,
    # _HYBRID or their _AVX2 variants (adam_path.h); all give the same bits
    void cymlp_adam_step_f(float* w, const float* g_raw, float* m, float* v, Py_ssize_t size,
                           float alpha, float inv_n, float b1, float c1, float b2, float c2,
                           float eps, float lr_t, double* sq, int path)
    void cymlp_adam_step_d(double* w, const double* g_raw, double* m, double* v,
                           Py_ssize_t size, double alpha, double inv_n, double b1, double c1,
                           double b2, double c2, double eps, double lr_t, double* sq, int path)
    void cymlp_adam_quotients_f(const float* a, const float* v, float eps, float* out,
                                Py_ssize_t n, int sqrt_only, int path)
    void cymlp_adam_quotients_d(const double* a, const double* v, double eps, double* out,
                                Py_ssize_t n, int sqrt_only, int path)
    # the choice of AUTO's paths, made on the first call of any of these
    int cymlp_adam_select()
    int cymlp_adam_path_f()
    int cymlp_adam_path_d()
    enum:
        CYMLP_PATH_AUTO
        CYMLP_PATH_DIVIDER
        CYMLP_PATH_FMA
        CYMLP_PATH_HYBRID
        CYMLP_PATH_FMA_AVX2
        CYMLP_PATH_HYBRID_AVX2

cdef extern from "exact_quotient.h" nogil:
    int cymlp_fma_quotient_supported()
    int cymlp_avx2_quotient_supported()
    void cymlp_avx2_picks_ps(const float* a, const float* v, const float* c, float* out,
                             Py_ssize_t n, int sqrt_only)
    void cymlp_avx2_picks_pd(const double* a, const double* v, const double* c, double* out,
                             Py_ssize_t n, int sqrt_only)

cdef extern from "vector_loops.h" nogil:
    int cymlp_all_finite_f(const float* x, Py_ssize_t n)
    int cymlp_all_finite_d(const double* x, Py_ssize_t n)


cdef inline double narrow_to_float32(double* x, float* x32, Py_ssize_t n,
                                     bint want_sq) noexcept nogil:
    """x = float32(x) in place, as numpy stores a float64 result into a float32
    array (round to nearest; past float32's range, inf), and x32 the same
    values as floats. With want_sq, returns the sum of the rounded values'
    squares (else 0)."""
    cdef Py_ssize_t i
    cdef double sq = 0.0
    cdef float v
    for i in range(n):
        v = <float> x[i]
        x32[i] = v
        x[i] = v
        if want_sq:
            sq += x[i] * x[i]
    return sq


cdef inline bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """True if none of the n values is NaN or infinite."""
    if floating is float:
        return cymlp_all_finite_f(x, n)
    else:
        return cymlp_all_finite_d(x, n)


cdef inline void sgd_step(
    floating* w,               # INOUT parameters
    const floating* g_raw,     # IN    unscaled gradient (A^T delta, or column sums)
    floating* velocity,        # INOUT
    Py_ssize_t size,
    double alpha, double sw_sum,
    double lr, double momentum, bint nesterov,
    double* sq,                # OUT   sum of the new w's squares (unless NULL)
) noexcept nogil:
    """One SGD (momentum / Nesterov) step.

    The gradient is formed on the fly as (g_raw + alpha * w) / sw_sum, in the
    parameters' dtype as sklearn does (times the reciprocal: one division
    fewer per element, a difference of at most one rounding). The scalars are
    rounded to the parameters' dtype first, as numpy does with Python floats.
    """
    if floating is float:
        cymlp_sgd_step_f(w, g_raw, velocity, size, <float> alpha, <float> (1.0 / sw_sum),
                         <float> lr, <float> momentum, nesterov, sq)
    else:
        cymlp_sgd_step_d(w, g_raw, velocity, size, alpha, 1.0 / sw_sum, lr, momentum,
                         nesterov, sq)


cdef inline void adam_step(
    floating* w,               # INOUT parameters
    const floating* g_raw,     # IN    unscaled gradient
    floating* m,               # INOUT first moment
    floating* v,               # INOUT second moment
    Py_ssize_t size,
    double alpha, double sw_sum,
    double lr_t, double beta_1, double beta_2, double epsilon,
    double* sq,                # OUT   sum of the new w's squares (unless NULL)
    int path=-1,               # IN    CYMLP_PATH_*: AUTO (-1), or a forced one (tests)
) noexcept nogil:
    """One Adam step with the bias-corrected rate lr_t, in the parameters' dtype.

    (For float32, numpy in sklearn forms the final step in float64 because its
    rate is a float64 scalar; doing it in float32 differs by a rounding and
    halves the cost of the division.)
    """
    if floating is float:
        cymlp_adam_step_f(w, g_raw, m, v, size, <float> alpha, <float> (1.0 / sw_sum),
                          <float> beta_1, <float> (1 - beta_1), <float> beta_2,
                          <float> (1 - beta_2), <float> epsilon, <float> lr_t, sq, path)
    else:
        cymlp_adam_step_d(w, g_raw, m, v, size, alpha, 1.0 / sw_sum, beta_1, 1 - beta_1,
                          beta_2, 1 - beta_2, epsilon, lr_t, sq, path)


# ----------------------------------------------------------------------------
# Dropout: a counter-based generator (splitmix64), seeded once per epoch from
# the estimator's RandomState, so that fits are reproducible.
# ----------------------------------------------------------------------------

cdef inline uint64_t splitmix64(uint64_t* state) noexcept nogil:
    cdef uint64_t z
    state[0] += <uint64_t> 0x9E3779B97F4A7C15
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline uint64_t splitmix64_skip(uint64_t state, Py_ssize_t n) noexcept nogil:
    """The state after n draws from state: the generator is a counter, so a
    thread can start its share of a mask where the serial sequence would be."""
    return state + <uint64_t> n * <uint64_t> 0x9E3779B97F4A7C15


cdef inline void dropout_forward(
    const floating* a,         # IN  activations of a hidden layer
    floating* dropped,         # OUT a * mask
    floating* mask,            # OUT 0 (dropped) or 1 / (1 - rate) (kept)
    Py_ssize_t size, double rate, uint64_t* state,
) noexcept nogil:
    """Inverted dropout: zero each unit with probability rate, scale the rest."""
    cdef Py_ssize_t i
    cdef floating keep = <floating> (1.0 / (1.0 - rate))
    cdef double u
    for i in range(size):
        u = (splitmix64(state) >> 11) * (1.0 / 9007199254740992.0)
        mask[i] = keep if u >= rate else 0
        dropped[i] = a[i] * mask[i]
