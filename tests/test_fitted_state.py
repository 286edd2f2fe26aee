"""Edited, stale and old fitted state never reaches a kernel unchecked.

People edit fitted weights (pruning, transfer, weights trained elsewhere) and
pickles outlive versions, while the engine runs on raw pointers. Every entry
point that reads the fitted network checks it in O(layers) first. Each edit
below is made to a cymlp model and to scikit-learn's model fitted the same
way, and every entry point is called on both; scikit-learn is the reference:

- where scikit-learn raises, cymlp raises the same exception class, or a
  ValueError where scikit-learn's error is an accident of its own list walk,
  dict lookup or numpy product (IndexError, KeyError, AttributeError, numpy's
  UFuncTypeError for weights that are not numbers);
- where scikit-learn computes with the edited weights (a Fortran-ordered,
  integer or float32 matrix, an intercept that broadcasts), cymlp computes
  the same numbers;
- where scikit-learn's lbfgs packs a broken network into one vector, it
  hands scipy a weight vector and a gradient of different lengths, which can
  corrupt the heap: those cases run cymlp alone, which must raise ValueError;
- a few edits leave attributes that contradict each other (``n_layers_``,
  ``n_outputs_``): scikit-learn then uses some of them and ignores the
  others; cymlp refuses the model with a ValueError (DELIBERATE below).

Also here: the optimizer's settings are captured when it is made, as
scikit-learn's are (set_params between partial_fit calls, warm_start fits),
``assume_finite`` in predict, and pickles written by cymlp 0.1.0.
"""

import copy
import pathlib
import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp
from _parity import assert_close, assert_fit_equal

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(kind):
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    if kind == "regressor":
        return X[:, 1:], X[:, 0]
    return X, y


# ---------------------------------------------------------------------------
# The edits
# ---------------------------------------------------------------------------
def _set_item(attr, i, make):
    def edit(est):
        getattr(est, attr)[i] = make(getattr(est, attr)[i])
    return edit


def _set_attr(attr, make):
    def edit(est):
        setattr(est, attr, make(getattr(est, attr)))
    return edit


def _wider_output(est):
    est.coefs_[-1] = np.hstack([est.coefs_[-1], est.coefs_[-1][:, :1]])
    est.intercepts_[-1] = np.r_[est.intercepts_[-1], 0.0]


# name -> edit. Every one breaks the network's shape, dtype or names.
BREAKING = {
    "intercept too short": _set_item("intercepts_", 0, lambda b: np.zeros(2)),
    "last intercept too long": _set_item("intercepts_", -1, lambda b: np.zeros(7)),
    "intercept 2-d": _set_item("intercepts_", 0, lambda b: np.zeros((3, b.size))),
    "coef rows cut": _set_item("coefs_", 1, lambda c: c[:3]),
    "coef columns cut": _set_item("coefs_", 0, lambda c: c[:, :2]),
    "first coef extra row": _set_item("coefs_", 0, lambda c: np.vstack([c, c[:1]])),
    "coef raveled": _set_item("coefs_", 0, lambda c: c.ravel()),
    "coef of strings": _set_item("coefs_", 0, lambda c: c.astype(str)),
    "coef of objects": _set_item("coefs_", 0, lambda c: c.astype(object)),
    "coef ragged": _set_item("coefs_", 1, lambda c: [[1.0, 2.0], [3.0]]),
    "coefs_ cut": _set_attr("coefs_", lambda c: c[:1]),
    "intercepts_ cut": _set_attr("intercepts_", lambda b: b[:1]),
    "coefs_ an array": _set_attr("coefs_", lambda c: c[0]),
    "n_layers_ larger": _set_attr("n_layers_", lambda n: n + 2),
    "out_activation_ unknown": _set_attr("out_activation_", lambda a: "bogus"),
    "activation unknown": _set_attr("activation", lambda a: "bogus"),
}
# Attributes that contradict each other where scikit-learn may compute with a
# part of them; cymlp raises ValueError instead.
DELIBERATE = {
    "n_layers_ smaller": _set_attr("n_layers_", lambda n: n - 1),
    "n_outputs_ changed": _set_attr("n_outputs_", lambda n: n + 4),
    "output layer wider": _wider_output,
}
# Edits of representation only: scikit-learn computes with them, and so must cymlp.
CONVERTED = {
    "coef Fortran-ordered": _set_item("coefs_", 0, np.asfortranarray),
    "coef strided": _set_item("coefs_", 1, lambda c: np.repeat(c, 2, axis=1)[:, ::2]),
    "coef integer": _set_item("coefs_", 0, lambda c: np.round(4 * c).astype(np.int64)),
    "coef float32": _set_item("coefs_", 1, lambda c: c.astype(np.float32)),
    "intercept read-only": _set_item("intercepts_", 0, lambda b: _read_only(b)),
    "intercept of one value": _set_item("intercepts_", 0, lambda b: b[:1].copy()),
}


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# entry point -> call; the ones that train continue from the edited weights
def _warm(est, X, y, **params):
    return est.set_params(warm_start=True, max_iter=2, **params).fit(X, y)


