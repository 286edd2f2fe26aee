"""The memory runner: peak memory of one epoch of fit, measured two ways.

scikit-learn and cymlp are measured in the suite's process. PyTorch is
measured in a worker process of its own (``suite/worker.py``), by that
process's RSS growth during one fit (tracemalloc does not see torch's
allocator): there, memory that the other libraries' fits freed cannot be
reused and hide torch's allocations, and torch's allocator and threads stay
out of the suite's process.
"""

import gc
import tracemalloc

import numpy as np

from .libs import CyMLP, SkMLP
from .measure import fit_model
from .rss import rss_growth
from .worker import data_file, open_worker


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


def torch_rss_growth(others, X, y, params):
    """The RSS growth of one epoch of the PyTorch loop, in a worker of its own.

    Parameters
    ----------
    others : libs.Others
        Its ``threads`` are the worker's.
    X, y : ndarray
        The row's data, loaded into the worker before the fit.
    params : dict
        The MLP parameters of the fit.

    Returns
    -------
    growth : int or None
        Bytes (None where /proc cannot be read, or when the worker failed).
    note : str or None
        Why there is no torch row, when the worker failed.
    """
    worker, answers, note = open_worker(
        "torch", others.threads, ("load", data_file("mnist-f32", X, y)),
        ("warm", params, ("eager",)),  # first-call costs, as the other libraries' warm-up
        ("fit_rss", params, 1))
    if worker is None:
        return None, note
    worker.close()
    return answers[-1], None


def run_memory(spec, data, quick, repeats, others):
    X, y = data.get("mnist-f32")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    w = min(len(X), 1000)
    libs = [("sklearn", SkMLP), ("cymlp", CyMLP)]
    for _, cls in libs:  # warm-up on a slice
        fit_model(cls, X[:w], y[:w], params, 1)
    fits = {lib: (lambda cls=cls: fit_model(cls, X, y, params, 1)) for lib, cls in libs}
    # Control: Fortran-ordered X makes cymlp copy X once (it trains on C rows):
    # shows that both measures do see a copy of X when there is one.
    XF = np.asfortranarray(X)
    fits["cymlp, F-ordered X (control: one copy)"] = (
        lambda: fit_model(CyMLP, XF, y, params, 1))
    result = {}
    for lib, fn in fits.items():
        rss = rss_growth(fn)
        result[lib] = (traced_peak(fn), rss)
    if others.torch:
        growth, note = torch_rss_growth(others, X, y, params)
        if note is None:
            result["torch"] = (None, growth)
        else:
            print(f"  {spec.name}: {note}")
    # the table's order as before: the control row last
    order = ["sklearn", "cymlp", "torch", "cymlp, F-ordered X (control: one copy)"]
    return [("memory", spec, X.nbytes, {lib: result[lib] for lib in order if lib in result})]
