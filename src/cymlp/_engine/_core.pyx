"""The engine's core: the one extension that runs training and prediction.

The estimator layer (``cymlp._base`` and the classes above it) validates
everything and then talks to a :class:`Network`, which knows the layer sizes,
activations and loss, and to a :class:`Trainer`, the typed state of one fit:

* :meth:`Trainer.run_epoch`: a whole epoch of minibatch training in one call
  without the GIL (minibatch rows gathered by index, forward, loss, backprop
  and one fused optimizer pass over the packed parameter buffer per
  minibatch);
* :meth:`Trainer.loss_grad`: the loss and gradient over all rows (lbfgs);
* :meth:`Network.predict`: the forward pass over any number of rows, in
  chunks, without the GIL.

All parameters live in one packed buffer, scikit-learn's lbfgs layout: every
coefficient matrix (row-major, fan_in x fan_out) one after the other, then
every intercept vector. ``coefs_`` and ``intercepts_`` are views into it.

Why one extension made of parts (the ``include`` files below), where the
kernels are modules of their own (``*.pxd``, cimported): the process-wide
state of the engine -- its private BLAS, its teams' busy-machine record, the
fork guard, the resources made in advance, the Adam path chosen for this
CPU -- lives in C headers (csrc/) as static variables, and Python loads each
extension with its own copy of those. Everything that reads or writes that
state is therefore compiled here, once; the stateless kernels are shared
with the test hooks' extension (_testing) through their .pxd files.

Top to bottom: the calls (Network, Trainer) -> calls.pxi (one nogil call
per epoch, loss and gradient, prediction) -> passes.pxi (the row pass, the
gradient pass, the step, over fixed chunks) -> the kernels (activations,
losses, optimizers, dropout, sparse, reductions) -> blas.pxd.
"""
import numpy as np

cimport numpy as cnp
cnp.import_array()
from cython cimport floating
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t

from .vocabulary cimport (
    CYMLP_SECOND_MOMENT, cymlp_optimizer_traits, needs_preactivation,
)
from .vocabulary import (
    ACTIVATIONS, ACTIVATION_ROWS, HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, LOSSES, LOSS_ROWS,
    STOCHASTIC_SOLVERS,
)
from .activations cimport UnaryLoop, resolve_loop, bias_activate, multiply_derivative
from .losses cimport loss_and_delta, batch_loss
from .optimizers cimport (
    Optimizer, step_range, step_rate, counts_steps, grad_sq_range, clip_factor,
    cymlp_adam_path_f, cymlp_adam_path_d,
    CYMLP_PATH_AUTO, CYMLP_PATH_DIVIDER, CYMLP_PATH_FMA, CYMLP_PATH_HYBRID, CYMLP_PATH_FMA_AVX2,
    CYMLP_PATH_HYBRID_AVX2,
)
from .dropout cimport Dropout, dropout_forward, splitmix64_skip, past_masks
from .sparse cimport SparseRows, csr_times_dense, csr_transpose_times_dense, csr_structure_ok
from .reductions cimport column_sums, all_finite
from .layout cimport (
    Net, Data, Tables, workspace_size, layer_tables,
)
from .chunks cimport (
    n_chunks, chunk_at, row_chunks, product_chunks, sum_chunks, call_chunks,
    GEMM_GRAIN, GEMM_MIN_ROWS, PASS_GRAIN, MAX_CHUNKS,
)
from .resources cimport (
    cymlp_failure, cymlp_fail, cymlp_blas_alloc_fn, cymlp_blas_free_fn, cymlp_resources_init,
    cymlp_resources_acquire, cymlp_resources_release, cymlp_resources_pool, cymlp_blas_member,
    cymlp_blas_kind, cymlp_blas_measured, cymlp_blas_ready, cymlp_blas_bytes,
    cymlp_probe_fails, cymlp_probes_run, cymlp_probes_failed,
)
from .blas cimport (
    gemm, dot, cymlp_sgemm_fn, cymlp_dgemm_fn, cymlp_sdot_fn, cymlp_ddot_fn,
    cymlp_get_threads_fn, cymlp_set_threads_fn, cymlp_sgemm, cymlp_dgemm, cymlp_sdot,
    cymlp_ddot, cymlp_blas_get_threads, cymlp_blas_set_threads, cymlp_blas_hold_one_thread,
)
from .activations import ufunc_loops_found

include "team.pxi"
include "profile.pxi"
include "process.pxi"
include "passes.pxi"
include "calls.pxi"
include "network.pxi"
include "trainer.pxi"
include "hooks.pxi"
