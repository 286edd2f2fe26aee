# The passes' timer (a part of _core.pyx): where an engine call's time goes,
# per kind of work, per thread. Off unless a test hook or
# benchmarks/profile_passes.py turns it on (_pass_profile); the estimators
# never do. Off, each timing point costs one load and one predictable branch
# (prof_start returns 0, prof_lap does nothing with a 0): measured in
# benchmarks/RESULTS.md, "Where the time goes".
#
# Every thread adds the nanoseconds of its own work into its own row of a
# process-wide table (rows a cache line apart, so that the threads never
# share one): its slot is its OpenMP thread number, so in a team thread 0 is
# the leader. A barrier's wait is timed per pass, so a row shows how long
# that thread waited for the others at the end of each pass.

cdef extern from "platform.h" nogil:
    long long cymlp_nanoseconds()

cdef enum:
    PROF_GATHER = 0       # the row pass: copying a shuffled minibatch's rows
    PROF_FWD_GEMM = 1     # ... its forward products (or CSR products)
    PROF_FWD_ELEM = 2     # ... bias and activation, dropout
    PROF_LOSS = 3         # ... the output layer's loss and delta
    PROF_BWD_GEMM = 4     # ... the deltas' products
    PROF_BWD_ELEM = 5     # ... the activations' derivatives, dropout masks
    PROF_ROWS_WAIT = 6    # the row pass's barrier
    PROF_GRAD_GEMM = 7    # the gradient pass: weight gradients' products
    PROF_GRAD_SUMS = 8    # ... the bias gradients' column sums
    PROF_GRAD_WAIT = 9    # ... its barrier
    PROF_STEP = 10        # the optimizer step (and the clipping norm's pass)
    PROF_STEP_WAIT = 11   # ... its barriers
    PROF_CALL = 12        # the whole of each call's member function (an epoch: all of it)
    PROF_KINDS = 13
    PROF_ROW = 16         # a thread's row of the table: 128 bytes
    PROF_THREADS = 8      # threads with a row of their own; more share the last

PROFILE_KINDS = ("gather", "forward_gemm", "forward_elementwise", "loss", "backward_gemm",
                 "backward_elementwise", "rows_wait", "gradient_gemm", "bias_sums",
                 "gradient_wait", "step", "step_wait", "call")

cdef bint _prof_on = False
cdef long long _prof_ns[PROF_THREADS][PROF_ROW]


cdef inline long long prof_start() noexcept nogil:
    """Now, if the timer is on; else 0 (which the other functions skip)."""
    if _prof_on:
        return cymlp_nanoseconds()
    return 0


cdef inline void prof_lap(int kind, long long* clock) noexcept nogil:
    """Add the time since clock[0] to the calling thread's `kind`, and restart
    the clock (nothing if clock[0] is 0: the timer was off)."""
    cdef long long now
    cdef int tid
    if clock[0] != 0:
        now = cymlp_nanoseconds()
        tid = min(omp_get_thread_num(), PROF_THREADS - 1)
        _prof_ns[tid][kind] += now - clock[0]
        clock[0] = now


cdef inline void sync_timed(const Member* me, int kind) noexcept nogil:
    """The team's barrier, its wait counted as `kind`."""
    cdef long long clock = prof_start()
    cymlp_team_barrier(me.team)
    prof_lap(kind, &clock)


def _pass_profile(enable=None):
    """Test hook: the passes' timer. Returns what it counted since the last
    call (which resets it): ``{kind: [seconds of thread 0, 1, ...]}`` for
    each kind of PROFILE_KINDS (threads numbered as in their team: 0 is the
    leader). With enable (True / False), then turns it on or off."""
    global _prof_on
    cdef int k, tid
    found = {name: [_prof_ns[tid][k] * 1e-9 for tid in range(PROF_THREADS)]
             for k, name in enumerate(PROFILE_KINDS)}
    memset(_prof_ns, 0, sizeof(_prof_ns))
    if enable is not None:
        _prof_on = bool(enable)
    return found


