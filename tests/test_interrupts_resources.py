"""Ctrl-C during a fit, and memory over many fits.

KeyboardInterrupt: each scenario runs in a child interpreter, which sends
SIGINT to its own main thread from a watcher thread once the fit has run a
few epochs (a real Ctrl-C reaches a process the same way). Running it in a
child keeps a stray KeyboardInterrupt from ever reaching pytest. The child
reports, as JSON, what the parent asserts:

* the fit raised KeyboardInterrupt, after the warning "Training interrupted
  by user." (scikit-learn warns and swallows the interrupt; cymlp warns the
  same way and lets it through, so a Ctrl-C stops a whole grid search);
* it stopped within about one epoch of the signal (epochs counted, not time);
* the estimator is consistent: finite weights, a loss curve as long as n_iter_,
  predict and predict_proba working, and training can go on (warm_start).

Memory: 1,000 small fits and predictions, then the growth of the C heap
(glibc's mallinfo2, which sees the engine's malloc'd tables), of the memory
traced by tracemalloc (Python objects and numpy buffers) and of the RSS.
"""

import ctypes
import gc
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cymlp

_CHILD = textwrap.dedent(r"""
    import json, signal, sys, threading, time, warnings
    import numpy as np
    from threadpoolctl import threadpool_limits
    import cymlp

    scenario, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.RandomState(seed)
    # epochs of some tens of milliseconds: far longer than the watcher needs
    # between reading n_iter_ and sending the signal
    X = rng.normal(size=(6000, 50))
    y = rng.randint(3, size=6000)  # noise: nothing converges early
    params = dict(hidden_layer_sizes=(128,), max_iter=100000, tol=0.0,
                  n_iter_no_change=100000, random_state=seed)
    if scenario == "adam":
        est = cymlp.MLPClassifier(solver="adam", **params)
    elif scenario == "sgd-float32":
        est = cymlp.MLPClassifier(solver="sgd", **params)
        X = X.astype(np.float32)
    elif scenario == "early_stopping":
        est = cymlp.MLPClassifier(solver="adam", early_stopping=True, **params)
    elif scenario == "regressor-sparse":
        est = cymlp.MLPRegressor(solver="adam", **params)
        X = __import__("scipy.sparse").sparse.random(6000, 50, density=0.2, format="csr",
                                                     random_state=seed)
        y = rng.normal(size=6000)
    elif scenario == "lbfgs":
        params.update(max_iter=10**6)
        est = cymlp.MLPClassifier(solver="lbfgs", max_fun=10**7, **params)
    else:
        raise SystemExit("unknown scenario " + scenario)

    # Ctrl-C as in an interactive session: Python's default handler (a child
    # keeps an ignored SIGINT from the process that started it)
    report = {"sent_at_epoch": None,
              "inherited_handler": str(signal.getsignal(signal.SIGINT))}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main = threading.main_thread().ident

    def watcher():
        # wait for a few epochs (lbfgs does not count them as it goes: a
        # short wait instead), then press Ctrl-C
        if scenario == "lbfgs":
            time.sleep(1.0)
        else:
            seen = {}
            while est.__dict__.get("n_iter_", 0) < 3 or "loss_curve_" not in est.__dict__:
                seen.setdefault(est.__dict__.get("n_iter_", 0), time.perf_counter())
                time.sleep(0.0005)
            seen.setdefault(3, time.perf_counter())
            # aim at the middle of the next epoch, inside its compiled call
            epoch = seen[3] - seen.get(2, seen[3])
            time.sleep(epoch / 2)
        report["sent_at_epoch"] = est.__dict__.get("n_iter_")
        signal.pthread_kill(main, signal.SIGINT)
        # a fit that goes on is a failure to report, not a hang
        time.sleep(300)
        print("REPORT-HANG " + json.dumps(report), flush=True)
        import os
        os._exit(3)

    threading.Thread(target=watcher, daemon=True).start()
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            est.fit(X, y)
            report["raised"] = None
        except KeyboardInterrupt:
            report["raised"] = "KeyboardInterrupt"
    report["warnings"] = [str(w.message) for w in records]
    report["n_iter"] = int(est.n_iter_)
    report["loss_curve_len"] = len(getattr(est, "loss_curve_", None) or [])
    report["finite_weights"] = bool(all(np.isfinite(w).all()
                                        for w in est.coefs_ + est.intercepts_))
    out = est.predict(X[:50])
    report["predict_ok"] = out.shape[0] == 50
    if hasattr(est, "predict_proba"):
        proba = est.predict_proba(X[:50])
        report["proba_ok"] = bool(np.isfinite(proba).all()
                                  and np.allclose(proba.sum(axis=1), 1))
    if scenario == "early_stopping":
        report["n_scores"] = len(est.validation_scores_)
    else:
        # the reference for the interrupted state: scikit-learn trained for
        # exactly n_iter_ epochs (and, to diagnose, one more)
        import sklearn.neural_network as sk_nn
        Sk = getattr(sk_nn, type(est).__name__)
        sk_params = {k: v for k, v in est.get_params().items()
                     if k in Sk().get_params() and k != "max_iter"}
        deviations = []
        for extra in (0, 1):
            with warnings.catch_warnings(), threadpool_limits(limits=1):
                warnings.simplefilter("ignore")
                sk = Sk(**sk_params, max_iter=max(est.n_iter_ + extra, 1)).fit(X, y)
            deviations.append(max(
                float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))
                for a, b in zip(sk.coefs_ + sk.intercepts_, est.coefs_ + est.intercepts_)))
        report["deviation_from_n_iter"], report["deviation_from_n_iter_plus_1"] = deviations
    # training goes on from the interrupted state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.set_params(warm_start=True, max_iter=2)
        est.fit(X, y)
    report["continued"] = bool(all(np.isfinite(w).all()
                                   for w in est.coefs_ + est.intercepts_))
    print("REPORT " + json.dumps(report))
""")


