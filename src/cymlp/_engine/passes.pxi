# ----------------------------------------------------------------------------
# The passes of a minibatch. Everything a row computes on its own (the
# gather, the forward pass through every layer, the row's loss and output
# delta, the deltas of the hidden layers) is ONE pass over fixed chunks of
# rows: each chunk runs start to end on one thread, with single-threaded
# BLAS calls on its rows. What sums over the rows (the weight and bias
# gradients) is a second pass, and the optimizer step a third: three
# barriers per minibatch, where a pass per layer and per operation took a
# dozen, and the small operations of the output layer, which cannot be
# split profitably on their own, are shared out with the rest of their rows.
# ----------------------------------------------------------------------------

# A minibatch (or all the rows of a loss and gradient, or a prediction
# chunk), as the row pass reads it.
cdef struct Batch:
    Py_ssize_t rows
    const void* X             # the gather's source (all of X), or the CSR values
    const Py_ssize_t* idx     # the rows of X, targets and weights; NULL: consecutive
    const SparseRows* sp      # the CSR minibatch, or NULL (dense)
    const void* y             # targets, row r at idx[r] (or r); NULL: forward only
    const void* sw            # sample weights indexed like y, or NULL
    bint backward             # with y: the hidden layers' deltas too
    bint x_double             # X holds doubles while the pass is float (a mixed call)


cdef inline const UnaryLoop* _vec_of(const Net* net, Py_ssize_t i,
                                     floating dtype_tag) noexcept nogil:
    """The ufunc loop of weight layer i's activation (hidden layer i's, or
    the output's for i = L - 1), in the dtype of dtype_tag."""
    cdef int k = 0 if floating is float else 1
    # two returns, not a conditional expression: Cython's temporary for that
    # would drop the const
    if i < net.n_layers - 1:
        return &net.hidden_vec[2 * i + k]
    return &net.out_vec[k]


cdef extern from "platform.h" nogil:
    void cymlp_prefetch(const void* p)


cdef inline void gather_rows(floating* dst, const floating* X, const Py_ssize_t* idx,
                             Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t n_in) noexcept nogil:
    """Rows r0..r1 of a shuffled minibatch: row idx[e] of the dense X (n_in
    values a row) copied to row e of dst, where the products read them. Bound
    by the memory: every row comes from X once an epoch (benchmarks/RESULTS.md;
    prefetching the next rows ahead of the copy, or during the optimizer
    step, did not make it faster)."""
    cdef Py_ssize_t e
    for e in range(r0, r1):
        memcpy(dst + e * n_in, X + idx[e] * n_in, n_in * sizeof(floating))


cdef void row_block(const Net* net, Tables* t, const Batch* batch, const floating* x0,
                    Py_ssize_t r0, Py_ssize_t r1, const Dropout* drop) noexcept nogil:
    """Rows r0..r1 of the row pass, on the calling thread.

    x0 is the minibatch's dense input (rows n_in apart; the gather buffer
    when batch.idx selects rows of a dense X); drop the calling thread's
    generator as it is at the start of the pass, or NULL.
    """
    cdef Py_ssize_t i, e, m = r1 - r0, L = net.n_layers, n_in = net.units[0]
    cdef Py_ssize_t* u = net.units
    cdef floating** W = <floating**> t.W
    cdef floating** out = <floating**> t.out
    cdef floating** next_in = <floating**> t.next_in
    cdef floating** pre = <floating**> t.pre
    cdef floating** mask = <floating**> t.mask
    cdef floating* gathered = <floating*> t.gathered
    cdef const floating* X = <const floating*> batch.X
    cdef const floating* a
    cdef SparseRows sp
    cdef uint64_t state = drop.state if drop != NULL else 0, s
    cdef bint hidden
    cdef long long clock = prof_start()
    if batch.y != NULL and batch.idx != NULL:
        # The loss reads the chunk's targets (and weights) through the
        # shuffled order, a cache miss a row that it would wait for one
        # after the other: started now, they arrive during the products
        # (measured: the loss and delta 1.9 -> 1.3 ms per MNIST-shaped
        # epoch of 20,000 rows, float32, one thread).
        for e in range(r0, r1):
            cymlp_prefetch(<const floating*> batch.y + batch.idx[e] * u[L])
            if batch.sw != NULL:
                cymlp_prefetch(<const floating*> batch.sw + batch.idx[e])
    if batch.sp == NULL and batch.idx != NULL and gathered != NULL:
        gather_rows(gathered, X, batch.idx, r0, r1, n_in)
        prof_lap(PROF_GATHER, &clock)
    for i in range(L):
        # weight layer i: out[i] = f(inputs @ W[i] + b[i]), the inputs x0 or
        # the CSR rows (i = 0), else next_in[i - 1]
        hidden = i < L - 1
        if i == 0 and batch.sp != NULL:
            sp = batch.sp[0]
            if sp.idx != NULL:
                sp.idx = sp.idx + r0
            else:
                sp.start = sp.start + r0
            if floating is float and batch.x_double:
                csr_times_dense(<const double*> batch.X, &sp, m, W[0], u[1], out[0] + r0 * u[1])
            else:
                csr_times_dense(X, &sp, m, W[0], u[1], out[0] + r0 * u[1])
        else:
            a = x0 if i == 0 else next_in[i - 1]
            gemm(False, False, <int> m, <int> u[i + 1], <int> u[i], <floating> 1,
                 a + r0 * u[i], <int> u[i], W[i], <int> u[i + 1], <floating> 0,
                 out[i] + r0 * u[i + 1], <int> u[i + 1])
        prof_lap(PROF_FWD_GEMM, &clock)
        bias_activate(out[i] + r0 * u[i + 1], <floating*> t.b[i], m, u[i + 1],
                      net.hidden_act[i] if hidden else net.out_act,
                      _vec_of(net, i, <floating> 0),
                      pre[i] + r0 * u[i + 1] if hidden and pre != NULL and pre[i] != NULL
                      else NULL,
                      net.slope)
        # (drop.rate is per layer, input first: rate[i + 1] is out[i]'s)
        if hidden and drop != NULL and drop.rate[i + 1] > 0:
            # the chunk's masks start where the serial sequence of this
            # layer's masks is at the chunk's first value
            s = splitmix64_skip(state, r0 * u[i + 1])
            dropout_forward(out[i] + r0 * u[i + 1], next_in[i] + r0 * u[i + 1],
                            mask[i] + r0 * u[i + 1], m * u[i + 1], drop.rate[i + 1], &s)
            state = past_masks(drop, net.units, i + 1, batch.rows, state)
        prof_lap(PROF_FWD_ELEM, &clock)
    if batch.y != NULL:
        row_backward(net, t, batch, r0, r1, drop, <floating> 0)


