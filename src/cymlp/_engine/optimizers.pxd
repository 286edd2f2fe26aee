# The optimizers' steps over a range of the packed parameter buffer.
#
# A step forms the gradient on the fly as (g_raw + alpha * w) / sw_sum for
# the coefficients (alpha = 0 for the intercepts), in the parameters' dtype,
# as scikit-learn does, and updates the parameters and the moments in one
# pass (csrc/optimizer_steps.h, csrc/adam_path.h). Each step names the
# optimizer codes it handles (vocabulary.pxd); lbfgs never steps here
# (scipy's minimiser does). AdamW is Adam's step after a decay pass; clipping
# by the global norm scales the gradient by a factor the step folds into its
# 1 / sw_sum.
from cython cimport floating
from libc.math cimport sqrt, pow, NAN

from .vocabulary cimport SGD, ADAM, ADAMW


# Settings captured when the optimizer is made (as scikit-learn's
# SGDOptimizer / AdamOptimizer capture theirs), the per-epoch alpha and rate,
# and the moments: packed buffers shaped like the parameters.
cdef struct Optimizer:
    int kind                  # SGD, ADAM or ADAMW
    double alpha
    double lr                 # the epoch's rate (sgd, adam: before its bias correction)
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double weight_decay       # adamw: the decoupled decay (0: Adam's bits)
    double max_grad_norm      # clip the gradient's global norm to this; 0: no clipping
    Py_ssize_t t              # adam, adamw: steps taken so far
    void* state1              # sgd velocity / adam first moment
    void* state2              # adam second moment, or NULL
    # A double optimizer of float32 weights (Trainer's float32_weights): each
    # step rounds the weights to float32 and writes them here too, for the
    # float32 forward pass; NULL otherwise.
    float* params32


cdef extern from "optimizer_steps.h" nogil:
    void cymlp_sgd_step_f(float* w, const float* g_raw, float* velocity, Py_ssize_t size,
                          float alpha, float inv_n, float lr, float mu, int nesterov, double* sq)
    void cymlp_sgd_step_d(double* w, const double* g_raw, double* velocity, Py_ssize_t size,
                          double alpha, double inv_n, double lr, double mu, int nesterov,
                          double* sq)
    void cymlp_decay_step_f(float* w, float* g_raw, Py_ssize_t size, float alpha, float decay)
    void cymlp_decay_step_d(double* w, double* g_raw, Py_ssize_t size, double alpha,
                            double decay)
    void cymlp_grad_sq_f(const float* w, const float* g_raw, Py_ssize_t size, float alpha,
                         float inv_n, double* sq)
    void cymlp_grad_sq_d(const double* w, const double* g_raw, Py_ssize_t size, double alpha,
                         double inv_n, double* sq)

cdef extern from "adam_path.h" nogil:
    # path: CYMLP_PATH_AUTO (the one chosen on first use), _DIVIDER, _FMA,
    # _HYBRID or their _AVX2 variants (csrc/adam_path.h); all give the same bits
    void cymlp_adam_step_f(float* w, const float* g_raw, float* m, float* v, Py_ssize_t size,
                           float alpha, float inv_n, float b1, float c1, float b2, float c2,
                           float eps, float lr_t, double* sq, int path)
    void cymlp_adam_step_d(double* w, const double* g_raw, double* m, double* v,
                           Py_ssize_t size, double alpha, double inv_n, double b1, double c1,
                           double b2, double c2, double eps, double lr_t, double* sq, int path)
    # the quotient a / (sqrt(v) + eps) alone, by a path
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


