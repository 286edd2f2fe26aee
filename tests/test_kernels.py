"""Each compiled kernel against a plain numpy reference, on hypothesis-drawn
shapes, dtypes and values.

The engine exposes its elementwise kernels as test hooks in ``cymlp._engine``
(``_kernel_activation``, ``_kernel_derivative``, ``_kernel_loss``,
``_kernel_optimizer_step``) and its whole-network passes through
``cymlp._engine.Network`` (``predict``) and ``Trainer`` (``loss_grad``, ``run_epoch``). The
references (tests/_kernel_reference.py) are written from the definitions and
evaluated in extended precision; the tolerances are forward error bounds of
the float32/float64 arithmetic, not numbers taken from a cymlp run.

These tests are also the ones to run against a debug build (boundscheck,
wraparound and initializedcheck on), together with test_gradients.py and
test_fuzz.py.
"""

import math

import _kernel_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp
from _kernel_reference import HYPOTHESIS_SEED, WIDE, assert_within, eps, hsettings, tiny
from hypothesis import given, seed
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

from cymlp import _engine

from cymlp._engine import _testing

DTYPES = ref.DTYPES
HIDDEN = ref.SKLEARN_HIDDEN + ref.EXTRA_HIDDEN


def floats(dtype, lo, hi):
    # bounds rounded to the dtype (hypothesis wants them representable)
    lo, hi = float(dtype(lo)), float(dtype(hi))
    return st.floats(lo, hi, width=32 if dtype == np.float32 else 64,
                     allow_nan=False, allow_infinity=False)


def array(dtype, shape, lo, hi):
    return hnp.arrays(dtype, shape, elements=floats(dtype, lo, hi))


# Value ranges per activation: wide enough to saturate logistic/tanh and reach
# the limits of softmax's shift, narrow enough that z + bias and exp(z + bias)
# stay finite in the dtype (overflow is tested on its own in test_numerics).
def _act_range(name, dtype):
    big = 1e30 if dtype == np.float32 else 1e300
    if name == "exp":
        return (-50.0, 44.0) if dtype == np.float32 else (-370.0, 354.0)
    return (-big, big)


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", HIDDEN + ["softmax", "exp"])
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_activation(name, dtype, data):
    rows = data.draw(st.integers(0, 7), label="rows")
    cols = data.draw(st.integers(1, 9), label="cols")
    lo, hi = _act_range(name, dtype)
    # mostly moderate values, sometimes extreme ones
    scale = data.draw(st.sampled_from([1.0, 30.0, hi]), label="scale")
    z = data.draw(array(dtype, (rows, cols), max(lo, -scale), min(hi, scale)), label="z")
    b = data.draw(array(dtype, (cols,), max(lo, -scale), min(hi, scale)), label="bias")
    slope = data.draw(st.sampled_from([0.01, 0.0, 0.3, 1.0]), label="slope")
    s = z + b  # the kernel adds the bias in the dtype first, as numpy does here
    expected = ref.activation(name, s, slope)

    got = np.ascontiguousarray(z.copy())
    _testing._kernel_activation(name, got, b, slope)

    assert got.dtype == dtype
    e = eps(dtype)
    tol = 4 * e * np.abs(expected) + 2 * tiny(dtype)
    if name == "softmax" and rows:
        # exp(s - max): the rounding of the shift, e |s - max|, is amplified
        # into a relative error of the same size; the normalising sum adds
        # one ulp per term
        shift = np.abs(s.astype(WIDE) - s.astype(WIDE).max(axis=1, keepdims=True))
        tol = ((cols + 8) * e + 2 * e * shift) * np.abs(expected) + 2 * tiny(dtype)
    elif name in ref.EXTRA_HIDDEN:
        # computed in double and rounded to the dtype; gelu's 1 + erf(z / sqrt 2)
        # cancels for negative z, an absolute error of ~1e-16 |z| (as in the
        # usual erf formulation; the value there is negligible next to |z|)
        tol = tol + (4 * 2.0**-52 * np.abs(s.astype(WIDE)) if name == "gelu" else 0)
        if dtype == np.float64:
            tol = tol + 4 * e * np.abs(expected)  # the double arithmetic itself
    assert_within(got, expected, tol, err_msg=f"{name} {dtype.__name__}")
    if name == "softmax" and rows:
        assert_within(got.astype(WIDE).sum(axis=1), np.ones(rows), (cols + 4) * e)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", HIDDEN + ["softmax", "exp"])
def test_activation_empty(name, dtype):
    for shape in [(0, 3), (4, 0), (0, 0)]:
        z = np.zeros(shape, dtype=dtype)
        _testing._kernel_activation(name, z, np.zeros(shape[1], dtype=dtype))
        assert z.shape == shape


