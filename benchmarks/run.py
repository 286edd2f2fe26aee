"""The benchmark suite: every workload of the performance issue, side by side.

For each workload this script times, in this one process and interleaved,
``cymlp``, scikit-learn's MLP with the same parameters and -- when ``torch``
is installed -- a plain PyTorch CPU training loop of the same network (same
layers, batch size and optimizer, an epoch of shuffled minibatches). It prints
one table of times and ratios, with each ratio's target and whether it is met.

    python benchmarks/run.py --blas-threads 1   # full run: 3-6 minutes on 2 busy cores
    python benchmarks/run.py                    # BLAS threads as set (see README: noisy)
    python benchmarks/run.py --quick            # smoke run: under a minute
    python benchmarks/run.py --only mnist-f32,grid
    python benchmarks/run.py --list             # workload names and targets

Method (see benchmarks/README.md for the long form):

* Every timed run of every library (and of the GEMM floor) is interleaved with
  the others, and the order rotates on every repeat, so background load falls
  on all alike. Each time is the minimum over the repeats; the "(med)" column is
  the median of the per-repeat ratios, a cross-check against noise.
* Training rows report seconds per epoch = fit time / n_iter_ (every fit runs
  exactly its epochs: tol=0, n_iter_no_change > max_iter).
* The GEMM floor of a training row is the time of that epoch's matrix products
  alone, through scipy's BLAS (the one cymlp calls), on the same shapes and
  dtype, without copies; cymlp's time is reported as a multiple of it.
* Peak memory of fit (tracemalloc peak, and the growth of the resident set
  size) is reported next to X.nbytes.

Absolute times mean little on a shared machine: read the ratios.
"""

import argparse
import gc
import os
import statistics
import sys
import threading
import time
import tracemalloc
import warnings
from dataclasses import dataclass, field

import joblib
import numpy as np
from scipy.linalg import blas as scipy_blas
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import validate_data
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLP

from common import (  # benchmarks/common.py: data sets, machine description
    blas_report,
    blas_threads,
    load_average,
    machine_lines,
    make_breast_cancer,
    make_digits,
    make_mnist_like,
    threadpool_limits,
    versions_line,
)

try:
    import cymlp
    from cymlp import MLPClassifier as CyMLP

    CYMLP_ERROR = None
except ImportError as exc:  # cymlp not built: time sklearn against itself
    cymlp = None
    CyMLP = SkMLP
    CYMLP_ERROR = exc

try:
    import torch
except ImportError:
    torch = None


# =========================================================================
# Workload catalogue
# =========================================================================
@dataclass
class Spec:
    name: str
    desc: str
    kind: str                 # train | predict | latency | grid | memory
    sk_target: float = None   # baseline / cymlp >= this
    floor_target: float = None  # cymlp / GEMM floor <= this
    torch_target: float = None  # torch / cymlp >= this
    extra: dict = field(default_factory=dict)


MNIST_ROWS = (60_000, 6_000)         # (full, quick)
WIDE_ROWS = (20_000, 3_000)

SPECS = [
    Spec("digits-b32", "digits 1797x64 standardized, (100,), adam, batch 32, float64",
         "train", 10, torch_target=1,
         extra=dict(data="digits", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                               batch_size=32), epochs=(15, 5))),
    Spec("digits-b200", "digits 1797x64 standardized, (100,), adam, batch 200, float64",
         "train", 5, torch_target=1,
         extra=dict(data="digits", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                               batch_size=200), epochs=(20, 10))),
    Spec("cancer-sgd-b1", "breast_cancer 569x30 standardized, (100,), sgd, batch 1, float64",
         "train", 30, torch_target=1,
         extra=dict(data="cancer", params=dict(hidden_layer_sizes=(100,), solver="sgd",
                                               batch_size=1), epochs=(6, 2))),
    Spec("mnist-f64", "MNIST-shaped {mnist}x784, (100,), adam, batch 200, float64",
         "train", 2.5, 1.4, 1,
         extra=dict(data="mnist-f64", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                                  batch_size=200), epochs=(4, 2))),
    Spec("mnist-f32", "MNIST-shaped {mnist}x784, (100,), adam, batch 200, float32",
         "train", 3.5, 1.4, 1,
         extra=dict(data="mnist-f32", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                                  batch_size=200), epochs=(4, 2))),
    Spec("wide-f32", "MNIST-shaped {wide}x784, (256, 256), adam, batch 200, float32",
         "train", 2.5, 1.4, 1,
         extra=dict(data="wide-f32", params=dict(hidden_layer_sizes=(256, 256),
                                                 solver="adam", batch_size=200),
                    epochs=(3, 2))),
    Spec("predict-60k", "predict_proba on {mnist} MNIST-shaped rows, (100,), float32",
         "predict", 1.3),
    Spec("predict-1row", "predict_proba latency, one row, digits model (100,), float64",
         "latency", 3),
    Spec("grid", "GridSearchCV on digits: 2 hidden x 2 batch sizes x 3 folds = 12 fits",
         "grid", 8, extra=dict(threads_target=1.6)),
    Spec("memory-f32", "peak memory of fit, MNIST-shaped {mnist}x784 float32, 1 epoch",
         "memory", extra=dict(growth_target=0.25)),
]
SPEC_BY_NAME = {s.name: s for s in SPECS}
ALIASES = {"grid-nj1": "grid", "grid-thr2": "grid", "memory": "memory-f32"}  # table row names


