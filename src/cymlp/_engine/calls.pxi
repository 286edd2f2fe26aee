# The engine's calls: an epoch of minibatch training, the loss and gradient
# over all rows (lbfgs, validation), a prediction. Each is one nogil call
# that makes every buffer it needs, then runs one team (team.pxi) whose
# threads all run the call's member function: the passes (passes.pxi) in
# the call's order, meeting at the passes' barriers.

cdef enum:
    EPOCH_CALL = 0
    LOSS_GRAD_CALL = 1
    PREDICT_CALL = 2


# What a call's team works on. The pointers and settings are shared and
# read-only within the call; only the leader writes the results back.
cdef struct Call:
    int kind                  # EPOCH_CALL, LOSS_GRAD_CALL or PREDICT_CALL
    bint f32                  # the call computes in float (else double)
    const Net* net
    const Data* d
    Tables* t
    Tables* t32               # a mixed call's float32 forward pass (see row_block_mixed), or NULL
    void* params              # the packed parameters (training calls)
    void* grad                # the gradient buffer; NULL: a loss without gradient
    double loss               # OUT the loss (an epoch: the sum over minibatches of loss * rows)
    # an epoch
    Optimizer* opt
    const Py_ssize_t* order   # the rows' visiting order, or NULL: storage order
    Py_ssize_t batch_size
    Dropout* drop             # the caller's generator state, or NULL
    # a loss and gradient
    double alpha
    # a prediction: row chunks c0..c1 of `chunk` rows, into out
    void* out
    bint check_finite
    Py_ssize_t chunk, c0, c1
    int status                # OUT 0, or 1: check_finite found a non-finite value


cdef void call_body(void* args, const Member* me) noexcept nogil:
    """The team body of every call: the call's kind and precision pick the
    member that every thread of the team runs (a team_body has no dtype in
    its signature)."""
    cdef Call* c = <Call*> args
    cdef long long clock = prof_start()
    if c.kind == EPOCH_CALL:
        if c.f32:
            epoch_member(c, me, <float*> c.params)
        else:
            epoch_member(c, me, <double*> c.params)
    elif c.kind == LOSS_GRAD_CALL:
        if c.f32:
            loss_grad_member(c, me, <float*> c.params)
        else:
            loss_grad_member(c, me, <double*> c.params)
    elif c.kind == PREDICT_CALL:
        if c.f32:
            predict_member(c, me, <float*> c.out)
        else:
            predict_member(c, me, <double*> c.out)
    prof_lap(PROF_CALL, &clock)


cdef int run_training_call(
    Call* c, floating* work, float* work32, const float* params32, Py_ssize_t rows,
    bint gather, int nt, Py_ssize_t chunks, cymlp_failure* fail,
) noexcept nogil:
    """Run an epoch or a loss and gradient (c filled but for its tables) on a
    team of up to nt threads, at most `chunks`. `work` was laid out for `rows`
    rows (with the gather region if `gather`); with work32 (double only: a
    mixed call), the forward passes run in float32 over params32 and work32,
    laid out for as many rows with the gather region. Returns 0, or -1 (fail
    filled) if out of memory: then before any thread started."""
    cdef Tables t, t32
    cdef const double* rates = c.drop.rate if c.drop != NULL else NULL
    cdef void** blk = layer_tables(c.net, c.params, work, sizeof(floating), rows, gather,
                                   rates, &t, fail)
    cdef void** blk32 = NULL
    cdef int status = -1
    if blk == NULL:
        return -1
    c.t = &t
    c.t32 = NULL
    c.f32 = floating is float
    c.loss = 0.0
    if work32 != NULL:
        blk32 = layer_tables(c.net, <void*> params32, work32, sizeof(float), rows, True,
                             rates, &t32, fail)
        c.t32 = &t32
    if work32 == NULL or blk32 != NULL:
        nt = team_size(nt, chunks, fail)
        if nt >= 0:
            status = run_team(nt, call_body, c, fail)
            team_done(nt)
    free(blk)
    free(blk32)
    return status