# The passes compiled for wide vectors (csrc/vector_loops.h) must give numpy's
# bits whatever the vector width: sizes around the vector lengths and their
# tails, with NaN and -0.0 where the order of a comparison decides.
WIDE_SIZES = [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1031]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cols", WIDE_SIZES)
def test_bias_relu_and_identity_are_numpys_bits(dtype, cols, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    z = rng.standard_normal((5, cols)).astype(dtype)
    b = rng.standard_normal(cols).astype(dtype)
    z.flat[:: 7] = np.nan
    z.flat[3:: 11] = -b[(np.arange(z.size)[3:: 11]) % cols]  # z + b == +0.0
    b[:: 5] = -0.0
    z[0, :: 5] = -0.0  # -0.0 + -0.0 == -0.0
    for name, expected in (("relu", np.maximum(z + b, 0)), ("identity", z + b)):
        got = z.copy()
        _testing._kernel_activation(name, got, b)
        assert_array_equal(got, expected, strict=True)  # NaN where numpy's NaN
        if name == "identity":
            # (relu's zero may be either: numpy's maximum returns -0.0 or 0.0
            # for max(-0.0, 0) depending on its SIMD path; both are sklearn's)
            assert_array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", WIDE_SIZES)
def test_wide_derivatives_are_sklearns_bits(dtype, n, global_random_seed):
    # scikit-learn's in-place formulas, in the dtype: relu zeroes where the
    # activation is 0, tanh multiplies by 1 - a**2, logistic by a then 1 - a
    rng = np.random.default_rng(global_random_seed)
    delta = rng.standard_normal(n).astype(dtype)
    for name, a in (("relu", np.maximum(rng.standard_normal(n), 0).astype(dtype)),
                    ("tanh", np.tanh(rng.standard_normal(n)).astype(dtype)),
                    ("logistic", rng.uniform(0, 1, n).astype(dtype))):
        expected = delta.copy()
        if name == "relu":
            expected[a == 0] = 0
        elif name == "tanh":
            expected *= 1 - a**2
        else:
            expected *= a
            expected *= 1 - a
        got = delta.copy()
        _testing._kernel_derivative(name, a, got)
        assert_array_equal(got, expected, strict=True, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cols", WIDE_SIZES)
def test_column_sums_add_rows_in_order(dtype, cols, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    a = (rng.standard_normal((37, cols)) * 10.0 ** rng.integers(-8, 8, (37, 1))).astype(dtype)
    expected = a[0].copy()
    for row in a[1:]:
        expected += row
    assert_array_equal(_testing._kernel_column_sums(a), expected, strict=True)


# ---------------------------------------------------------------------------
# Derivatives (delta *= f'(z), from a = f(z))
# ---------------------------------------------------------------------------
def _a_range(name):
    return {"identity": (-1e6, 1e6), "relu": (0.0, 1e6), "tanh": (-1.0, 1.0),
            "logistic": (0.0, 1.0)}[name]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ref.SKLEARN_HIDDEN)
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_derivative(name, dtype, data):
    n = data.draw(st.integers(0, 40), label="n")
    lo, hi = _a_range(name)
    a = data.draw(array(dtype, (n,), lo, hi), label="a")
    if name == "relu" and n:
        # a relu layer has exact zeros: make sure some are there
        a[data.draw(hnp.arrays(bool, (n,)), label="zeros")] = 0
    delta = data.draw(array(dtype, (n,), -1e6, 1e6), label="delta")
    expected = delta.astype(WIDE) * ref.derivative(name, a)

    got = delta.copy()
    _testing._kernel_derivative(name, a, got)

    if name in ("identity", "relu"):
        # no arithmetic at all: unchanged or zeroed, bit for bit
        assert_array_equal(got, expected.astype(dtype))
    else:
        e = eps(dtype)
        assert_within(got, expected, 8 * e * np.abs(delta.astype(WIDE)) + tiny(dtype),
                      err_msg=f"{name} {dtype.__name__}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ref.EXTRA_HIDDEN)
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_derivative_extra_activations(name, dtype, data):
    # cymlp's own activations: the engine stores a = f(z) rounded to the
    # dtype (and z itself for gelu / silu) and forms f' from them
    n = data.draw(st.integers(0, 40), label="n")
    slope = data.draw(st.sampled_from([0.01, 0.0, 0.3]), label="slope")
    z = data.draw(array(dtype, (n,), -60, 60), label="z")
    a = ref.activation(name, z[None, :], slope)[0].astype(dtype)
    delta = data.draw(array(dtype, (n,), -1e6, 1e6), label="delta")
    expected = delta.astype(WIDE) * ref.derivative(name, a, z, slope)

    got = delta.copy()
    _testing._kernel_derivative(name, a, got, z if name in ref.NEEDS_Z else None,
                               negative_slope=slope)
    e = eps(dtype)
    # f' is O(1); the rounding of a (and of the double arithmetic) costs a
    # few ulps of |delta|
    assert_within(got, expected, 8 * e * np.abs(delta.astype(WIDE)) * (1 + np.abs(a))
                  + tiny(dtype), err_msg=f"{name} {dtype.__name__} slope={slope}")


def test_derivative_needs_preactivations():
    a = np.zeros(3)
    for name in ref.NEEDS_Z:
        with pytest.raises(ValueError):
            _testing._kernel_derivative(name, a, a.copy())


# ---------------------------------------------------------------------------
# Losses and the output delta
# ---------------------------------------------------------------------------
# the optimizers whose steps the tests below compare with numpy's
OPTIMIZER_KINDS = ["sgd", "adam", "adamw"]
LOSSES = ["squared_error", "log_loss", "binary_log_loss", "poisson"]


@st.composite
def loss_case(draw, loss, dtype):
    rows = draw(st.integers(1, 8), label="rows")
    cols = draw(st.integers(1, 6), label="cols")
    shape = (rows, cols)
    if loss == "squared_error":
        out = draw(array(dtype, shape, -1e4, 1e4), label="out")
        y = draw(array(dtype, shape, -1e4, 1e4), label="y")
    elif loss == "log_loss":
        # probabilities, including exact 0 and 1 (the clipping), one-hot targets
        out = draw(array(dtype, shape, 0.0, 1.0), label="out")
        hot = draw(hnp.arrays(np.int64, (rows,), elements=st.integers(0, cols - 1)))
        y = np.zeros(shape, dtype=dtype)
        y[np.arange(rows), hot] = 1
    elif loss == "binary_log_loss":
        out = draw(array(dtype, shape, 0.0, 1.0), label="out")
        y = draw(hnp.arrays(dtype, shape, elements=st.sampled_from([0.0, 1.0])), label="y")
    else:
        # exp outputs are positive; p stays away from the underflow where
        # y / p overflows (that case is in test_numerics)
        out = draw(array(dtype, shape, 1e-3, 1e3), label="out")
        y = draw(hnp.arrays(dtype, shape, elements=st.sampled_from(
            [0.0, 1.0, 2.0, 3.0, 0.5, 7.0, 100.0])), label="y")
    if draw(st.booleans(), label="weighted"):
        sw = draw(array(dtype, (rows,), 0.0, 10.0), label="sample_weight")
    else:
        sw = None
    return out, y, sw


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss", LOSSES)
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_loss(loss, dtype, data):
    out, y, sw = data.draw(loss_case(loss, dtype))
    delta = np.full_like(out, np.nan)
    total = _testing._kernel_loss(loss, out, y, sw, delta)

    # delta = (out - y) * w, formed in the dtype: bit for bit numpy's result
    expected_delta = out - y if sw is None else (out - y) * sw[:, None]
    assert delta.dtype == dtype
    assert_array_equal(delta, expected_delta)

    w = np.ones(len(out), dtype=WIDE) if sw is None else sw.astype(WIDE)
    rl = ref.row_losses(loss, out, y, dtype)
    expected = (w * rl).sum()
    # every term computed to a few ulps of the dtype (logs in the dtype),
    # summed in double: bound by eps times the sum of the terms' magnitudes
    e = eps(dtype)
    p = out.astype(WIDE)
    t = y.astype(WIDE)
    if loss == "poisson":
        mag = np.abs(ref.xlogy(t, t / p)) + t + p
    elif loss == "squared_error":
        mag = (p - t) ** 2
    else:
        mag = np.abs(rl[:, None]) + 1  # logs of clipped probabilities, all <= ~37
    bound = 16 * e * (w[:, None] * mag).sum() + 1e-300
    assert_within(total, expected, bound, err_msg=f"{loss} {dtype.__name__}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss", LOSSES)
def test_loss_matches_sklearn_loss_functions(loss, dtype, global_random_seed):
    # scikit-learn's own loss functions (the reference implementation): the
    # kernel's total, divided by sw_sum (and 2 * n_outputs for squared error),
    # is the loss scikit-learn reports.
    from sklearn.neural_network._base import LOSS_FUNCTIONS

    rng = np.random.RandomState(global_random_seed)
    n, k = 13, 3 if loss != "binary_log_loss" else 2
    out = rng.uniform(0.001, 0.999, size=(n, k))
    if loss == "log_loss":
        out /= out.sum(axis=1, keepdims=True)
    out[0, 0] = 0.0 if loss != "poisson" else out[0, 0]  # clipping at work
    out[1, -1] = 1.0 if loss in ("log_loss", "binary_log_loss") else out[1, -1]
    y = ref.make_targets(rng, {"log_loss": "softmax", "binary_log_loss": "logistic",
                               "squared_error": "identity", "poisson": "exp"}[loss],
                         n, k, np.float64)
    sw = rng.uniform(0, 3, size=n)
    out, y, sw = out.astype(dtype), y.astype(dtype), sw.astype(dtype)
    for weights in (None, sw):
        total = _testing._kernel_loss(loss, out, y, weights, np.empty_like(out))
        sw_sum = n if weights is None else float(weights.astype(np.float64).sum())
        got = total / sw_sum
        if loss == "squared_error":
            got = got / (2 * k)
        expected = LOSS_FUNCTIONS[loss](y, out, weights)
        np.testing.assert_allclose(got, expected, rtol=64 * eps(dtype))


def test_loss_empty():
    for shape in [(0, 3), (3, 0)]:
        out = np.zeros(shape)
        assert _testing._kernel_loss("log_loss", out, out, None, out.copy()) == 0.0


# ---------------------------------------------------------------------------
# Optimizer steps
# ---------------------------------------------------------------------------
def _sgd_reference(w, g_raw, v, alpha, sw_sum, lr, mu, nesterov):
    """scikit-learn's SGDOptimizer update, in longdouble, with error scales."""
    W = WIDE
    w, g_raw, v = w.astype(W), g_raw.astype(W), v.astype(W)
    g = (g_raw + W(alpha) * w) / W(sw_sum)
    G = (np.abs(g_raw) + abs(alpha) * np.abs(w)) / W(sw_sum)  # |terms| of g
    v_new = W(mu) * v - W(lr) * g
    V = W(mu) * np.abs(v) + W(lr) * G
    upd = W(mu) * v_new - W(lr) * g if nesterov else v_new
    U = W(mu) * V + W(lr) * G if nesterov else V
    return w + upd, v_new, np.abs(w) + U, V


def _adam_reference(w, g_raw, m, v, alpha, sw_sum, lr_t, b1, b2, epsilon):
    """scikit-learn's AdamOptimizer update (lr_t already bias-corrected)."""
    W = WIDE
    w, g_raw, m, v = w.astype(W), g_raw.astype(W), m.astype(W), v.astype(W)
    g = (g_raw + W(alpha) * w) / W(sw_sum)
    G = (np.abs(g_raw) + abs(alpha) * np.abs(w)) / W(sw_sum)
    m_new = W(b1) * m + (1 - W(b1)) * g
    v_new = W(b2) * v + (1 - W(b2)) * g * g
    den = np.sqrt(v_new) + W(epsilon)
    w_new = w - W(lr_t) * m_new / den
    M = W(b1) * np.abs(m) + (1 - W(b1)) * G
    V = W(b2) * v + (1 - W(b2)) * G * G
    return w_new, m_new, v_new, M, V, den


@st.composite
def optimizer_case(draw, dtype):
    n = draw(st.integers(0, 30), label="size")
    w = draw(array(dtype, (n,), -10, 10), label="params")
    g = draw(array(dtype, (n,), -1e3, 1e3), label="grad_raw")
    alpha = draw(st.sampled_from([0.0, 1e-4, 0.1, 10.0]), label="alpha")
    sw_sum = draw(st.sampled_from([1.0, 3.0, 200.0, 0.37, 1e4]), label="sw_sum")
    lr = draw(st.sampled_from([1e-4, 1e-3, 0.1, 1.0]), label="lr")
    return n, w, g, alpha, sw_sum, lr


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_sgd_step(dtype, data):
    n, w, g, alpha, sw_sum, lr = data.draw(optimizer_case(dtype))
    mu = data.draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]), label="momentum")
    nesterov = data.draw(st.booleans(), label="nesterov")
    v = data.draw(array(dtype, (n,), -1, 1), label="velocity")

    w_ref, v_ref, W_mag, V_mag = _sgd_reference(w, g, v, alpha, sw_sum, lr, mu, nesterov)
    params, vel = w.copy(), v.copy()
    _testing._kernel_optimizer_step("sgd", params, g, vel, None, alpha, sw_sum, lr,
                                   momentum=mu, nesterov=nesterov)
    e = eps(dtype)
    assert params.dtype == dtype and vel.dtype == dtype
    assert_within(vel, v_ref, 8 * e * V_mag + tiny(dtype), err_msg="velocity")
    assert_within(params, w_ref, 8 * e * W_mag + tiny(dtype), err_msg="params")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_adam_step(dtype, data):
    n, w, g, alpha, sw_sum, lr = data.draw(optimizer_case(dtype))
    b1 = data.draw(st.sampled_from([0.0, 0.9, 0.5]), label="beta_1")
    b2 = data.draw(st.sampled_from([0.0, 0.999, 0.9]), label="beta_2")
    epsilon = data.draw(st.sampled_from([1e-8, 1e-3, 1.0]), label="epsilon")
    m = data.draw(array(dtype, (n,), -1, 1), label="m")
    v = data.draw(array(dtype, (n,), 0, 1), label="v")

    w_ref, m_ref, v_ref, M, V, den = _adam_reference(w, g, m, v, alpha, sw_sum, lr,
                                                     b1, b2, epsilon)
    params, m1, v1 = w.copy(), m.copy(), v.copy()
    _testing._kernel_optimizer_step("adam", params, g, m1, v1, alpha, sw_sum, lr,
                                   beta_1=b1, beta_2=b2, epsilon=epsilon)
    _assert_adam_within(params, m1, v1, (w_ref, m_ref, v_ref, M, V, den), lr,
                        4 * eps(dtype) * np.abs(w_ref), dtype)


