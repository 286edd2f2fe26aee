"""MLPRegressor(loss="absolute_error" | "huber" | "quantile") (beyond scikit-learn).

- the loss kernel against scikit-learn's own losses (sklearn._loss:
  AbsoluteError, HuberLoss with a fixed delta, PinballLoss), values and
  gradients, at the kinks too;
- the engine's full-batch gradient against central finite differences,
  multi-output, with sample weights and an L2 penalty, dense and CSR;
- loss_ against a numpy reference of the documented objective;
- every solver, sample weights, multi-output, float32;
- quantile regressors cover the fraction of held-out targets they should;
- parameter validation and scikit-learn's estimator checks.
"""

import warnings

import _kernel_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn._loss.loss import AbsoluteError, HuberLoss, PinballLoss
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import cymlp
from cymlp import _engine
from cymlp._engine import _testing

ROBUST = ["absolute_error", "huber", "quantile"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _sklearn_loss(loss, param):
    if loss == "absolute_error":
        return AbsoluteError()
    if loss == "huber":
        return HuberLoss(delta=param)
    return PinballLoss(quantile=param)


def _param(loss, rng):
    if loss == "huber":
        return float(rng.uniform(0.3, 2.0))
    if loss == "quantile":
        return float(rng.uniform(0.05, 0.95))
    return 0.0


def _numpy_loss(loss, param, r):
    """Per-value loss of the residual r = y - p (the documented definitions)."""
    a = np.abs(r)
    if loss == "absolute_error":
        return a
    if loss == "huber":
        return np.where(a <= param, 0.5 * a * a, param * (a - 0.5 * param))
    return np.where(r >= 0, param * r, (param - 1) * r)


# ---------------------------------------------------------------------------
# The kernel against sklearn._loss
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("loss", ROBUST)
def test_kernel_matches_sklearn_losses(loss, dtype, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    param = _param(loss, rng)
    n, cols = 40, 3
    out = rng.normal(size=(n, cols)).astype(dtype)
    y = rng.normal(size=(n, cols)).astype(dtype)
    y[:5] = out[:5]  # the kinks: zero residuals ...
    if loss == "huber":  # ... and |r| == delta exactly
        y[5:8] = (out[5:8].astype(np.float64) + param * np.sign(rng.normal(size=(3, cols))))
        y = y.astype(dtype)
    sw = rng.uniform(0, 2, size=n).astype(dtype)
    delta = np.empty_like(out)
    total = _testing._kernel_loss(loss, out, y, sw, delta, param)

    sk = _sklearn_loss(loss, param)
    y64, out64 = y.astype(np.float64).ravel(), out.astype(np.float64).ravel()
    values = sk.loss(y_true=y64, raw_prediction=out64).reshape(n, cols)
    grads = sk.gradient(y_true=y64, raw_prediction=out64).reshape(n, cols)
    assert_allclose(total, (sw[:, None] * values).sum(), rtol=1e-12)
    expected_delta = (grads * sw[:, None] / cols).astype(dtype)
    assert_allclose(delta, expected_delta, rtol=1e-6 if dtype == np.float32 else 1e-15)
    # at r == 0, scikit-learn's gradient-boosting convention: d loss / d p is
    # -1 (absolute error), -quantile (pinball), 0 (Huber)
    at_kink = {"absolute_error": -1.0, "quantile": -param, "huber": 0.0}[loss]
    assert_allclose(delta[:5] * cols, at_kink * np.repeat(sw[:5, None], cols, axis=1),
                    rtol=1e-6, atol=0)


def test_loss_parameter_checked_by_the_engine():
    for loss, bad in (("huber", 0.0), ("huber", None), ("quantile", 1.0), ("quantile", -0.1)):
        with pytest.raises(ValueError, match="loss_param"):
            _engine.Network([2, 3, 1], "relu", "identity", loss, loss_param=bad)
    with pytest.raises(ValueError, match="identity"):
        _engine.Network([2, 3, 1], "relu", "exp", "absolute_error")


# ---------------------------------------------------------------------------
# The engine's gradient against finite differences
# ---------------------------------------------------------------------------
def _objective(X, Y, sw, params, units, loss, param, alpha):
    """The documented full-batch loss, in extended precision."""
    coefs, intercepts = ref.unpack(params, units)
    acts, _ = ref.forward(X, coefs, intercepts, "tanh", "identity")
    r = np.asarray(Y, dtype=ref.WIDE) - acts[-1]
    w = np.asarray(sw, dtype=ref.WIDE)
    data = (w * _numpy_loss(loss, param, r).mean(axis=1)).sum() / w.sum()
    pen = 0.5 * alpha * sum((np.asarray(c, dtype=ref.WIDE) ** 2).sum() for c in coefs)
    return data + pen / w.sum()


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("loss", ROBUST)
def test_gradient_vs_finite_differences(loss, sparse, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    param = _param(loss, rng)
    units = [4, 5, 3, 3]  # three outputs: the loss is their mean
    params = ref.random_network(rng, units, np.float64)
    X = rng.normal(size=(12, 4))
    X[rng.uniform(size=X.shape) < 0.4] = 0
    coefs, intercepts = ref.unpack(params, units)
    out = ref.forward(X, coefs, intercepts, "tanh", "identity")[0][-1].astype(np.float64)
    # Residuals kept away from the kinks (0, and +-delta for Huber), so that
    # the stencil's steps (~1e-4) never cross one: the loss is smooth there.
    magnitude = rng.uniform(0.1, 0.6, size=out.shape)
    if loss == "huber":
        far = rng.uniform(size=out.shape) < 0.5
        magnitude = np.where(far, param + magnitude, param * rng.uniform(0.1, 0.8, out.shape))
    Y = out + np.where(rng.uniform(size=out.shape) < 0.5, -1, 1) * magnitude
    sw = rng.uniform(0.1, 2.0, size=12)
    sw[3] = 0
    alpha = 0.3
    net = _engine.Network(units, "tanh", "identity", loss, loss_param=param)
    trainer = _engine.Trainer(net, np.float64, 12)
    Xin = sp.csr_matrix(X) if sparse else X
    value, grad = trainer.loss_grad(Xin, Y, sw, params.copy(), alpha)
    grad = grad.copy()
    assert_allclose(value, float(_objective(X, Y, sw, params, units, loss, param, alpha)),
                    rtol=1e-12)

    fd = ref.five_point_gradient(
        lambda q: trainer.loss_grad(Xin, Y, sw, q, alpha, with_grad=False)[0], params, 1e-4)
    assert_allclose(grad, fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())

    # float32: the same gradient, to float32's rounding
    trainer32 = _engine.Trainer(net, np.float32, 12)
    X32 = sp.csr_matrix(X.astype(np.float32)) if sparse else X.astype(np.float32)
    _, grad32 = trainer32.loss_grad(X32, Y.astype(np.float32), sw.astype(np.float32),
                                    params.astype(np.float32), alpha)
    assert_allclose(grad32, grad, rtol=1e-3, atol=1e-4 * np.abs(grad).max())


def test_limits_match_other_losses(global_random_seed):
    # quantile 0.5 is half the absolute error; Huber with a threshold beyond
    # every residual is the squared error (one output: same gradient too)
    rng = np.random.RandomState(global_random_seed)
    units = [3, 4, 1]
    params = ref.random_network(rng, units, np.float64)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))

    def loss_grad(loss, param=None):
        net = _engine.Network(units, "relu", "identity", loss, loss_param=param)
        value, grad = _engine.Trainer(net, np.float64, 20).loss_grad(X, Y, None, params, 0.1)
        return value, grad.copy()

    abs_value, abs_grad = loss_grad("absolute_error")
    q_value, q_grad = loss_grad("quantile", 0.5)
    # the L2 term is not halved
    pen = 0.5 * 0.1 * sum((c ** 2).sum() for c in ref.unpack(params, units)[0]) / 20
    assert_allclose(q_value - pen, 0.5 * (abs_value - pen), rtol=1e-12)
    sq_value, sq_grad = loss_grad("squared_error")
    hub_value, hub_grad = loss_grad("huber", 1e6)
    assert_allclose(hub_value, sq_value, rtol=1e-12)
    assert_allclose(hub_grad, sq_grad, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------
def _regression(seed, n_samples=200, n_outputs=1):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 4))
    Y = np.column_stack([X[:, 0] - X[:, 1] * X[:, 2] + 0.1 * k + rng.normal(scale=0.3, size=n_samples)
                         for k in range(n_outputs)])
    return X, Y[:, 0] if n_outputs == 1 else Y


