"""The peak resident set size of a call, in the process that makes it.

Shared by the memory runner (``memory.py``: scikit-learn and cymlp in the
suite's process) and the PyTorch worker (``torch_ref.TorchLoop.fit_rss``): it
imports neither library, so a worker can measure its own process with it.
"""

import gc
import threading
import time


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