cdef void row_backward(const Net* net, Tables* t, const Batch* batch, Py_ssize_t r0,
                       Py_ssize_t r1, const Dropout* drop, floating dtype_tag) noexcept nogil:
    """The loss and output delta of rows r0..r1 (their forward pass done),
    and with batch.backward the hidden layers' deltas; dtype_tag only selects
    the precision."""
    cdef Py_ssize_t i, e, m = r1 - r0, L = net.n_layers
    cdef Py_ssize_t* u = net.units
    cdef floating** W = <floating**> t.W
    cdef floating** out = <floating**> t.out
    cdef floating** delta = <floating**> t.delta
    cdef floating** pre = <floating**> t.pre
    cdef floating** mask = <floating**> t.mask
    cdef const floating* y = <const floating*> batch.y
    cdef const floating* sw = <const floating*> batch.sw
    cdef long long clock = prof_start()
    # targets and weights are indexed through idx, or consecutive
    loss_and_delta(out[L - 1] + r0 * u[L], y if batch.idx != NULL else y + r0 * u[L],
                   batch.idx + r0 if batch.idx != NULL else NULL,
                   sw + r0 if sw != NULL and batch.idx == NULL else sw,
                   delta[L - 1] + r0 * u[L], t.row_loss + r0, m, u[L], net.loss,
                   net.loss_param)
    prof_lap(PROF_LOSS, &clock)
    if not batch.backward:
        return
    for i in range(L - 1, 0, -1):
        # delta[i - 1] = (delta[i] @ W[i]^T) * f'(z of hidden layer i - 1),
        # times its dropout mask (drop.rate[i]: its rate, see row_block)
        gemm(False, True, <int> m, <int> u[i], <int> u[i + 1], <floating> 1,
             delta[i] + r0 * u[i + 1], <int> u[i + 1], W[i], <int> u[i + 1], <floating> 0,
             delta[i - 1] + r0 * u[i], <int> u[i])
        prof_lap(PROF_BWD_GEMM, &clock)
        multiply_derivative(out[i - 1] + r0 * u[i],
                            pre[i - 1] + r0 * u[i] if pre != NULL and pre[i - 1] != NULL
                            else NULL,
                            delta[i - 1] + r0 * u[i], m * u[i], net.hidden_act[i - 1], net.slope)
        if drop != NULL and drop.rate[i] > 0:
            for e in range(r0 * u[i], r1 * u[i]):
                delta[i - 1][e] = delta[i - 1][e] * mask[i - 1][e]
        prof_lap(PROF_BWD_ELEM, &clock)


