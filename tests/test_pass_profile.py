"""The engine's pass timer (benchmarks/profile_passes.py): off unless turned
on, counts every kind of work of a training epoch when on, and never moves a
bit."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import _engine
from cymlp._engine import _testing


@pytest.fixture
def timer_off():
    # (teams whatever the machine's load, so that the timer runs on two threads)
    _testing._contention(adapt=False)
    _testing._pass_profile(enable=False)
    yield
    _testing._pass_profile(enable=False)
    _testing._contention(adapt=True)


def _fit(X, y, threads):
    est = cymlp.MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, max_iter=2,
                              random_state=0)
    with threadpool_limits(limits=threads, user_api="openmp"):
        _testing._thread_stats()
        est.fit(X, y)
        teams = _testing._thread_stats()[0]
    if threads > 1 and _engine.OPENMP:
        assert teams > 0  # the passes ran on a team (several chunks each)
    return np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_timer_counts_the_passes_and_moves_no_bit(timer_off, dtype):
    rng = np.random.default_rng(0)
    X = rng.random((1000, 784)).astype(dtype)  # MNIST-shaped: 4 chunks a pass
    y = rng.integers(0, 3, 1000)
    off = _fit(X, y, 2)
    found = _testing._pass_profile(enable=True)
    assert set(found) == set(_testing.PROFILE_KINDS)
    assert all(s == 0 for times in found.values() for s in times)  # it was off
    on = _fit(X, y, 2)
    found = _testing._pass_profile(enable=False)
    np.testing.assert_array_equal(on, off)
    for kind in ("gather", "forward_gemm", "loss", "gradient_gemm", "step", "call"):
        assert found[kind][0] > 0, kind
    # the leader's kinds add up to no more than its calls
    assert sum(found[k][0] for k in _testing.PROFILE_KINDS if k != "call") <= found["call"][0]
    _fit(X, y, 1)
    assert all(s == 0 for times in _testing._pass_profile().values() for s in times)


@pytest.mark.parametrize("chunked", [False, True])
def test_products_hook(chunked):
    seconds = _testing._products([64, 32, 8], 96, 3, "float32", chunked)
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, rows", [(1000, 64), (1000, 200), (7, 7), (5, 9)])
def test_gather_hook_copies_the_rows_of_the_order(dtype, n, rows):
    # the row pass's copy, against numpy's fancy indexing: minibatch after
    # minibatch into one buffer, which ends holding the last one
    rng = np.random.default_rng()
    X = rng.standard_normal((n, 13)).astype(dtype)
    order = rng.permutation(n)
    out = np.full((rows, 13), np.nan, dtype=dtype)
    seconds = _testing._gather_seconds(X, order, out)
    assert np.isfinite(seconds) and seconds >= 0
    last = n - (n - 1) // rows * rows
    np.testing.assert_array_equal(out[:last], X[order[-last:]])


def test_gather_hook_refuses_what_would_read_outside_X():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="outside"):
        _testing._gather_seconds(X, np.array([0, 10], dtype=np.intp), np.empty((4, 3)))
    with pytest.raises(ValueError, match="outside"):
        _testing._gather_seconds(X, np.array([-1], dtype=np.intp), np.empty((4, 3)))
    with pytest.raises(ValueError, match="columns"):
        _testing._gather_seconds(X, np.arange(10, dtype=np.intp), np.empty((4, 2)))
    with pytest.raises(ValueError, match="at least one row"):
        _testing._gather_seconds(X, np.arange(10, dtype=np.intp), np.empty((0, 3)))
    with pytest.raises(ValueError):  # another dtype than X's
        _testing._gather_seconds(X, np.arange(10, dtype=np.intp),
                                 np.empty((4, 3), dtype=np.float32))