# Fixed-epoch fits: no convergence stop, so every fit runs exactly max_iter epochs.
def fixed_epochs(max_iter):
    return dict(max_iter=max_iter, tol=0.0, n_iter_no_change=max_iter + 1, random_state=0)


# =========================================================================
# Data (built once per run)
# =========================================================================
class Data:
    def __init__(self, quick):
        self.quick = quick
        self.n_mnist = MNIST_ROWS[quick]
        self.n_wide = WIDE_ROWS[quick]
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            if name == "digits":
                X, y = make_digits()
            elif name == "cancer":
                X, y = make_breast_cancer()
            elif name == "mnist-f64":
                X, y = make_mnist_like(max(self.n_mnist, self.n_wide))
                X, y = X[: self.n_mnist], y[: self.n_mnist]
            elif name == "mnist-f32":
                X, y = self.get("mnist-f64")
                X = X.astype(np.float32)
            elif name == "wide-f32":
                X, y = self.get("mnist-f32")
                X, y = X[: self.n_wide], y[: self.n_wide]
            else:
                raise KeyError(name)
            self._cache[name] = (np.ascontiguousarray(X), y)
        return self._cache[name]


# =========================================================================
# Timing helpers
# =========================================================================
def interleaved(runs, repeats):
    """Run each callable of ``runs`` (name -> callable returning seconds) once per
    repeat, rotating the order every repeat; return name -> list of seconds."""
    names = list(runs)
    times = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            gc.collect()
            times[n].append(runs[n]())
    return times


def fit_model(cls, X, y, params, epochs):
    """Fit a fresh model for exactly ``epochs`` epochs; return (s/epoch, model)."""
    model = cls(**params, **fixed_epochs(epochs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        elapsed = time.perf_counter() - start
    if model.n_iter_ != epochs:
        raise RuntimeError(f"{cls.__module__}.{cls.__name__} ran {model.n_iter_} "
                           f"epochs, expected {epochs}")
    return elapsed / epochs, model


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def max_coef_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(ca, np.float64) - np.asarray(cb, np.float64))))
        for ca, cb in zip(a.coefs_, b.coefs_)
    )


