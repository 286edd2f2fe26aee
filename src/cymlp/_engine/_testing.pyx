"""Test hooks: never imported by the estimators.

Each elementwise kernel, callable on numpy arrays, so that the tests can
check it against a numpy reference (tests/_kernel_reference.py); and the
hooks on the engine's process-wide state, which live in _core (where that
state is) and are re-exported here. They validate shapes themselves, since
tests feed them arbitrary arrays.
"""
import numpy as np

cimport numpy as cnp
cnp.import_array()
from cython cimport floating

from .vocabulary cimport needs_preactivation
from .vocabulary import ACTIVATIONS, LOSSES, STOCHASTIC_SOLVERS
from .activations cimport UnaryLoop, resolve_loop, bias_activate, multiply_derivative
from .losses cimport loss_and_delta
from .reductions cimport column_sums, all_finite
from .optimizers cimport (
    adam_step, adamw_step, sgd_step, grad_sq_range, clip_factor, cymlp_adam_quotients_f, cymlp_adam_quotients_d,
    cymlp_fma_quotient_supported, cymlp_avx2_quotient_supported, cymlp_avx2_picks_ps,
    cymlp_avx2_picks_pd,
)
# the hooks on _core's state, and its Adam path names
from ._core import (  # noqa: F401
    _ADAM_PATHS, PROFILE_KINDS, _adam_step_path, _contention, _contention_episode,
    _forked_serial, _gather_seconds, _gemm_seconds, _pass_profile, _products, _resources,
    _thread_preemptions, _thread_stats,
)
from .activations import ufunc_loops_found as _ufunc_loops_found  # noqa: F401


def _check_same_shape(*arrays):
    shapes = {tuple(a.shape) for a in arrays if a is not None}
    if len(shapes) != 1:
        raise ValueError("shape mismatch: %s" % sorted(shapes))


def _kernel_activation(str name, floating[:, ::1] z, const floating[::1] bias,
                       double negative_slope=0.01):
    """z = f(z + bias) in place (bias broadcast over rows)."""
    if bias.shape[0] != z.shape[1]:
        raise ValueError("bias must have z.shape[1] entries")
    cdef int act = ACTIVATIONS[name]
    cdef UnaryLoop vec = resolve_loop(act, cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE)
    if z.shape[0] == 0 or z.shape[1] == 0:
        return
    with nogil:
        bias_activate(&z[0, 0], &bias[0], z.shape[0], z.shape[1], act, &vec, NULL,
                      negative_slope)


def _kernel_derivative(str name, const floating[::1] a, floating[::1] delta,
                       const floating[::1] z=None, double negative_slope=0.01):
    """delta *= f'(z), from the activated values a = f(z) (and z itself for
    'gelu' and 'silu', which need it)."""
    _check_same_shape(np.asarray(a), np.asarray(delta), None if z is None else np.asarray(z))
    cdef int act = ACTIVATIONS[name]
    if needs_preactivation(act) and z is None:
        raise ValueError("%s needs the pre-activations z" % name)
    if a.shape[0] == 0:
        return
    cdef const floating* zp = &z[0] if z is not None else NULL
    with nogil:
        multiply_derivative(&a[0], zp, &delta[0], a.shape[0], act, negative_slope)


def _kernel_loss(str loss, const floating[:, ::1] out, const floating[:, ::1] y,
                 const floating[::1] sample_weight, floating[:, ::1] delta,
                 double loss_param=0.0):
    """Return sum_i w_i * loss_i and fill delta: (out - y) * w for the
    canonical losses, d loss_i / d out * w / n_outputs for the robust ones
    (loss_param: Huber's delta or the quantile)."""
    _check_same_shape(np.asarray(out), np.asarray(y), np.asarray(delta))
    if sample_weight is not None and sample_weight.shape[0] != out.shape[0]:
        raise ValueError("sample_weight must have one entry per row")
    cdef int code = LOSSES[loss]
    cdef const floating* sw = &sample_weight[0] if sample_weight is not None else NULL
    cdef double total
    if out.shape[0] == 0 or out.shape[1] == 0:
        return 0.0
    with nogil:
        total = loss_and_delta(&out[0, 0], &y[0, 0], NULL, sw, &delta[0, 0], NULL,
                               out.shape[0], out.shape[1], code, loss_param)
    return total