def _assert_adam_within(params, m1, v1, reference, lr, err_w, dtype):
    """An Adam step's moments and parameters against _adam_reference's, to
    the bounds of their roundings; err_w: the parameters' own bound."""
    w_ref, m_ref, v_ref, M, V, den = reference
    e = eps(dtype)
    err_m = 8 * e * M + tiny(dtype)
    err_v = 8 * e * V + tiny(dtype)
    assert_within(m1, m_ref, err_m, err_msg="first moment")
    assert_within(v1, v_ref, err_v, err_msg="second moment")
    # the step lr * m / (sqrt(v) + eps): first-order error propagation from
    # the moments' bounds, plus its own few roundings
    err_den = np.minimum(err_v / (2 * np.sqrt(v_ref) + tiny(dtype)), np.sqrt(err_v)) \
        + 4 * e * den
    step = np.abs(m_ref) / den
    err_step = lr * (err_m / den + step * err_den / den) + 8 * e * lr * step
    assert_within(params, w_ref, err_step + err_w + tiny(dtype), err_msg="params")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(60)
@given(data=st.data())
def test_adamw_step(dtype, data):
    """AdamW: w * (1 - lr * weight_decay) plus Adam's update from the
    gradient at the weights before the decay (numpy, in long double)."""
    n, w, g, alpha, sw_sum, lr_t = data.draw(optimizer_case(dtype))
    lr0 = data.draw(st.sampled_from([1e-3, 0.01, 0.5]), label="learning_rate_init")
    wd = data.draw(st.sampled_from([0.0, 0.01, 0.1, 1.0]), label="weight_decay")
    scale = data.draw(st.sampled_from([1.0, 0.5, 1e-3]), label="grad_scale")
    m = data.draw(array(dtype, (n,), -1, 1), label="m")
    v = data.draw(array(dtype, (n,), 0, 1), label="v")
    w_adam, m_ref, v_ref, M, V, den = _adam_reference(w, g * WIDE(scale), m, v,
                                                      alpha * scale, sw_sum, lr_t,
                                                      0.9, 0.999, 1e-3)
    w_ref = w.astype(WIDE) * (1 - WIDE(lr0) * WIDE(wd)) + (w_adam - w.astype(WIDE))
    params, g1, m1, v1 = w.copy(), g.copy(), m.copy(), v.copy()
    _testing._kernel_optimizer_step("adamw", params, g1, m1, v1, alpha, sw_sum, lr_t,
                                   epsilon=1e-3, weight_decay=wd, learning_rate_init=lr0,
                                   grad_scale=scale)
    # the decay's product: a few roundings of |w|
    _assert_adam_within(params, m1, v1, (w_ref, m_ref, v_ref, M, V, den), lr_t,
                        8 * eps(dtype) * np.abs(w), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [0, 1, 17, 1003])