cdef int train_epoch_impl(
    const Net* net, Optimizer* opt, const Data* d, const Py_ssize_t* order,
    Py_ssize_t batch_size, floating* params, floating* grad, floating* work,
    Dropout* drop, int nt, double* loss_out, cymlp_failure* fail, float* work32=NULL,
) noexcept nogil:
    """One epoch of minibatch training, on up to nt threads. Returns 0, or -1
    (fail filled) if out of memory: then before any thread started.

    Minibatches are rows order[start:start+batch_size] (a shuffled epoch) or,
    with order NULL, consecutive blocks of rows used in place. `work` was laid
    out for batch_size rows, with the gather region when order is given and X
    dense. With work32 (double only: a mixed call, opt.params32 the float32
    weights), see run_training_call.
    """
    cdef Call c
    cdef int status
    c.kind = EPOCH_CALL
    c.net = net
    c.d = d
    c.params = params
    c.grad = grad
    c.opt = opt
    c.order = order
    c.batch_size = batch_size
    c.drop = drop
    status = run_training_call(
        &c, work, work32, opt.params32, batch_size, order != NULL and d.indptr == NULL, nt,
        call_chunks(net, min(batch_size, d.n_samples), True, d.indptr != NULL, True), fail)
    loss_out[0] = c.loss
    return status


cdef int loss_grad_impl(
    const Net* net, double alpha, const Data* d,
    floating* params, floating* grad, floating* work, int nt, double* loss_out,
    cymlp_failure* fail, float* params32=NULL, float* work32=NULL,
) noexcept nogil:
    """Loss over all rows at once and, unless grad is NULL, its gradient (for
    lbfgs; without grad, the validation loss), on up to nt threads. 0, or -1
    (fail filled) if out of memory: then before any thread started. `work`
    was laid out for at least d.n_samples rows, without gather. With params32
    and work32 (double only: a mixed call), see run_training_call."""
    cdef Call c
    cdef int status
    c.kind = LOSS_GRAD_CALL
    c.net = net
    c.d = d
    c.params = params
    c.grad = grad
    c.alpha = alpha
    c.drop = NULL
    status = run_training_call(
        &c, work, work32, params32, d.n_samples, False, nt,
        call_chunks(net, d.n_samples, grad != NULL, d.indptr != NULL, False), fail)
    loss_out[0] = c.loss
    return status