cdef void row_block_mixed(const Net* net, Tables* t32, Tables* t, const Batch* batch,
                          const double* x0, Py_ssize_t r0, Py_ssize_t r1,
                          const Dropout* drop) noexcept nogil:
    """Rows r0..r1 as numpy computes them for float32 X and weights beside
    float64 targets: the forward pass in float32 (t32, over the float32
    copy of the weights), its values widened into t for the loss and the
    backward pass in float64. X is float64 holding float32 values.

    The float32 forward pass is the float32 engine's own, so it overflows
    (a product past float32's range, a partial sum of one) where float32
    arithmetic does; the backward pass then starts from its values, inf
    included, as scikit-learn's does.
    """
    cdef Py_ssize_t i, e, k, lo, hi, L = net.n_layers, n_in = net.units[0]
    cdef Py_ssize_t* u = net.units
    cdef float* rows32 = <float*> t32.gathered
    cdef double* gathered = <double*> t.gathered
    cdef const double* X = <const double*> batch.X
    cdef const double* src
    cdef Batch f = batch[0]
    f.y = NULL
    if batch.sp == NULL:
        # the float32 rows of the chunk (X's own values), and for a shuffled
        # epoch the float64 rows that the first layer's gradient reads
        for e in range(r0, r1):
            src = X + batch.idx[e] * n_in if batch.idx != NULL else x0 + e * n_in
            if batch.idx != NULL and gathered != NULL:
                memcpy(gathered + e * n_in, src, n_in * sizeof(double))
            for k in range(n_in):
                rows32[e * n_in + k] = <float> src[k]
        f.idx = NULL
    else:
        f.x_double = True
    row_block(net, t32, &f, <const float*> rows32, r0, r1, drop)
    for i in range(L):
        # weight layer i's outputs, and for a hidden layer what the backward
        # pass reads of it (drop.rate[i + 1]: its rate, see row_block)
        lo = r0 * u[i + 1]
        hi = r1 * u[i + 1]
        for e in range(lo, hi):
            (<double*> t.out[i])[e] = (<float*> t32.out[i])[e]
        if t.pre != NULL and i < L - 1 and t.pre[i] != NULL:
            for e in range(lo, hi):
                (<double*> t.pre[i])[e] = (<float*> t32.pre[i])[e]
        if drop != NULL and i < L - 1 and drop.rate[i + 1] > 0:
            for e in range(lo, hi):
                (<double*> t.next_in[i])[e] = (<float*> t32.next_in[i])[e]
                (<double*> t.mask[i])[e] = (<float*> t32.mask[i])[e]
    if batch.y != NULL:
        row_backward(net, t, batch, r0, r1, drop, <double> 0)


cdef double par_rows(const Member* me, const Net* net, Tables* t, const Batch* batch,
                     const floating* x0, Dropout* drop, Tables* t32=NULL) noexcept nogil:
    """The row pass, by the team, in fixed chunks of rows. With targets,
    returns the rows' weighted losses added in row order, as the serial
    kernel adds them (by every thread: each returns the same total). `drop`
    is the calling thread's generator (or NULL): every thread moves it past
    the pass's masks. With t32 (double only), the rows of a mixed call (see
    row_block_mixed)."""
    cdef Py_ssize_t nch = row_chunks(net, batch.rows), i, r
    cdef double total = 0.0
    cdef Py_ssize_t ch = claim(me)
    while ch < nch:
        if floating is double:
            if t32 != NULL:
                row_block_mixed(net, t32, t, batch, x0, chunk_at(batch.rows, nch, ch),
                                chunk_at(batch.rows, nch, ch + 1), drop)
                ch = claim(me)
                continue
        row_block(net, t, batch, x0, chunk_at(batch.rows, nch, ch), chunk_at(batch.rows, nch, ch + 1),
                  drop)
        ch = claim(me)
    if drop != NULL:
        for i in range(1, net.n_layers):
            drop.state = past_masks(drop, net.units, i, batch.rows, drop.state)
    sync_timed(me, PROF_ROWS_WAIT)
    if batch.y != NULL:
        for r in range(batch.rows):
            total += t.row_loss[r]
    return total