def test_adamw_without_decay_is_adam(dtype, n, global_random_seed):
    """weight_decay 0: AdamW's step writes Adam's bits, on every Adam path."""
    rng = np.random.default_rng(global_random_seed)
    w0 = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    m0, v0 = rng.standard_normal(n).astype(dtype), rng.uniform(0, 1, n).astype(dtype)
    for path in _testing._ADAM_PATHS:
        try:
            _testing._adam_path_code(path)
        except ValueError:
            continue  # a path this CPU or build lacks
        runs = []
        for kind in ("adam", "adamw"):
            w, m, v = w0.copy(), m0.copy(), v0.copy()
            sq = _testing._kernel_optimizer_step(kind, w, g.copy(), m, v, 1e-3, 32.0, 1e-2,
                                                return_sum_squares=True, path=path,
                                                weight_decay=0.0, learning_rate_init=0.1)
            runs.append((w, m, v, sq))
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 9, 1003, 100_003])
def test_clip_factor_matches_numpy(dtype, n, global_random_seed):
    """The gradient's squared norm (coefficients with the L2 term,
    intercepts without, over sw_sum) and torch's clip_grad_norm_ factor."""
    rng = np.random.default_rng(global_random_seed)
    w = rng.standard_normal(n).astype(dtype)
    g = (rng.standard_normal(n) * 10).astype(dtype)
    n_coefs = (2 * n) // 3
    alpha, sw_sum = 0.3, 7.0
    grad = (g.astype(WIDE) + np.where(np.arange(n) < n_coefs, WIDE(alpha), 0) * w) / sw_sum
    sq_ref = float(np.sum(grad * grad))
    norm = math.sqrt(sq_ref)
    for max_norm in (norm / 3, norm * 2):
        sq, factor = _testing._kernel_clip_factor(w, g, n_coefs, alpha, sw_sum, max_norm)
        assert sq == pytest.approx(sq_ref, rel=n * 4 * eps(dtype))
        want = min(1.0, max_norm / (norm + 1e-6))
        assert factor == pytest.approx(want, rel=n * 4 * eps(dtype))
    # torch's edge cases: an infinite norm zeroes the gradient, NaN spreads
    g[0] = np.inf
    assert _testing._kernel_clip_factor(w, g, n_coefs, alpha, sw_sum, 1.0)[1] == 0.0
    g[0] = np.nan
    assert math.isnan(_testing._kernel_clip_factor(w, g, n_coefs, alpha, sw_sum, 1.0)[1])