cdef void epoch_member(Call* e, const Member* me, floating* params) noexcept nogil:
    """One thread's part of an epoch (every thread of the team runs it).

    A minibatch whose sample weights sum to zero carries no information: it is
    skipped (no update, no loss), where a division by its weight sum would
    poison the weights with NaN.
    """
    cdef const Net* net = e.net
    cdef Optimizer* opt = e.opt
    cdef const Data* d = e.d
    cdef const Py_ssize_t* order = e.order
    cdef Tables* t = e.t
    cdef floating* grad = <floating*> e.grad
    cdef Py_ssize_t L = net.n_layers, r, start, rows
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef const floating* X = <const floating*> d.X
    cdef const floating* Y = <const floating*> d.Y
    cdef const floating* sw = <const floating*> d.sw
    cdef bint gather = order != NULL and d.indptr == NULL
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if d.indptr != NULL else NULL
    cdef const floating* sw_batch
    cdef const floating* x0
    cdef const Py_ssize_t* idx
    cdef Batch batch
    cdef floating* rows_buf = <floating*> t.gathered
    cdef double sw_sum, wloss, coef_sq = 0.0, accumulated = 0.0, lr_t
    cdef Py_ssize_t steps = opt.t
    cdef Dropout drop                 # this thread's copy of the generator
    cdef Dropout* drop_p = NULL
    cdef bint fold_sq
    if e.drop != NULL:
        drop = e.drop[0]
        drop_p = &drop
    sp.indptr = d.indptr
    sp.indices = d.indices
    batch.X = X
    batch.sp = spp
    batch.backward = True
    batch.x_double = False
    # The L2 penalty: Adam's step also sums the squares of the coefficients it
    # writes, the next minibatch's penalty, where the divider leaves the
    # arithmetic free (about 0.03 ns per float64 parameter cheaper than a
    # second pass through BLAS dot here); SGD's step is bound by memory, and
    # the extra arithmetic cost more than the dot's pass (benchmarks/README).
    fold_sq = opt.alpha != 0 and counts_steps(opt.kind)
    if fold_sq and me.leader:
        coef_sq = sum_squares(net, params)  # the first minibatch's

    start = 0
    while start < d.n_samples:
        rows = min(e.batch_size, d.n_samples - start)
        # The minibatch: rows order[start:start+rows] (a shuffled epoch: the
        # row pass gathers dense rows into rows_buf) or the block
        # start:start+rows, used in place. Every thread works out where it
        # is for itself: nothing shared changes between minibatches.
        batch.rows = rows
        if order != NULL:
            idx = order + start
            batch.y = Y
            batch.sw = sw
        else:
            idx = NULL
            batch.y = Y + start * n_out
            batch.sw = sw + start if sw != NULL else NULL
        batch.idx = idx
        sp.idx = idx
        sp.start = start
        # (if / else, not a conditional expression: Cython's temporary for
        # that would drop the const)
        if gather:
            x0 = rows_buf
        elif spp == NULL:
            x0 = X + start * n_in
        else:
            x0 = NULL

        if sw != NULL:
            sw_sum = 0.0
            sw_batch = <const floating*> batch.sw
            for r in range(rows):
                sw_sum += sw_batch[idx[r] if idx != NULL else r]
            if sw_sum == 0:
                start += rows
                continue
        else:
            sw_sum = rows

        wloss = par_rows(me, net, t, &batch, x0, drop_p, e.t32)
        if me.leader:
            # (the parameters change only in the step, after the next barrier)
            if not fold_sq and opt.alpha != 0:
                coef_sq = sum_squares(net, params)
            accumulated += batch_loss(net.loss, net.units[L], wloss, sw_sum, opt.alpha,
                                      coef_sq) * rows
        par_gradients(me, net, t, grad, rows, x0, X, spp)

        # One pass over the packed buffer: coefficients (with the L2 term), then
        # intercepts; with fold_sq it returns the next minibatch's penalty.
        if counts_steps(opt.kind):
            steps += 1
        lr_t = step_rate(opt, steps)
        coef_sq = par_optimizer_step(me, opt, params, grad, net.n_params, net.n_coefs,
                                     sw_sum, lr_t, fold_sq)
        start += rows

    if me.leader:
        e.loss = accumulated
        opt.t = steps
        if e.drop != NULL:
            e.drop.state = drop.state


