"""Numerical robustness: extreme inputs, saturated activations, probabilities
at 0 and 1, in float32 and float64.

Where the mathematical result is finite, cymlp must not produce NaN or inf
(in predictions, probabilities, losses). Where training really diverges it
must raise scikit-learn's "Solver produced non-finite parameter weights"
ValueError, exactly when scikit-learn does on the same input.

References: the closed-form limits (logistic(+-inf) = 1/0, softmax of a
dominant logit = one-hot, ...), numpy in extended precision, and
scikit-learn's estimators run on the same data and weights.
"""

import warnings

import _kernel_reference as ref
import numpy as np
import pytest
from _kernel_reference import WIDE
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp
from cymlp import _engine
from cymlp._engine import _testing

DTYPES = [np.float32, np.float64]
IDS = ["f32", "f64"]
NONFINITE = "Solver produced non-finite parameter weights"


def _big(dtype):
    return 1e30 if dtype == np.float32 else 1e300


def _small(dtype):
    return 1e-30 if dtype == np.float32 else 1e-300


# ---------------------------------------------------------------------------
# Kernels at their limits
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_logistic_and_tanh_saturate(dtype):
    big = _big(dtype)
    v = np.array([[-big, -1e4, -800.0, -100.0, -30.0, 0.0, 30.0, 100.0, 800.0, 1e4, big]],
                 dtype=dtype)
    for name, lo, hi in [("logistic", 0.0, 1.0), ("tanh", -1.0, 1.0)]:
        z = v.copy()
        _testing._kernel_activation(name, z, np.zeros(z.shape[1], dtype=dtype))
        assert np.isfinite(z).all(), (name, z)
        assert (z >= lo).all() and (z <= hi).all()
        assert z[0, 0] == lo and z[0, -1] == hi  # the exact limits
        assert_allclose(z.astype(WIDE), ref.activation(name, v), rtol=4 * ref.eps(dtype),
                        atol=ref.tiny(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_relu_identity_extremes(dtype):
    big = np.finfo(dtype).max / 4
    z = np.array([[-big, -_small(dtype), 0.0, _small(dtype), big]], dtype=dtype)
    for name in ("relu", "identity"):
        out = z.copy()
        _testing._kernel_activation(name, out, np.zeros(5, dtype=dtype))
        assert_array_equal(out, np.maximum(z, 0) if name == "relu" else z)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_softmax_of_large_logits(dtype):
    fmax = float(np.finfo(dtype).max)
    z = np.array([
        [fmax, -fmax, 0.0],            # one dominant logit
        [fmax, fmax, fmax],            # all equal and huge: uniform
        [-fmax, -fmax, -fmax],         # all equal and hugely negative: uniform
        [1e4, 1e4 - 1.0, -1e4],        # large but close: exp(-1) ratio
        [-1e4, -1e4, -1e4 + 2.0],
    ], dtype=dtype)
    out = z.copy()
    _testing._kernel_activation("softmax", out, np.zeros(3, dtype=dtype))
    assert np.isfinite(out).all()
    assert_allclose(out.sum(axis=1), 1, rtol=8 * ref.eps(dtype))
    e = np.exp(WIDE(-1))
    expected = np.array([
        [1, 0, 0],
        [1 / 3, 1 / 3, 1 / 3],
        [1 / 3, 1 / 3, 1 / 3],
        [1 / (1 + e), e / (1 + e), 0],
        [1 / (2 + np.exp(WIDE(2))), 1 / (2 + np.exp(WIDE(2))),
         np.exp(WIDE(2)) / (2 + np.exp(WIDE(2)))],
    ], dtype=WIDE)
    assert_allclose(out.astype(WIDE), expected, rtol=16 * ref.eps(dtype), atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("loss", ["log_loss", "binary_log_loss"])
def test_log_losses_at_probabilities_zero_and_one(loss, dtype):
    # the logs of clipped probabilities: finite, and equal to the clipped formula
    e = np.finfo(dtype).eps
    tiny = np.finfo(dtype).tiny
    p = np.array([0.0, tiny, e / 2, e, 0.5, 1 - e, 1 - e / 4, 1.0], dtype=dtype)
    out = np.repeat(p[:, None], 2, axis=1)
    if loss == "log_loss":
        out[:, 1] = (1 - out[:, 0].astype(WIDE)).astype(dtype)
    for y_col in (0, 1):
        y = np.zeros_like(out)
        y[:, y_col] = 1
        delta = np.empty_like(out)
        total = _testing._kernel_loss(loss, out, y, None, delta)
        assert np.isfinite(total) and np.isfinite(delta).all()
        expected = ref.row_losses(loss, out, y, dtype).sum()
        assert_allclose(total, float(expected), rtol=64 * e)
        # each term is at most -log(eps): the worst case is bounded
        assert total <= out.size * -np.log(float(e)) * 1.01


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_poisson_loss_with_tiny_predictions(dtype):
    # The exp output of a Poisson model underflows towards 0 for very negative
    # logits. While the prediction p is still positive the half deviance
    # y log(y / p) - y + p is finite (e.g. y = 1, p = 1e-40 in float32:
    # log(1e40) - 1 = 91.1), and the loss must be too. Forming y / p first
    # overflows (1 / 1e-40 > float32 max) and gives inf.
    tiny_p = {np.float32: [1e-30, 1e-38, 1e-40, 1e-45],
              np.float64: [1e-300, 1e-308, 1e-310, 5e-324]}[dtype]
    out = np.array(tiny_p, dtype=dtype)[:, None]
    assert (out > 0).all()
    y = np.ones_like(out)
    delta = np.empty_like(out)
    total = _testing._kernel_loss("poisson", out, y, None, delta)
    p = out.astype(WIDE)
    expected = (-np.log(p) - 1 + p).sum()  # y = 1: log(1 / p) - 1 + p
    assert np.isfinite(total), (
        f"poisson loss of y=1 at p={tiny_p} ({np.dtype(dtype).name}) is {total}, "
        f"expected {float(expected)}")
    assert_allclose(total, float(expected), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_poisson_loss_zero_targets_tiny_predictions(dtype):
    # y = 0: the loss is p itself, however small
    out = np.array([[0.0], [np.finfo(dtype).tiny], [1e-3]], dtype=dtype)
    y = np.zeros_like(out)
    total = _testing._kernel_loss("poisson", out, y, None, np.empty_like(out))
    assert_allclose(total, float(out.astype(WIDE).sum()), rtol=4 * ref.eps(dtype))


# ---------------------------------------------------------------------------
# Estimators: predictions on extreme inputs, against scikit-learn
# ---------------------------------------------------------------------------
def _fit_pair(kind, activation, dtype, seed, out_scale=1.0):
    """A scikit-learn model fitted on ordinary data, and a cymlp model that
    carries exactly the same weights (so any difference is cymlp's forward)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(60, 4)).astype(dtype)
    if kind == "binary":
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
    elif kind == "multiclass":
        y = np.argmax(X[:, :3], axis=1)
    else:
        y = X @ np.array([1.0, -2.0, 0.5, 3.0])
    Sk = SkMLPRegressor if kind == "regression" else SkMLPClassifier
    Cy = cymlp.MLPRegressor if kind == "regression" else cymlp.MLPClassifier
    params = dict(hidden_layer_sizes=(6, 5), activation=activation, max_iter=30,
                  random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = Sk(**params).fit(X, y)
        cy = Cy(**params).fit(X, y)
    # scale the output layer: large logits
    sk.coefs_[-1] = sk.coefs_[-1] * dtype(out_scale)
    cy.coefs_ = [c.copy() for c in sk.coefs_]
    cy.intercepts_ = [b.copy() for b in sk.intercepts_]
    return sk, cy


def _extreme_inputs(dtype, seed):
    rng = np.random.RandomState(seed + 1)
    base = rng.normal(size=(20, 4))
    big, small = _big(dtype), _small(dtype)
    return {
        "huge": (base * big).astype(dtype),
        "tiny": (base * small).astype(dtype),
        "subnormal": (base * np.finfo(dtype).tiny / 16).astype(dtype),
        "mixed": np.where(rng.uniform(size=base.shape) < 0.5, base * big,
                          base * small).astype(dtype),
        "zeros": np.zeros((3, 4), dtype=dtype),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu", "identity"])
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_classifier_probabilities_on_extreme_inputs(kind, activation, dtype,
                                                    global_random_seed):
    sk, cy = _fit_pair(kind, activation, dtype, global_random_seed)
    for name, X in _extreme_inputs(dtype, global_random_seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy overflow in sklearn
            expected = sk.predict_proba(X)
        got = cy.predict_proba(X)
        assert got.dtype == expected.dtype
        if np.isfinite(expected).all():
            # saturated or not, the probabilities are finite and sum to one
            assert np.isfinite(got).all(), (name, got)
            assert_allclose(got.sum(axis=1), 1, rtol=1e-5 if dtype == np.float32 else 1e-12)
            if name != "huge" and name != "mixed":
                assert_allclose(got, expected, rtol=1e-4 if dtype == np.float32 else 1e-9,
                                atol=1e-6 if dtype == np.float32 else 1e-12)
            else:
                # saturated layers: a unit sitting at an exact 0 / 1 / +-inf
                # boundary may differ by rounding, the class decision may not
                # unless the margin is tiny; compare the confident rows
                confident = np.abs(expected.max(axis=1) - 0.5) > 0.1
                assert_array_equal(got[confident].argmax(axis=1),
                                   expected[confident].argmax(axis=1))
        else:
            # the math overflows (a relu/identity layer of 1e300 * weights):
            # scikit-learn gives NaN too; nothing to require beyond that
            assert name in ("huge", "mixed") and activation in ("relu", "identity")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_large_logits_give_finite_probabilities(kind, dtype, global_random_seed):
    # output weights scaled up so that the logits are ~1e20 (float32) / ~1e200:
    # the softmax / logistic must saturate to exact 0 / 1, never NaN
    scale = 1e18 if dtype == np.float32 else 1e200
    sk, cy = _fit_pair(kind, "tanh", dtype, global_random_seed, out_scale=scale)
    X = np.random.RandomState(global_random_seed).normal(size=(40, 4)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = sk.predict_proba(X)
    got = cy.predict_proba(X)
    assert np.isfinite(expected).all()
    assert np.isfinite(got).all()
    assert_allclose(got.sum(axis=1), 1, rtol=1e-6)
    assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert_array_equal(cy.predict(X), sk.predict(X))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_regressor_saturated_hidden_layers(activation, dtype, global_random_seed):
    # bounded hidden units: any input, however large, gives a finite output
    sk, cy = _fit_pair("regression", activation, dtype, global_random_seed)
    for name, X in _extreme_inputs(dtype, global_random_seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = sk.predict(X)
        got = cy.predict(X)
        assert np.isfinite(got).all(), name
        if name not in ("huge", "mixed"):
            assert_allclose(got, expected, rtol=1e-4 if dtype == np.float32 else 1e-9,
                            atol=1e-5 if dtype == np.float32 else 1e-12)


# ---------------------------------------------------------------------------
# Training at the limits
# ---------------------------------------------------------------------------
def _outcome(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
        except ValueError as exc:
            return "ValueError", str(exc)
    return "ok", est


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_diverging_fit_raises_like_sklearn(kind, solver, dtype, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(50, 3))
    if kind == "regression":
        y = X @ np.array([1.0, 2.0, 3.0]) * 1e3
        Sk, Cy = SkMLPRegressor, cymlp.MLPRegressor
    else:
        X = X * (1e150 if dtype == np.float64 else 1e18)
        y = (X[:, 0] > 0).astype(int)
        Sk, Cy = SkMLPClassifier, cymlp.MLPClassifier
    X = X.astype(dtype)
    params = dict(solver=solver, hidden_layer_sizes=(5,), max_iter=20,
                  random_state=global_random_seed,
                  learning_rate_init=1e4 if solver == "sgd" else 1e6)
    sk_outcome = _outcome(Sk(**params), X, y)
    cy_outcome = _outcome(Cy(**params), X, y)
    assert cy_outcome[0] == sk_outcome[0], (sk_outcome, cy_outcome)
    if sk_outcome[0] == "ValueError":
        assert NONFINITE in sk_outcome[1]
        assert cy_outcome[1] == sk_outcome[1]
    else:
        est = cy_outcome[1]
        assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
        assert np.isfinite(est.predict(X)).all() or kind == "regression"


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_sgd_divergence_always_raises(dtype, global_random_seed):
    # a learning rate no problem survives: sklearn and cymlp both raise
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(40, 3)).astype(dtype)
    y = (X @ np.array([1.0, 2.0, 3.0]) * 1e3).astype(dtype)
    params = dict(solver="sgd", hidden_layer_sizes=(5,), max_iter=20,
                  learning_rate_init=1e6, random_state=global_random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=NONFINITE):
            SkMLPRegressor(**params).fit(X, y)
        with pytest.raises(ValueError, match=NONFINITE):
            cymlp.MLPRegressor(**params).fit(X, y)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_fit_on_huge_and_tiny_inputs(activation, solver, dtype, global_random_seed):
    # columns of 1e+-300 (1e+-30 in float32): the same outcome as scikit-learn,
    # and when the fit succeeds, finite weights, loss and predictions
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(40, 3))
    X[:, 0] *= _big(dtype)
    X[:, 1] *= _small(dtype)
    X = X.astype(dtype)
    y = (X[:, 2] > 0).astype(int)
    params = dict(solver=solver, activation=activation, hidden_layer_sizes=(4,),
                  max_iter=10, random_state=global_random_seed)
    sk_outcome = _outcome(SkMLPClassifier(**params), X, y)
    cy_outcome = _outcome(cymlp.MLPClassifier(**params), X, y)
    assert cy_outcome[0] == sk_outcome[0], (sk_outcome, cy_outcome)
    if cy_outcome[0] == "ok":
        sk, est = sk_outcome[1], cy_outcome[1]
        assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
        # lbfgs reports scipy's last function value, which can come from a
        # rejected trial point where 1e300-sized activations overflowed
        # (scikit-learn's loss_ is then NaN as well)
        assert np.isfinite(est.loss_) or not np.isfinite(sk.loss_)
        proba = est.predict_proba(X)
        assert np.isfinite(proba).all()
    else:
        assert cy_outcome[1] == sk_outcome[1]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_saturating_classifier_keeps_finite_loss(solver, dtype, global_random_seed):
    # a separable problem trained hard: outputs reach probabilities 0 and 1;
    # the clipped log loss keeps every loss value finite, as in scikit-learn
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(60, 2)).astype(dtype) * 20
    y = (X[:, 0] > 0).astype(int)
    params = dict(solver=solver, hidden_layer_sizes=(8,), learning_rate_init=0.5,
                  max_iter=30, random_state=global_random_seed, tol=0)
    sk_outcome = _outcome(SkMLPClassifier(**params), X, y)
    cy_outcome = _outcome(cymlp.MLPClassifier(**params), X, y)
    assert cy_outcome[0] == sk_outcome[0]
    if sk_outcome[0] == "ok":
        sk, cy = sk_outcome[1], cy_outcome[1]
        assert np.isfinite(cy.loss_curve_).all() == np.isfinite(sk.loss_curve_).all()
        assert np.isfinite(cy.loss_curve_).all()
        assert np.isfinite(cy.predict_proba(X)).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_poisson_regressor_with_tiny_predictions_keeps_finite_loss(dtype, global_random_seed):
    # Poisson targets that are mostly 0 with a few 1s, and an intercept pushed
    # so negative that the exp output underflows below float's range of
    # 1 / p: the training loss stays finite in the math, and must in cymlp.
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(30, 3)).astype(dtype)
    y = np.zeros(30, dtype=dtype)
    y[:3] = 1
    est = cymlp.MLPRegressor(loss="poisson", solver="sgd", hidden_layer_sizes=(3,),
                             max_iter=1, learning_rate_init=1e-12, shuffle=False,
                             random_state=global_random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        # push the output logit to ~-100 (float32) / ~-740 (float64): p > 0 but
        # 1 / p beyond the dtype's range
        est.intercepts_[-1][:] = -100 if dtype == np.float32 else -740
        est.coefs_[-1][:] = 0
        est.set_params(warm_start=True, max_iter=1)
        est.fit(X, y)
    p = est.predict(X)
    assert (p > 0).all() and np.isfinite(p).all()
    assert np.isfinite(est.loss_), f"loss_ = {est.loss_} with predictions ~{p[0]:.3g}"