def _loss_params(loss):
    return {"huber": {"huber_delta": 0.5}, "quantile": {"quantile": 0.3}}.get(loss, {})


def _reported_objective(est, X, Y, sw):
    """loss_ as documented, from the fitted weights (numpy, extended precision)."""
    acts, _ = ref.forward(X, est.coefs_, est.intercepts_, est.activation, "identity")
    r = np.asarray(Y, dtype=ref.WIDE).reshape(X.shape[0], -1) - acts[-1]
    w = np.ones(X.shape[0]) if sw is None else sw
    param = {"huber": est.huber_delta, "quantile": est.quantile}.get(est.loss, 0.0)
    data = (w * _numpy_loss(est.loss, param, r).mean(axis=1)).sum() / w.sum()
    pen = 0.5 * est.alpha * sum((np.asarray(c, dtype=ref.WIDE) ** 2).sum() for c in est.coefs_)
    return float(data + pen / w.sum())


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("loss", ROBUST)
def test_lbfgs_loss_is_the_documented_objective(loss, n_outputs, global_random_seed):
    X, Y = _regression(global_random_seed, n_outputs=n_outputs)
    sw = np.random.RandomState(global_random_seed).uniform(0.2, 3, size=X.shape[0])
    est = cymlp.MLPRegressor(loss=loss, solver="lbfgs", hidden_layer_sizes=(8,), alpha=0.01,
                             max_iter=100, random_state=global_random_seed, **_loss_params(loss))
    est.fit(X, Y, sample_weight=sw)
    assert est.predict(X).shape == Y.shape
    assert est.loss_ == pytest.approx(_reported_objective(est, X, Y, sw), rel=1e-9)
    # training went downhill from the initial weights
    start = cymlp.MLPRegressor(**{**est.get_params(), "max_iter": 1}).fit(X, Y, sample_weight=sw)
    assert est.loss_ < start.loss_


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("loss", ROBUST)
def test_every_solver_dtype_and_weights(loss, solver, dtype, global_random_seed):
    X, Y = _regression(global_random_seed, n_outputs=2)
    X, Y = X.astype(dtype), Y.astype(dtype)
    sw = np.random.RandomState(global_random_seed).randint(0, 3, size=X.shape[0])
    params = dict(loss=loss, solver=solver, hidden_layer_sizes=(10,), max_iter=30,
                  learning_rate_init=0.01, random_state=global_random_seed,
                  **_loss_params(loss))
    est = cymlp.MLPRegressor(**params).fit(X, Y, sample_weight=sw)
    expected = np.float64 if solver == "lbfgs" else dtype  # lbfgs keeps scipy's float64
    assert est.coefs_[0].dtype == expected
    assert np.isfinite(est.loss_)
    if solver != "lbfgs":
        assert len(est.loss_curve_) == est.n_iter_
        # the training loss decreased over the epochs
        assert est.loss_curve_[-1] < est.loss_curve_[0]
    # integer sample weights are repeated rows (lbfgs: the same objective,
    # the same deterministic minimisation)
    if solver == "lbfgs" and dtype == np.float64:
        rep = cymlp.MLPRegressor(**params).fit(np.repeat(X, sw, axis=0), np.repeat(Y, sw, axis=0))
        assert_allclose(rep.predict(X), est.predict(X), rtol=1e-5, atol=1e-6)