cdef inline void sgd_step(
    floating* w,               # INOUT parameters
    const floating* g_raw,     # IN    unscaled gradient (A^T delta, or column sums)
    floating* velocity,        # INOUT
    Py_ssize_t size,
    double alpha, double sw_sum,
    double lr, double momentum, bint nesterov,
    double* sq,                # OUT   sum of the new w's squares (unless NULL)
    double grad_scale=1.0,     # IN    the clipping factor (1: none)
) noexcept nogil:
    """One SGD (momentum / Nesterov) step.

    The gradient is (g_raw + alpha * w) times the reciprocal of sw_sum (one
    division fewer per element, a difference of at most one rounding), or
    with clipping times grad_scale / sw_sum (grad_scale 1 gives 1 / sw_sum
    exactly). The scalars are rounded to the parameters' dtype first, as
    numpy does with Python floats.
    """
    if floating is float:
        cymlp_sgd_step_f(w, g_raw, velocity, size, <float> alpha,
                         <float> (grad_scale / sw_sum), <float> lr, <float> momentum,
                         nesterov, sq)
    else:
        cymlp_sgd_step_d(w, g_raw, velocity, size, alpha, grad_scale / sw_sum, lr, momentum,
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
    double grad_scale=1.0,     # IN    the clipping factor (1: none), as sgd_step's
) noexcept nogil:
    """One Adam step with the bias-corrected rate lr_t, in the parameters' dtype.

    (For float32, numpy in sklearn forms the final step in float64 because its
    rate is a float64 scalar; doing it in float32 differs by a rounding and
    halves the cost of the division.)
    """
    if floating is float:
        cymlp_adam_step_f(w, g_raw, m, v, size, <float> alpha,
                          <float> (grad_scale / sw_sum), <float> beta_1, <float> (1 - beta_1),
                          <float> beta_2, <float> (1 - beta_2), <float> epsilon, <float> lr_t,
                          sq, path)
    else:
        cymlp_adam_step_d(w, g_raw, m, v, size, alpha, grad_scale / sw_sum, beta_1,
                          1 - beta_1, beta_2, 1 - beta_2, epsilon, lr_t, sq, path)


cdef inline void adamw_step(
    floating* w,               # INOUT parameters
    floating* g_raw,           # INOUT unscaled gradient; the L2 term is added in place
    floating* m,               # INOUT first moment
    floating* v,               # INOUT second moment
    Py_ssize_t size,
    double alpha, double sw_sum,
    double lr, double weight_decay,
    double lr_t, double beta_1, double beta_2, double epsilon,
    double* sq,                # OUT   sum of the new w's squares (unless NULL)
    int path=-1,               # IN    as adam_step's
    double grad_scale=1.0,     # IN    as adam_step's
) noexcept nogil:
    """One AdamW step (torch.optim.AdamW's arithmetic, with scikit-learn's
    bias-corrected rate lr_t as Adam's step): w *= 1 - lr * weight_decay,
    then Adam's update from the gradient at the weights before the decay.

    With weight_decay 0 it is Adam's step, bit for bit. Otherwise a decay
    pass first (csrc/optimizer_steps.h: it adds the L2 term alpha * w to
    g_raw at the undecayed weights and decays w), then Adam's step with
    alpha 0, by whichever path Adam's step takes. The factor 1 - lr *
    weight_decay is rounded to the parameters' dtype, as torch multiplies a
    float32 tensor by a Python float.
    """
    if weight_decay > 0:
        if floating is float:
            cymlp_decay_step_f(w, g_raw, size, <float> alpha,
                               <float> (1.0 - lr * weight_decay))
        else:
            cymlp_decay_step_d(w, g_raw, size, alpha, 1.0 - lr * weight_decay)
        alpha = 0.0
    adam_step(w, g_raw, m, v, size, alpha, sw_sum, lr_t, beta_1, beta_2, epsilon, sq, path,
              grad_scale)


cdef inline bint counts_steps(int kind) noexcept nogil:
    """Whether an optimizer counts its steps (the bias correction of Adam's
    rate: adam and adamw) and folds the next minibatch's L2 penalty into its
    step (see calls.pxi)."""
    return kind == ADAM or kind == ADAMW


