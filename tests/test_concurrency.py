"""Threads: shared fitted models, parallel fits, and the GIL.

* predict / predict_proba from 8 threads at once on one fitted model give
  exactly the serial results (the forward pass keeps no state in the model);
* separate models fitted in parallel threads equal their serial fits, bit for
  bit (the engine has no global state);
* a fit running in one thread leaves the GIL to the others while its epochs
  run: a pure-Python counter keeps counting. That is measured as a ratio of
  counting rates (during the fit / alone), never as an absolute time.

BLAS is limited to one thread, so that results are reproducible and the
threads here, not BLAS's, are what runs in parallel.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

import cymlp


pytestmark = pytest.mark.usefixtures("one_blas_thread", "quiet")


def _data(seed, n=600, n_features=20, n_classes=4):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    y = np.argmax(X[:, :n_classes] + 0.5 * rng.normal(size=(n, n_classes)), axis=1)
    return X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_predictions_from_8_threads_equal_serial(dtype, global_random_seed):
    X, y = _data(global_random_seed)
    X = X.astype(dtype)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=20,
                              random_state=global_random_seed).fit(X, y)
    rng = np.random.RandomState(global_random_seed)
    # inputs of many shapes: whole X (several predict chunks), slices, single
    # rows, a sparse copy, a non-contiguous view, float64 on float32 weights
    inputs = [X, X[:1], X[: 257], X[::3], sp.csr_matrix(X * (rng.uniform(size=X.shape) < 0.3)),
              np.asfortranarray(X), X.astype(np.float64)]
    serial = [(est.predict(Z), est.predict_proba(Z)) for Z in inputs]

    barrier = threading.Barrier(8)

    def work(k):
        barrier.wait()  # all threads inside predict together
        out = []
        for rep in range(6):
            i = (k + rep) % len(inputs)
            out.append((i, est.predict(inputs[i]), est.predict_proba(inputs[i])))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for out in results:
        for i, labels, proba in out:
            assert_array_equal(labels, serial[i][0])
            assert_array_equal(proba, serial[i][1])


def _configs(seed):
    base = dict(hidden_layer_sizes=(16, 8), max_iter=8, batch_size=32)
    return [
        ("clf", dict(base, solver="adam", random_state=seed), np.float64),
        ("clf", dict(base, solver="sgd", random_state=seed + 1), np.float32),
        ("clf", dict(base, solver="lbfgs", random_state=seed + 2), np.float64),
        ("reg", dict(base, solver="adam", random_state=seed + 3), np.float32),
        ("reg", dict(base, solver="sgd", early_stopping=True, random_state=seed + 4),
         np.float64),
        ("clf", dict(base, solver="adam", activation="tanh", random_state=seed + 5),
         np.float32),
    ]


def _fit(kind, params, dtype, X, y):
    if kind == "clf":
        return cymlp.MLPClassifier(**params).fit(X.astype(dtype), y)
    return cymlp.MLPRegressor(**params).fit(X.astype(dtype), X[:, 0] - 2 * X[:, 1])


def test_parallel_fits_equal_serial_fits(global_random_seed):
    X, y = _data(global_random_seed, n=400)
    configs = _configs(global_random_seed)
    serial = [_fit(kind, p, dt, X, y) for kind, p, dt in configs]
    barrier = threading.Barrier(len(configs))

    def work(cfg):
        barrier.wait()
        return _fit(*cfg, X, y)

    with ThreadPoolExecutor(max_workers=len(configs)) as pool:
        parallel = list(pool.map(work, configs))
    for s, p in zip(serial, parallel):
        assert s.n_iter_ == p.n_iter_
        for a, b in zip(s.coefs_ + s.intercepts_, p.coefs_ + p.intercepts_):
            assert_array_equal(a, b)
        if hasattr(s, "loss_curve_"):
            assert_array_equal(s.loss_curve_, p.loss_curve_)


def test_fit_while_other_threads_predict(global_random_seed):
    # a model being fitted in one thread and another model predicting in
    # others: neither disturbs the other
    X, y = _data(global_random_seed, n=400)
    fitted = cymlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=10,
                                 random_state=global_random_seed).fit(X, y)
    expected = fitted.predict_proba(X)
    params = dict(hidden_layer_sizes=(16, 8), max_iter=15, random_state=global_random_seed)
    reference = cymlp.MLPClassifier(**params).fit(X, y)
    done = threading.Event()
    mismatches = []

    def predictor():
        while not done.is_set():
            if not np.array_equal(fitted.predict_proba(X), expected):
                mismatches.append(1)

    threads = [threading.Thread(target=predictor) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        est = cymlp.MLPClassifier(**params).fit(X, y)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not mismatches
    for a, b in zip(est.coefs_ + est.intercepts_, reference.coefs_ + reference.intercepts_):
        assert_array_equal(a, b)


def _watch(fn):
    """Run fn in a worker thread while this thread spins in pure Python.

    Returns (longest stall of this thread, fn's duration, spins). A stall is
    the time between two consecutive spins: this thread waiting for the GIL
    (or for a core).
    """
    done = [False]
    result = {}

    def work():
        t0 = time.perf_counter()
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - reported by the caller
            result["error"] = exc
        finally:
            result["duration"] = time.perf_counter() - t0
            done[0] = True

    worker = threading.Thread(target=work)
    last = time.perf_counter()
    stall = 0.0
    spins = 0
    worker.start()
    while not done[0]:
        now = time.perf_counter()
        stall = max(stall, now - last)
        last = now
        spins += 1
    worker.join()
    assert "error" not in result, result.get("error")
    return stall, result["duration"], spins


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_fit_releases_the_gil(solver, global_random_seed):
    # While a fit runs in a worker thread, this thread spins in pure Python
    # and records its longest stall. A compiled call that kept the GIL would
    # stall it for the whole call: at least one epoch (checked below with
    # list.sort, which holds the GIL). Epochs that release the GIL stall it
    # only in the short Python gaps between epochs (the switch interval) or
    # when the OS takes the core away. The assertion compares the stall with
    # the epoch's own duration (a ratio, not an absolute time).
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(12000, 100))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    n_epochs = 3
    est = cymlp.MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=n_epochs,
                              solver=solver, tol=0, n_iter_no_change=1000,
                              random_state=global_random_seed)

    stall, duration, spins = _watch(lambda: est.fit(X, y))
    assert est.n_iter_ == n_epochs
    epoch = duration / n_epochs
    assert spins > 0
    assert stall < 0.5 * epoch, (
        f"a pure-Python thread stalled for {stall:.3f} s during a fit whose "
        f"epochs take {epoch:.3f} s: the epochs seem to hold the GIL")

    # the control: a call of about the same length that holds the GIL does
    # stall the spinning thread for most of its duration
    data = rng.uniform(size=int(3e6)).tolist()
    stall_held, duration_held, _ = _watch(lambda: sorted(data))
    assert stall_held > 0.5 * duration_held
