"""Errors and warnings on bad input: cymlp must fail exactly where sklearn fails.

Each case runs the same call on sklearn's MLPClassifier and on cymlp's and
compares the outcome: both succeed, or both raise an exception of the *same
class*.  Where the message comes from sklearn's shared machinery (parameter
validation, ``validate_data``, ``check_is_fitted``, feature-name checks) the
message must be identical too, since users match on it; messages written in
sklearn's MLP module itself are only required to name the culprit.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import cymlp
from _parity import call_recording_warnings, make_data, messages_equivalent

pd = pytest.importorskip("pandas")


def _outcome(func):
    """Run func, return the exception it raised or None (warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - comparing any failure
            return exc
    return None


def assert_same_outcome(make_call, compare_message=True):
    """``make_call(cls)`` returns a zero-argument callable using estimator
    class ``cls``; run it for sklearn's class and cymlp's and compare."""
    ref_exc = _outcome(make_call(SkMLPClassifier))
    est_exc = _outcome(make_call(cymlp.MLPClassifier))
    if ref_exc is None:
        assert est_exc is None, f"sklearn succeeded but cymlp raised {est_exc!r}"
        return None
    assert est_exc is not None, f"sklearn raised {ref_exc!r} but cymlp did not"
    assert type(est_exc) is type(ref_exc), (
        f"sklearn raised {type(ref_exc).__name__}({ref_exc}), "
        f"cymlp raised {type(est_exc).__name__}({est_exc})"
    )
    if compare_message:
        assert messages_equivalent(str(est_exc), str(ref_exc)), (
            f"messages differ:\n sklearn: {ref_exc}\n cymlp:   {est_exc}")
    return ref_exc, est_exc


def _small_data(seed=0):
    X, y, _, _ = make_data("multiclass", seed, n_samples=30, n_features=4)
    return X, y


def _fit_call(X, y, **params):
    params.setdefault("max_iter", 2)
    params.setdefault("hidden_layer_sizes", (3,))
    return lambda cls: (lambda: cls(**params).fit(X, y))


# ---------------------------------------------------------------------------
# Constructor parameters (validated at fit, as in sklearn)
# ---------------------------------------------------------------------------
# Values violating sklearn's MLPClassifier._parameter_constraints, per
# parameter.  test_invalid_params_cover_all_constraints keeps this list in
# step with sklearn.
INVALID_PARAMS = {
    "hidden_layer_sizes": [0, -1, 2.0, "ab", None],
    "activation": ["foo", "softmax", "Relu", None, 1],
    "solver": ["foo", "ADAM", None],
    "alpha": [-1, -1e-12, np.nan, np.inf, "0.1", None],
    "batch_size": [0, -1, 1.5, "foo", None],
    "learning_rate": ["foo", None],
    "learning_rate_init": [0, -1.0, np.nan, "0.1"],
    "power_t": [-1, -0.5, np.nan],
    "max_iter": [0, -1, 1.5, np.inf, None],
    "shuffle": ["yes", 1, 0, None],
    "random_state": [-1, 2**32, "foo", 1.5],
    "tol": [-1, -1e-9, np.nan, np.inf],
    "verbose": [-1, "yes", 2.5],
    "warm_start": ["yes", 1, None],
    "momentum": [2, -0.1, 1.0 + 1e-12, np.nan],
    "nesterovs_momentum": ["yes", 0, None],
    "early_stopping": ["yes", 1, None],
    "validation_fraction": [1, 1.5, -0.1],
    "beta_1": [1, 1.5, -0.1],
    "beta_2": [1, 1.5, -0.1],
    "epsilon": [0, -1e-8, np.nan],
    "n_iter_no_change": [0, -1, 1.5, -np.inf, None],
    "max_fun": [0, -1, 1.5],
}

# Boundary values sklearn accepts: cymlp must accept them too.
VALID_EDGE_PARAMS = [
    ("hidden_layer_sizes", 1),
    ("hidden_layer_sizes", np.int64(3)),
    ("hidden_layer_sizes", np.array([2, 3])),
    ("hidden_layer_sizes", []),
    ("alpha", 0),
    ("alpha", 0.0),
    ("batch_size", 1),
    ("batch_size", np.int64(4)),
    ("learning_rate_init", 1e-300),
    ("power_t", 0),
    ("max_iter", np.int64(2)),
    ("shuffle", np.bool_(False)),
    ("random_state", 0),
    ("random_state", 2**32 - 1),
    ("random_state", np.random.RandomState(0)),
    ("random_state", None),
    ("tol", 0),
    ("verbose", 0),
    ("verbose", False),
    ("warm_start", np.bool_(True)),
    ("momentum", 0),
    ("momentum", 1),
    ("momentum", np.float32(0.5)),
    ("validation_fraction", 0),
    ("beta_1", 0),
    ("beta_2", 0),
    ("epsilon", 1e-300),
    ("n_iter_no_change", 1),
    ("n_iter_no_change", np.inf),
    ("max_fun", 1),
]

# Values that pass sklearn's parameter validation and then fail (or not)
# further in, where sklearn's behaviour is an accident of its implementation.
# The exception class must still be the same.
QUIRKY_PARAMS = [
    ("hidden_layer_sizes", (5, -1)),   # ValueError from the MLP code
    ("hidden_layer_sizes", [0]),       # ValueError from the MLP code
    ("hidden_layer_sizes", (3.0,)),    # TypeError from numpy (float size)
    ("hidden_layer_sizes", True),      # TypeError from numpy (bool is int)
    ("batch_size", True),              # accepted: bool is an int, batch of 1
    ("hidden_layer_sizes", "5"),       # str is not array-like for sklearn
]


def _id(value):
    """Stable test ids (xdist workers must collect identical ids)."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.random.RandomState):
        return "RandomState"
    return repr(value)


def test_invalid_params_cover_all_constraints():
    # Reading the reference's private constraints table is fine in a test:
    # if sklearn adds a parameter, this fails until the list above has it.
    assert set(INVALID_PARAMS) == set(SkMLPClassifier._parameter_constraints)


def test_constructor_does_not_validate():
    # sklearn convention: __init__ stores, fit validates.
    est = cymlp.MLPClassifier(alpha=-1, activation="foo", hidden_layer_sizes=-3)
    assert est.alpha == -1 and est.activation == "foo"


@pytest.mark.parametrize(
    "param, value",
    [(p, v) for p, values in INVALID_PARAMS.items() for v in values],
    ids=_id,
)
def test_invalid_param(param, value):
    X, y = _small_data()
    result = assert_same_outcome(_fit_call(X, y, **{param: value}))
    # Every entry of INVALID_PARAMS is invalid for sklearn, and sklearn's
    # parameter validation names the parameter.
    assert result is not None
    assert f"'{param}'" in str(result[1])


@pytest.mark.parametrize("param, value", VALID_EDGE_PARAMS,
                         ids=_id)
def test_valid_edge_param(param, value):
    X, y = _small_data()
    assert assert_same_outcome(_fit_call(X, y, **{param: value})) is None


@pytest.mark.parametrize("param, value", QUIRKY_PARAMS,
                         ids=_id)
def test_quirky_param(param, value):
    X, y = _small_data()
    result = assert_same_outcome(_fit_call(X, y, **{param: value}),
                                 compare_message=False)
    if result is not None and isinstance(result[0], ValueError):
        assert param in str(result[1])


# ---------------------------------------------------------------------------
# Bad X / y at fit
# ---------------------------------------------------------------------------
def _with_nan(X):
    X = X.copy()
    X[3, 1] = np.nan
    return X


def _with_inf(X, sign=1):
    X = X.copy()
    X[0, 0] = sign * np.inf
    return X


BAD_FIT_INPUTS = {
    "nan-X": lambda X, y: (_with_nan(X), y),
    "inf-X": lambda X, y: (_with_inf(X), y),
    "neg-inf-X": lambda X, y: (_with_inf(X, -1), y),
    "float32-overflow-X": lambda X, y: (np.full_like(X, 1e300), y),
    "empty-X": lambda X, y: (X[:0], y[:0]),
    "zero-features": lambda X, y: (X[:, :0], y),
    "1d-X": lambda X, y: (X[:, 0], y),
    "3d-X": lambda X, y: (X[:, :, None], y),
    "scalar-X": lambda X, y: (X[0, 0], y),
    "y-too-short": lambda X, y: (X, y[:-1]),
    "y-too-long": lambda X, y: (X[:-1], y),
    "nan-y": lambda X, y: (X, np.where(np.arange(len(y)) == 2, np.nan, y)),
    "inf-y": lambda X, y: (X, np.where(np.arange(len(y)) == 2, np.inf, y)),
    "continuous-y": lambda X, y: (X, np.linspace(0, 1, len(y))),
    "multiclass-multioutput-y": lambda X, y: (X, np.c_[y, y]),
    "single-class-y": lambda X, y: (X, np.zeros(len(y), dtype=int)),
    "one-sample": lambda X, y: (X[:1], y[:1]),
    "complex-X": lambda X, y: (X + 1j, y),
    "complex-y": lambda X, y: (X, y + 0j),
    "object-strings-X": lambda X, y: (np.array([["a", "b"]] * len(y), dtype=object), y),
    "object-numbers-X": lambda X, y: (X.astype(object), y),
    "string-X": lambda X, y: (X.astype(str), y),
    "none-y": lambda X, y: (X, None),
    "list-X": lambda X, y: (X.tolist(), y.tolist()),
    "ragged-list-X": lambda X, y: ([[1.0, 2.0], [1.0]] * (len(y) // 2), y),
    "y-2d-empty-columns": lambda X, y: (X, np.zeros((len(y), 0))),
}


@pytest.mark.parametrize("case", list(BAD_FIT_INPUTS))
def test_bad_fit_input(case):
    X, y = _small_data()
    X, y = BAD_FIT_INPUTS[case](X, y)
    assert_same_outcome(lambda cls: (lambda: cls(max_iter=2, hidden_layer_sizes=(3,))
                                     .fit(X, y)))


# ---------------------------------------------------------------------------
# Bad input at predict time, and use before fit
# ---------------------------------------------------------------------------
PREDICT_METHODS = ["predict", "predict_proba", "predict_log_proba"]


@pytest.mark.parametrize("method", PREDICT_METHODS + ["score"])
def test_not_fitted(method):
    X, y = _small_data()
    args = (X, y) if method == "score" else (X,)
    ref, est = assert_same_outcome(
        lambda cls: (lambda: getattr(cls(), method)(*args)))
    assert isinstance(est, NotFittedError)


def _with_fitted_hook(cls, fitted):
    """A subclass of cls that decides fittedness by __sklearn_is_fitted__."""
    return type("Hooked" + cls.__name__, (cls,),
                {"__sklearn_is_fitted__": lambda self: fitted})


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("method", PREDICT_METHODS + ["score"])
def test_fitted_hook_and_stray_attributes_decide_as_in_sklearn(method, fitted):
    # predict's check skips check_is_fitted's scan of every attribute when
    # coefs_ is set; it must still decide as scikit-learn does when a
    # subclass defines __sklearn_is_fitted__, and when coefs_ is gone but
    # another fitted-looking attribute is there
    X, y = _small_data()
    args = (X, y) if method == "score" else (X,)

    def hooked(cls):
        def call():
            est = _with_fitted_hook(cls, fitted)(max_iter=2)
            call_recording_warnings(est.fit, X, y)
            return getattr(est, method)(*args)
        return call

    def stray(cls):
        def call():
            est = cls(max_iter=2)
            call_recording_warnings(est.fit, X, y)
            del est.coefs_
            return getattr(est, method)(*args)
        return call

    outcome = assert_same_outcome(hooked)
    assert (outcome is None) == fitted
    if not fitted:
        assert isinstance(outcome[1], NotFittedError)
    # sklearn finds the other attributes and fails reading coefs_
    # (AttributeError); so does cymlp
    assert_same_outcome(stray, compare_message=False)


BAD_PREDICT_INPUTS = {
    "too-few-features": lambda X: X[:, :-1],
    "too-many-features": lambda X: np.c_[X, X[:, :1]],
    "nan": _with_nan,
    "inf": _with_inf,
    "empty": lambda X: X[:0],
    "1d": lambda X: X[0],
    "3d": lambda X: X[:, :, None],
    "complex": lambda X: X + 1j,
    "object-strings": lambda X: np.full(X.shape, "a", dtype=object),
    "list": lambda X: X.tolist(),
}


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("case", list(BAD_PREDICT_INPUTS))
def test_bad_predict_input(case, method):
    X, y = _small_data()

    def make_call(cls):
        est = cls(max_iter=2, hidden_layer_sizes=(3,), random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        X_bad = BAD_PREDICT_INPUTS[case](X)
        return lambda: getattr(est, method)(X_bad)

    assert_same_outcome(make_call)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize(
    "value, row", [(np.nan, 2999), (np.inf, 1500), (-np.inf, 1024), (np.nan, 0),
                   (3e38, 2000)],
    ids=["nan-last-row", "inf-mid", "neg-inf-chunk-start", "nan-first", "huge-finite"])
def test_non_finite_anywhere_in_large_predict_input(dtype, order, value, row):
    # The engine checks a plain array's finiteness chunk by chunk while it
    # predicts: a bad value in any chunk must give sklearn's error, and huge
    # finite values (whose products overflow) no error at all, as in sklearn.
    X, y = _small_data()
    X_big = np.asarray(np.tile(X, (100, 1))[:3000], dtype=dtype, order=order)
    X_big[row, 2] = value

    def make_call(cls):
        est = cls(max_iter=2, hidden_layer_sizes=(3,), random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X.astype(dtype), y)
        return lambda: est.predict_proba(X_big)

    assert_same_outcome(make_call)


# ---------------------------------------------------------------------------
# Feature names (pandas)
# ---------------------------------------------------------------------------
def _frame(X, names=None):
    names = names if names is not None else [f"f{i}" for i in range(X.shape[1])]
    return pd.DataFrame(X, columns=names)


def _fit_pair(X, y, **params):
    params = {"max_iter": 2, "hidden_layer_sizes": (3,), "random_state": 0, **params}
    ref, est = SkMLPClassifier(**params), cymlp.MLPClassifier(**params)
    _, w_ref = call_recording_warnings(ref.fit, X, y)
    _, w_est = call_recording_warnings(est.fit, X, y)
    assert w_est == w_ref
    return ref, est


def test_dataframe_sets_feature_names_in():
    X, y = _small_data()
    ref, est = _fit_pair(_frame(X), pd.Series(y))
    np.testing.assert_array_equal(est.feature_names_in_, ref.feature_names_in_)
    assert est.feature_names_in_.dtype == ref.feature_names_in_.dtype == object
    assert est.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(est.predict(_frame(X)), ref.predict(_frame(X)))


def test_ndarray_fit_has_no_feature_names():
    X, y = _small_data()
    ref, est = _fit_pair(X, y)
    assert not hasattr(ref, "feature_names_in_")
    assert not hasattr(est, "feature_names_in_")


def test_non_string_column_names_give_no_feature_names():
    X, y = _small_data()
    ref, est = _fit_pair(pd.DataFrame(X), y)  # integer column names
    assert hasattr(est, "feature_names_in_") == hasattr(ref, "feature_names_in_")


def test_mixed_column_name_types():
    X, y = _small_data()
    df = pd.DataFrame(X, columns=["a", 1, "c", "d"])
    assert_same_outcome(lambda cls: (lambda: cls(max_iter=2).fit(df, y)))


@pytest.mark.parametrize(
    "fit_kind, predict_kind",
    [("frame", "array"), ("array", "frame"), ("frame", "renamed"),
     ("frame", "reordered")],
)
@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_feature_name_mismatch(fit_kind, predict_kind, method):
    # sklearn warns (UserWarning) when names appear or disappear between fit
    # and predict, and raises ValueError when they differ.
    X, y = _small_data()
    X_fit = _frame(X) if fit_kind == "frame" else X
    names = [f"f{i}" for i in range(X.shape[1])]
    X_pred = {
        "array": X,
        "frame": _frame(X),
        "renamed": _frame(X, ["g0"] + names[1:]),
        "reordered": _frame(X[:, ::-1], names[::-1]),
    }[predict_kind]
    ref, est = _fit_pair(X_fit, y)
    results = []
    for model in (ref, est):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            exc = _outcome_no_filter(lambda: getattr(model, method)(X_pred))
        results.append((
            None if exc is None else (type(exc), str(exc)),
            [(r.category, str(r.message)) for r in records
             if issubclass(r.category, UserWarning)],
        ))
    assert results[1] == results[0]


def _outcome_no_filter(func):
    try:
        func()
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


def test_dataframe_with_categorical_column():
    X, y = _small_data()
    df = _frame(X)
    df["f0"] = pd.Categorical(np.where(X[:, 0] > 0, "hi", "lo"))
    assert_same_outcome(lambda cls: (lambda: cls(max_iter=2).fit(df, y)))


# ---------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------
NON_FINITE_MSG = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)


@pytest.mark.parametrize(
    "scale, params",
    [
        pytest.param(1e307, dict(solver="sgd"), id="sgd-huge-X"),
        pytest.param(1e100, dict(solver="sgd", learning_rate_init=1.0),
                     id="sgd-large-X"),
        pytest.param(1e6, dict(solver="sgd", learning_rate_init=10.0,
                               activation="identity"), id="sgd-big-step"),
    ],
)
def test_non_finite_weights_raise(scale, params):
    # sklearn checks the weights once at the end of fit and raises this
    # ValueError; numpy's overflow RuntimeWarnings on the way are sklearn's
    # implementation detail and not compared.  The growth is systematic
    # (every epoch multiplies the loss by ~1e15 in "sgd-big-step"), so both
    # implementations overflow well before max_iter whatever their rounding;
    # n_iter_no_change is large so the rising loss does not stop training
    # first.
    X, y = _small_data()
    X = X * scale
    ref, est = assert_same_outcome(
        lambda cls: (lambda: cls(max_iter=30, n_iter_no_change=100,
                                 hidden_layer_sizes=(4,), random_state=0,
                                 **params).fit(X, y)))
    assert str(ref) == NON_FINITE_MSG


def test_adam_survives_huge_gradients():
    # With X ~ 1e300 the squared gradients overflow to inf in adam's second
    # moment, so m / (sqrt(v) + eps) is 0 for those weights and training goes
    # on without error in sklearn: cymlp must not turn the inf in an
    # intermediate into an error of its own.
    X, y = _small_data()
    X = X * 1e300
    assert assert_same_outcome(
        lambda cls: (lambda: cls(max_iter=5, hidden_layer_sizes=(4,),
                                 random_state=0, solver="adam").fit(X, y))) is None


@pytest.mark.parametrize("cls", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_param_names_are_sklearns(cls):
    # cymlp caches the parameter names per class; they must be exactly what
    # BaseEstimator reads from the signature, for subclasses too, and a
    # caller mutating the returned list must not change the next answer.
    from sklearn.base import BaseEstimator

    class Sub(cls):
        def __init__(self, extra=1, hidden_layer_sizes=(100,)):
            super().__init__(hidden_layer_sizes=hidden_layer_sizes)
            self.extra = extra

    for klass in (cls, Sub):
        expected = BaseEstimator._get_param_names.__func__(klass)
        names = klass._get_param_names()
        assert names == expected
        names.append("junk")
        assert klass._get_param_names() == expected
    assert Sub().get_params() == {"extra": 1, "hidden_layer_sizes": (100,)}