cdef inline double grad_sq_range(const floating* w, const floating* g, Py_ssize_t e0,
                                 Py_ssize_t e1, Py_ssize_t n_coefs, double alpha,
                                 double sw_sum) noexcept nogil:
    """The sum of squares of the gradient the steps see over w[e0:e1] of the
    packed buffer, (g_raw + alpha * w) / sw_sum for the coefficients and
    g_raw / sw_sum for the intercepts, each element formed as the steps
    form it (in the parameters' dtype, times the reciprocal of sw_sum). The
    order is fixed by the range: the same sum on any number of threads."""
    cdef Py_ssize_t lo, hi, part
    cdef double a, sq, total = 0.0
    for part in range(2):
        lo = e0 if part == 0 else max(e0, n_coefs)
        hi = min(e1, n_coefs) if part == 0 else e1
        a = alpha if part == 0 else 0.0
        if hi <= lo:
            continue
        sq = 0.0
        if floating is float:
            cymlp_grad_sq_f(w + lo, g + lo, hi - lo, <float> a, <float> (1.0 / sw_sum), &sq)
        else:
            cymlp_grad_sq_d(w + lo, g + lo, hi - lo, a, 1.0 / sw_sum, &sq)
        total += sq
    return total


cdef inline double clip_factor(double max_norm, double sum_squares) noexcept nogil:
    """torch.nn.utils.clip_grad_norm_'s factor: max_norm / (norm + 1e-6) when
    that is below 1, else 1 (no clipping); 0 for an infinite norm, NaN for a
    NaN one (torch's too)."""
    cdef double coef = max_norm / (sqrt(sum_squares) + 1e-6)
    if coef < 1.0 or coef != coef:
        return coef
    return 1.0


cdef inline double step_rate(const Optimizer* opt, Py_ssize_t steps) noexcept nogil:
    """The rate of a step: sgd's current rate; adam's (and adamw's)
    bias-corrected rate of its steps-th step (steps counted from 1), as
    scikit-learn computes it."""
    if counts_steps(opt.kind):
        return (opt.lr * sqrt(1 - pow(opt.beta_2, <double> steps))
                / (1 - pow(opt.beta_1, <double> steps)))
    return opt.lr


cdef inline double step_range(const Optimizer* opt, floating* w, floating* g,
                              Py_ssize_t e0, Py_ssize_t e1, Py_ssize_t n_coefs,
                              double sw_sum, double lr_t, bint want_sq,
                              double grad_scale=1.0) noexcept nogil:
    """The optimizer step over w[e0:e1] of the packed buffer: coefficients
    with the L2 term, intercepts without; the gradient times grad_scale
    (clipping; 1: none). With want_sq, returns the sum of squares of the new
    coefficients in the range (else 0). AdamW with a decay writes the L2
    term into g (see adamw_step); the other steps only read it."""
    cdef Py_ssize_t lo, hi, part
    cdef double alpha, sq = 0.0
    cdef double* sq_out
    cdef floating* s1 = <floating*> opt.state1
    cdef floating* s2 = <floating*> opt.state2
    cdef bint narrow = floating is double and opt.params32 != NULL
    for part in range(2):
        lo = e0 if part == 0 else max(e0, n_coefs)
        hi = min(e1, n_coefs) if part == 0 else e1
        alpha = opt.alpha if part == 0 else 0.0
        # narrowed weights: their squares are summed once rounded, below
        sq_out = &sq if part == 0 and want_sq and not narrow else NULL
        if hi <= lo:
            continue
        if opt.kind == ADAM:
            adam_step(w + lo, g + lo, s1 + lo, s2 + lo, hi - lo, alpha, sw_sum, lr_t,
                      opt.beta_1, opt.beta_2, opt.epsilon, sq_out, -1, grad_scale)
        elif opt.kind == SGD:
            sgd_step(w + lo, g + lo, s1 + lo, hi - lo, alpha, sw_sum, opt.lr,
                     opt.momentum, opt.nesterov, sq_out, grad_scale)
        elif opt.kind == ADAMW:
            adamw_step(w + lo, g + lo, s1 + lo, s2 + lo, hi - lo, alpha, sw_sum, opt.lr,
                       opt.weight_decay, lr_t, opt.beta_1, opt.beta_2, opt.epsilon, sq_out,
                       -1, grad_scale)
        else:
            return NAN  # no such step: the Trainer refuses other kinds
        if floating is double:
            if narrow:
                # float32 weights += a float64 step: numpy adds in float64 and
                # stores the sum rounded to float32 (inf past float32's range)
                sq += narrow_to_float32(w + lo, opt.params32 + lo, hi - lo,
                                        part == 0 and want_sq)
    return sq