@pytest.mark.parametrize("kind", OPTIMIZER_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 1003, 100_003])
def test_optimizer_step_sum_of_squares(kind, dtype, n, global_random_seed):
    """The step that also returns the sum of squares of the weights it writes
    (the next minibatch's L2 penalty) writes the same bits as the step that
    does not, and its sum is the exact sum (math.fsum) of the new weights'
    squares within the rounding bound of its order: 16 lanes, each summing
    blocks of up to 64 squares in the weights' dtype, the blocks added in
    double, the lanes in a tree of 4 levels (positive terms: relative error
    at most (terms + 1) unit roundoffs per stage)."""
    rng = np.random.default_rng(global_random_seed)
    w0 = (rng.standard_normal(n) * rng.uniform(0.1, 10)).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    states = [rng.standard_normal(n).astype(dtype), rng.uniform(0, 1, n).astype(dtype)]
    if kind == "sgd":
        states[1] = None
    runs = []
    for want in (False, True):
        w, s = w0.copy(), [None if a is None else a.copy() for a in states]
        # (adamw decays and adds the L2 term into its gradient: a copy each)
        sq = _testing._kernel_optimizer_step(kind, w, g.copy(), s[0], s[1], 1e-3, 32.0, 1e-2,
                                            return_sum_squares=want, weight_decay=0.1,
                                            learning_rate_init=1e-2)
        runs.append((w, s, sq))
    (w_plain, s_plain, none), (w, s, sq) = runs
    assert none is None
    np.testing.assert_array_equal(w, w_plain)
    for a, b in zip(s, s_plain):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    exact = math.fsum(float(v) ** 2 for v in w.astype(np.float64))
    u, u64 = np.finfo(dtype).eps / 2, 2.0**-53
    per_lane = math.ceil(n / 16)
    blocks = math.ceil(per_lane / 64)
    if dtype == np.float32:
        bound = (min(per_lane, 64) + 1) * u + (blocks + 5) * u64
    else:
        bound = (per_lane + blocks + 5) * u64
    assert abs(sq - exact) <= bound * exact


def test_optimizer_step_rejects_bad_arguments():
    a = np.zeros(3)
    with pytest.raises(ValueError):
        _testing._kernel_optimizer_step("adam", a, a.copy(), a.copy(), None, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError):
        _testing._kernel_optimizer_step("sgd", a, np.zeros(4), a.copy(), None, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError):
        _testing._kernel_optimizer_step("rmsprop", a, a.copy(), a.copy(), None, 0.0, 1.0, 0.1)


# ---------------------------------------------------------------------------
# Whole network: forward pass, backprop gradient, sparse products, an epoch
# ---------------------------------------------------------------------------
OUT_ACTS = list(ref.OUTPUTS)


