"""The training engine: network geometry, forward pass, backprop, optimizer steps.

The estimator layer (``_estimators.py``) validates everything and then talks to
a :class:`Network`, which knows the layer sizes, activations and loss, and
which runs

* :meth:`Network.train_epoch`: a whole epoch of minibatch training in one call
  without the GIL (minibatch rows gathered by index, forward, loss, backprop and
  one fused optimizer pass over the packed parameter buffer per minibatch);
* :meth:`Network.predict`: the forward pass over any number of rows, in chunks,
  without the GIL.

All parameters live in one packed buffer, scikit-learn's lbfgs layout: every
coefficient matrix (row-major, fan_in x fan_out) one after the other, then
every intercept vector. ``coefs_`` and ``intercepts_`` are views into it.
"""
import numpy as np

from cython cimport floating
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.math cimport sqrt, pow

from ._blas cimport gemm
from ._kernels cimport (
    IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP,
    SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS, POISSON,
    SGD, ADAM,
    bias_activate, multiply_derivative, loss_and_delta, column_sums,
    sgd_step, adam_step,
)

ACTIVATIONS = {
    "identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU,
    "softmax": SOFTMAX, "exp": EXP,
}
LOSSES = {
    "squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS,
    "binary_log_loss": BINARY_LOG_LOSS, "poisson": POISSON,
}
SOLVERS = {"sgd": SGD, "adam": ADAM}

# Rows per chunk in predict: big enough for efficient GEMMs, small enough that
# the activations of a chunk stay in cache and memory does not grow with X.
cdef enum:
    PREDICT_CHUNK = 256


cdef struct Net:
    Py_ssize_t n_layers       # number of weight layers, L
    Py_ssize_t* units         # L + 1 layer widths, input first
    Py_ssize_t* coef_off      # L offsets of the coefficient matrices
    Py_ssize_t* bias_off      # L offsets of the intercept vectors
    Py_ssize_t* act_off       # L + 1 offsets (per row) of each layer in a workspace row block
    Py_ssize_t n_coefs        # the intercepts start here
    Py_ssize_t n_params
    Py_ssize_t width          # sum(units[1:]): workspace floats per row
    int hidden_act
    int out_act
    int loss


cdef struct Optimizer:
    int kind
    double alpha
    double lr                 # sgd: current rate; adam: learning_rate_init
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    Py_ssize_t t              # adam: steps taken so far


cdef void forward_rows(
    const Net* net, floating** W, floating** b, floating** act, Py_ssize_t rows,
) noexcept nogil:
    """act[i + 1] = f(act[i] @ W[i] + b[i]) for every layer; act[0] is the input."""
    cdef Py_ssize_t i, L = net.n_layers
    cdef Py_ssize_t* u = net.units
    for i in range(L):
        gemm(False, False, <int> rows, <int> u[i + 1], <int> u[i],
             <floating> 1, act[i], <int> u[i], W[i], <int> u[i + 1],
             <floating> 0, act[i + 1], <int> u[i + 1])
        bias_activate(act[i + 1], b[i], rows, u[i + 1],
                      net.hidden_act if i < L - 1 else net.out_act)


cdef void backward_rows(
    const Net* net, floating** W, floating** act, floating** delta,
    floating* grad, Py_ssize_t rows,
) noexcept nogil:
    """Unscaled gradients from the output delta: grad_W[i] = act[i]^T delta[i],
    grad_b[i] = column sums of delta[i], delta[i-1] = (delta[i] @ W[i]^T) * f'."""
    cdef Py_ssize_t i, L = net.n_layers
    cdef Py_ssize_t* u = net.units
    for i in range(L - 1, -1, -1):
        gemm(True, False, <int> u[i], <int> u[i + 1], <int> rows,
             <floating> 1, act[i], <int> u[i], delta[i], <int> u[i + 1],
             <floating> 0, grad + net.coef_off[i], <int> u[i + 1])
        column_sums(delta[i], grad + net.bias_off[i], rows, u[i + 1])
        if i > 0:
            gemm(False, True, <int> rows, <int> u[i], <int> u[i + 1],
                 <floating> 1, delta[i], <int> u[i + 1], W[i], <int> u[i + 1],
                 <floating> 0, delta[i - 1], <int> u[i])
            multiply_derivative(act[i], delta[i - 1], rows * u[i], net.hidden_act)


