"""Plain numpy references for the compiled kernels, and shared test settings.

Used by test_kernels.py, test_gradients.py and test_numerics.py. Everything
here is written from the mathematical definitions (and scikit-learn's
documented order of operations), independently of cymlp's code: the tests
compare cymlp against these functions, never against cymlp's own output.

References are evaluated in ``np.longdouble`` (80-bit extended precision on
x86-64, where it is wider than float64) so that their own rounding is
negligible next to the float64 and float32 results they check.
"""

import os

import numpy as np
import scipy.sparse as sp
from conftest import _parse_seeds
from hypothesis import HealthCheck, settings

# ---------------------------------------------------------------------------
# Hypothesis: deterministic by default, reseeded by CYMLP_TEST_SEED
# ---------------------------------------------------------------------------
# The seed that conftest's global_random_seed would use (its first one when a
# range is given); hypothesis.seed(HYPOTHESIS_SEED) makes a default run
# reproducible and CYMLP_TEST_SEED=any explores new examples.
HYPOTHESIS_SEED = _parse_seeds(os.environ.get("CYMLP_TEST_SEED"))[0]


def hsettings(max_examples):
    """Hypothesis settings for these tests: no deadline (the machine is shared
    and noisy), no example database written into the checkout."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


WIDE = np.longdouble
DTYPES = [np.float32, np.float64]


def eps(dtype):
    return float(np.finfo(dtype).eps)


def tiny(dtype):
    return float(np.finfo(dtype).tiny)


# ---------------------------------------------------------------------------
# Activations, derivatives, losses
# ---------------------------------------------------------------------------
def _expit(x):
    # 1 / (1 + exp(-x)) evaluated without overflow warnings, in longdouble
    x = np.asarray(x, dtype=WIDE)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def _gelu(s):
    # z Phi(z) through erfc: accurate in the negative tail too. scipy's erfc
    # works in double, so this reference is good to ~1 ulp of float64.
    from scipy.special import erfc
    s64 = np.asarray(s, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        return (0.5 * s64 * erfc(-s64 / np.sqrt(2))).astype(WIDE)


def _gelu_derivative(z):
    from scipy.special import erfc
    z64 = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        return (0.5 * erfc(-z64 / np.sqrt(2))
                + z64 * np.exp(-0.5 * z64 * z64) / np.sqrt(2 * np.pi)).astype(WIDE)


# Hidden activations: scikit-learn's four, and the ones cymlp adds.
SKLEARN_HIDDEN = ["identity", "logistic", "tanh", "relu"]
EXTRA_HIDDEN = ["leaky_relu", "elu", "gelu", "silu", "softplus"]
NEEDS_Z = ("gelu", "silu")       # derivative taken from z, not from a = f(z)
KINKED = ("relu", "leaky_relu")  # not differentiable at z = 0


def activation(name, s, slope=0.01):
    """f(s) in longdouble for pre-activations s (2-D)."""
    s = np.asarray(s, dtype=WIDE)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name == "identity":
            return s.copy()
        if name == "relu":
            return np.maximum(s, 0)
        if name == "tanh":
            return np.tanh(s)
        if name == "logistic":
            return _expit(s)
        if name == "exp":
            return np.exp(s)
        if name == "softmax":
            shifted = s - s.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            return e / e.sum(axis=1, keepdims=True)
        if name == "leaky_relu":
            return np.where(s > 0, s, WIDE(slope) * s)
        if name == "elu":
            return np.where(s > 0, s, np.expm1(np.minimum(s, 0)))
        if name == "gelu":
            return _gelu(s)
        if name == "silu":
            return s * _expit(s)
        if name == "softplus":
            return np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))
    raise ValueError(name)


def derivative(name, a, z=None, slope=0.01):
    """f'(z), in longdouble: written through a = f(z) where the activation
    allows it (as the engine does), from z for gelu and silu."""
    a = np.asarray(a, dtype=WIDE)
    if name == "identity":
        return np.ones_like(a)
    if name == "relu":
        return (a != 0).astype(WIDE)
    if name == "tanh":
        return 1 - a * a
    if name == "logistic":
        return a * (1 - a)
    if name == "leaky_relu":
        return np.where(a > 0, WIDE(1), WIDE(slope))
    if name == "elu":
        return np.where(a > 0, WIDE(1), a + 1)
    if name == "softplus":
        return -np.expm1(-a)
    z = np.asarray(z, dtype=WIDE)
    if name == "gelu":
        return _gelu_derivative(z)
    if name == "silu":
        sg = _expit(z)
        return sg * (1 + z * (1 - sg))
    raise ValueError(name)


def xlogy(x, y):
    x = np.asarray(x, dtype=WIDE)
    y = np.asarray(y, dtype=WIDE)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, WIDE(0), x * np.log(y))


def clip_prob(p, dtype):
    """scikit-learn clips probabilities to [eps, 1 - eps] of the working dtype."""
    e = np.finfo(dtype).eps
    return np.clip(np.asarray(p, dtype=dtype), e, 1 - e)


def row_losses(loss, out, y, dtype, loss_param=None):
    """Per-row loss (summed over outputs, unweighted, not averaged), longdouble.

    Probabilities are clipped in ``dtype`` first, as scikit-learn does; the
    complement 1 - p of the binary loss is formed in ``dtype`` as well.
    """
    y = np.asarray(y, dtype=WIDE)
    if loss == "squared_error":
        d = np.asarray(out, dtype=WIDE) - y
        return (d * d).sum(axis=1)
    if loss == "log_loss":
        p = clip_prob(out, dtype)
        return -xlogy(y, p).sum(axis=1)
    if loss == "binary_log_loss":
        p = clip_prob(out, dtype)
        q = (1 - p).astype(dtype)
        return -(xlogy(y, p) + xlogy(1 - y, q)).sum(axis=1)
    if loss == "poisson":
        p = np.asarray(out, dtype=WIDE)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (xlogy(y, y / p) - y + p).sum(axis=1)
    # the robust losses of the residual r = y - p (loss_param: Huber's delta
    # or the quantile), as scikit-learn's AbsoluteError / HuberLoss / PinballLoss
    r = y - np.asarray(out, dtype=WIDE)
    if loss == "absolute_error":
        return np.abs(r).sum(axis=1)
    if loss == "huber":
        a = np.abs(r)
        return np.where(a <= loss_param, a * a / 2,
                        loss_param * (a - loss_param / 2)).sum(axis=1)
    if loss == "quantile":
        return np.where(r >= 0, loss_param * r, (loss_param - 1) * r).sum(axis=1)
    raise ValueError(loss)


def mean_loss(loss, out, y, sample_weight, dtype):
    """The data term of scikit-learn's loss: the weighted mean over samples
    (and for squared error half the mean over outputs), longdouble."""
    rl = row_losses(loss, out, y, dtype)
    w = np.ones(len(rl), dtype=WIDE) if sample_weight is None else np.asarray(
        sample_weight, dtype=WIDE)
    total = (w * rl).sum() / w.sum()
    if loss == "squared_error":
        total = total / (2 * np.asarray(out).shape[1])
    return total


# ---------------------------------------------------------------------------
# A whole network
# ---------------------------------------------------------------------------
def unpack(params, layer_units):
    """coefs, intercepts from a packed buffer in scikit-learn's lbfgs layout."""
    coefs, intercepts, pos = [], [], 0
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        coefs.append(params[pos:pos + fan_in * fan_out].reshape(fan_in, fan_out))
        pos += fan_in * fan_out
    for fan_out in layer_units[1:]:
        intercepts.append(params[pos:pos + fan_out])
        pos += fan_out
    assert pos == len(params)
    return coefs, intercepts