cdef void par_gradients(const Member* me, const Net* net, Tables* t, floating* grad,
                        Py_ssize_t rows, const floating* x0, const floating* sp_data,
                        const SparseRows* sp) noexcept nogil:
    """Unscaled gradients of every layer, by the team: grad_W[i] = A^T
    delta[i], A what weight layer i read (x0 or the CSR rows sp for the
    first, next_in[i - 1] for the others), grad_b[i] = the
    column sums of delta[i]. One claim loop over all the layers' chunks (the
    products, then the sums), one barrier."""
    cdef Py_ssize_t L = net.n_layers, i, c, nch, c0, c1
    cdef Py_ssize_t* u = net.units
    cdef floating** delta = <floating**> t.delta
    cdef const floating* a
    cdef Py_ssize_t ch = claim(me)
    cdef bint found
    cdef long long clock = prof_start()
    while True:
        c = ch
        found = False
        for i in range(2 * L):
            nch = (product_chunks(net, i, rows, sp != NULL) if i < L
                   else sum_chunks(net, i - L, rows))
            if c < nch:
                found = True
                break
            c -= nch
        if not found:
            break
        if i >= L:
            i -= L
            c0 = chunk_at(u[i + 1], nch, c)
            column_sums(delta[i] + c0, grad + net.bias_off[i] + c0, rows,
                        chunk_at(u[i + 1], nch, c + 1) - c0, u[i + 1])
            prof_lap(PROF_GRAD_SUMS, &clock)
        elif i == 0 and sp != NULL:
            csr_transpose_times_dense(sp_data, sp, rows, delta[0], u[1],
                                      grad + net.coef_off[0], u[0])
        else:
            a = x0 if i == 0 else <floating*> t.next_in[i - 1]
            c0 = chunk_at(u[i], nch, c)
            c1 = chunk_at(u[i], nch, c + 1)
            gemm(True, False, <int> (c1 - c0), <int> u[i + 1], <int> rows, <floating> 1,
                 a + c0, <int> u[i], delta[i], <int> u[i + 1], <floating> 0,
                 grad + net.coef_off[i] + c0 * u[i + 1], <int> u[i + 1])
        prof_lap(PROF_GRAD_GEMM, &clock)
        ch = claim(me)
    sync_timed(me, PROF_GRAD_WAIT)


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




# The gradient norm's partial sums sit after the step's in the team's
# scratch: a thread still adding them up never meets a step's partial sum.
if 2 * MAX_CHUNKS > CYMLP_TEAM_SCRATCH:
    raise ImportError("cymlp: 2 * MAX_CHUNKS exceeds the team's scratch (csrc/team.h)")


cdef double par_clip_factor(const Member* me, const Optimizer* opt, const floating* w,
                            const floating* g, Py_ssize_t n_params, Py_ssize_t n_coefs,
                            double sw_sum) noexcept nogil:
    """Clipping by the global norm: the factor of torch's clip_grad_norm_
    (see optimizers.clip_factor) for the gradient the step sees, its squared
    norm summed over the step's chunks, each in its own fixed order, the
    chunks' sums added in chunk order (by every thread: each returns the
    same factor, on any number of threads)."""
    cdef Py_ssize_t nch = n_chunks(n_params, <double> n_params, PASS_GRAIN, 1)
    cdef double* partial = me.team.scratch + MAX_CHUNKS
    cdef double total = 0.0
    cdef long long clock = prof_start()
    cdef Py_ssize_t ch = claim(me)
    while ch < nch:
        partial[ch] = grad_sq_range(w, g, chunk_at(n_params, nch, ch),
                                    chunk_at(n_params, nch, ch + 1), n_coefs, opt.alpha,
                                    sw_sum)
        ch = claim(me)
    prof_lap(PROF_STEP, &clock)
    sync_timed(me, PROF_STEP_WAIT)
    for ch in range(nch):
        total += partial[ch]
    return clip_factor(opt.max_grad_norm, total)


cdef double par_optimizer_step(const Member* me, const Optimizer* opt, floating* w,
                               floating* g, Py_ssize_t n_params, Py_ssize_t n_coefs,
                               double sw_sum, double lr_t, bint want_sq) noexcept nogil:
    """One optimizer step over the packed buffer, in fixed chunks (after the
    gradient norm's pass when the optimizer clips). With want_sq, returns the
    new coefficients' sum of squares (the L2 penalty of the next minibatch),
    the chunks' sums added in chunk order (by every thread: each returns the
    same total)."""
    cdef Py_ssize_t nch = n_chunks(n_params, <double> n_params, PASS_GRAIN, 1)
    cdef double* partial = me.team.scratch
    cdef double total = 0.0, grad_scale = 1.0
    cdef Py_ssize_t ch
    cdef long long clock
    if opt.max_grad_norm > 0:
        grad_scale = par_clip_factor(me, opt, w, g, n_params, n_coefs, sw_sum)
    clock = prof_start()
    ch = claim(me)
    while ch < nch:
        partial[ch] = step_range(opt, w, g, chunk_at(n_params, nch, ch),
                                 chunk_at(n_params, nch, ch + 1), n_coefs, sw_sum, lr_t,
                                 want_sq, grad_scale)
        ch = claim(me)
    prof_lap(PROF_STEP, &clock)
    sync_timed(me, PROF_STEP_WAIT)
    for ch in range(nch):
        total += partial[ch]
    return total