def _run_child(scenario, seed):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, scenario, str(seed)],
        capture_output=True, text=True, timeout=600,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, (
        f"child failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("REPORT "):])


@pytest.mark.parametrize("scenario", ["adam", "sgd-float32", "early_stopping",
                                      "regressor-sparse"])
def test_keyboard_interrupt_stops_fit_within_an_epoch(scenario, global_random_seed):
    r = _run_child(scenario, global_random_seed)
    assert r["raised"] == "KeyboardInterrupt", r
    assert "Training interrupted by user." in r["warnings"], r
    # stopped within about one epoch of the signal
    assert r["sent_at_epoch"] is not None and r["sent_at_epoch"] >= 3
    assert r["n_iter"] <= r["sent_at_epoch"] + 2, r
    # consistent state
    assert r["finite_weights"] and r["predict_ok"], r
    if "proba_ok" in r:
        assert r["proba_ok"], r
    # every per-epoch record agrees: the interrupt is held until the epoch
    # in progress has been recorded (even when it lands in the bookkeeping,
    # e.g. while the validation score is computed, which the watcher's
    # timing makes likely for early stopping)
    assert r["loss_curve_len"] == r["n_iter"], r
    if scenario == "early_stopping":
        assert r["n_scores"] == r["n_iter"], r
    else:
        # The weights are those of n_iter_ epochs: scikit-learn trained for
        # n_iter_ epochs is the reference. (A signal that arrives during an
        # epoch's compiled call is raised as soon as the call returns, before
        # n_iter_, t_, loss_curve_ and adam's step count record that epoch,
        # whose updates are already in the weights and the moments.)
        assert r["deviation_from_n_iter"] < 1e-5, (
            f"the interrupted model does not hold the weights of its n_iter_ = "
            f"{r['n_iter']} epochs (relative deviation from scikit-learn's "
            f"{r['deviation_from_n_iter']:.2e}; from n_iter_ + 1 epochs: "
            f"{r['deviation_from_n_iter_plus_1']:.2e})")
    assert r["continued"], r


def test_keyboard_interrupt_during_lbfgs(global_random_seed):
    # scikit-learn has no handler around lbfgs: the interrupt goes through
    # scipy unchanged. The model keeps its weights of before the fit.
    r = _run_child("lbfgs", global_random_seed)
    assert r["raised"] == "KeyboardInterrupt", r
    assert r["finite_weights"] and r["predict_ok"] and r["proba_ok"], r
    assert r["continued"], r


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------
class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _c_heap_probe():
    """Bytes in use on the C heap (glibc >= 2.33), or None elsewhere."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2

    def probe():
        gc.collect()
        m = mallinfo2()
        return m.uordblks + m.hblkhd
    return probe


def _rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _workload(seed):
    """Small fits and predictions through every engine path."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int)
    yr = X[:, 1] * 2
    Xs = sp.csr_matrix(np.where(np.abs(X) < 0.7, 0, X))
    X32 = X.astype(np.float32)
    calls = [
        lambda i: cymlp.MLPClassifier(hidden_layer_sizes=(5, 3), max_iter=10, batch_size=8,
                                      random_state=i).fit(X, y).predict_proba(X),
        lambda i: cymlp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, batch_size=8,
                                      solver="sgd", random_state=i).fit(X32, y).predict(X32),
        lambda i: cymlp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=10, batch_size=8,
                                     random_state=i).fit(Xs, yr).predict(Xs),
        lambda i: cymlp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, batch_size=8,
                                      early_stopping=True, validation_fraction=0.3,
                                      random_state=i).fit(X, y).predict(X[:3]),
        lambda i: cymlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, solver="lbfgs",
                                      random_state=i).fit(X, y).predict_proba(X[:1]),
    ]
    est = cymlp.MLPClassifier(hidden_layer_sizes=(5,), batch_size=8, random_state=seed)
    est.partial_fit(X, y, classes=[0, 1])
    calls.append(lambda i: est.partial_fit(X, y).predict(X))
    return calls


