"""cymlp.to_onnx: the exported graph, run in onnxruntime, predicts what cymlp predicts."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import (
    load_breast_cancer,
    load_iris,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("skl2onnx")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from cymlp import MLPClassifier, MLPRegressor, to_onnx  # noqa: E402

from cymlp._engine import HIDDEN_ACTIVATIONS  # noqa: E402

# every hidden activation the engine has: a new one must export too
ACTIVATIONS = sorted(HIDDEN_ACTIVATIONS)
# float32 graphs round like float32 arithmetic; float64 graphs agree to the last bits
# (gelu's erf is a series of 100 terms in a float64 graph: about 1e-14)
ATOL = {np.float32: 2e-6, np.float64: 1e-12}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _run(model, X):
    onnx.checker.check_model(model)
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def _assert_same_labels(labels, expected, proba, atol):
    """Labels agree except where the two top probabilities are within rounding."""
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 10 * atol
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.asarray(labels)[clear], np.asarray(expected)[clear])


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_multiclass_every_activation(iris, activation, dtype):
    X, y = iris
    X = X.astype(dtype)
    clf = MLPClassifier(
        hidden_layer_sizes=(12, 6), activation=activation, max_iter=60, random_state=0
    ).fit(X, y)
    # wider inputs than training saw, to reach the activations' tails
    X_test = np.vstack([X, 4 * X]).astype(dtype)
    labels, proba = _run(to_onnx(clf, X[:5]), X_test)
    assert proba.dtype == dtype
    expected = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba, expected, rtol=0, atol=ATOL[dtype])
    _assert_same_labels(labels, clf.predict(X_test), expected, ATOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make_labels",
    [
        lambda y: y,
        lambda y: np.where(y == 1, "benign", "malignant"),
        lambda y: y.astype(bool),
        lambda y: y.astype(float) + 3.0,
        lambda y: y * 5 - 2,
    ],
    ids=["int", "str", "bool", "integral-float", "negative-int"],
)
def test_binary_labels(cancer, make_labels, dtype):
    X, y = cancer
    X = X.astype(dtype)
    y = make_labels(y)
    clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=30, random_state=0).fit(X, y)
    labels, proba = _run(to_onnx(clf, X), X)
    expected = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba, expected, rtol=0, atol=ATOL[dtype])
    if y.dtype.kind == "U":
        predicted = clf.predict(X)
    else:
        # ONNX labels are int64: bool and integral float labels come back as integers
        predicted = clf.predict(X).astype(np.int64)
    _assert_same_labels(labels, predicted, expected, ATOL[dtype])


def test_multiclass_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, random_state=1).fit(X, names)
    X32 = X.astype(np.float32)
    labels, proba = _run(to_onnx(clf, X32), X32)
    np.testing.assert_allclose(proba, clf.predict_proba(X32), atol=ATOL[np.float32])
    _assert_same_labels(labels, clf.predict(X32), clf.predict_proba(X32), ATOL[np.float32])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multilabel(dtype):
    X, Y = make_multilabel_classification(
        n_samples=200, n_features=10, n_classes=4, random_state=0
    )
    X = X.astype(dtype)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=80, random_state=0).fit(X, Y)
    labels, proba = _run(to_onnx(clf, X), X)
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(proba, expected, rtol=0, atol=ATOL[dtype])
    assert labels.shape == Y.shape
    clear = np.abs(expected - 0.5) > 10 * ATOL[dtype]
    np.testing.assert_array_equal(labels[clear], clf.predict(X)[clear])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "softplus", "elu"])
@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor(activation, dtype, n_targets):
    X, y = make_regression(
        n_samples=150, n_features=6, n_targets=n_targets, noise=1.0, random_state=0
    )
    X = X.astype(dtype)
    y = (y / np.std(y)).astype(dtype)
    reg = MLPRegressor(
        hidden_layer_sizes=(10, 10), activation=activation, max_iter=50, random_state=0
    ).fit(X, y)
    (out,) = _run(to_onnx(reg, X[:1]), X)
    expected = reg.predict(X).reshape(X.shape[0], -1)
    assert out.shape == (X.shape[0], n_targets)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=10 * ATOL[dtype], atol=ATOL[dtype])


def test_poisson_regressor():
    X, y = make_regression(n_samples=150, n_features=5, random_state=0)
    y = np.abs(y) / 40
    reg = MLPRegressor(
        loss="poisson", hidden_layer_sizes=(8,), max_iter=60, random_state=0
    ).fit(X, y)
    (out,) = _run(to_onnx(reg, X), X)
    np.testing.assert_allclose(out.ravel(), reg.predict(X), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params",
    [{"loss": "absolute_error"}, {"loss": "huber", "huber_delta": 0.5},
     {"loss": "quantile", "quantile": 0.9}],
    ids=lambda p: p["loss"],
)
def test_robust_loss_regressors(params, dtype):
    # the loss changes the training only: an identity output, exported as such
    X, y = make_regression(n_samples=150, n_features=5, n_targets=2, noise=1.0,
                           random_state=0)
    X, y = X.astype(dtype), (y / np.std(y)).astype(dtype)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=40, random_state=0, **params)
    reg.fit(X, y)
    (out,) = _run(to_onnx(reg, X[:1]), X)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, reg.predict(X), rtol=10 * ATOL[dtype], atol=ATOL[dtype])


def test_leaky_relu_slope_is_exported(iris):
    X, y = iris
    clf = MLPClassifier(
        hidden_layer_sizes=(8,), activation="leaky_relu", negative_slope=0.3,
        max_iter=40, random_state=0,
    ).fit(X, y)
    for dtype in (np.float32, np.float64):
        Xd = 3 * X.astype(dtype)
        _, proba = _run(to_onnx(clf, Xd), Xd)
        np.testing.assert_allclose(proba, clf.predict_proba(Xd), atol=ATOL[dtype])


def test_dropout_model_predicts_without_dropout(iris):
    X, y = iris
    clf = MLPClassifier(
        hidden_layer_sizes=(16,), dropout=0.3, max_iter=40, random_state=0
    ).fit(X, y)
    _, proba = _run(to_onnx(clf, X), X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=ATOL[np.float64])


def test_float32_model_exported_as_float64_graph(iris):
    X, y = iris
    X32 = X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X32, y)
    _, proba = _run(to_onnx(clf, X), X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, clf.predict_proba(X32), atol=1e-6)


def test_integer_input_computes_in_float64(iris):
    X, y = iris
    X_int = np.round(X * 3).astype(np.int64)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X_int, y)
    labels, proba = _run(to_onnx(clf, X_int), X_int)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, clf.predict_proba(X_int), atol=ATOL[np.float64])
    _assert_same_labels(labels, clf.predict(X_int), proba, ATOL[np.float64])


def test_pipeline(iris):
    X, y = iris
    X = (X * 3 + 10).astype(np.float32)
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=80, random_state=0)
    ).fit(X, y)
    labels, proba = _run(to_onnx(pipe, X), X)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=1e-5)
    _assert_same_labels(labels, pipe.predict(X), pipe.predict_proba(X), 1e-5)


def test_registered_with_skl2onnx(iris):
    # after cymlp.to_onnx is imported, skl2onnx converts cymlp's estimators itself
    from skl2onnx import to_onnx as skl2onnx_to_onnx

    X, y = iris
    X = X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    model = skl2onnx_to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}})
    _, proba = _run(model, X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=ATOL[np.float32])


def test_options(iris):
    X, y = iris
    X = X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    labels, proba = _run(to_onnx(clf, X, options={"zipmap": True}), X[:3])
    assert isinstance(proba, list) and sorted(proba[0]) == [0, 1, 2]
    np.testing.assert_allclose(
        [[row[c] for c in range(3)] for row in proba], clf.predict_proba(X[:3]), atol=1e-6
    )
    names = np.array(["a", "b", "c"])[y]
    clf_str = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    clf_str.fit(X, names)
    labels, _ = _run(to_onnx(clf_str, X, options={"nocl": True}), X[:5])
    expected = np.searchsorted(clf_str.classes_, clf_str.predict(X[:5]))
    np.testing.assert_array_equal(labels, expected)


def test_sparse_and_dataframe_samples(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    for sample in (sparse.csr_matrix(X[:4]), pd.DataFrame(X[:4], columns=list("abcd"))):
        model = to_onnx(clf, sample)
        assert [i.name for i in model.graph.input] == ["X"]
        _, proba = _run(model, X)
        np.testing.assert_allclose(proba, clf.predict_proba(X), atol=ATOL[np.float64])


def test_graph_metadata(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    model = to_onnx(clf, X.astype(np.float32), name="iris_mlp", target_opset=15)
    assert model.graph.name == "iris_mlp"
    assert {o.name for o in model.graph.output} == {"label", "probabilities"}
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 15


def test_errors(iris):
    X, y = iris
    with pytest.raises(NotFittedError):
        to_onnx(MLPClassifier(), X)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="4 columns"):
        to_onnx(clf, X[:, :3])
    with pytest.raises(ValueError, match="4 columns"):
        to_onnx(clf, X[0])


def test_clear_import_error_without_the_extra():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["skl2onnx"] = None  # as if the onnx extra were not installed
        import cymlp
        try:
            from cymlp import to_onnx
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("no ImportError")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'cymlp[onnx]'" in out
