# The shapes of an engine call: the network's geometry (Net), the rows it is
# handed (Data), and the workspace those rows need, laid out in one place
# (workspace_layout) with pointer tables over it (Tables, layer_tables).
from libc.stdlib cimport malloc

from .activations cimport UnaryLoop
from .resources cimport cymlp_failure, cymlp_fail


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
    int loss                  # a loss code, or -1: forward pass only (no training)
    double loss_param         # Huber's delta or the quantile
    double slope              # leaky_relu's negative slope
    bint keep_pre             # the hidden activation's derivative needs z
    UnaryLoop hidden_vec[2]   # vectorised activation loops: [float, double]
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
    # Indexed by layer: layer 0 is the input, which the passes take as an
    # argument, so act[0], inp[0], pre[0] and mask[0] are NULL, as is
    # mask[L] (the output has no dropout).
    void** W                  # L coefficient matrices
    void** b                  # L intercepts
    void** act                # L + 1 activations
    void** delta              # L output deltas: delta[i] belongs to act[i + 1]
    void** pre                # L + 1 pre-activations (only gelu / silu), or NULL
    void** inp                # L + 1 inputs of the next product: act[i] or its dropped-out copy
    void** mask               # L + 1 dropout masks, or NULL
    void* gathered            # the rows of a shuffled dense minibatch, or NULL
    double* row_loss          # one loss per row (for a split of the loss pass)


# The regions of a workspace, in this order. Each layer region is `rows`
# blocks of net.width values (see Net.act_off).
cdef enum:
    WS_GATHER = 0   # the rows of a shuffled dense minibatch (gather only)
    WS_ACT = 1      # activations of every layer but the input
    WS_DELTA = 2    # their deltas
    WS_PRE = 3      # pre-activations (gelu / silu only)
    WS_DROP = 4     # dropped-out copies of the activations (dropout only)
    WS_MASK = 5     # the dropout masks (dropout only)
    WS_END = 6      # the workspace's size


cdef inline void workspace_layout(const Net* net, Py_ssize_t rows, bint gather, bint dropout,
                                  Py_ssize_t* off) noexcept nogil:
    """Fill off[0..WS_END] with the offsets of a workspace's regions for
    minibatches of up to `rows` rows: the one place that decides the layout."""
    cdef Py_ssize_t block = rows * net.width
    off[WS_GATHER] = 0
    off[WS_ACT] = rows * net.units[0] if gather else 0
    off[WS_DELTA] = off[WS_ACT] + block
    off[WS_PRE] = off[WS_DELTA] + block
    off[WS_DROP] = off[WS_PRE] + (block if net.keep_pre else 0)
    off[WS_MASK] = off[WS_DROP] + (block if dropout else 0)
    off[WS_END] = off[WS_MASK] + (block if dropout else 0)


cdef inline Py_ssize_t workspace_size(const Net* net, Py_ssize_t rows, bint gather,
                                      bint dropout) noexcept nogil:
    cdef Py_ssize_t off[WS_END + 1]
    workspace_layout(net, rows, gather, dropout, off)
    return off[WS_END]


# The pointer tables' block: W, b and delta (L each), act, pre, inp and mask
# (L + 1 each), then the rows' losses.
cdef inline Py_ssize_t tables_pointers(const Net* net) noexcept nogil:
    return 3 * net.n_layers + 4 * (net.n_layers + 1)


cdef inline size_t tables_bytes(const Net* net, Py_ssize_t rows) noexcept nogil:
    return tables_pointers(net) * sizeof(void*) + rows * sizeof(double)


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
    cdef Py_ssize_t L = net.n_layers, i, off
    cdef Py_ssize_t region[WS_END + 1]
    cdef bint dropout = rates != NULL
    cdef char* p = <char*> params
    cdef char* w = <char*> work
    cdef void** blk = <void**> malloc(tables_bytes(net, rows))
    if blk == NULL:
        cymlp_fail(fail, "the layer tables", tables_bytes(net, rows))
        return NULL
    workspace_layout(net, rows, gather, dropout, region)
    t.row_loss = <double*> (blk + tables_pointers(net))
    t.gathered = w + region[WS_GATHER] * itemsize if gather else NULL
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
            t.W[i] = p + net.coef_off[i] * itemsize
            t.b[i] = p + net.bias_off[i] * itemsize
        t.act[i + 1] = w + (region[WS_ACT] + off) * itemsize
        t.delta[i] = w + (region[WS_DELTA] + off) * itemsize
        t.inp[i + 1] = t.act[i + 1]
        if net.keep_pre:
            t.pre[i + 1] = w + (region[WS_PRE] + off) * itemsize
        if dropout and i < L - 1 and rates[i + 1] > 0:
            # the next layer reads the dropped-out copy
            t.inp[i + 1] = w + (region[WS_DROP] + off) * itemsize
            t.mask[i + 1] = w + (region[WS_MASK] + off) * itemsize
    t.act[0] = NULL
    t.inp[0] = NULL
    if net.keep_pre:
        t.pre[0] = NULL
    if dropout:
        t.mask[0] = NULL
        t.mask[L] = NULL
    return blk
