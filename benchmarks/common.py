"""Shared by the benchmark suite: the data sets and the machine description.

Imported as a top-level module by the package ``suite`` of this directory,
which ``run.py`` runs (``python benchmarks/run.py``: the script's directory is
then on sys.path).
"""

import os
import platform

import numpy as np
import scipy
import scipy.linalg  # noqa: F401  (loads scipy's BLAS so threadpoolctl sees it)
import sklearn
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import StandardScaler

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover - reported in the header
    threadpool_info = threadpool_limits = None


# ----------------------------------------------------------------- data sets
def make_digits():
    """sklearn's bundled 8x8 digits (1797 x 64), standardized."""
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def make_breast_cancer():
    """sklearn's bundled breast cancer data (569 x 30, 2 classes), standardized."""
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def make_mnist_like(n_samples, seed=0):
    """A deterministic MNIST-shaped problem: n_samples x 784 in [0, 1], 10 classes.

    Each class has a 28x28 template made of four Gaussian "strokes". A sample
    is its class template at a random intensity, plus a fainter template of a
    random other class, plus noise, clipped to [0, 1] (about half the pixels
    end up exactly 0, as in MNIST). A (100,) network reaches roughly 70-75%
    held-out accuracy in a few epochs: the problem is learnable, not trivial.
    """
    rng = np.random.default_rng(seed)
    side = 28
    yy, xx = np.mgrid[0:side, 0:side]
    templates = np.empty((10, side * side))
    for c in range(10):
        img = np.zeros((side, side))
        for _ in range(4):
            cy, cx = rng.uniform(6, 22, size=2)
            sy, sx = rng.uniform(1.0, 4.0, size=2)
            img += np.exp(-((yy - cy) ** 2 / (2 * sy**2) + (xx - cx) ** 2 / (2 * sx**2)))
        templates[c] = (img / img.max()).ravel()

    y = rng.integers(0, 10, size=n_samples)
    other = (y + rng.integers(1, 10, size=n_samples)) % 10
    X = templates[y] * rng.uniform(0.3, 1.0, size=(n_samples, 1))
    X += templates[other] * rng.uniform(0.0, 0.8, size=(n_samples, 1))
    X += rng.normal(-0.1, 0.35, size=X.shape)
    np.clip(X, 0.0, 1.0, out=X)
    return X, y


# ----------------------------------------------------------------- machine
def cpu_model():
    """The CPU model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus():
    """CPUs this process may run on (the affinity mask), or os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def load_average():
    """(1, 5, 15)-minute load averages, or None where the OS has none."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def blas_threads(owner="scipy"):
    """Threads of the BLAS loaded by ``owner`` ('scipy' or 'numpy'), or None."""
    if threadpool_info is None:
        return None
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and _owner(lib.get("filepath", "")) == owner:
            return lib.get("num_threads")
    return None


def _owner(path):
    """Which package loaded a library of threadpoolctl's list, by its path:
    "cymlp" for the engine's private OpenBLAS (the scipy-openblas32 package,
    whose path also holds "scipy"), "numpy", "scipy", "torch", "sklearn", or None."""
    parts = path.replace("\\", "/").split("/")
    if "scipy_openblas32" in parts:
        return "cymlp"
    for owner, dirs in (("numpy", ("numpy", "numpy.libs")), ("scipy", ("scipy", "scipy.libs")),
                        ("torch", ("torch", "torch.libs")),
                        ("sklearn", ("sklearn", "scikit_learn.libs"))):
        if any(d in parts for d in dirs):
            return owner
    return None


def blas_report():
    """One line per BLAS / OpenMP library loaded (threadpoolctl), and who uses it."""
    if threadpool_info is None:
        return ["threadpoolctl not installed: BLAS threading unknown "
                "(python -m pip install threadpoolctl)"]
    lines = []
    for lib in threadpool_info():
        path = lib.get("filepath", "")
        owner = _owner(path) or lib.get("user_api", "?")
        lines.append(
            f"{owner:>7}: {lib.get('internal_api')} {lib.get('version') or ''} "
            f"({lib.get('user_api')}, {lib.get('num_threads')} threads, "
            f"{lib.get('threading_layer', '-')}, {lib.get('architecture', '-')}) "
            f"{os.path.basename(path)}"
        )
    lines.append("(sklearn's GEMMs go through numpy's BLAS; cymlp's through its own "
                 "OpenBLAS, scipy-openblas32, held at one thread per engine thread)")
    return lines


def versions_line(cymlp=None):
    cy_version = getattr(cymlp, "__version__", "?") if cymlp else "NOT IMPORTABLE"
    return (f"python {platform.python_version()}  numpy {np.__version__}  "
            f"scipy {scipy.__version__}  scikit-learn {sklearn.__version__}  "
            f"cymlp {cy_version}")


def cpu_details():
    """'family F model M stepping S; AVX2 AVX-512F ...; virtualised' from /proc/cpuinfo."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first CPU is enough
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        return ""
    flags = set(info.get("flags", "").split())
    isa = [name for flag, name in (("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"),
                                   ("avx512_bf16", "AVX512-BF16"), ("amx_tile", "AMX"))
           if flag in flags]
    parts = [f"family {info.get('cpu family', '?')} model {info.get('model', '?')} "
             f"stepping {info.get('stepping', '?')}"]
    if isa:
        parts.append(" ".join(isa))
    if "hypervisor" in flags:
        parts.append("virtual machine")
    caches = []
    for index in range(4):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{index}/"
        try:
            with open(base + "level") as f:
                level = f.read().strip()
            with open(base + "type") as f:
                kind = f.read().strip()
            with open(base + "size") as f:
                size = f.read().strip()
        except OSError:
            continue
        if kind != "Instruction":
            caches.append(f"L{level} {size}")
    if caches:
        parts.append("caches " + ", ".join(caches))
    return "; ".join(parts)


def machine_lines():
    """CPU model, cores, memory and OS, one line each."""
    lines = [f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs "
             f"({usable_cpus()} usable by this process)"]
    details = cpu_details()
    if details:
        lines.append(f"     {details}")
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        lines.append(f"memory: {kb / 2**20:.1f} GiB")
    except (OSError, ValueError, IndexError):
        pass
    lines.append(f"OS: {platform.platform()}")
    return lines