cdef void loss_grad_member(Call* lg, const Member* me, floating* params) noexcept nogil:
    """One thread's part of loss_grad_impl."""
    cdef const Net* net = lg.net
    cdef const Data* d = lg.d
    cdef Tables* t = lg.t
    cdef floating* grad = <floating*> lg.grad
    cdef Py_ssize_t L = net.n_layers, i, n = d.n_samples
    cdef const floating* X = <const floating*> d.X
    cdef const floating* sw = <const floating*> d.sw
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if d.indptr != NULL else NULL
    cdef double sw_sum, wloss
    cdef floating a_ = <floating> lg.alpha, n_
    cdef const floating* x0
    cdef Batch batch
    sp.indptr = d.indptr
    sp.indices = d.indices
    sp.idx = NULL
    sp.start = 0
    if sw != NULL:
        sw_sum = 0.0
        for i in range(n):
            sw_sum += sw[i]
    else:
        sw_sum = n
    batch.rows = n
    batch.X = X
    batch.idx = NULL
    batch.sp = spp
    batch.y = d.Y
    batch.sw = sw
    batch.backward = grad != NULL
    batch.x_double = False
    x0 = X if spp == NULL else NULL
    wloss = par_rows(me, net, t, &batch, x0, NULL, lg.t32)
    if me.leader:
        lg.loss = batch_loss(net.loss, net.units[net.n_layers], wloss, sw_sum, lg.alpha,
                             sum_squares(net, params) if lg.alpha != 0 else 0.0)
    if grad != NULL:
        par_gradients(me, net, t, grad, n, x0, X, spp)
        # (A^T delta + alpha W) / sw_sum, then the intercepts' sums / sw_sum
        if me.leader:
            n_ = <floating> sw_sum
            for i in range(net.n_coefs):
                grad[i] = (grad[i] + a_ * params[i]) / n_
            for i in range(net.n_coefs, net.n_params):
                grad[i] = grad[i] / n_


cdef int predict_chunks(
    const Net* net, Tables* t, const Data* d, floating* out, bint check_finite,
    Py_ssize_t chunk, Py_ssize_t c0, Py_ssize_t c1, int nt, cymlp_failure* fail,
) noexcept nogil:
    """The forward pass of the row chunks c0..c1 (chunk rows each) into out,
    over tables t (a workspace of chunk rows, the weights filled in), on a
    team of nt threads whose resources the caller made sure of. Returns as
    predict_impl does."""
    cdef Call pr
    cdef int status
    pr.kind = PREDICT_CALL
    pr.net = net
    pr.d = d
    pr.out = out
    pr.t = t
    pr.check_finite = check_finite
    pr.chunk = chunk
    pr.c0 = c0
    pr.c1 = c1
    pr.status = 0
    pr.f32 = floating is float
    status = run_team(nt, call_body, &pr, fail)
    return status if status != 0 else pr.status


cdef void predict_member(Call* pr, const Member* me, floating* out) noexcept nogil:
    """One thread's part of predict_chunks."""
    cdef const Net* net = pr.net
    cdef const Data* d = pr.d
    cdef Tables* t = pr.t
    cdef Py_ssize_t L = net.n_layers, start, rows, n = d.n_samples, c
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef const floating* X = <const floating*> d.X
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if d.indptr != NULL else NULL
    cdef Batch batch
    sp.indptr = d.indptr
    sp.indices = d.indices
    sp.idx = NULL
    batch.X = X
    batch.idx = NULL
    batch.sp = spp
    batch.y = NULL
    batch.sw = NULL
    batch.backward = False
    batch.x_double = False
    for c in range(pr.c0, pr.c1):
        start = c * pr.chunk
        rows = min(pr.chunk, n - start)
        sp.start = start
        if me.leader:
            # Checking each chunk just before its product reads X from memory
            # once, not twice as a separate pass over all of X would.
            if (pr.check_finite and spp == NULL
                    and not all_finite(X + start * n_in, rows * n_in)):
                pr.status = 1
            # the output layer is written straight into `out`
            t.out[L - 1] = out + start * n_out
        sync(me)
        if pr.status != 0:
            return
        batch.rows = rows
        par_rows(me, net, t, &batch, X + start * n_in if spp == NULL else NULL, NULL)


# One thread's share of a prediction split by row chunks.
cdef struct PredictPart:
    Tables t
    void** blk                # t's allocation
    int status
    int threads               # the region's threads, as OpenMP made them
    cymlp_failure fail


