"""Sparse input (CSR/CSC, scipy sparse matrices and sparse arrays).

sklearn accepts CSR and CSC (converting other formats to CSR), computes
X @ W with a sparse product and gathers shuffled minibatch rows with
_safe_indexing.  cymlp must give sklearn's results on sparse input, which in
turn agree with the results on the equivalent dense input.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

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

CONTAINERS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
}
# Converted to CSR by sklearn's validation.
OTHER_FORMATS = {
    "coo_matrix": sp.coo_matrix,
    "coo_array": sp.coo_array,
    "lil_matrix": sp.lil_matrix,
    "dok_matrix": sp.dok_matrix,
}
SOLVERS = ["adam", "sgd", "lbfgs"]


def _sparse_data(kind, seed, n_samples=60):
    # Zero out about 60 % of the entries so the sparse structure matters
    # (explicit structure with empty rows included).
    X, y, X_test, y_test = make_data(kind, seed, n_samples=n_samples, n_features=8)
    rng = np.random.RandomState(seed)
    X = np.where(rng.uniform(size=X.shape) < 0.6, 0.0, X)
    X[0] = 0.0  # an all-zero row
    X_test = np.where(rng.uniform(size=X_test.shape) < 0.6, 0.0, X_test)
    return X, y, X_test, y_test


def _params(seed, solver, **kwargs):
    return {"hidden_layer_sizes": (5,), "solver": solver, "max_iter": 8,
            "n_iter_no_change": 100, "batch_size": 16,
            "learning_rate_init": {"adam": 0.01, "sgd": 0.05, "lbfgs": 1e-3}[solver],
            "random_state": seed, **kwargs}


@pytest.mark.parametrize("container", list(CONTAINERS))
@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_fit_matches_sklearn(global_random_seed, solver, container):
    X, y, X_test, y_test = _sparse_data("multiclass", global_random_seed)
    to_sparse = CONTAINERS[container]
    ref, est, _ = fit_both(_params(global_random_seed, solver), to_sparse(X), y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, to_sparse(X_test), y_test)
    # Sparse and dense prediction agree for the same model.
    assert_close(est.predict_proba(to_sparse(X_test)), ref.predict_proba(X_test))


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_equals_dense(global_random_seed, solver):
    # sklearn's own sparse and dense runs agree to rounding; cymlp's sparse
    # run must match sklearn's dense run just as well.
    X, y, X_test, y_test = _sparse_data("multiclass", global_random_seed)
    ref_dense, est_sparse, _ = _fit_dense_vs_sparse(
        _params(global_random_seed, solver), X, y)
    assert_fit_equal(ref_dense, est_sparse)
    assert_predictions_equal(ref_dense, est_sparse, X_test, y_test)


def _fit_dense_vs_sparse(params, X, y):
    """sklearn on dense X, cymlp on the same data as CSR."""
    ref = SkMLPClassifier(**params)
    _, w_ref = call_recording_warnings(ref.fit, X, y)
    est = cymlp.MLPClassifier(**params)
    _, w_est = call_recording_warnings(est.fit, sp.csr_matrix(X), y)
    assert w_est == w_ref
    return ref, est, w_ref


@pytest.mark.parametrize("fmt", list(OTHER_FORMATS))
def test_other_sparse_formats(global_random_seed, fmt):
    X, y, X_test, y_test = _sparse_data("binary", global_random_seed)
    to_sparse = OTHER_FORMATS[fmt]
    ref, est, _ = fit_both(_params(global_random_seed, "adam"), to_sparse(X), y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, to_sparse(X_test), y_test)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 7, "auto"])
def test_sparse_minibatches(global_random_seed, shuffle, batch_size):
    X, y, X_test, y_test = _sparse_data("multiclass", global_random_seed)
    max_iter = 3 if batch_size == 1 else 8
    ref, est, _ = fit_both(_params(global_random_seed, "adam", shuffle=shuffle,
                                   batch_size=batch_size, max_iter=max_iter),
                           sp.csr_matrix(X), y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, sp.csr_matrix(X_test), y_test)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sparse_float32(global_random_seed, solver):
    X, y, X_test, y_test = _sparse_data("multiclass", global_random_seed)
    X, X_test = sp.csr_matrix(X.astype(np.float32)), sp.csr_matrix(X_test.astype(np.float32))
    ref, est, _ = fit_both(_params(global_random_seed, solver), X, y)
    assert est.coefs_[0].dtype == ref.coefs_[0].dtype == np.float32
    assert_fit_equal(ref, est, dtype=np.float32)
    assert_predictions_equal(ref, est, X_test, y_test, dtype=np.float32)


def test_sparse_int_data(global_random_seed):
    X, y, X_test, y_test = _sparse_data("multiclass", global_random_seed)
    X, X_test = np.round(X * 3).astype(np.int64), np.round(X_test * 3).astype(np.int64)
    ref, est, _ = fit_both(_params(global_random_seed, "adam"), sp.csr_matrix(X), y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, sp.csr_matrix(X_test), y_test)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_regressor(global_random_seed, solver):
    X, y, X_test, y_test = make_regression_data(global_random_seed, n_targets=2)
    rng = np.random.RandomState(global_random_seed)
    X = np.where(rng.uniform(size=X.shape) < 0.5, 0.0, X)
    ref, est, _ = fit_both(_params(global_random_seed, solver), sp.csc_matrix(X), y,
                           name="MLPRegressor")
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, sp.csc_matrix(X_test), y_test)


def test_sparse_multilabel_early_stopping(global_random_seed):
    X, Y, X_test, Y_test = _sparse_data("multilabel", global_random_seed, n_samples=80)
    ref, est, _ = fit_both(_params(global_random_seed, "adam", early_stopping=True,
                                   validation_fraction=0.25, n_iter_no_change=3,
                                   max_iter=15),
                           sp.csr_matrix(X), Y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, sp.csr_matrix(X_test), Y_test)


def test_sparse_input_not_modified(global_random_seed):
    X, y, _, _ = _sparse_data("multiclass", global_random_seed)
    Xs = sp.csr_matrix(X)
    data, indices, indptr = Xs.data.copy(), Xs.indices.copy(), Xs.indptr.copy()
    call_recording_warnings(cymlp.MLPClassifier(**_params(global_random_seed, "adam"))
                            .fit, Xs, y)
    np.testing.assert_array_equal(Xs.data, data)
    np.testing.assert_array_equal(Xs.indices, indices)
    np.testing.assert_array_equal(Xs.indptr, indptr)


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda Xs: _set_data(Xs, np.nan), id="nan"),
        pytest.param(lambda Xs: _set_data(Xs, np.inf), id="inf"),
        pytest.param(lambda Xs: sp.csr_matrix(Xs.shape[::-1]), id="wrong-shape"),
        pytest.param(lambda Xs: sp.csr_matrix((0, Xs.shape[1])), id="empty"),
    ],
)
def test_bad_sparse_input(make_bad):
    X, y, _, _ = _sparse_data("multiclass", 0)
    X_bad = make_bad(sp.csr_matrix(X))
    outcomes = []
    for cls in (SkMLPClassifier, cymlp.MLPClassifier):
        try:
            call_recording_warnings(cls(max_iter=2).fit, X_bad, y)
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001
            outcomes.append((type(exc), normalize_message(str(exc))))
    assert outcomes[0] is not None
    assert outcomes[1] == outcomes[0]


def _set_data(Xs, value):
    Xs = Xs.copy()
    Xs.data[0] = value
    return Xs