ENTRY_POINTS = {
    "predict": lambda est, X, y: est.predict(X),
    "predict_proba": lambda est, X, y: est.predict_proba(X),
    "predict_log_proba": lambda est, X, y: est.predict_log_proba(X),
    "score": lambda est, X, y: est.score(X, y),
    "warm_start adam": lambda est, X, y: _warm(est, X, y),
    "warm_start lbfgs": lambda est, X, y: _warm(est, X, y, solver="lbfgs"),
    "warm_start early stopping": lambda est, X, y: _warm(
        est, X, y, early_stopping=True, validation_fraction=0.2),
    "partial_fit": lambda est, X, y: est.partial_fit(X, y),
}
PREDICTING = ("predict", "predict_proba", "predict_log_proba", "score")
# scikit-learn's errors that come from how it walks its lists and dicts, or
# from numpy's product with weights that are not numbers
INCIDENTAL = (IndexError, KeyError, AttributeError, TypeError)

_FITTED = {}


def _fitted(kind, entry=""):
    """A scikit-learn and a cymlp model fitted alike (cached; copies are
    edited). A model continued with early stopping was fitted with it: both
    libraries keep its curves only then."""
    early_stopping = "early stopping" in entry
    if (kind, early_stopping) not in _FITTED:
        X, y = _data(kind)
        models = []
        for cls in ((SkMLPClassifier, cymlp.MLPClassifier) if kind == "classifier"
                    else (SkMLPRegressor, cymlp.MLPRegressor)):
            models.append(cls(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0,
                              early_stopping=early_stopping).fit(X, y))
        _FITTED[kind, early_stopping] = models
    return [copy.deepcopy(m) for m in _FITTED[kind, early_stopping]]


def _outcomes(kind, edit, entry):
    """(scikit-learn's, cymlp's) outcome of `entry` after `edit`: a result or
    the exception raised."""
    X, y = _data(kind)
    outcomes = []
    for est in _fitted(kind, entry):
        edit(est)
        try:
            outcomes.append(ENTRY_POINTS[entry](est, X, y))
        except Exception as exc:  # the outcome is what is compared
            outcomes.append(exc)
    return outcomes


def _cases(edits):
    for kind in ("classifier", "regressor"):
        for entry in ENTRY_POINTS:
            if kind == "regressor" and "proba" in entry:
                continue
            for name in edits:
                yield pytest.param(kind, name, entry, id=f"{kind}-{name}-{entry}")