cdef void _product_seconds(floating* A0, floating** A, floating** W, floating** D,
                           floating** G, const Net* net, Py_ssize_t rows,
                           Py_ssize_t batches, bint chunked, double* seconds) noexcept nogil:
    """The products of `batches` minibatches of `rows` rows, on the calling
    thread, in the row pass's order (each chunk of rows forward through every
    layer, then its deltas back), then the gradient pass's; each cut into the
    engine's chunks (chunked) or whole. seconds[0..2]: the forward products',
    the deltas', the weight gradients'."""
    cdef Py_ssize_t L = net.n_layers, i, k, ch, nch, r0, m, c0, c1
    cdef Py_ssize_t* u = net.units
    cdef const floating* a
    cdef long long t0
    cdef long long ns[3]
    ns[0] = ns[1] = ns[2] = 0
    for k in range(batches):
        nch = row_chunks(net, rows) if chunked else 1
        for ch in range(nch):
            r0 = chunk_at(rows, nch, ch)
            m = chunk_at(rows, nch, ch + 1) - r0
            for i in range(L):
                a = A0 if i == 0 else A[i - 1]
                t0 = cymlp_nanoseconds()
                gemm(False, False, <int> m, <int> u[i + 1], <int> u[i], <floating> 1,
                     a + r0 * u[i], <int> u[i], W[i], <int> u[i + 1], <floating> 0,
                     A[i] + r0 * u[i + 1], <int> u[i + 1])
                ns[0] += cymlp_nanoseconds() - t0
            for i in range(L - 1, 0, -1):
                t0 = cymlp_nanoseconds()
                gemm(False, True, <int> m, <int> u[i], <int> u[i + 1], <floating> 1,
                     D[i] + r0 * u[i + 1], <int> u[i + 1], W[i], <int> u[i + 1],
                     <floating> 0, D[i - 1] + r0 * u[i], <int> u[i])
                ns[1] += cymlp_nanoseconds() - t0
        for i in range(L):
            nch = product_chunks(net, i, rows, False) if chunked else 1
            a = A0 if i == 0 else A[i - 1]
            for ch in range(nch):
                c0 = chunk_at(u[i], nch, ch)
                c1 = chunk_at(u[i], nch, ch + 1)
                t0 = cymlp_nanoseconds()
                gemm(True, False, <int> (c1 - c0), <int> u[i + 1], <int> rows, <floating> 1,
                     a + c0, <int> u[i], D[i], <int> u[i + 1], <floating> 0,
                     G[i] + c0 * u[i + 1], <int> u[i + 1])
                ns[2] += cymlp_nanoseconds() - t0
    for i in range(3):
        seconds[i] = ns[i] * 1e-9


def _products(units, Py_ssize_t rows, Py_ssize_t batches, dtype, bint chunked):
    """Benchmark hook: the seconds that the matrix products of `batches`
    minibatches of `rows` rows take on the calling thread, through the
    engine's BLAS, for a dense network of layer widths `units`, as
    ``(forward, deltas, weight gradients)``; each product whole or cut into
    the chunks of the engine's passes (the difference is what the chunks'
    repacking of shared operands costs). Releases the GIL: threads may run it
    side by side."""
    cdef Net net
    cdef Py_ssize_t L = len(units) - 1, i
    cdef cnp.ndarray u_arr = np.ascontiguousarray(units, dtype=np.intp)
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    x = (rng.random((rows, units[0]))).astype(dt)
    acts = [np.zeros((rows, units[i + 1]), dt) for i in range(L)]
    ws = [(rng.standard_normal((units[i], units[i + 1])) / np.sqrt(units[i])).astype(dt)
          for i in range(L)]
    ds = [(rng.standard_normal((rows, units[i + 1])) * 0.1).astype(dt) for i in range(L)]
    gs = [np.zeros((units[i], units[i + 1]), dt) for i in range(L)]
    cdef cnp.ndarray ptrs = np.array([[a.ctypes.data for a in arrays]
                                      for arrays in (acts, ws, ds, gs)], dtype=np.uintp)
    cdef size_t x_ptr = x.ctypes.data
    cdef size_t* p = <size_t*> cnp.PyArray_DATA(ptrs)
    cdef double seconds[3]
    cdef bint f32 = dt == np.float32
    net.n_layers = L
    net.units = <Py_ssize_t*> cnp.PyArray_DATA(u_arr)
    cymlp_blas_hold_one_thread()
    with nogil:
        if f32:
            _product_seconds(<float*> x_ptr, <float**> p, <float**> (p + L),
                             <float**> (p + 2 * L), <float**> (p + 3 * L), &net, rows, batches,
                             chunked, seconds)
        else:
            _product_seconds(<double*> x_ptr, <double**> p, <double**> (p + L),
                             <double**> (p + 2 * L), <double**> (p + 3 * L), &net, rows,
                             batches, chunked, seconds)
    return seconds[0], seconds[1], seconds[2]


def _gather_seconds(const floating[:, ::1] X, const Py_ssize_t[::1] order,
                    floating[:, ::1] out):
    """Benchmark hook: the seconds that gathering the rows ``X[order]`` takes
    on the calling thread, minibatch by minibatch of ``out.shape[0]`` rows
    into ``out``, by the row pass's own copy (``gather_rows``). Releases the
    GIL: threads may run it side by side. ``out`` ends holding the last
    minibatch (in its first rows when that one is shorter)."""
    cdef Py_ssize_t n = order.shape[0], rows = out.shape[0], n_in = X.shape[1], start, m
    cdef long long t0, ns = 0
    cdef bint ok = True
    if out.shape[1] != n_in:
        raise ValueError("out has %d columns; X has %d" % (out.shape[1], n_in))
    if rows < 1:
        raise ValueError("out needs at least one row")
    if n:
        with nogil:
            ok = is_row_order(&order[0], n, X.shape[0])
    if not ok:
        raise ValueError("order holds an index outside [0, %d)" % X.shape[0])
    if n == 0 or n_in == 0:
        return 0.0
    with nogil:
        # one reading of the clock for the whole loop: a minibatch of one
        # small row copies in less time than a reading takes
        t0 = cymlp_nanoseconds()
        start = 0
        while start < n:
            m = min(rows, n - start)
            gather_rows(&out[0, 0], &X[0, 0], &order[start], 0, m, n_in)
            start += m
        ns = cymlp_nanoseconds() - t0
    return ns * 1e-9
