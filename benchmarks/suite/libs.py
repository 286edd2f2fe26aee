"""The libraries compared: cymlp, scikit-learn and, when installed, PyTorch.

If cymlp cannot be imported the suite still runs, timing scikit-learn against
itself (the header says so, and every ratio should then be close to 1).
"""

from sklearn.neural_network import MLPClassifier as SkMLP

try:
    import cymlp
    from cymlp import MLPClassifier as CyMLP

    CYMLP_ERROR = None
except ImportError as exc:  # cymlp not built: time sklearn against itself
    cymlp = None
    CyMLP = SkMLP
    CYMLP_ERROR = exc

try:
    import torch
except ImportError:
    torch = None

__all__ = ["CYMLP_ERROR", "CyMLP", "SkMLP", "cymlp", "torch"]