@pytest.mark.parametrize("kind, edit, entry", list(_cases(BREAKING)))
def test_broken_fitted_state_raises_like_sklearn(kind, edit, entry):
    if entry == "warm_start lbfgs":
        # scikit-learn's lbfgs hands scipy a packed weight vector and a
        # gradient of different lengths here, which corrupts the heap inside
        # scipy's compiled L-BFGS-B (the process aborts a few tests later):
        # it cannot be the reference in this process. cymlp must refuse.
        _, cy = _fitted(kind, entry)
        BREAKING[edit](cy)
        with pytest.raises(ValueError):
            ENTRY_POINTS[entry](cy, *_data(kind))
        return
    sk_out, cy_out = _outcomes(kind, BREAKING[edit], entry)
    assert isinstance(cy_out, ValueError), f"cymlp gave {cy_out!r}"
    if not isinstance(sk_out, Exception) or isinstance(sk_out, INCIDENTAL):
        expected = ValueError
    else:
        expected = type(sk_out)
    assert isinstance(cy_out, expected), (repr(sk_out), repr(cy_out))


@pytest.mark.parametrize("kind, edit, entry", list(_cases(DELIBERATE)))
def test_contradictory_fitted_state_raises(kind, edit, entry):
    X, y = _data(kind)
    _, cy = _fitted(kind, entry)
    DELIBERATE[edit](cy)
    with pytest.raises(ValueError, match="n_layers_|n_outputs_"):
        ENTRY_POINTS[entry](cy, X, y)


@pytest.mark.parametrize("kind, edit, entry", list(_cases(CONVERTED)))
def test_converted_fitted_state_computes_like_sklearn(kind, edit, entry):
    if entry == "warm_start lbfgs" and edit == "intercept of one value":
        # a broadcast intercept changes the packed length: see above
        _, cy = _fitted(kind, entry)
        CONVERTED[edit](cy)
        with pytest.raises(ValueError, match=r"intercepts_\[0\]"):
            ENTRY_POINTS[entry](cy, *_data(kind))
        return
    sk_out, cy_out = _outcomes(kind, CONVERTED[edit], entry)
    if isinstance(sk_out, Exception):
        # scikit-learn cannot train integer weights in place (cymlp trains
        # them in float64, a conversion), nor a broadcast intercept (cymlp
        # refuses it the same way)
        assert entry not in PREDICTING, repr(sk_out)
        assert not isinstance(cy_out, Exception) or isinstance(cy_out, type(sk_out)), (
            repr(sk_out), repr(cy_out))
        return
    assert not isinstance(cy_out, Exception), f"cymlp refused {edit!r}: {cy_out!r}"
    if entry in PREDICTING:
        if np.asarray(sk_out).dtype.kind in "iub":
            np.testing.assert_array_equal(cy_out, sk_out)
        else:
            assert_close(cy_out, sk_out, np.float64)
    elif "float32" in edit:
        # scikit-learn keeps training that one layer in float32 in place;
        # cymlp's packed buffer is float64: the same values, float32-rounded
        for attr in ("coefs_", "intercepts_"):
            for r, e in zip(getattr(sk_out, attr), getattr(cy_out, attr)):
                assert_close(e, r, np.float32, err_msg=attr)
    else:
        assert_fit_equal(sk_out, cy_out, dtype=np.float64)


def test_stale_optimizer_state_raises():
    # partial_fit continues the optimizer: moments that no longer fit the
    # network are refused before the engine sees them
    X, y = _data("classifier")
    cy = cymlp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    cy.partial_fit(X, y, classes=np.unique(y))
    cy._optimizer.second_moment = cy._optimizer.second_moment[:-1]
    with pytest.raises(ValueError, match="optimizer"):
        cy.partial_fit(X, y)


def test_onnx_export_checks_fitted_state():
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnx")
    X, y = _data("classifier")
    _, cy = _fitted("classifier")
    cy.intercepts_[0] = np.zeros(2)
    with pytest.raises(ValueError, match=r"intercepts_\[0\]"):
        cymlp.to_onnx(cy, X[:1])


