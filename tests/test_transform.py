"""The estimators as transformers: transform, hidden_activations,
get_feature_names_out and set_output (beyond scikit-learn).

The reference is a numpy forward pass of the fitted coefs_ / intercepts_
(in extended precision, through tests/_kernel_reference.py), for every hidden
activation the engine has; a Pipeline with an MLP feature step is compared
with the same final estimator fitted on the reference features.
"""

import warnings

import _kernel_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cymlp
from cymlp._engine import HIDDEN_ACTIVATIONS

ESTIMATORS = {"classifier": cymlp.MLPClassifier, "regressor": cymlp.MLPRegressor}
SLOPE = 0.2  # leaky_relu
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(seed, kind, n_samples=300, n_features=5):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features))
    if kind == "classifier":
        y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 1)
    else:
        y = np.column_stack([X[:, 0] * X[:, 1], np.sin(X[:, 2])])
    return X, y


def _fit(kind, seed, dtype=np.float64, **params):
    X, y = _data(seed, kind)
    params = {"hidden_layer_sizes": (7, 4), "max_iter": 20, "random_state": seed,
              "negative_slope": SLOPE, **params}
    est = ESTIMATORS[kind](**params).fit(X.astype(dtype), y)
    return est, X.astype(dtype)


def _numpy_hidden(est, X):
    """Every hidden layer's activations, by numpy from coefs_ / intercepts_."""
    acts, _ = ref.forward(X, est.coefs_, est.intercepts_, est.activation,
                          est.out_activation_, slope=est.negative_slope)
    return acts[1:-1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_transform_is_the_numpy_forward_pass(kind, activation, dtype, global_random_seed):
    est, X = _fit(kind, global_random_seed, dtype, activation=activation)
    # more rows than one chunk of the engine's forward pass (at most 4096)
    X_big = np.random.RandomState(global_random_seed).normal(size=(5000, X.shape[1]))
    X_big = X_big.astype(dtype)
    expected = _numpy_hidden(est, X_big)
    Xt = est.transform(X_big)
    assert Xt.dtype == dtype  # float32 stays float32
    assert Xt.shape == (5000, 4)
    assert_allclose(Xt, expected[-1].astype(np.float64), **TOL[dtype])
    for k in range(2):
        hk = est.hidden_activations(X_big, layer=k)
        assert hk.dtype == dtype
        assert_allclose(hk, expected[k].astype(np.float64), **TOL[dtype])
        assert_array_equal(est.hidden_activations(X_big, layer=k - 2), hk)
    assert_array_equal(est.hidden_activations(X_big), Xt)


def test_transform_sparse_and_lists(global_random_seed):
    est, X = _fit("classifier", global_random_seed)
    X[np.abs(X) < 0.7] = 0
    dense = est.transform(X)
    assert_allclose(est.transform(sp.csr_matrix(X)), dense, rtol=1e-12, atol=1e-14)
    assert_allclose(est.transform(sp.csc_matrix(X)), dense, rtol=1e-12, atol=1e-14)
    assert_array_equal(est.transform(X.tolist()), dense)


def test_transform_dtype_follows_predict(global_random_seed):
    # lbfgs keeps scipy's float64 weights for float32 data (as scikit-learn):
    # transform then computes in float64, like predict; the tag says so
    est, X = _fit("regressor", global_random_seed, np.float32, solver="lbfgs")
    assert est.coefs_[0].dtype == np.float64
    assert est.transform(X).dtype == np.float64 == est.predict(X).dtype
    assert est.__sklearn_tags__().transformer_tags.preserves_dtype == ["float64"]
    est, X = _fit("regressor", global_random_seed, np.float32)
    assert est.transform(X).dtype == np.float32
    assert est.transform(X.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_feature_names_out(kind, global_random_seed):
    est, X = _fit(kind, global_random_seed, hidden_layer_sizes=(6, 3))
    prefix = type(est).__name__.lower()
    assert_array_equal(est.get_feature_names_out(), [f"{prefix}{i}" for i in range(3)])
    assert est.get_feature_names_out().dtype == object
    with pytest.raises(NotFittedError):
        ESTIMATORS[kind]().get_feature_names_out()


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_set_output_pandas(kind, global_random_seed):
    pd = pytest.importorskip("pandas")
    X, y = _data(global_random_seed, kind)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])],
                      index=np.arange(X.shape[0]) * 3)
    est = ESTIMATORS[kind](hidden_layer_sizes=(6,), max_iter=10,
                           random_state=global_random_seed)
    est.set_output(transform="pandas")
    out = est.fit_transform(df, y)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(est.get_feature_names_out())
    assert_array_equal(out.index, df.index)
    assert_array_equal(out.to_numpy(), est.transform(df).to_numpy())
    assert_allclose(out.to_numpy(), _numpy_hidden(est, X)[-1].astype(np.float64),
                    rtol=1e-10, atol=1e-12)
    # hidden_activations and predict are not transform: plain arrays
    assert isinstance(est.hidden_activations(df), np.ndarray)
    assert isinstance(est.predict(df), np.ndarray)