def test_repeated_fits_do_not_grow_memory(global_random_seed):
    calls = _workload(global_random_seed)
    heap = _c_heap_probe()

    def run(n, start):
        for i in range(start, start + n):
            calls[i % len(calls)](i)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(120, 0)  # warm-up: caches, lazy imports, allocator pools
        rss0 = _rss()
        heap0 = heap() if heap else None
        run(1000, 120)
        heap1 = heap() if heap else None
        rss1 = _rss()

        # Python-level allocations (objects, numpy buffers) over another 120
        tracemalloc.start()
        try:
            run(30, 2000)
            traced0 = tracemalloc.get_traced_memory()[0]
            run(120, 3000)
            gc.collect()
            traced1 = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    # a leak of one pointer table per epoch would be > 1 MB here, of one
    # allocation per fit > 30 KB
    if heap is not None:
        assert heap1 - heap0 < 64 * 1024, f"C heap grew by {heap1 - heap0} bytes"
    assert traced1 - traced0 < 64 * 1024, f"traced memory grew by {traced1 - traced0} bytes"
    assert rss1 - rss0 < 16 * 2**20, f"RSS grew by {(rss1 - rss0) / 2**20:.1f} MiB"


def test_repeated_predictions_do_not_grow_memory(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(600, 10))  # several predict chunks
    y = rng.randint(3, size=600)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=5,
                              random_state=global_random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    Xs = sp.csr_matrix(X)
    heap = _c_heap_probe()
    for _ in range(50):
        est.predict_proba(X)
        est.predict(Xs)
    heap0 = heap() if heap else None
    rss0 = _rss()
    for _ in range(1000):
        est.predict_proba(X)
        est.predict(Xs[:7])
    if heap is not None:
        assert heap() - heap0 < 64 * 1024
    assert _rss() - rss0 < 16 * 2**20