# ---------------------------------------------------------------------------
# The engine's own checks (the estimators check first; these are the last line)
# ---------------------------------------------------------------------------
def test_engine_checks_every_array():
    from cymlp._engine import Network, Trainer

    net = Network([3, 4, 2], "relu", "softmax", "log_loss")
    params = np.zeros(net.n_params)
    coefs, intercepts = net.views(params)
    X = np.ones((5, 3))
    with pytest.raises(ValueError, match="coefs_"):
        net.predict(X, [coefs[0], coefs[1][:3]], intercepts)
    with pytest.raises(ValueError, match="intercepts_"):
        net.predict(X, coefs, [intercepts[0][:2], intercepts[1]])
    with pytest.raises(ValueError, match="features|shape"):
        net.predict(np.ones((5, 4)), coefs, intercepts)
    with pytest.raises(ValueError):
        net.predict(X.astype(np.float32), coefs, intercepts)  # weights of another dtype
    trainer = Trainer(net, np.float64, 4)
    Y = np.zeros((5, 2))
    with pytest.raises(ValueError, match="at most"):
        trainer.loss_grad(X, Y, None, params, 0.0)  # more rows than the workspace
    with pytest.raises(ValueError, match="parameter buffer"):
        trainer.loss_grad(X[:4], Y[:4], None, params[:-1], 0.0)
    with pytest.raises(ValueError, match="Y"):
        trainer.loss_grad(X[:4], Y[:3], None, params, 0.0)
    with pytest.raises(ValueError, match="sample_weight"):
        trainer.loss_grad(X[:4], Y[:4], np.ones(3), params, 0.0)
    settings = dict(kind="adam", learning_rate_init=1e-3, momentum=0.9,
                    nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                    t=0, state1=np.zeros(net.n_params), state2=np.zeros(net.n_params - 1))
    with pytest.raises(ValueError, match="state2"):
        Trainer(net, np.float64, 4, optimizer=settings)
    settings["state2"] = np.zeros(net.n_params)
    trainer = Trainer(net, np.float64, 2, gather=True, optimizer=settings)
    order = np.array([0, 1, 2, 3, 5], dtype=np.intp)
    with pytest.raises(ValueError, match="order"):
        trainer.run_epoch(X, Y, None, order, params, 0.0, 1e-3)
    no_gather = Trainer(net, np.float64, 2, optimizer=settings)
    with pytest.raises(ValueError, match="gather"):
        no_gather.run_epoch(X, Y, None, np.arange(5, dtype=np.intp), params, 0.0, 1e-3)


def test_engine_refuses_a_csr_matrix_pointing_outside_its_arrays():
    import scipy.sparse as sp

    from cymlp._engine import Network

    net = Network([3, 2], "relu", "identity", "squared_error")
    coefs, intercepts = net.views(np.ones(net.n_params))
    X = sp.csr_matrix(np.eye(3))
    bad_index = X.copy()
    bad_index.indices[1] = 7
    bad_ptr = X.copy()
    bad_ptr.indptr[2] = 9
    for bad in (bad_index, bad_ptr):
        with pytest.raises(ValueError, match="CSR"):
            net.predict(bad, coefs, intercepts)


