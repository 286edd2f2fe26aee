# Losses: the output layer's loss together with its delta, and the
# minibatch loss as scikit-learn reports it.
#
# Inline, nogil and fused over float/double; codes and shapes were validated
# in Python. Each kernel names every loss code it handles (vocabulary.pxd);
# a code without a row, which no Network holds, gives NaN.
from cython cimport floating
from libc.math cimport log, logf, fabs, NAN
from libc.float cimport DBL_EPSILON, FLT_EPSILON

from .vocabulary cimport (
    SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS, POISSON, ABSOLUTE_ERROR, HUBER, QUANTILE,
    CYMLP_HALVED, CYMLP_MEAN_OVER_OUTPUTS, cymlp_loss_traits, is_residual_loss,
)


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


cdef inline double robust_loss(double r, int loss, double param) noexcept nogil:
    """Loss of the residual r = y - p for the robust losses (as sklearn._loss
    defines them: AbsoluteError, HuberLoss with a fixed delta, PinballLoss)."""
    cdef double a = fabs(r)
    if loss == ABSOLUTE_ERROR:
        return a
    if loss == HUBER:
        return 0.5 * a * a if a <= param else param * (a - 0.5 * param)
    if loss == QUANTILE:
        return param * r if r >= 0 else (param - 1) * r
    return NAN


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
    if loss == QUANTILE:
        return -param if r >= 0 else 1 - param
    return NAN


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
    cdef bint residual = is_residual_loss(loss)
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
            if residual:
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
            else:
                row_loss_i = NAN
                p = <floating> NAN
            if sw != NULL:
                di[j] = (p - t) * w
            else:
                di[j] = p - t
        if row_loss != NULL:
            row_loss[i] = w * row_loss_i
        total += w * row_loss_i
    return total


cdef inline double batch_loss(int loss, Py_ssize_t n_outputs, double weighted_loss,
                              double sw_sum, double alpha, double coef_sq) noexcept nogil:
    """The minibatch loss as sklearn reports it, L2 penalty included, from the
    rows' weighted loss sum and the coefficients' sum of squares."""
    cdef unsigned traits = cymlp_loss_traits(loss)
    cdef double value = weighted_loss / sw_sum
    if traits & CYMLP_HALVED:
        value = 0.5 * value
    if traits & CYMLP_MEAN_OVER_OUTPUTS:
        value = value / n_outputs
    return value + 0.5 * alpha * coef_sq / sw_sum
