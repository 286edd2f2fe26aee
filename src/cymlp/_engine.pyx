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
import warnings

import numpy as np
import scipy.special

cimport numpy as cnp
cnp.import_array()
from cython cimport floating
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from libc.math cimport sqrt, pow
from libc.stdint cimport uint64_t

from ._blas cimport (
    gemm, dot, cymlp_sgemm_fn, cymlp_dgemm_fn, cymlp_sdot_fn, cymlp_ddot_fn,
    cymlp_get_threads_fn, cymlp_set_threads_fn, cymlp_sgemm, cymlp_dgemm, cymlp_sdot,
    cymlp_ddot, cymlp_blas_get_threads, cymlp_blas_set_threads, cymlp_blas_hold_one_thread,
)
from ._kernels cimport (
    IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP,
    LEAKY_RELU, ELU, GELU, SILU, SOFTPLUS,
    SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS, POISSON, ABSOLUTE_ERROR, HUBER, QUANTILE,
    SGD, ADAM,
    UnaryLoop, ufunc_loop,
    bias_activate, multiply_derivative, loss_and_delta, is_mean_over_outputs, column_sums,
    sgd_step, adam_step, needs_preactivation, dropout_forward, splitmix64_skip, all_finite,
    narrow_to_float32,
    cymlp_adam_select, cymlp_fma_quotient_supported, cymlp_avx2_quotient_supported,
    cymlp_avx2_picks_ps, cymlp_avx2_picks_pd,
    cymlp_adam_path_f, cymlp_adam_path_d, cymlp_adam_quotients_f, cymlp_adam_quotients_d,
    CYMLP_PATH_AUTO, CYMLP_PATH_DIVIDER, CYMLP_PATH_FMA, CYMLP_PATH_HYBRID,
    CYMLP_PATH_FMA_AVX2, CYMLP_PATH_HYBRID_AVX2,
)

# The one list of activations: the estimators' parameter constraints, the
# ONNX converter and the docs' tests derive from these names. The kernels
# dispatch on the codes by name (see _kernels.pxd), never by their order.
HIDDEN_ACTIVATIONS = {
    "identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU,
    # beyond scikit-learn
    "leaky_relu": LEAKY_RELU, "elu": ELU, "gelu": GELU, "silu": SILU,
    "softplus": SOFTPLUS,
}
OUTPUT_ACTIVATIONS = {
    "identity": IDENTITY, "logistic": LOGISTIC, "softmax": SOFTMAX, "exp": EXP,
}
ACTIVATIONS = {**HIDDEN_ACTIVATIONS, **OUTPUT_ACTIVATIONS}
LOSSES = {
    "squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS,
    "binary_log_loss": BINARY_LOG_LOSS, "poisson": POISSON,
    # beyond scikit-learn (identity output): robust and quantile regression
    "absolute_error": ABSOLUTE_ERROR, "huber": HUBER, "quantile": QUANTILE,
}
# The losses that take a parameter (Network's loss_param) and its valid range.
_LOSS_PARAM_RANGES = {"huber": (0.0, float("inf")), "quantile": (0.0, 1.0)}

# Rows per chunk in predict: as many as keep a chunk's input rows and its
# activations within about 2 MiB (a typical L2 cache), so the finiteness check
# and the GEMM read the chunk from cache and memory does not grow with X; at
# least 64 rows, for efficient GEMMs, and at most 4096.
cdef enum:
    PREDICT_CHUNK_BYTES = 2 * 1024 * 1024
    PREDICT_CHUNK_MIN = 64
    PREDICT_CHUNK_MAX = 4096


# ----------------------------------------------------------------------------
# Threads. The engine splits each pass of a minibatch into chunks that depend
# on the shapes alone, never on the thread count; the threads only decide who
# computes which chunk. Every product is split along rows or columns of its
# output (never along the summed dimension), each chunk one single-threaded
# BLAS call, and every sum keeps one order: the results are the same bits
# with any number of threads.
#
# The threads of an engine call form one team (_team.h) for the whole call,
# an epoch included: one OpenMP region, inside which every pass is a claim
# loop over its chunks followed by the team's barrier. Every thread runs the
# same control flow (which minibatch, which layer), so that all meet at every
# barrier; what only one thread must do (set a shared pointer, write back a
# result) the leader does, before a barrier that publishes it.
# ----------------------------------------------------------------------------

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CYMLP_HAVE_OPENMP 1
    #else
    /* No OpenMP: a region runs on the calling thread alone, and so does the
       engine. */
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    #define CYMLP_HAVE_OPENMP 0
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    const int CYMLP_HAVE_OPENMP

cdef extern from "team.h" nogil:
    ctypedef struct cymlp_team:
        double* scratch
    const int CYMLP_TEAM_SCRATCH
    int cymlp_team_init(cymlp_team* tm)
    void cymlp_team_free(cymlp_team* tm)
    void cymlp_team_enter(cymlp_team* tm, int size)
    Py_ssize_t cymlp_team_claim(cymlp_team* tm)
    void cymlp_team_barrier(cymlp_team* tm)
    long cymlp_thread_preemptions()
    double cymlp_seconds()
    void cymlp_team_note_preempted(cymlp_team* tm, long n)
    long cymlp_team_preempted(cymlp_team* tm)
    int cymlp_contention_serial()
    int cymlp_contention_report(long preempted, double seconds)
    void cymlp_contention_adapt(int on)
    long cymlp_contention_serial_calls()
    int cymlp_fork_guard_install()
    int cymlp_team_allowed(int team)
    int cymlp_fork_serial()
    int cymlp_team_size(cymlp_team* tm)

cdef extern from "resources.h" nogil:
    ctypedef struct cymlp_failure:
        const char* what
        size_t bytes
    ctypedef void* (*cymlp_blas_alloc_fn)(int) noexcept nogil
    ctypedef void (*cymlp_blas_free_fn)(void*) noexcept nogil
    void cymlp_fail(cymlp_failure* f, const char* what, size_t bytes)
    int cymlp_resources_init(cymlp_blas_alloc_fn alloc, cymlp_blas_free_fn release)
    int cymlp_resources_acquire(int team, cymlp_failure* f)
    void cymlp_resources_release(int team)
    void cymlp_resources_pool(int threads)
    void cymlp_blas_member()
    int cymlp_blas_kind, cymlp_blas_measured, cymlp_blas_ready
    size_t cymlp_blas_bytes
    int cymlp_probe_fails
    long cymlp_probes_run, cymlp_probes_failed

# Chunk sizes, measured on the shapes of the benchmarks (see
# benchmarks/RESULTS.md): below them the cost of waking a thread and of
# packing a BLAS operand once more per chunk outweighs the gain.
cdef enum:
    GEMM_GRAIN = 4000000      # flops per chunk of a product, at least
    GEMM_MIN_ROWS = 32        # output rows (or columns) per chunk, at least
    PASS_GRAIN = 16384        # values per chunk of an elementwise pass, at least
    MAX_CHUNKS = 8            # enough for 8 threads; more only repacks operands