@st.composite
def network_case(draw, dtype, sparse=False):
    n_features = draw(st.integers(1, 6), label="n_features")
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3), label="hidden")
    out_act = draw(st.sampled_from(OUT_ACTS), label="out_act")
    n_out = draw(st.integers(3 if out_act == "softmax" else 1, 4), label="n_outputs")
    act = draw(st.sampled_from(HIDDEN), label="activation")
    n = draw(st.integers(1, 24), label="n_samples")
    seed_ = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.RandomState(seed_)
    units = [n_features] + hidden + [n_out]
    params = ref.random_network(rng, units, dtype)
    X = rng.normal(size=(n, n_features))
    if sparse:
        X[rng.uniform(size=X.shape) < 0.6] = 0
    X = X.astype(dtype)
    Y = ref.make_targets(rng, out_act, n, n_out, dtype)
    sw = None
    if draw(st.booleans(), label="weighted"):
        sw = rng.uniform(0, 2, size=n).astype(dtype)
        sw[0] = 1  # not all zero
    alpha = draw(st.sampled_from([0.0, 1e-4, 0.5]), label="alpha")
    return units, act, out_act, X, Y, sw, params, alpha


def _network(units, act, out_act):
    # leaky_relu with a slope that is not the default, to see it is used
    return _engine.Network(units, act, out_act, ref.OUTPUTS[out_act],
                           negative_slope=SLOPE)


SLOPE = 0.2


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(50)
@given(data=st.data())
def test_forward_pass(dtype, data):
    units, act, out_act, X, _, _, params, _ = data.draw(network_case(dtype))
    net = _network(units, act, out_act)
    assert net.n_params == ref.n_params(units) == len(params)
    coefs, intercepts = net.views(params)
    # the views are the scikit-learn lbfgs layout of the packed buffer
    rc, ri = ref.unpack(params, units)
    for a, b in zip(coefs + intercepts, rc + ri):
        assert_array_equal(a, b)
        assert np.shares_memory(a, params)
    out = net.predict(X, coefs, intercepts)
    assert out.dtype == dtype and out.shape == (X.shape[0], units[-1])
    acts, _ = ref.forward(X, coefs, intercepts, act, out_act, SLOPE)
    tol = ref.forward_tolerance(X, coefs, intercepts, act, out_act, dtype, slope=SLOPE)
    assert_within(out, acts[-1], tol, err_msg=f"{units} {act}/{out_act}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("chunk_rows", [None, 1, 7, 256, 1024])
def test_forward_pass_many_rows(dtype, chunk_rows, global_random_seed):
    # many rows in chunks of every kind of size (None: the engine's own choice),
    # with a ragged last chunk
    rng = np.random.RandomState(global_random_seed)
    units = [5, 7, 4, 3]
    params = ref.random_network(rng, units, dtype)
    X = rng.normal(size=(1024 * 2 + 256 + 17, 5)).astype(dtype)
    net = _network(units, "tanh", "softmax")
    coefs, intercepts = net.views(params)
    out = net.predict(X, coefs, intercepts, chunk_rows=chunk_rows)
    acts, _ = ref.forward(X, coefs, intercepts, "tanh", "softmax")
    assert_within(out, acts[-1], ref.forward_tolerance(X, coefs, intercepts, "tanh",
                                                       "softmax", dtype))
    # row-by-row prediction gives the same rows as the chunked one
    for i in [0, 6, 7, 255, 256, 1023, 1024, 2047, 2048, 2303, 2304, len(X) - 1]:
        one = net.predict(np.ascontiguousarray(X[i:i + 1]), coefs, intercepts)
        np.testing.assert_allclose(one[0], out[i], rtol=10 * eps(dtype), atol=tiny(dtype))
    # a NaN in any chunk is found (predict then returns None)
    for i in [0, 7, 1024, len(X) - 1]:
        X_bad = X.copy()
        X_bad[i, 4] = np.nan
        assert net.predict(X_bad, coefs, intercepts, check_finite=True,
                           chunk_rows=chunk_rows) is None
    assert net.predict(X, coefs, intercepts, check_finite=True,
                       chunk_rows=chunk_rows) is not None


def _loss_grad(net, X, Y, sw, params, alpha):
    trainer = _engine.Trainer(net, params.dtype, X.shape[0])
    trainer.grad[...] = np.nan  # every entry must be written
    loss, grad = trainer.loss_grad(X, Y, sw, params, alpha)
    return loss, grad.copy()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(50)
@given(data=st.data())
def test_loss_grad_matches_backprop_reference(dtype, data):
    units, act, out_act, X, Y, sw, params, alpha = data.draw(network_case(dtype))
    net = _network(units, act, out_act)
    loss, grad = _loss_grad(net, X, Y, sw, params, alpha)
    value, expected = ref.loss_and_grad(X, Y, sw, params, units, act, out_act,
                                        ref.OUTPUTS[out_act], alpha, dtype, SLOPE)
    e = eps(dtype)
    scale = ref.gradient_scale(X, Y, sw, params, units, act, out_act, alpha, SLOPE)
    k = X.shape[0] + max(units) + 10
    assert grad.dtype == dtype
    assert_within(grad, expected, 8 * k * e * scale + tiny(dtype),
                  err_msg=f"{units} {act}/{out_act} alpha={alpha}")
    # the loss: the outputs are accurate to forward_tolerance; through the
    # (Lipschitz on clipped probabilities) losses that is a relative error of
    # order k eps
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, float(value), rtol=64 * k * e, atol=64 * k * e)


