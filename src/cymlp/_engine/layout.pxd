# The shapes of an engine call: the network's geometry (Net), the rows it is
# handed (Data), and the workspace those rows need, laid out in one place
# (workspace_layout) with pointer tables over it (Tables, layer_tables).
from libc.stdlib cimport malloc

from .activations cimport UnaryLoop
from .resources cimport cymlp_failure, cymlp_fail
from .vocabulary cimport needs_preactivation


cdef struct Net:
    # Weight layer i (i in 0..L-1) maps units[i] inputs to units[i + 1]
    # outputs; its outputs are the hidden layer i for i < L - 1, the
    # network's output for i = L - 1.
    Py_ssize_t n_layers       # number of weight layers, L
    Py_ssize_t* units         # L + 1 layer widths, input first
    Py_ssize_t* coef_off      # L offsets of the coefficient matrices
    Py_ssize_t* bias_off      # L offsets of the intercept vectors
    Py_ssize_t* out_off       # L offsets of weight layer i's outputs in a workspace row
    Py_ssize_t n_coefs        # the intercepts start here
    Py_ssize_t n_params
    Py_ssize_t width          # sum(units[1:]): workspace floats per row (every layer's outputs)
    int* hidden_act           # L - 1 activation codes, one per hidden layer
    int out_act
    int loss                  # a loss code, or -1: forward pass only (no training)
    double loss_param         # Huber's delta or the quantile
    double slope              # leaky_relu's negative slope
    bint keep_pre             # some hidden activation's derivative needs z
    UnaryLoop* hidden_vec     # 2 (L - 1) vectorised activation loops: hidden layer i's
                              # [float, double] at 2 i and 2 i + 1
    UnaryLoop out_vec[2]


cdef struct Data:
    # The rows an engine call reads: dense (indptr == NULL) or CSR data,
    # targets and sample weights (sw NULL: all ones).
    const void* X
    const Py_ssize_t* indptr
    const Py_ssize_t* indices
    const void* Y
    const void* sw
    Py_ssize_t n_samples


cdef struct Tables:
    # Pointer tables over the packed parameters and the workspace, for one
    # precision; a block of void* so one struct serves both (see layer_tables).
    # Indexed by weight layer i in 0..L-1; the tables of what only hidden
    # layers have (pre, next_in, mask) by hidden layer i in 0..L-2, the
    # output of weight layer i. The input is no entry: the passes take it
    # as an argument.
    void** W                  # L coefficient matrices: units[i] x units[i + 1]
    void** b                  # L intercepts
    void** out                # L outputs (after the activation); out[L - 1] the network's output
    void** delta              # L deltas: the loss's gradient at out[i]'s pre-activation
    void** pre                # L - 1 pre-activations of the hidden layers (gelu / silu; NULL
                              # for a layer of another activation), or NULL
    void** next_in            # L - 1 what weight layer i + 1 reads: out[i] or its dropped-out copy
    void** mask               # L - 1 dropout masks (NULL where the rate is 0), or NULL
    void* gathered            # the rows of a shuffled dense minibatch, or NULL
    double* row_loss          # one loss per row (for a split of the loss pass)


# The regions of a workspace, in this order. Each layer region is `rows`
# blocks of net.width values: a row's outputs of every weight layer (at
# Net.out_off). The hidden layers' regions (pre-activations, dropout) keep
# the output layer's columns too, unused, so that one offset serves all.
cdef enum:
    WS_GATHER = 0   # the rows of a shuffled dense minibatch (gather only)
    WS_OUT = 1      # outputs of every weight layer
    WS_DELTA = 2    # their deltas
    WS_PRE = 3      # pre-activations (gelu / silu only)
    WS_DROP = 4     # dropped-out copies of the hidden outputs (dropout only)
    WS_MASK = 5     # the dropout masks (dropout only)
    WS_END = 6      # the workspace's size


