"""cymlp: scikit-learn's multi-layer perceptron, compiled.

``cymlp.MLPClassifier`` and ``cymlp.MLPRegressor`` are drop-in replacements
for scikit-learn's: the same parameters, attributes, errors and, for the same
``random_state``, the same trained weights. Training runs a whole epoch per
compiled call, without the GIL. Options scikit-learn lacks (more activations,
dropout, class_weight, a validation set of your own, validation loss curves,
callbacks) are off by default.
"""

from ._callbacks import ProgressBar
from ._display import TrainingCurveDisplay
from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__version__ = "0.1.0"


def __getattr__(name):
    # to_onnx needs the optional onnx extra (skl2onnx, onnx): imported on
    # first use, so that cymlp itself imports without it
    if name == "to_onnx":
        from ._onnx import to_onnx

        return to_onnx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "ProgressBar",
    "TrainingCurveDisplay",
    "__version__",
]