# ---------------------------------------------------------------------------
# Optimizer settings are captured when the optimizer is made
# ---------------------------------------------------------------------------
# (parameter, solver, new value): sklearn's optimizers capture the first
# eight when they are made; alpha and batch_size are read at every call.
CHANGES = [
    ("learning_rate_init", "adam", 0.05),
    ("learning_rate_init", "sgd", 0.05),
    ("learning_rate", "sgd", "invscaling"),
    ("power_t", "sgd", 0.1),
    ("momentum", "sgd", 0.3),
    ("nesterovs_momentum", "sgd", False),
    ("beta_1", "adam", 0.5),
    ("beta_2", "adam", 0.9),
    ("epsilon", "adam", 1e-3),
    ("alpha", "adam", 0.5),
    ("alpha", "sgd", 0.5),
    ("batch_size", "adam", 7),
]


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("param, solver, value", CHANGES)
def test_set_params_between_fits_matches_sklearn(param, solver, value, how,
                                                 global_random_seed):
    X, y = _data("regressor")
    params = dict(hidden_layer_sizes=(6,), solver=solver, batch_size=16,
                  learning_rate="invscaling" if param == "power_t" else "constant",
                  random_state=global_random_seed, max_iter=3)
    fitted = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        est = cls(**params)
        if how == "partial_fit":
            est.partial_fit(X, y).partial_fit(X, y)
            est.set_params(**{param: value})
            est.partial_fit(X, y).partial_fit(X, y)
        else:
            est.set_params(warm_start=True).fit(X, y)
            est.set_params(**{param: value})
            est.fit(X, y)
        fitted.append(est)
    assert_fit_equal(*fitted)


# ---------------------------------------------------------------------------
# assume_finite
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_assume_finite_predicts_nan_rows_like_sklearn(dtype):
    X, y = _data("classifier")
    X = X.astype(dtype)
    sk, cy = (cls(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
              for cls in (SkMLPClassifier, cymlp.MLPClassifier))
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with sklearn.config_context(assume_finite=True):
        sk_proba, cy_proba = sk.predict_proba(X_nan), cy.predict_proba(X_nan)
    assert np.isnan(cy_proba[3]).all() and np.isnan(sk_proba[3]).all()
    finite = np.arange(len(X)) != 3
    assert_close(cy_proba[finite], sk_proba[finite], dtype)
    with pytest.raises(ValueError, match="NaN"):
        cy.predict_proba(X_nan)  # checked again outside the context


# ---------------------------------------------------------------------------
# Pickles written by cymlp 0.1.0
# ---------------------------------------------------------------------------
def _old_models():
    with open(DATA / "models_0.1.0_bbd7bee.pkl", "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("name", sorted(_old_models()))
def test_old_pickles_load_and_predict_like_sklearn(name):
    old = _old_models()[name]
    X, y = load_iris(return_X_y=True)
    if name == "clf_sgd":
        y = y == 1
    if name.startswith("reg"):
        from sklearn.datasets import load_diabetes
        X, y = load_diabetes(return_X_y=True)
    # scikit-learn's forward pass with the same weights is the reference
    ref = (SkMLPClassifier if name.startswith("clf") else SkMLPRegressor)(
        hidden_layer_sizes=old.hidden_layer_sizes, activation=old.activation)
    for attr in ("coefs_", "intercepts_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_", "classes_", "_label_binarizer"):
        if hasattr(old, attr):
            setattr(ref, attr, getattr(old, attr))
    X = X.astype(old.coefs_[0].dtype)
    out, expected = ((old.predict_proba(X), ref.predict_proba(X)) if name.startswith("clf")
                     else (old.predict(X), ref.predict(X)))
    assert_close(out, expected, old.coefs_[0].dtype)
    if hasattr(old, "_optimizer"):
        t_before = old.t_
        old.partial_fit(X, y)  # the old optimizer continues, upgraded
        assert old.t_ == t_before + len(X)
        assert isinstance(pickle.loads(pickle.dumps(old))._optimizer, type(old._optimizer))


@pytest.mark.parametrize("name", sorted(n for n in _old_models() if n.startswith("reg")))
def test_old_regressor_pickles_get_the_new_parameters(name):
    # 0.1.0 had no quantile / huber_delta: they load with their defaults, so
    # get_params, clone and repr work, and the old model transforms
    old = _old_models()[name]
    params = old.get_params()
    assert params["quantile"] == 0.5 and params["huber_delta"] == 1.0
    assert clone(old).get_params() == params
    X = np.ones((3, old.n_features_in_), dtype=old.coefs_[0].dtype)
    assert old.transform(X).shape == (3, old.coefs_[-2].shape[1])