cdef inline void workspace_layout(const Net* net, Py_ssize_t rows, bint gather, bint dropout,
                                  Py_ssize_t* off) noexcept nogil:
    """Fill off[0..WS_END] with the offsets of a workspace's regions for
    minibatches of up to `rows` rows: the one place that decides the layout.
    At most rows * (units[0] + 5 * width) values (gather, pre and dropout)."""
    cdef Py_ssize_t block = rows * net.width  # one region: every layer's values for every row
    off[WS_GATHER] = 0
    off[WS_OUT] = rows * net.units[0] if gather else 0  # the gathered rows: units[0] values each
    off[WS_DELTA] = off[WS_OUT] + block
    off[WS_PRE] = off[WS_DELTA] + block
    off[WS_DROP] = off[WS_PRE] + (block if net.keep_pre else 0)
    off[WS_MASK] = off[WS_DROP] + (block if dropout else 0)
    off[WS_END] = off[WS_MASK] + (block if dropout else 0)


cdef inline Py_ssize_t workspace_size(const Net* net, Py_ssize_t rows, bint gather,
                                      bint dropout) noexcept nogil:
    cdef Py_ssize_t off[WS_END + 1]
    workspace_layout(net, rows, gather, dropout, off)
    return off[WS_END]


cdef inline Py_ssize_t tables_pointers(const Net* net, bint dropout) noexcept nogil:
    # W, b, out, delta (L each), then next_in, pre (gelu / silu), mask (dropout): L - 1 each
    return 4 * net.n_layers + (1 + net.keep_pre + dropout) * (net.n_layers - 1)


cdef inline size_t tables_bytes(const Net* net, Py_ssize_t rows, bint dropout) noexcept nogil:
    # the pointer tables, then one double (the row's loss) per row
    return tables_pointers(net, dropout) * sizeof(void*) + rows * sizeof(double)


cdef inline void** layer_tables(const Net* net, void* params, void* work,
                                size_t itemsize, Py_ssize_t rows, bint gather,
                                const double* rates, Tables* t,
                                cymlp_failure* fail) noexcept nogil:
    """Fill t with tables for minibatches of up to `rows` rows over `work`
    (values of itemsize bytes), laid out by workspace_layout with the same
    rows, gather and dropout.

    One allocation holds every table and the rows' losses (returned, for
    free()); NULL (fail filled) when out of memory. W and b are left for the
    caller when params is NULL (predict, from separate arrays).
    """
    cdef Py_ssize_t L = net.n_layers, H = net.n_layers - 1, i, off
    cdef Py_ssize_t region[WS_END + 1]
    cdef bint dropout = rates != NULL
    cdef char* p = <char*> params
    cdef char* w = <char*> work
    cdef void** blk = <void**> malloc(tables_bytes(net, rows, dropout))
    if blk == NULL:
        cymlp_fail(fail, "the layer tables", tables_bytes(net, rows, dropout))
        return NULL
    workspace_layout(net, rows, gather, dropout, region)
    t.row_loss = <double*> (blk + tables_pointers(net, dropout))
    t.gathered = w + region[WS_GATHER] * itemsize if gather else NULL
    # the tables in tables_pointers' order: L per weight layer, H = L - 1 per hidden layer
    t.W = blk
    t.b = blk + L
    t.out = blk + 2 * L
    t.delta = blk + 3 * L
    t.next_in = blk + 4 * L
    t.pre = t.next_in + H if net.keep_pre else NULL
    t.mask = t.next_in + (1 + net.keep_pre) * H if dropout else NULL
    for i in range(L):
        off = rows * net.out_off[i]
        if params != NULL:  # predict fills W and b from separate arrays
            t.W[i] = p + net.coef_off[i] * itemsize
            t.b[i] = p + net.bias_off[i] * itemsize
        t.out[i] = w + (region[WS_OUT] + off) * itemsize
        t.delta[i] = w + (region[WS_DELTA] + off) * itemsize
        if i == L - 1:
            break  # the output layer: no pre-activation, no next layer, no dropout
        t.next_in[i] = t.out[i]
        if net.keep_pre:
            # only the layers whose derivative reads z keep it (NULL: the
            # others, whose forward pass stays the one without pre)
            t.pre[i] = NULL
            if needs_preactivation(net.hidden_act[i]):
                t.pre[i] = w + (region[WS_PRE] + off) * itemsize
        if dropout:
            t.mask[i] = NULL
            if rates[i + 1] > 0:  # hidden layer i's rate (rates: per layer, input first)
                # the next layer reads the dropped-out copy
                t.next_in[i] = w + (region[WS_DROP] + off) * itemsize
                t.mask[i] = w + (region[WS_MASK] + off) * itemsize
    return blk
