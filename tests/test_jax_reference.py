"""The benchmark suite's JAX loop (benchmarks/suite/jax_ref.py) computes
scikit-learn's training: one epoch, same initial weights and batches, float64.
Skips without jax (the suite's JAX column is optional, as is jax)."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite import jax_ref  # noqa: E402


def test_one_epoch_matches_sklearn():
    assert jax_ref.check_one_epoch() < 1e-10


def test_the_check_sees_a_different_l2_term():
    # the same epoch with another alpha than scikit-learn's moves the weights
    # far beyond the check's tolerance: the check compares what it claims to
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    params = dict(hidden_layer_sizes=(6,), solver="adam", batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = MLPClassifier(**params, alpha=1e-4, shuffle=False, max_iter=1,
                           random_state=0).fit(X, y)
    loop = jax_ref.JaxLoop(threads=None)
    loop.load(X, y)
    same = loop.fit(dict(params, alpha=1e-4), 1, shuffle=False)[1]
    other = loop.fit(dict(params, alpha=1.0), 1, shuffle=False)[1]
    assert np.max(np.abs(same[0] - sk.coefs_[0])) < 1e-12
    assert np.max(np.abs(other[0] - sk.coefs_[0])) > 1e-6


def test_worker_process_answers():
    from suite.worker import Worker

    with Worker("jax", 1) as w:
        assert w.info["backend"] == "cpu"
        assert w.call("check") < 1e-10


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two usable CPUs")
def test_one_thread_worker_runs_on_one_cpu():
    # XLA ignores thread-count flags; the worker pins itself instead (its
    # own sched_getaffinity, read inside the worker after the pinning)
    from suite.worker import Worker

    with Worker("jax", 1) as w:
        assert w.info["cpus"] == 1
