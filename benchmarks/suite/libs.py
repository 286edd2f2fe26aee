"""The libraries compared: cymlp, scikit-learn and, when installed, PyTorch and JAX.

If cymlp cannot be imported the suite still runs, timing scikit-learn against
itself (the header says so, and every ratio should then be close to 1).
"""

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from sklearn.neural_network import MLPClassifier as SkMLP

try:
    import cymlp
    from cymlp import MLPClassifier as CyMLP

    CYMLP_ERROR = None
except ImportError as exc:  # cymlp not built: time sklearn against itself
    cymlp = None
    CyMLP = SkMLP
    CYMLP_ERROR = exc

# PyTorch and JAX run only in worker processes (suite/worker.py): their
# threads outlive their calls. Here they are found, not imported.
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_JAX = importlib.util.find_spec("jax") is not None


def torch_version():
    """torch's installed version, read from its metadata (torch not imported);
    None when it is not installed."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Others:
    """The libraries timed beside cymlp and scikit-learn, as a runner gets them.

    ``torch``: the variants of the PyTorch loop to time: ``()`` (no torch
    column), ``("eager",)`` or ``("eager", "compiled")`` (training rows only;
    the other rows time torch eager whenever it is not empty). ``jax``:
    whether the training rows time the JAX loop. ``threads``: the threads of
    their worker processes (torch.set_num_threads; the JAX worker pinned to
    that many CPUs when fewer than it has, else XLA's default).
    """

    torch: tuple = ()
    jax: bool = False
    threads: int = 1


__all__ = ["CYMLP_ERROR", "CyMLP", "HAVE_JAX", "HAVE_TORCH", "Others", "SkMLP", "cymlp",
           "torch_version"]