# =========================================================================
# The GEMM floor, through scipy's BLAS (the one cymlp calls)
# =========================================================================
class _NetTiming:
    """Times one epoch's worth of work with the Python call overhead taken out.

    A subclass sets ``work`` (the epoch's calls or buffers), ``tiny`` (the same
    number of calls on size-1 operands) and ``_run(work) -> seconds``. The
    overhead is the best of 5 runs of ``tiny``, measured once.
    """

    _overhead = None

    def overhead(self):
        """Seconds of call overhead per epoch."""
        if self._overhead is None:
            self._overhead = min(self._run(self.tiny) for _ in range(5))
        return self._overhead

    def epoch(self):
        """Net seconds of one epoch's work (call overhead subtracted)."""
        return max(self._run(self.work) - self.overhead(), 1e-9)


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

    def __init__(self, X, layer_units, batch_size, seed=0):
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
                D = [(rng.standard_normal((b, u[i + 1])) * 0.1).astype(dt) for i in range(L)]
                buffers[b] = (A, D)
            return buffers[b]

        calls = []  # (a, b, c, trans_a, trans_b): c^T = op(a) op(b), Fortran views
        for s in range(0, n, batch_size):
            Xb = X[s : s + batch_size]
            A_h, D = bufs(Xb.shape[0])
            A = [Xb] + A_h
            for i in range(L):
                calls.append((W[i].T, A[i].T, A[i + 1].T, 0, 0))
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
    """

    def __init__(self, n_params, dtype, solver, n_batches, seed=0):
        from cymlp import _engine  # test hook of the compiled step

        self.step = _engine._kernel_optimizer_step
        self.solver = solver
        self.n_batches = n_batches
        rng = np.random.default_rng(seed)
        self.params0 = (rng.standard_normal(n_params) * 0.1).astype(dtype)
        self.grad = (rng.standard_normal(n_params) * 0.1).astype(dtype)
        self.work = self._buffers(n_params, dtype)
        self.tiny = self._buffers(1, dtype)

    def _buffers(self, n, dtype):
        params = self.params0[:n].copy()
        state2 = np.zeros(n, dtype) if self.solver == "adam" else None
        return params, self.grad[:n], np.zeros(n, dtype), state2

    def _run(self, bufs):
        params, grad, state1, state2 = bufs
        params[...] = self.params0[: len(params)]  # a fresh start: no drift to subnormals
        state1[...] = 0
        if state2 is not None:
            state2[...] = 0
        step, kind = self.step, self.solver
        start = time.perf_counter()
        for _ in range(self.n_batches):
            step(kind, params, grad, state1, state2, 1e-4, 32.0, 1e-3)
        return time.perf_counter() - start


# =========================================================================
# The PyTorch loop
# =========================================================================
def torch_fit(X, y, params, epochs, seed=0):
    """A PyTorch CPU training loop of the same network; returns s/epoch.

    nn.Linear layers with ReLU between them, softmax cross-entropy (or a
    logistic output with binary cross-entropy for two classes), the optimizer
    of ``params`` with scikit-learn's defaults (adam, fused: lr 1e-3, betas
    (0.9, 0.999), eps 1e-8; sgd: lr 1e-3, momentum 0.9, Nesterov), and sklearn's L2
    term: alpha * W / batch rows added to the weights' gradients only. Each
    epoch draws a permutation and visits shuffled minibatches of batch_size
    rows, gathering them from X (no copy of X: torch.from_numpy), and
    accumulates the epoch loss as sklearn does. The time includes building the
    model, as a fit does.
    """
    start = time.perf_counter()
    nn = torch.nn
    F = torch.nn.functional
    Xt = torch.from_numpy(X)
    classes, codes = np.unique(y, return_inverse=True)
    n, d = X.shape
    binary = len(classes) == 2
    if binary:
        yt = torch.from_numpy(codes.astype(X.dtype).reshape(-1, 1))
        n_out = 1
    else:
        yt = torch.from_numpy(codes.astype(np.int64))
        n_out = len(classes)
    sizes = [d, *params["hidden_layer_sizes"], n_out]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], dtype=Xt.dtype))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    bs = min(params["batch_size"], n)
    alpha = params.get("alpha", 1e-4)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    biases = [m.bias for m in model if isinstance(m, nn.Linear)]
    groups = [{"params": weights, "weight_decay": alpha / bs},
              {"params": biases, "weight_decay": 0.0}]
    if params["solver"] == "adam":
        # fused Adam: PyTorch's fastest CPU optimizer step (one kernel over
        # every parameter; measured 430 vs 531 ms per MNIST-shaped float32
        # epoch for the plain loop), so the column is PyTorch at its best
        opt = torch.optim.Adam(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
    else:
        opt = torch.optim.SGD(groups, lr=1e-3, momentum=0.9, nesterov=True)
    loss_fn = F.binary_cross_entropy_with_logits if binary else F.cross_entropy
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
    return (time.perf_counter() - start) / epochs


def torch_model_from(est):
    """A torch nn.Sequential with the fitted weights of an sklearn-like MLP."""
    nn = torch.nn
    layers = []
    L = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=torch.from_numpy(W).dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < L - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_predict_proba(model, X):
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()


# =========================================================================
# Results
# =========================================================================
@dataclass
class Row:
    name: str
    unit: str                 # s/epoch | s/call | s/search
    times: dict               # lib -> list of seconds (sklearn, cymlp, torch)
    spec: Spec
    baseline: str = "sklearn"  # ratio = times[baseline] / times["cymlp"]
    floor: list = None        # seconds per repeat, training rows only
    exact_floor: list = None  # GEMM floor + optimizer steps, seconds per repeat
    sk_target: float = None
    notes: list = field(default_factory=list)

    def best(self, lib):
        t = self.times.get(lib)
        return min(t) if t else None

    def ratio(self):
        return self.best(self.baseline) / self.best("cymlp")

    def ratio_med(self):
        b, c = self.times[self.baseline], self.times["cymlp"]
        return statistics.median(x / y for x, y in zip(b, c))

    def floor_multiple(self):
        return self.best("cymlp") / min(self.floor) if self.floor else None

    def floor_multiple_med(self):
        if not self.floor:
            return None
        return statistics.median(c / f for c, f in zip(self.times["cymlp"], self.floor))

    def exact_bound(self):
        """sklearn / (GEMM floor + optimizer steps): the largest speedup an
        implementation with sklearn's arithmetic can reach on this BLAS."""
        if not self.exact_floor:
            return None
        return self.best("sklearn") / min(self.exact_floor)

    def torch_ratio(self):
        return self.best("torch") / self.best("cymlp") if self.times.get("torch") else None


