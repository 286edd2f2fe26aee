"""The training engine: network geometry, forward pass, backprop, optimizer steps.

The estimator layer (``_base.py``, ``_classifier.py``, ``_regressor.py``)
validates everything and then talks to a :class:`Network`, which knows the
layer sizes, activations and loss, and which runs

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
import scipy.special

cimport numpy as cnp
from cython cimport floating
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.math cimport sqrt, pow
from libc.stdint cimport uint64_t

from ._blas cimport gemm, dot
from ._kernels cimport (
    IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP,
    LEAKY_RELU, ELU, GELU, SILU, SOFTPLUS,
    SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS, POISSON,
    SGD, ADAM,
    UnaryLoop, ufunc_loop,
    bias_activate, multiply_derivative, loss_and_delta, column_sums,
    sgd_step, adam_step, needs_preactivation, dropout_forward, all_finite,
)

ACTIVATIONS = {
    "identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU,
    "softmax": SOFTMAX, "exp": EXP,
    "leaky_relu": LEAKY_RELU, "elu": ELU, "gelu": GELU, "silu": SILU,
    "softplus": SOFTPLUS,
}
LOSSES = {
    "squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS,
    "binary_log_loss": BINARY_LOG_LOSS, "poisson": POISSON,
}
SOLVERS = {"sgd": SGD, "adam": ADAM}

# Rows per chunk in predict: as many as keep a chunk's input rows and its
# activations within about 2 MiB (a typical L2 cache), so the finiteness check
# and the GEMM read the chunk from cache and memory does not grow with X; at
# least 64 rows, for efficient GEMMs, and at most 4096.
cdef enum:
    PREDICT_CHUNK_BYTES = 2 * 1024 * 1024
    PREDICT_CHUNK_MIN = 64
    PREDICT_CHUNK_MAX = 4096


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
    double slope              # leaky_relu's negative slope
    bint keep_pre             # the hidden activation's derivative needs z
    UnaryLoop hidden_vec[2]   # vectorised activation loops: [float, double]
    UnaryLoop out_vec[2]


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


cdef struct SparseRows:
    # A minibatch of a CSR matrix: rows idx[0..rows) or start..start+rows.
    const Py_ssize_t* indptr
    const Py_ssize_t* indices
    const Py_ssize_t* idx
    Py_ssize_t start


cdef inline Py_ssize_t sparse_row(const SparseRows* sp, Py_ssize_t r) noexcept nogil:
    return sp.idx[r] if sp.idx != NULL else sp.start + r


cdef void csr_times_dense(
    const floating* data, const SparseRows* sp, Py_ssize_t rows,
    const floating* W, Py_ssize_t n_out,   # IN  W: n_in x n_out
    floating* out,                          # OUT rows x n_out
) noexcept nogil:
    """out = X[rows] @ W for CSR X, accumulating the nonzeros of a row in order
    (the order of scipy's csr @ dense)."""
    cdef Py_ssize_t r, p, k, i
    cdef floating v
    cdef floating* o
    cdef const floating* w
    for r in range(rows):
        o = out + r * n_out
        for k in range(n_out):
            o[k] = 0
        i = sparse_row(sp, r)
        for p in range(sp.indptr[i], sp.indptr[i + 1]):
            v = data[p]
            w = W + sp.indices[p] * n_out
            for k in range(n_out):
                o[k] = o[k] + v * w[k]


cdef void csr_transpose_times_dense(
    const floating* data, const SparseRows* sp, Py_ssize_t rows,
    const floating* D, Py_ssize_t n_out,   # IN  rows x n_out
    floating* G, Py_ssize_t n_in,          # OUT n_in x n_out
) noexcept nogil:
    """G = X[rows]^T @ D for CSR X, row after row (the order of scipy's csc @ dense)."""
    cdef Py_ssize_t r, p, k, i
    cdef floating v
    cdef floating* g
    cdef const floating* d
    for k in range(n_in * n_out):
        G[k] = 0
    for r in range(rows):
        d = D + r * n_out
        i = sparse_row(sp, r)
        for p in range(sp.indptr[i], sp.indptr[i + 1]):
            v = data[p]
            g = G + sp.indices[p] * n_out
            for k in range(n_out):
                g[k] = g[k] + v * d[k]


cdef inline const UnaryLoop* _vec_of(const Net* net, bint hidden, floating dtype_tag) noexcept nogil:
    cdef int k = 0 if floating is float else 1
    return &net.hidden_vec[k] if hidden else &net.out_vec[k]


# The ufunc whose inner loops implement each activation, exactly as
# scikit-learn applies it (sklearn.neural_network._base).
_ACTIVATION_UFUNCS = {
    TANH: np.tanh, LOGISTIC: scipy.special.expit, EXP: np.exp, SOFTMAX: np.exp,
}


cdef UnaryLoop resolve_loop(int act, char typecode):
    """The inner loop of the ufunc for `act` taking and giving dtype `typecode`.

    numpy picks the first matching loop of a ufunc's type list; so do we.
    fn is NULL when there is none (the kernels then use libm).
    """
    cdef UnaryLoop found
    cdef cnp.ufunc uf
    cdef int i
    found.fn = NULL
    found.data = NULL
    func = _ACTIVATION_UFUNCS.get(act)
    if func is None or not isinstance(func, np.ufunc):
        return found
    uf = func
    if uf.nin != 1 or uf.nout != 1:
        return found
    for i in range(uf.ntypes):
        if uf.types[2 * i] == typecode and uf.types[2 * i + 1] == typecode:
            found.fn = <ufunc_loop> uf.functions[i]
            found.data = uf.data[i]
            break
    return found


cdef struct Dropout:
    const double* rate        # L + 1 rates, one per layer (0: no dropout there)
    uint64_t state            # generator state, advanced as masks are drawn


cdef struct Tables:
    # Pointer tables over the packed parameters and the workspace, for one
    # precision; a block of void* so one struct serves both (see layer_tables).
    void** W                  # L coefficient matrices
    void** b                  # L intercepts
    void** act                # L + 1 activations; act[0] is the input rows
    void** delta              # L output deltas: delta[i] belongs to act[i + 1]
    void** pre                # L + 1 pre-activations (only gelu / silu), or NULL
    void** inp                # L + 1 GEMM inputs: act[i] or its dropped-out copy
    void** mask               # L + 1 dropout masks, or NULL


cdef void forward_rows(
    const Net* net, Tables* t, Py_ssize_t rows,
    const floating* sp_data, const SparseRows* sp, Dropout* drop,
) noexcept nogil:
    """act[i + 1] = f(inp[i] @ W[i] + b[i]) for every layer.

    The input is act[0] (dense rows), or the CSR minibatch sp when sp != NULL.
    With drop (training only), hidden layers with a dropout rate also get a
    mask and a dropped-out copy inp[i + 1], which the next layer reads.
    """
    cdef Py_ssize_t i, L = net.n_layers
    cdef Py_ssize_t* u = net.units
    cdef floating** W = <floating**> t.W
    cdef floating** act = <floating**> t.act
    cdef floating** inp = <floating**> t.inp
    cdef bint hidden
    for i in range(L):
        hidden = i < L - 1
        if i == 0 and sp != NULL:
            csr_times_dense(sp_data, sp, rows, W[0], u[1], act[1])
        else:
            gemm(False, False, <int> rows, <int> u[i + 1], <int> u[i],
                 <floating> 1, inp[i], <int> u[i], W[i], <int> u[i + 1],
                 <floating> 0, act[i + 1], <int> u[i + 1])
        bias_activate(act[i + 1], <floating*> t.b[i], rows, u[i + 1],
                      net.hidden_act if hidden else net.out_act,
                      _vec_of(net, hidden, <floating> 0),
                      <floating*> t.pre[i + 1] if hidden and t.pre != NULL else NULL,
                      net.slope)
        if hidden and drop != NULL and drop.rate[i + 1] > 0:
            dropout_forward(act[i + 1], inp[i + 1], <floating*> t.mask[i + 1],
                            rows * u[i + 1], drop.rate[i + 1], &drop.state)


cdef void backward_rows(
    const Net* net, Tables* t, floating* grad, Py_ssize_t rows,
    const floating* sp_data, const SparseRows* sp, const Dropout* drop,
) noexcept nogil:
    """Unscaled gradients from the output delta: grad_W[i] = inp[i]^T delta[i],
    grad_b[i] = column sums of delta[i], delta[i-1] = (delta[i] @ W[i]^T) * f'
    (times the dropout mask of that layer)."""
    cdef Py_ssize_t i, k, n, L = net.n_layers
    cdef Py_ssize_t* u = net.units
    cdef floating** delta = <floating**> t.delta
    cdef floating* mask
    for i in range(L - 1, -1, -1):
        if i == 0 and sp != NULL:
            csr_transpose_times_dense(sp_data, sp, rows, delta[0], u[1],
                                      grad + net.coef_off[0], u[0])
        else:
            gemm(True, False, <int> u[i], <int> u[i + 1], <int> rows,
                 <floating> 1, <floating*> t.inp[i], <int> u[i], delta[i], <int> u[i + 1],
                 <floating> 0, grad + net.coef_off[i], <int> u[i + 1])
        column_sums(delta[i], grad + net.bias_off[i], rows, u[i + 1])
        if i > 0:
            n = rows * u[i]
            gemm(False, True, <int> rows, <int> u[i], <int> u[i + 1],
                 <floating> 1, delta[i], <int> u[i + 1], <floating*> t.W[i], <int> u[i + 1],
                 <floating> 0, delta[i - 1], <int> u[i])
            multiply_derivative(<floating*> t.act[i],
                                <floating*> t.pre[i] if t.pre != NULL else NULL,
                                delta[i - 1], n, net.hidden_act, net.slope)
            if drop != NULL and drop.rate[i] > 0:
                mask = <floating*> t.mask[i]
                for k in range(n):
                    delta[i - 1][k] = delta[i - 1][k] * mask[k]


cdef double sum_squares(const Net* net, const floating* params) noexcept nogil:
    """Squared norm of all coefficient matrices (the L2 penalty), layer by layer
    through BLAS dot, as sklearn sums np.dot(c, c) over coefs_."""
    cdef Py_ssize_t i
    cdef double s = 0.0
    cdef const floating* c
    for i in range(net.n_layers):
        c = params + net.coef_off[i]
        s += dot(<int> (net.units[i] * net.units[i + 1]), c, c)
    return s


cdef double batch_loss(const Net* net, double weighted_loss, double sw_sum,
                       double alpha, double coef_sq) noexcept nogil:
    """The minibatch loss as sklearn reports it, L2 penalty included."""
    cdef double loss = weighted_loss / sw_sum
    if net.loss == SQUARED_ERROR:
        loss = 0.5 * loss / net.units[net.n_layers]
    return loss + 0.5 * alpha * coef_sq / sw_sum


cdef Py_ssize_t workspace_blocks(const Net* net, bint dropout) noexcept nogil:
    """Workspace size in units of rows * width: activations, deltas, and the
    pre-activations and dropout copies and masks when they are needed."""
    return 2 + (1 if net.keep_pre else 0) + (2 if dropout else 0)


cdef void** layer_tables(const Net* net, floating* params, floating* work,
                         Py_ssize_t rows, const double* rates, Tables* t) noexcept nogil:
    """Fill t with tables for minibatches of up to `rows` rows over `work`.

    One allocation holds every table (returned, for free()); NULL when out of
    memory. act[0] and inp[0] (the input rows) are left for the caller, and
    so are W and b when params is NULL (predict, from separate arrays).
    """
    cdef Py_ssize_t L = net.n_layers, i, block = rows * net.width, off
    cdef bint dropout = rates != NULL
    cdef void** blk = <void**> malloc((7 * L + 4) * sizeof(void*))
    cdef floating* pre_buf = work + 2 * block
    cdef floating* drop_buf = pre_buf + (block if net.keep_pre else 0)
    if blk == NULL:
        return NULL
    t.W = blk
    t.b = blk + L
    t.delta = blk + 2 * L
    t.act = blk + 3 * L
    t.pre = blk + 4 * L + 1 if net.keep_pre else NULL
    t.inp = blk + 5 * L + 2
    t.mask = blk + 6 * L + 3 if dropout else NULL
    for i in range(L):
        off = rows * net.act_off[i + 1]
        if params != NULL:  # predict fills W and b from separate arrays
            t.W[i] = params + net.coef_off[i]
            t.b[i] = params + net.bias_off[i]
        t.act[i + 1] = work + off
        t.delta[i] = work + block + off
        t.inp[i + 1] = work + off
        if net.keep_pre:
            t.pre[i + 1] = pre_buf + off
        if dropout and i < L - 1 and rates[i + 1] > 0:
            # the next layer reads the dropped-out copy
            t.inp[i + 1] = drop_buf + off
            t.mask[i + 1] = drop_buf + block + off
    if net.keep_pre:
        t.pre[0] = NULL
    if dropout:
        t.mask[0] = NULL
        t.mask[L] = NULL
    return blk


cdef inline void set_input(Tables* t, floating* x) noexcept nogil:
    t.act[0] = x
    t.inp[0] = x


cdef int train_epoch_impl(
    const Net* net, Optimizer* opt,
    const floating* X, const Py_ssize_t* indptr, const Py_ssize_t* indices,
    const floating* Y, const floating* sw,
    const Py_ssize_t* order, Py_ssize_t n_samples, Py_ssize_t batch_size,
    floating* params, floating* grad, floating* state1, floating* state2,
    floating* work, Dropout* drop, double* loss_out,
) noexcept nogil:
    """One epoch of minibatch training. Returns 0, or -1 if out of memory.

    X is dense (indptr == NULL) or the data of a CSR matrix. A minibatch whose
    sample weights sum to zero carries no information: it is skipped (no
    update, no loss), where a division by its weight sum would poison the
    weights with NaN. `work` holds the shuffled rows of a dense minibatch
    first (when order is given), then the layer buffers.
    """
    cdef Py_ssize_t L = net.n_layers, r, start, rows
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef Py_ssize_t n_coefs = net.n_coefs, n_bias = net.n_params - net.n_coefs
    cdef bint gather = order != NULL and indptr == NULL
    cdef Tables t
    cdef void** blk = layer_tables(net, params, work + (batch_size * n_in if gather else 0),
                                   batch_size, drop.rate if drop != NULL else NULL, &t)
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if indptr != NULL else NULL
    cdef const floating* y_batch
    cdef const floating* sw_batch
    cdef const Py_ssize_t* idx
    cdef double sw_sum, wloss, coef_sq = 0.0, accumulated = 0.0, lr_t
    if blk == NULL:
        return -1
    sp.indptr = indptr
    sp.indices = indices

    start = 0
    while start < n_samples:
        rows = min(batch_size, n_samples - start)
        # Select the minibatch: rows order[start:start+rows] (shuffled epoch)
        # or the block start:start+rows, used in place.
        if order != NULL:
            idx = order + start
            y_batch = Y
            sw_batch = sw
        else:
            idx = NULL
            y_batch = Y + start * n_out
            sw_batch = sw + start if sw != NULL else NULL
        if indptr != NULL:
            sp.idx = idx
            sp.start = start
        elif gather:
            for r in range(rows):
                memcpy(work + r * n_in, X + idx[r] * n_in, n_in * sizeof(floating))
            set_input(&t, work)
        else:
            set_input(&t, <floating*> X + start * n_in)

        if sw != NULL:
            sw_sum = 0.0
            for r in range(rows):
                sw_sum += sw_batch[idx[r] if idx != NULL else r]
            if sw_sum == 0:
                start += rows
                continue
        else:
            sw_sum = rows

        forward_rows(net, &t, rows, X, spp, drop)
        wloss = loss_and_delta(<floating*> t.act[L], y_batch, idx, sw_batch,
                               <floating*> t.delta[L - 1], rows, n_out, net.loss)
        if opt.alpha != 0:
            coef_sq = sum_squares(net, params)
        accumulated += batch_loss(net, wloss, sw_sum, opt.alpha, coef_sq) * rows
        backward_rows(net, &t, grad, rows, X, spp, drop)

        # One pass over the packed buffer: coefficients (with the L2 term), then
        # intercepts.
        if opt.kind == ADAM:
            opt.t += 1
            lr_t = (opt.lr * sqrt(1 - pow(opt.beta_2, <double> opt.t))
                    / (1 - pow(opt.beta_1, <double> opt.t)))
            adam_step(params, grad, state1, state2, n_coefs,
                      opt.alpha, sw_sum, lr_t, opt.beta_1, opt.beta_2, opt.epsilon)
            adam_step(params + n_coefs, grad + n_coefs, state1 + n_coefs, state2 + n_coefs,
                      n_bias, 0.0, sw_sum, lr_t, opt.beta_1, opt.beta_2, opt.epsilon)
        else:
            sgd_step(params, grad, state1, n_coefs, opt.alpha, sw_sum,
                     opt.lr, opt.momentum, opt.nesterov)
            sgd_step(params + n_coefs, grad + n_coefs, state1 + n_coefs, n_bias,
                     0.0, sw_sum, opt.lr, opt.momentum, opt.nesterov)
        start += rows

    loss_out[0] = accumulated
    free(blk)
    return 0


cdef int loss_grad_impl(
    const Net* net, double alpha,
    const floating* X, const Py_ssize_t* indptr, const Py_ssize_t* indices,
    const floating* Y, const floating* sw, Py_ssize_t n_samples,
    floating* params, floating* grad, floating* work, double* loss_out,
) noexcept nogil:
    """Loss over all rows at once and, unless grad is NULL, its gradient (for
    lbfgs; without grad, the validation loss). 0, or -1 if out of memory."""
    cdef Py_ssize_t L = net.n_layers, i
    cdef Tables t
    cdef void** blk = layer_tables(net, params, work, n_samples, NULL, &t)
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if indptr != NULL else NULL
    cdef double sw_sum, wloss
    cdef floating a_ = <floating> alpha, n_
    if blk == NULL:
        return -1
    sp.indptr = indptr
    sp.indices = indices
    sp.idx = NULL
    sp.start = 0
    set_input(&t, <floating*> X)
    if sw != NULL:
        sw_sum = 0.0
        for i in range(n_samples):
            sw_sum += sw[i]
    else:
        sw_sum = n_samples
    forward_rows(net, &t, n_samples, X, spp, NULL)
    wloss = loss_and_delta(<floating*> t.act[L], Y, NULL, sw, <floating*> t.delta[L - 1],
                           n_samples, net.units[L], net.loss)
    loss_out[0] = batch_loss(net, wloss, sw_sum, alpha,
                             sum_squares(net, params) if alpha != 0 else 0.0)
    if grad != NULL:
        backward_rows(net, &t, grad, n_samples, X, spp, NULL)
        # (A^T delta + alpha W) / sw_sum, then the intercepts' sums / sw_sum
        n_ = <floating> sw_sum
        for i in range(net.n_coefs):
            grad[i] = (grad[i] + a_ * params[i]) / n_
        for i in range(net.n_coefs, net.n_params):
            grad[i] = grad[i] / n_
    free(blk)
    return 0


cdef int predict_impl(
    const Net* net, floating** W, floating** b,
    const floating* X, const Py_ssize_t* indptr, const Py_ssize_t* indices,
    Py_ssize_t n_samples, floating* out, bint check_finite, Py_ssize_t chunk_rows,
) noexcept nogil:
    """out = forward pass of X, chunk_rows rows at a time.

    Returns 0; -1 if out of memory; 1 if check_finite found a NaN or infinity
    in dense X (out is then incomplete). W and b are the layer tables (the
    weights need not be one packed buffer).
    """
    cdef Py_ssize_t L = net.n_layers, i, start, rows
    cdef Py_ssize_t chunk = min(chunk_rows, n_samples)
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef floating* buf = <floating*> malloc(
        max(chunk * net.width * workspace_blocks(net, False), 1) * sizeof(floating))
    cdef Tables t
    cdef void** blk = layer_tables(net, <floating*> NULL, buf, chunk, NULL, &t) if buf != NULL else NULL
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if indptr != NULL else NULL
    if buf == NULL or blk == NULL:
        free(buf); free(blk)
        return -1
    for i in range(L):
        t.W[i] = W[i]
        t.b[i] = b[i]
    sp.indptr = indptr
    sp.indices = indices
    sp.idx = NULL
    start = 0
    while start < n_samples:
        rows = min(chunk, n_samples - start)
        # Checking each chunk just before its product reads X from memory
        # once, not twice as a separate pass over all of X would.
        if check_finite and spp == NULL and not all_finite(X + start * n_in, rows * n_in):
            free(blk); free(buf)
            return 1
        set_input(&t, <floating*> X + start * n_in)
        # the output layer is written straight into `out`
        t.act[L] = out + start * n_out
        sp.start = start
        forward_rows(net, &t, rows, X, spp, NULL)
        start += rows
    free(blk); free(buf)
    return 0


cdef class Network:
    """Geometry of a fully connected network and the compiled passes over it.

    Parameters
    ----------
    layer_units : sequence of int
        Widths of all layers, input first, output last.
    activation : str
        Hidden activation: 'identity', 'logistic', 'tanh', 'relu',
        'leaky_relu', 'elu', 'gelu', 'silu' or 'softplus'.
    out_activation : str
        Output activation: 'identity', 'logistic', 'softmax' or 'exp'.
    loss : str
        'squared_error', 'log_loss', 'binary_log_loss' or 'poisson'.
    negative_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs (>= 0).

    Notes
    -----
    Names are validated by the estimator; unknown ones raise KeyError here.
    """
    cdef Net net
    cdef object _index   # owns units / offsets

    def __cinit__(self, layer_units, str activation, str out_activation, str loss,
                  double negative_slope=0.01):
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
        self.net.slope = negative_slope
        self.net.keep_pre = needs_preactivation(self.net.hidden_act)
        for i, typecode in enumerate((cnp.NPY_FLOAT, cnp.NPY_DOUBLE)):
            self.net.hidden_vec[i] = resolve_loop(self.net.hidden_act, typecode)
            self.net.out_vec[i] = resolve_loop(self.net.out_act, typecode)

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

    def workspace(self, Py_ssize_t batch_size, bint gather, dtype, bint dropout=False):
        """Scratch memory for minibatches of up to ``batch_size`` rows.

        Activations and deltas of every layer (and pre-activations, dropout
        copies and masks where needed), and with ``gather`` room to collect
        the rows of a shuffled dense minibatch.
        """
        cdef Py_ssize_t size = (workspace_blocks(&self.net, dropout)
                                * batch_size * self.net.width)
        if gather:
            size += batch_size * self.net.units[0]
        return np.empty(size, dtype=dtype)

    def train_epoch(self, X, Y, sample_weight, order, Py_ssize_t batch_size,
                    params, grad, state1, state2, work, dict optimizer, dropout=None):
        """Train one epoch in place; return (sum over minibatches of loss * rows, adam t).

        Parameters
        ----------
        X : C-contiguous float32 or float64 array, or CSR matrix, (n_samples, n_features)
        Y : C-contiguous array of X's dtype (n_samples, n_outputs)
        sample_weight : array of X's dtype (n_samples,) or None
        order : intp array (n_samples,) or None
            Visit rows in this order (shuffled epoch) or in storage order.
        batch_size : int, 1 <= batch_size <= n_samples
        params, grad, state1, state2 : arrays of X's dtype (n_params,)
            The packed parameters (updated in place), gradient scratch, and the
            optimizer state (sgd: velocity in state1, state2 None; adam: moments).
        work : array from :meth:`workspace` (gather: order given and X dense)
        optimizer : dict
            kind ('sgd' or 'adam'), alpha, lr, momentum, nesterov, beta_1,
            beta_2, epsilon, t.
        dropout : (rates, seed) or None
            rates: float64 array of n_layers + 1 dropout rates in [0, 1), one
            per layer (only hidden layers' are used); seed: int in [0, 2**64).
            ``work`` must then come from ``workspace(..., dropout=True)``.
        """
        data, indptr, indices = _split_input(X)
        if dropout is not None:
            rates = np.ascontiguousarray(dropout[0], dtype=np.float64)
            if rates.shape != (self.net.n_layers + 1,):
                raise ValueError("dropout rates: one per layer")
            dropout = (rates, int(dropout[1]))
        if data.dtype == np.float32:
            return _train_epoch[float](self, data, indptr, indices, Y, sample_weight,
                                       order, batch_size, params, grad, state1, state2,
                                       work, optimizer, dropout)
        return _train_epoch[double](self, data, indptr, indices, Y, sample_weight,
                                    order, batch_size, params, grad, state1, state2,
                                    work, optimizer, dropout)

    def loss_grad(self, X, Y, sample_weight, params, grad, work, double alpha):
        """Loss over all rows, with its gradient written into ``grad`` (for lbfgs).

        With ``grad=None``, the loss only (a validation loss). ``work`` comes
        from :meth:`workspace` with batch_size = n_samples, no gather.
        """
        data, indptr, indices = _split_input(X)
        if data.dtype == np.float32:
            return _loss_grad[float](self, data, indptr, indices, Y, sample_weight,
                                     params, grad, work, alpha)
        return _loss_grad[double](self, data, indptr, indices, Y, sample_weight,
                                  params, grad, work, alpha)

    def predict(self, X, coefs, intercepts, check_finite=False, chunk_rows=None):
        """Output-layer activations for every row of X.

        X is a C-contiguous float array or a CSR matrix; ``coefs`` and
        ``intercepts`` are lists of C-contiguous arrays of X's dtype. With
        ``check_finite``, a dense X is checked for NaN and infinity on the way
        and None is returned if it holds any. ``chunk_rows`` overrides the
        number of rows per chunk (for tests and tuning).
        """
        data, indptr, indices = _split_input(X)
        out = np.empty((X.shape[0], self.net.units[self.net.n_layers]), dtype=data.dtype)
        if chunk_rows is None:
            row_bytes = data.dtype.itemsize * sum(
                self.net.units[i] for i in range(self.net.n_layers + 1))
            chunk_rows = min(max(PREDICT_CHUNK_BYTES // row_bytes, PREDICT_CHUNK_MIN),
                             PREDICT_CHUNK_MAX)
        if data.dtype == np.float32:
            finite = _predict[float](self, data, indptr, indices, coefs, intercepts, out,
                                     check_finite, chunk_rows)
        else:
            finite = _predict[double](self, data, indptr, indices, coefs, intercepts, out,
                                      check_finite, chunk_rows)
        return out if finite else None


def _split_input(X):
    """(data, indptr, indices): a dense array with two Nones, or a CSR matrix's arrays.

    Index arrays are taken as intp (a copy only if scipy stored them as int32).
    """
    if hasattr(X, "indptr"):
        return (X.data, X.indptr.astype(np.intp, copy=False),
                X.indices.astype(np.intp, copy=False))
    return X, None, None


cdef inline const Py_ssize_t* _ptr_or_null(const Py_ssize_t[::1] a):
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const floating* _data_ptr(const floating[::1] data, const Py_ssize_t[::1] indptr):
    # A CSR matrix may have no stored value at all; its data pointer is then
    # never read, but must not be taken from an empty view.
    return &data[0] if data.shape[0] > 0 else NULL


cdef _train_epoch(Network self, data, const Py_ssize_t[::1] indptr,
                  const Py_ssize_t[::1] indices, const floating[:, ::1] Y,
                  const floating[::1] sample_weight, const Py_ssize_t[::1] order,
                  Py_ssize_t batch_size, floating[::1] params, floating[::1] grad,
                  floating[::1] state1, floating[::1] state2, floating[::1] work,
                  dict optimizer, dropout):
    cdef Optimizer opt
    cdef Dropout drop
    cdef Dropout* drop_p = NULL
    cdef const double[::1] rates
    cdef double loss_sum = 0.0
    cdef int status
    cdef const floating[::1] flat = np.ravel(data)   # a view: data is C-contiguous
    cdef const floating* x = _data_ptr(flat, indptr)
    cdef const Py_ssize_t* ip = _ptr_or_null(indptr)
    cdef const Py_ssize_t* ix = _ptr_or_null(indices)
    cdef const floating* sw = &sample_weight[0] if sample_weight is not None else NULL
    cdef const Py_ssize_t* order_p = &order[0] if order is not None else NULL
    cdef floating* s2 = &state2[0] if state2 is not None else NULL
    opt.kind = SOLVERS[optimizer["kind"]]
    opt.alpha = optimizer["alpha"]
    opt.lr = optimizer["lr"]
    opt.momentum = optimizer["momentum"]
    opt.nesterov = optimizer["nesterov"]
    opt.beta_1 = optimizer["beta_1"]
    opt.beta_2 = optimizer["beta_2"]
    opt.epsilon = optimizer["epsilon"]
    opt.t = optimizer["t"]
    if dropout is not None:
        rates = dropout[0]
        drop.rate = &rates[0]
        drop.state = <uint64_t> dropout[1]
        drop_p = &drop
    with nogil:
        status = train_epoch_impl(
            &self.net, &opt, x, ip, ix, &Y[0, 0], sw, order_p, Y.shape[0], batch_size,
            &params[0], &grad[0], &state1[0], s2, &work[0], drop_p, &loss_sum)
    if status != 0:
        raise MemoryError("cymlp: could not allocate the layer tables")
    return loss_sum, opt.t


cdef _loss_grad(Network self, data, const Py_ssize_t[::1] indptr,
                const Py_ssize_t[::1] indices, const floating[:, ::1] Y,
                const floating[::1] sample_weight, floating[::1] params,
                floating[::1] grad, floating[::1] work, double alpha):
    cdef double loss = 0.0
    cdef int status
    cdef const floating[::1] flat = np.ravel(data)
    cdef const floating* x = _data_ptr(flat, indptr)
    cdef const Py_ssize_t* ip = _ptr_or_null(indptr)
    cdef const Py_ssize_t* ix = _ptr_or_null(indices)
    cdef const floating* sw = &sample_weight[0] if sample_weight is not None else NULL
    cdef floating* g = &grad[0] if grad is not None else NULL
    with nogil:
        status = loss_grad_impl(&self.net, alpha, x, ip, ix, &Y[0, 0], sw, Y.shape[0],
                                &params[0], g, &work[0], &loss)
    if status != 0:
        raise MemoryError("cymlp: could not allocate the layer tables")
    return loss


cdef _predict(Network self, data, const Py_ssize_t[::1] indptr,
              const Py_ssize_t[::1] indices, list coefs, list intercepts,
              floating[:, ::1] out, bint check_finite, Py_ssize_t chunk_rows):
    """Fill out; False if check_finite found a non-finite value in X."""
    cdef Py_ssize_t L = self.net.n_layers, i
    cdef const floating[::1] flat = np.ravel(data)
    cdef const floating* x = _data_ptr(flat, indptr)
    cdef const Py_ssize_t* ip = _ptr_or_null(indptr)
    cdef const Py_ssize_t* ix = _ptr_or_null(indices)
    cdef const floating[:, ::1] w      # const: the weights may be read-only
    cdef const floating[::1] bias      # (e.g. a joblib memmap)
    cdef floating** W = <floating**> malloc(2 * L * sizeof(floating*))
    cdef int status
    if W == NULL:
        raise MemoryError()
    try:
        # The lists keep the arrays alive while the pointers are in use.
        for i in range(L):
            w = coefs[i]
            bias = intercepts[i]
            W[i] = <floating*> &w[0, 0]
            W[L + i] = <floating*> &bias[0]
        if out.shape[0] == 0:
            return True
        with nogil:
            status = predict_impl(&self.net, W, W + L, x, ip, ix, out.shape[0], &out[0, 0],
                                  check_finite, max(chunk_rows, 1))
        if status < 0:
            raise MemoryError()
        return status == 0
    finally:
        free(W)


# ----------------------------------------------------------------------------
# Test hooks: each elementwise kernel, callable on numpy arrays, so the tests
# can check it against a numpy reference. Not part of the public API. They
# validate shapes themselves, since tests feed them arbitrary arrays.
# ----------------------------------------------------------------------------

def _check_same_shape(*arrays):
    shapes = {tuple(a.shape) for a in arrays if a is not None}
    if len(shapes) != 1:
        raise ValueError("shape mismatch: %s" % sorted(shapes))


def _kernel_activation(str name, floating[:, ::1] z, const floating[::1] bias,
                       double negative_slope=0.01):
    """z = f(z + bias) in place (bias broadcast over rows)."""
    if bias.shape[0] != z.shape[1]:
        raise ValueError("bias must have z.shape[1] entries")
    cdef int act = ACTIVATIONS[name]
    cdef UnaryLoop vec = resolve_loop(act, cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE)
    if z.shape[0] == 0 or z.shape[1] == 0:
        return
    with nogil:
        bias_activate(&z[0, 0], &bias[0], z.shape[0], z.shape[1], act, &vec, NULL,
                      negative_slope)


def _kernel_derivative(str name, const floating[::1] a, floating[::1] delta,
                       const floating[::1] z=None, double negative_slope=0.01):
    """delta *= f'(z), from the activated values a = f(z) (and z itself for
    'gelu' and 'silu', which need it)."""
    _check_same_shape(np.asarray(a), np.asarray(delta), None if z is None else np.asarray(z))
    cdef int act = ACTIVATIONS[name]
    if needs_preactivation(act) and z is None:
        raise ValueError("%s needs the pre-activations z" % name)
    if a.shape[0] == 0:
        return
    cdef const floating* zp = &z[0] if z is not None else NULL
    with nogil:
        multiply_derivative(&a[0], zp, &delta[0], a.shape[0], act, negative_slope)


def _kernel_loss(str loss, const floating[:, ::1] out, const floating[:, ::1] y,
                 const floating[::1] sample_weight, floating[:, ::1] delta):
    """Return sum_i w_i * loss_i and fill delta = (out - y) * w."""
    _check_same_shape(np.asarray(out), np.asarray(y), np.asarray(delta))
    if sample_weight is not None and sample_weight.shape[0] != out.shape[0]:
        raise ValueError("sample_weight must have one entry per row")
    cdef int code = LOSSES[loss]
    cdef const floating* sw = &sample_weight[0] if sample_weight is not None else NULL
    cdef double total
    if out.shape[0] == 0 or out.shape[1] == 0:
        return 0.0
    with nogil:
        total = loss_and_delta(&out[0, 0], &y[0, 0], NULL, sw, &delta[0, 0],
                               out.shape[0], out.shape[1], code)
    return total


def _kernel_optimizer_step(str kind, floating[::1] params, const floating[::1] grad_raw,
                           floating[::1] state1, floating[::1] state2, double alpha,
                           double sw_sum, double lr, double momentum=0.9,
                           bint nesterov=True, double beta_1=0.9, double beta_2=0.999,
                           double epsilon=1e-8):
    """One optimizer step over a whole buffer (state2 is adam's second moment).

    For adam, ``lr`` is the bias-corrected rate of this step.
    """
    _check_same_shape(np.asarray(params), np.asarray(grad_raw), np.asarray(state1),
                      None if state2 is None else np.asarray(state2))
    if kind == "adam" and state2 is None:
        raise ValueError("adam needs state2")
    if params.shape[0] == 0:
        return
    if kind == "adam":
        with nogil:
            adam_step(&params[0], &grad_raw[0], &state1[0], &state2[0], params.shape[0],
                      alpha, sw_sum, lr, beta_1, beta_2, epsilon)
    elif kind == "sgd":
        with nogil:
            sgd_step(&params[0], &grad_raw[0], &state1[0], params.shape[0],
                     alpha, sw_sum, lr, momentum, nesterov)
    else:
        raise ValueError("unknown optimizer %r" % kind)


def _kernel_all_finite(const floating[::1] x):
    """True if no value of x is NaN or infinite (predict's input check)."""
    cdef bint finite = True
    if x.shape[0] > 0:
        with nogil:
            finite = all_finite(&x[0], x.shape[0])
    return finite
