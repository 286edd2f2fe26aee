"""The floors: one epoch's matrix products alone, its optimizer steps alone,
and its FLOP limit.

The first two time only the work that any implementation reproducing
scikit-learn's weights must do, so "sklearn / (GEMM floor + steps)" bounds the
speedup such an implementation can reach on this BLAS. The FLOP limit
(``epoch_flops`` / ``GemmRate``) is the epoch's multiply-adds at the rate of
one large product: what the products would cost if every one of them ran as
fast as BLAS runs on large square matrices. ``EngineProducts`` times the
products as cymlp's engine must cut them to keep its bits and
``EngineGather`` the copy of a shuffled epoch's rows: with the steps, the
least multiple of the FLOP limit the engine's chunks allow.
"""

import functools
import threading
import time
import tracemalloc

import numpy as np
from scipy.linalg import blas as scipy_blas


def layer_shapes(units):
    """The shapes of a network's weights, then its biases (scikit-learn's order).

    Parameters
    ----------
    units : sequence of int
        The layer widths, input to output: ``[n_features, *hidden, n_out]``.

    Returns
    -------
    list of tuple
        ``(units[i], units[i + 1])`` for each weight matrix, then
        ``(units[i + 1],)`` for each bias vector.
    """
    pairs = list(zip(units[:-1], units[1:]))
    return [(a, b) for a, b in pairs] + [(b,) for _, b in pairs]


def count_params(units):
    """How many parameters (weights and biases) a network of layer widths ``units`` has.

    Parameters
    ----------
    units : sequence of int
        The layer widths, input to output.

    Returns
    -------
    int
    """
    return sum(int(np.prod(shape)) for shape in layer_shapes(units))


def epoch_flops(units, n_rows):
    """The floating-point operations of one training epoch's dense products.

    Per row of X, for a network of layer widths u[0..L] (L weight layers)::

        forward          sum_{i=0}^{L-1} u[i] u[i+1]   multiply-adds  (A[i+1] = A[i] W[i])
        weight gradients sum_{i=0}^{L-1} u[i] u[i+1]                  (G[i] = A[i]^T D[i])
        input deltas     sum_{i=1}^{L-1} u[i] u[i+1]                  (D[i-1] = D[i] W[i]^T;
                                                                       none for the input layer)
        flops = 2 * n_rows * (2 * sum_{i=0}^{L-1} u[i] u[i+1] + sum_{i=1}^{L-1} u[i] u[i+1])

    at 2 flops per multiply-add. The batch size does not enter: the batches
    of an epoch hold n_rows rows in all. (The bias additions, activations,
    loss and optimizer step are not counted: they are O(parameters) or
    O(rows x units), not products.)

    Parameters
    ----------
    units : sequence of int
        The layer widths, input to output: ``[n_features, *hidden, n_out]``.
    n_rows : int
        The rows of X one epoch visits.

    Returns
    -------
    float
    """
    products = [a * b for a, b in zip(units[:-1], units[1:])]
    return 2.0 * n_rows * (2 * sum(products) + sum(products[1:]))


class GemmRate:
    """The rate of one large square product C = A @ B (size x size), in flop/s.

    ``via="engine"``: through cymlp's private OpenBLAS, the BLAS the engine
    computes in, made as the engine makes products on ``threads`` threads (C
    cut along its columns, one single-threaded BLAS call per thread: the test
    hook ``cymlp._engine._testing._gemm_seconds``, timed in C).
    ``via="scipy"``: through scipy's f2py ``[sd]gemm`` (numpy and scipy's
    OpenBLAS, at its own thread count as set), row-major as ``GemmFloor``
    calls it; one call's Python overhead (about a microsecond) is not
    subtracted: it is 1e-5 of the product.
    """

    def __init__(self, dtype, via="engine", threads=1, size=2000, seed=0):
        rng = np.random.default_rng(seed)
        self.a, self.b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
        self.c = np.empty((size, size), dtype)
        self.flops = 2.0 * size ** 3
        self.via, self.threads = via, threads
        self._kind = (np.dtype(dtype).name, via, threads, size)  # the key of _best
        self.own_best = 0.0
        if via == "engine":
            from cymlp._engine import _testing

            self._seconds = lambda: _testing._gemm_seconds(self.a, self.b, self.c, threads)
        else:
            gemm = scipy_blas.sgemm if np.dtype(dtype) == np.float32 else scipy_blas.dgemm

            def seconds():
                start = time.perf_counter()
                gemm(1.0, self.b.T, self.a.T, 0.0, self.c.T, 0, 0, 1)  # C^T = B^T A^T
                return time.perf_counter() - start
            self._seconds = seconds
        self._seconds()  # warm-up (first touch, BLAS buffers)

    # The best rate measured so far in this process, per kind of product
    # (dtype, BLAS, threads, size): shared by every row of a run.
    _best = {}

    def rate(self, tries=3):
        """flop/s: the best of ``tries`` products measured now, or the best
        such product of the same kind measured earlier in the run, if faster.

        A limit is the best the hardware does. On a busy machine one product
        in a few runs undisturbed (it takes 0.1-0.5 s), and the best of them
        keeps the limit from reading low when another program takes a core
        for a moment; but a phase of the host that slows every product of a
        row (seen: 132 GFLOP/s through a whole row, 181 in the row before it)
        would make that row's limit read long and its cymlp / limit too
        good, even below 1. The hardware does not get faster, so every row
        is held to the fastest rate of the run. ``own_best`` keeps this
        instance's own best, for the notes.
        """
        now = self.flops / min(self._seconds() for _ in range(tries))
        self.own_best = max(self.own_best, now)
        best = GemmRate._best[self._kind] = max(GemmRate._best.get(self._kind, 0.0), now)
        return best


