"""Timing helpers shared by the runners: interleaved repeats, fixed-epoch fits."""

import gc
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning


def fixed_epochs(max_iter):
    """Parameters of a fit that runs exactly ``max_iter`` epochs (no convergence stop)."""
    return dict(max_iter=max_iter, tol=0.0, n_iter_no_change=max_iter + 1, random_state=0)


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


def max_coef_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(ca, np.float64) - np.asarray(cb, np.float64))))
        for ca, cb in zip(a.coefs_, b.coefs_)
    )