def _kernel_column_sums(const floating[:, ::1] a):
    """The bias gradient's pass: a.sum(axis=0), added row after row."""
    out = np.empty(a.shape[1], dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] o = out
    if a.shape[0] > 0 and a.shape[1] > 0:
        with nogil:
            column_sums(&a[0, 0], &o[0], a.shape[0], a.shape[1], a.shape[1])
    return out


def _adam_path_code(str path):
    """The C code of an Adam quotient path name.

    Parameters
    ----------
    path : {"auto", "divider", "fma", "hybrid", "fma-avx2", "hybrid-avx2"}
        "auto" is the path chosen on first use (csrc/adam_path.h); "fma" uses
        no square root or division instruction, "hybrid" the division alone;
        both in AVX-512 code, or in AVX2 code with the "-avx2" suffix.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For an unknown name, or a path this CPU or build cannot run.
    """
    if path not in _ADAM_PATHS:
        raise ValueError("unknown Adam path %r" % path)
    if path in ("fma", "hybrid") and not cymlp_fma_quotient_supported():
        raise ValueError("the %s path needs AVX-512, which this CPU or build lacks" % path)
    if path.endswith("-avx2") and not cymlp_avx2_quotient_supported():
        raise ValueError("the %s path needs AVX2 and FMA, which this CPU or build lacks" % path)
    return _ADAM_PATHS[path]



def _kernel_adam_quotient(const floating[::1] a, const floating[::1] v, double eps,
                          str path="auto", bint sqrt_only=False):
    """Adam's quotient ``a / (sqrt(v) + eps)`` elementwise, by the path named.

    Parameters
    ----------
    a, v : ndarray of float32 or float64, shape (n,)
        Contiguous, of one dtype; the arithmetic is in that dtype.
    eps : float
        Rounded to the dtype first.
    path : str, default="auto"
        A name of ``_adam_path_code``.
    sqrt_only : bool, default=False
        Return ``sqrt(v)`` instead (``a`` then only sets the length).

    Returns
    -------
    ndarray of shape (n,)
        Every path gives the bits of IEEE square root and division.
    """
    cdef int code = _adam_path_code(path)
    _check_same_shape(np.asarray(a), np.asarray(v))
    out = np.empty_like(np.asarray(v))
    cdef floating[::1] o = out
    if a.shape[0] > 0:
        with nogil:
            if floating is float:
                cymlp_adam_quotients_f(&a[0], &v[0], <float> eps, &o[0], a.shape[0],
                                       sqrt_only, code)
            else:
                cymlp_adam_quotients_d(&a[0], &v[0], eps, &o[0], a.shape[0],
                                       sqrt_only, code)
    return out


def _kernel_adam_pick_avx2(const floating[::1] a, const floating[::1] v,
                           const floating[::1] candidates, bint sqrt_only=False):
    """The AVX2 paths' rounding decision alone: the correct rounding from a candidate.

    Parameters
    ----------
    a, v, candidates : ndarray of float32 or float64, shape (n,)
        Contiguous, of one dtype; n a multiple of 64. Each candidate is the
        correctly rounded ``sqrt(v)`` (``sqrt_only``) or ``a / v`` or one of
        its two neighbours, with a and v inside the AVX2 path's domain.
    sqrt_only : bool, default=False

    Returns
    -------
    ndarray of shape (n,)
        The correctly rounded results, as the decision picks them.

    Raises
    ------
    ValueError
        On a CPU without AVX2 and FMA, or for a length not a multiple of 64.
    """
    if not cymlp_avx2_quotient_supported():
        raise ValueError("the AVX2 decision needs AVX2 and FMA, which this CPU or build lacks")
    _check_same_shape(np.asarray(a), np.asarray(v), np.asarray(candidates))
    if a.shape[0] % 64:
        raise ValueError("the length must be a multiple of 64")
    out = np.empty_like(np.asarray(v))
    cdef floating[::1] o = out
    if a.shape[0] > 0:
        with nogil:
            if floating is float:
                cymlp_avx2_picks_ps(&a[0], &v[0], &candidates[0], &o[0], a.shape[0], sqrt_only)
            else:
                cymlp_avx2_picks_pd(&a[0], &v[0], &candidates[0], &o[0], a.shape[0], sqrt_only)
    return out


