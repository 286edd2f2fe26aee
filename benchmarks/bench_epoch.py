"""Per-epoch training time: cymlp.MLPClassifier vs sklearn's MLPClassifier.

Both estimators are fitted in this one process, on the same data, with the
same parameters and ``random_state``; the fits of the two libraries are
interleaved (the order alternates on every repeat) so that load from other
processes on a shared machine falls on both alike. Every epoch runs:
``tol=0`` and ``n_iter_no_change=max_iter + 1`` disable the convergence
stop, and the resulting ConvergenceWarning is silenced.

    per-epoch time = wall-clock time of fit() / n_iter_
    speedup        = sklearn per-epoch time / cymlp per-epoch time

The table reports the *minimum* over repeats for each library (the run least
disturbed by other load) and, as a cross-check, the median of the per-repeat
ratios. Absolute times depend on the machine; read the ratios.

Two further columns help to interpret a ratio:

* ``GEMM floor``: time of the matrix products of one epoch alone (same
  shapes, same dtype, contiguous batches, preallocated outputs),
  timed with numpy (numpy's BLAS). No implementation can train an epoch faster than this.
  For tiny batches it overstates the floor: each of the ~5 products per batch
  also pays the overhead of a numpy call (about a microsecond).
* ``max|dcoef|``: largest absolute difference between the two fitted models'
  ``coefs_`` -- both must have computed the same thing for the timing to be a
  fair comparison.

Run ``python benchmarks/bench_epoch.py --help`` for the options.
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP

from common import (  # benchmarks/common.py: data sets, machine description
    blas_report,
    make_digits,
    make_mnist_like,
    threadpool_info,
    threadpool_limits,
    versions_line,
)

try:
    import cymlp
    from cymlp import MLPClassifier as CyMLP

    CYMLP_ERROR = None
except ImportError as exc:  # cymlp not built yet: time sklearn against itself
    cymlp = None
    CyMLP = SkMLP
    CYMLP_ERROR = exc


# ----------------------------------------------------------------- workloads
def workloads(quick):
    """name -> (description, data factory, MLP parameters, max_iter)."""
    n_mnist = 10_000 if quick else 60_000
    digits_iter = 20 if quick else 30
    mnist_iter = 3 if quick else 5
    common = dict(hidden_layer_sizes=(100,), solver="adam", random_state=0)
    mnist = {}  # built once, shared by the float64 and float32 workloads

    def mnist_data(dtype):
        def factory():
            if "X" not in mnist:
                mnist["X"], mnist["y"] = make_mnist_like(n_mnist)
            return mnist["X"].astype(dtype, copy=False), mnist["y"]

        return factory

    return {
        "digits-b32": (
            "digits 1797x64, batch 32, float64",
            make_digits,
            dict(common, batch_size=32),
            digits_iter,
        ),
        "digits-b200": (
            "digits 1797x64, batch 200, float64",
            make_digits,
            dict(common, batch_size=200),
            digits_iter,
        ),
        "mnist-f64": (
            f"MNIST-shaped {n_mnist}x784, batch 200, float64",
            mnist_data(np.float64),
            dict(common, batch_size=200),
            mnist_iter,
        ),
        "mnist-f32": (
            f"MNIST-shaped {n_mnist}x784, batch 200, float32",
            mnist_data(np.float32),
            dict(common, batch_size=200),
            mnist_iter,
        ),
    }


# ----------------------------------------------------------------- timing
def time_fit(cls, X, y, params, max_iter):
    """Fit once; return (seconds per epoch, fitted model)."""
    model = cls(**params, max_iter=max_iter, tol=0.0, n_iter_no_change=max_iter + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        elapsed = time.perf_counter() - start
    if model.n_iter_ != max_iter:
        raise RuntimeError(
            f"{cls.__module__}.{cls.__name__} ran {model.n_iter_} epochs, "
            f"expected {max_iter}"
        )
    return elapsed / model.n_iter_, model


def gemm_floor(X, n_classes, hidden, batch_size, repeats):
    """Seconds for the matrix products of one epoch, and nothing else.

    Per batch: the forward products X_b @ W1 and H @ W2, and the backward
    products H^T @ D2 (grad W2), D2 @ W2^T (delta of the hidden layer) and
    X_b^T @ D1 (grad W1) -- the five GEMMs of a one-hidden-layer network.
    """
    X = np.ascontiguousarray(X)
    dt = X.dtype
    n, d = X.shape
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((d, hidden)).astype(dt)
    W2 = rng.standard_normal((hidden, n_classes)).astype(dt)
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    starts = range(0, n, batch_size)
    bufs = {}
    for s in starts:  # one set of buffers per distinct batch size (at most 2)
        b = min(batch_size, n - s)
        if b not in bufs:
            bufs[b] = (
                np.empty((b, hidden), dt),  # H: hidden activations
                np.empty((b, n_classes), dt),  # Z: output activations
                rng.standard_normal((b, n_classes)).astype(dt),  # D2: output deltas
                np.empty((b, hidden), dt),  # D1: hidden deltas
            )
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for s in starts:
            Xb = X[s : s + batch_size]
            H, Z, D2, D1 = bufs[Xb.shape[0]]
            np.matmul(Xb, W1, out=H)
            np.matmul(H, W2, out=Z)
            np.matmul(H.T, D2, out=gW2)
            np.matmul(D2, W2.T, out=D1)
            np.matmul(Xb.T, D1, out=gW1)
        best = min(best, time.perf_counter() - start)
    return best


def max_coef_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(ca, np.float64) - np.asarray(cb, np.float64))))
        for ca, cb in zip(a.coefs_, b.coefs_)
    )


def run_workload(name, spec, repeats):
    desc, factory, params, max_iter = spec
    X, y = factory()
    libs = [("sklearn", SkMLP), ("cymlp", CyMLP)]

    # Warm-up: one short fit each on a slice (first-call costs, page faults).
    for _, cls in libs:
        time_fit(cls, X[:1000], y[:1000], params, 1)

    times = {"sklearn": [], "cymlp": []}
    models = {}
    for r in range(repeats):
        order = libs if r % 2 == 0 else libs[::-1]
        for lib, cls in order:
            t, models[lib] = time_fit(cls, X, y, params, max_iter)
            times[lib].append(t)

    sk, cy = np.array(times["sklearn"]), np.array(times["cymlp"])
    floor = gemm_floor(
        X, len(np.unique(y)), params["hidden_layer_sizes"][0], params["batch_size"],
        repeats=max(3, repeats),
    )
    dtypes = {lib: m.coefs_[0].dtype for lib, m in models.items()}
    return dict(
        name=name,
        desc=desc,
        epochs=max_iter,
        sk=sk.min(),
        cy=cy.min(),
        speedup=sk.min() / cy.min(),
        speedup_med=float(np.median(sk / cy)),
        floor=floor,
        diff=max_coef_diff(models["sklearn"], models["cymlp"]),
        dtypes=dtypes,
    )


# ----------------------------------------------------------------- reporting
def header():
    lines = [
        versions_line(cymlp),
        f"{platform.machine()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
    ]
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        lines.append(f"load average (1 min) at start: {load:.2f}")
        if load > 0.5 and threadpool_info is not None and any(
            lib.get("num_threads", 1) > 1 for lib in threadpool_info()
        ):
            lines.append("note: other processes are running; multi-threaded BLAS can slow "
                         "down badly when cores are busy (--blas-threads 1 is steadier)")
    lines += blas_report()
    if CYMLP_ERROR is not None:
        lines.append(f"WARNING: cymlp is not importable ({CYMLP_ERROR}); timing sklearn "
                     "against ITSELF: the 'cymlp' column is sklearn, ratios should be ~1.")
    return "\n".join(lines)


def print_table(rows, repeats):
    cols = ["workload", "epochs", "sklearn s/epoch", "cymlp s/epoch", "speedup",
            "speedup(med)", "GEMM floor", "max|dcoef|"]
    body = [
        [r["name"], str(r["epochs"]), f"{r['sk']:.4g}", f"{r['cy']:.4g}",
         f"{r['speedup']:.2f}x", f"{r['speedup_med']:.2f}x", f"{r['floor']:.4g}",
         f"{r['diff']:.1e}"]
        for r in rows
    ]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    print()
    print(fmt(cols))
    print(fmt(["-" * w for w in widths]))
    for b in body:
        print(fmt(b))
    print()
    print(f"s/epoch: minimum over {repeats} interleaved repeats of fit time / n_iter_.")
    print("speedup = sklearn / cymlp of those minima; speedup(med) = median of the "
          "per-repeat ratios.")
    print("GEMM floor: s/epoch of the five matrix products per batch alone (numpy and "
          "its BLAS); overstated for tiny batches by numpy's per-call overhead.")
    for r in rows:
        print(f"  {r['name']:<12} {r['desc']}")
        if r["dtypes"]["sklearn"] != r["dtypes"]["cymlp"]:
            print(f"  WARNING: {r['name']}: sklearn trained in {r['dtypes']['sklearn']}, "
                  f"cymlp in {r['dtypes']['cymlp']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: fewer repeats and epochs, 10,000-row MNIST-shaped data")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this workload (repeatable, or comma-separated); "
                             "names: digits-b32, digits-b200, mnist-f64, mnist-f32")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per library and workload "
                             "(default: 5 for digits, 3 for MNIST-shaped; 2 with --quick)")
    parser.add_argument("--blas-threads", type=int, default=None, metavar="N",
                        help="limit BLAS to N threads (threadpoolctl); default: leave as set")
    args = parser.parse_args(argv)

    specs = workloads(args.quick)
    names = list(specs)
    if args.only:
        names = [n.strip() for arg in args.only for n in arg.split(",") if n.strip()]
        unknown = [n for n in names if n not in specs]
        if unknown:
            parser.error(f"unknown workload(s) {unknown}; choose from {list(specs)}")

    limiter = None
    if args.blas_threads is not None:
        if threadpool_limits is None:
            parser.error("--blas-threads needs threadpoolctl")
        limiter = threadpool_limits(limits=args.blas_threads, user_api="blas")

    print(header())
    total = time.perf_counter()
    rows = []
    for name in names:
        if args.repeats is not None:
            repeats = args.repeats
        elif args.quick:
            repeats = 2
        else:
            repeats = 5 if name.startswith("digits") else 3
        t0 = time.perf_counter()
        row = run_workload(name, specs[name], repeats)
        print(f"  {name}: done in {time.perf_counter() - t0:.1f} s", flush=True)
        rows.append((row, repeats))
    if limiter is not None:
        limiter.restore_original_limits()

    reps = sorted({r for _, r in rows})
    print_table([row for row, _ in rows], "/".join(map(str, reps)))
    print(f"\ntotal wall time {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