# ---- sparse input --------------------------------------------------------
@st.composite
def csr_variant(draw, X):
    """A CSR matrix equal to dense X, in one of the layouts scipy allows:
    int32 or int64 indices, unsorted column indices, duplicate entries (summed),
    explicit zeros, csr_matrix or csr_array."""
    index_dtype = draw(st.sampled_from([np.int32, np.int64]), label="index dtype")
    unsorted = draw(st.booleans(), label="unsorted")
    duplicates = draw(st.booleans(), label="duplicates")
    explicit_zeros = draw(st.booleans(), label="explicit zeros")
    array_api = draw(st.booleans(), label="csr_array")
    rng = np.random.RandomState(draw(st.integers(0, 1000), label="layout seed"))
    data, indices, indptr = [], [], [0]
    for row in X:
        cols = list(np.flatnonzero(row))
        vals = [row[c] for c in cols]
        if explicit_zeros:
            zero_cols = np.flatnonzero(row == 0)
            if len(zero_cols):
                c = int(rng.choice(zero_cols))
                cols.append(c)
                vals.append(row.dtype.type(0))
        if duplicates and cols:
            j = rng.randint(len(cols))
            # split an entry into two halves: exact in binary floating point
            # when the value is not subnormal
            half = vals[j] / 2
            if half * 2 == vals[j]:
                vals[j] = half
                cols.append(cols[j])
                vals.append(half)
        order = rng.permutation(len(cols)) if unsorted else np.arange(len(cols))
        data.extend(vals[i] for i in order)
        indices.extend(cols[i] for i in order)
        indptr.append(len(data))
    cls = sp.csr_array if array_api else sp.csr_matrix
    M = cls((np.asarray(data, dtype=X.dtype).reshape(-1),
             np.asarray(indices, dtype=index_dtype),
             np.asarray(indptr, dtype=index_dtype)), shape=X.shape)
    # scipy may upcast small index arrays; force the drawn dtype back
    M.indices = M.indices.astype(index_dtype)
    M.indptr = M.indptr.astype(index_dtype)
    assert_array_equal(M.toarray(), X)
    return M


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(50)
@given(data=st.data())
def test_sparse_products_match_dense(dtype, data):
    units, act, out_act, X, Y, sw, params, alpha = data.draw(network_case(dtype, sparse=True))
    if data.draw(st.booleans(), label="empty rows"):
        X[::2] = 0
    Xs = data.draw(csr_variant(X))
    net = _network(units, act, out_act)
    coefs, intercepts = net.views(params)

    # forward: X @ W through the CSR product, against the dense reference
    out_s = net.predict(Xs, coefs, intercepts)
    acts, _ = ref.forward(X, coefs, intercepts, act, out_act, SLOPE)
    tol = ref.forward_tolerance(X, coefs, intercepts, act, out_act, dtype, slope=SLOPE)
    assert_within(out_s, acts[-1], tol, err_msg="sparse forward")
    # and against the engine's own dense path, to the same bound
    out_d = net.predict(X, coefs, intercepts)
    assert_within(out_s, out_d.astype(WIDE), 2 * tol, err_msg="sparse vs dense")

    # backward: X^T @ delta through the CSR product
    loss_s, grad_s = _loss_grad(net, Xs, Y, sw, params, alpha)
    value, expected = ref.loss_and_grad(X, Y, sw, params, units, act, out_act,
                                        ref.OUTPUTS[out_act], alpha, dtype, SLOPE)
    scale = ref.gradient_scale(X, Y, sw, params, units, act, out_act, alpha, SLOPE)
    k = X.shape[0] + max(units) + 10
    assert_within(grad_s, expected, 8 * k * eps(dtype) * scale + tiny(dtype),
                  err_msg="sparse gradient")
    np.testing.assert_allclose(loss_s, float(value), rtol=64 * k * eps(dtype),
                               atol=64 * k * eps(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sparse_without_stored_values(dtype):
    # a CSR matrix with no stored value at all (nnz == 0): the products are zero
    units = [4, 3, 2]
    rng = np.random.RandomState(0)
    params = ref.random_network(rng, units, dtype)
    net = _network(units, "relu", "logistic")
    coefs, intercepts = net.views(params)
    for Xs in (sp.csr_matrix((5, 4), dtype=dtype), sp.csr_array((1, 4), dtype=dtype)):
        out = net.predict(Xs, coefs, intercepts)
        acts, _ = ref.forward(Xs.toarray(), coefs, intercepts, "relu", "logistic")
        assert_within(out, acts[-1], ref.forward_tolerance(
            Xs.toarray(), coefs, intercepts, "relu", "logistic", dtype))
        Y = np.ones((Xs.shape[0], 2), dtype=dtype)
        _, grad = _loss_grad(net, Xs, Y, None, params, 0.0)
        assert np.all(grad[:12] == 0)  # first-layer coefficients: X^T delta = 0
        assert np.isfinite(grad).all()


# ---- one training epoch ----------------------------------------------------
def _reference_epoch(X, Y, sw, order, batch_size, params, units, act, out_act, opt):
    """scikit-learn's minibatch loop (gen_batches over the visiting order),
    each step with the reference gradient and optimizer, in longdouble."""
    params = params.astype(WIDE)
    s1 = np.zeros_like(params)
    s2 = np.zeros_like(params)
    n = X.shape[0]
    idx = np.arange(n) if order is None else order
    t = 0
    loss_sum = WIDE(0)
    for start in range(0, n, batch_size):
        rows = idx[start:start + batch_size]
        swb = None if sw is None else sw[rows]
        value, grad = ref.loss_and_grad(X[rows], Y[rows], swb, params, units, act,
                                        out_act, ref.OUTPUTS[out_act], opt["alpha"],
                                        X.dtype, SLOPE)
        loss_sum += value * len(rows)
        if opt.get("max_grad_norm") is not None:  # torch's clip_grad_norm_
            coef = WIDE(opt["max_grad_norm"]) / (np.sqrt(np.sum(grad * grad)) + WIDE(1e-6))
            if coef < 1:
                grad = grad * coef
        if opt["kind"] == "sgd":
            v = opt["momentum"] * s1 - opt["lr"] * grad
            s1 = v
            upd = opt["momentum"] * v - opt["lr"] * grad if opt["nesterov"] else v
        else:
            t += 1
            lr_t = opt["lr"] * np.sqrt(1 - opt["beta_2"] ** t) / (1 - opt["beta_1"] ** t)
            s1 = opt["beta_1"] * s1 + (1 - opt["beta_1"]) * grad
            s2 = opt["beta_2"] * s2 + (1 - opt["beta_2"]) * grad * grad
            upd = -lr_t * s1 / (np.sqrt(s2) + opt["epsilon"])
            if opt["kind"] == "adamw":  # torch's AdamW: decay, then Adam's update
                params = params * (1 - WIDE(opt["lr"]) * WIDE(opt["weight_decay"]))
        params = params + upd
    return params, loss_sum, t


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", OPTIMIZER_KINDS)
@seed(HYPOTHESIS_SEED)
@hsettings(25)
@given(data=st.data())
def test_train_epoch_matches_reference(kind, dtype, data):
    sparse = data.draw(st.booleans(), label="sparse")
    units, act, out_act, X, Y, sw, params, alpha = data.draw(network_case(dtype, sparse))
    n = X.shape[0]
    batch_size = data.draw(st.integers(1, n), label="batch_size")
    shuffled = data.draw(st.booleans(), label="shuffled")
    order = np.random.RandomState(n).permutation(n).astype(np.intp) if shuffled else None
    opt = {"kind": kind, "alpha": alpha, "lr": 1e-2, "momentum": 0.9,
           "nesterov": data.draw(st.booleans(), label="nesterov"),
           "beta_1": 0.9, "beta_2": 0.999,
           # an epsilon that keeps adam's m / sqrt(v) well conditioned: with
           # 1e-8 a gradient that is zero up to rounding flips the step's sign
           "epsilon": 1e-3, "t": 0,
           "weight_decay": data.draw(st.sampled_from([0.0, 0.1, 5.0]), label="weight_decay"),
           "max_grad_norm": data.draw(st.sampled_from([None, 1e-3, 0.1, 10.0]),
                                      label="max_grad_norm")}
    settings = {"kind": kind, "learning_rate_init": opt["lr"], "momentum": opt["momentum"],
                "nesterovs_momentum": opt["nesterov"], "beta_1": opt["beta_1"],
                "beta_2": opt["beta_2"], "epsilon": opt["epsilon"], "t": 0,
                "weight_decay": opt["weight_decay"], "max_grad_norm": opt["max_grad_norm"]}
    if sw is not None:
        sw[:] = np.maximum(sw, 0.1)  # no minibatch of weight zero here
    Xin = data.draw(csr_variant(X)) if sparse else X
    net = _network(units, act, out_act)
    p = params.copy()
    settings["state1"] = np.zeros_like(p)
    settings["state2"] = np.zeros_like(p) if kind in ("adam", "adamw") else None
    gather = order is not None and not sparse
    trainer = _engine.Trainer(net, dtype, batch_size, gather=gather, optimizer=settings)
    loss_sum = trainer.run_epoch(Xin, Y, sw, order, p, alpha, opt["lr"])
    t = trainer.t

    p_ref, loss_ref, t_ref = _reference_epoch(X, Y, sw, order, batch_size, params, units,
                                              act, out_act, opt)
    n_steps = -(-n // batch_size)
    assert t == (t_ref if kind in ("adam", "adamw") else 0)
    # a tolerance relative to the size of the parameters and of the steps:
    # each step is accurate to ~k eps of its size, and errors add up
    k = batch_size + max(units) + 10
    e = eps(dtype)
    step = np.abs(p_ref - params.astype(WIDE)) + opt["lr"]
    tol = 16 * k * e * n_steps * (np.abs(p_ref) + step * 100)
    assert_within(p, p_ref, tol, err_msg=f"{kind} {units} {act}/{out_act} bs={batch_size}")
    np.testing.assert_allclose(loss_sum, float(loss_ref), rtol=256 * k * e, atol=256 * k * e)


# ---------------------------------------------------------------------------
# Finiteness check of predict's input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@seed(HYPOTHESIS_SEED)
@hsettings(200)
@given(data=st.data())
def test_all_finite_matches_numpy(dtype, data):
    # Any bit pattern: subnormals, -0.0, NaNs with any payload and sign, +-inf.
    n = data.draw(st.integers(0, 70))
    uint = np.uint32 if dtype == np.float32 else np.uint64
    bits = data.draw(hnp.arrays(uint, n, elements=st.integers(0, np.iinfo(uint).max)))
    x = bits.view(dtype)
    # plus a few specials at drawn positions, so every case is exercised often
    for _ in range(data.draw(st.integers(0, 2))):
        if n:
            i = data.draw(st.integers(0, n - 1))
            x[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0,
                                              np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal]))
    assert _testing._kernel_all_finite(x) == bool(np.isfinite(x).all())
