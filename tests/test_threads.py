"""Threads: the same bits with any number of threads.

The engine splits every pass into chunks fixed by the shapes and lets the
threads pick chunks (see DESIGN.md, "Every core, same bits"), so a fit and a
prediction must give exactly the same ``coefs_``, ``intercepts_``,
``loss_curve_`` and outputs with 1, 2, 3, 4 and 8 threads, whether the count
comes from threadpoolctl in this process or from ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` in a fresh one. The reference is the one-thread
result. The shapes are large enough that the parallel passes really run:
the engine's test hook counts the parallel regions it started.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import _engine
from cymlp._engine import _testing

THREADS = [1, 2, 3, 4, 8]


# the threaded runs must really run teams, busy machine or not
pytestmark = pytest.mark.usefixtures("teams_whatever_the_load")

# 256 features and 128 hidden units in batches of 256: each big product holds
# several chunks, and so do the activations and the optimizer step.
N_SAMPLES, N_FEATURES, HIDDEN, BATCH = 768, 256, (128,), 256

CONFIGS = {
    "adam": dict(solver="adam"),
    "sgd": dict(solver="sgd", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
    "early_stopping": dict(solver="adam", early_stopping=True, n_iter_no_change=99),
    "dropout": dict(solver="adam", dropout=0.3),
    # the recipe of #23: adam at the schedule's rate per epoch, smoothed targets
    "cosine_label_smoothing": dict(solver="adam", learning_rate="cosine", warmup_iters=1,
                                   min_learning_rate=1e-5, label_smoothing=0.1),
    "sgd_cosine": dict(solver="sgd", learning_rate_init=0.01, learning_rate="cosine",
                       warmup_iters=1),
    # #23: AdamW's decay pass, and clipping's norm pass (a norm small enough
    # that every step clips) before adam's and sgd's steps
    "adamw_clipped": dict(solver="adamw", weight_decay=0.1, max_grad_norm=0.05),
    "sgd_clipped": dict(solver="sgd", learning_rate_init=0.01, max_grad_norm=0.05),
}


def _data(seed, dtype, sparse=False, regression=False):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(dtype)
    if sparse:
        X[rng.uniform(size=X.shape) < 0.7] = 0
        X = sp.csr_matrix(X)
    if regression:
        y = X[:, :3] @ rng.normal(size=(3, 2)) if not sparse else X[:, :3].toarray() @ rng.normal(size=(3, 2))
    else:
        y = rng.randint(0, 5, size=N_SAMPLES)
    return X, y


def _limits(n, config):
    """Limit the engine to n threads. lbfgs: OpenMP's count only -- scipy's
    L-BFGS-B does its own vector arithmetic in scipy's BLAS at the user's
    setting (as scikit-learn's does), whose multi-threaded dot products round
    differently with the BLAS thread count; the engine never changes that
    setting (tests/test_blas_setting.py), so the comparison holds it fixed and
    varies the engine's threads alone. Every other solver: both APIs, as a
    user's ``threadpool_limits(n)``."""
    if config == "lbfgs":
        return threadpool_limits(n, user_api="openmp")
    return threadpool_limits(n)


def _fit(config, X, y, seed, regression=False, max_iter=3):
    cls = cymlp.MLPRegressor if regression else cymlp.MLPClassifier
    est = cls(hidden_layer_sizes=HIDDEN, batch_size=BATCH, max_iter=max_iter, random_state=seed,
              **CONFIGS[config])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est


def _outputs(est, X):
    """Everything that must not depend on the thread count."""
    out = {"coefs": est.coefs_, "intercepts": est.intercepts_,
           "loss_curve": est.loss_curve_ if hasattr(est, "loss_curve_") else [est.loss_],
           "predict": est.predict(X)}
    if hasattr(est, "predict_proba"):
        out["proba"] = est.predict_proba(X)
    if getattr(est, "validation_scores_", None) is not None:
        out["validation"] = est.validation_scores_
    return out


def _assert_same(got, ref, label):
    assert got.keys() == ref.keys()
    for key in ref:
        if isinstance(ref[key], list) and ref[key] and isinstance(ref[key][0], np.ndarray):
            for a, b in zip(got[key], ref[key]):
                assert_array_equal(a, b, err_msg=f"{label}: {key}", strict=True)
        else:
            assert_array_equal(np.asarray(got[key]), np.asarray(ref[key]),
                               err_msg=f"{label}: {key}", strict=True)


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_classifier_same_bits_any_thread_count(config, dtype, sparse, global_random_seed):
    X, y = _data(global_random_seed, dtype, sparse)
    results = {}
    for n in THREADS:
        with _limits(n, config):
            _testing._thread_stats()
            est = _fit(config, X, y, global_random_seed)
            results[n] = _outputs(est, X)
            regions, team = _testing._thread_stats()
        if n == 1:
            assert regions == 0
        else:
            # the parallel passes ran, on more than one thread and no more
            # than allowed (a pass never takes more threads than its chunks)
            assert regions > 0 and 2 <= team <= n, (n, regions, team)
    for n in THREADS[1:]:
        _assert_same(results[n], results[1], f"{n} threads")


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.parametrize("config", ["adam", "lbfgs", "early_stopping"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_regressor_same_bits_any_thread_count(config, dtype, global_random_seed):
    X, y = _data(global_random_seed, dtype, regression=True)
    results = {}
    for n in THREADS:
        with _limits(n, config):
            results[n] = _outputs(_fit(config, X, y, global_random_seed, regression=True), X)
    for n in THREADS[1:]:
        _assert_same(results[n], results[1], f"{n} threads")


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_predict_same_bits_any_thread_count(dtype, global_random_seed):
    X, y = _data(global_random_seed, dtype)
    with threadpool_limits(1):
        est = _fit("adam", X, y, global_random_seed)
    # many predict chunks (small chunk_rows) and one big chunk
    big = np.repeat(X, 4, axis=0)
    coefs = [c for c in est.coefs_]
    net = _engine.Network([N_FEATURES, *HIDDEN, 5], "relu", "softmax", "log_loss")
    with threadpool_limits(1):
        refs = [net.predict(big, coefs, est.intercepts_, chunk_rows=c) for c in (300, 5000)]
    for n in THREADS[1:]:
        with threadpool_limits(n):
            _testing._thread_stats()
            for c, ref in zip((300, 5000), refs):
                assert_array_equal(net.predict(big, coefs, est.intercepts_, chunk_rows=c), ref)
            assert _testing._thread_stats()[0] > 0


def test_threadpool_limits_one_makes_fit_serial():
    X, y = _data(0, np.float64)
    with threadpool_limits(1):
        _testing._thread_stats()
        _fit("adam", X, y, 0)
        assert _testing._thread_stats() == (0, 0)


_SUBPROCESS_FIT = """
import json, sys, warnings
import numpy as np
sys.path.insert(0, {tests!r})
import test_threads as t
out = {{}}
for config in ("adam", "lbfgs"):
    for dtype in (np.float32, np.float64):
        X, y = t._data(0, dtype)
        est = t._fit(config, X, y, 0)
        r = t._outputs(est, X)
        out[config + np.dtype(dtype).name] = {{k: (np.concatenate([np.ravel(a) for a in v]).tobytes().hex()
                                 if isinstance(v, list) and isinstance(v[0], np.ndarray)
                                 else np.asarray(v).tobytes().hex()) for k, v in r.items()}}
from cymlp import _engine
from cymlp._engine import _testing
out["threads"] = _engine._EngineCall().__enter__().threads
print(json.dumps(out))
"""


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
def test_same_bits_under_environment_thread_settings():
    """OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set before Python starts."""
    code = _SUBPROCESS_FIT.format(tests=os.path.dirname(__file__))
    results = {}
    for n in (1, 2, 3, 8):
        env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n))
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        results[n] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert results[n].pop("threads") == n
    for n in (2, 3, 8):
        assert results[n] == results[1], f"OMP_NUM_THREADS={n}"


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: a budget of one")
def test_concurrent_engine_calls_share_the_budget():
    with threadpool_limits(4, user_api="openmp"):
        with _engine._EngineCall() as first:
            with _engine._EngineCall() as second:
                assert second.threads == 2
            assert first.threads == 4
        with _engine._EngineCall() as alone:
            assert alone.threads == 4


_SUBPROCESS_COMPETITOR = """
import json, os, resource, subprocess, sys, time
cpu = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {cpu})
from cymlp._engine import _testing
if _testing._thread_preemptions() is None:
    print(json.dumps(None)); sys.exit()
# a busy process on the same CPU (children inherit the affinity)
busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
time.sleep(0.2)
def python_count():
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
try:
    before = python_count()
    engine_before = _testing._thread_preemptions()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pass
    engine_after = _testing._thread_preemptions()
    after = python_count()
finally:
    busy.kill()
    busy.wait()
print(json.dumps(dict(before=before, after=after, engine_before=engine_before,
                      engine_after=engine_after)))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_preemption_count_sees_a_competitor_on_the_same_cpu():
    """The busy-machine adaptation's signal: a thread that shares its CPU with
    a busy process is taken off it involuntarily, and the engine's count
    (csrc/platform.h) reads the same counter as Python's getrusage, in
    between its two readings. On aarch64 under qemu too, where the
    preemption test below cannot find its rate (emulation slows the engine's
    calls, not the counting)."""
    proc = subprocess.run([sys.executable, "-c", _SUBPROCESS_COMPETITOR], capture_output=True,
                          text=True, check=True, timeout=120)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if r is None:
        pytest.skip("this platform does not count involuntary context switches")
    assert r["before"] <= r["engine_before"] <= r["engine_after"] <= r["after"], r
    assert r["engine_after"] > r["engine_before"], r


_SUBPROCESS_ONE_CPU = """
import json, os, sys, warnings
os.sched_setaffinity(0, {{0}})  # before any thread starts: the team shares one CPU
import numpy as np
from threadpoolctl import threadpool_limits
sys.path.insert(0, {tests!r})
import test_threads as t
from cymlp import _engine
from cymlp._engine import _testing
X, y = t._data(0, np.float64)
with threadpool_limits(1):
    ref = t._outputs(t._fit("adam", X, y, 0, max_iter=40), X)
def flat(r):
    return {{k: np.concatenate([np.ravel(a) for a in v]) if isinstance(v, list)
             else np.asarray(v) for k, v in r.items()}}
ref = flat(ref)
regions, same = {{}}, True
for adapt in (False, True):
    _testing._contention(adapt=adapt)
    with threadpool_limits(2):
        _testing._thread_stats()
        got = flat(t._outputs(t._fit("adam", X, y, 0, max_iter=40), X))
        regions[adapt] = _testing._thread_stats()[0]
    same = same and all(np.array_equal(got[k], ref[k]) for k in ref)
found = _testing._contention()
print(json.dumps(dict(off=regions[False], on=regions[True], found=found, same=same)))
"""


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_preempted_teams_send_calls_to_one_thread():
    """Two threads pinned to one CPU preempt each other: the engine notices
    (the threads' involuntary context switches), runs the following epochs on
    one thread, and the results stay those of one thread."""
    code = _SUBPROCESS_ONE_CPU.format(tests=os.path.dirname(__file__))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["same"], result
    assert result["found"] >= 1, result
    # a team per engine call without the adaptation; with it, the calls after
    # a preempted team ran on one thread (fewer than half of them had teams)
    assert 1 <= result["on"] <= result["off"] // 2, result


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("config", ["adam", "dropout", "lbfgs"])
def test_sample_weight_same_bits_any_thread_count(config, sparse, global_random_seed):
    """Weighted rows, two hidden layers: the row pass reads targets and weights
    through the shuffled order, and the hidden deltas pass through a second
    hidden layer."""
    X, y = _data(global_random_seed, np.float64, sparse)
    w = np.random.default_rng(global_random_seed).uniform(0, 2, X.shape[0])
    results = {}
    for n in (1, 2, 3):
        with _limits(n, config):
            _testing._thread_stats()
            est = cymlp.MLPClassifier(hidden_layer_sizes=(128, 64), batch_size=BATCH, max_iter=3,
                                      random_state=global_random_seed, **CONFIGS[config])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y, sample_weight=w)
            results[n] = _outputs(est, X)
            if n > 1:
                assert _testing._thread_stats()[0] > 0
    for n in (2, 3):
        _assert_same(results[n], results[1], f"{n} threads")


def test_contention_episode_ends_within_its_time():
    """A machine found busy sends the next calls to one thread, twice as many
    after each trial team that is still preempted (up to 64), but an episode
    ends half a second after its finding however many calls it had left: a
    machine that was busy for a moment gets its teams back at once, not
    after 64 epochs (13 s of MNIST-sized ones). A calm trial resets the
    count, so a lone burst costs one call."""
    import time

    _testing._contention(adapt=True)  # forget earlier findings
    _testing._contention_episode()  # and the count of calls sent serial so far
    try:
        busy, calm = (1000, 0.01), (0, 0.01)
        # a lone burst: one call on one thread, then teams again
        assert _testing._contention_episode(*busy) == (True, True, 1)
        assert _testing._contention_episode() == (None, False, 0)
        # a calm trial resets the count: the next finding sends one call again
        assert _testing._contention_episode(*calm)[:2] == (False, False)
        assert _testing._contention_episode(*busy)[:2] == (True, True)
        assert not _testing._contention_episode()[1]
        # a machine that stays busy: 2, 4, ... 64 calls per episode
        for _ in range(6):
            _testing._contention_episode(*busy)
        sends = [_testing._contention_episode()[1] for _ in range(40)]
        assert all(sends), "the episode's calls run on one thread"
        # ... until its time is up, with 23 of its 64 calls left
        time.sleep(0.6)
        assert not _testing._contention_episode()[1]
        assert not _testing._contention_episode()[1]
    finally:
        _testing._contention(adapt=False)  # as the teams_whatever_the_load fixture expects