cdef inline Py_ssize_t n_chunks(Py_ssize_t extent, double work, double grain,
                                Py_ssize_t min_extent) noexcept nogil:
    """Into how many equal chunks to split `extent` units holding `work` in
    all: about `grain` work each, at least `min_extent` units each, at most
    MAX_CHUNKS, and a power of two. A function of the shape only, so that the
    chunks, and with them the bits, are the same whatever the number of
    threads.

    Why a power of two: 2, 4 or 8 threads then share the chunks evenly, where
    7 chunks on 2 threads left one thread a whole chunk of the critical path;
    and every chunk of a product repacks its shared operand (the forward
    product's weights), so fewer chunks cost less: 200 x 784 x 100 on one
    thread took 1.45x one call's time as 7 chunks in float32, 1.25x as 4
    (1.14x / 1.12x in float64). MNIST-shaped epochs on 2 threads: 236 -> 177
    ms (float32), 400 -> 345 ms (float64)."""
    cdef Py_ssize_t c = <Py_ssize_t> (work / grain), p = 1
    c = min(c, extent // min_extent, <Py_ssize_t> MAX_CHUNKS)
    while p * 2 <= c:
        p *= 2
    return p


cdef inline Py_ssize_t chunk_at(Py_ssize_t extent, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    """Where chunk c of n equal chunks of extent starts (c == n: the end)."""
    return extent * c // n


# Test hook: parallel regions started with more than one thread, and the
# largest team, since the last _thread_stats() (counted by the calling thread).
cdef Py_ssize_t _stat_regions = 0
cdef int _stat_max_team = 0
cdef Py_ssize_t _stat_contended = 0   # teams found preempted (see _team.h)


cdef inline int team_size(int nt, Py_ssize_t nch, cymlp_failure* fail) noexcept nogil:
    """Threads for work whose largest pass has nch chunks (a team or the
    prange of predict's row chunks), noted for the test hook; -1 (fail
    filled) if not even one thread can run it. The threads' resources are
    made sure of (_resources.h): give them back with team_done."""
    global _stat_regions, _stat_max_team
    cdef int team = <int> min(<Py_ssize_t> nt, nch)
    if team > 1 and cymlp_contention_serial():
        team = 1  # the last teams were preempted by other programs: see _team.h
    if not cymlp_team_allowed(team):
        team = 1  # a child forked after this process ran teams: see _team.h
    team = cymlp_resources_acquire(team, fail)
    if team > 1:
        _stat_regions += 1
        _stat_max_team = max(_stat_max_team, team)
    return team


cdef inline void team_done(int team) noexcept nogil:
    cymlp_resources_release(team)


# The thread count of the user's BLAS (the one scipy calls), read and never
# written: the engine's own BLAS is private (_blas.h). NULL where that BLAS is
# not OpenBLAS.
ctypedef int (*blas_get_threads_fn)() noexcept nogil
cdef blas_get_threads_fn _user_blas_threads = NULL
# What that BLAS counts as this machine's processors: its default, and the
# most its setting can hold (OPENBLAS_NUM_THREADS=8 holds 2 on 2 cores).
cdef int _user_blas_procs = 0


# The calling thread's place in its team, passed to every pass.
cdef struct Member:
    cymlp_team* team
    bint leader               # the thread that does what only one must do


cdef inline Py_ssize_t claim(const Member* me) noexcept nogil:
    """The calling thread's next chunk of the current pass."""
    return cymlp_team_claim(me.team)


cdef inline void sync(const Member* me) noexcept nogil:
    """The team's barrier: every thread's writes so far are seen by all."""
    cymlp_team_barrier(me.team)


ctypedef void (*team_body)(void* args, const Member* me) noexcept nogil


cdef void team_thread(cymlp_team* tm, team_body body, void* args, bint alone) noexcept nogil:
    """One thread's part of run_team: join the team (alone: a team of one,
    whatever OpenMP region the caller is in), run the body."""
    cdef Member me
    cdef long preempted = 0 if alone else cymlp_thread_preemptions()
    cymlp_blas_member()
    cymlp_team_enter(tm, 1 if alone else omp_get_num_threads())
    me.team = tm
    me.leader = alone or omp_get_thread_num() == 0
    body(args, &me)
    if not alone:
        cymlp_team_note_preempted(tm, cymlp_thread_preemptions() - preempted)


cdef int run_team(int threads, team_body body, void* args, cymlp_failure* fail) noexcept nogil:
    """Run body(args, member) on a team of `threads` threads (one OpenMP
    region), or on the calling thread alone. 0, or -1 (fail filled) if the
    team's lock could not be made: before any thread started."""
    global _stat_contended
    cdef cymlp_team tm
    cdef double start
    if cymlp_team_init(&tm) != 0:
        cymlp_fail(fail, "the team's mutex and condition variable", sizeof(cymlp_team))
        return -1
    if threads <= 1:
        team_thread(&tm, body, args, True)
    else:
        start = cymlp_seconds()
        with parallel(num_threads=threads):
            team_thread(&tm, body, args, False)
        cymlp_resources_pool(cymlp_team_size(&tm))
        if cymlp_contention_report(cymlp_team_preempted(&tm), cymlp_seconds() - start):
            _stat_contended += 1
    cymlp_team_free(&tm)
    return 0


cdef inline double step_range(const Optimizer* opt, floating* w, const floating* g,
                              Py_ssize_t e0, Py_ssize_t e1, Py_ssize_t n_coefs,
                              double sw_sum, double lr_t, bint want_sq) noexcept nogil:
    """The optimizer step over w[e0:e1] of the packed buffer: coefficients
    with the L2 term, intercepts without. With want_sq, returns the sum of
    squares of the new coefficients in the range (else 0)."""
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
                      opt.beta_1, opt.beta_2, opt.epsilon, sq_out)
        else:
            sgd_step(w + lo, g + lo, s1 + lo, hi - lo, alpha, sw_sum, opt.lr,
                     opt.momentum, opt.nesterov, sq_out)
        if floating is double:
            if narrow:
                # float32 weights += a float64 step: numpy adds in float64 and
                # stores the sum rounded to float32 (inf past float32's range)
                sq += narrow_to_float32(w + lo, opt.params32 + lo, hi - lo,
                                        part == 0 and want_sq)
    return sq


cdef double par_optimizer_step(const Member* me, const Optimizer* opt, floating* w,
                               const floating* g, Py_ssize_t n_params, Py_ssize_t n_coefs,
                               double sw_sum, double lr_t, bint want_sq) noexcept nogil:
    """One optimizer step over the packed buffer, in fixed chunks. With
    want_sq, returns the new coefficients' sum of squares (the L2 penalty of
    the next minibatch), the chunks' sums added in chunk order (by every
    thread: each returns the same total)."""
    cdef Py_ssize_t nch = n_chunks(n_params, <double> n_params, PASS_GRAIN, 1)
    cdef double* partial = me.team.scratch
    cdef double total = 0.0
    cdef Py_ssize_t ch = claim(me)
    while ch < nch:
        partial[ch] = step_range(opt, w, g, chunk_at(n_params, nch, ch),
                                 chunk_at(n_params, nch, ch + 1), n_coefs, sw_sum, lr_t,
                                 want_sq)
        ch = claim(me)
    sync(me)
    for ch in range(nch):
        total += partial[ch]
    return total


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


cdef struct Optimizer:
    # Settings captured when the optimizer is made (as scikit-learn's
    # SGDOptimizer / AdamOptimizer capture theirs), the per-epoch alpha and
    # rate, and the moments: packed buffers shaped like the parameters.
    int kind
    double alpha
    double lr                 # sgd: current rate; adam: learning_rate_init
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    Py_ssize_t t              # adam: steps taken so far
    void* state1              # sgd velocity / adam first moment
    void* state2              # adam second moment, or NULL
    # A double optimizer of float32 weights (Trainer's float32_weights): each
    # step rounds the weights to float32 and writes them here too, for the
    # float32 forward pass; NULL otherwise.
    float* params32


cdef struct Data:
    # The rows an engine call reads: dense (indptr == NULL) or CSR data,
    # targets and sample weights (sw NULL: all ones).
    const void* X
    const Py_ssize_t* indptr
    const Py_ssize_t* indices
    const void* Y
    const void* sw
    Py_ssize_t n_samples


cdef struct SparseRows:
    # A minibatch of a CSR matrix: rows idx[0..rows) or start..start+rows.
    const Py_ssize_t* indptr
    const Py_ssize_t* indices
    const Py_ssize_t* idx
    Py_ssize_t start


cdef inline Py_ssize_t sparse_row(const SparseRows* sp, Py_ssize_t r) noexcept nogil:
    return sp.idx[r] if sp.idx != NULL else sp.start + r


ctypedef fused stored:
    float
    double


cdef void csr_times_dense(
    const stored* data, const SparseRows* sp, Py_ssize_t rows,
    const floating* W, Py_ssize_t n_out,   # IN  W: n_in x n_out
    floating* out,                          # OUT rows x n_out
) noexcept nogil:
    """out = X[rows] @ W for CSR X, accumulating the nonzeros of a row in order
    (the order of scipy's csr @ dense). The values may be stored wider than
    the product is computed (double values of float32 X, for a mixed call)."""
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
            v = <floating> data[p]
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
    # two returns, not a conditional expression: Cython's temporary for that
    # would drop the const
    if hidden:
        return &net.hidden_vec[k]
    return &net.out_vec[k]


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
            # through void*: numpy declares its loops without nogil, but they
            # take no Python objects and never touch the GIL
            found.fn = <ufunc_loop> <void*> uf.functions[i]
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
    void** act                # L + 1 activations (act[0], the input, unused: see row_block)
    void** delta              # L output deltas: delta[i] belongs to act[i + 1]
    void** pre                # L + 1 pre-activations (only gelu / silu), or NULL
    void** inp                # L + 1 GEMM inputs: act[i] or its dropped-out copy
    void** mask               # L + 1 dropout masks, or NULL
    void* gathered            # the rows of a shuffled dense minibatch, or NULL
    double* row_loss          # one loss per row (for a split of the loss pass)


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


cdef inline Py_ssize_t row_chunks(const Net* net, Py_ssize_t rows) noexcept nogil:
    """The row pass's number of chunks for `rows` rows, sized by the rows'
    forward products (a function of the shapes, as every chunking here)."""
    cdef Py_ssize_t i
    cdef double flops = 0.0
    for i in range(net.n_layers):
        flops += 2.0 * rows * net.units[i] * net.units[i + 1]
    return n_chunks(rows, flops, GEMM_GRAIN, GEMM_MIN_ROWS)


cdef inline uint64_t past_masks(const Dropout* drop, const Net* net, Py_ssize_t layer,
                                Py_ssize_t rows, uint64_t state) noexcept nogil:
    """The generator's state after the masks of hidden layer `layer` (if it
    has dropout) for `rows` rows: one draw per unit and row."""
    if drop.rate[layer] > 0:
        return splitmix64_skip(state, rows * net.units[layer])
    return state


cdef void row_block(const Net* net, Tables* t, const Batch* b, const floating* x0,
                    Py_ssize_t r0, Py_ssize_t r1, const Dropout* drop) noexcept nogil:
    """Rows r0..r1 of the row pass, on the calling thread.

    x0 is the minibatch's dense input (rows n_in apart; the gather buffer
    when b.idx selects rows of a dense X); drop the calling thread's
    generator as it is at the start of the pass, or NULL.
    """
    cdef Py_ssize_t i, e, m = r1 - r0, L = net.n_layers, n_in = net.units[0]
    cdef Py_ssize_t* u = net.units
    cdef floating** W = <floating**> t.W
    cdef floating** act = <floating**> t.act
    cdef floating** inp = <floating**> t.inp
    cdef floating** pre = <floating**> t.pre
    cdef floating** mask = <floating**> t.mask
    cdef floating* gathered = <floating*> t.gathered
    cdef const floating* X = <const floating*> b.X
    cdef const floating* a
    cdef SparseRows sp
    cdef uint64_t state = drop.state if drop != NULL else 0, s
    cdef bint hidden
    if b.sp == NULL and b.idx != NULL and gathered != NULL:
        for e in range(r0, r1):
            memcpy(gathered + e * n_in, X + b.idx[e] * n_in, n_in * sizeof(floating))
    for i in range(L):
        hidden = i < L - 1
        if i == 0 and b.sp != NULL:
            sp = b.sp[0]
            if sp.idx != NULL:
                sp.idx = sp.idx + r0
            else:
                sp.start = sp.start + r0
            if floating is float and b.x_double:
                csr_times_dense(<const double*> b.X, &sp, m, W[0], u[1], act[1] + r0 * u[1])
            else:
                csr_times_dense(X, &sp, m, W[0], u[1], act[1] + r0 * u[1])
        else:
            a = x0 if i == 0 else inp[i]
            gemm(False, False, <int> m, <int> u[i + 1], <int> u[i], <floating> 1,
                 a + r0 * u[i], <int> u[i], W[i], <int> u[i + 1], <floating> 0,
                 act[i + 1] + r0 * u[i + 1], <int> u[i + 1])
        bias_activate(act[i + 1] + r0 * u[i + 1], <floating*> t.b[i], m, u[i + 1],
                      net.hidden_act if hidden else net.out_act,
                      _vec_of(net, hidden, <floating> 0),
                      pre[i + 1] + r0 * u[i + 1] if hidden and pre != NULL else NULL,
                      net.slope)
        if hidden and drop != NULL and drop.rate[i + 1] > 0:
            # the chunk's masks start where the serial sequence of this
            # layer's masks is at the chunk's first value
            s = splitmix64_skip(state, r0 * u[i + 1])
            dropout_forward(act[i + 1] + r0 * u[i + 1], inp[i + 1] + r0 * u[i + 1],
                            mask[i + 1] + r0 * u[i + 1], m * u[i + 1], drop.rate[i + 1], &s)
            state = past_masks(drop, net, i + 1, b.rows, state)
    if b.y != NULL:
        row_backward(net, t, b, r0, r1, drop, <floating> 0)


cdef void row_backward(const Net* net, Tables* t, const Batch* b, Py_ssize_t r0,
                       Py_ssize_t r1, const Dropout* drop, floating dtype_tag) noexcept nogil:
    """The loss and output delta of rows r0..r1 (their forward pass done),
    and with b.backward the hidden layers' deltas; dtype_tag only selects
    the precision."""
    cdef Py_ssize_t i, e, m = r1 - r0, L = net.n_layers
    cdef Py_ssize_t* u = net.units
    cdef floating** W = <floating**> t.W
    cdef floating** act = <floating**> t.act
    cdef floating** delta = <floating**> t.delta
    cdef floating** pre = <floating**> t.pre
    cdef floating** mask = <floating**> t.mask
    cdef const floating* y = <const floating*> b.y
    cdef const floating* sw = <const floating*> b.sw
    # targets and weights are indexed through idx, or consecutive
    loss_and_delta(act[L] + r0 * u[L], y if b.idx != NULL else y + r0 * u[L],
                   b.idx + r0 if b.idx != NULL else NULL,
                   sw + r0 if sw != NULL and b.idx == NULL else sw,
                   delta[L - 1] + r0 * u[L], t.row_loss + r0, m, u[L], net.loss,
                   net.loss_param)
    if not b.backward:
        return
    for i in range(L - 1, 0, -1):
        # delta[i - 1] = (delta[i] @ W[i]^T) * f'(z), times the dropout mask
        gemm(False, True, <int> m, <int> u[i], <int> u[i + 1], <floating> 1,
             delta[i] + r0 * u[i + 1], <int> u[i + 1], W[i], <int> u[i + 1], <floating> 0,
             delta[i - 1] + r0 * u[i], <int> u[i])
        multiply_derivative(act[i] + r0 * u[i], pre[i] + r0 * u[i] if pre != NULL else NULL,
                            delta[i - 1] + r0 * u[i], m * u[i], net.hidden_act, net.slope)
        if drop != NULL and drop.rate[i] > 0:
            for e in range(r0 * u[i], r1 * u[i]):
                delta[i - 1][e] = delta[i - 1][e] * mask[i][e]


cdef void row_block_mixed(const Net* net, Tables* t32, Tables* t, const Batch* b,
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
    cdef const double* X = <const double*> b.X
    cdef const double* src
    cdef Batch f = b[0]
    f.y = NULL
    if b.sp == NULL:
        # the float32 rows of the chunk (X's own values), and for a shuffled
        # epoch the float64 rows that the first layer's gradient reads
        for e in range(r0, r1):
            src = X + b.idx[e] * n_in if b.idx != NULL else x0 + e * n_in
            if b.idx != NULL and gathered != NULL:
                memcpy(gathered + e * n_in, src, n_in * sizeof(double))
            for k in range(n_in):
                rows32[e * n_in + k] = <float> src[k]
        f.idx = NULL
    else:
        f.x_double = True
    row_block(net, t32, &f, <const float*> rows32, r0, r1, drop)
    for i in range(1, L + 1):
        lo = r0 * u[i]
        hi = r1 * u[i]
        for e in range(lo, hi):
            (<double*> t.act[i])[e] = (<float*> t32.act[i])[e]
        if t.pre != NULL and i < L:
            for e in range(lo, hi):
                (<double*> t.pre[i])[e] = (<float*> t32.pre[i])[e]
        if drop != NULL and i < L and drop.rate[i] > 0:
            for e in range(lo, hi):
                (<double*> t.inp[i])[e] = (<float*> t32.inp[i])[e]
                (<double*> t.mask[i])[e] = (<float*> t32.mask[i])[e]
    if b.y != NULL:
        row_backward(net, t, b, r0, r1, drop, <double> 0)


cdef double par_rows(const Member* me, const Net* net, Tables* t, const Batch* b,
                     const floating* x0, Dropout* drop, Tables* t32=NULL) noexcept nogil:
    """The row pass, by the team, in fixed chunks of rows. With targets,
    returns the rows' weighted losses added in row order, as the serial
    kernel adds them (by every thread: each returns the same total). `drop`
    is the calling thread's generator (or NULL): every thread moves it past
    the pass's masks. With t32 (double only), the rows of a mixed call (see
    row_block_mixed)."""
    cdef Py_ssize_t nch = row_chunks(net, b.rows), i, r
    cdef double total = 0.0
    cdef Py_ssize_t ch = claim(me)
    while ch < nch:
        if floating is double:
            if t32 != NULL:
                row_block_mixed(net, t32, t, b, x0, chunk_at(b.rows, nch, ch),
                                chunk_at(b.rows, nch, ch + 1), drop)
                ch = claim(me)
                continue
        row_block(net, t, b, x0, chunk_at(b.rows, nch, ch), chunk_at(b.rows, nch, ch + 1),
                  drop)
        ch = claim(me)
    if drop != NULL:
        for i in range(1, net.n_layers):
            drop.state = past_masks(drop, net, i, b.rows, drop.state)
    sync(me)
    if b.y != NULL:
        for r in range(b.rows):
            total += t.row_loss[r]
    return total


cdef inline Py_ssize_t product_chunks(const Net* net, Py_ssize_t i, Py_ssize_t rows,
                                      bint sparse) noexcept nogil:
    """Chunks of layer i's weight gradient, split over its fan_in (never over
    the rows it sums); the CSR product of the first layer is one."""
    if i == 0 and sparse:
        return 1
    return n_chunks(net.units[i], 2.0 * rows * net.units[i] * net.units[i + 1],
                    GEMM_GRAIN, GEMM_MIN_ROWS)


cdef inline Py_ssize_t sum_chunks(const Net* net, Py_ssize_t i, Py_ssize_t rows) noexcept nogil:
    """Chunks of layer i's bias gradient, split over its columns (at least 8,
    a cache line of doubles, each): each column still sums its rows in order."""
    return n_chunks(net.units[i + 1], <double> rows * net.units[i + 1], PASS_GRAIN, 8)


cdef void par_gradients(const Member* me, const Net* net, Tables* t, floating* grad,
                        Py_ssize_t rows, const floating* x0, const floating* sp_data,
                        const SparseRows* sp) noexcept nogil:
    """Unscaled gradients of every layer, by the team: grad_W[i] = inp[i]^T
    delta[i] (x0 or the CSR rows sp for the first layer), grad_b[i] = the
    column sums of delta[i]. One claim loop over all the layers' chunks (the
    products, then the sums), one barrier."""
    cdef Py_ssize_t L = net.n_layers, i, c, nch, c0, c1
    cdef Py_ssize_t* u = net.units
    cdef floating** delta = <floating**> t.delta
    cdef const floating* a
    cdef Py_ssize_t ch = claim(me)
    cdef bint found
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
        elif i == 0 and sp != NULL:
            csr_transpose_times_dense(sp_data, sp, rows, delta[0], u[1],
                                      grad + net.coef_off[0], u[0])
        else:
            a = x0 if i == 0 else <floating*> t.inp[i]
            c0 = chunk_at(u[i], nch, c)
            c1 = chunk_at(u[i], nch, c + 1)
            gemm(True, False, <int> (c1 - c0), <int> u[i + 1], <int> rows, <floating> 1,
                 a + c0, <int> u[i], delta[i], <int> u[i + 1], <floating> 0,
                 grad + net.coef_off[i] + c0 * u[i + 1], <int> u[i + 1])
        ch = claim(me)
    sync(me)


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
    elif is_mean_over_outputs(net.loss):
        loss = loss / net.units[net.n_layers]
    return loss + 0.5 * alpha * coef_sq / sw_sum


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


cdef void workspace_layout(const Net* net, Py_ssize_t rows, bint gather, bint dropout,
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


cdef Py_ssize_t workspace_size(const Net* net, Py_ssize_t rows, bint gather,
                               bint dropout) noexcept nogil:
    cdef Py_ssize_t off[WS_END + 1]
    workspace_layout(net, rows, gather, dropout, off)
    return off[WS_END]


cdef inline size_t tables_bytes(const Net* net, Py_ssize_t rows) noexcept nogil:
    return (7 * net.n_layers + 4) * sizeof(void*) + rows * sizeof(double)


cdef void** layer_tables(const Net* net, floating* params, floating* work,
                         Py_ssize_t rows, bint gather, const double* rates,
                         Tables* t, cymlp_failure* fail) noexcept nogil:
    """Fill t with tables for minibatches of up to `rows` rows over `work`,
    laid out by workspace_layout with the same rows, gather and dropout.

    One allocation holds every table and the rows' losses (returned, for
    free()); NULL (fail filled) when out of memory. act[0] and inp[0] are
    NULL: the passes take the input rows as an argument. W and b are left for
    the caller when params is NULL (predict, from separate arrays).
    """
    cdef Py_ssize_t L = net.n_layers, i, off
    cdef Py_ssize_t region[WS_END + 1]
    cdef bint dropout = rates != NULL
    cdef void** blk = <void**> malloc(tables_bytes(net, rows))
    if blk == NULL:
        cymlp_fail(fail, "the layer tables", tables_bytes(net, rows))
        return NULL
    workspace_layout(net, rows, gather, dropout, region)
    t.row_loss = <double*> (blk + 7 * L + 4)
    t.gathered = work + region[WS_GATHER] if gather else NULL
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
        t.act[i + 1] = work + region[WS_ACT] + off
        t.delta[i] = work + region[WS_DELTA] + off
        t.inp[i + 1] = t.act[i + 1]
        if net.keep_pre:
            t.pre[i + 1] = work + region[WS_PRE] + off
        if dropout and i < L - 1 and rates[i + 1] > 0:
            # the next layer reads the dropped-out copy
            t.inp[i + 1] = work + region[WS_DROP] + off
            t.mask[i + 1] = work + region[WS_MASK] + off
    t.act[0] = NULL
    t.inp[0] = NULL
    if net.keep_pre:
        t.pre[0] = NULL
    if dropout:
        t.mask[0] = NULL
        t.mask[L] = NULL
    return blk


cdef Py_ssize_t call_chunks(const Net* net, Py_ssize_t rows, bint gradients, bint sparse,
                            bint step) noexcept nogil:
    """The most chunks of any pass of a call on minibatches of `rows` rows
    (with the gradient pass; with the optimizer step): a team larger than
    that would only wait. 1 means a serial call. (The bias gradients' sums
    share the gradient pass but are not counted: on their own they are too
    small to be worth a second thread.)"""
    cdef Py_ssize_t i, c = row_chunks(net, rows)
    if gradients:
        for i in range(net.n_layers):
            c = max(c, product_chunks(net, i, rows, sparse))
    if step:
        c = max(c, n_chunks(net.n_params, <double> net.n_params, PASS_GRAIN, 1))
    return c


# What an epoch's team works on. The pointers and settings are shared and
# read-only within the call; only the leader writes the results back.
cdef struct Epoch:
    const Net* net
    Optimizer* opt
    const Data* d
    const Py_ssize_t* order
    Py_ssize_t batch_size
    void* params
    void* grad
    Tables* t
    Tables* t32               # a mixed call's float32 forward pass (see row_block_mixed), or NULL
    Dropout* drop             # the caller's generator state, or NULL
    bint f32                  # params and grad are float (else double)
    double loss               # OUT the sum over minibatches of loss * rows


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
    weights), the forward passes run in float32 over work32, laid out for
    batch_size rows with the gather region.
    """
    cdef bint gather = order != NULL and d.indptr == NULL
    cdef Tables t, t32
    cdef void** blk = layer_tables(net, params, work, batch_size, gather,
                                   drop.rate if drop != NULL else NULL, &t, fail)
    cdef void** blk32 = NULL
    cdef Epoch e
    cdef int status
    if blk == NULL:
        return -1
    e.t32 = NULL
    if work32 != NULL:
        blk32 = layer_tables(net, opt.params32, work32, batch_size, True,
                             drop.rate if drop != NULL else NULL, &t32, fail)
        if blk32 == NULL:
            free(blk)
            return -1
        e.t32 = &t32
    e.net = net
    e.opt = opt
    e.d = d
    e.order = order
    e.batch_size = batch_size
    e.params = params
    e.grad = grad
    e.t = &t
    e.drop = drop
    e.loss = 0.0
    nt = team_size(nt, call_chunks(net, min(batch_size, d.n_samples), True,
                                  d.indptr != NULL, True), fail)
    if nt < 0:
        free(blk)
        free(blk32)
        return -1
    e.f32 = floating is float
    status = run_team(nt, epoch_body, &e, fail)
    team_done(nt)
    loss_out[0] = e.loss
    free(blk)
    free(blk32)
    return status


# The team bodies: a team_body has no dtype in its signature, so each reads
# it from its arguments (f32) and runs the member of that precision.
cdef void epoch_body(void* args, const Member* me) noexcept nogil:
    cdef Epoch* e = <Epoch*> args
    if e.f32:
        epoch_member(e, me, <float*> e.params)
    else:
        epoch_member(e, me, <double*> e.params)


cdef void loss_grad_body(void* args, const Member* me) noexcept nogil:
    cdef LossGrad* lg = <LossGrad*> args
    if lg.f32:
        loss_grad_member(lg, me, <float*> lg.params)
    else:
        loss_grad_member(lg, me, <double*> lg.params)


cdef void predict_body(void* args, const Member* me) noexcept nogil:
    cdef Predict* pr = <Predict*> args
    if pr.f32:
        predict_member(pr, me, <float*> pr.out)
    else:
        predict_member(pr, me, <double*> pr.out)


cdef void epoch_member(Epoch* e, const Member* me, floating* params) noexcept nogil:
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
    cdef Batch b
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
    b.X = X
    b.sp = spp
    b.backward = True
    b.x_double = False
    # The L2 penalty: Adam's step also sums the squares of the coefficients it
    # writes, the next minibatch's penalty, where the divider leaves the
    # arithmetic free (about 0.03 ns per float64 parameter cheaper than a
    # second pass through BLAS dot here); SGD's step is bound by memory, and
    # the extra arithmetic cost more than the dot's pass (benchmarks/README).
    fold_sq = opt.alpha != 0 and opt.kind == ADAM
    if fold_sq and me.leader:
        coef_sq = sum_squares(net, params)  # the first minibatch's

    start = 0
    while start < d.n_samples:
        rows = min(e.batch_size, d.n_samples - start)
        # The minibatch: rows order[start:start+rows] (a shuffled epoch: the
        # row pass gathers dense rows into rows_buf) or the block
        # start:start+rows, used in place. Every thread works out where it
        # is for itself: nothing shared changes between minibatches.
        b.rows = rows
        if order != NULL:
            idx = order + start
            b.y = Y
            b.sw = sw
        else:
            idx = NULL
            b.y = Y + start * n_out
            b.sw = sw + start if sw != NULL else NULL
        b.idx = idx
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
            sw_batch = <const floating*> b.sw
            for r in range(rows):
                sw_sum += sw_batch[idx[r] if idx != NULL else r]
            if sw_sum == 0:
                start += rows
                continue
        else:
            sw_sum = rows

        wloss = par_rows(me, net, t, &b, x0, drop_p, e.t32)
        if me.leader:
            # (the parameters change only in the step, after the next barrier)
            if not fold_sq and opt.alpha != 0:
                coef_sq = sum_squares(net, params)
            accumulated += batch_loss(net, wloss, sw_sum, opt.alpha, coef_sq) * rows
        par_gradients(me, net, t, grad, rows, x0, X, spp)

        # One pass over the packed buffer: coefficients (with the L2 term), then
        # intercepts; with fold_sq it returns the next minibatch's penalty.
        lr_t = opt.lr
        if opt.kind == ADAM:
            steps += 1
            lr_t = (opt.lr * sqrt(1 - pow(opt.beta_2, <double> steps))
                    / (1 - pow(opt.beta_1, <double> steps)))
        coef_sq = par_optimizer_step(me, opt, params, grad, net.n_params, net.n_coefs,
                                     sw_sum, lr_t, fold_sq)
        start += rows

    if me.leader:
        e.loss = accumulated
        opt.t = steps
        if e.drop != NULL:
            e.drop.state = drop.state


# What the team of a loss_grad_impl call works on.
cdef struct LossGrad:
    const Net* net
    double alpha
    const Data* d
    void* params
    void* grad                # NULL: the loss only
    Tables* t
    bint f32                  # params and grad are float (else double)
    Tables* t32               # a mixed call's float32 forward pass, or NULL
    double loss               # OUT


cdef int loss_grad_impl(
    const Net* net, double alpha, const Data* d,
    floating* params, floating* grad, floating* work, int nt, double* loss_out,
    cymlp_failure* fail, float* params32=NULL, float* work32=NULL,
) noexcept nogil:
    """Loss over all rows at once and, unless grad is NULL, its gradient (for
    lbfgs; without grad, the validation loss), on up to nt threads. 0, or -1
    (fail filled) if out of memory: then before any thread started. `work`
    was laid out for at least d.n_samples rows, without gather. With params32
    and work32 (double only: a mixed call), the forward pass runs in float32
    over those weights and work32, laid out for as many rows with the gather
    region."""
    cdef Tables t, t32
    cdef void** blk = layer_tables(net, params, work, d.n_samples, False, NULL, &t, fail)
    cdef void** blk32 = NULL
    cdef LossGrad lg
    cdef int status
    if blk == NULL:
        return -1
    lg.t32 = NULL
    if work32 != NULL:
        blk32 = layer_tables(net, params32, work32, d.n_samples, True, NULL, &t32, fail)
        if blk32 == NULL:
            free(blk)
            return -1
        lg.t32 = &t32
    lg.net = net
    lg.alpha = alpha
    lg.d = d
    lg.params = params
    lg.grad = grad
    lg.t = &t
    lg.loss = 0.0
    nt = team_size(nt, call_chunks(net, d.n_samples, grad != NULL, d.indptr != NULL, False),
                   fail)
    if nt < 0:
        free(blk)
        free(blk32)
        return -1
    lg.f32 = floating is float
    status = run_team(nt, loss_grad_body, &lg, fail)
    team_done(nt)
    loss_out[0] = lg.loss
    free(blk)
    free(blk32)
    return status


cdef void loss_grad_member(LossGrad* lg, const Member* me, floating* params) noexcept nogil:
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
    cdef Batch b
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
    b.rows = n
    b.X = X
    b.idx = NULL
    b.sp = spp
    b.y = d.Y
    b.sw = sw
    b.backward = grad != NULL
    b.x_double = False
    x0 = X if spp == NULL else NULL
    wloss = par_rows(me, net, t, &b, x0, NULL, lg.t32)
    if me.leader:
        lg.loss = batch_loss(net, wloss, sw_sum, lg.alpha,
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


# What the team of a prediction works on: row chunks c0..c1 of X.
cdef struct Predict:
    const Net* net
    const Data* d
    void* out
    Tables* t
    bint check_finite
    Py_ssize_t chunk, c0, c1
    bint f32                  # out and the weights are float (else double)
    int status                # OUT 0, or 1: check_finite found a non-finite value


cdef int predict_chunks(
    const Net* net, Tables* t, const Data* d, floating* out, bint check_finite,
    Py_ssize_t chunk, Py_ssize_t c0, Py_ssize_t c1, int nt, cymlp_failure* fail,
) noexcept nogil:
    """The forward pass of the row chunks c0..c1 (chunk rows each) into out,
    over tables t (a workspace of chunk rows, the weights filled in), on a
    team of nt threads whose resources the caller made sure of. Returns as
    predict_impl does."""
    cdef Predict pr
    cdef int status
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
    status = run_team(nt, predict_body, &pr, fail)
    return status if status != 0 else pr.status


cdef void predict_member(Predict* pr, const Member* me, floating* out) noexcept nogil:
    """One thread's part of predict_chunks."""
    cdef const Net* net = pr.net
    cdef const Data* d = pr.d
    cdef Tables* t = pr.t
    cdef Py_ssize_t L = net.n_layers, start, rows, n = d.n_samples, c
    cdef Py_ssize_t n_in = net.units[0], n_out = net.units[L]
    cdef const floating* X = <const floating*> d.X
    cdef SparseRows sp
    cdef const SparseRows* spp = &sp if d.indptr != NULL else NULL
    cdef Batch b
    sp.indptr = d.indptr
    sp.indices = d.indices
    sp.idx = NULL
    b.X = X
    b.idx = NULL
    b.sp = spp
    b.y = NULL
    b.sw = NULL
    b.backward = False
    b.x_double = False
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
            t.act[L] = out + start * n_out
        sync(me)
        if pr.status != 0:
            return
        b.rows = rows
        par_rows(me, net, t, &b, X + start * n_in if spp == NULL else NULL, NULL)


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
    part[0].blk = layer_tables(net, <floating*> NULL, buf, chunk, False, NULL, &part[0].t, fail)
    if part[0].blk == NULL:
        free(buf)
        if part != &one:
            free(part)
        return -1
    team = team_size(nt, nch if split else call_chunks(net, chunk, False, False, False), fail)
    if team < 0:
        status = -1
    elif split and team > 1:
        more = <floating*> malloc((team - 1) * ws * sizeof(floating))
        if more != NULL:
            parts = team
            for p in range(1, team):
                part[p].blk = layer_tables(net, <floating*> NULL, more + (p - 1) * ws, chunk,
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


cdef bint csr_structure_ok(const Py_ssize_t* indptr, const Py_ssize_t* indices,
                           Py_ssize_t n_rows, Py_ssize_t nnz, Py_ssize_t n_cols) noexcept nogil:
    """Whether a CSR structure only points inside its arrays: indptr starts at
    0, never decreases and ends within nnz; every column index is in range."""
    cdef Py_ssize_t i, p
    if indptr[0] != 0 or indptr[n_rows] > nnz:
        return False
    for i in range(n_rows):
        if indptr[i + 1] < indptr[i]:
            return False
    for p in range(indptr[n_rows]):
        if indices[p] < 0 or indices[p] >= n_cols:
            return False
    return True


cdef bint is_row_order(const Py_ssize_t* order, Py_ssize_t n) noexcept nogil:
    """Whether every entry of order is a row index in [0, n)."""
    cdef Py_ssize_t i
    for i in range(n):
        if order[i] < 0 or order[i] >= n:
            return False
    return True


# Engine calls running now, in all threads of the process (changed only with
# the GIL held): calls running at the same time share the thread budget.
cdef int _running = 0

# Whether the engine was built with OpenMP (without it, it runs serially).
OPENMP = bool(CYMLP_HAVE_OPENMP)


cdef class _EngineCall:
    """One engine call, as a context: the threads it may use (``threads``).

    The budget is the lesser of OpenMP's ``omp_get_max_threads()`` (which
    ``OMP_NUM_THREADS`` and threadpoolctl's "openmp" limits decide, in the
    calling thread) and the thread count of the user's BLAS (``OPENBLAS_NUM_THREADS``,
    threadpoolctl's "blas" limits: one process-wide setting, so a
    ``threadpool_limits`` entered in the main thread reaches fits running in
    joblib's threading workers too) when it is below that BLAS's default,
    the number of processors (at the default, or above, which OpenBLAS caps
    there, only OpenMP's setting counts). scikit-learn's MLP computes in
    BLAS's threads, so a limit on those is what its users set; joblib/loky's
    worker caps set both. Calls running at once share the budget: each takes
    ``budget // calls running``, so two fits in threads of one process do not
    each take every core. On entry the private BLAS is held at one thread.
    """
    cdef readonly int threads

    def __enter__(self):
        global _running
        cdef int budget = omp_get_max_threads(), blas = 0
        if _user_blas_threads != NULL:
            blas = _user_blas_threads()
        if 0 < blas < _user_blas_procs:  # below the default: a limit the user set
            budget = min(budget, blas)
        _running += 1
        self.threads = max(1, budget // _running)
        cymlp_blas_hold_one_thread()
        return self

    def __exit__(self, *exc):
        global _running
        _running -= 1
        return False


def _load_blas():
    """Point the engine at its private OpenBLAS, held at one thread, and at
    the user's BLAS thread count (see _blas_loader)."""
    global cymlp_sgemm, cymlp_dgemm, cymlp_sdot, cymlp_ddot
    global cymlp_blas_get_threads, cymlp_blas_set_threads, _user_blas_threads
    global _user_blas_procs
    from ._blas_loader import private_blas_functions, user_blas_function
    f = private_blas_functions()
    cymlp_sgemm = <cymlp_sgemm_fn> <size_t> f["sgemm"]
    cymlp_dgemm = <cymlp_dgemm_fn> <size_t> f["dgemm"]
    cymlp_sdot = <cymlp_sdot_fn> <size_t> f["sdot"]
    cymlp_ddot = <cymlp_ddot_fn> <size_t> f["ddot"]
    cymlp_blas_get_threads = <cymlp_get_threads_fn> <size_t> f["get_threads"]
    cymlp_blas_set_threads = <cymlp_set_threads_fn> <size_t> f["set_threads"]
    cymlp_blas_set_threads(1)
    _user_blas_threads = <blas_get_threads_fn> <size_t> user_blas_function(
        "openblas_get_num_threads")
    cdef blas_get_threads_fn procs = <blas_get_threads_fn> <size_t> user_blas_function("openblas_get_num_procs")
    if procs == NULL:
        _user_blas_threads = NULL
    else:
        _user_blas_procs = procs()
    return f


_PRIVATE_BLAS = _load_blas()
# The library file of the engine's BLAS (a test hook, and for bug reports).
PRIVATE_BLAS_PATH = _PRIVATE_BLAS["path"]


if cymlp_fork_guard_install() != 0:
    raise ImportError("cymlp: could not register the engine's fork handler (pthread_atfork)")

# OpenBLAS's allocator of work buffers, to make buffers before the threads
# that need them start (see _resources.h and _blas_loader).
def _init_resources():
    from ._blas_loader import private_blas_allocator
    alloc, release = private_blas_allocator(_PRIVATE_BLAS)
    if cymlp_resources_init(<cymlp_blas_alloc_fn> <size_t> alloc,
                            <cymlp_blas_free_fn> <size_t> release) != 0:
        raise ImportError("cymlp: could not register the engine's fork handler "
                          "(pthread_atfork)")


_init_resources()


def _resources(probe_fails=None):
    """Test hook: what _resources.h found and did, as a dict: ``probes`` and
    ``probes_failed`` since the last call (which resets them; a probe tries
    the new threads of a team before libgomp makes them), ``blas`` (how
    OpenBLAS keeps its work buffers: "shared", "per-thread", or None where
    it is not OpenBLAS), ``blas_buffer_bytes`` (one buffer; None if not
    measured), ``blas_buffers`` (those made so far, shared table). With
    probe_fails (True / False), first makes every probe fail from now on, or
    not: the calls then run on one thread."""
    global cymlp_probes_run, cymlp_probes_failed, cymlp_probe_fails
    if probe_fails is not None:
        cymlp_probe_fails = 1 if probe_fails else 0
    found = {
        "probes": cymlp_probes_run,
        "probes_failed": cymlp_probes_failed,
        "blas": {0: None, 1: "shared", 2: "per-thread"}[cymlp_blas_kind],
        "blas_buffer_bytes": cymlp_blas_bytes if cymlp_blas_measured else None,
        "blas_buffers": cymlp_blas_ready,
    }
    cymlp_probes_run = 0
    cymlp_probes_failed = 0
    return found


def _forked_serial():
    """Test hook: whether this process is a child forked after the engine ran
    teams of threads, whose engine calls therefore run on one thread."""
    return bool(cymlp_fork_serial())


# The team's scratch holds one partial sum per chunk of a pass.
if MAX_CHUNKS > CYMLP_TEAM_SCRATCH:
    raise ImportError("cymlp: MAX_CHUNKS exceeds the team's scratch (_team.h)")


def _thread_stats():
    """Test hook: ``(regions, max_team)``, the parallel regions the engine
    started with more than one thread and the largest team, since the last
    call (which resets them)."""
    global _stat_regions, _stat_max_team
    stats = (_stat_regions, _stat_max_team)
    _stat_regions = 0
    _stat_max_team = 0
    return stats


def _contention(adapt=None):
    """Test hook: how many teams were found preempted by other programs
    (see _team.h) since the last call, which resets the count. With adapt
    (True / False), first turns the adaptation on or off; either way the
    engine forgets what it found, and the next calls may use teams again."""
    global _stat_contended
    found = _stat_contended
    _stat_contended = 0
    if adapt is not None:
        cymlp_contention_adapt(1 if adapt else 0)
    return found


def _contention_episode(preempted=None, seconds=None):
    """Test hook: with preempted and seconds, report a team's call as the
    engine does after one (what it found: True if contention). Then returns
    whether the next call that could use a team
    runs on one thread instead (consuming one of the episode's calls), and
    how many calls the adaptation sent to one thread since the last call:
    ``(found, sent, serial_calls)``, found None without a report."""
    found = None
    if preempted is not None:
        found = bool(cymlp_contention_report(preempted, seconds))
    sent = bool(cymlp_contention_serial())
    return found, sent, cymlp_contention_serial_calls()


def _working_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype != np.float32 and dtype != np.float64:
        raise ValueError("cymlp's engine computes in float32 or float64, not %s" % dtype)
    return dtype


cdef _check_array(object a, str name, tuple shape, object dtype, bint writeable=False):
    """Raise ValueError unless `a` is a C-contiguous ndarray of exactly this
    shape and dtype (and writeable if asked): the engine's contract with its
    callers, checked before any pointer into `a` is taken."""
    cdef cnp.ndarray arr
    cdef int k
    cdef bint ok
    if cnp.PyArray_Check(a):
        # the fast path, through numpy's C API: predicting one row checks
        # every layer's arrays, and Python attribute lookups would cost more
        # than the prediction
        arr = <cnp.ndarray> a
        ok = (cnp.PyArray_NDIM(arr) == len(shape)
              and cnp.PyArray_TYPE(arr) == (<cnp.dtype> dtype).type_num
              and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISNOTSWAPPED(arr)
              and (not writeable or cnp.PyArray_ISWRITEABLE(arr)))
        k = 0
        while ok and k < len(shape):
            ok = cnp.PyArray_DIM(arr, k) == <Py_ssize_t> shape[k]
            k += 1
        if ok:
            return
    if not isinstance(a, np.ndarray):
        raise ValueError("%s must be a numpy array, got %s" % (name, type(a).__name__))
    if a.shape != tuple(shape):
        raise ValueError("%s has shape %s; the network expects %s"
                         % (name, a.shape, tuple(shape)))
    if a.dtype != dtype:
        raise ValueError("%s has dtype %s; expected %s" % (name, a.dtype, dtype))
    if not a.flags.c_contiguous:
        raise ValueError("%s must be C-contiguous" % name)
    if writeable and not a.flags.writeable:
        raise ValueError("%s must be writeable" % name)


cdef inline void* _data_of(a):
    # the caller has checked `a` with _check_array
    return cnp.PyArray_DATA(<cnp.ndarray> a)


cdef class Network:
    """Geometry of a fully connected network and the forward pass over it.

    Parameters
    ----------
    layer_units : sequence of int
        Widths of all layers, input first, output last; each at least 1.
    activation : str
        Hidden activation, a key of ``HIDDEN_ACTIVATIONS``.
    out_activation : str
        Output activation, a key of ``OUTPUT_ACTIVATIONS``; with ``loss=None``
        any key of ``ACTIVATIONS``.
    loss : str or None
        A key of ``LOSSES``; the robust losses ('absolute_error', 'huber',
        'quantile') need the 'identity' output. None: a network for the
        forward pass only (a :class:`Trainer` refuses it), which may end in a
        hidden activation: built over the first k + 1 layers of a network,
        its :meth:`predict` computes the activations of hidden layer k.
    negative_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs (>= 0).
    loss_param : float, default=None
        The threshold delta of 'huber' (> 0) or the quantile of 'quantile'
        (in (0, 1)); required by those two losses, ignored by the others.

    Notes
    -----
    The estimators validate what users pass; this class validates again what
    it is given, so that no call can make a kernel read outside its arrays.
    Training state lives in a :class:`Trainer`.

    Examples
    --------
    >>> import numpy as np
    >>> from cymlp._engine import Network
    >>> net = Network([2, 3, 1], "relu", "identity", "squared_error")
    >>> net.n_params
    13
    >>> coefs, intercepts = net.views(np.ones(net.n_params))
    >>> net.predict(np.ones((1, 2)), coefs, intercepts)
    array([[10.]])
    """
    cdef Net net
    cdef object _index   # owns units / offsets

    def __cinit__(self, layer_units, str activation, str out_activation, loss,
                  double negative_slope=0.01, loss_param=None):
        cdef Py_ssize_t L = len(layer_units) - 1, i
        cdef Py_ssize_t[::1] index
        if L < 1:
            raise ValueError("a network needs at least an input and an output layer")
        if activation not in HIDDEN_ACTIVATIONS:
            raise ValueError("unknown hidden activation %r; expected one of %s"
                             % (activation, sorted(HIDDEN_ACTIVATIONS)))
        # a forward-only network may end in any activation: the training
        # kernels (whose deltas assume a canonical output) never see it
        out_table = ACTIVATIONS if loss is None else OUTPUT_ACTIVATIONS
        if out_activation not in out_table:
            raise ValueError("unknown output activation %r; expected one of %s"
                             % (out_activation, sorted(out_table)))
        if loss is not None and loss not in LOSSES:
            raise ValueError("unknown loss %r; expected one of %s" % (loss, sorted(LOSSES)))
        if loss in ("absolute_error", "huber", "quantile") and out_activation != "identity":
            raise ValueError("loss %r needs the 'identity' output activation, got %r"
                             % (loss, out_activation))
        param = 0.0
        if loss in _LOSS_PARAM_RANGES:
            low, high = _LOSS_PARAM_RANGES[loss]
            if loss_param is None or not low < float(loss_param) < high:
                raise ValueError("loss %r needs loss_param in (%g, %g), got %r"
                                 % (loss, low, high, loss_param))
            param = float(loss_param)
        units = [int(u) for u in layer_units]
        if min(units) < 1:
            raise ValueError("every layer needs at least one unit, got %s" % units)
        # Sizes are computed in Python integers first: a product that would
        # overflow the engine's Py_ssize_t offsets is refused here.
        n_params = sum(a * b + b for a, b in zip(units, units[1:]))
        if n_params >= 2**62 or sum(units) >= 2**40:
            raise ValueError("network too large: %d parameters" % n_params)
        self._index = np.zeros(4 * (L + 1), dtype=np.intp)
        index = self._index
        self.net.n_layers = L
        self.net.units = &index[0]
        self.net.coef_off = &index[L + 1]
        self.net.bias_off = &index[2 * (L + 1)]
        self.net.act_off = &index[3 * (L + 1)]
        for i in range(L + 1):
            self.net.units[i] = units[i]
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
        self.net.hidden_act = HIDDEN_ACTIVATIONS[activation]
        self.net.out_act = out_table[out_activation]
        self.net.loss = -1 if loss is None else LOSSES[loss]
        self.net.loss_param = param
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
        self.check_params(params, np.asarray(params).dtype)
        u = self.layer_units
        coefs = [params[self.net.coef_off[i]:self.net.coef_off[i] + u[i] * u[i + 1]]
                 .reshape(u[i], u[i + 1]) for i in range(self.net.n_layers)]
        intercepts = [params[self.net.bias_off[i]:self.net.bias_off[i] + u[i + 1]]
                      for i in range(self.net.n_layers)]
        return coefs, intercepts

    def check_params(self, params, dtype, bint writeable=False):
        """Raise ValueError unless ``params`` is a packed parameter buffer of
        this network in ``dtype``."""
        _check_array(params, "the parameter buffer", (self.net.n_params,),
                     _working_dtype(dtype), writeable)

    def check_weights(self, coefs, intercepts, dtype):
        """Raise ValueError unless coefs / intercepts are this network's
        layers: C-contiguous arrays of ``dtype`` with the layers' shapes."""
        cdef Py_ssize_t i, L = self.net.n_layers
        dtype = _working_dtype(dtype)
        if len(coefs) != L or len(intercepts) != L:
            raise ValueError("the network has %d weight layers; got %d coefficient "
                             "matrices and %d intercept vectors"
                             % (L, len(coefs), len(intercepts)))
        for i in range(L):
            _check_array(coefs[i], "coefs_[%d]" % i,
                         (self.net.units[i], self.net.units[i + 1]), dtype)
            _check_array(intercepts[i], "intercepts_[%d]" % i, (self.net.units[i + 1],), dtype)

    def predict(self, X, coefs, intercepts, check_finite=False, chunk_rows=None):
        """Output-layer activations for every row of X.

        Parameters
        ----------
        X : C-contiguous float32 or float64 array, or CSR matrix, (n_samples, n_features)
        coefs, intercepts : lists of C-contiguous arrays of X's dtype
            One per weight layer, shaped (fan_in, fan_out) and (fan_out,).
        check_finite : bool, default=False
            Check a dense X for NaN and infinity on the way, and return None
            if it holds any.
        chunk_rows : int, default=None
            Rows per chunk (for tests and tuning); by default as many as keep
            a chunk's input and activations within about 2 MiB.

        Returns
        -------
        out : ndarray of shape (n_samples, n_outputs), or None
        """
        cdef _Rows rows = _Rows(self, X, None, None)
        self.check_weights(coefs, intercepts, rows.dtype)
        out = np.empty((rows.data.n_samples, self.net.units[self.net.n_layers]),
                       dtype=rows.dtype)
        if chunk_rows is None:
            row_bytes = rows.dtype.itemsize * sum(self.layer_units)
            chunk_rows = min(max(PREDICT_CHUNK_BYTES // row_bytes, PREDICT_CHUNK_MIN),
                             PREDICT_CHUNK_MAX)
        chunk_rows = max(int(chunk_rows), 1)
        if rows.dtype == np.float32:
            finite = _predict[float](self, rows, coefs, intercepts, out,
                                     check_finite, chunk_rows)
        else:
            finite = _predict[double](self, rows, coefs, intercepts, out,
                                      check_finite, chunk_rows)
        return out if finite else None


cdef class _Rows:
    """Rows handed to the engine, checked against a network: dense or CSR X
    of float32 / float64, targets Y (n_samples, n_outputs) and sample
    weights (n_samples,) of the same dtype. Holds the arrays while `data`
    points into them."""
    cdef Data data
    cdef readonly object dtype
    cdef readonly bint sparse
    cdef object _keep

    def __cinit__(self, Network network, X, Y, sample_weight):
        cdef const Py_ssize_t[::1] indptr
        cdef const Py_ssize_t[::1] indices
        cdef Py_ssize_t n_in = network.net.units[0]
        cdef Py_ssize_t n_out = network.net.units[network.net.n_layers]
        cdef bint ok
        cdef Py_ssize_t n, nnz
        self.sparse = hasattr(X, "indptr")
        if self.sparse:
            if X.format != "csr":
                raise ValueError("the engine reads sparse X as CSR, got %s" % X.format)
            values = X.data
            n, n_cols = X.shape
            if n_cols != n_in:
                raise ValueError("X has %d features; the network expects %d" % (n_cols, n_in))
            self.dtype = _working_dtype(values.dtype)
            _check_array(values, "X.data", (values.shape[0],), self.dtype)
            ip = np.ascontiguousarray(X.indptr, dtype=np.intp)
            ix = np.ascontiguousarray(X.indices, dtype=np.intp)
            _check_array(ip, "X.indptr", (n + 1,), np.dtype(np.intp))
            if ix.ndim != 1 or ix.shape[0] < values.shape[0]:
                raise ValueError("X.indices is shorter than X.data")
            indptr = ip
            indices = ix
            nnz = values.shape[0]
            with nogil:
                ok = csr_structure_ok(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                                      n, nnz, n_in)
            if not ok:
                raise ValueError("X is not a valid CSR matrix: its indptr or indices "
                                 "point outside its arrays")
            self.data.indptr = &indptr[0]
            self.data.indices = &indices[0] if indices.shape[0] else NULL
            self._keep = [values, ip, ix]
        else:
            if not isinstance(X, np.ndarray) or X.ndim != 2:
                raise ValueError("X must be a 2-d numpy array or a CSR matrix")
            n = X.shape[0]
            self.dtype = _working_dtype(X.dtype)
            _check_array(X, "X", (n, n_in), self.dtype)
            values = X
            self.data.indptr = NULL
            self.data.indices = NULL
            self._keep = [X]
        self.data.n_samples = n
        self.data.X = _data_of(values) if values.size else NULL
        self.data.Y = NULL
        self.data.sw = NULL
        if Y is not None:
            _check_array(Y, "Y", (n, n_out), self.dtype)
            self.data.Y = _data_of(Y)
            self._keep.append(Y)
        if sample_weight is not None:
            _check_array(sample_weight, "sample_weight", (n,), self.dtype)
            self.data.sw = _data_of(sample_weight)
            self._keep.append(sample_weight)


cdef class Trainer:
    """The training state of one fit: gradient, workspace, optimizer moments
    and settings, dropout rates; built once per fit, checked at every call.

    Parameters
    ----------
    network : Network
    dtype : float32 or float64
        The dtype of the parameters, data and state.
    max_rows : int
        The most rows one call handles at once: the batch size of
        :meth:`run_epoch`, the number of rows of :meth:`loss_grad`.
    gather : bool, default=False
        Room to gather the rows of shuffled dense minibatches (needed when
        :meth:`run_epoch` gets an ``order`` and dense X).
    dropout : array of shape (n_layers + 1,), default=None
        Dropout rate of every layer, in [0, 1) (only hidden layers' count).
    optimizer : dict, default=None
        For :meth:`run_epoch`: ``kind`` ('sgd' or 'adam'),
        ``learning_rate_init``, ``momentum``, ``nesterovs_momentum``,
        ``beta_1``, ``beta_2``, ``epsilon``, ``t`` (adam steps taken) and the
        moments ``state1`` (sgd velocity / adam first moment) and ``state2``
        (adam second moment; None for sgd): writeable arrays shaped like the
        parameters, updated in place. The settings are read here, once, as
        scikit-learn's optimizers read theirs when they are made.
    float32_weights : bool, default=False
        Only with dtype float64: compute as numpy does for float32 X and
        weights beside float64 targets (scikit-learn's regressor with such
        data). X and the parameters are float64 arrays holding float32
        values; the forward pass runs in float32 (the float32 engine's, over
        a float32 copy of the weights), and the output delta, the loss, the
        backward pass, the gradient and the optimizer moments in float64;
        every optimizer step rounds the weights to float32, as adding a
        float64 step to a float32 array does.

    Examples
    --------
    >>> import numpy as np
    >>> from cymlp._engine import Network, Trainer
    >>> net = Network([2, 3, 1], "tanh", "identity", "squared_error")
    >>> trainer = Trainer(net, np.float64, max_rows=4)
    >>> params = np.full(net.n_params, 0.1)
    >>> X, Y = np.ones((4, 2)), np.zeros((4, 1))
    >>> loss, grad = trainer.loss_grad(X, Y, None, params, alpha=0.0)
    >>> grad.shape
    (13,)
    """
    cdef readonly Network network
    cdef readonly object dtype
    cdef readonly Py_ssize_t max_rows
    cdef readonly bint gather
    cdef readonly bint float32_weights
    cdef Optimizer opt
    cdef bint has_optimizer
    cdef readonly object grad   # the gradient buffer that loss_grad fills
    cdef object _work, _rates, _state1, _state2
    cdef object _work32, _params32  # float32_weights: the forward pass's workspace and weights

    def __cinit__(self, Network network, dtype, Py_ssize_t max_rows, *, bint gather=False,
                  dropout=None, dict optimizer=None, bint float32_weights=False):
        cdef Py_ssize_t L = network.net.n_layers, n_params = network.net.n_params
        if network.net.loss < 0:
            raise ValueError("this Network was made for the forward pass only (loss=None)")
        self.network = network
        self.dtype = _working_dtype(dtype)
        if float32_weights and self.dtype != np.float64:
            raise ValueError("float32_weights needs dtype float64, got %s" % self.dtype)
        self.float32_weights = float32_weights
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1, got %d" % max_rows)
        # the workspace's size in Python integers: no wrap-around in C
        if max_rows * (network.net.width * 5 + network.net.units[0]) >= 2**62:
            raise MemoryError("cymlp: a workspace of %d rows is too large" % max_rows)
        self.max_rows = max_rows
        self.gather = gather
        if dropout is not None:
            rates = np.array(dropout, dtype=np.float64)
            if rates.shape != (L + 1,) or not np.all((rates >= 0) & (rates < 1)):
                raise ValueError("dropout: one rate in [0, 1) per layer (%d)" % (L + 1))
            self._rates = rates
        self.grad = np.empty(n_params, dtype=self.dtype)
        self._work = np.empty(
            max(workspace_size(&network.net, max_rows, gather, dropout is not None), 1),
            dtype=self.dtype)
        if float32_weights:
            # the float32 rows are always gathered (narrowed) into it
            self._work32 = np.empty(
                max(workspace_size(&network.net, max_rows, True, dropout is not None), 1),
                dtype=np.float32)
            self._params32 = np.empty(n_params, dtype=np.float32)
        self.has_optimizer = optimizer is not None
        if optimizer is not None:
            self._set_optimizer(optimizer)

    cdef _set_optimizer(self, dict o):
        cdef Py_ssize_t n_params = self.network.net.n_params
        kind = o["kind"]
        if kind not in ("sgd", "adam"):
            raise ValueError("unknown optimizer %r" % (kind,))
        self.opt.kind = ADAM if kind == "adam" else SGD
        self.opt.lr = float(o["learning_rate_init"])
        self.opt.momentum = float(o["momentum"])
        self.opt.nesterov = bool(o["nesterovs_momentum"])
        self.opt.beta_1 = float(o["beta_1"])
        self.opt.beta_2 = float(o["beta_2"])
        self.opt.epsilon = float(o["epsilon"])
        self.opt.t = int(o["t"])
        self.opt.alpha = 0.0
        self.opt.params32 = NULL
        if self.float32_weights:
            self.opt.params32 = <float*> _data_of(self._params32)
        self.set_moments(o["state1"], o.get("state2"))

    def set_moments(self, state1, state2=None):
        """Train these moments from the next :meth:`run_epoch` on (checked as
        the constructor's ``state1`` and ``state2``), e.g. fresh copies, so
        that moments already shown to other threads are never written."""
        cdef Py_ssize_t n_params = self.network.net.n_params
        if not self.has_optimizer:
            raise ValueError("this Trainer was made without an optimizer")
        _check_array(state1, "state1", (n_params,), self.dtype, True)
        if self.opt.kind == ADAM:
            _check_array(state2, "state2", (n_params,), self.dtype, True)
        self._state1 = state1
        self.opt.state1 = _data_of(state1)
        self._state2 = state2 if self.opt.kind == ADAM else None
        self.opt.state2 = _data_of(state2) if self.opt.kind == ADAM else NULL

    @property
    def t(self):
        """Adam steps taken so far (the optimizer's ``t``)."""
        return self.opt.t

    def state_finite(self, params):
        """Whether ``params`` and the optimizer's moments hold only finite values.

        A non-finite gradient always reaches a moment (and with it, or
        later, the parameters): a check after an epoch sees every overflow
        of the epoch.

        Parameters
        ----------
        params : array (n_params,) of the trainer's dtype

        Returns
        -------
        finite : bool
        """
        self.network.check_params(params, self.dtype)
        if self.dtype == np.float32:
            return _state_finite[float](self, params)
        return _state_finite[double](self, params)

    def run_epoch(self, X, Y, sample_weight, order, params, double alpha,
                  double learning_rate, dropout_seed=None):
        """Train one epoch in place; return the sum over minibatches of loss * rows.

        Parameters
        ----------
        X : C-contiguous array or CSR matrix of the trainer's dtype, (n_samples, n_features)
        Y : C-contiguous array (n_samples, n_outputs)
        sample_weight : array (n_samples,) or None
        order : intp array (n_samples,) or None
            Visit the rows in this order (a shuffled epoch) or in storage order.
        params : array (n_params,)
            The packed parameters, updated in place.
        alpha : float
            The L2 penalty (read per call, as scikit-learn reads it per batch).
        learning_rate : float
            sgd's current rate (adam uses learning_rate_init).
        dropout_seed : int in [0, 2**64), or None
            Seeds this epoch's dropout masks; required with dropout.
        """
        cdef _Rows rows = _Rows(self.network, X, Y, sample_weight)
        cdef const Py_ssize_t[::1] order_v
        cdef const Py_ssize_t* order_p = NULL
        cdef Dropout drop
        cdef Dropout* drop_p = NULL
        cdef const double[::1] rates
        cdef bint ok = True
        cdef Py_ssize_t n = rows.data.n_samples
        if not self.has_optimizer:
            raise ValueError("this Trainer was made without an optimizer")
        self._check_call(rows, params, True)
        if n == 0:
            return 0.0
        if order is not None:
            _check_array(order, "order", (n,), np.dtype(np.intp))
            if not rows.sparse and not self.gather:
                raise ValueError("a shuffled dense epoch needs a Trainer made with gather=True")
            order_v = order
            order_p = &order_v[0]
            with nogil:
                ok = is_row_order(order_p, n)
            if not ok:
                raise ValueError("order holds an index outside [0, %d)" % n)
        if self._rates is not None:
            if dropout_seed is None:
                raise ValueError("a Trainer with dropout needs a dropout_seed per epoch")
            rates = self._rates
            drop.rate = &rates[0]
            drop.state = <uint64_t> int(dropout_seed)
            drop_p = &drop
        self.opt.alpha = alpha
        if self.opt.kind == SGD:
            self.opt.lr = learning_rate
        if self.dtype == np.float32:
            return _run_epoch[float](self, rows, order_p, params, drop_p)
        return _run_epoch[double](self, rows, order_p, params, drop_p)

    def loss_grad(self, X, Y, sample_weight, params, double alpha, bint with_grad=True):
        """Loss over all rows of X at once (n_samples <= max_rows), L2 term
        included, and its gradient (for lbfgs).

        Returns ``(loss, grad)``: ``grad`` is the trainer's own buffer,
        overwritten by the next call (copy it to keep it), or None without
        ``with_grad`` (a validation loss).
        """
        cdef _Rows rows = _Rows(self.network, X, Y, sample_weight)
        self._check_call(rows, params, False)
        if rows.data.n_samples > self.max_rows:
            raise ValueError("%d rows; this Trainer was made for at most %d"
                             % (rows.data.n_samples, self.max_rows))
        if rows.data.n_samples == 0:
            raise ValueError("the loss of zero rows is undefined")
        if self.dtype == np.float32:
            loss = _loss_grad[float](self, rows, params, alpha, with_grad)
        else:
            loss = _loss_grad[double](self, rows, params, alpha, with_grad)
        return loss, (self.grad if with_grad else None)

    cdef _check_call(self, _Rows rows, params, bint writeable):
        if rows.dtype != self.dtype:
            raise ValueError("X has dtype %s; this Trainer computes in %s"
                             % (rows.dtype, self.dtype))
        if rows.data.Y == NULL:
            raise ValueError("training needs targets Y")
        self.network.check_params(params, self.dtype, writeable)


def _format_bytes(size_t n):
    return "%d bytes" % n if n < 2**20 else "%.1f MiB" % (n / 2**20)


cdef _out_of_memory(const cymlp_failure* fail):
    """The MemoryError of an engine call that returned -1 (scikit-learn's
    exception for an allocation that fails)."""
    what = fail.what.decode("utf-8") if fail.what != NULL else "memory"
    return MemoryError("cymlp: could not allocate %s for %s"
                       % (_format_bytes(fail.bytes), what))


cdef bint _state_finite(Trainer self, const floating[::1] params):
    cdef Py_ssize_t n = params.shape[0]
    cdef bint ok
    with nogil:
        ok = all_finite(&params[0], n)
        if ok and self.has_optimizer:
            ok = all_finite(<const floating*> self.opt.state1, n)
        if ok and self.has_optimizer and self.opt.state2 != NULL:
            ok = all_finite(<const floating*> self.opt.state2, n)
    return ok


cdef float* _narrowed_weights(Trainer self, const double[::1] params):
    """The float32 copy of params that a float32_weights trainer's forward
    pass reads, refreshed; NULL for other trainers."""
    cdef float[::1] p32
    cdef Py_ssize_t i
    if not self.float32_weights:
        return NULL
    p32 = self._params32
    with nogil:
        for i in range(params.shape[0]):
            p32[i] = <float> params[i]
    return &p32[0]


cdef _run_epoch(Trainer self, _Rows rows, const Py_ssize_t* order, floating[::1] params,
                Dropout* drop):
    cdef double loss_sum = 0.0
    cdef int status = 0
    cdef cymlp_failure fail = cymlp_failure(NULL, 0)
    cdef floating[::1] grad = self.grad
    cdef floating[::1] work = self._work
    cdef float[::1] work32
    cdef float* w32 = NULL
    cdef int nt
    if floating is double:
        if _narrowed_weights(self, params) != NULL:
            work32 = self._work32
            w32 = &work32[0]
    with _EngineCall() as call:
        nt = call.threads
        with nogil:
            status = train_epoch_impl(&self.network.net, &self.opt, &rows.data, order,
                                      self.max_rows, &params[0], &grad[0], &work[0], drop,
                                      nt, &loss_sum, &fail, w32)
    if status != 0:
        raise _out_of_memory(&fail)
    return loss_sum


cdef _loss_grad(Trainer self, _Rows rows, floating[::1] params, double alpha, bint with_grad):
    cdef double loss = 0.0
    cdef int status = 0
    cdef floating[::1] grad = self.grad
    cdef floating[::1] work = self._work
    cdef floating* g = &grad[0] if with_grad else NULL
    cdef float[::1] work32
    cdef float* w32 = NULL
    cdef float* p32 = NULL
    cdef int nt
    cdef cymlp_failure fail = cymlp_failure(NULL, 0)
    if floating is double:
        p32 = _narrowed_weights(self, params)
        if p32 != NULL:
            work32 = self._work32
            w32 = &work32[0]
    with _EngineCall() as call:
        nt = call.threads
        with nogil:
            status = loss_grad_impl(&self.network.net, alpha, &rows.data, &params[0], g,
                                    &work[0], nt, &loss, &fail, p32, w32)
    if status != 0:
        raise _out_of_memory(&fail)
    return loss


cdef _predict(Network self, _Rows rows, list coefs, list intercepts,
              floating[:, ::1] out, bint check_finite, Py_ssize_t chunk_rows):
    """Fill out; False if check_finite found a non-finite value in X.
    The weights were checked by Network.check_weights."""
    cdef Py_ssize_t L = self.net.n_layers, i
    cdef floating** W
    cdef int status = 0, nt
    cdef cymlp_failure fail = cymlp_failure(NULL, 0)
    if out.shape[0] == 0:
        return True
    W = <floating**> malloc(2 * L * sizeof(floating*))
    if W == NULL:
        fail.what = "the weights' table"
        fail.bytes = 2 * L * sizeof(floating*)
        raise _out_of_memory(&fail)
    try:
        # The lists keep the arrays alive while the pointers are in use; the
        # kernels only read the weights, which may be read-only (a memmap).
        for i in range(L):
            W[i] = <floating*> _data_of(coefs[i])
            W[L + i] = <floating*> _data_of(intercepts[i])
        with _EngineCall() as call:
            nt = call.threads
            with nogil:
                status = predict_impl(&self.net, W, W + L, &rows.data, &out[0, 0],
                                      check_finite, chunk_rows, nt, &fail)
        if status < 0:
            raise _out_of_memory(&fail)
        return status == 0
    finally:
        free(W)


def _ufunc_loops_found():
    """{(activation, dtype name): bool}: whether numpy's / scipy's own inner
    loop was found for each activation computed through a ufunc.

    The activations call these loops so that they round exactly like
    scikit-learn's; a missing one would fall back to libm and break parity
    without a word, so the tests assert that every one is found.
    """
    found = {}
    names = {code: name for name, code in ACTIVATIONS.items()}
    for act in _ACTIVATION_UFUNCS:
        for typecode, dtype_name in ((cnp.NPY_FLOAT, "float32"), (cnp.NPY_DOUBLE, "float64")):
            found[names[act], dtype_name] = resolve_loop(act, typecode).fn != NULL
    return found


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
                 const floating[::1] sample_weight, floating[:, ::1] delta,
                 double loss_param=0.0):
    """Return sum_i w_i * loss_i and fill delta: (out - y) * w for the
    canonical losses, d loss_i / d out * w / n_outputs for the robust ones
    (loss_param: Huber's delta or the quantile)."""
    _check_same_shape(np.asarray(out), np.asarray(y), np.asarray(delta))
    if sample_weight is not None and sample_weight.shape[0] != out.shape[0]:
        raise ValueError("sample_weight must have one entry per row")
    cdef int code = LOSSES[loss]
    cdef const floating* sw = &sample_weight[0] if sample_weight is not None else NULL
    cdef double total
    if out.shape[0] == 0 or out.shape[1] == 0:
        return 0.0
    with nogil:
        total = loss_and_delta(&out[0, 0], &y[0, 0], NULL, sw, &delta[0, 0], NULL,
                               out.shape[0], out.shape[1], code, loss_param)
    return total


def _kernel_column_sums(const floating[:, ::1] a):
    """The bias gradient's pass: a.sum(axis=0), added row after row."""
    out = np.empty(a.shape[1], dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] o = out
    if a.shape[0] > 0 and a.shape[1] > 0:
        with nogil:
            column_sums(&a[0, 0], &o[0], a.shape[0], a.shape[1], a.shape[1])
    return out


# Adam's quotient by the divider or without it (exact_quotient.h): the same
# bits, so the faster one on this machine is chosen once, on first use
# (adam_path.h), unless the environment variable CYMLP_ADAM_DIVIDER forces it
# (1: divider, 0: FMA, hybrid: the FMA square root and the divider's
# division). "fma" and "hybrid" are the AVX-512 code; "-avx2" names the same
# arithmetic in AVX2 code, the one chosen on CPUs without AVX-512 and forced
# by name in the tests.
_ADAM_PATHS = {"auto": CYMLP_PATH_AUTO, "divider": CYMLP_PATH_DIVIDER, "fma": CYMLP_PATH_FMA,
               "hybrid": CYMLP_PATH_HYBRID, "fma-avx2": CYMLP_PATH_FMA_AVX2,
               "hybrid-avx2": CYMLP_PATH_HYBRID_AVX2}
_ADAM_PATH_NAMES = {code: name for name, code in _ADAM_PATHS.items()}


def _adam_path_code(str path):
    """The C code of an Adam quotient path name.

    Parameters
    ----------
    path : {"auto", "divider", "fma", "hybrid", "fma-avx2", "hybrid-avx2"}
        "auto" is the path chosen when the module was loaded; "fma" uses
        no square root or division instruction, "hybrid" the division alone;
        both in AVX-512 code, or in AVX2 code with the "-avx2" suffix.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For an unknown name, or a path this CPU or build cannot run.
    """
    if path not in _ADAM_PATHS:
        raise ValueError("unknown Adam path %r" % path)
    if path in ("fma", "hybrid") and not cymlp_fma_quotient_supported():
        raise ValueError("the %s path needs AVX-512, which this CPU or build lacks" % path)
    if path.endswith("-avx2") and not cymlp_avx2_quotient_supported():
        raise ValueError("the %s path needs AVX2 and FMA, which this CPU or build lacks" % path)
    return _ADAM_PATHS[path]


def _adam_step_path():
    """The path Adam's step takes in each dtype, as chosen on first use (now, if need be).

    Returns
    -------
    dict
        ``{"float32": path, "float64": path}``, each path "divider" (the
        square root and division instructions), "fma" (the same bits from
        reciprocal estimates and fused multiply-adds) or "hybrid" (the square
        root so, the division by the divider), or "fma-avx2" / "hybrid-avx2"
        (the same in AVX2 code, on CPUs without AVX-512).
    """
    return {"float32": _ADAM_PATH_NAMES[cymlp_adam_path_f()],
            "float64": _ADAM_PATH_NAMES[cymlp_adam_path_d()]}


def _kernel_adam_quotient(const floating[::1] a, const floating[::1] v, double eps,
                          str path="auto", bint sqrt_only=False):
    """Adam's quotient ``a / (sqrt(v) + eps)`` elementwise, by the path named.

    Parameters
    ----------
    a, v : ndarray of float32 or float64, shape (n,)
        Contiguous, of one dtype; the arithmetic is in that dtype.
    eps : float
        Rounded to the dtype first.
    path : str, default="auto"
        A name of ``_adam_path_code``.
    sqrt_only : bool, default=False
        Return ``sqrt(v)`` instead (``a`` then only sets the length).

    Returns
    -------
    ndarray of shape (n,)
        Every path gives the bits of IEEE square root and division.
    """
    cdef int code = _adam_path_code(path)
    _check_same_shape(np.asarray(a), np.asarray(v))
    out = np.empty_like(np.asarray(v))
    cdef floating[::1] o = out
    if a.shape[0] > 0:
        with nogil:
            if floating is float:
                cymlp_adam_quotients_f(&a[0], &v[0], <float> eps, &o[0], a.shape[0],
                                       sqrt_only, code)
            else:
                cymlp_adam_quotients_d(&a[0], &v[0], eps, &o[0], a.shape[0],
                                       sqrt_only, code)
    return out


def _kernel_adam_pick_avx2(const floating[::1] a, const floating[::1] v,
                           const floating[::1] candidates, bint sqrt_only=False):
    """The AVX2 paths' rounding decision alone: the correct rounding from a candidate.

    Parameters
    ----------
    a, v, candidates : ndarray of float32 or float64, shape (n,)
        Contiguous, of one dtype; n a multiple of 64. Each candidate is the
        correctly rounded ``sqrt(v)`` (``sqrt_only``) or ``a / v`` or one of
        its two neighbours, with a and v inside the AVX2 path's domain.
    sqrt_only : bool, default=False

    Returns
    -------
    ndarray of shape (n,)
        The correctly rounded results, as the decision picks them.

    Raises
    ------
    ValueError
        On a CPU without AVX2 and FMA, or for a length not a multiple of 64.
    """
    if not cymlp_avx2_quotient_supported():
        raise ValueError("the AVX2 decision needs AVX2 and FMA, which this CPU or build lacks")
    _check_same_shape(np.asarray(a), np.asarray(v), np.asarray(candidates))
    if a.shape[0] % 64:
        raise ValueError("the length must be a multiple of 64")
    out = np.empty_like(np.asarray(v))
    cdef floating[::1] o = out
    if a.shape[0] > 0:
        with nogil:
            if floating is float:
                cymlp_avx2_picks_ps(&a[0], &v[0], &candidates[0], &o[0], a.shape[0], sqrt_only)
            else:
                cymlp_avx2_picks_pd(&a[0], &v[0], &candidates[0], &o[0], a.shape[0], sqrt_only)
    return out


def _kernel_optimizer_step(str kind, floating[::1] params, const floating[::1] grad_raw,
                           floating[::1] state1, floating[::1] state2, double alpha,
                           double sw_sum, double lr, double momentum=0.9,
                           bint nesterov=True, double beta_1=0.9, double beta_2=0.999,
                           double epsilon=1e-8, bint return_sum_squares=False,
                           str path="auto"):
    """One optimizer step over a whole buffer (state2 is adam's second moment).

    For adam, ``lr`` is the bias-corrected rate of this step, and ``path``
    the way its quotient is computed (see ``_kernel_adam_quotient``). With
    ``return_sum_squares``, returns the sum of the squares of the new
    parameters that the step computes on the way (else None).
    """
    cdef double sq = 0.0
    cdef double* sq_out = &sq if return_sum_squares else NULL
    cdef int code = _adam_path_code(path)
    _check_same_shape(np.asarray(params), np.asarray(grad_raw), np.asarray(state1),
                      None if state2 is None else np.asarray(state2))
    if kind == "adam" and state2 is None:
        raise ValueError("adam needs state2")
    if kind not in ("adam", "sgd"):
        raise ValueError("unknown optimizer %r" % kind)
    if params.shape[0] > 0 and kind == "adam":
        with nogil:
            adam_step(&params[0], &grad_raw[0], &state1[0], &state2[0], params.shape[0],
                      alpha, sw_sum, lr, beta_1, beta_2, epsilon, sq_out, code)
    elif params.shape[0] > 0:
        with nogil:
            sgd_step(&params[0], &grad_raw[0], &state1[0], params.shape[0],
                     alpha, sw_sum, lr, momentum, nesterov, sq_out)
    return sq if return_sum_squares else None


def _kernel_all_finite(const floating[::1] x):
    """True if no value of x is NaN or infinite (predict's input check)."""
    cdef bint finite = True
    if x.shape[0] > 0:
        with nogil:
            finite = all_finite(&x[0], x.shape[0])
    return finite


def _warn_if_ufunc_loops_missing():
    missing = sorted("%s (%s)" % key for key, ok in _ufunc_loops_found().items() if not ok)
    if missing:
        warnings.warn(
            "cymlp: numpy's / scipy's inner loops were not found for %s; those "
            "activations fall back to libm and may differ from scikit-learn in "
            "the last bits." % ", ".join(missing), RuntimeWarning)


_warn_if_ufunc_loops_missing()
