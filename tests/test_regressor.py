"""Parity of cymlp.MLPRegressor with sklearn.neural_network.MLPRegressor.

loss='squared_error' (identity output) and loss='poisson' (exp output), every
solver, single and multi-output targets; plus the regressor-specific API
details. (scikit-learn's estimator checks are in test_estimator_checks.py.)
"""

import dataclasses
import re
import warnings

import numpy as np
import pytest
from sklearn.base import is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.utils import get_tags

import cymlp
from _parity import (
    assert_api_extends_sklearn,
    assert_fit_equal,
    assert_predictions_equal,
    check_parity,
    fit_both,
    make_regression_data,
    messages_equivalent,
)

SOLVERS = ["adam", "sgd", "lbfgs"]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
# Step sizes that move the weights within a few epochs without blowing up
# the exp output of the poisson loss.
LR = {"adam": 0.01, "sgd": 0.01, "lbfgs": 0.001}


def _params(seed, solver="adam", **kwargs):
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=8,
                  n_iter_no_change=100, learning_rate_init=LR[solver],
                  random_state=seed)
    params.update(kwargs)
    return params


@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_regressor_parity(global_random_seed, solver, loss, n_targets):
    params = _params(global_random_seed, solver=solver, loss=loss)
    data = make_regression_data(global_random_seed, n_targets=n_targets,
                                poisson=(loss == "poisson"))
    ref, est, _ = check_parity(params, data, name="MLPRegressor")
    assert est.out_activation_ == {"squared_error": "identity", "poisson": "exp"}[loss]
    assert est.n_outputs_ == n_targets


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_regressor_activations(global_random_seed, solver, activation):
    check_parity(_params(global_random_seed, solver=solver, activation=activation,
                         hidden_layer_sizes=(6, 3)),
                 make_regression_data(global_random_seed), name="MLPRegressor")


@pytest.mark.parametrize(
    "extra",
    [
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1),
        dict(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=2,
             max_iter=20),
        dict(solver="sgd", momentum=0.0),
        dict(solver="sgd", nesterovs_momentum=False),
        dict(solver="adam", batch_size=7, shuffle=False),
        dict(solver="adam", batch_size=1, max_iter=3),
        dict(solver="adam", alpha=0.0),
        dict(solver="adam", alpha=1.0),
        dict(solver="adam", tol=10.0, n_iter_no_change=3, max_iter=50),
    ],
    ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()),
)
def test_regressor_options(global_random_seed, extra):
    check_parity(_params(global_random_seed, **extra),
                 make_regression_data(global_random_seed), name="MLPRegressor")


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_regressor_input_dtype(global_random_seed, solver, dtype):
    X, y, X_test, y_test = make_regression_data(global_random_seed)
    if dtype == np.int64:
        X, X_test = np.round(X * 4), np.round(X_test * 4)
    X, X_test = X.astype(dtype), X_test.astype(dtype)
    # lbfgs amplifies float32 rounding through its line search: fewer steps.
    max_iter = 5 if solver == "lbfgs" else 8
    ref, est, _ = fit_both(_params(global_random_seed, solver=solver,
                                   max_iter=max_iter), X, y, name="MLPRegressor")
    tol_dtype = np.float32 if dtype == np.float32 else np.float64
    assert_fit_equal(ref, est, dtype=tol_dtype)
    assert_predictions_equal(ref, est, X_test, y_test, dtype=tol_dtype)


@pytest.mark.parametrize("y_dtype", [np.float32, np.int64])
def test_regressor_target_dtype(global_random_seed, y_dtype):
    X, y, X_test, y_test = make_regression_data(global_random_seed)
    y = np.round(y * 3).astype(y_dtype)
    ref, est, _ = fit_both(_params(global_random_seed), X, y, name="MLPRegressor")
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test)


def test_regressor_column_vector_y(global_random_seed):
    # (n, 1) y warns (DataConversionWarning) and predictions are 1-D.
    X, y, X_test, _ = make_regression_data(global_random_seed)
    ref, est, w = fit_both(_params(global_random_seed), X, y.reshape(-1, 1),
                           name="MLPRegressor")
    assert any("column-vector y" in m for _, m in w)
    assert est.predict(X_test).shape == ref.predict(X_test).shape == (len(X_test),)
    assert_fit_equal(ref, est)


