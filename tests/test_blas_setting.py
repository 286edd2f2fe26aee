"""The user's BLAS setting is theirs: the engine never changes it, and obeys it.

The engine computes in a private, single-threaded copy of OpenBLAS (see
``src/cymlp/_engine/csrc/blas.h``). These tests hold it to that from the outside, with
threadpoolctl as a user would: the thread counts of the BLAS libraries numpy
and scipy load never change, not even while fits and predictions run in
several threads; lbfgs fits running side by side in threads (whose minimiser
computes in scipy's BLAS at the user's setting) are the same bits as serial
ones; and a ``threadpool_limits`` entered in the main thread limits the
engine's teams in joblib's threading workers.
"""

import os
import threading

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_info, threadpool_limits

import cymlp
from cymlp import _engine
from cymlp._engine import _testing


# the threaded runs must really run teams, busy machine or not
pytestmark = pytest.mark.usefixtures("teams_whatever_the_load")


def _user_blas():
    """(library file, thread count) of every BLAS but the engine's own."""
    private = os.path.realpath(_engine.PRIVATE_BLAS_PATH)
    return sorted(
        (info["filepath"], info["num_threads"]) for info in threadpool_info()
        if info["user_api"] == "blas" and os.path.realpath(info["filepath"]) != private
    )


def _data(seed, n=600, d=96):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, :4].sum(axis=1) > 0).astype(int) + (X[:, 4] > 0)
    return X, y


def _fit(X, y, seed, solver):
    # a hidden layer wide enough that every product forms a team
    return cymlp.MLPClassifier(hidden_layer_sizes=(256,), solver=solver, max_iter=15,
                               random_state=seed).fit(X, y)


def _same_model(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(u, v)


def test_engine_blas_is_private_and_single_threaded():
    """The engine's BLAS is another library than the user's, at one thread."""
    private = os.path.realpath(_engine.PRIVATE_BLAS_PATH)
    infos = [i for i in threadpool_info() if os.path.realpath(i["filepath"]) == private]
    assert len(infos) == 1 and infos[0]["num_threads"] == 1
    assert all(os.path.realpath(path) != private for path, _ in _user_blas())


def test_concurrent_fits_never_touch_the_user_setting(global_random_seed):
    """Fits (adam, lbfgs) and predictions in four threads at once: a watcher
    polling threadpoolctl sees the user's BLAS thread counts unchanged at every
    moment, and afterwards they are exactly what they were."""
    before = _user_blas()
    X, y = _data(global_random_seed)
    seen, stop, errors = set(), threading.Event(), []

    def watch():
        while not stop.is_set():
            seen.add(tuple(_user_blas()))

    def work(i):
        try:
            est = _fit(X, y, global_random_seed + i, "lbfgs" if i % 2 else "adam")
            for _ in range(5):
                est.predict_proba(np.repeat(X, 20, axis=0))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    watcher.join()
    assert not errors, errors
    assert seen == {tuple(before)}
    assert _user_blas() == before


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_fits_in_threads_equal_serial_fits(solver, global_random_seed):
    """lbfgs (and adam) fits running side by side in three threads give the
    same bits as the same fits run one after another."""
    X, y = _data(global_random_seed)
    seeds = [global_random_seed + i for i in range(3)]
    serial = [_fit(X, y, s, solver) for s in seeds]
    threaded = [None] * len(seeds)

    def work(i):
        threaded[i] = _fit(X, y, seeds[i], solver)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(seeds))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for a, b in zip(serial, threaded):
        _same_model(a, b)


def test_user_limits_above_one_do_not_reach_the_private_blas(global_random_seed):
    """threadpoolctl's limits reach every OpenBLAS in the process, the
    engine's too: an engine call puts its own back to one thread, so a fit
    inside ``threadpool_limits(4)`` is the same bits as outside it, and on
    leaving, threadpoolctl restores every library as it found it."""
    X, y = _data(global_random_seed)
    reference = _fit(X, y, global_random_seed, "adam")
    before = _user_blas()
    with threadpool_limits(4):
        limited = _fit(X, y, global_random_seed, "adam")
    _same_model(reference, limited)
    assert _user_blas() == before
    test_engine_blas_is_private_and_single_threaded()


def test_main_thread_limit_reaches_joblib_threading_workers(global_random_seed):
    """``threadpool_limits(1)`` entered in the main thread around a joblib
    search with the threading backend: the fits in the workers start no team
    of more than one thread (without the limit they do, where there are two
    cores to use), and their weights are the same bits."""
    joblib = pytest.importorskip("joblib")
    X, y = _data(global_random_seed)
    seeds = [global_random_seed, global_random_seed + 1]

    def search():
        return joblib.Parallel(n_jobs=2, backend="threading")(
            joblib.delayed(_fit)(X, y, s, "adam") for s in seeds)

    _testing._thread_stats()
    free = search()
    _, free_team = _testing._thread_stats()
    with threadpool_limits(1):
        limited = search()
        _, limited_team = _testing._thread_stats()
    assert limited_team <= 1
    if _engine.OPENMP and (os.cpu_count() or 1) >= 4:
        # two concurrent fits share the budget: teams need four threads
        assert free_team >= 2
    for a, b in zip(free, limited):
        _same_model(a, b)
