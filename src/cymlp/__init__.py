"""cymlp: scikit-learn's multi-layer perceptron, compiled.

``cymlp.MLPClassifier`` is a drop-in replacement for
:class:`sklearn.neural_network.MLPClassifier`: the same parameters, attributes,
errors and, for the same ``random_state``, the same trained weights. Training
runs a whole epoch per compiled call, without the GIL.
"""

from ._estimators import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "__version__"]