cdef inline double sum_squares(const floating* a, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t i
    cdef double s = 0.0
    for i in range(size):
        s += <double> a[i] * a[i]
    return s


cdef double batch_loss(const Net* net, double weighted_loss, double sw_sum,
                       double alpha, double coef_sq, Py_ssize_t n_out) noexcept nogil:
    """The minibatch loss as sklearn reports it, L2 penalty included."""
    cdef double loss = weighted_loss / sw_sum
    if net.loss == SQUARED_ERROR:
        loss = 0.5 * loss / n_out
    return loss + 0.5 * alpha * coef_sq / sw_sum


cdef int train_epoch_impl(
    const Net* net, Optimizer* opt,
    const floating* X, const floating* Y, const floating* sw,
    const Py_ssize_t* order, Py_ssize_t n_samples, Py_ssize_t batch_size,
    floating* params, floating* grad, floating* state1, floating* state2,
    floating* work, double* loss_out,
) noexcept nogil:
    """One epoch of minibatch training. Returns 0, or -1 if out of memory."""
    cdef Py_ssize_t L = net.n_layers, i, r, start, rows
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef Py_ssize_t n_coefs = net.n_coefs, n_bias = net.n_params - net.n_coefs
    cdef floating** W = <floating**> malloc(L * sizeof(floating*))
    cdef floating** b = <floating**> malloc(L * sizeof(floating*))
    cdef floating** act = <floating**> malloc((L + 1) * sizeof(floating*))
    cdef floating** delta = <floating**> malloc(L * sizeof(floating*))
    cdef floating* gather = work
    cdef floating* acts = work + (batch_size * n_in if order != NULL else 0)
    cdef floating* deltas = acts + batch_size * net.width
    cdef const floating* y_batch
    cdef const floating* sw_batch
    cdef const Py_ssize_t* idx
    cdef double sw_sum, wloss, coef_sq = 0.0, accumulated = 0.0, lr_t
    if W == NULL or b == NULL or act == NULL or delta == NULL:
        free(W); free(b); free(act); free(delta)
        return -1

    for i in range(L):
        W[i] = params + net.coef_off[i]
        b[i] = params + net.bias_off[i]
        act[i + 1] = acts + batch_size * net.act_off[i + 1]
        delta[i] = deltas + batch_size * net.act_off[i + 1]
    if opt.alpha != 0:
        coef_sq = sum_squares(params, n_coefs)

    start = 0
    while start < n_samples:
        rows = min(batch_size, n_samples - start)
        if order != NULL:
            idx = order + start
            for r in range(rows):
                memcpy(gather + r * n_in, X + idx[r] * n_in, n_in * sizeof(floating))
            act[0] = gather
            y_batch = Y
            sw_batch = sw
        else:
            # No shuffling: the minibatch is a contiguous block of X, used in place.
            idx = NULL
            act[0] = <floating*> X + start * n_in
            y_batch = Y + start * n_out
            sw_batch = sw + start if sw != NULL else NULL

        forward_rows(net, W, b, act, rows)
        wloss = loss_and_delta(act[L], y_batch, idx, sw_batch, delta[L - 1],
                               rows, n_out, net.loss)
        if sw != NULL:
            sw_sum = 0.0
            for r in range(rows):
                sw_sum += sw_batch[idx[r] if idx != NULL else r]
        else:
            sw_sum = rows
        accumulated += batch_loss(net, wloss, sw_sum, opt.alpha, coef_sq, n_out) * rows
        backward_rows(net, W, act, delta, grad, rows)

        # One pass over the packed buffer: coefficients (with the L2 term), then
        # intercepts. The step returns the new squared norm for the next loss.
        if opt.kind == ADAM:
            opt.t += 1
            lr_t = (opt.lr * sqrt(1 - pow(opt.beta_2, <double> opt.t))
                    / (1 - pow(opt.beta_1, <double> opt.t)))
            coef_sq = adam_step(params, grad, state1, state2, n_coefs,
                                opt.alpha, sw_sum, lr_t, opt.beta_1, opt.beta_2, opt.epsilon)
            adam_step(params + n_coefs, grad + n_coefs, state1 + n_coefs, state2 + n_coefs,
                      n_bias, 0.0, sw_sum, lr_t, opt.beta_1, opt.beta_2, opt.epsilon)
        else:
            coef_sq = sgd_step(params, grad, state1, n_coefs, opt.alpha, sw_sum,
                               opt.lr, opt.momentum, opt.nesterov)
            sgd_step(params + n_coefs, grad + n_coefs, state1 + n_coefs, n_bias,
                     0.0, sw_sum, opt.lr, opt.momentum, opt.nesterov)
        start += rows

    loss_out[0] = accumulated
    free(W); free(b); free(act); free(delta)
    return 0


cdef int predict_impl(
    const Net* net, floating** W, floating** b,
    const floating* X, Py_ssize_t n_samples, floating* out,
) noexcept nogil:
    """out = forward pass of X, PREDICT_CHUNK rows at a time. 0, or -1 if out of memory."""
    cdef Py_ssize_t L = net.n_layers, i, start, rows
    cdef Py_ssize_t chunk = min(<Py_ssize_t> PREDICT_CHUNK, n_samples)
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef floating** act = <floating**> malloc((L + 1) * sizeof(floating*))
    # hidden layers only: the output layer is written straight into `out`
    cdef floating* buf = <floating*> malloc(
        max(chunk * (net.width - n_out), 1) * sizeof(floating))
    if act == NULL or buf == NULL:
        free(act); free(buf)
        return -1
    for i in range(1, L):
        act[i] = buf + chunk * net.act_off[i]
    start = 0
    while start < n_samples:
        rows = min(chunk, n_samples - start)
        act[0] = <floating*> X + start * n_in
        act[L] = out + start * n_out
        forward_rows(net, W, b, act, rows)
        start += rows
    free(act); free(buf)
    return 0


cdef class Network:
    """Geometry of a fully connected network and the compiled passes over it.

    Parameters
    ----------
    layer_units : sequence of int
        Widths of all layers, input first, output last.
    activation : str
        Hidden activation: 'identity', 'logistic', 'tanh' or 'relu'.
    out_activation : str
        Output activation: 'identity', 'logistic', 'softmax' or 'exp'.
    loss : str
        'squared_error', 'log_loss', 'binary_log_loss' or 'poisson'.

    Notes
    -----
    Names are validated by the estimator; unknown ones raise KeyError here.
    """
    cdef Net net
    cdef object _index   # owns units / offsets

    def __cinit__(self, layer_units, str activation, str out_activation, str loss):
        cdef Py_ssize_t L = len(layer_units) - 1, i
        cdef Py_ssize_t[::1] index
        if L < 1:
            raise ValueError("a network needs at least an input and an output layer")
        self._index = np.zeros(4 * (L + 1), dtype=np.intp)
        index = self._index
        self.net.n_layers = L
        self.net.units = &index[0]
        self.net.coef_off = &index[L + 1]
        self.net.bias_off = &index[2 * (L + 1)]
        self.net.act_off = &index[3 * (L + 1)]
        for i in range(L + 1):
            self.net.units[i] = int(layer_units[i])
        cdef Py_ssize_t pos = 0
        for i in range(L):
            self.net.coef_off[i] = pos
            pos += self.net.units[i] * self.net.units[i + 1]
        self.net.n_coefs = pos
        for i in range(L):
            self.net.bias_off[i] = pos
            pos += self.net.units[i + 1]
        self.net.n_params = pos
        self.net.act_off[0] = 0
        self.net.act_off[1] = 0
        for i in range(1, L):
            self.net.act_off[i + 1] = self.net.act_off[i] + self.net.units[i]
        self.net.width = self.net.act_off[L] + self.net.units[L]
        self.net.hidden_act = ACTIVATIONS[activation]
        self.net.out_act = ACTIVATIONS[out_activation]
        self.net.loss = LOSSES[loss]

    @property
    def n_params(self):
        """Length of the packed parameter buffer."""
        return self.net.n_params

    @property
    def layer_units(self):
        return [self.net.units[i] for i in range(self.net.n_layers + 1)]

    def views(self, params):
        """The coefficient matrices and intercept vectors as views into ``params``."""
        cdef Py_ssize_t i
        u = self.layer_units
        coefs = [params[self.net.coef_off[i]:self.net.coef_off[i] + u[i] * u[i + 1]]
                 .reshape(u[i], u[i + 1]) for i in range(self.net.n_layers)]
        intercepts = [params[self.net.bias_off[i]:self.net.bias_off[i] + u[i + 1]]
                      for i in range(self.net.n_layers)]
        return coefs, intercepts

    def workspace(self, Py_ssize_t batch_size, bint gather, dtype):
        """A scratch buffer for :meth:`train_epoch` with minibatches of ``batch_size``."""
        cdef Py_ssize_t size = 2 * batch_size * self.net.width
        if gather:
            size += batch_size * self.net.units[0]
        return np.empty(size, dtype=dtype)

    def train_epoch(self, X, Y, sample_weight, order, Py_ssize_t batch_size,
                    params, grad, state1, state2, work, dict optimizer):
        """Train one epoch in place; return (sum over minibatches of loss * rows, adam t).

        Parameters
        ----------
        X : C-contiguous float32 or float64 array (n_samples, n_features)
        Y : C-contiguous array of X's dtype (n_samples, n_outputs)
        sample_weight : array of X's dtype (n_samples,) or None
        order : intp array (n_samples,) or None
            Visit rows in this order (shuffled epoch) or in storage order.
        batch_size : int, 1 <= batch_size <= n_samples
        params, grad, state1, state2 : arrays of X's dtype (n_params,)
            The packed parameters (updated in place), gradient scratch, and the
            optimizer state (sgd: velocity in state1; adam: moments).
        work : array from :meth:`workspace` (gather=order is not None)
        optimizer : dict
            kind ('sgd' or 'adam'), alpha, lr, momentum, nesterov, beta_1,
            beta_2, epsilon, t.
        """
        if X.dtype == np.float32:
            return _train_epoch[float](self, X, Y, sample_weight, order, batch_size,
                                       params, grad, state1, state2, work, optimizer)
        return _train_epoch[double](self, X, Y, sample_weight, order, batch_size,
                                    params, grad, state1, state2, work, optimizer)

    def predict(self, X, coefs, intercepts):
        """Output-layer activations for every row of X (C-contiguous float array).

        ``coefs`` and ``intercepts`` are lists of C-contiguous arrays of X's dtype.
        """
        out = np.empty((X.shape[0], self.net.units[self.net.n_layers]), dtype=X.dtype)
        if X.dtype == np.float32:
            _predict[float](self, X, coefs, intercepts, out)
        else:
            _predict[double](self, X, coefs, intercepts, out)
        return out


cdef _train_epoch(Network self, const floating[:, ::1] X, const floating[:, ::1] Y,
                  const floating[::1] sample_weight, const Py_ssize_t[::1] order,
                  Py_ssize_t batch_size, floating[::1] params, floating[::1] grad,
                  floating[::1] state1, floating[::1] state2, floating[::1] work,
                  dict optimizer):
    cdef Optimizer opt
    cdef double loss_sum = 0.0
    cdef int status
    cdef const floating* sw = &sample_weight[0] if sample_weight is not None else NULL
    cdef const Py_ssize_t* order_p = &order[0] if order is not None else NULL
    opt.kind = SOLVERS[optimizer["kind"]]
    opt.alpha = optimizer["alpha"]
    opt.lr = optimizer["lr"]
    opt.momentum = optimizer["momentum"]
    opt.nesterov = optimizer["nesterov"]
    opt.beta_1 = optimizer["beta_1"]
    opt.beta_2 = optimizer["beta_2"]
    opt.epsilon = optimizer["epsilon"]
    opt.t = optimizer["t"]
    with nogil:
        status = train_epoch_impl(
            &self.net, &opt, &X[0, 0], &Y[0, 0], sw, order_p, X.shape[0], batch_size,
            &params[0], &grad[0], &state1[0],
            &state2[0] if state2 is not None else NULL, &work[0], &loss_sum)
    if status != 0:
        raise MemoryError("cymlp: could not allocate the layer tables")
    return loss_sum, opt.t


cdef _predict(Network self, const floating[:, ::1] X, list coefs, list intercepts,
              floating[:, ::1] out):
    cdef Py_ssize_t L = self.net.n_layers, i
    cdef floating[:, ::1] w
    cdef floating[::1] bias
    cdef floating** W = <floating**> malloc(L * sizeof(floating*))
    cdef floating** b = <floating**> malloc(L * sizeof(floating*))
    cdef int status
    if W == NULL or b == NULL:
        free(W); free(b)
        raise MemoryError()
    try:
        # The lists keep the arrays alive while the pointers are in use.
        for i in range(L):
            w = coefs[i]
            bias = intercepts[i]
            W[i] = &w[0, 0]
            b[i] = &bias[0]
        if X.shape[0] == 0:
            return
        with nogil:
            status = predict_impl(&self.net, W, b, &X[0, 0], X.shape[0], &out[0, 0])
        if status != 0:
            raise MemoryError()
    finally:
        free(W); free(b)