def test_pipeline_with_mlp_feature_step(global_random_seed):
    X, y = _data(global_random_seed, "classifier", n_samples=400)
    mlp = cymlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=200,
                              random_state=global_random_seed)
    pipe = make_pipeline(StandardScaler(), mlp, LogisticRegression())
    pipe.fit(X, y)
    # the reference: the same steps by hand, the features by numpy
    scaler = StandardScaler().fit(X)
    ref_mlp = clone(mlp).fit(scaler.transform(X), y)
    for a, b in zip(ref_mlp.coefs_, pipe[1].coefs_):
        assert_array_equal(a, b)
    features = _numpy_hidden(ref_mlp, scaler.transform(X))[-1].astype(np.float64)
    logreg = LogisticRegression().fit(features, y)
    assert_allclose(pipe[-1].coef_, logreg.coef_, rtol=1e-6, atol=1e-8)
    assert pipe.score(X, y) == pytest.approx(logreg.score(features, y))
    # the learned features separate the classes about as well as the MLP itself
    assert pipe.score(X, y) > ref_mlp.score(scaler.transform(X), y) - 0.05


def test_pipeline_regressor_feature_step(global_random_seed):
    X, y = _data(global_random_seed, "regressor", n_samples=400)
    pipe = make_pipeline(cymlp.MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs",
                                            max_iter=300, random_state=global_random_seed),
                         Ridge(alpha=1e-3))
    pipe.fit(X, y)
    features = _numpy_hidden(pipe[0], X)[-1].astype(np.float64)
    ridge = Ridge(alpha=1e-3).fit(features, y)
    assert pipe.score(X, y) == pytest.approx(ridge.score(features, y), rel=1e-6)


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_no_hidden_layer(kind, global_random_seed):
    # hidden_layer_sizes=() is a linear (or logistic) model: no learned
    # features, so transform refuses rather than return X or the outputs
    est, X = _fit(kind, global_random_seed, hidden_layer_sizes=())
    for call in (lambda: est.transform(X), lambda: est.hidden_activations(X, 0),
                 est.get_feature_names_out):
        with pytest.raises(ValueError, match="no hidden layer"):
            call()


@pytest.mark.parametrize("layer", [2, -3, 1.0, "0", None, True])
def test_bad_layer_index(layer, global_random_seed):
    est, X = _fit("regressor", global_random_seed)
    with pytest.raises(ValueError, match="layer must be an integer"):
        est.hidden_activations(X, layer=layer)


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_unfitted(kind):
    X, _ = _data(0, kind)
    for call in (ESTIMATORS[kind]().transform, ESTIMATORS[kind]().hidden_activations):
        with pytest.raises(NotFittedError):
            call(X)


def test_fitted_state_checked(global_random_seed):
    # transform validates edited weights before any kernel runs, as predict does
    est, X = _fit("classifier", global_random_seed)
    est.coefs_[1] = est.coefs_[1][:, :-1]
    with pytest.raises(ValueError, match=r"intercepts_\[1\]"):
        est.transform(X)
    with pytest.raises(ValueError, match=r"intercepts_\[1\]"):
        est.get_feature_names_out()
    est, X = _fit("classifier", global_random_seed)
    est.activation = "swish"
    with pytest.raises(ValueError, match="activation"):
        est.transform(X)


def test_wrong_number_of_features(global_random_seed):
    est, X = _fit("regressor", global_random_seed)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :-1])