def test_absolute_error_is_robust_to_outliers(global_random_seed):
    # the reference: the targets without the outliers
    rng = np.random.RandomState(global_random_seed)
    X = rng.uniform(-1, 1, size=(400, 1))
    y_clean = 2 * X[:, 0] + rng.normal(scale=0.05, size=400)
    y = y_clean.copy()
    y[rng.permutation(400)[:40]] += 50
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300,
                  random_state=global_random_seed)
    X_test = np.linspace(-0.8, 0.8, 50)[:, None]
    robust = {loss: cymlp.MLPRegressor(loss=loss, **params).fit(X, y).predict(X_test)
              for loss in ("absolute_error", "huber")}
    squared = cymlp.MLPRegressor(**params).fit(X, y).predict(X_test)
    truth = 2 * X_test[:, 0]
    for pred in robust.values():
        assert np.abs(pred - truth).mean() < 0.3
    assert np.abs(squared - truth).mean() > 2


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_quantile_coverage(solver, global_random_seed):
    # heteroscedastic noise: the spread grows with x, so the quantiles are
    # not parallel; held-out coverage should be the quantile level. With 3000
    # test points the sampling error of a coverage is below 0.006; 0.05
    # leaves room for the model's own error.
    rng = np.random.RandomState(global_random_seed)

    def sample(n):
        X = rng.uniform(0, 2, size=(n, 1))
        return X, np.sin(2 * X[:, 0]) + (0.1 + 0.5 * X[:, 0]) * rng.normal(size=n)

    X, y = sample(3000)
    X_test, y_test = sample(3000)
    extra = {"max_iter": 500} if solver == "lbfgs" else {"max_iter": 60, "learning_rate_init": 0.01}
    widths = []
    for q in (0.1, 0.9):
        est = cymlp.MLPRegressor(loss="quantile", quantile=q, solver=solver,
                                 hidden_layer_sizes=(16,), random_state=global_random_seed,
                                 **extra).fit(X, y)
        pred = est.predict(X_test)
        assert abs(np.mean(y_test <= pred) - q) < 0.05
        widths.append(pred)
    width = widths[1] - widths[0]
    # the interval widens with the noise (the true width is 2.56 * (0.1 + 0.5 x))
    assert width[X_test[:, 0] > 1.5].mean() > 1.5 * width[X_test[:, 0] < 0.5].mean()