# =========================================================================
# Workloads
# =========================================================================
def run_train(spec, data, quick, repeats, use_torch):
    X, y = data.get(spec.extra["data"])
    params = spec.extra["params"]
    epochs = spec.extra["epochs"][quick]
    n_classes = len(np.unique(y))
    units = [X.shape[1], *params["hidden_layer_sizes"], 1 if n_classes == 2 else n_classes]

    # Warm-up: one short fit each (first-call costs, page faults, thread start-up).
    w = min(len(X), 1000)
    for cls in (SkMLP, CyMLP):
        fit_model(cls, X[:w], y[:w], params, 1)
    if use_torch:
        torch_fit(X[:w], y[:w], params, 1)
    batch = min(params["batch_size"], len(X))
    floor = GemmFloor(X, units, batch)
    floor.epoch()
    n_params = sum(units[i] * units[i + 1] + units[i + 1] for i in range(len(units) - 1))
    step = (StepFloor(n_params, X.dtype, params.get("solver", "adam"), -(-len(X) // batch))
            if CYMLP_ERROR is None else None)

    models = {}

    def timed(lib, cls):
        def run():
            t, models[lib] = fit_model(cls, X, y, params, epochs)
            return t
        return run

    runs = {"sklearn": timed("sklearn", SkMLP), "cymlp": timed("cymlp", CyMLP)}
    if use_torch:
        runs["torch"] = lambda: torch_fit(X, y, params, epochs)
    if threadpool_limits is not None:
        # cymlp's own thread scaling: the same fit on one OpenMP thread
        def one_thread():
            with threadpool_limits(limits=1, user_api="openmp"):
                return fit_model(CyMLP, X, y, params, epochs)[0]
        runs["cymlp-1t"] = one_thread
    runs["floor"] = floor.epoch
    if step is not None:
        runs["step"] = step.epoch
    times = interleaved(runs, repeats)
    floor_times = times.pop("floor")
    step_times = times.pop("step", None)
    one_thread_times = times.pop("cymlp-1t", None)
    sk, cy = models["sklearn"], models["cymlp"]
    notes = [f"{epochs} epochs x {plural(repeats, 'repeat')}; sklearn vs cymlp: max|dcoef| "
             f"{max_coef_diff(sk, cy):.1e}, final loss {sk.loss_:.6g} vs {cy.loss_:.6g}",
             f"{floor.flops / 1e9:.2f} GFLOP/epoch in {len(floor.calls)} GEMMs, floor "
             f"{floor.flops / 1e9 / min(floor_times):.1f} GFLOP/s (wrapper overhead "
             f"subtracted: {floor.overhead() * 1e3:.2f} ms/epoch)"]
    exact = [f + st for f, st in zip(floor_times, step_times)] if step_times else None
    if step_times:
        bound = min(times["sklearn"]) / min(exact)
        notes.append(f"optimizer steps alone ({step.solver}, {n_params} parameters, "
                     f"{step.n_batches} per epoch): {fmt_time(min(step_times), 's/epoch')}; "
                     f"sklearn / (GEMM floor + steps) = {bound:.2f}x")
    if one_thread_times:
        notes.append(f"cymlp thread scaling: one thread {fmt_time(min(one_thread_times), 's/epoch')}"
                     f", as set {fmt_time(min(times['cymlp']), 's/epoch')}: "
                     f"{min(one_thread_times) / min(times['cymlp']):.2f}x (target >=1.6x)")
    if sk.coefs_[0].dtype != cy.coefs_[0].dtype:
        notes.append(f"WARNING: sklearn trained in {sk.coefs_[0].dtype}, "
                     f"cymlp in {cy.coefs_[0].dtype}")
    return [Row(spec.name, "s/epoch", times, spec, floor=floor_times, exact_floor=exact,
                notes=notes, sk_target=spec.sk_target)]


def run_predict(spec, data, quick, repeats, use_torch):
    X, y = data.get("mnist-f32")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    n_fit = min(len(X), 5000)
    models = {lib: fit_model(cls, X[:n_fit], y[:n_fit], params, 2)[1]
              for lib, cls in (("sklearn", SkMLP), ("cymlp", CyMLP))}
    out = {}

    def timed(lib):
        if lib == "torch":
            tm = torch_model_from(models["cymlp"])
            f = lambda: torch_predict_proba(tm, X)  # noqa: E731
        else:
            f = lambda: models[lib].predict_proba(X)  # noqa: E731

        def run():
            start = time.perf_counter()
            out[lib] = f()
            return time.perf_counter() - start
        run()  # warm-up
        return run

    libs = ["sklearn", "cymlp"] + (["torch"] if use_torch else [])
    times = interleaved({lib: timed(lib) for lib in libs}, repeats)
    diff = float(np.max(np.abs(out["sklearn"] - out["cymlp"])))
    notes = [f"{len(X)} rows x {plural(repeats, 'repeat')}, models fitted 2 epochs on "
             f"{n_fit} rows; max|dproba| sklearn vs cymlp {diff:.1e}; proba dtype "
             f"{out['cymlp'].dtype}"]
    return [Row(spec.name, "s/call", times, spec, notes=notes, sk_target=spec.sk_target)]


def run_latency(spec, data, quick, repeats, use_torch):
    X, y = data.get("digits")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    models = {lib: fit_model(cls, X, y, params, 5)[1]
              for lib, cls in (("sklearn", SkMLP), ("cymlp", CyMLP))}
    x = np.ascontiguousarray(X[:1])
    block = 0.03 if quick else 0.1  # seconds per timed block of calls

    def timed(lib):
        if lib == "torch":
            tm = torch_model_from(models["cymlp"])
            f = lambda: torch_predict_proba(tm, x)  # noqa: E731
        else:
            f = models[lib].predict_proba
            f = (lambda f: lambda: f(x))(f)
        for _ in range(20):
            f()
        start = time.perf_counter()
        for _ in range(50):
            f()
        n = max(20, int(block / ((time.perf_counter() - start) / 50)))

        def run():
            start = time.perf_counter()
            for _ in range(n):
                f()
            return (time.perf_counter() - start) / n
        return run

    libs = ["sklearn", "cymlp"] + (["torch"] if use_torch else [])
    times = interleaved({lib: timed(lib) for lib in libs}, repeats)
    notes = [f"1x64 float64 row; mean per call over blocks of ~{block * 1e3:.0f} ms, "
             f"{repeats} blocks per library, interleaved"]
    return [Row(spec.name, "s/call", times, spec, notes=notes, sk_target=spec.sk_target)]


class NoTrainingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier that validates its input as any scikit-learn estimator
    must, and does nothing else: GridSearchCV around it measures the search's
    own cost (cloning, splitting, scoring with accuracy_score), which any
    estimator pays, whatever its speed."""

    def __init__(self, hidden_layer_sizes=(100,), batch_size=200, max_iter=200,
                 tol=1e-4, n_iter_no_change=10, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        X = validate_data(self, X, reset=False)
        return np.full(X.shape[0], self.classes_[0])


def run_grid(spec, data, quick, repeats, use_torch):
    X, y = data.get("digits")
    epochs = 5 if quick else 20
    grid = {"hidden_layer_sizes": [(50,), (100,)], "batch_size": [32, 200]}

    def search(cls, n_jobs):
        def run():
            gs = GridSearchCV(cls(**fixed_epochs(epochs)), grid, cv=3, refit=False,
                              n_jobs=n_jobs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                with joblib.parallel_config(backend="threading"):
                    cpu = time.process_time()
                    start = time.perf_counter()
                    gs.fit(X, y)
                    elapsed = time.perf_counter() - start
                    cpu = time.process_time() - cpu
            run.scores = gs.cv_results_["mean_test_score"]
            run.cpu_per_wall.append(cpu / elapsed)
            return elapsed
        run.cpu_per_wall = []
        return run

    runs = {
        "sklearn": search(SkMLP, 1),
        "cymlp": search(CyMLP, 1),
        "cymlp-thr2": search(CyMLP, 2),
        "sklearn-thr2": search(SkMLP, 2),
    }
    # The bound for an exact implementation: every fit's GEMMs and optimizer
    # steps, and nothing else (no validation, scoring or GridSearchCV
    # bookkeeping). One epoch of each grid point is timed on a training fold's
    # shapes and scaled to 3 folds x `epochs`.
    n_train = len(X) - len(X) // 3
    exact_parts = []
    if CYMLP_ERROR is None:
        for hidden in grid["hidden_layer_sizes"]:
            for batch in grid["batch_size"]:
                units = [X.shape[1], *hidden, len(np.unique(y))]
                n_params = sum(units[i] * units[i + 1] + units[i + 1]
                               for i in range(len(units) - 1))
                exact_parts.append(GemmFloor(X[:n_train], units, batch).epoch)
                exact_parts.append(StepFloor(n_params, X.dtype, "adam",
                                             -(-n_train // batch)).epoch)
        runs["exact"] = lambda: 3 * epochs * sum(part() for part in exact_parts)
        runs["search-only"] = search(NoTrainingClassifier, 1)
    search(CyMLP, 1)()  # warm-up (imports, first calls)
    times = interleaved(runs, repeats)
    exact = times.pop("exact", None)
    search_only = times.pop("search-only", None)
    if exact:
        # the search's own cost comes on top of the fits' products and steps
        exact = [e + s for e, s in zip(exact, search_only)]
    score_diff = float(np.max(np.abs(runs["sklearn"].scores - runs["cymlp"].scores)))
    serial = Row("grid-nj1", "s/search", {"sklearn": times["sklearn"],
                                          "cymlp": times["cymlp"]}, spec,
                 sk_target=spec.sk_target, exact_floor=exact,
                 notes=[f"12 fits of {epochs} epochs (grid {grid}, cv=3, refit=False), "
                        f"{plural(repeats, 'repeat')}; max |mean_test_score| difference "
                        f"sklearn vs cymlp {score_diff:.1e}"])
    if exact:
        serial.notes.append(
            f"the fits' GEMMs and optimizer steps alone, plus the search's own cost "
            f"(GridSearchCV of a classifier that only validates: "
            f"{min(search_only):.3g} s): {min(exact):.3g} s; sklearn / that = "
            f"{serial.exact_bound():.2f}x (cymlp's search: "
            f"{min(times['cymlp']) / min(exact):.2f}x that time)")
    threads = Row("grid-thr2", "s/search",
                  {"sklearn": times["sklearn-thr2"], "cymlp": times["cymlp-thr2"],
                   "cymlp n_jobs=1": times["cymlp"]}, spec,
                  baseline="cymlp n_jobs=1", sk_target=spec.extra["threads_target"],
                  notes=["n_jobs=2 with joblib's threading backend; the ratio is cymlp "
                         "n_jobs=1 / cymlp n_jobs=2 (sklearn column: sklearn, threading, "
                         "n_jobs=2, for reference: "
                         f"{min(times['sklearn']) / min(times['sklearn-thr2']):.2f}x "
                         "its own n_jobs=1)",
                         "process CPU time / wall time (median; 2.0 = both threads busy "
                         "all the time): cymlp n_jobs=2 "
                         f"{statistics.median(runs['cymlp-thr2'].cpu_per_wall):.2f}, "
                         f"n_jobs=1 {statistics.median(runs['cymlp'].cpu_per_wall):.2f}; "
                         "sklearn n_jobs=2 "
                         f"{statistics.median(runs['sklearn-thr2'].cpu_per_wall):.2f}"])
    return [serial, threads]


# ---------------------------------------------------------------- memory
def _proc_status_kb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_growth(fn):
    """Peak resident set size during fn() minus the RSS before it, in bytes.

    Uses the kernel's high-water mark after resetting it; where that cannot be
    reset, a thread samples VmRSS every millisecond (the fits release the GIL
    in BLAS calls, and cymlp's epochs release it throughout)."""
    gc.collect()
    reset = _reset_peak_rss()  # first: the mark then equals the RSS read next
    before = _proc_status_kb("VmRSS")
    if before is None:
        fn()
        return None
    if reset:
        fn()
        return _proc_status_kb("VmHWM") - before
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _proc_status_kb("VmRSS"))
            time.sleep(0.001)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return peak[0] - before


def traced_peak(fn):
    """tracemalloc's peak of Python-visible allocations (numpy arrays included)
    during fn(), above what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def run_memory(spec, data, quick, repeats, use_torch):
    X, y = data.get("mnist-f32")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    w = min(len(X), 1000)
    libs = [("sklearn", SkMLP), ("cymlp", CyMLP)]
    for _, cls in libs:  # warm-up on a slice
        fit_model(cls, X[:w], y[:w], params, 1)
    fits = {lib: (lambda cls=cls: fit_model(cls, X, y, params, 1)) for lib, cls in libs}
    if use_torch:
        torch_fit(X[:w], y[:w], params, 1)
        fits["torch"] = lambda: torch_fit(X, y, params, 1)
    # Control: Fortran-ordered X makes cymlp copy X once (it trains on C rows):
    # shows that both measures do see a copy of X when there is one.
    XF = np.asfortranarray(X)
    fits["cymlp, F-ordered X (control: one copy)"] = (
        lambda: fit_model(CyMLP, XF, y, params, 1))
    result = {}
    for lib, fn in fits.items():
        rss = rss_growth(fn)
        traced = traced_peak(fn) if lib != "torch" else None
        result[lib] = (traced, rss)
    return [("memory", spec, X.nbytes, result)]


RUNNERS = {"train": run_train, "predict": run_predict, "latency": run_latency,
           "grid": run_grid, "memory": run_memory}


def default_repeats(spec, quick):
    if quick:
        return {"latency": 3, "predict": 3, "grid": 1}.get(spec.kind, 2)
    if spec.kind == "train":
        return 5 if spec.extra["data"] in ("digits", "cancer") else 3
    return {"predict": 7, "latency": 7, "grid": 3, "memory": 1}[spec.kind]


# =========================================================================
# Reporting
# =========================================================================
def fmt_time(seconds, unit):
    if seconds is None:
        return "-"
    if unit == "s/search":
        return f"{seconds:.3g} s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1:
        return f"{seconds * 1e3:.4g} ms"
    return f"{seconds:.4g} s"


def verdict(value, target, at_least=True):
    if value is None or target is None:
        return "-"
    ok = value >= target if at_least else value <= target
    return "pass" if ok else "MISS"


def table(header, body):
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] +
                     [line(r) for r in body])


def print_results(rows, mem_rows, quick=False):
    header = ["workload", "unit", "sklearn", "cymlp", "torch", "GEMM floor",
              "speedup", "(med)", "target", "ok",
              "cy/floor", "(med)", "target", "ok", "sk/floor", "torch/cy", "ok"]
    body = []
    misses = []
    for r in rows:
        ratio, floor_x, torch_x = r.ratio(), r.floor_multiple(), r.torch_ratio()
        sk_ok = verdict(ratio, r.sk_target)
        fl_ok = verdict(floor_x, r.spec.floor_target, at_least=False)
        to_ok = verdict(torch_x, r.spec.torch_target)
        base = "" if r.baseline == "sklearn" else " (b)"
        body.append([
            r.name, r.unit,
            fmt_time(r.best("sklearn"), r.unit), fmt_time(r.best("cymlp"), r.unit),
            fmt_time(r.best("torch"), r.unit),
            fmt_time(min(r.floor), r.unit) if r.floor else "-",
            f"{ratio:.2f}x{base}", f"{r.ratio_med():.2f}x",
            f">={r.sk_target:g}x", sk_ok,
            f"{floor_x:.2f}x" if floor_x else "-",
            f"{r.floor_multiple_med():.2f}x" if floor_x else "-",
            f"<={r.spec.floor_target:g}x" if r.spec.floor_target else "-", fl_ok,
            f"{r.best('sklearn') / min(r.floor):.2f}x" if r.floor else "-",
            f"{torch_x:.2f}x" if torch_x else "-", to_ok,
        ])
        if sk_ok == "MISS":
            bound = r.exact_bound() if r.baseline == "sklearn" else None
            misses.append(f"{r.name}: speedup {ratio:.2f}x, target >={r.sk_target:g}x "
                          f"({ratio / r.sk_target - 1:+.0%})" + (
                              "" if bound is None else
                              f"; exact bound {bound:.2f}x" + (
                                  "" if bound >= r.sk_target else
                                  " < target (--quick: single timings, too noisy to "
                                  "judge)" if quick else
                                  " < target: unreachable with sklearn's arithmetic "
                                  "on this BLAS")))
        if fl_ok == "MISS":
            misses.append(f"{r.name}: {floor_x:.2f}x the GEMM floor, target "
                          f"<={r.spec.floor_target:g}x")
        if to_ok == "MISS":
            misses.append(f"{r.name}: torch/cymlp {torch_x:.2f}x: PyTorch is faster")
    if body:
        print()
        print(table(header, body))
        print()
        print("Times: minimum over the repeats. speedup = sklearn / cymlp of those minima "
              "((b): baseline is cymlp n_jobs=1, see note);")
        print("(med) = median of the per-repeat ratios. cy/floor = cymlp / GEMM floor "
              "(scipy's BLAS, wrapper overhead subtracted).")
        print("sk/floor = sklearn / GEMM floor: the largest speedup over sklearn that an "
              "implementation doing these GEMMs on this BLAS can reach.")
        print("torch/cy = PyTorch loop / cymlp (above 1: cymlp is faster).")
        for r in rows:
            for i, n in enumerate(r.notes):
                print(f"  {r.name if i == 0 else '':<13} {n}")

    for _, spec, nbytes, result in mem_rows:
        print()
        print(f"Peak memory of fit ({spec.name}): X.nbytes = {nbytes / 2**20:.1f} MiB "
              f"(float32); target: growth < {spec.extra['growth_target']:.0%} of X.nbytes")
        mbody = []
        for lib, (traced, rss) in result.items():
            worst = max(v for v in (traced, rss) if v is not None)
            ok = verdict(-worst / nbytes, -spec.extra["growth_target"]) \
                if lib == "cymlp" else "-"
            mbody.append([
                lib, "1 epoch",
                f"{traced / 2**20:.1f} MiB" if traced is not None else "n/a",
                f"{traced / nbytes:.1%}" if traced is not None else "-",
                f"{rss / 2**20:.1f} MiB" if rss is not None else "n/a",
                f"{rss / nbytes:.1%}" if rss is not None else "-",
                ok,
            ])
            if ok == "MISS":
                misses.append(f"{spec.name}: cymlp's fit grows memory by "
                              f"{worst / nbytes:.0%} of X.nbytes")
        print(table(["library", "fit", "tracemalloc peak", "/X", "RSS growth", "/X", "ok"],
                    mbody))
        print("tracemalloc peak: Python and numpy allocations during fit (not torch's). "
              "RSS growth: peak resident set during fit")
        print("minus the RSS before it; memory freed earlier and reused does not show, "
              "a copy of X does (see the control row).")
    print()
    if misses:
        print("Targets missed (exact bound: sklearn / the time of the same GEMMs and "
              "optimizer steps alone, plus the search's own cost for grid-nj1):")
        for m in misses:
            print("  " + m)
    else:
        print("Every target of the workloads run was met.")


def print_header(args, threads):
    print("cymlp benchmark suite (benchmarks/run.py)" + (" --quick" if args.quick else ""))
    print(versions_line(cymlp) + (f"  torch {torch.__version__}" if torch else
                                  "  torch not installed (no PyTorch column)"))
    for line in machine_lines():
        print(line)
    load = load_average()
    if load:
        print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"(1/5/15 min) on {os.cpu_count()} CPUs")
    setting = (f"--blas-threads {args.blas_threads} (threadpoolctl limit on every BLAS)"
               if args.blas_threads else "default (threads as set: not limited)")
    print(f"BLAS threads: {setting}; scipy's BLAS (cymlp) runs {threads} thread(s)")
    if torch is not None and not args.no_torch:
        print(f"torch: torch.set_num_threads({torch.get_num_threads()}) to match scipy's "
              f"BLAS; torch's own BLAS: "
              f"{'MKL' if torch.backends.mkl.is_available() else 'not MKL'}")
    for line in blas_report():
        print("  " + line)
    if load and load[0] > 0.5 and (threads or 1) > 1:
        print("note: other processes are running; multi-threaded BLAS can slow down "
              "badly when cores are busy (--blas-threads 1 is steadier)")
    if CYMLP_ERROR is not None:
        print(f"WARNING: cymlp is not importable ({CYMLP_ERROR}); timing sklearn against "
              "ITSELF: the 'cymlp' column is sklearn, ratios should be ~1.")


def list_workloads(quick):
    for s in SPECS:
        targets = []
        if s.sk_target:
            targets.append(f">={s.sk_target:g}x sklearn")
        if s.kind == "grid":
            targets.append(f"n_jobs=2 threads >={s.extra['threads_target']:g}x "
                           "cymlp n_jobs=1")
        if s.floor_target:
            targets.append(f"<={s.floor_target:g}x GEMM floor")
        if s.torch_target:
            targets.append("faster than torch")
        if s.kind == "memory":
            targets.append(f"growth < {s.extra['growth_target']:.0%} of X.nbytes")
        desc = s.desc.format(mnist=MNIST_ROWS[quick], wide=WIDE_ROWS[quick])
        print(f"{s.name:<14} {desc}\n{'':<14} target: {'; '.join(targets)}")


def write_json(path, rows, threads):
    """The measured rows, machine-readable: best times, ratios and targets."""
    import json

    def num(x):
        return None if x is None else float(x)

    out = {
        "blas_threads": threads,
        "load_average": load_average(),
        "rows": [
            {
                "name": r.name,
                "unit": r.unit,
                "baseline": r.baseline,
                "best_seconds": {lib: num(r.best(lib)) for lib in r.times},
                "speedup": num(r.ratio()),
                "speedup_median": num(r.ratio_med()),
                "target": num(r.sk_target if r.sk_target is not None else r.spec.sk_target),
                "cymlp_over_floor": num(r.floor_multiple()),
                "exact_bound": num(r.exact_bound()),
                "floor_target": num(r.spec.floor_target),
            }
            for r in rows
        ],
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="cymlp benchmark suite: every workload, cymlp vs sklearn (vs PyTorch).")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (under a minute): fewer epochs and repeats, "
                             f"{MNIST_ROWS[1]}-row MNIST-shaped data")
    parser.add_argument("--only", action="append", metavar="NAMES",
                        help="run only these workloads (comma-separated, repeatable); "
                             "see --list")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per library and workload (default: 5 digits/cancer, "
                             "3 MNIST-shaped and grid, 7 predict; 1-3 with --quick)")
    parser.add_argument("--blas-threads", type=int, default=None, metavar="N",
                        help="limit every BLAS to N threads (threadpoolctl) and torch to N "
                             "(torch.set_num_threads); default: leave as set")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="limit every library to N threads: BLAS and OpenMP "
                             "(threadpoolctl, cymlp's engine included) and torch")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch loop even when torch is installed")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the rows as JSON (the docs gallery plots "
                             "benchmarks/results.json)")
    args = parser.parse_args(argv)

    if args.list:
        list_workloads(args.quick)
        return
    names = [s.name for s in SPECS]
    if args.only:
        names = [ALIASES.get(n.strip(), n.strip())
                 for arg in args.only for n in arg.split(",") if n.strip()]
        names = list(dict.fromkeys(names))  # once each, in the order given
        unknown = [n for n in names if n not in SPEC_BY_NAME]
        if unknown:
            parser.error(f"unknown workload(s) {unknown}; choose from "
                         f"{[s.name for s in SPECS]}")
    use_torch = torch is not None and not args.no_torch

    limiter = None
    if args.blas_threads is not None:
        if threadpool_limits is None:
            parser.error("--blas-threads needs threadpoolctl")
        limiter = threadpool_limits(limits=args.blas_threads, user_api="blas")
    if args.threads is not None:
        if threadpool_limits is None:
            parser.error("--threads needs threadpoolctl")
        limiter = threadpool_limits(limits=args.threads)
        args.blas_threads = args.threads
    threads = blas_threads("scipy")
    if use_torch:
        torch.set_num_threads(args.blas_threads or threads or 1)

    print_header(args, threads)
    data = Data(args.quick)
    rows, mem_rows = [], []
    total = time.perf_counter()
    for name in names:
        spec = SPEC_BY_NAME[name]
        repeats = args.repeats or default_repeats(spec, args.quick)
        t0 = time.perf_counter()
        out = RUNNERS[spec.kind](spec, data, args.quick, repeats, use_torch)
        for r in out:
            (mem_rows if isinstance(r, tuple) else rows).append(r)
        desc = spec.desc.format(mnist=data.n_mnist, wide=data.n_wide)
        print(f"  {name:<14} {time.perf_counter() - t0:6.1f} s  {desc}", flush=True)
    if limiter is not None:
        limiter.restore_original_limits()

    print_results(rows, mem_rows, quick=args.quick)
    if args.json:
        write_json(args.json, rows, threads=args.blas_threads or threads)
    load = load_average()
    print(f"\ntotal wall time {time.perf_counter() - total:.1f} s"
          + (f"; load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
             if load else ""))


if __name__ == "__main__":
    sys.exit(main())