def n_params(layer_units):
    return sum(a * b for a, b in zip(layer_units[:-1], layer_units[1:])) + sum(
        layer_units[1:])


def hidden_at(hidden, i):
    """Hidden layer i's activation: ``hidden`` is one name for every hidden
    layer, or a sequence of names, one per hidden layer."""
    return hidden if isinstance(hidden, str) else hidden[i]


def forward(X, coefs, intercepts, hidden, out_act, slope=0.01):
    """All activations [X, a1, ..., out] in longdouble, and the pre-activations
    (hidden: one name, or one per hidden layer)."""
    if sp.issparse(X):
        X = X.toarray()
    acts = [np.asarray(X, dtype=WIDE)]
    pre = []
    L = len(coefs)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        s = acts[-1] @ np.asarray(W, dtype=WIDE) + np.asarray(b, dtype=WIDE)
        pre.append(s)
        acts.append(activation(hidden_at(hidden, i) if i < L - 1 else out_act, s, slope))
    return acts, pre


def loss_and_grad(X, Y, sample_weight, params, layer_units, hidden, out_act, loss,
                  alpha, dtype, slope=0.01):
    """scikit-learn's full-batch objective and its analytic gradient, longdouble.

    objective = mean_loss + 0.5 * alpha * sum ||W||^2 / sw_sum
    """
    params = np.asarray(params)
    coefs, intercepts = unpack(params, layer_units)
    acts, pre = forward(X, coefs, intercepts, hidden, out_act, slope)
    n = acts[0].shape[0]
    w = (np.ones(n, dtype=WIDE) if sample_weight is None
         else np.asarray(sample_weight, dtype=WIDE))
    sw_sum = w.sum()
    value = mean_loss(loss, acts[-1].astype(dtype), Y, sample_weight, dtype)
    sq = sum((np.asarray(c, dtype=WIDE) ** 2).sum() for c in coefs)
    value = value + 0.5 * alpha * sq / sw_sum
    # Canonical links: d loss / d z_out = (out - y) * w / sw_sum. For squared
    # error scikit-learn reports half the mean over outputs as the loss but
    # back-propagates out - y, i.e. the gradient of half the *sum* over
    # outputs; with one output the two agree. The returned gradient follows
    # scikit-learn (it is what its solvers use); callers doing finite
    # differences of squared error use a single output.
    delta = (acts[-1] - np.asarray(Y, dtype=WIDE)) * w[:, None]
    grads_W, grads_b = [None] * len(coefs), [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        grads_W[i] = (acts[i].T @ delta + alpha * np.asarray(coefs[i], dtype=WIDE)) / sw_sum
        grads_b[i] = delta.sum(axis=0) / sw_sum
        if i > 0:
            delta = (delta @ np.asarray(coefs[i], dtype=WIDE).T) * derivative(
                hidden_at(hidden, i - 1), acts[i], pre[i - 1], slope)
    grad = np.concatenate([g.ravel() for g in grads_W] + [g.ravel() for g in grads_b])
    return value, grad


def five_point_gradient(f, params, h):
    """Central five-point differences of f at params, one parameter at a time
    (truncation error O(h^4): f must be smooth within 2h of params)."""
    fd = np.empty(len(params))
    for k in range(len(params)):
        values = []
        for m in (-2, -1, 1, 2):
            q = params.copy()
            q[k] += m * h
            values.append(f(q))
        fd[k] = float((values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h))
    return fd


def random_network(rng, layer_units, dtype, scale=1.0):
    """A packed parameter buffer with Glorot-like uniform weights."""
    params = []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = scale * np.sqrt(6.0 / (fan_in + fan_out))
        params.append(rng.uniform(-bound, bound, fan_in * fan_out))
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = scale * np.sqrt(6.0 / (fan_in + fan_out))
        params.append(rng.uniform(-bound, bound, fan_out))
    return np.concatenate(params).astype(dtype)


OUTPUTS = {
    # output activation -> (loss, target maker)
    "softmax": "log_loss",
    "logistic": "binary_log_loss",
    "identity": "squared_error",
    "exp": "poisson",
}


def make_targets(rng, out_act, n, n_out, dtype):
    if out_act == "softmax":
        Y = np.zeros((n, n_out), dtype=dtype)
        Y[np.arange(n), rng.randint(n_out, size=n)] = 1
    elif out_act == "logistic":
        Y = (rng.uniform(size=(n, n_out)) < 0.5).astype(dtype)
    elif out_act == "identity":
        Y = rng.normal(size=(n, n_out)).astype(dtype)
    else:
        Y = rng.poisson(2.0, size=(n, n_out)).astype(dtype)
    return np.ascontiguousarray(Y)


def assert_within(actual, desired, tol, err_msg=""):
    """|actual - desired| <= tol elementwise (tol broadcastable), with a report
    of the worst element on failure. inf/nan in `desired` must match exactly."""
    actual = np.asarray(actual, dtype=WIDE)
    desired = np.asarray(desired, dtype=WIDE)
    assert actual.shape == desired.shape, (actual.shape, desired.shape, err_msg)
    tol = np.broadcast_to(np.asarray(tol, dtype=WIDE), desired.shape)
    nonfinite = ~np.isfinite(desired)
    if nonfinite.any():
        np.testing.assert_array_equal(
            actual[nonfinite].astype(np.float64), desired[nonfinite].astype(np.float64),
            err_msg=err_msg)
    finite = ~nonfinite
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(actual[finite] - desired[finite])
    bad = ~(err <= tol[finite])
    if bad.any():
        k = np.flatnonzero(bad)[np.argmax((err - tol[finite])[bad])]
        raise AssertionError(
            f"{err_msg}\n{bad.sum()} of {finite.sum()} elements out of tolerance; "
            f"worst: actual={float(actual[finite][k])!r} desired={float(desired[finite][k])!r} "
            f"|diff|={float(err[k])!r} tol={float(tol[finite][k])!r}")


# ---------------------------------------------------------------------------
# Forward error bounds (what rounding in `dtype` may legitimately cost)
# ---------------------------------------------------------------------------
def forward_tolerance(X, coefs, intercepts, hidden, out_act, dtype, safety=4.0,
                      slope=0.01):
    """Elementwise bound on |computed - exact| for the network outputs.

    The standard forward error analysis of a dot product of length k,
    |fl(x.w) - x.w| <= k eps |x|.|w|, carried through the layers: an
    activation with Lipschitz constant <= 1 (identity, relu, tanh, logistic)
    passes the error on, exp scales it by its value, softmax by twice its
    largest input error times its value. Generous by `safety`.
    """
    e = eps(dtype)
    if sp.issparse(X):
        X = X.toarray()
    a_abs = np.abs(np.asarray(X, dtype=WIDE))
    err = np.zeros_like(a_abs)
    acts, _ = forward(X, coefs, intercepts, hidden, out_act, slope)
    L = len(coefs)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        W_abs = np.abs(np.asarray(W, dtype=WIDE))
        s_abs = a_abs @ W_abs + np.abs(np.asarray(b, dtype=WIDE))
        k = W_abs.shape[0] + 2
        err_s = k * e * s_abs + err @ W_abs
        a = acts[i + 1]
        f = hidden_at(hidden, i) if i < L - 1 else out_act
        if f == "exp":
            err = np.abs(a) * (np.expm1(np.minimum(err_s, 50)) + 4 * e)
        elif f == "softmax":
            m = err_s.max(axis=1, keepdims=True)
            err = np.abs(a) * (np.expm1(np.minimum(2 * m, 50)) + (a.shape[1] + 4) * e)
        else:
            # Lipschitz constant <= 1.13 (gelu's largest slope), plus the
            # activation's own few roundings (relative to its input scale
            # for gelu, whose 1 + erf cancels in the negative tail)
            err = 1.13 * err_s + 4 * e * (np.abs(a) + (s_abs if f == "gelu" else 0))
        a_abs = np.abs(a)
    return safety * err + tiny(dtype)


def gradient_scale(X, Y, sample_weight, params, layer_units, hidden, out_act, alpha,
                   slope=0.01):
    """Backprop run on absolute values: for each gradient element, the sum of
    the magnitudes of the terms that make it up (divided by sw_sum). A
    rounding error of a few ulps per term is a small multiple of eps times this."""
    params = np.asarray(params)
    coefs, intercepts = unpack(params, layer_units)
    acts, pre = forward(X, coefs, intercepts, hidden, out_act, slope)
    n = acts[0].shape[0]
    w = (np.ones(n, dtype=WIDE) if sample_weight is None
         else np.abs(np.asarray(sample_weight, dtype=WIDE)))
    sw_sum = abs(w.sum()) if sample_weight is None else abs(
        np.asarray(sample_weight, dtype=WIDE).sum())
    d = (np.abs(acts[-1]) + np.abs(np.asarray(Y, dtype=WIDE))) * w[:, None]
    gW, gb = [None] * len(coefs), [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        W_abs = np.abs(np.asarray(coefs[i], dtype=WIDE))
        gW[i] = (np.abs(acts[i]).T @ d + alpha * W_abs) / sw_sum
        gb[i] = d.sum(axis=0) / sw_sum
        if i > 0:
            d = (d @ W_abs.T) * np.maximum(
                np.abs(derivative(hidden_at(hidden, i - 1), acts[i], pre[i - 1], slope)), 1.0)
    return np.concatenate([g.ravel() for g in gW] + [g.ravel() for g in gb])