def _kernel_optimizer_step(str kind, floating[::1] params, floating[::1] grad_raw,
                           floating[::1] state1, floating[::1] state2, double alpha,
                           double sw_sum, double lr, double momentum=0.9,
                           bint nesterov=True, double beta_1=0.9, double beta_2=0.999,
                           double epsilon=1e-8, bint return_sum_squares=False,
                           str path="auto", double weight_decay=0.0,
                           double learning_rate_init=0.0, double grad_scale=1.0):
    """One optimizer step over a whole buffer (state2 is adam's second moment).

    For adam and adamw, ``lr`` is the bias-corrected rate of this step, and
    ``path`` the way its quotient is computed (see ``_kernel_adam_quotient``);
    adamw decays the weights by ``1 - learning_rate_init * weight_decay``
    first (and then adds the L2 term into ``grad_raw``). ``grad_scale`` is
    the clipping factor (1: none). With ``return_sum_squares``, returns the
    sum of the squares of the new parameters that the step computes on the
    way (else None).
    """
    cdef double sq = 0.0
    cdef double* sq_out = &sq if return_sum_squares else NULL
    cdef int code = _adam_path_code(path)
    _check_same_shape(np.asarray(params), np.asarray(grad_raw), np.asarray(state1),
                      None if state2 is None else np.asarray(state2))
    if kind in ("adam", "adamw") and state2 is None:
        raise ValueError("adam needs state2")
    if kind not in STOCHASTIC_SOLVERS:
        raise ValueError("unknown optimizer %r" % kind)
    if params.shape[0] > 0 and kind == "adam":
        with nogil:
            adam_step(&params[0], &grad_raw[0], &state1[0], &state2[0], params.shape[0],
                      alpha, sw_sum, lr, beta_1, beta_2, epsilon, sq_out, code, grad_scale)
    elif params.shape[0] > 0 and kind == "adamw":
        with nogil:
            adamw_step(&params[0], &grad_raw[0], &state1[0], &state2[0], params.shape[0],
                       alpha, sw_sum, learning_rate_init, weight_decay, lr, beta_1, beta_2,
                       epsilon, sq_out, code, grad_scale)
    elif params.shape[0] > 0:
        with nogil:
            sgd_step(&params[0], &grad_raw[0], &state1[0], params.shape[0],
                     alpha, sw_sum, lr, momentum, nesterov, sq_out, grad_scale)
    return sq if return_sum_squares else None


def _kernel_clip_factor(const floating[::1] params, const floating[::1] grad_raw,
                        Py_ssize_t n_coefs, double alpha, double sw_sum, double max_norm):
    """Clipping by the global norm over a whole buffer (its first ``n_coefs``
    values coefficients, with the L2 term): ``(sum_squares, factor)``, the
    gradient's squared norm as the engine sums it in one chunk and torch's
    clip_grad_norm_ factor."""
    cdef double sq = 0.0
    _check_same_shape(np.asarray(params), np.asarray(grad_raw))
    if not 0 <= n_coefs <= params.shape[0]:
        raise ValueError("n_coefs outside [0, %d]" % params.shape[0])
    if params.shape[0] > 0:
        with nogil:
            sq = grad_sq_range(&params[0], &grad_raw[0], 0, params.shape[0], n_coefs, alpha,
                               sw_sum)
    return sq, clip_factor(max_norm, sq)


def _kernel_all_finite(const floating[::1] x):
    """True if no value of x is NaN or infinite (predict's input check)."""
    cdef bint finite = True
    if x.shape[0] > 0:
        with nogil:
            finite = all_finite(&x[0], x.shape[0])
    return finite