def test_regressor_convergence_warning(global_random_seed):
    X, y, _, _ = make_regression_data(global_random_seed)
    ref, est, w = fit_both(_params(global_random_seed, max_iter=2), X, y,
                           name="MLPRegressor")
    assert any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert_fit_equal(ref, est)


def test_regressor_verbose(global_random_seed, capsys):
    X, y, _, _ = make_regression_data(global_random_seed)
    params = _params(global_random_seed, verbose=True, max_iter=5)
    capsys.readouterr()
    fit_both(params, X, y, name="MLPRegressor")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    assert lines[5:] == lines[:5]


def test_poisson_with_negative_target():
    # A deliberate difference (README, "Where cymlp deliberately differs"):
    # sklearn does not validate y for the poisson loss and trains to a NaN
    # loss without raising; cymlp raises a ValueError up front.
    X, y, _, _ = make_regression_data(0)
    assert (y < 0).any()
    ref = SkMLPRegressor(loss="poisson", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)  # the reference behaviour this deviates from
    assert np.isnan(ref.loss_)
    with pytest.raises(ValueError, match="negative"):
        cymlp.MLPRegressor(loss="poisson", max_iter=3, random_state=0).fit(X, y)
    # Zero targets are valid for poisson in both.
    y0 = np.abs(y)
    y0[:5] = 0.0
    ref0, est0, _ = fit_both(_params(0, loss="poisson"), X, y0, name="MLPRegressor")
    assert_fit_equal(ref0, est0)


def test_regressor_non_finite_weights():
    # sklearn's own test: X near float max overflows; same ValueError.
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    msg = ("Solver produced non-finite parameter weights. The input data may "
           "contain large values and need to be preprocessed.")
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match=re.escape(msg)):
                cls().fit(X, y)


# ---------------------------------------------------------------------------
# API surface
# ---------------------------------------------------------------------------
def test_regressor_signature_matches_sklearn():
    # loss comes first and is positional, unlike the classifier.
    assert_api_extends_sklearn(SkMLPRegressor, cymlp.MLPRegressor)


def test_regressor_params_and_tags():
    ref_params = SkMLPRegressor().get_params()
    est_params = cymlp.MLPRegressor().get_params()
    assert {k: est_params[k] for k in ref_params} == ref_params
    # the transformer tags are cymlp's own (transform, beyond scikit-learn)
    tags = get_tags(cymlp.MLPRegressor())
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert dataclasses.replace(tags, transformer_tags=None) == get_tags(SkMLPRegressor())
    assert is_regressor(cymlp.MLPRegressor())
    assert not hasattr(cymlp.MLPRegressor(), "predict_proba")


@pytest.mark.parametrize("loss", ["foo", "log_loss", "squared_loss", None])
def test_regressor_invalid_loss(loss):
    X, y, _, _ = make_regression_data(0)
    errors = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        with pytest.raises(ValueError) as excinfo:
            cls(loss=loss, max_iter=2).fit(X, y)
        errors.append(excinfo.value)
    assert type(errors[1]) is type(errors[0])
    assert messages_equivalent(str(errors[1]), str(errors[0]))


@pytest.mark.parametrize(
    "make_y",
    [
        pytest.param(lambda y: np.where(np.arange(len(y)) == 1, np.nan, y), id="nan"),
        pytest.param(lambda y: np.where(np.arange(len(y)) == 1, np.inf, y), id="inf"),
        pytest.param(lambda y: y[:-1], id="short"),
    ],
)
def test_regressor_bad_target(make_y):
    # sklearn's shared validation: same class, same message.
    X, y, _, _ = make_regression_data(0)
    y_bad = make_y(y)
    errors = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cls(max_iter=2).fit(X, y_bad)
                errors.append(None)
            except Exception as exc:  # noqa: BLE001
                errors.append((type(exc), str(exc)))
    assert errors[0] is not None
    assert errors[1] == errors[0]


def test_regressor_non_numeric_string_target():
    # y_numeric=True converts only object arrays, so sklearn fails on a '<U'
    # string y by accident, inside numpy (UFuncNoLoopError from y_pred - y).
    # cymlp must fail too; the exception class is not part of the contract.
    X, y, _, _ = make_regression_data(0)
    y_bad = np.where(y > 0, "high", "low")
    with pytest.raises(Exception):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SkMLPRegressor(max_iter=2).fit(X, y_bad)
    with pytest.raises(Exception):
        cymlp.MLPRegressor(max_iter=2).fit(X, y_bad)
