"""cymlp: scikit-learn's multi-layer perceptron, compiled.

``cymlp.MLPClassifier`` and ``cymlp.MLPRegressor`` are drop-in replacements
for scikit-learn's: the same parameters, attributes, errors and, for the same
``random_state``, the same trained weights. Training runs a whole epoch per
compiled call, without the GIL. Options scikit-learn lacks (more activations,
dropout, class_weight, label smoothing, a warm-up + cosine learning-rate
schedule, a validation set of your own, validation loss curves, callbacks)
are off by default. ``cymlp.patch_sklearn()`` (or ``python -m
cymlp.patch script.py``) puts the two estimators in place of scikit-learn's
for code that imports them from ``sklearn.neural_network``.
"""

import os as _os


def _import_engine():
    # Inside an engine call the threads wait for each other with the team's
    # own barrier (csrc/team.h), which spins or sleeps as the machine allows.
    # Between calls they are OpenMP's: its default lets them spin for a while
    # first, which on a busy machine holds a core that other work needs
    # (measured: training up to 10x slower than one thread when every pass
    # was a region of its own). So unless the user chose a policy, the OpenMP
    # runtime is loaded with the passive one (sleep at once); the variable is
    # read once, when the runtime loads, and removed again so that child
    # processes do not inherit it.
    if "OMP_WAIT_POLICY" in _os.environ or "GOMP_SPINCOUNT" in _os.environ:
        from . import _engine  # noqa: F401
        return
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        from . import _engine  # noqa: F401
    finally:
        del _os.environ["OMP_WAIT_POLICY"]


_import_engine()

from ._callbacks import ProgressBar  # noqa: E402
from ._display import TrainingCurveDisplay  # noqa: E402
from ._classifier import MLPClassifier  # noqa: E402
from ._regressor import MLPRegressor  # noqa: E402

__version__ = "0.1.0"


# Loaded on first use: patching is for the few who ask for it, and `import
# cymlp` must neither load its machinery nor import sklearn.neural_network.
_PATCHING = ("patch_sklearn", "unpatch_sklearn", "sklearn_is_patched")


def __getattr__(name):
    # to_onnx needs the optional onnx extra (skl2onnx, onnx): imported on
    # first use, so that cymlp itself imports without it
    if name == "to_onnx":
        from ._onnx import to_onnx

        return to_onnx
    if name in _PATCHING:
        from . import _patching

        return getattr(_patching, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), "to_onnx", *_PATCHING})


__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "ProgressBar",
    "TrainingCurveDisplay",
    "__version__",
    "patch_sklearn",
    "sklearn_is_patched",
    "unpatch_sklearn",
]
