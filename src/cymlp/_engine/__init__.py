"""The compiled engine, top to bottom.

=====================  ==========================================================
``_core``              ``Network`` and ``Trainer`` (network.pxi, trainer.pxi),
                       the calls (calls.pxi), the passes (passes.pxi), the team
                       (team.pxi): the one extension that holds the engine's
                       process-wide state (its BLAS, threads, fork guard)
``vocabulary``         every activation, loss and optimizer: one row each
                       (csrc/vocabulary.h), codes and traits for C, Cython and
                       Python
``activations``,       the kernels (inline, in their .pxd files)
``losses``,
``optimizers``,
``dropout``,
``sparse``,
``reductions``
``layout``, ``chunks`` the workspace layout, the chunks of each pass
``blas``               row-major GEMM and dot over the private OpenBLAS
``_testing``           test hooks; the estimators never import it
=====================  ==========================================================

The estimators use what this package exports.
"""
from ._core import OPENMP, PRIVATE_BLAS_PATH, Network, Trainer, _EngineCall, _PRIVATE_BLAS
from .vocabulary import (
    ACTIVATION_ROWS, ACTIVATIONS, HIDDEN_ACTIVATIONS, LOSS_ROWS, LOSSES, OPTIMIZER_ROWS,
    OUTPUT_ACTIVATIONS, SOLVERS, STOCHASTIC_SOLVERS,
)

__all__ = [
    "ACTIVATION_ROWS", "ACTIVATIONS", "HIDDEN_ACTIVATIONS", "LOSS_ROWS", "LOSSES",
    "OPTIMIZER_ROWS", "OUTPUT_ACTIVATIONS", "OPENMP", "PRIVATE_BLAS_PATH",
    "SOLVERS", "STOCHASTIC_SOLVERS", "Network", "Trainer",
]