cdef int predict_impl(
    const Net* net, floating** W, floating** b, const Data* d,
    floating* out, bint check_finite, Py_ssize_t chunk_rows, int nt,
    cymlp_failure* fail,
) noexcept nogil:
    """out = forward pass of X, chunk_rows rows at a time, on up to nt threads.

    Returns 0; -1 (fail filled) if out of memory, found before any thread
    started; 1 if check_finite found a NaN or infinity in dense X (out is
    then incomplete). W and b are the layer tables (the weights need not be
    one packed buffer). With several chunks, each thread takes a share of
    them with a workspace of its own; with one, the threads share each pass
    inside it. Either way every chunk is computed the same.

    Every buffer is made before any thread starts (a thread that could not
    make its own would leave the others waiting at a barrier): first the
    one workspace that any prediction needs, then, once the threads are
    known, one for each other thread; without those, the threads share the
    passes of each chunk instead.
    """
    cdef Py_ssize_t n = d.n_samples, chunk = min(chunk_rows, n), p, i
    cdef Py_ssize_t nch = (n + chunk - 1) // chunk
    # one chunk's workspace, without gather or dropout (at least one value: never malloc(0))
    cdef Py_ssize_t ws = max(workspace_size(net, chunk, False, False), 1)
    cdef bint split = nt > 1 and nch > 1
    cdef Py_ssize_t most = min(<Py_ssize_t> nt, nch) if split else 1
    cdef int team, parts = 1, status = 0
    cdef floating* buf = NULL
    cdef floating* more = NULL
    cdef PredictPart one
    cdef PredictPart* part = &one
    memset(&one, 0, sizeof(PredictPart))
    if most > 1:
        part = <PredictPart*> calloc(most, sizeof(PredictPart))
    if part == NULL:
        cymlp_fail(fail, "the prediction's tables", most * sizeof(PredictPart))
        return -1
    buf = <floating*> malloc(ws * sizeof(floating))
    if buf == NULL:
        cymlp_fail(fail, "the prediction's workspace", ws * sizeof(floating))
        if part != &one:
            free(part)
        return -1
    part[0].blk = layer_tables(net, NULL, buf, sizeof(floating), chunk, False, NULL,
                               &part[0].t, fail)
    if part[0].blk == NULL:
        free(buf)
        if part != &one:
            free(part)
        return -1
    team = team_size(nt, nch if split else call_chunks(net, chunk, False, False, False), fail)
    if team < 0:
        status = -1
    elif split and team > 1:
        # one workspace for each other thread
        more = <floating*> malloc((team - 1) * ws * sizeof(floating))
        if more != NULL:
            parts = team
            for p in range(1, team):
                part[p].blk = layer_tables(net, NULL, more + (p - 1) * ws, sizeof(floating), chunk,
                                           False, NULL, &part[p].t, &part[p].fail)
                if part[p].blk == NULL:
                    parts = 1
                    break
    for p in range(parts):
        for i in range(net.n_layers):
            part[p].t.W[i] = W[i]
            part[p].t.b[i] = b[i]
    if status == 0 and parts == 1:
        # (split, but no room for the other threads' workspaces: the team
        # shares each chunk, as far as a chunk has work for it)
        status = predict_chunks(net, &part[0].t, d, out, check_finite, chunk, 0, nch,
                                team if not split else
                                <int> min(<Py_ssize_t> team,
                                          call_chunks(net, chunk, False, False, False)),
                                fail)
    elif status == 0:
        for p in prange(parts, num_threads=parts, schedule="static"):
            part[p].status = predict_chunks(net, &part[p].t, d, out, check_finite, chunk,
                                            chunk_at(nch, parts, p), chunk_at(nch, parts, p + 1),
                                            1, &part[p].fail)
            part[p].threads = omp_get_num_threads()
        cymlp_resources_pool(part[0].threads)
        for p in range(parts):
            if part[p].status == -1 and status != -1:
                status = -1
                cymlp_fail(fail, part[p].fail.what, part[p].fail.bytes)
            elif part[p].status == 1 and status == 0:
                status = 1
    if team >= 0:
        team_done(team)
    for p in range(most):
        free(part[p].blk)
    if part != &one:
        free(part)
    free(more)
    free(buf)
    return status