@pytest.mark.parametrize("params", [
    {"loss": "pinball"}, {"loss": "quantile", "quantile": 0.0},
    {"loss": "quantile", "quantile": 1.0}, {"quantile": 1.5}, {"quantile": "0.5"},
    {"loss": "huber", "huber_delta": 0.0}, {"huber_delta": -1.0}, {"huber_delta": None},
])
def test_invalid_parameters(params):
    X, y = _regression(0)
    with pytest.raises(InvalidParameterError):
        cymlp.MLPRegressor(max_iter=2, **params).fit(X, y)


def test_other_losses_ignore_the_loss_parameters(global_random_seed):
    X, y = _regression(global_random_seed)
    base = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=global_random_seed)
    a = cymlp.MLPRegressor(**base).fit(X, y)
    b = cymlp.MLPRegressor(quantile=0.9, huber_delta=3.0, **base).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_


def test_early_stopping_validation_loss(global_random_seed):
    # validation_loss_curve_ is the same objective on the validation set: at
    # the epoch whose weights were kept (the best R^2), it is the kept
    # model's loss there
    X, y = _regression(global_random_seed, n_samples=300)
    X_val, y_val = _regression(global_random_seed + 1, n_samples=100)
    est = cymlp.MLPRegressor(loss="huber", huber_delta=0.5, early_stopping=True,
                             hidden_layer_sizes=(8,), max_iter=8, alpha=1e-3,
                             random_state=global_random_seed)
    est.fit(X, y, X_val=X_val, y_val=y_val)
    best = int(np.argmax(est.validation_scores_))
    assert est.validation_loss_curve_[best] == pytest.approx(
        _reported_objective(est, X_val, y_val, None), rel=1e-9)


# loss="quantile" at 0.5 and huber on the checks' toy data; sgd/lbfgs too
@parametrize_with_checks([
    cymlp.MLPRegressor(loss="absolute_error", max_iter=200),
    cymlp.MLPRegressor(loss="huber", solver="lbfgs", max_iter=100),
    cymlp.MLPRegressor(loss="quantile", quantile=0.5, solver="sgd",
                       learning_rate_init=0.01, max_iter=200),
])
def test_estimator_checks_with_robust_losses(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
