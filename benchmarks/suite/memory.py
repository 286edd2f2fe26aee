"""The memory runner: peak memory of one epoch of fit, measured two ways."""

import gc
import threading
import time
import tracemalloc

import numpy as np

from .libs import CyMLP, SkMLP
from .measure import fit_model
from .torch_ref import torch_fit


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


def run_memory(spec, data, quick, repeats, others):
    X, y = data.get("mnist-f32")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    w = min(len(X), 1000)
    libs = [("sklearn", SkMLP), ("cymlp", CyMLP)]
    for _, cls in libs:  # warm-up on a slice
        fit_model(cls, X[:w], y[:w], params, 1)
    fits = {lib: (lambda cls=cls: fit_model(cls, X, y, params, 1)) for lib, cls in libs}
    if others.torch:
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
