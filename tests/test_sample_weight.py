"""Parity with sklearn for fit(X, y, sample_weight=...).

sklearn weights each sample's loss term (np.average with weights), multiplies
the output deltas by the weights, divides gradients and the L2 term by the
*sum of the weights in the batch* instead of the batch size, and passes the
weights through the early-stopping split and the validation score.
"""

import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp
from _parity import (
    assert_close,
    assert_fit_equal,
    assert_predictions_equal,
    call_recording_warnings,
    fit_both,
    make_data,
    make_regression_data,
    normalize_message,
)

SOLVERS = ["adam", "sgd", "lbfgs"]


def _weights(seed, n, kind="positive"):
    rng = np.random.RandomState(seed + 1)
    if kind == "positive":
        return rng.uniform(0.2, 3.0, size=n)
    if kind == "integer":
        return rng.randint(0, 4, size=n).astype(np.float64)
    raise ValueError(kind)


def _params(seed, solver, **kwargs):
    return {"hidden_layer_sizes": (5,), "solver": solver, "max_iter": 8,
            "n_iter_no_change": 100,
            "learning_rate_init": {"adam": 0.01, "sgd": 0.05, "lbfgs": 1e-3}[solver],
            "random_state": seed, **kwargs}


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_sample_weight_classifier(global_random_seed, solver, kind):
    X, y, X_test, y_test = make_data(kind, global_random_seed)
    sw = _weights(global_random_seed, len(X))
    ref, est, _ = fit_both(_params(global_random_seed, solver, batch_size=16), X, y,
                           sample_weight=sw)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_sample_weight_regressor(global_random_seed, solver, loss):
    X, y, X_test, y_test = make_regression_data(global_random_seed,
                                                poisson=(loss == "poisson"))
    sw = _weights(global_random_seed, len(X))
    ref, est, _ = fit_both(_params(global_random_seed, solver, loss=loss), X, y,
                           name="MLPRegressor", sample_weight=sw)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_sample_weight_scaling_interacts_with_alpha(global_random_seed, alpha):
    # Gradients are divided by sum(sample_weight), the L2 term too: scaling
    # all weights by 10 changes the effective regularisation when alpha > 0.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    sw = 10.0 * _weights(global_random_seed, len(X))
    ref, est, _ = fit_both(_params(global_random_seed, "adam", alpha=alpha), X, y,
                           sample_weight=sw)
    assert_fit_equal(ref, est)


@pytest.mark.parametrize("solver", SOLVERS)
def test_unit_weights_equal_no_weights(global_random_seed, solver):
    # sample_weight=ones must give sklearn's unweighted result.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, solver)
    ref = SkMLPClassifier(**params)
    call_recording_warnings(ref.fit, X, y)
    est = cymlp.MLPClassifier(**params)
    call_recording_warnings(est.fit, X, y, sample_weight=np.ones(len(y)))
    for e, r in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_close(e, r)
    assert_close(est.loss_, ref.loss_)


def test_integer_weights_equal_repetition_lbfgs(global_random_seed):
    # For the full-batch solver, weight k is k copies of the sample (and
    # weight 0 drops it): compare with sklearn fitted on the repeated data.
    X, y, X_test, _ = make_data("multiclass", global_random_seed)
    sw = _weights(global_random_seed, len(X), kind="integer")
    params = _params(global_random_seed, "lbfgs", max_iter=15)
    ref = SkMLPClassifier(**params)
    call_recording_warnings(ref.fit, np.repeat(X, sw.astype(int), axis=0),
                            np.repeat(y, sw.astype(int)))
    est = cymlp.MLPClassifier(**params)
    call_recording_warnings(est.fit, X, y, sample_weight=sw)
    # Same objective, different summation: rounding-level differences only,
    # but L-BFGS's line search sees them, hence a looser tolerance.
    np.testing.assert_allclose(est.predict_proba(X_test), ref.predict_proba(X_test),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sample_weight_with_early_stopping(global_random_seed, solver):
    # The weights are split along with X and y and weight the validation
    # accuracy.
    X, y, _, _ = make_data("multiclass", global_random_seed, n_samples=80)
    sw = _weights(global_random_seed, len(X))
    params = _params(global_random_seed, solver, early_stopping=True,
                     validation_fraction=0.25, n_iter_no_change=3, max_iter=20)
    ref, est, _ = fit_both(params, X, y, sample_weight=sw)
    assert_fit_equal(ref, est)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_partial_fit_with_sample_weight(global_random_seed, solver):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    sw = _weights(global_random_seed, len(X))
    params = _params(global_random_seed, solver)
    ref, est = SkMLPClassifier(**params), cymlp.MLPClassifier(**params)
    for i in range(3):
        kwargs = {"classes": [0, 1, 2]} if i == 0 else {}
        for m in (ref, est):
            call_recording_warnings(m.partial_fit, X, y, sample_weight=sw, **kwargs)
        assert_fit_equal(ref, est)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sample_weight_dtypes(global_random_seed, dtype):
    # Weights are cast to X's dtype (float32 X -> float32 weights).
    X, y, _, _ = make_data("multiclass", global_random_seed)
    sw = _weights(global_random_seed, len(X)).tolist()  # a list is accepted
    ref, est, _ = fit_both(_params(global_random_seed, "adam"), X.astype(dtype), y,
                           sample_weight=sw)
    assert_fit_equal(ref, est, dtype=dtype)


@pytest.mark.parametrize(
    "make_sw",
    [
        pytest.param(lambda n: np.ones(n - 1), id="too-short"),
        pytest.param(lambda n: np.ones((n, 2)), id="2d"),
        pytest.param(lambda n: np.where(np.arange(n) == 0, np.nan, 1.0), id="nan"),
        pytest.param(lambda n: np.where(np.arange(n) == 0, np.inf, 1.0), id="inf"),
        pytest.param(lambda n: np.where(np.arange(n) == 0, -1.0, 1.0), id="negative"),
        pytest.param(lambda n: np.zeros(n), id="all-zero"),
        pytest.param(lambda n: 2.0, id="scalar"),
        pytest.param(lambda n: np.array(["a"] * n), id="strings"),
    ],
)
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_bad_sample_weight(make_sw, name):
    # Same outcome as sklearn: same exception class and message, or success.
    if name == "MLPClassifier":
        X, y, _, _ = make_data("multiclass", 0)
        classes = (SkMLPClassifier, cymlp.MLPClassifier)
    else:
        X, y, _, _ = make_regression_data(0)
        classes = (SkMLPRegressor, cymlp.MLPRegressor)
    sw = make_sw(len(y))
    outcomes = []
    for cls in classes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cls(max_iter=2, random_state=0).fit(X, y, sample_weight=sw)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001
                outcomes.append((type(exc), normalize_message(str(exc))))
    assert outcomes[1] == outcomes[0]