def share_out(n_batches, threads):
    """Where each thread's share of ``n_batches`` minibatches starts (and,
    last, where the shares end): shares as even as they go, differing by one
    at most.

    Returns
    -------
    list of int
        ``threads + 1`` boundaries, from 0 to ``n_batches``.
    """
    return [n_batches * t // threads for t in range(threads + 1)]


def slowest_thread(work):
    """Run every callable of ``work`` on a thread of its own, side by side,
    each returning the seconds it timed itself; the largest of them.

    Parameters
    ----------
    work : list of callable
        Each takes no argument and returns seconds (it should release the
        GIL while it works, as the engine's timing hooks do).

    Returns
    -------
    float
    """
    out = [0.0] * len(work)

    def run(t):
        out[t] = work[t]()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(len(work))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return max(out)


class EngineProducts:
    """An epoch's matrix products as cymlp's engine must cut them, on its threads.

    The engine cuts each minibatch's forward and delta products into fixed
    chunks of rows (the row pass) and its weight gradients into chunks of
    their fan-in (the gradient pass), by the shapes alone
    (``src/cymlp/_engine/chunks.pxd``): the chunks are part of the results
    (OpenBLAS's sgemm does not round a row the same wherever it stands in a
    call), so no other cut keeps the bits on every thread count. Each chunk
    repacks the operand it shares with the other chunks (the forward
    product's weights), which one whole product would pack once.

    This times those chunked products alone, through the engine's BLAS
    (``cymlp._engine._testing._products``): ``threads`` threads side by side,
    each with its share of the epoch's minibatches, every product timed in C;
    an epoch is the slowest thread's sum. Everything else an epoch does
    (gather, elementwise passes, loss, optimizer step, barriers) is left out,
    so with the steps added (``chunk_bound``) it bounds from below what the
    engine's epoch can take: how close to the FLOP limit its chunks let it
    come.
    """

    def __init__(self, units, n_rows, batch_size, dtype, threads):
        from cymlp._engine import _testing

        self.products = _testing._products
        self.units = [int(u) for u in units]
        self.dtype = np.dtype(dtype).name
        self.threads = max(int(threads), 1)
        full, rest = divmod(int(n_rows), int(batch_size))
        # each thread's minibatches: (rows, how many), the full ones shared out evenly
        share = share_out(full, self.threads)
        self.work = [[(batch_size, share[t + 1] - share[t])] for t in range(self.threads)]
        if rest:
            self.work[-1].append((rest, 1))

    def _seconds(self, batches):
        return sum(sum(self.products(self.units, rows, n, self.dtype, True))
                   for rows, n in batches if n)

    def epoch(self):
        """Seconds of one epoch's chunked products: the slowest thread's."""
        return slowest_thread([functools.partial(self._seconds, b) for b in self.work])


class EngineGather:
    """An epoch's gather alone: the shuffled rows of X copied, minibatch by
    minibatch, into a buffer where the products read them, on the engine's
    threads.

    A shuffled epoch on dense X must copy every row of X once (no BLAS
    product reads rows scattered through X), and with X larger than the
    caches that copy is bound by the memory. This times the row pass's own
    copy (``cymlp._engine._testing._gather_seconds``), ``threads`` threads
    side by side, each with its share of the minibatches (the engine shares
    each minibatch's rows out instead: the same bytes per thread); an epoch is
    the slowest thread's. Added to the chunked products and the steps
    (``chunk_bound``), it completes the least an epoch of cymlp can take.
    """

    def __init__(self, X, batch_size, threads, seed=0):
        from cymlp._engine import _testing

        self.gather = _testing._gather_seconds
        self.X = np.ascontiguousarray(X)
        threads = max(int(threads), 1)
        n, batch_size = len(X), int(batch_size)
        order = np.random.default_rng(seed).permutation(n).astype(np.intp)
        # each thread its share of the full minibatches, the last one the rest too
        ends = [s * batch_size for s in share_out(n // batch_size, threads)[:-1]] + [n]
        self.work = [(order[ends[t]:ends[t + 1]],
                      np.empty((batch_size, X.shape[1]), dtype=X.dtype))
                     for t in range(threads)]

    def epoch(self):
        """Seconds of one epoch's gather: the slowest thread's."""
        return slowest_thread([functools.partial(self.gather, self.X, order, buf)
                               for order, buf in self.work])


def engine_threads():
    """How many threads cymlp's engine would use for a call made now (the
    budget of ``cymlp._engine._EngineCall``: OpenMP's and the user's BLAS
    limits), or None without cymlp."""
    try:
        from cymlp._engine import _EngineCall
    except ImportError:
        return None
    with _EngineCall() as call:
        return call.threads


class _NetTiming:
    """Times one epoch's worth of work with the Python call overhead taken out.

    A subclass sets ``work`` (the epoch's calls or buffers), ``tiny`` (the same
    number of calls on size-1 operands) and ``_run(work) -> seconds``. The
    overhead is the best of 5 runs of ``tiny`` at first use and of one more
    after every epoch: a first measurement disturbed by a burst of load
    (or a first call's one-off costs) would otherwise be subtracted from
    every epoch, and once made an Adam step look free (0 ns per parameter).
    """

    _overhead = None

    def overhead(self):
        """Seconds of call overhead per epoch: the best measurement so far."""
        if self._overhead is None:
            self._overhead = min(self._run(self.tiny) for _ in range(5))
        return self._overhead

    def epoch(self):
        """Net seconds of one epoch's work (call overhead subtracted)."""
        self.overhead()
        seconds = self._run(self.work)
        self._overhead = min(self._overhead, self._run(self.tiny))
        return max(seconds - self._overhead, 1e-9)


class GemmFloor(_NetTiming):
    """The matrix products of one training epoch, and nothing else.

    For a network with layer widths u[0..L] and a minibatch of b rows, per batch:
      forward    A[i+1] = A[i] @ W[i]            i = 0..L-1   (A[0] = the batch of X)
      gradients  G[i]   = A[i]^T @ D[i]          i = L-1..0
      deltas     D[i-1] = D[i] @ W[i]^T          i = L-1..1   (none for the input layer)
    i.e. 3L - 1 GEMMs per batch, on contiguous batches X[s:s+b].

    Every operand is C-contiguous, as in cymlp, and is handed to scipy's f2py
    wrappers (scipy.linalg.blas.[sd]gemm) as its transpose -- a Fortran-ordered
    view of the same memory -- so the wrappers copy nothing: row-major
    C = A @ B is computed as column-major C^T = B^T A^T. The output is written
    in place (overwrite_c). __init__ checks with tracemalloc that no call copies.

    Each wrapper call also costs a few microseconds of Python and argument
    parsing that cymlp (calling BLAS from Cython) does not pay. That cost is
    measured in the same run (the same number of calls on 1x1 operands) and
    subtracted: ``epoch()`` returns the net time of the products.
    """

    def __init__(self, X, layer_units, batch_size, seed=0, forward_only=False):
        dt = X.dtype
        self.gemm = scipy_blas.sgemm if dt == np.float32 else scipy_blas.dgemm
        rng = np.random.default_rng(seed)
        u = list(layer_units)
        L = len(u) - 1
        n = X.shape[0]
        W = [(rng.standard_normal((u[i], u[i + 1])) / np.sqrt(u[i])).astype(dt)
             for i in range(L)]
        G = [np.empty_like(w) for w in W]
        buffers = {}  # batch rows -> (activations A[1..L], deltas D[0..L-1])

        def bufs(b):
            if b not in buffers:
                A = [np.empty((b, u[i]), dt) for i in range(1, L + 1)]
                D = [] if forward_only else [
                    (rng.standard_normal((b, u[i + 1])) * 0.1).astype(dt) for i in range(L)]
                buffers[b] = (A, D)
            return buffers[b]

        calls = []  # (a, b, c, trans_a, trans_b): c^T = op(a) op(b), Fortran views
        for s in range(0, n, batch_size):
            Xb = X[s : s + batch_size]
            A_h, D = bufs(Xb.shape[0])
            A = [Xb] + A_h
            for i in range(L):
                calls.append((W[i].T, A[i].T, A[i + 1].T, 0, 0))
            if forward_only:  # a prediction's products
                continue
            for i in range(L - 1, -1, -1):
                calls.append((D[i].T, A[i].T, G[i].T, 0, 1))
                if i > 0:
                    calls.append((W[i].T, D[i].T, D[i - 1].T, 1, 0))
        self.calls = calls
        one = np.ones((1, 1), dt, order="F")
        self.tiny = [(one, one, np.ones((1, 1), dt, order="F"), 0, 0)] * len(calls)
        self.flops = 2.0 * sum(
            a.shape[1 if ta else 0] * a.shape[0 if ta else 1] * c.shape[1]
            for a, _, c, ta, _ in calls
        )
        self.work = calls
        self._check_no_copy()

    def _run(self, calls):
        gemm = self.gemm
        start = time.perf_counter()
        for a, b, c, ta, tb in calls:
            gemm(1.0, a, b, 0.0, c, ta, tb, 1)
        return time.perf_counter() - start

    def _check_no_copy(self):
        """Raise if a wrapper call copies an operand (the floor would be wrong).

        Each product of the first batches runs under tracemalloc; a copy would
        allocate at least the size of the smallest operand. (Below 256 bytes
        the wrapper's own small Python objects are indistinguishable from a
        copy, and such a copy would cost nothing measurable.)"""
        calls = self.calls[: 8]
        self._run(calls)  # warm-up
        for call in calls:
            tracemalloc.start()
            try:
                self._run([call])
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            if peak >= max(256, min(op.nbytes for op in call[:3])):
                raise RuntimeError("GEMM floor: a BLAS wrapper copied an operand "
                                   f"({peak} bytes traced); shapes "
                                   f"{[op.shape for op in call[:3]]}")
        # and the products are right: C = op(A) op(B), written in place
        self._run(self.calls[:1])
        a, b, c, _, _ = self.calls[0]  # the first forward product, as computed
        if not np.allclose(c, a @ b, rtol=1e-3, atol=1e-3):
            raise RuntimeError("GEMM floor: in-place product check failed")


class StepFloor(_NetTiming):
    """The optimizer updates of one training epoch, and nothing else.

    One step over all parameters per minibatch, with scikit-learn's arithmetic
    (Adam: a square root and a division per parameter; SGD: a few multiplies),
    through cymlp's compiled step (the same C loop the engine runs, vectorised
    for the machine). Any implementation that reproduces sklearn's weights
    must do this work on top of the GEMMs, so "GEMM floor + step" bounds what
    an exact implementation can reach: sklearn / (floor + step). Wrapper
    overhead is measured on size-1 buffers and subtracted, as in GemmFloor.
    Adam's quotient takes ``path`` ("auto": the one chosen when cymlp was
    loaded; "divider", "fma", "hybrid": see ``cymlp._engine._testing._adam_step_path``).
    """

    def __init__(self, n_params, dtype, solver, n_batches, seed=0, path="auto",
                 max_grad_norm=None):
        from cymlp import _engine  # test hook of the compiled step
        from cymlp._engine import _testing

        self.step = _testing._kernel_optimizer_step
        self.clip = _testing._kernel_clip_factor
        self.path = path
        self.max_grad_norm = max_grad_norm
        self.solver = solver
        self.n_batches = n_batches
        rng = np.random.default_rng(seed)
        self.params0 = (rng.standard_normal(n_params) * 0.1).astype(dtype)
        self.grad = (rng.standard_normal(n_params) * 0.1).astype(dtype)
        self.work = self._buffers(n_params, dtype)
        self.tiny = self._buffers(1, dtype)

    def _buffers(self, n, dtype):
        params = self.params0[:n].copy()
        state2 = np.zeros(n, dtype) if self.solver in ("adam", "adamw") else None
        return params, self.grad[:n], np.zeros(n, dtype), state2

    def _run(self, bufs):
        params, grad, state1, state2 = bufs
        params[...] = self.params0[: len(params)]  # a fresh start: no drift to subnormals
        state1[...] = 0
        if state2 is not None:
            state2[...] = 0
        step, kind, clip, max_norm = self.step, self.solver, self.clip, self.max_grad_norm
        # the engine's Adam steps also sum the new weights' squares (the next
        # minibatch's L2 penalty, alpha > 0); its SGD step does not
        fold = kind in ("adam", "adamw")
        n = len(params)
        start = time.perf_counter()
        if max_norm is None:
            for _ in range(self.n_batches):
                step(kind, params, grad, state1, state2, 1e-4, 32.0, 1e-3,
                     return_sum_squares=fold, path=self.path, weight_decay=0.01,
                     learning_rate_init=1e-3)
        else:
            # clipping: the gradient's global norm, a pass of its own, then
            # the step with the factor (all parameters taken as coefficients)
            for _ in range(self.n_batches):
                scale = clip(params, grad, n, 1e-4, 32.0, max_norm)[1]
                step(kind, params, grad, state1, state2, 1e-4, 32.0, 1e-3,
                     return_sum_squares=fold, path=self.path, weight_decay=0.01,
                     learning_rate_init=1e-3, grad_scale=scale)
        return time.perf_counter() - start

